//! Cleanup that goes on past a failure and says so. Leaving a cluster undoes many small things
//! (a unit stopped, files removed, a record updated); one that fails must not stop the others,
//! but it must not vanish either. [`Cleanup`] runs each of them, treats "already gone" as done,
//! and keeps every real failure as "what failed: error": logged, sent to the caller as a
//! `skipped` progress line of the step it belongs to, and handed back as the operation's warnings.

use std::fmt::Display;
use std::path::Path;

use serde_json::json;

use super::Progress;
use crate::daemon::Daemon;
use crate::systemd::SystemdError;

/// The failures of a cleanup so far, reported to a [`Progress`] as they happen.
pub struct Cleanup<'p> {
    progress: &'p Progress,
    failures: Vec<String>,
}

impl<'p> Cleanup<'p> {
    pub fn new(progress: &'p Progress) -> Cleanup<'p> {
        Cleanup { progress, failures: Vec::new() }
    }

    /// `what` failed with `error` during `step`: logged, sent as a `skipped` line, kept.
    pub fn failed(&mut self, step: &str, what: impl Display, error: impl Display) {
        let detail = format!("{what}: {error}");
        tracing::warn!("cluster: {step}: {detail}");
        self.progress.send(json!({"step": step, "state": "skipped", "detail": detail}));
        self.failures.push(format!("{step}: {detail}"));
    }

    /// Keeps a failure that the caller already sent as a progress line of its own.
    pub fn noted(&mut self, step: &str, detail: impl Display) {
        self.failures.push(format!("{step}: {detail}"));
    }

    /// Keeps the error of `result`, if any.
    pub fn check<T, E: Display>(
        &mut self,
        step: &str,
        what: impl Display,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed(step, what, e);
                None
            }
        }
    }

    /// Removes a file; one that is not there is no failure.
    pub fn remove_file(&mut self, step: &str, path: &Path) {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                self.failed(step, format!("removing {}", path.display()), e);
            }
            _ => {}
        }
    }

    /// Removes a directory and what it holds; one that is not there is no failure.
    pub fn remove_dir_all(&mut self, step: &str, path: &Path) {
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                self.failed(step, format!("removing {}", path.display()), e);
            }
            _ => {}
        }
    }

    /// Renames `from` to `to`; a `from` that is not there is no failure (nothing to keep).
    pub fn rename(&mut self, step: &str, from: &Path, to: &Path) {
        match std::fs::rename(from, to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                self.failed(step, format!("renaming {} to {}", from.display(), to.display()), e);
            }
            _ => {}
        }
    }

    /// Stops a unit; one systemd has not loaded is no failure (nothing runs).
    pub async fn stop_unit(&mut self, d: &Daemon, step: &str, unit: &str) {
        match d.systemd.stop(unit).await {
            Ok(o) if o.is_done() => {}
            Ok(o) => self.failed(step, format!("stopping {unit}"), format!("job result {}", o.result)),
            Err(SystemdError::NoSuchUnit { .. }) => {}
            Err(e) => self.failed(step, format!("stopping {unit}"), e),
        }
    }

    /// `systemctl daemon-reload`.
    pub async fn reload(&mut self, d: &Daemon, step: &str) {
        let result = d.systemd.reload().await;
        self.check(step, "daemon-reload", result);
    }

    /// Every failure so far, as `step: what failed: error`, in order.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    pub fn into_failures(self) -> Vec<String> {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_sent_kept_and_absent_files_are_no_failure() {
        let (p, mut rx) = Progress::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cleanup::new(&p);
        c.remove_file("state", &dir.path().join("absent"));
        c.remove_dir_all("trust", &dir.path().join("absent"));
        c.rename("gluster", &dir.path().join("absent"), &dir.path().join("kept"));
        assert!(c.failures().is_empty());
        assert!(rx.try_recv().is_err(), "nothing to report");

        // A directory is no file: removing it as one fails.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        c.remove_file("state", &sub);
        let line = rx.try_recv().expect("a line");
        assert_eq!(line["step"], "state");
        assert_eq!(line["state"], "skipped");
        let detail = line["detail"].as_str().expect("detail");
        assert!(detail.starts_with(&format!("removing {}: ", sub.display())), "{detail}");

        assert_eq!(c.check("state", "saving", Ok::<u8, String>(1)), Some(1));
        assert_eq!(c.check("state", "saving", Err::<u8, _>("disk full")), None);
        c.noted("swarm", "not in a swarm");
        let failures = c.into_failures();
        assert_eq!(failures.len(), 3);
        assert_eq!(failures[1], "state: saving: disk full");
        assert_eq!(failures[2], "swarm: not in a swarm");
    }
}
