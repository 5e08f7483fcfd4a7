//! What a unit requires, at a start: container units that cannot run (no unit file, or one that
//! does not validate) are named before systemd is asked, since systemd would start their template
//! instance, which fails and stays listed as failed; after a job that failed on a dependency the
//! failed ones are named. And `reset-failed`, which clears failed states, such as those of
//! instances without a file left by a start through systemctl.

use super::{Daemon, OpError};
use crate::policy::{self, Action, Caller};
use crate::unit::UnitName;
use crate::wire::ResetFailed;

impl Daemon {
    /// The container units `name` requires that have no valid unit file, each with the reason.
    pub(super) fn unrunnable_requirements(&self, name: &UnitName) -> Vec<String> {
        let Some(unit) = self.current_unit(name) else { return Vec::new() };
        let mut out = Vec::new();
        for required in &unit.service.requires {
            let Some(other) = crate::systemd::instance_of(required).and_then(|n| UnitName::new(n).ok())
            else {
                continue;
            };
            match self.definition(&other) {
                None => out.push(format!("{required}, but unit {other} has no unit file")),
                Some(d) if d.unit.is_err() => {
                    out.push(format!("{required}, but its unit file {} does not validate", d.path.display()));
                }
                Some(_) => {}
            }
        }
        out
    }

    /// After a job of `name` ended with result `dependency`: the units it requires that failed or
    /// do not exist, with the status text of each. A failed container instance without a unit file
    /// is reset, so it does not stay listed.
    pub(super) async fn failed_requirements(&self, name: &UnitName) -> Vec<String> {
        let Some(unit) = self.current_unit(name) else { return Vec::new() };
        let mut out = Vec::new();
        for required in &unit.service.requires {
            let Ok(state) = self.systemd.unit_state(required).await else { continue };
            if state.load_state == "not-found" {
                out.push(format!("{required} does not exist"));
            } else if state.active_state == "failed" {
                let why = if state.status_text.is_empty() {
                    state.result.clone()
                } else {
                    state.status_text.clone()
                };
                out.push(format!("{required} failed: {why}"));
                let phantom = crate::systemd::instance_of(required)
                    .and_then(|n| UnitName::new(n).ok())
                    .filter(|n| self.definition(n).is_none());
                if let Some(other) = phantom {
                    if let Err(e) = self.systemd.reset_failed(required).await {
                        tracing::warn!("cannot reset the failed state of {required}: {e}");
                    }
                    self.after_reset(&other).await;
                }
            }
        }
        out
    }

    /// `systemctl reset-failed` for `name`, or for every failed container unit when None.
    pub async fn reset_failed(
        &self,
        caller: &Caller,
        name: Option<&UnitName>,
    ) -> Result<ResetFailed, OpError> {
        let names: Vec<UnitName> = match name {
            Some(n) => {
                if self.view(n).is_none() {
                    return Err(super::ops::not_found(n));
                }
                vec![n.clone()]
            }
            None => self
                .units
                .read()
                .map(|u| {
                    u.iter()
                        .filter(|(_, s)| s.active_state == "failed")
                        .filter_map(|(n, _)| UnitName::new(n).ok())
                        .collect()
                })
                .unwrap_or_default(),
        };
        let verb = "reset-failed";
        let mut reset = Vec::new();
        for n in &names {
            policy::may(caller.role, Action::ResetFailed, n.as_str(), self.protected(n)).map_err(|v| {
                self.audit(caller, verb, Some(n.as_str()), None, None, &format!("refused: {v}"));
                OpError::refused(v)
            })?;
            let failed = self
                .units
                .read()
                .is_ok_and(|u| u.get(n.as_str()).is_some_and(|s| s.active_state == "failed"));
            if let Err(e) = self.systemd.reset_failed(&n.service()).await {
                self.audit(caller, verb, Some(n.as_str()), None, None, &format!("failed: {e}"));
                return Err(e.into());
            }
            self.after_reset(n).await;
            self.audit(caller, verb, Some(n.as_str()), None, None, "ok");
            if failed {
                reset.push(n.to_string());
            }
        }
        Ok(ResetFailed { reset })
    }

    /// The state after a reset-failed. An instance without a unit file is forgotten: systemd
    /// unloads it, and reading its state would load it again and keep it listed.
    async fn after_reset(&self, name: &UnitName) {
        if self.definition(name).is_some() {
            self.refresh(name).await;
            return;
        }
        self.listing.unit_changed(name.as_str());
        if let Ok(mut units) = self.units.write() {
            units.remove(name.as_str());
        }
        self.listing.unit_changed(name.as_str());
        self.changed();
    }
}
