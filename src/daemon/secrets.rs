//! Setting, removing and listing secrets (`crate::secrets` holds the values, the database their
//! sizes and dates). Admins set and remove them, operators list them; nobody reads a value back.
//! Every change is audited with the secret's name and size, never its value.

use std::collections::BTreeMap;

use super::{Daemon, OpError};
use crate::policy::{self, Action, Caller};
use crate::secrets::{SecretError, SecretName};
use crate::time::now_ms;
use crate::wire::{SecretInfo, SecretRemoved, SecretSet};

impl Daemon {
    /// The policy's answer for a secret verb; a refused change is audited.
    pub fn allow_secrets(&self, caller: &Caller, action: Action, what: &str) -> Result<(), OpError> {
        policy::may(caller.role, action, "*", false).map_err(|v| {
            if action == Action::ManageSecrets {
                self.audit(caller, what, None, None, None, &format!("refused: {v}"));
            }
            OpError::refused(v)
        })
    }

    /// Secret NAME → the units whose files reference it, for every unit file of the search path.
    pub fn secret_users(&self) -> BTreeMap<String, Vec<String>> {
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (unit, def) in self.definitions() {
            for secret in crate::unit::referenced_secrets(&def.text) {
                users.entry(secret).or_default().push(unit.to_string());
            }
        }
        users
    }

    pub fn secret_list(&self, caller: &Caller) -> Result<Vec<SecretInfo>, OpError> {
        self.allow_secrets(caller, Action::ReadSecrets, "secret list")?;
        let stored = self.secrets.list().map_err(|e| OpError::Internal(e.to_string()))?;
        let records: BTreeMap<String, crate::db::SecretRecord> =
            self.db().secrets()?.into_iter().map(|r| (r.name.clone(), r)).collect();
        let mut users = self.secret_users();
        Ok(stored
            .into_iter()
            .map(|s| {
                let record = records.get(s.name.as_str());
                SecretInfo {
                    name: s.name.to_string(),
                    size: s.size,
                    // A file copied in by hand has no record: its own date is all there is.
                    created_at_ms: record.map_or(s.modified_ms, |r| r.created_at_ms),
                    updated_at_ms: record.map_or(s.modified_ms, |r| r.updated_at_ms),
                    updated_by: record.map(|r| r.updated_by.clone()),
                    units: users.remove(s.name.as_str()).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Stores `value` as secret `name` (new or replaced). Units that use it get it at their next
    /// start; none is restarted.
    pub async fn secret_set(&self, caller: &Caller, name: &str, value: &[u8]) -> Result<SecretSet, OpError> {
        self.allow_secrets(caller, Action::ManageSecrets, "secret set")?;
        let name = secret_name(name)?;
        crate::secrets::check_value(value)
            .map_err(|e| OpError::InvalidInput(format!("secret {name}: {e}")))?;
        // The write lock: a secret changes between two unit edits, never during one.
        let _guard = self.write_lock.lock().await;
        let replaced =
            self.secrets.set(&name, value).map_err(|e| self.store_failed(caller, "secret set", e))?;
        let size = value.len() as u64;
        self.db().record_secret(name.as_str(), size, now_ms(), &caller.actor)?;
        let how = if replaced { "replaced" } else { "created" };
        self.audit(
            caller,
            "secret set",
            None,
            None,
            None,
            &format!("ok: secret {name} ({size} bytes) {how}"),
        );
        let units = self.secret_users().remove(name.as_str()).unwrap_or_default();
        Ok(SecretSet { name: name.to_string(), size, created: !replaced, units })
    }

    /// Removes secret `name`. Refused while a unit file references it, unless `force`: then those
    /// units fail at their next start (exit 78, naming the secret).
    pub async fn secret_remove(
        &self,
        caller: &Caller,
        name: &str,
        force: bool,
    ) -> Result<SecretRemoved, OpError> {
        self.allow_secrets(caller, Action::ManageSecrets, "secret rm")?;
        let name = secret_name(name)?;
        let _guard = self.write_lock.lock().await;
        if !self.secrets.exists(&name) {
            return Err(OpError::NotFound(format!(
                "no secret {name}: list them with containerctl secret list"
            )));
        }
        let units = self.secret_users().remove(name.as_str()).unwrap_or_default();
        if !units.is_empty() && !force {
            let message = format!(
                "secret {name} is used by {}: remove it from their files first, or remove it anyway with --force \
                 (they then fail at their next start): nothing was changed",
                units_phrase(&units)
            );
            self.audit(
                caller,
                "secret rm",
                None,
                None,
                None,
                &format!("refused: secret {name} is in use by {}", units.join(", ")),
            );
            return Err(OpError::Conflict(message));
        }
        let size = std::fs::metadata(self.secrets.path(&name)).map_or(0, |m| m.len());
        self.secrets.remove(&name).map_err(|e| self.store_failed(caller, "secret rm", e))?;
        self.db().forget_secret(name.as_str())?;
        let result = if units.is_empty() {
            format!("ok: secret {name} ({size} bytes) removed")
        } else {
            format!(
                "ok: secret {name} ({size} bytes) removed (forced) while units {} use it",
                units.join(", ")
            )
        };
        self.audit(caller, "secret rm", None, None, None, &result);
        Ok(SecretRemoved { name: name.to_string(), removed: true, units })
    }

    fn store_failed(&self, caller: &Caller, what: &str, e: SecretError) -> OpError {
        self.audit(caller, what, None, None, None, &format!("failed: {e}"));
        OpError::Internal(e.to_string())
    }

    /// The warnings a saved (or previewed) unit file deserves: credentials in plain `env`, and
    /// secrets it references that are not set yet (told only to who may list secrets, so that a
    /// viewer's preview cannot probe for names).
    pub(super) fn definition_warnings(
        &self,
        caller: &Caller,
        file: &str,
        text: &str,
        unit: &crate::unit::Unit,
    ) -> Vec<String> {
        let mut out: Vec<String> =
            crate::unit::redact::warnings(file, text).iter().map(ToString::to_string).collect();
        if policy::may(caller.role, Action::ReadSecrets, "*", false).is_err() {
            return out;
        }
        for name in unit.secrets.names() {
            if !self.secrets.exists(name) {
                out.push(format!(
                    "{file}: secret {name} is not set: {} fails to start until an admin runs `containerctl secret set {name}`",
                    unit.name
                ));
            }
        }
        out
    }
}

fn secret_name(raw: &str) -> Result<SecretName, OpError> {
    SecretName::new(raw).map_err(OpError::InvalidInput)
}

fn units_phrase(units: &[String]) -> String {
    match units {
        [one] => format!("unit {one}"),
        many => format!("units {}", many.join(", ")),
    }
}
