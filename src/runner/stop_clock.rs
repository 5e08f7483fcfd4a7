//! The hold a stop under way keeps on systemd's TimeoutStopSec=. dockerd kills a container that
//! ignores its stop signal after the unit's `stop_timeout`, so a stop takes longer than that only
//! when dockerd is busy (hundreds of units stopping at once, as at a host's shutdown). While it
//! is, the runner asks systemd for more time every [`EXTEND_EVERY`] and says in its status what it
//! waits for, up to `stop_timeout` + [`STOP_QUEUE_MAX`] after the stop began; after that,
//! TimeoutStopSec= runs out as it would without the runner.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{EXTEND_BY, EXTEND_EVERY, STOP_QUEUE_MAX};
use crate::notify;

pub struct StopClock {
    began: Option<Instant>,
    limit: Duration,
    every: tokio::time::Interval,
}

impl StopClock {
    /// For a unit whose `stop_timeout` is `stop_timeout`; nothing is held before [`Self::begin`].
    pub fn new(stop_timeout: Duration) -> Self {
        let mut every = tokio::time::interval(EXTEND_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        StopClock { began: None, limit: stop_timeout + STOP_QUEUE_MAX, every }
    }

    /// systemd asked for the stop: the hold begins now (a second call changes nothing).
    pub fn begin(&mut self) {
        if self.began.is_none() {
            self.began = Some(Instant::now());
            self.every.reset_immediately();
        }
    }

    pub fn began(&self) -> bool {
        self.began.is_some()
    }

    /// Completes when more time is due; never before the stop began or once the hold ran out.
    pub async fn due(&mut self) {
        match self.began {
            Some(t) if t.elapsed() < self.limit => {
                self.every.tick().await;
            }
            _ => std::future::pending().await,
        }
    }

    /// Asks systemd for more time; once the stop has waited a while, the status says so.
    pub fn extend(&self) {
        notify::extend_timeout(EXTEND_BY);
        if let Some(t) = self.began.filter(|t| t.elapsed() >= EXTEND_EVERY) {
            notify::status(&format!(
                "stopping container: waiting for dockerd for {} s",
                t.elapsed().as_secs()
            ));
        }
    }

    /// Runs `work`, a part of the stop (the stop begins now if it had not), holding
    /// TimeoutStopSec= off until it completes; `None` if the hold ran out first.
    pub async fn hold<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        self.begin();
        let left = self.began.map_or(self.limit, |t| self.limit.saturating_sub(t.elapsed()));
        tokio::pin!(work);
        tokio::time::timeout(left, async {
            loop {
                tokio::select! {
                    r = &mut work => return r,
                    () = self.due() => self.extend(),
                }
            }
        })
        .await
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn nothing_is_due_before_the_stop_began() {
        let mut c = StopClock::new(Duration::from_secs(1));
        assert!(tokio::time::timeout(Duration::from_secs(3600), c.due()).await.is_err());
        c.begin();
        assert!(c.began());
        assert!(
            tokio::time::timeout(Duration::from_millis(1), c.due()).await.is_ok(),
            "at once when it begins"
        );
        assert!(tokio::time::timeout(EXTEND_EVERY / 2, c.due()).await.is_err());
        assert!(tokio::time::timeout(EXTEND_EVERY, c.due()).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_hold_ends_at_stop_timeout_plus_the_queue_allowance() {
        let mut c = StopClock::new(Duration::from_secs(5));
        let began = tokio::time::Instant::now();
        assert_eq!(c.hold(std::future::pending::<()>()).await, None);
        assert_eq!(began.elapsed(), Duration::from_secs(5) + STOP_QUEUE_MAX);
        assert!(tokio::time::timeout(Duration::from_secs(3600), c.due()).await.is_err(), "nothing due after");
        let mut c = StopClock::new(Duration::from_secs(5));
        assert_eq!(c.hold(async { 7 }).await, Some(7));
    }
}
