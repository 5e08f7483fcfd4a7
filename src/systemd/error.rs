//! [`SystemdError`], and how the error of a failed D-Bus call to systemd maps onto it: the
//! refusals systemd names (no such unit, access denied, ...) apart from a lost connection, which
//! ends a watch.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot connect to systemd on the system bus: {0}")]
    Connect(#[source] zbus::Error),
    #[error("no such unit {unit}")]
    NoSuchUnit { unit: String },
    #[error("systemd denied access to {action}: {message} (containerctld must run as root)")]
    AccessDenied { action: String, message: String },
    #[error("systemd refused to {action}: {message}")]
    Refused { action: String, error: String, message: String },
    #[error("gave up waiting after {}s for systemd to {action}; the job may still be running", .after.as_secs())]
    JobTimeout { action: String, after: Duration },
    #[error("lost the connection to systemd while trying to {action}")]
    Disconnected { action: String },
    #[error("d-bus call to systemd failed while trying to {action}: {source}")]
    Bus {
        action: String,
        #[source]
        source: zbus::Error,
    },
}

impl SystemdError {
    pub(super) fn from_bus(action: &str, unit: Option<&str>, err: zbus::Error) -> Self {
        if let zbus::Error::MethodError(name, message, _) = &err {
            let message = message.clone().unwrap_or_default();
            match name.as_str() {
                "org.freedesktop.systemd1.NoSuchUnit" => {
                    // A start refused because a unit it requires does not exist: systemd's
                    // message names that unit, which the caller did not ask for.
                    return match not_found_unit(&message) {
                        Some(missing) if Some(missing) != unit => SystemdError::Refused {
                            action: action.to_owned(),
                            error: name.to_string(),
                            message: format!("it requires {missing}, which does not exist"),
                        },
                        _ => SystemdError::NoSuchUnit { unit: unit.unwrap_or_default().to_owned() },
                    };
                }
                "org.freedesktop.DBus.Error.AccessDenied"
                | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
                    return SystemdError::AccessDenied { action: action.to_owned(), message };
                }
                n if n.starts_with("org.freedesktop.systemd1.")
                    || n == "org.freedesktop.DBus.Error.InvalidArgs" =>
                {
                    return SystemdError::Refused { action: action.to_owned(), error: n.to_owned(), message };
                }
                _ => {}
            }
        }
        match err {
            zbus::Error::InputOutput(_) => SystemdError::Disconnected { action: action.to_owned() },
            source => SystemdError::Bus { action: action.to_owned(), source },
        }
    }

    pub(super) fn ends_watch(&self) -> bool {
        matches!(self, SystemdError::Disconnected { .. } | SystemdError::Connect(_))
    }
}

/// The unit of systemd's "Unit NAME not found." message.
fn not_found_unit(message: &str) -> Option<&str> {
    message.strip_prefix("Unit ")?.trim_end_matches('.').strip_suffix(" not found")
}
