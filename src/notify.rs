//! sd_notify for the unit's main process. Sending is best-effort: outside systemd (tests,
//! a shell) there is no NOTIFY_SOCKET and nothing is sent.

use std::time::Duration;

use sd_notify::NotifyState;

pub fn ready(status: &str) {
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    let _ = sd_notify::notify(&[NotifyState::Status(status)]);
}

pub fn stopping(status: &str) {
    let _ = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

pub fn watchdog() {
    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
}

/// Asks systemd for `by` more time to finish starting (an image pull making progress).
pub fn extend_timeout(by: Duration) {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    let _ = sd_notify::notify(&[NotifyState::ExtendTimeoutUsec(usec)]);
}

/// The watchdog interval systemd expects pings within, if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}
