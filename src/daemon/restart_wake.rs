//! Restarts on time: when a unit enters `auto-restart`, systemd arms its restart timer for
//! RestartSec= later, but with sd-event's default accuracy of 250 ms, so the restart runs at the
//! next slot of a 250 ms grid after that (on average 125 ms late, up to 250 ms; a 100 ms
//! `restart_sec` becomes 100-350 ms). systemd runs a due timer at any wake-up of its event loop,
//! so the daemon wakes it when the delay has passed, with a call that changes nothing
//! ([`crate::systemd::Systemd::wake`]). systemd still decides and performs the restart (its
//! restart counter, start limit and `Restart=` rules are untouched); without the daemon, restarts
//! happen as before, on the grid.

use std::time::{Duration, SystemTime};

use super::Daemon;
use crate::systemd::UnitState;

/// After the restart is due: the daemon's timestamps come from systemd's realtime clock and its
/// own, and a wake-up a little before the timer is due would be wasted.
const MARGIN: Duration = Duration::from_millis(2);
/// Restart delays longer than this are not worth a task: the grid adds at most 250 ms.
const LONGEST: Duration = Duration::from_secs(600);

/// How long from `now_us` until the restart of a unit that entered auto-restart at
/// `entered_us` (both CLOCK_REALTIME µs) with RestartUSec `restart_us` is due, plus
/// [`MARGIN`]; None when the delay is too long to bother. Pure.
pub fn wake_in(entered_us: u64, restart_us: u64, now_us: u64) -> Option<Duration> {
    if restart_us > u64::try_from(LONGEST.as_micros()).unwrap_or(u64::MAX) {
        return None;
    }
    let due = entered_us.saturating_add(restart_us);
    // A timestamp from the future (clocks) never means a wait longer than the delay itself.
    let wait = Duration::from_micros(due.saturating_sub(now_us).min(restart_us));
    Some(wait + MARGIN)
}

impl Daemon {
    /// `state` entered auto-restart (it was not in it before): wakes systemd when its restart is
    /// due.
    pub(super) fn wake_for_restart(&self, state: &UnitState) {
        let now_us = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let entered = if state.state_change_us > 0 { state.state_change_us } else { now_us };
        let Some(wait) = wake_in(entered, state.restart_us, now_us) else { return };
        let systemd = self.systemd.clone();
        let unit = state.unit.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Err(e) = systemd.wake().await {
                tracing::debug!("cannot wake systemd for the restart of {unit}: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wake_up_is_when_the_restart_is_due() {
        let ms = |n: u64| n * 1000;
        // Entered 30 ms ago with a 100 ms delay: due in 70 ms.
        assert_eq!(wake_in(ms(1000), ms(100), ms(1030)), Some(Duration::from_millis(70) + MARGIN));
        // The signal came late: wake now.
        assert_eq!(wake_in(ms(1000), ms(100), ms(1500)), Some(MARGIN));
        // RestartSec=0 also waits for the grid without a wake-up.
        assert_eq!(wake_in(ms(1000), 0, ms(1000)), Some(MARGIN));
        // A state change stamped in the future waits no longer than the delay.
        assert_eq!(wake_in(ms(9000), ms(100), ms(1000)), Some(Duration::from_millis(100) + MARGIN));
        assert_eq!(wake_in(ms(1000), ms(601_000), ms(1000)), None);
    }
}
