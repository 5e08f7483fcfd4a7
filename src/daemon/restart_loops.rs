//! Telling a restart loop from a restart: systemd counts a unit's automatic restarts (NRestarts)
//! and the daemon sees the count grow in its signals. [`LOOP_RESTARTS`] of them within
//! [`LOOP_WINDOW`] is a loop, said once; it is over once the unit went that long without a
//! restart, or stopped or failed. systemd's own start limit (5 starts in 10 s by default) only
//! stops units that restart faster than `restart_sec` allows for most units, so it cannot be the
//! signal.

use std::collections::{HashMap, VecDeque};

use super::{Daemon, NoticeKind};
use crate::systemd::UnitState;
use crate::webhook::{LOOP_RESTARTS, LOOP_WINDOW};

#[derive(Debug, Default)]
pub struct RestartLoops {
    /// Per unit: when its recent restarts happened, and whether a loop was said.
    units: HashMap<String, (VecDeque<i64>, bool)>,
}

impl RestartLoops {
    /// `count` more restarts of `unit` at `at_ms`; the restarts in the window when this starts a
    /// loop.
    pub fn restarted(&mut self, unit: &str, count: u32, at_ms: i64) -> Option<usize> {
        let window = i64::try_from(LOOP_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let (times, looping) = self.units.entry(unit.to_owned()).or_default();
        while times.front().is_some_and(|t| at_ms - t > window) {
            times.pop_front();
        }
        if times.is_empty() {
            *looping = false;
        }
        for _ in 0..count.min(64) {
            times.push_back(at_ms);
        }
        while times.len() > LOOP_RESTARTS {
            times.pop_front();
        }
        if times.len() >= LOOP_RESTARTS && !*looping {
            *looping = true;
            return Some(times.len());
        }
        None
    }

    /// `unit` stopped or failed: whatever comes next starts afresh.
    pub fn settled(&mut self, unit: &str) {
        self.units.remove(unit);
    }
}

impl Daemon {
    pub(super) fn restarted(&self, name: &str, count: u32, state: &UnitState, at_ms: i64) {
        let looping = self.restart_loops.lock().map(|mut r| r.restarted(name, count, at_ms)).unwrap_or(None);
        if let Some(n) = looping {
            let detail = format!(
                "{n} automatic restarts within {} min (restart #{}); last run: {}, status {}",
                LOOP_WINDOW.as_secs() / 60,
                state.n_restarts,
                state.result,
                state.exec_main_status
            );
            self.notice(NoticeKind::RestartLoop, name, detail);
        }
    }

    pub(super) fn settled(&self, name: &str) {
        if let Ok(mut r) = self.restart_loops.lock() {
            r.settled(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn a_loop_is_said_once_and_again_after_a_quiet_window() {
        let mut r = RestartLoops::default();
        assert_eq!(r.restarted("web", 1, 0), None);
        assert_eq!(r.restarted("web", 1, MIN), None);
        assert_eq!(r.restarted("web", 1, 2 * MIN), Some(3));
        assert_eq!(r.restarted("web", 1, 3 * MIN), None, "the same loop");
        assert_eq!(r.restarted("web", 1, 4 * MIN), None);
        // Quiet for longer than the window: the next restarts are a new story.
        assert_eq!(r.restarted("web", 1, 10 * MIN), None);
        assert_eq!(r.restarted("web", 2, 11 * MIN), Some(3), "NRestarts may grow by more than one");
        assert_eq!(r.restarted("db", 1, 11 * MIN), None, "per unit");
    }

    #[test]
    fn slow_restarts_are_no_loop_and_a_stop_starts_afresh() {
        let mut r = RestartLoops::default();
        for i in 0..10 {
            assert_eq!(r.restarted("web", 1, i * 4 * MIN), None, "one restart every 4 min");
        }
        let mut r = RestartLoops::default();
        assert_eq!(r.restarted("web", 2, 0), None);
        r.settled("web");
        assert_eq!(r.restarted("web", 1, 1), None);
        assert_eq!(r.restarted("web", 2, 2), Some(3));
        r.settled("web");
        assert_eq!(r.restarted("web", 3, 3), Some(3), "said again after the unit stopped");
    }
}
