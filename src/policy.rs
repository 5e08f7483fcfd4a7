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

/// What a request wants to do to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Start,
    Restart,
    Stop,
    Enable,
    Disable,
    Edit,
    Remove,
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

/// May `role` do `action` to a unit that is `protected`?
pub fn may(role: Role, action: Action, unit: &str, protected: bool) -> Result<(), Violation> {
    let needed = match action {
        Action::Read => Role::Viewer,
        Action::Stop | Action::Disable | Action::Remove if protected => Role::Admin,
        _ => Role::Operator,
    };
    if role >= needed {
        return Ok(());
    }
    let what = match action {
        Action::Read => "read",
        Action::Start => "start",
        Action::Restart => "restart",
        Action::Stop => "stop",
        Action::Enable => "enable",
        Action::Disable => "disable",
        Action::Edit => "edit",
        Action::Remove => "remove",
    };
    if needed == Role::Admin {
        Err(violation("protected units", format!("unit {unit} is protected: only an admin may {what} it")))
    } else {
        Err(violation("roles", format!("a {role} may not {what} units: ask an operator or admin")))
    }
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
