//! The watch of an update (or of its rollback): the unit restarted, it and the units that
//! require it up within their start timeouts, then the soak, in which any sign of another run or
//! of bad health fails the update.

use std::time::Duration;

use super::{Daemon, OpError};
use crate::policy::{Action, Caller};
use crate::progress::Progress;
use crate::systemd::UnitState;
use crate::unit::UnitName;

impl Daemon {
    /// Restarts `name` (systemd restarts the units that require it), waits for it and them to
    /// be up, then watches it for `soak`. The failure's reason and the invocation that failed.
    pub(super) async fn run_and_watch(
        &self,
        caller: &Caller,
        name: &UnitName,
        soak: Duration,
        before: &[(String, String)],
        p: &Progress,
    ) -> Result<(), (String, Option<String>)> {
        p.step("restart", "running", format!("restarting {}", name.service()));
        let started = tokio::time::Instant::now();
        if let Err(e) = self.job(caller, name, Action::Restart).await {
            let state = self.systemd.unit_state(&name.service()).await.ok();
            let reason = match e {
                OpError::JobFailed { status_text, result, .. } if !status_text.is_empty() => {
                    format!("the start ended with result {result}: {status_text}")
                }
                other => format!("the start failed: {other}"),
            };
            return Err((reason, state.map(|s| s.invocation_id).filter(|i| !i.is_empty())));
        }
        let baseline = match self.systemd.unit_state(&name.service()).await {
            Ok(s) => s,
            Err(e) => return Err((format!("cannot read its state: {e}"), None)),
        };
        let invocation = Some(baseline.invocation_id.clone()).filter(|i| !i.is_empty());
        p.step(
            "restart",
            "done",
            format!("{} is ready after {:.1}s", name.service(), started.elapsed().as_secs_f64()),
        );
        if let Err(reason) = self.dependants_up(caller, before, p).await {
            return Err((reason, invocation));
        }
        if soak.is_zero() {
            return self.confirmed_failure(name, &baseline).await.map_or(Ok(()), |r| Err((r, invocation)));
        }
        p.step("soak", "running", format!("watching {name} for {}", crate::unit::systemd_duration(soak)));
        match self.soak(name, &baseline, soak).await {
            Ok(()) => {
                p.step(
                    "soak",
                    "done",
                    format!("{name} stayed up for {}", crate::unit::systemd_duration(soak)),
                );
                Ok(())
            }
            Err(reason) => Err((reason, invocation)),
        }
    }

    /// The InvocationID of each active unit of `names`.
    pub(super) async fn invocations(&self, names: &[String]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for n in names {
            if let Ok(s) = self.systemd.unit_state(&format!("containerctl@{n}.service")).await {
                if s.active_state == "active" {
                    out.push((n.clone(), s.invocation_id));
                }
            }
        }
        out
    }

    /// Waits until every dependant that ran before runs again in a new invocation; one systemd
    /// did not restart with its requirement is restarted here, nearest first.
    pub(super) async fn dependants_up(
        &self,
        caller: &Caller,
        before: &[(String, String)],
        p: &Progress,
    ) -> Result<(), String> {
        for (n, old) in before {
            let Ok(unit) = UnitName::new(n) else { continue };
            let service = unit.service();
            let deadline = tokio::time::Instant::now() + self.start_timeout(&unit);
            let mut restarted = false;
            loop {
                let s = self
                    .systemd
                    .unit_state(&service)
                    .await
                    .map_err(|e| format!("cannot read the state of {service}: {e}"))?;
                if s.invocation_id != *old && s.active_state == "active" {
                    p.step(
                        "dependants",
                        "done",
                        format!("{service} restarted{}", if restarted { " (by containerctl)" } else { "" }),
                    );
                    break;
                }
                if s.invocation_id != *old && s.active_state == "failed" {
                    return Err(format!("{service}, which requires it, failed: {}", s.status_text));
                }
                let settled = matches!(s.active_state.as_str(), "active" | "inactive" | "failed");
                if settled && !restarted {
                    // systemd did not restart it with its requirement: still the old run (nothing
                    // told systemd to), or down because the requirement's start failed before.
                    restarted = true;
                    p.step("dependants", "running", format!("restarting {service}"));
                    if let Err(e) = self.job(caller, &unit, Action::Restart).await {
                        return Err(format!("{service}, which requires it, did not restart: {e}"));
                    }
                    continue;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{service}, which requires it, is {} after {}s",
                        s.active_state,
                        self.start_timeout(&unit).as_secs()
                    ));
                }
                self.wait_change(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    pub(super) fn start_timeout(&self, name: &UnitName) -> Duration {
        self.current_unit(name).map_or(Duration::from_secs(90), |u| crate::generator::start_timeout(&u))
    }

    /// Returns at the next state change the daemon hears of, or after `at_most`.
    pub(super) async fn wait_change(&self, at_most: Duration) {
        let mut rx = self.changes.subscribe();
        let _ = tokio::time::timeout(at_most, rx.changed()).await;
    }

    /// Watches `name` for `soak` from `baseline` (its state right after it became ready). The
    /// daemon's live view (systemd's signals, Docker's events) wakes it; what it says is confirmed
    /// with systemd and Docker themselves, since a signal or an event about the run before can
    /// arrive late. Signals can also be missed (a reload drops them): it asks every second too.
    pub(super) async fn soak(
        &self,
        name: &UnitName,
        baseline: &UnitState,
        soak: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + soak;
        let mut rx = self.changes.subscribe();
        loop {
            let ask = tokio::select! {
                _ = rx.changed() => self.cached_failure(name, baseline).is_some(),
                () = tokio::time::sleep(Duration::from_secs(1)) => true,
                () = tokio::time::sleep_until(deadline) => break,
            };
            if ask {
                if let Some(reason) = self.confirmed_failure(name, baseline).await {
                    return Err(reason);
                }
            }
        }
        self.confirmed_failure(name, baseline).await.map_or(Ok(()), Err)
    }

    /// What the daemon's live view says of the run, if it says it failed.
    pub(super) fn cached_failure(&self, name: &UnitName, baseline: &UnitState) -> Option<String> {
        let state = self.units.read().ok()?.get(name.as_str()).cloned()?;
        let health = self.live.read().ok().and_then(|l| l.get(name.as_str()).and_then(|l| l.health.clone()));
        soak_verdict(&state, health.as_deref(), baseline)
    }

    /// Why the run that became ready is over or unhealthy, read from systemd and Docker now.
    pub(super) async fn confirmed_failure(&self, name: &UnitName, baseline: &UnitState) -> Option<String> {
        let state = match self.systemd.unit_state(&name.service()).await {
            Ok(s) => s,
            Err(e) => return Some(format!("cannot read its state: {e}")),
        };
        self.apply_state(name.as_str(), state.clone());
        let health = self.container_health(name).await;
        soak_verdict(&state, health.as_deref(), baseline)
    }
}

/// Why `state` (with the container's `health`) is not the run `baseline` that became ready, if it
/// is not: systemd restarted it (NRestarts), something else did (InvocationID), it left the
/// active state, or its container turned unhealthy.
fn soak_verdict(state: &UnitState, health: Option<&str>, baseline: &UnitState) -> Option<String> {
    if state.n_restarts > baseline.n_restarts {
        return Some(format!(
            "it exited and systemd restarted it (restart #{}, status {}{})",
            state.n_restarts,
            state.exec_main_status,
            status_suffix(state)
        ));
    }
    if !state.invocation_id.is_empty() && state.invocation_id != baseline.invocation_id {
        return Some("it was restarted during the soak".into());
    }
    if state.active_state != "active" {
        return Some(format!(
            "it left the active state ({}/{}, result {}{})",
            state.active_state,
            state.sub_state,
            state.result,
            status_suffix(state)
        ));
    }
    if health == Some("unhealthy") {
        return Some("its container turned unhealthy".into());
    }
    None
}

fn status_suffix(s: &UnitState) -> String {
    if s.status_text.is_empty() {
        String::new()
    } else {
        format!(": {}", s.status_text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soak_fails_on_any_sign_of_another_run_or_bad_health() {
        let base = UnitState {
            active_state: "active".into(),
            sub_state: "running".into(),
            n_restarts: 1,
            invocation_id: "aa".into(),
            ..UnitState::default()
        };
        assert_eq!(soak_verdict(&base, Some("healthy"), &base), None);
        assert_eq!(soak_verdict(&base, None, &base), None);
        let restarted =
            UnitState { n_restarts: 2, exec_main_status: 123, invocation_id: "bb".into(), ..base.clone() };
        assert!(soak_verdict(&restarted, None, &base).is_some_and(|r| r.contains("restart #2, status 123")));
        let other = UnitState { invocation_id: "bb".into(), ..base.clone() };
        assert!(soak_verdict(&other, None, &base).is_some_and(|r| r.contains("restarted during the soak")));
        let failed = UnitState { active_state: "failed".into(), result: "exit-code".into(), ..base.clone() };
        assert!(soak_verdict(&failed, None, &base)
            .is_some_and(|r| r.contains("failed/running, result exit-code")));
        assert!(soak_verdict(&base, Some("unhealthy"), &base).is_some_and(|r| r.contains("unhealthy")));
    }
}
