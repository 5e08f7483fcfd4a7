//! What a daemon operation can fail with, in the domain's words. The transport decides what each
//! means on the wire (`api::error` maps every variant with an exhaustive match).

use crate::db::DbError;
use crate::diag::Diagnostic;
use crate::policy::Violation;
use crate::systemd::SystemdError;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The request itself is malformed (a bad unit name, an assignment that does not parse).
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (the unit exists, a vendor file).
    #[error("{0}")]
    Conflict(String),
    /// The policy refuses: every rule that applies is named.
    #[error("{message}")]
    Refused { message: String, violations: Vec<Violation> },
    /// The unit file does not validate; nothing was written.
    #[error("{message}")]
    Invalid { message: String, diagnostics: Vec<Diagnostic> },
    /// A systemd job ended, but not with `done`.
    #[error("{message}")]
    JobFailed { message: String, result: String, status_text: String, log: Vec<String> },
    /// A registry refused a credential (a login or a test), with its answer; nothing was stored.
    #[error("{0}")]
    RegistryRefused(String),
    /// A registry could not be asked about a credential (unreachable, its TLS certificate not
    /// trusted, dockerd failed): nothing was stored.
    #[error("{0}")]
    RegistryFailed(String),
    /// Something the operation needs (systemd, Docker) cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// A failure of the host (a file, the store): the detail is for the journal.
    #[error("{0}")]
    Internal(String),
}

impl OpError {
    /// A refusal by one rule, with the message every mutation gives.
    pub fn refused(v: Violation) -> OpError {
        OpError::Refused { message: "refused by the policy: nothing was changed".into(), violations: vec![v] }
    }
}

impl From<DbError> for OpError {
    fn from(e: DbError) -> Self {
        OpError::Internal(e.to_string())
    }
}

impl From<SystemdError> for OpError {
    fn from(e: SystemdError) -> Self {
        use SystemdError as E;
        match e {
            E::NoSuchUnit { unit } => OpError::NotFound(format!("systemd knows no unit {unit}")),
            E::Connect(_) | E::Disconnected { .. } | E::JobTimeout { .. } => {
                OpError::Unavailable(e.to_string())
            }
            E::Refused { .. } => OpError::Conflict(e.to_string()),
            E::AccessDenied { .. } | E::Bus { .. } => OpError::Internal(e.to_string()),
        }
    }
}
