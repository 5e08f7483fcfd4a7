//! Who may do what (pure). Roles come from the caller's credentials; the rules come from
//! DESIGN.md and the allow-lists from containerctl.toml. Every refusal names its rule.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Policy;
use crate::unit::{Unit, VolumeSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    Remove,
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
            Action::Remove => "remove",
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
        Action::Stop | Action::Disable | Action::Remove if protected => Role::Admin,
        Action::Start
        | Action::Restart
        | Action::Stop
        | Action::Enable
        | Action::Disable
        | Action::Edit
        | Action::Remove
        | Action::PushImage => Role::Operator,
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
        | Action::RevokeJoinToken => Role::Admin,
    }
}

/// A refusal: the rule that applies and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rule: {})", self.message, self.rule)
    }
}

fn violation(rule: &'static str, message: String) -> Violation {
    Violation { rule, message }
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
        Action::ReadAudit | Action::ManageTokens | Action::LoginLink | Action::RotateKeys
    ) {
        format!("only an admin may {what}")
    } else if needed == Role::Admin {
        return Err(violation(
            "protected units",
            format!("unit {unit} is protected: only an admin may {what} it"),
        ));
    } else {
        format!("a {role} may not {what} units: ask an operator or admin")
    };
    Err(violation("roles", message))
}

/// Checks a definition a `role` wants to write, replacing `before` (None for a new unit).
/// Host paths must already be resolved (symlinks followed) by the caller.
pub fn check_definition(
    role: Role,
    policy: &Policy,
    before: Option<&Unit>,
    after: &Unit,
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
    let c = &after.container;
    if c.privileged {
        v.push(violation("no privileged mode", format!("{name}: only an admin may set privileged = true")));
    }
    if !c.no_new_privileges {
        v.push(violation(
            "no-new-privileges",
            format!("{name}: only an admin may set no_new_privileges = false"),
        ));
    }
    for cap in &c.capabilities {
        v.push(violation("no added capabilities", format!("{name}: only an admin may add capability {cap}")));
    }
    if c.network.as_deref() == Some("host") {
        v.push(violation("no host network", format!("{name}: only an admin may set network = \"host\"")));
    }
    for vol in &c.volumes {
        if let VolumeSource::Host(p) = &vol.source {
            if !under_any(p, &policy.allowed_host_paths) {
                v.push(violation(
                    "host paths allow-list",
                    format!(
                        "{name}: host path {} is not in policy.allowed_host_paths{}",
                        p.display(),
                        list(policy.allowed_host_paths.iter().map(|p| p.display().to_string()))
                    ),
                ));
            }
        }
    }
    for d in &c.devices {
        let host = d.host.display().to_string();
        if !policy.allowed_devices.iter().any(|pattern| device_matches(pattern, &host)) {
            v.push(violation(
                "devices allow-list",
                format!(
                    "{name}: device {host} is not in policy.allowed_devices{}",
                    list(policy.allowed_devices.iter().cloned())
                ),
            ));
        }
    }
    let was_protected = before.is_some_and(|b| b.service.protected);
    if was_protected != after.service.protected {
        v.push(violation("protected units", format!("{name}: only an admin may change protected")));
    }
    if was_protected && before.is_some_and(|b| b.service.enabled) && !after.service.enabled {
        v.push(violation(
            "protected units",
            format!("unit {name} is protected: only an admin may disable it"),
        ));
    }
    if v.is_empty() {
        Ok(())
    } else {
        Err(v)
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
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
    use crate::unit;

    fn u(extra: &str) -> Unit {
        let text = format!("[container]\nimage = \"a\"\nversion = \"1\"\n{extra}");
        unit::parse("cam", "cam.toml", &text).expect("valid test unit")
    }

    fn policy() -> Policy {
        Policy {
            allowed_host_paths: vec![PathBuf::from("/srv/containers")],
            allowed_devices: vec!["/dev/ttyUSB*".into(), "/dev/video0".into()],
        }
    }

    fn rules(r: Result<(), Vec<Violation>>) -> Vec<&'static str> {
        r.err().unwrap_or_default().into_iter().map(|v| v.rule).collect()
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
    fn roles_and_protection() {
        assert!(may(Role::Viewer, Action::Read, "cam", true).is_ok());
        assert_eq!(may(Role::Viewer, Action::Restart, "cam", false).map_err(|v| v.rule), Err("roles"));
        assert!(may(Role::Operator, Action::Restart, "cam", true).is_ok());
        assert!(may(Role::Operator, Action::Stop, "cam", false).is_ok());
        let e = may(Role::Operator, Action::Stop, "cam", true).expect_err("protected");
        assert_eq!(e.to_string(), "unit cam is protected: only an admin may stop it (rule: protected units)");
        assert!(may(Role::Admin, Action::Remove, "cam", true).is_ok());
    }

    #[test]
    fn operators_are_held_to_the_allow_lists() {
        let p = policy();
        assert_eq!(rules(check_definition(Role::Operator, &p, None, &u(""))), Vec::<&str>::new());
        let ok = u("volumes = [\"/srv/containers/cam:/data\", \"data:/x\", \"shared:cam:/y\"]\ndevices = [\"/dev/ttyUSB0\", \"/dev/video0\"]\n");
        assert!(check_definition(Role::Operator, &p, None, &ok).is_ok());
        let nnp = u("no_new_privileges = false\n");
        assert_eq!(rules(check_definition(Role::Operator, &p, None, &nnp)), ["no-new-privileges"]);
        assert!(check_definition(Role::Admin, &p, None, &nnp).is_ok());
        let bad = u("privileged = true\ncapabilities = [\"NET_ADMIN\"]\nnetwork = \"host\"\nvolumes = [\"/etc:/etc\", \"/srv/containersX:/x\"]\ndevices = [\"/dev/sda\", \"/dev/ttyUSB0/x\"]\n");
        assert_eq!(
            rules(check_definition(Role::Operator, &p, None, &bad)),
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
        assert!(check_definition(Role::Admin, &p, None, &bad).is_ok());
        assert_eq!(rules(check_definition(Role::Viewer, &p, None, &ok)), ["roles"]);
    }

    #[test]
    fn operators_cannot_unprotect_or_disable_protected_units() {
        let p = policy();
        let protected = u("[service]\nprotected = true\n");
        let unprotected = u("[service]\nprotected = false\n");
        let disabled = u("[service]\nprotected = true\nenabled = false\n");
        assert_eq!(
            rules(check_definition(Role::Operator, &p, Some(&protected), &unprotected)),
            ["protected units"]
        );
        assert_eq!(
            rules(check_definition(Role::Operator, &p, Some(&protected), &disabled)),
            ["protected units"]
        );
        assert!(check_definition(Role::Operator, &p, Some(&protected), &protected).is_ok());
    }
}
