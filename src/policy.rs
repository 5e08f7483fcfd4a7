//! Who may do what (pure). Roles come from the caller's credentials; the rules come from
//! DESIGN.md and the allow-lists from containerctl.toml. Every refusal names its rule.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Policy;
use crate::unit::{Unit, UnitName, VolumeSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// Who is calling, as the transport established it (socket credentials, a token or a session).
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// For history and audit, e.g. `uid 1000 (alice)`.
    pub actor: String,
}

/// Every verb of the API, so that one function ([`may`]) decides all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Units: reading definitions, state, history, logs, events; devices.
    Read,
    Start,
    Restart,
    Stop,
    Enable,
    Disable,
    Edit,
    /// Writing an earlier revision back.
    Revert,
    Remove,
    /// Clearing a unit's failed state (`systemctl reset-failed`).
    ResetFailed,
    /// The audit trail.
    ReadAudit,
    /// API tokens: list, create, revoke.
    ManageTokens,
    /// A one-time login link for the web page.
    LoginLink,
    /// Rotating the token signing key.
    RotateKeys,
    /// Cluster status, nodes and their history.
    ReadCluster,
    InitCluster,
    JoinCluster,
    LeaveCluster,
    RemoveNode,
    ListJoinTokens,
    CreateJoinToken,
    RevokeJoinToken,
    /// Pushing an image to the cluster registry.
    PushImage,
    /// Registry credentials: list, log in (store), test, log out. Units of any role pull with
    /// the stored ones; nobody reads them back.
    ManageRegistries,
    /// Asking the registries for newer versions of the units (`update --check`).
    CheckUpdates,
    /// Listing secrets: names, sizes, dates and the units that use them, never values.
    ReadSecrets,
    /// Setting and removing secrets.
    ManageSecrets,
}

impl Action {
    /// The verb as history, audit and messages name it.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Start => "start",
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Edit => "edit",
            Action::Revert => "revert",
            Action::Remove => "remove",
            Action::ResetFailed => "reset the failed state of",
            Action::ReadAudit => "read the audit trail",
            Action::ManageTokens | Action::LoginLink | Action::RotateKeys => "manage tokens",
            Action::ReadCluster => "reading the cluster",
            Action::InitCluster => "cluster init",
            Action::JoinCluster => "cluster join",
            Action::LeaveCluster => "cluster leave",
            Action::RemoveNode => "removing a node",
            Action::ListJoinTokens => "listing join tokens",
            Action::CreateJoinToken => "creating a join token",
            Action::RevokeJoinToken => "revoking a join token",
            Action::PushImage => "image push",
            Action::ManageRegistries => "manage registry credentials",
            Action::CheckUpdates => "check for updates of",
            Action::ReadSecrets => "list secrets",
            Action::ManageSecrets => "set or remove secrets",
        }
    }

    fn is_cluster(self) -> bool {
        matches!(
            self,
            Action::ReadCluster
                | Action::InitCluster
                | Action::JoinCluster
                | Action::LeaveCluster
                | Action::RemoveNode
                | Action::ListJoinTokens
                | Action::CreateJoinToken
                | Action::RevokeJoinToken
                | Action::PushImage
        )
    }
}

/// The role `action` needs; `protected` is whether the unit it concerns is protected.
pub fn needed(action: Action, protected: bool) -> Role {
    match action {
        Action::Read | Action::ReadCluster => Role::Viewer,
        Action::Stop | Action::Enable | Action::Disable | Action::Edit | Action::Revert | Action::Remove
            if protected =>
        {
            Role::Admin
        }
        Action::Start
        | Action::Restart
        | Action::Stop
        | Action::Enable
        | Action::Disable
        | Action::Edit
        | Action::Revert
        | Action::Remove
        | Action::ResetFailed
        | Action::PushImage
        | Action::CheckUpdates => Role::Operator,
        Action::ReadSecrets => Role::Operator,
        Action::ReadAudit
        | Action::ManageTokens
        | Action::LoginLink
        | Action::RotateKeys
        | Action::InitCluster
        | Action::JoinCluster
        | Action::LeaveCluster
        | Action::RemoveNode
        | Action::ListJoinTokens
        | Action::CreateJoinToken
        | Action::RevokeJoinToken
        | Action::ManageRegistries
        | Action::ManageSecrets => Role::Admin,
    }
}

/// Whether `role` reads unit files as they are written. Viewers read them with the values of
/// credential-like environment variables redacted (`unit::redact`): operators and admins write
/// unit files, so they must see what they edit.
pub fn reads_plain_values(role: Role) -> bool {
    role >= Role::Operator
}

/// A refusal: the rule that applies, a message that says what is refused, and, when known,
/// the key it concerns, its position in the file and what an admin can change to allow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
    /// The key the refusal is about: `container.ports[0]`, `service.requires[1]`, `service.protected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `FILE:LINE:COLUMN` of that key's value in the text that was refused (see [`locate`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The line of the refused text that `location` points at, so that a client without that
    /// text (`containerctl set`: the daemon made it) can quote it. (This and `fix` are boxed, so
    /// that `may`'s error stays small.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_line: Option<Box<str>>,
    /// What an admin can change so that the refused definition would pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Box<str>>,
}

impl Violation {
    pub fn new(rule: &'static str, message: String) -> Violation {
        Violation { rule, message, key: None, location: None, source_line: None, fix: None }
    }

    fn key(mut self, key: impl Into<String>) -> Violation {
        self.key = Some(key.into());
        self
    }

    fn fix(mut self, fix: impl Into<String>) -> Violation {
        self.fix = Some(fix.into().into_boxed_str());
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.location.as_ref().or(self.key.as_ref()) {
            write!(f, "{at}: ")?;
        }
        write!(f, "{} (rule: {})", self.message, self.rule)?;
        if let Some(fix) = &self.fix {
            write!(f, "; to allow it, an admin can {fix}")?;
        }
        Ok(())
    }
}

fn violation(rule: &'static str, message: String) -> Violation {
    Violation::new(rule, message)
}

/// Whether `image` names a repository below `incoming/` of a registry (`HOST[:PORT]/incoming/...`):
/// the cluster registry's staging area, mutable by design.
fn is_staged_image(image: &str) -> bool {
    let mut parts = image.split('/');
    let first = parts.next().unwrap_or("");
    let has_registry = first.contains(['.', ':']) || first == "localhost";
    has_registry && parts.next() == Some("incoming")
}

/// May `role` do `action`? The one authorization point of the API: every handler asks it.
/// `unit` and `protected` describe the unit the action concerns (`*` and false for none).
pub fn may(role: Role, action: Action, unit: &str, protected: bool) -> Result<(), Violation> {
    let needed = needed(action, protected);
    if role >= needed {
        return Ok(());
    }
    let what = action.verb();
    let message = if action.is_cluster() {
        format!("{what} needs the {needed} role; you are {role}")
    } else if matches!(
        action,
        Action::ReadAudit
            | Action::ManageTokens
            | Action::LoginLink
            | Action::RotateKeys
            | Action::ManageRegistries
            | Action::ManageSecrets
    ) {
        format!("only an admin may {what}")
    } else if action == Action::ReadSecrets {
        format!("only operators and admins may {what}; you are {role}")
    } else if needed == Role::Admin {
        return Err(violation(
            "protected units",
            format!("unit {unit} is protected: only an admin may {what} it"),
        )
        .key("service.protected")
        .fix(format!("{what} it, or set service.protected = false in the unit {unit}")));
    } else {
        format!("a {role} may not {what} units: ask an operator or admin")
    };
    Err(violation("roles", message))
}

/// Checks a definition a `role` wants to write, replacing `before` (None for a new unit).
/// Host paths must already be resolved (symlinks followed) by the caller. `others` are the
/// NAMEs of the other units on this host: a named or `shared:` volume that a longer NAME owns
/// is that unit's, not this one's.
pub fn check_definition(
    role: Role,
    policy: &Policy,
    before: Option<&Unit>,
    after: &Unit,
    others: &[String],
) -> Result<(), Vec<Violation>> {
    if role == Role::Admin {
        return Ok(());
    }
    let mut v = Vec::new();
    if role < Role::Operator {
        v.push(violation("roles", format!("a {role} may not change units")));
        return Err(v);
    }
    let name = &after.name;
    let file = &policy.file;
    let c = &after.container;
    let was_protected = before.is_some_and(|b| b.service.protected);
    if was_protected {
        v.push(
            violation("protected units", format!("unit {name} is protected: only an admin may change it"))
                .key("service.protected")
                .fix(format!("make the change, or set service.protected = false in the unit {name}")),
        );
    } else if after.service.protected {
        v.push(
            violation("protected units", format!("{name}: only an admin may change protected"))
                .key("service.protected")
                .fix("set it"),
        );
    }
    if c.privileged {
        v.push(
            violation("no privileged mode", format!("{name}: only an admin may set privileged = true"))
                .key("container.privileged")
                .fix("write this unit (admins are not limited by the policy)"),
        );
    }
    if !c.no_new_privileges {
        v.push(
            violation(
                "no-new-privileges",
                format!("{name}: only an admin may set no_new_privileges = false"),
            )
            .key("container.no_new_privileges")
            .fix("write this unit (admins are not limited by the policy)"),
        );
    }
    for (i, cap) in c.capabilities.iter().enumerate() {
        v.push(
            violation("no added capabilities", format!("{name}: only an admin may add capability {cap}"))
                .key(format!("container.capabilities[{i}]"))
                .fix("write this unit (admins are not limited by the policy)"),
        );
    }
    check_network(&mut v, policy, after);
    if is_staged_image(&c.image) {
        v.push(
            violation(
                "no staged images",
                format!(
                    "{name}: image {} is in a staging repository (incoming/) of the cluster registry, \
                     whose tags anyone with a token may overwrite",
                    c.image
                ),
            )
            .key("container.image")
            .fix("push the image with `containerctl image push` and use the tag it prints"),
        );
    }
    for (key, list) in [("after", &after.service.after), ("requires", &after.service.requires)] {
        for (i, dep) in list.iter().enumerate() {
            if !container_unit(dep) && !policy.allowed_units.contains(dep) {
                v.push(
                    violation(
                        "units allow-list",
                        format!(
                            "{name}: {key} names {dep}, which is neither a container unit nor in policy.allowed_units{}",
                            list_of(policy.allowed_units.iter().cloned())
                        ),
                    )
                    .key(format!("service.{key}[{i}]"))
                    .fix(format!("add \"{dep}\" to policy.allowed_units in {file}")),
                );
            }
        }
    }
    for (i, p) in c.ports.iter().enumerate() {
        let key = format!("container.ports[{i}]");
        let port = p.host_port;
        if let Some(r) = policy.reserved_ports.iter().find(|r| r.ports.contains(port)) {
            let fix = match &r.fix {
                Some(fix) => format!("{fix} in {file}"),
                None => "publish it (admins are not limited by the policy); it is never an operator's".into(),
            };
            v.push(
                violation("reserved ports", format!("{name}: host port {port} belongs to {}", r.what))
                    .key(key)
                    .fix(fix),
            );
        } else if !policy.allowed_ports.iter().any(|r| r.contains(port)) {
            v.push(
                violation(
                    "ports allow-list",
                    format!(
                        "{name}: host port {port} is not in policy.allowed_ports{}",
                        list_of(policy.allowed_ports.iter().map(ToString::to_string))
                    ),
                )
                .key(key)
                .fix(format!("add {port} to policy.allowed_ports in {file}")),
            );
        }
    }
    for (i, vol) in c.volumes.iter().enumerate() {
        let key = format!("container.volumes[{i}]");
        match &vol.source {
            VolumeSource::Host(p) if after.deploy.is_some() => {
                v.push(
                    violation(
                        "deploy units are host-independent",
                        format!(
                            "{name}: host path {} in a unit with [deploy], whose tasks run on any node of the cluster, where this host's policy.allowed_host_paths does not hold",
                            p.display()
                        ),
                    )
                    .key(key)
                    .fix("write this unit; operators can use a shared: volume instead"),
                );
            }
            VolumeSource::Host(p) => {
                if !under_any(p, &policy.allowed_host_paths) {
                    v.push(
                        violation(
                            "host paths allow-list",
                            format!(
                                "{name}: host path {} is not in policy.allowed_host_paths{}",
                                p.display(),
                                list_of(policy.allowed_host_paths.iter().map(|p| p.display().to_string()))
                            ),
                        )
                        .key(key)
                        .fix(format!(
                            "add {} or a directory above it to policy.allowed_host_paths in {file}",
                            p.display()
                        )),
                    );
                }
            }
            VolumeSource::Named(n) => {
                if !owns(name.as_str(), n, others) && !policy.allowed_volumes.contains(n) {
                    v.push(
                        violation(
                            "volume ownership",
                            format!(
                                "{name}: named volume {n} is not this unit's (its own are {name}, {name}-* and {name}_*{}) nor in policy.allowed_volumes{}",
                                owner_note(n, others),
                                list_of(policy.allowed_volumes.iter().cloned())
                            ),
                        )
                        .key(key)
                        .fix(format!("add \"{n}\" to policy.allowed_volumes in {file}")),
                    );
                }
            }
            VolumeSource::Shared(n) => {
                if !owns(name.as_str(), n, others) && !policy.allowed_shared.contains(n) {
                    v.push(
                        violation(
                            "shared volume ownership",
                            format!(
                                "{name}: shared:{n} is not this unit's (its own are shared:{name}, shared:{name}-* and shared:{name}_*{}) nor in policy.allowed_shared{}",
                                owner_note(n, others),
                                list_of(policy.allowed_shared.iter().cloned())
                            ),
                        )
                        .key(key)
                        .fix(format!("add \"{n}\" to policy.allowed_shared in {file}")),
                    );
                }
            }
        }
    }
    for (i, d) in c.devices.iter().enumerate() {
        let key = format!("container.devices[{i}]");
        let host = d.host.display().to_string();
        if after.deploy.is_some() {
            v.push(
                violation(
                    "deploy units are host-independent",
                    format!("{name}: device {host} in a unit with [deploy], whose tasks run on any node"),
                )
                .key(key),
            );
        } else if !policy.allowed_devices.iter().any(|pattern| device_matches(pattern, &host)) {
            v.push(
                violation(
                    "devices allow-list",
                    format!(
                        "{name}: device {host} is not in policy.allowed_devices{}",
                        list_of(policy.allowed_devices.iter().cloned())
                    ),
                )
                .key(key)
                .fix(format!("add {host} to policy.allowed_devices in {file}")),
            );
        }
    }
    check_secrets(&mut v, policy, after);
    if v.is_empty() {
        Ok(())
    } else {
        Err(v)
    }
}

/// `secrets` and `env_secrets`: only the secrets `policy.allowed_secrets` names. An operator who
/// may reference a secret may make a container print it; the others stay the admins'.
fn check_secrets(v: &mut Vec<Violation>, policy: &Policy, after: &Unit) {
    let name = &after.name;
    let refs = after.secrets.files.iter().enumerate().map(|(i, s)| (format!("container.secrets[{i}]"), s));
    let env = after.secrets.env.iter().map(|(var, s)| (format!("container.env_secrets.{var}"), s));
    for (key, secret) in refs.chain(env) {
        if !policy.allowed_secrets.iter().any(|p| secret_matches(p, secret.as_str())) {
            v.push(
                violation(
                    "secrets allow-list",
                    format!(
                        "{name}: secret {secret} is not in policy.allowed_secrets{}",
                        list_of(policy.allowed_secrets.iter().cloned())
                    ),
                )
                .key(key)
                .fix(format!("add \"{secret}\" to policy.allowed_secrets in {}", policy.file)),
            );
        }
    }
}

fn secret_matches(pattern: &str, secret: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => secret.starts_with(prefix),
        None => pattern == secret,
    }
}

/// `network`: Docker's default bridge and `none` for everyone; `host` only for admins; any other
/// name (a user-defined network, or a network's ID, the host network's included) from the list.
fn check_network(v: &mut Vec<Violation>, policy: &Policy, after: &Unit) {
    let name = &after.name;
    let Some(net) = after.container.network.as_deref() else { return };
    if net == "host" {
        v.push(
            violation("no host network", format!("{name}: only an admin may set network = \"host\""))
                .key("container.network")
                .fix("write this unit (admins are not limited by the policy)"),
        );
    } else if net != "bridge" && net != "none" && !policy.allowed_networks.iter().any(|n| n == net) {
        v.push(
            violation(
                "networks allow-list",
                format!(
                    "{name}: network {net} is not in policy.allowed_networks{}",
                    list_of(policy.allowed_networks.iter().cloned())
                ),
            )
            .key("container.network")
            .fix(format!("add \"{net}\" to policy.allowed_networks in {}", policy.file)),
        );
    }
}

/// `containerctl@NAME.service` with a valid NAME: another container unit.
fn container_unit(dep: &str) -> bool {
    dep.strip_prefix("containerctl@")
        .and_then(|rest| rest.strip_suffix(".service"))
        .is_some_and(|n| UnitName::new(n).is_ok())
}

/// Whether unit `name` may call volume `volume` its own: `name`, `name-*` or `name_*`, unless
/// another unit with a longer NAME owns it the same way (`db-backup-x` is db-backup's, not db's).
fn owns(name: &str, volume: &str, others: &[String]) -> bool {
    scoped(name, volume) && !others.iter().any(|o| o != name && o.len() > name.len() && scoped(o, volume))
}

fn scoped(name: &str, volume: &str) -> bool {
    volume == name
        || volume.strip_prefix(name).is_some_and(|rest| rest.starts_with('-') || rest.starts_with('_'))
}

fn owner_note(volume: &str, others: &[String]) -> String {
    let owner = others.iter().filter(|o| scoped(o, volume)).max_by_key(|o| o.len());
    match owner {
        Some(o) => format!("; it belongs to unit {o}"),
        None => String::new(),
    }
}

/// Fills in `location` (`FILE:LINE:COLUMN`) and `source_line` of every violation whose `key` is
/// found in `text`, the unit file's text as it was checked.
pub fn locate(violations: &mut [Violation], file: &str, text: &str) {
    let Ok(doc) = toml_edit::Document::parse(text) else { return };
    for v in violations.iter_mut() {
        if let Some(span) = v.key.as_deref().and_then(|k| span_of(doc.as_item(), k)) {
            let at = crate::diag::Diagnostic::at(file, text, span, "", None);
            v.location = Some(at.location());
            v.source_line = Some(at.source_line.into());
        }
    }
}

/// The span of `table.key` or `table.key[INDEX]` in a parsed document.
fn span_of(root: &toml_edit::Item, key: &str) -> Option<std::ops::Range<usize>> {
    let (path, index) = match key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        Some((path, i)) => (path, Some(i.parse::<usize>().ok()?)),
        None => (key, None),
    };
    let mut item = root;
    for part in path.split('.') {
        item = item.get(part)?;
    }
    match index {
        Some(i) => item.as_array()?.get(i)?.span(),
        None => item.span(),
    }
}

fn list_of(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        " (which is empty: ask an admin)".into()
    } else {
        format!(" ({})", items.join(", "))
    }
}

fn under_any(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| path.starts_with(root))
}

fn device_matches(pattern: &str, device: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => device.starts_with(prefix) && !device[prefix.len()..].contains('/'),
        None => pattern == device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PortRange, DEFAULT_ALLOWED_UNITS};
    use crate::unit;

    fn u(extra: &str) -> Unit {
        unit_named("cam", extra)
    }

    fn unit_named(name: &str, extra: &str) -> Unit {
        let text = format!("[container]\nimage = \"a\"\nversion = \"1\"\n{extra}");
        unit::parse(name, "cam.toml", &text).expect("valid test unit")
    }

    fn policy() -> Policy {
        Policy {
            allowed_host_paths: vec![PathBuf::from("/srv/containers")],
            allowed_devices: vec!["/dev/ttyUSB*".into(), "/dev/video0".into()],
            file: "c.toml".into(),
            ..Policy::default()
        }
    }

    fn check(p: &Policy, before: Option<&Unit>, after: &Unit) -> Result<(), Vec<Violation>> {
        check_definition(Role::Operator, p, before, after, &[])
    }

    fn rules(r: Result<(), Vec<Violation>>) -> Vec<&'static str> {
        r.err().unwrap_or_default().into_iter().map(|v| v.rule).collect()
    }

    fn refused(p: &Policy, extra: &str) -> Vec<&'static str> {
        rules(check(p, None, &u(extra)))
    }

    #[test]
    fn every_verb_has_one_decision() {
        let e = may(Role::Operator, Action::ReadAudit, "*", false).expect_err("admin only");
        assert_eq!((e.rule, e.message.as_str()), ("roles", "only an admin may read the audit trail"));
        let e = may(Role::Operator, Action::InitCluster, "*", false).expect_err("admin only");
        assert_eq!(e.message, "cluster init needs the admin role; you are operator");
        assert!(may(Role::Operator, Action::PushImage, "*", false).is_ok());
        assert!(may(Role::Viewer, Action::PushImage, "*", false).is_err());
        assert!(may(Role::Viewer, Action::ReadCluster, "*", false).is_ok());
        assert!(may(Role::Operator, Action::ManageTokens, "*", false).is_err());
        assert!(may(Role::Admin, Action::RevokeJoinToken, "*", false).is_ok());
    }

    #[test]
    fn registry_credentials_are_admin_only() {
        for role in [Role::Viewer, Role::Operator] {
            let e = may(role, Action::ManageRegistries, "*", false).expect_err("admin only");
            assert_eq!(
                (e.rule, e.message.as_str()),
                ("roles", "only an admin may manage registry credentials")
            );
        }
        assert!(may(Role::Admin, Action::ManageRegistries, "*", false).is_ok());
    }

    #[test]
    fn secrets_are_set_by_admins_and_listed_by_operators() {
        assert!(may(Role::Admin, Action::ManageSecrets, "*", false).is_ok());
        let e = may(Role::Operator, Action::ManageSecrets, "*", false).expect_err("admin only");
        assert_eq!((e.rule, e.message.as_str()), ("roles", "only an admin may set or remove secrets"));
        assert!(may(Role::Operator, Action::ReadSecrets, "*", false).is_ok());
        let e = may(Role::Viewer, Action::ReadSecrets, "*", false).expect_err("not viewers");
        assert_eq!(e.message, "only operators and admins may list secrets; you are viewer");
        assert!(!reads_plain_values(Role::Viewer));
        assert!(reads_plain_values(Role::Operator) && reads_plain_values(Role::Admin));
    }

    #[test]
    fn operators_use_the_allowed_secrets_only() {
        let refs = "secrets = [\"web-tls\", \"db-root\"]\nenv_secrets = { PW = \"db-app\", K = \"api\" }\n";
        // None by default.
        assert_eq!(
            refused(&policy(), refs),
            ["secrets allow-list", "secrets allow-list", "secrets allow-list", "secrets allow-list"]
        );
        let p = Policy { allowed_secrets: vec!["web-*".into(), "db-app".into()], ..policy() };
        let v = check(&p, None, &u(refs)).expect_err("refused");
        let keys: Vec<_> = v.iter().map(|x| x.key.clone().unwrap_or_default()).collect();
        assert_eq!(keys, ["container.secrets[1]", "container.env_secrets.K"]);
        assert_eq!(v[0].message, "cam: secret db-root is not in policy.allowed_secrets (web-*, db-app)");
        assert_eq!(v[0].fix.as_deref(), Some("add \"db-root\" to policy.allowed_secrets in c.toml"));
        let all = Policy { allowed_secrets: vec!["*".into()], ..policy() };
        assert!(check(&all, None, &u(refs)).is_ok());
        assert!(check_definition(Role::Admin, &policy(), None, &u(refs), &[]).is_ok());
        // Located in the text like the other rules.
        let text = format!("[container]\nimage = \"a\"\nversion = \"1\"\n{refs}");
        let after = unit::parse("cam", "cam.toml", &text).expect("valid");
        let mut v = check(&p, None, &after).expect_err("refused");
        locate(&mut v, "cam.toml", &text);
        let at: Vec<_> = v.iter().map(|x| x.location.clone().unwrap_or_default()).collect();
        assert_eq!(at, ["cam.toml:4:23", "cam.toml:5:36"]);
    }

    #[test]
    fn roles_and_protection() {
        assert!(may(Role::Viewer, Action::Read, "cam", true).is_ok());
        assert_eq!(may(Role::Viewer, Action::Restart, "cam", false).map_err(|v| v.rule), Err("roles"));
        assert!(may(Role::Operator, Action::Restart, "cam", true).is_ok());
        assert!(may(Role::Operator, Action::Start, "cam", true).is_ok());
        assert!(may(Role::Operator, Action::ResetFailed, "cam", true).is_ok());
        assert!(may(Role::Viewer, Action::ResetFailed, "cam", false).is_err());
        assert!(may(Role::Operator, Action::Stop, "cam", false).is_ok());
        let e = may(Role::Operator, Action::Stop, "cam", true).expect_err("protected");
        assert_eq!(
            e.to_string(),
            "service.protected: unit cam is protected: only an admin may stop it (rule: protected units); \
             to allow it, an admin can stop it, or set service.protected = false in the unit cam"
        );
        for action in [Action::Edit, Action::Revert, Action::Enable, Action::Disable, Action::Remove] {
            let e = may(Role::Operator, action, "cam", true).expect_err("protected");
            assert_eq!(e.rule, "protected units", "{action:?}");
            assert!(may(Role::Operator, action, "cam", false).is_ok(), "{action:?}");
            assert!(may(Role::Admin, action, "cam", true).is_ok(), "{action:?}");
        }
        assert_eq!(
            may(Role::Operator, Action::Revert, "cam", true).map_err(|v| v.message),
            Err("unit cam is protected: only an admin may revert it".into())
        );
    }

    #[test]
    fn staged_images_are_for_admins_only() {
        assert!(is_staged_image("10.0.0.1:5002/incoming/web"));
        assert!(is_staged_image("registry.local/incoming/web"));
        assert!(!is_staged_image("incoming/web"), "Docker Hub's user incoming is not the staging area");
        assert!(!is_staged_image("10.0.0.1:5002/web/incoming"));
        let p = policy();
        let staged = "[container]\nimage = \"10.0.0.1:5002/incoming/web\"\nversion = \"1\"\n";
        let unit = crate::unit::parse("cam", "cam.toml", staged).expect("valid");
        assert_eq!(rules(check(&p, None, &unit)), ["no staged images"]);
        assert!(check_definition(Role::Admin, &p, None, &unit, &[]).is_ok());
    }

    #[test]
    fn operators_are_held_to_the_allow_lists() {
        let p = policy();
        assert_eq!(rules(check(&p, None, &u(""))), Vec::<&str>::new());
        let ok = u("volumes = [\"/srv/containers/cam:/data\", \"cam:/x\", \"shared:cam:/y\"]\ndevices = [\"/dev/ttyUSB0\", \"/dev/video0\"]\n");
        assert!(check(&p, None, &ok).is_ok());
        let nnp = u("no_new_privileges = false\n");
        assert_eq!(rules(check(&p, None, &nnp)), ["no-new-privileges"]);
        assert!(check_definition(Role::Admin, &p, None, &nnp, &[]).is_ok());
        let bad = u("privileged = true\ncapabilities = [\"NET_ADMIN\"]\nnetwork = \"host\"\nvolumes = [\"/etc:/etc\", \"/srv/containersX:/x\"]\ndevices = [\"/dev/sda\", \"/dev/ttyUSB0/x\"]\n");
        assert_eq!(
            rules(check(&p, None, &bad)),
            [
                "no privileged mode",
                "no added capabilities",
                "no host network",
                "host paths allow-list",
                "host paths allow-list",
                "devices allow-list",
                "devices allow-list"
            ]
        );
        assert!(check_definition(Role::Admin, &p, None, &bad, &[]).is_ok());
        assert_eq!(rules(check_definition(Role::Viewer, &p, None, &ok, &[])), ["roles"]);
    }

    #[test]
    fn every_refusal_names_its_key_and_a_fix() {
        let p = policy();
        let bad = u("privileged = true\ncapabilities = [\"NET_ADMIN\"]\nnetwork = \"x\"\nvolumes = [\"/etc:/etc\", \"db:/d\", \"shared:db:/s\"]\n\
             devices = [\"/dev/sda\"]\nports = [\"22:22\", \"5001:1\"]\n[service]\nrequires = [\"poweroff.target\"]\nprotected = true\n");
        let v = check(&p, None, &bad).expect_err("refused");
        assert_eq!(v.len(), 11, "{v:#?}");
        for x in &v {
            assert!(x.key.is_some(), "{x}");
            assert!(x.fix.is_some(), "{x}");
        }
        let port = v.iter().find(|x| x.rule == "ports allow-list").expect("port");
        assert_eq!(port.key.as_deref(), Some("container.ports[0]"));
        assert_eq!(port.fix.as_deref(), Some("add 22 to policy.allowed_ports in c.toml"));
        let unit = v.iter().find(|x| x.rule == "units allow-list").expect("units");
        assert_eq!(unit.key.as_deref(), Some("service.requires[0]"));
        assert_eq!(unit.fix.as_deref(), Some("add \"poweroff.target\" to policy.allowed_units in c.toml"));
    }

    #[test]
    fn locations_come_from_the_text() {
        let text = "[container]\nimage = \"a\"\nversion = \"1\"\nports = [\"8080:80\", \"22:22\"]\n\
                    network = \"x\"\n[service]\nafter = [\"db\", \"sshd.service\"]\n";
        let after = unit::parse("cam", "cam.toml", text).expect("valid");
        let mut v = check(&policy(), None, &after).expect_err("refused");
        locate(&mut v, "/etc/containerctl/units/cam.toml", text);
        let at: Vec<_> = v.iter().map(|x| (x.rule, x.location.clone().unwrap_or_default())).collect();
        assert_eq!(
            at,
            [
                ("networks allow-list", "/etc/containerctl/units/cam.toml:5:11".to_owned()),
                ("units allow-list", "/etc/containerctl/units/cam.toml:7:16".to_owned()),
                ("ports allow-list", "/etc/containerctl/units/cam.toml:4:21".to_owned()),
            ]
        );
        assert!(
            v[2].to_string().starts_with("/etc/containerctl/units/cam.toml:4:21: cam: host port 22"),
            "{}",
            v[2]
        );
        // The line is quoted, for clients that do not have the text (`set`).
        assert_eq!(v[2].source_line.as_deref(), Some("ports = [\"8080:80\", \"22:22\"]"));
        assert_eq!(v[1].source_line.as_deref(), Some("after = [\"db\", \"sshd.service\"]"));
        // Inline tables and dotted keys are found too; a key that is not in the text stays unlocated.
        let text = "container = { image = \"a\", version = \"1\", ports = [\"80:80\"] }\n";
        let after = unit::parse("cam", "cam.toml", text).expect("valid");
        let mut v = check(&policy(), None, &after).expect_err("refused");
        locate(&mut v, "f", text);
        assert_eq!(v[0].location.as_deref(), Some("f:1:52"));
        let mut v = vec![Violation::new("x", "y".into()).key("service.protected")];
        locate(&mut v, "f", text);
        assert_eq!(v[0].location, None);
        assert_eq!(v[0].source_line, None);
    }

    #[test]
    fn dependencies_only_name_container_units_or_the_allow_list() {
        let p = policy();
        assert_eq!(p.allowed_units, DEFAULT_ALLOWED_UNITS);
        for ok in [
            "after = [\"db\", \"network-online.target\"]",
            "requires = [\"db\", \"containerctl@web.service\"]",
            "after = [\"time-sync.target\", \"nss-lookup.target\", \"network.target\"]",
        ] {
            assert_eq!(refused(&p, &format!("[service]\n{ok}\n")), Vec::<&str>::new(), "{ok}");
        }
        for bad in [
            "requires = [\"poweroff.target\"]",
            "after = [\"sshd.service\"]",
            "requires = [\"containerctld.service\"]",
            "requires = [\"containerctl@.service\"]",
            "requires = [\"containerctl@Web.service\"]",
            "requires = [\"containerctl-registry.service\"]",
            "requires = [\"var-lib-containerctl-shared.mount\"]",
            "after = [\"multi-user.target\"]",
        ] {
            assert_eq!(refused(&p, &format!("[service]\n{bad}\n")), ["units allow-list"], "{bad}");
        }
        let open = Policy { allowed_units: vec!["sshd.service".into()], ..policy() };
        assert!(check(&open, None, &u("[service]\nafter = [\"sshd.service\"]\n")).is_ok());
        assert!(check(&open, None, &u("[service]\nafter = [\"network-online.target\"]\n")).is_err());
        let admin = u("[service]\nrequires = [\"poweroff.target\"]\n");
        assert!(check_definition(Role::Admin, &p, None, &admin, &[]).is_ok());
    }

    #[test]
    fn ports_come_from_the_allow_list_and_never_the_daemons() {
        let p = policy();
        for ok in ["8080:80", "1024:1", "65535:1", "127.0.0.1:9000:9000/udp", "[::1]:7000:7000", "5003:5003"]
        {
            assert_eq!(refused(&p, &format!("ports = [\"{ok}\"]\n")), Vec::<&str>::new(), "{ok}");
        }
        for bad in ["22:22", "80:80", "1023:1", "0.0.0.0:443:443"] {
            assert_eq!(refused(&p, &format!("ports = [\"{bad}\"]\n")), ["ports allow-list"], "{bad}");
        }
        for bad in [
            "127.0.0.1:5000:80",
            "5000:80",
            "[::1]:5000:80",
            "5001:1",
            "5002:1",
            "2377:1",
            "7946:1/udp",
            "4789:1/udp",
            "24007:1",
            "24008:1",
            "49152:1",
            "49251:1",
        ] {
            assert_eq!(refused(&p, &format!("ports = [\"{bad}\"]\n")), ["reserved ports"], "{bad}");
        }
        for ok in ["24006:1", "24009:1", "49151:1", "49252:1"] {
            assert_eq!(refused(&p, &format!("ports = [\"{ok}\"]\n")), Vec::<&str>::new(), "{ok}");
        }
        let v = check(&p, None, &u("ports = [\"127.0.0.1:5000:80\"]\n")).expect_err("reserved");
        assert!(v[0].message.contains("containerctld's web page"), "{}", v[0]);
        assert_eq!(v[0].fix.as_deref(), Some("move http.listen to another port in c.toml"));
        // Reserved ports hold even when the allow-list names them; the daemon's follows http.listen.
        let wide = Policy {
            allowed_ports: vec![PortRange { start: 1, end: 65535 }],
            reserved_ports: Policy::reserved_ports(Some("127.0.0.1:8000".parse().expect("addr"))),
            ..policy()
        };
        assert_eq!(refused(&wide, "ports = [\"22:22\", \"5000:1\"]\n"), Vec::<&str>::new());
        assert_eq!(
            refused(&wide, "ports = [\"8000:1\", \"5001:1\"]\n"),
            ["reserved ports", "reserved ports"]
        );
        let narrow = Policy { allowed_ports: vec![PortRange { start: 8080, end: 8080 }], ..policy() };
        assert_eq!(refused(&narrow, "ports = [\"8080:1\", \"8081:1\"]\n"), ["ports allow-list"]);
        assert!(check_definition(Role::Admin, &p, None, &u("ports = [\"22:22\", \"5000:1\"]\n"), &[]).is_ok());
    }

    #[test]
    fn named_and_shared_volumes_belong_to_their_unit() {
        let p = policy();
        for ok in [
            "cam:/x",
            "cam-data:/x",
            "cam_cache:/x",
            "shared:cam:/x",
            "shared:cam-archive:/x:ro",
            "shared:cam_1:/x",
        ] {
            assert_eq!(refused(&p, &format!("volumes = [\"{ok}\"]\n")), Vec::<&str>::new(), "{ok}");
        }
        for bad in ["db:/x", "camera:/x", "ca:/x", "cam.x:/x", "dbdata:/x"] {
            assert_eq!(refused(&p, &format!("volumes = [\"{bad}\"]\n")), ["volume ownership"], "{bad}");
        }
        for bad in ["shared:db:/x", "shared:camera:/x", "shared:common:/x"] {
            assert_eq!(
                refused(&p, &format!("volumes = [\"{bad}\"]\n")),
                ["shared volume ownership"],
                "{bad}"
            );
        }
        let open = Policy {
            allowed_volumes: vec!["common".into()],
            allowed_shared: vec!["common".into()],
            ..policy()
        };
        assert!(check(&open, None, &u("volumes = [\"common:/x\", \"shared:common:/y\"]\n")).is_ok());
        // The lists are separate: a named volume allowed is not a shared name allowed.
        let named_only = Policy { allowed_volumes: vec!["common".into()], ..policy() };
        assert_eq!(refused(&named_only, "volumes = [\"shared:common:/y\"]\n"), ["shared volume ownership"]);
        // A unit `web` does not get the volumes of an existing unit `web-prod`.
        let web =
            unit_named("web", "volumes = [\"web-prod-data:/x\", \"web-cache:/y\", \"shared:web-prod:/z\"]\n");
        let others = ["web".to_owned(), "web-prod".to_owned()];
        let v = check_definition(Role::Operator, &p, None, &web, &others).expect_err("refused");
        assert_eq!(
            v.iter().map(|v| v.rule).collect::<Vec<_>>(),
            ["volume ownership", "shared volume ownership"]
        );
        assert!(v[0].message.contains("it belongs to unit web-prod"), "{}", v[0]);
        assert!(check_definition(Role::Operator, &p, None, &web, &["web".to_owned()]).is_ok());
        let prod = unit_named("web-prod", "volumes = [\"web-prod-data:/x\"]\n");
        assert!(check_definition(Role::Operator, &p, None, &prod, &others).is_ok());
        assert!(check_definition(Role::Admin, &p, None, &u("volumes = [\"db:/x\"]\n"), &[]).is_ok());
    }

    #[test]
    fn networks_come_from_the_allow_list() {
        let p = Policy { allowed_networks: vec!["frontend".into()], ..policy() };
        for ok in ["bridge", "none", "frontend"] {
            assert_eq!(refused(&p, &format!("network = \"{ok}\"\n")), Vec::<&str>::new(), "{ok}");
        }
        // A network by name, the host network by its ID, a prefix of an allowed name.
        for bad in ["backend", "3c1a7e2f9b0d", "front"] {
            assert_eq!(refused(&p, &format!("network = \"{bad}\"\n")), ["networks allow-list"], "{bad}");
        }
        assert_eq!(refused(&p, "network = \"host\"\n"), ["no host network"]);
        assert_eq!(refused(&policy(), "network = \"frontend\"\n"), ["networks allow-list"]);
        assert!(check_definition(Role::Admin, &policy(), None, &u("network = \"backend\"\n"), &[]).is_ok());
    }

    #[test]
    fn deploy_units_hold_on_every_host() {
        let p = policy();
        let d = "[deploy]\nreplicas = 2\n";
        assert_eq!(
            refused(&p, &format!("volumes = [\"/srv/containers/cam:/data\"]\n{d}")),
            ["deploy units are host-independent"]
        );
        assert_eq!(
            refused(&p, &format!("volumes = [\"shared:cam:/data\", \"cam:/c\"]\nports = [\"8080:80\"]\n{d}")),
            Vec::<&str>::new()
        );
        // Every other rule still applies.
        assert_eq!(
            refused(
                &p,
                &format!(
                    "volumes = [\"shared:db:/data\"]\nports = [\"5001:80\"]\nnetwork = \"ingress2\"\n{d}"
                )
            ),
            ["networks allow-list", "reserved ports", "shared volume ownership"]
        );
        let admin = u(&format!("volumes = [\"/srv/x:/data\"]\n{d}"));
        assert!(check_definition(Role::Admin, &p, None, &admin, &[]).is_ok());
    }

    #[test]
    fn protected_units_are_changed_by_admins_only() {
        let p = policy();
        let protected = u("[service]\nprotected = true\n");
        let unprotected = u("[service]\nprotected = false\n");
        let disabled = u("[service]\nprotected = true\nenabled = false\n");
        let new_args = u("args = [\"sh\"]\n[service]\nprotected = true\n");
        for after in [&unprotected, &disabled, &new_args, &protected] {
            assert_eq!(rules(check(&p, Some(&protected), after)), ["protected units"], "{after:?}");
            assert!(check_definition(Role::Admin, &p, Some(&protected), after, &[]).is_ok());
        }
        // Nobody but an admin makes a unit protected, new or not; unprotected units stay editable.
        assert_eq!(rules(check(&p, None, &protected)), ["protected units"]);
        assert_eq!(rules(check(&p, Some(&unprotected), &protected)), ["protected units"]);
        assert!(check(&p, Some(&unprotected), &u("args = [\"sh\"]\n")).is_ok());
    }
}
