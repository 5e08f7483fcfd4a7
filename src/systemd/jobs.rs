//! The calls that change a unit: start, stop, restart and transient mounts, each awaited until
//! systemd removes its job (see the module docs of `systemd` for why the `JobRemoved` subscription
//! comes first), and the job-less daemon-reload, disable and reset-failed.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedObjectPath, Value};
use zbus::{MatchRule, Message, MessageStream};

use super::bus::{JobRemoved, MANAGER_INTERFACE, MANAGER_PATH, SYSTEMD_SERVICE};
use super::{Systemd, SystemdError};

/// How long [`Systemd::start`] and friends wait for their job by default. Generous: starting a
/// container unit can include pulling its image.
pub const DEFAULT_JOB_DEADLINE: Duration = Duration::from_secs(600);

/// Queue size of the `JobRemoved` stream; it is drained continuously, this only absorbs bursts.
const JOB_QUEUE: usize = 256;
/// `JobRemoved` signals kept while the call that queues a job is still in flight.
const EARLY_JOBS_MAX: usize = 4096;

/// How a job ended, from the `result` of systemd's `JobRemoved` signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Done,
    Canceled,
    Timeout,
    Failed,
    Dependency,
    Skipped,
    Other(String),
}

impl JobResult {
    pub fn parse(result: &str) -> JobResult {
        match result {
            "done" => JobResult::Done,
            "canceled" => JobResult::Canceled,
            "timeout" => JobResult::Timeout,
            "failed" => JobResult::Failed,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            other => JobResult::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobOutcome {
    pub job: u32,
    /// "done", "failed", "canceled", "timeout", "dependency", "skipped", ...
    pub result: String,
}

impl JobOutcome {
    pub fn kind(&self) -> JobResult {
        JobResult::parse(&self.result)
    }

    pub fn is_done(&self) -> bool {
        self.kind() == JobResult::Done
    }
}

#[derive(Debug, Clone, Copy)]
enum JobKind {
    Start,
    Stop,
    Restart,
    /// StartTransientUnit of a mount unit.
    Mount,
}

/// A mount started as a transient unit (no unit file, no daemon-reload).
#[derive(Debug, Clone, Default)]
pub struct MountSpec {
    pub description: String,
    pub what: String,
    pub where_: String,
    pub fs_type: String,
    pub options: String,
    pub after: Vec<String>,
    pub wants: Vec<String>,
}

impl JobKind {
    fn verb(self) -> &'static str {
        match self {
            JobKind::Start => "start",
            JobKind::Stop => "stop",
            JobKind::Restart => "restart",
            JobKind::Mount => "mount",
        }
    }
}

impl Systemd {
    /// StartUnit(unit, "replace"), awaited until the job is removed.
    pub async fn start(&self, unit: &str) -> Result<JobOutcome, SystemdError> {
        self.run_job(JobKind::Start, unit).await
    }

    /// StopUnit(unit, "replace"), awaited until the job is removed.
    pub async fn stop(&self, unit: &str) -> Result<JobOutcome, SystemdError> {
        self.run_job(JobKind::Stop, unit).await
    }

    /// RestartUnit(unit, "replace"), awaited until the job is removed: systemd turns the restart
    /// job into a start job with the same id once the stop is done, so this returns after the
    /// unit started again (or failed to).
    pub async fn restart(&self, unit: &str) -> Result<JobOutcome, SystemdError> {
        self.run_job(JobKind::Restart, unit).await
    }

    /// `systemctl daemon-reload`: reruns the generators and reloads unit files. systemd answers
    /// once the reload is complete.
    pub async fn reload(&self) -> Result<(), SystemdError> {
        self.manager.reload().await.map_err(|e| SystemdError::from_bus("reload its configuration", None, e))
    }

    /// `systemctl disable UNIT` (its [Install] links removed); a unit that is not installed is no error.
    pub async fn disable(&self, unit: &str) -> Result<(), SystemdError> {
        match self.manager.disable_unit_files(&[unit], false).await {
            Ok(_) => Ok(()),
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str().ends_with("NoSuchUnit") => Ok(()),
            Err(e) => Err(SystemdError::from_bus("disable", Some(unit), e)),
        }
    }

    /// Clears a unit's failed state and its start rate counter (`systemctl reset-failed`), so an
    /// explicit start is not refused because earlier crashes hit the start limit.
    pub async fn reset_failed(&self, unit: &str) -> Result<(), SystemdError> {
        match self.manager.reset_failed_unit(unit).await {
            Ok(()) => Ok(()),
            // Not loaded means nothing to reset.
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                Ok(())
            }
            Err(e) => Err(SystemdError::from_bus("reset the failed state", Some(unit), e)),
        }
    }

    /// StartTransientUnit for `unit` (a `.mount`), awaited like [`Systemd::start`]: mounts now
    /// without writing a unit file or reloading systemd.
    pub async fn mount_transient(&self, unit: &str, spec: &MountSpec) -> Result<JobOutcome, SystemdError> {
        self.run_job_with(JobKind::Mount, unit, Some(spec)).await
    }

    async fn run_job(&self, kind: JobKind, unit: &str) -> Result<JobOutcome, SystemdError> {
        self.run_job_with(kind, unit, None).await
    }

    async fn run_job_with(
        &self,
        kind: JobKind,
        unit: &str,
        mount: Option<&MountSpec>,
    ) -> Result<JobOutcome, SystemdError> {
        let action = format!("{} {unit}", kind.verb());
        let err = |e| SystemdError::from_bus(&action, Some(unit), e);
        let deadline = tokio::time::Instant::now() + self.job_deadline;
        let timeout = || SystemdError::JobTimeout { action: action.clone(), after: self.job_deadline };
        let disconnected = || SystemdError::Disconnected { action: action.clone() };

        // Subscribed before the job exists. Not filtered by unit name: JobRemoved names the unit
        // by its id, which differs from the name asked for when that is an alias.
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(SYSTEMD_SERVICE)
            .and_then(|b| b.path(MANAGER_PATH))
            .and_then(|b| b.interface(MANAGER_INTERFACE))
            .and_then(|b| b.member("JobRemoved"))
            .map_err(err)?
            .build();
        let mut removed =
            MessageStream::for_match_rule(rule, &self.conn, Some(JOB_QUEUE)).await.map_err(err)?;

        let call = async {
            match kind {
                JobKind::Start => self.manager.start_unit(unit, "replace").await,
                JobKind::Stop => self.manager.stop_unit(unit, "replace").await,
                JobKind::Restart => self.manager.restart_unit(unit, "replace").await,
                JobKind::Mount => {
                    let m = mount.cloned().unwrap_or_default();
                    let after: Vec<&str> = m.after.iter().map(String::as_str).collect();
                    let wants: Vec<&str> = m.wants.iter().map(String::as_str).collect();
                    let props = [
                        ("Description", Value::from(m.description.as_str())),
                        ("What", Value::from(m.what.as_str())),
                        ("Where", Value::from(m.where_.as_str())),
                        ("Type", Value::from(m.fs_type.as_str())),
                        ("Options", Value::from(m.options.as_str())),
                        ("After", Value::from(after)),
                        ("Wants", Value::from(wants)),
                    ];
                    self.manager.start_transient_unit(unit, "replace", &props, &[]).await
                }
            }
        };
        tokio::pin!(call);
        // Jobs that ended while the call was in flight; ours may be among them.
        let mut early: VecDeque<(OwnedObjectPath, JobOutcome)> = VecDeque::new();
        let job = loop {
            tokio::select! {
                reply = &mut call => break reply.map_err(err)?,
                msg = removed.next() => match msg {
                    Some(Ok(msg)) => {
                        if let Some(ended) = parse_job_removed(&msg) {
                            if early.len() == EARLY_JOBS_MAX {
                                early.pop_front();
                            }
                            early.push_back(ended);
                        }
                    }
                    Some(Err(e)) => return Err(err(e)),
                    None => return Err(disconnected()),
                },
                () = tokio::time::sleep_until(deadline) => return Err(timeout()),
            }
        };
        if let Some((_, outcome)) = early.into_iter().find(|(path, _)| *path == job) {
            return Ok(outcome);
        }
        loop {
            tokio::select! {
                msg = removed.next() => match msg {
                    Some(Ok(msg)) => match parse_job_removed(&msg) {
                        Some((path, outcome)) if path == job => return Ok(outcome),
                        _ => {}
                    },
                    Some(Err(e)) => return Err(err(e)),
                    None => return Err(disconnected()),
                },
                () = tokio::time::sleep_until(deadline) => return Err(timeout()),
            }
        }
    }
}

fn parse_job_removed(msg: &Message) -> Option<(OwnedObjectPath, JobOutcome)> {
    let signal = JobRemoved::from_message(msg.clone())?;
    let args = signal.args().ok()?;
    let outcome = JobOutcome { job: *args.id(), result: (*args.result()).to_owned() };
    Some((OwnedObjectPath::from(args.job().clone()), outcome))
}
