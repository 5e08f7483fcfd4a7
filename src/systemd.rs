//! All of containerctld's D-Bus access to systemd (`org.freedesktop.systemd1` on the system bus):
//! starting, stopping and restarting `containerctl@NAME.service`, `daemon-reload`, reading unit
//! state and following it live through systemd's signals.
//!
//! Why it looks the way it does:
//! - Jobs are awaited to their end. The `JobRemoved` subscription is made before the job is
//!   queued and matched on the job's object path, because a job can finish before the method
//!   call that queued it has returned.
//! - Every signal stream is drained by a task of its own: zbus stops reading the socket (method
//!   replies included) while any stream's queue is full, so a stream left unpolled while its owner
//!   awaits a method call can deadlock the connection.
//! - A `PropertiesChanged` signal covers one interface and only properties flagged to emit it, so
//!   [`Systemd::watch`] re-reads the whole state with one `GetAll` per interface. But systemd
//!   unloads ("garbage-collects") an inactive unit nothing refers to as soon as it stopped, and
//!   reading the object path of an unloaded unit loads it afresh, with its result, exit status and
//!   timestamps forgotten. So the watcher asks `GetUnit` (which never loads) first, and rejects a
//!   read whose `StateChangeTimestampMonotonic` went backwards; in both cases it applies the values
//!   the signals carried to the last state it knew.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use zbus::message::Type as MessageType;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::{proxy, Connection, MatchRule, Message, MessageStream};

const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
const SERVICE_INTERFACE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";
const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// Prefix and suffix of every container unit's name.
pub const UNIT_PREFIX: &str = "containerctl@";
pub const UNIT_SUFFIX: &str = ".service";
/// Glob matching every container unit, as systemd's `ListUnitsByPatterns` takes it.
pub const UNIT_PATTERN: &str = "containerctl@*.service";

/// How long [`Systemd::start`] and friends wait for their job by default. Generous: starting a
/// container unit can include pulling its image.
pub const DEFAULT_JOB_DEADLINE: Duration = Duration::from_secs(600);

/// Queue sizes of the signal streams; they are drained continuously, this only absorbs bursts.
const JOB_QUEUE: usize = 256;
const WATCH_QUEUE: usize = 1024;
/// Capacity of the channel [`Systemd::watch`] returns.
const WATCH_CHANNEL: usize = 256;
/// `JobRemoved` signals kept while the call that queues a job is still in flight.
const EARLY_JOBS_MAX: usize = 4096;

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload(&self) -> zbus::Result<()>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<(String, String, String)>>;
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, &[(&str, Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
    fn list_units_by_patterns(&self, states: &[&str], patterns: &[&str]) -> zbus::Result<Vec<ListedUnit>>;

    #[zbus(signal)]
    fn job_removed(&self, id: u32, job: ObjectPath<'_>, unit: &str, result: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn unit_new(&self, id: &str, unit: ObjectPath<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn unit_removed(&self, id: &str, unit: ObjectPath<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn reloading(&self, active: bool) -> zbus::Result<()>;
}

/// The Unit and Service interfaces are read whole, one `GetAll` each, through the standard
/// properties interface of the unit's object; a proxy of their own would add nothing.
#[proxy(interface = "org.freedesktop.DBus.Properties", default_service = "org.freedesktop.systemd1")]
trait UnitProperties {
    fn get_all(&self, interface: &str) -> zbus::Result<Properties>;
}

/// `ListUnitsByPatterns` rows: name, description, load, active and sub state, following, unit
/// path, job id, job type, job path.
type ListedUnit =
    (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);

type Properties = HashMap<String, OwnedValue>;

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot connect to systemd on the system bus: {0}")]
    Connect(#[source] zbus::Error),
    #[error("no such unit {unit}")]
    NoSuchUnit { unit: String },
    #[error("systemd denied access to {action}: {message} (containerctld must run as root)")]
    AccessDenied { action: String, message: String },
    #[error("systemd refused to {action}: {message}")]
    Refused { action: String, error: String, message: String },
    #[error("gave up waiting after {}s for systemd to {action}; the job may still be running", .after.as_secs())]
    JobTimeout { action: String, after: Duration },
    #[error("lost the connection to systemd while trying to {action}")]
    Disconnected { action: String },
    #[error("d-bus call to systemd failed while trying to {action}: {source}")]
    Bus {
        action: String,
        #[source]
        source: zbus::Error,
    },
}

impl SystemdError {
    fn from_bus(action: &str, unit: Option<&str>, err: zbus::Error) -> Self {
        if let zbus::Error::MethodError(name, message, _) = &err {
            let message = message.clone().unwrap_or_default();
            match name.as_str() {
                "org.freedesktop.systemd1.NoSuchUnit" => {
                    return SystemdError::NoSuchUnit { unit: unit.unwrap_or_default().to_owned() };
                }
                "org.freedesktop.DBus.Error.AccessDenied"
                | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
                    return SystemdError::AccessDenied { action: action.to_owned(), message };
                }
                n if n.starts_with("org.freedesktop.systemd1.")
                    || n == "org.freedesktop.DBus.Error.InvalidArgs" =>
                {
                    return SystemdError::Refused { action: action.to_owned(), error: n.to_owned(), message };
                }
                _ => {}
            }
        }
        match err {
            zbus::Error::InputOutput(_) => SystemdError::Disconnected { action: action.to_owned() },
            source => SystemdError::Bus { action: action.to_owned(), source },
        }
    }

    fn ends_watch(&self) -> bool {
        matches!(self, SystemdError::Disconnected { .. } | SystemdError::Connect(_))
    }
}

/// Snapshot of one container unit as systemd reports it. Timestamps are CLOCK_REALTIME
/// microseconds, 0 when the event never happened since the unit was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UnitState {
    /// Full unit name, `containerctl@NAME.service`.
    pub unit: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// The service's `Result`: "success", "exit-code", "signal", "timeout", "watchdog", ...
    pub result: String,
    pub n_restarts: u32,
    pub exec_main_status: i32,
    /// `si_code` of the main process's end: 1 exited, 2 killed, 3 dumped core, 0 never ended.
    pub exec_main_code: i32,
    pub main_pid: u32,
    pub status_text: String,
    pub active_enter_us: u64,
    pub inactive_enter_us: u64,
    pub state_change_us: u64,
}

impl UnitState {
    /// The NAME of `containerctl@NAME.service`.
    pub fn instance(&self) -> Option<&str> {
        instance_of(&self.unit)
    }

    /// False for a unit systemd knows nothing about: no unit file and nothing running.
    pub fn exists(&self) -> bool {
        self.load_state != "not-found" || self.active_state != "inactive"
    }
}

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

/// What [`Systemd::watch`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitChange {
    /// A container unit's properties changed; this is its full state after the change.
    State(UnitState),
    /// systemd loaded a container unit into memory (UnitNew). Says nothing about its state. Do
    /// not answer it with [`Systemd::unit_state`]: its LoadUnit loads an inactive unit that was
    /// already unloaded again, which sends New again, a loop that never ends.
    New(String),
    /// systemd unloaded a container unit (UnitRemoved): an inactive unit nothing refers to, or any
    /// loaded unit during a daemon-reload (which sends Removed and New for each). Not a deletion.
    Removed(String),
    /// A daemon-reload finished; re-read everything with [`Systemd::list`].
    Reloaded,
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

/// A connection to systemd; cheap to clone, clones share the connection.
#[derive(Debug, Clone)]
pub struct Systemd {
    conn: Connection,
    manager: ManagerProxy<'static>,
    job_deadline: Duration,
}

impl Systemd {
    /// Connects to the system bus and subscribes to systemd's signals (systemd sends unit and job
    /// signals only while some client is subscribed; the subscription ends with the connection).
    pub async fn connect() -> Result<Systemd, SystemdError> {
        let conn = Connection::system().await.map_err(SystemdError::Connect)?;
        Systemd::with_connection(conn).await
    }

    /// Like [`Systemd::connect`] on a connection made elsewhere. It must not already be subscribed.
    pub async fn with_connection(conn: Connection) -> Result<Systemd, SystemdError> {
        let action = "subscribe to systemd's signals";
        let manager = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| SystemdError::from_bus(action, None, e))?;
        manager.subscribe().await.map_err(|e| SystemdError::from_bus(action, None, e))?;
        Ok(Systemd { conn, manager, job_deadline: DEFAULT_JOB_DEADLINE })
    }

    /// How long jobs are awaited before [`SystemdError::JobTimeout`]; default
    /// [`DEFAULT_JOB_DEADLINE`].
    pub fn with_job_deadline(mut self, deadline: Duration) -> Systemd {
        self.job_deadline = deadline;
        self
    }

    /// The underlying bus connection. A `MessageStream` or signal stream made on it must be
    /// polled continuously: while any stream's queue is full, zbus reads nothing more from the
    /// socket, replies to this module's calls included.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The state of `unit`. Loads the unit if systemd had not (a unit without a file comes back
    /// with load_state "not-found", see [`UnitState::exists`]); an unreferenced inactive unit is
    /// unloaded again soon after, with UnitNew and UnitRemoved signals.
    pub async fn unit_state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let action = format!("read the state of {unit}");
        let path =
            self.manager.load_unit(unit).await.map_err(|e| SystemdError::from_bus(&action, Some(unit), e))?;
        self.state_at(unit, &path).await
    }

    /// Every container unit systemd has loaded, with its state, sorted by name. A unit that exists
    /// only as a generator drop-in and was never started nor enabled is not loaded, so not listed.
    pub async fn list(&self) -> Result<Vec<UnitState>, SystemdError> {
        let action = "list the containerctl units";
        let rows = self
            .manager
            .list_units_by_patterns(&[], &[UNIT_PATTERN])
            .await
            .map_err(|e| SystemdError::from_bus(action, None, e))?;
        let reads =
            rows.iter().filter(|row| is_container_unit(&row.0)).map(|row| self.state_at(&row.0, &row.6));
        let mut states = Vec::with_capacity(rows.len());
        for result in futures_util::future::join_all(reads).await {
            match result {
                Ok(state) => states.push(state),
                // Gone between the listing and the read.
                Err(SystemdError::NoSuchUnit { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        states.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(states)
    }

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

    /// Live changes of container units. Call it before [`Systemd::list`] so nothing falls between
    /// the snapshot and the first change. The receiver ends when the bus connection breaks
    /// (reconnect and call both again) and its task ends when the receiver is dropped.
    pub async fn watch(&self) -> Result<mpsc::Receiver<UnitChange>, SystemdError> {
        let action = "watch the containerctl units";
        // One rule over the manager object and the unit objects below it, so that UnitNew,
        // PropertiesChanged and UnitRemoved come through one queue in the order systemd sent them.
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(SYSTEMD_SERVICE)
            .and_then(|b| b.path_namespace(MANAGER_PATH))
            .map_err(|e| SystemdError::from_bus(action, None, e))?
            .build();
        let stream = MessageStream::for_match_rule(rule, &self.conn, Some(WATCH_QUEUE))
            .await
            .map_err(|e| SystemdError::from_bus(action, None, e))?;
        let (signals_tx, signals_rx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL);
        tokio::spawn(drain_watch_stream(stream, signals_tx));
        tokio::spawn(resolve_signals(self.clone(), signals_rx, tx));
        Ok(rx)
    }

    async fn state_at(&self, unit: &str, path: &ObjectPath<'_>) -> Result<UnitState, SystemdError> {
        let (unit_props, service_props) = self.read_properties(unit, path).await?;
        Ok(state_from_properties(unit, &unit_props, &service_props))
    }

    /// The Unit and Service properties of `unit` if systemd has it loaded, without loading it.
    async fn loaded_properties(&self, unit: &str) -> Result<Option<(Properties, Properties)>, SystemdError> {
        let action = format!("read the state of {unit}");
        let path = match self.manager.get_unit(unit).await {
            Ok(path) => path,
            Err(e) => {
                return match SystemdError::from_bus(&action, Some(unit), e) {
                    SystemdError::NoSuchUnit { .. } => Ok(None),
                    e => Err(e),
                }
            }
        };
        self.read_properties(unit, &path).await.map(Some)
    }

    /// One `GetAll` per interface. On the path of a unit systemd has not loaded, this loads it.
    async fn read_properties(
        &self,
        unit: &str,
        path: &ObjectPath<'_>,
    ) -> Result<(Properties, Properties), SystemdError> {
        let action = format!("read the state of {unit}");
        let err = |e| SystemdError::from_bus(&action, Some(unit), e);
        let props = UnitPropertiesProxy::builder(&self.conn)
            .path(path.to_owned())
            .map_err(err)?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        let (unit_props, service_props) =
            futures_util::future::join(props.get_all(UNIT_INTERFACE), props.get_all(SERVICE_INTERFACE)).await;
        Ok((unit_props.map_err(err)?, service_props.map_err(err)?))
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

/// A container-unit signal from the watch stream, before its state is read.
#[derive(Debug, Clone)]
enum Signal {
    /// PropertiesChanged of a unit object; `props` are the values it carried.
    Changed {
        unit: String,
        interface: String,
        props: Properties,
    },
    New(String),
    Removed(String),
    Reloaded,
}

/// Turns a message of the watch stream into a [`Signal`] about a container unit, or None.
fn classify_signal(msg: &Message) -> Option<Signal> {
    let header = msg.header();
    let path = header.path()?;
    let interface = header.interface()?;
    let member = header.member()?;
    match (interface.as_str(), member.as_str()) {
        (PROPERTIES_INTERFACE, "PropertiesChanged") => {
            let unit = unescape_unit_path(path.as_str()).filter(|u| is_container_unit(u))?;
            let (changed_interface, props, _invalidated): (String, Properties, Vec<String>) =
                msg.body().deserialize().ok()?;
            if changed_interface != UNIT_INTERFACE && changed_interface != SERVICE_INTERFACE {
                return None;
            }
            Some(Signal::Changed { unit, interface: changed_interface, props })
        }
        (MANAGER_INTERFACE, "UnitNew") if path.as_str() == MANAGER_PATH => {
            let signal = UnitNew::from_message(msg.clone())?;
            let args = signal.args().ok()?;
            is_container_unit(args.id()).then(|| Signal::New((*args.id()).to_owned()))
        }
        (MANAGER_INTERFACE, "UnitRemoved") if path.as_str() == MANAGER_PATH => {
            let signal = UnitRemoved::from_message(msg.clone())?;
            let args = signal.args().ok()?;
            is_container_unit(args.id()).then(|| Signal::Removed((*args.id()).to_owned()))
        }
        (MANAGER_INTERFACE, "Reloading") if path.as_str() == MANAGER_PATH => {
            let signal = Reloading::from_message(msg.clone())?;
            let args = signal.args().ok()?;
            (!*args.active()).then_some(Signal::Reloaded)
        }
        _ => None,
    }
}

/// Reads the bus stream without pause (see the module docs) into an unbounded queue.
async fn drain_watch_stream(mut stream: MessageStream, signals: mpsc::UnboundedSender<Signal>) {
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            () = signals.closed() => return,
        };
        match msg {
            Some(Ok(msg)) => {
                if let Some(signal) = classify_signal(&msg) {
                    if signals.send(signal).is_err() {
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!("systemd signal stream failed: {e}");
                return;
            }
            None => return,
        }
    }
}

/// One step of [`resolve_signals`]' work, after a batch of signals was merged.
#[derive(Debug, Clone)]
enum Step {
    /// Read the unit's state. `removed`: the unit was unloaded after the change, so a read would
    /// load it afresh; build the state from the signals' values instead.
    Read {
        unit: String,
        unit_props: Properties,
        service_props: Properties,
        removed: bool,
    },
    New(String),
    Removed(String),
    Reloaded,
}

/// Merges the signals of a batch: all changes of a unit up to its next New or Removed become one
/// read at the place of the first, with the carried values of later signals winning.
fn plan(batch: Vec<Signal>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    // Unit → index in `steps` of its pending Read.
    let mut pending: HashMap<String, usize> = HashMap::new();
    for signal in batch {
        match signal {
            Signal::Changed { unit, interface, props } => {
                let index = match pending.get(&unit) {
                    Some(&index) => index,
                    None => {
                        steps.push(Step::Read {
                            unit: unit.clone(),
                            unit_props: Properties::new(),
                            service_props: Properties::new(),
                            removed: false,
                        });
                        pending.insert(unit, steps.len() - 1);
                        steps.len() - 1
                    }
                };
                if let Some(Step::Read { unit_props, service_props, .. }) = steps.get_mut(index) {
                    let target = if interface == UNIT_INTERFACE { unit_props } else { service_props };
                    target.extend(props);
                }
            }
            Signal::New(unit) => {
                pending.remove(&unit);
                steps.push(Step::New(unit));
            }
            Signal::Removed(unit) => {
                if let Some(index) = pending.remove(&unit) {
                    if let Some(Step::Read { removed, .. }) = steps.get_mut(index) {
                        *removed = true;
                    }
                }
                steps.push(Step::Removed(unit));
            }
            Signal::Reloaded => {
                pending.clear();
                steps.push(Step::Reloaded);
            }
        }
    }
    steps
}

/// What the watcher last delivered for a unit, with the unit's `StateChangeTimestampMonotonic`.
#[derive(Debug, Clone)]
struct Known {
    state: UnitState,
    changed_mono: u64,
}

/// Turns signals into [`UnitChange`]s, reading each changed unit's full state.
async fn resolve_signals(
    systemd: Systemd,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    changes: mpsc::Sender<UnitChange>,
) {
    let mut known: HashMap<String, Known> = HashMap::new();
    while let Some(first) = signals.recv().await {
        let mut batch = vec![first];
        while let Ok(signal) = signals.try_recv() {
            batch.push(signal);
        }
        for step in plan(batch) {
            let change = match step {
                Step::Read { unit, unit_props, service_props, removed } => {
                    // GetUnit first: reading a collected unit's path would load it afresh.
                    let read = if removed {
                        None
                    } else {
                        match systemd.loaded_properties(&unit).await {
                            Ok(read) => read,
                            Err(e) if e.ends_watch() => return,
                            Err(e) => {
                                tracing::warn!("{e}");
                                continue;
                            }
                        }
                    };
                    let next =
                        resolve_state(&unit, read.as_ref(), &unit_props, &service_props, known.get(&unit));
                    let unchanged = known.get(&unit).is_some_and(|k| k.state == next.state);
                    let state = next.state.clone();
                    known.insert(unit, next);
                    if unchanged {
                        continue;
                    }
                    UnitChange::State(state)
                }
                Step::New(unit) => UnitChange::New(unit),
                Step::Removed(unit) => {
                    known.remove(&unit);
                    UnitChange::Removed(unit)
                }
                Step::Reloaded => UnitChange::Reloaded,
            };
            if changes.send(change).await.is_err() {
                return;
            }
        }
    }
}

const STATE_CHANGE_MONO: &str = "StateChangeTimestampMonotonic";

/// The state to deliver after a change: the fresh read, unless there is none (the unit was
/// unloaded) or it is older than what the signals or an earlier read showed (the read raced with
/// garbage collection and loaded the unit afresh, forgetting its result and exit status). Then the
/// values the signals carried are applied over the last known state; signals carry every field
/// but `LoadState` and `Id`.
fn resolve_state(
    unit: &str,
    read: Option<&(Properties, Properties)>,
    unit_signals: &Properties,
    service_signals: &Properties,
    known: Option<&Known>,
) -> Known {
    let seen_mono =
        known.map_or(0, |k| k.changed_mono).max(prop_u64(unit_signals, STATE_CHANGE_MONO).unwrap_or(0));
    if let Some((unit_props, service_props)) = read {
        let read_mono = prop_u64(unit_props, STATE_CHANGE_MONO).unwrap_or(0);
        if read_mono >= seen_mono {
            return Known {
                state: state_from_properties(unit, unit_props, service_props),
                changed_mono: read_mono,
            };
        }
    }
    let base = known.map(|k| k.state.clone()).unwrap_or_else(|| UnitState {
        // It sent PropertiesChanged, so it was loaded; systemd only unloads inactive units.
        load_state: "loaded".to_owned(),
        active_state: "inactive".to_owned(),
        sub_state: "dead".to_owned(),
        ..UnitState::default()
    });
    Known { state: apply_properties(base, unit, unit_signals, service_signals), changed_mono: seen_mono }
}

/// Builds a [`UnitState`] from the `GetAll` maps of the Unit and Service interfaces. Missing or
/// ill-typed properties are left at their defaults; the name is the unit's `Id` when present.
fn state_from_properties(unit: &str, unit_props: &Properties, service_props: &Properties) -> UnitState {
    apply_properties(UnitState::default(), unit, unit_props, service_props)
}

/// Overwrites the fields of `state` whose properties are present and well-typed.
fn apply_properties(
    mut state: UnitState,
    unit: &str,
    unit_props: &Properties,
    service_props: &Properties,
) -> UnitState {
    state.unit = prop_string(unit_props, "Id").filter(|id| !id.is_empty()).unwrap_or_else(|| unit.to_owned());
    let set_string = |field: &mut String, props: &Properties, key: &str| {
        if let Some(value) = prop_string(props, key) {
            *field = value;
        }
    };
    set_string(&mut state.load_state, unit_props, "LoadState");
    set_string(&mut state.active_state, unit_props, "ActiveState");
    set_string(&mut state.sub_state, unit_props, "SubState");
    set_string(&mut state.result, service_props, "Result");
    set_string(&mut state.status_text, service_props, "StatusText");
    if let Some(v) = prop_u64(service_props, "NRestarts").and_then(|v| u32::try_from(v).ok()) {
        state.n_restarts = v;
    }
    if let Some(v) = prop_i64(service_props, "ExecMainStatus").and_then(|v| i32::try_from(v).ok()) {
        state.exec_main_status = v;
    }
    if let Some(v) = prop_i64(service_props, "ExecMainCode").and_then(|v| i32::try_from(v).ok()) {
        state.exec_main_code = v;
    }
    if let Some(v) = prop_u64(service_props, "MainPID").and_then(|v| u32::try_from(v).ok()) {
        state.main_pid = v;
    }
    if let Some(v) = prop_u64(unit_props, "ActiveEnterTimestamp") {
        state.active_enter_us = v;
    }
    if let Some(v) = prop_u64(unit_props, "InactiveEnterTimestamp") {
        state.inactive_enter_us = v;
    }
    if let Some(v) = prop_u64(unit_props, "StateChangeTimestamp") {
        state.state_change_us = v;
    }
    state
}

fn prop<'a>(props: &'a Properties, key: &str) -> Option<&'a Value<'static>> {
    let mut value: &Value<'static> = props.get(key)?;
    while let Value::Value(inner) = value {
        value = inner;
    }
    Some(value)
}

fn prop_string(props: &Properties, key: &str) -> Option<String> {
    match prop(props, key)? {
        Value::Str(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn prop_u64(props: &Properties, key: &str) -> Option<u64> {
    match prop(props, key)? {
        Value::U64(v) => Some(*v),
        Value::U32(v) => Some(u64::from(*v)),
        Value::U16(v) => Some(u64::from(*v)),
        Value::U8(v) => Some(u64::from(*v)),
        Value::I64(v) => u64::try_from(*v).ok(),
        Value::I32(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn prop_i64(props: &Properties, key: &str) -> Option<i64> {
    match prop(props, key)? {
        Value::I64(v) => Some(*v),
        Value::I32(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::U8(v) => Some(i64::from(*v)),
        _ => None,
    }
}

/// `containerctl@NAME.service`.
pub fn unit_name(instance: &str) -> String {
    format!("{UNIT_PREFIX}{instance}{UNIT_SUFFIX}")
}

/// The NAME of `containerctl@NAME.service`, None for other units and the template itself.
pub fn instance_of(unit: &str) -> Option<&str> {
    unit.strip_prefix(UNIT_PREFIX)?.strip_suffix(UNIT_SUFFIX).filter(|name| !name.is_empty())
}

pub fn is_container_unit(unit: &str) -> bool {
    instance_of(unit).is_some()
}

/// The object path systemd gives `unit`: every byte outside `[A-Za-z0-9]` (and a leading digit)
/// becomes `_` and two lowercase hex digits, so '@' is `_40`, '.' `_2e`, '-' `_2d`, '_' `_5f`.
pub fn escape_unit_path(unit: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut path = String::with_capacity(UNIT_PATH_PREFIX.len() + unit.len() * 3);
    path.push_str(UNIT_PATH_PREFIX);
    if unit.is_empty() {
        path.push('_');
    }
    for (i, byte) in unit.bytes().enumerate() {
        if byte.is_ascii_alphabetic() || (i > 0 && byte.is_ascii_digit()) {
            path.push(char::from(byte));
        } else {
            path.push('_');
            path.push(char::from(HEX[usize::from(byte >> 4)]));
            path.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    path
}

/// The unit name of a systemd unit object path; None for other paths, bad escapes or non-UTF-8.
pub fn unescape_unit_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PATH_PREFIX)?;
    if label.is_empty() || label.contains('/') {
        return None;
    }
    if label == "_" {
        return Some(String::new());
    }
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(value: Value<'_>) -> OwnedValue {
        value.try_to_owned().expect("values without file descriptors convert")
    }

    fn props(entries: &[(&str, Value<'_>)]) -> Properties {
        entries.iter().map(|(k, v)| ((*k).to_owned(), owned(v.clone()))).collect()
    }

    #[test]
    fn escapes_unit_names_as_systemd_does() {
        assert_eq!(
            escape_unit_path("containerctl@web-1.service"),
            "/org/freedesktop/systemd1/unit/containerctl_40web_2d1_2eservice"
        );
        // As systemd 252's LoadUnit answered.
        assert_eq!(
            escape_unit_path("containerctl@0a_b.c.service"),
            "/org/freedesktop/systemd1/unit/containerctl_400a_5fb_2ec_2eservice"
        );
        assert_eq!(escape_unit_path("1x2.service"), "/org/freedesktop/systemd1/unit/_31x2_2eservice");
        assert_eq!(escape_unit_path("a_b.c"), "/org/freedesktop/systemd1/unit/a_5fb_2ec");
        assert_eq!(escape_unit_path("1x2"), "/org/freedesktop/systemd1/unit/_31x2");
        assert_eq!(escape_unit_path(""), "/org/freedesktop/systemd1/unit/_");
        assert_eq!(escape_unit_path("é"), "/org/freedesktop/systemd1/unit/_c3_a9");
    }

    #[test]
    fn unescape_inverts_escape() {
        for name in
            ["containerctl@web-1.service", "containerctl@a_b.c-d.service", "0abc", "é@x", "dbus.socket"]
        {
            assert_eq!(unescape_unit_path(&escape_unit_path(name)).as_deref(), Some(name));
        }
        assert_eq!(unescape_unit_path("/org/freedesktop/systemd1/unit/_").as_deref(), Some(""));
        assert_eq!(
            unescape_unit_path("/org/freedesktop/systemd1/unit/sshd_2eSERVICE").as_deref(),
            Some("sshd.SERVICE")
        );
        assert_eq!(unescape_unit_path("/org/freedesktop/systemd1/unit/a_2E").as_deref(), Some("a."));
    }

    #[test]
    fn unescape_rejects_other_paths_and_bad_escapes() {
        for path in [
            "/org/freedesktop/systemd1",
            "/org/freedesktop/systemd1/unit/",
            "/org/freedesktop/systemd1/job/12",
            "/org/freedesktop/systemd1/unit/a/b",
            "/org/freedesktop/systemd1/unit/abc_4",
            "/org/freedesktop/systemd1/unit/abc_zz",
            "/org/freedesktop/systemd1/unit/_c3",
            "/org/freedesktop/systemd1/unit/_+1",
        ] {
            assert_eq!(unescape_unit_path(path), None, "{path}");
        }
    }

    #[test]
    fn container_unit_names() {
        assert_eq!(unit_name("web"), "containerctl@web.service");
        assert_eq!(instance_of("containerctl@web.service"), Some("web"));
        assert_eq!(instance_of("containerctl@.service"), None);
        assert_eq!(instance_of("containerctld.service"), None);
        assert_eq!(instance_of("containerctl@web.socket"), None);
        assert!(is_container_unit("containerctl@a.b-c.service"));
        assert!(!is_container_unit("docker.service"));
    }

    #[test]
    fn parses_job_results() {
        assert_eq!(JobResult::parse("done"), JobResult::Done);
        assert_eq!(JobResult::parse("failed"), JobResult::Failed);
        assert_eq!(JobResult::parse("canceled"), JobResult::Canceled);
        assert_eq!(JobResult::parse("timeout"), JobResult::Timeout);
        assert_eq!(JobResult::parse("dependency"), JobResult::Dependency);
        assert_eq!(JobResult::parse("skipped"), JobResult::Skipped);
        assert_eq!(JobResult::parse("frozen"), JobResult::Other("frozen".into()));
        let outcome = JobOutcome { job: 7, result: "done".into() };
        assert!(outcome.is_done());
        assert!(!JobOutcome { job: 8, result: "failed".into() }.is_done());
    }

    #[test]
    fn converts_full_property_maps() {
        let unit = props(&[
            ("Id", Value::from("containerctl@web.service")),
            ("LoadState", Value::from("loaded")),
            ("ActiveState", Value::from("active")),
            ("SubState", Value::from("running")),
            ("ActiveEnterTimestamp", Value::U64(1_700_000_000_000_000)),
            ("InactiveEnterTimestamp", Value::U64(0)),
            ("StateChangeTimestamp", Value::U64(1_700_000_000_000_001)),
            ("Description", Value::from("web")),
        ]);
        let service = props(&[
            ("Result", Value::from("success")),
            ("NRestarts", Value::U32(2)),
            ("ExecMainStatus", Value::I32(0)),
            ("ExecMainCode", Value::I32(0)),
            ("MainPID", Value::U32(4242)),
            ("StatusText", Value::from("running containerctl-web")),
        ]);
        let state = state_from_properties("containerctl@web.service", &unit, &service);
        assert_eq!(
            state,
            UnitState {
                unit: "containerctl@web.service".into(),
                load_state: "loaded".into(),
                active_state: "active".into(),
                sub_state: "running".into(),
                result: "success".into(),
                n_restarts: 2,
                exec_main_status: 0,
                exec_main_code: 0,
                main_pid: 4242,
                status_text: "running containerctl-web".into(),
                active_enter_us: 1_700_000_000_000_000,
                inactive_enter_us: 0,
                state_change_us: 1_700_000_000_000_001,
            }
        );
        assert_eq!(state.instance(), Some("web"));
        assert!(state.exists());
    }

    #[test]
    fn tolerates_missing_and_ill_typed_properties() {
        let unit = props(&[
            ("ActiveState", Value::U32(3)),
            ("SubState", Value::from("dead")),
            ("ActiveEnterTimestamp", Value::from("yesterday")),
            ("StateChangeTimestamp", Value::Value(Box::new(Value::U64(5)))),
        ]);
        let service = props(&[
            ("NRestarts", Value::U64(u64::MAX)),
            ("ExecMainStatus", Value::I64(-1)),
            ("ExecMainCode", Value::Bool(true)),
            ("MainPID", Value::I32(-4)),
        ]);
        let state = state_from_properties("containerctl@x.service", &unit, &service);
        assert_eq!(
            state,
            UnitState {
                unit: "containerctl@x.service".into(),
                sub_state: "dead".into(),
                exec_main_status: -1,
                state_change_us: 5,
                ..UnitState::default()
            }
        );
        let empty = state_from_properties("containerctl@y.service", &Properties::new(), &Properties::new());
        assert_eq!(empty.unit, "containerctl@y.service");
        assert!(
            !UnitState { load_state: "not-found".into(), active_state: "inactive".into(), ..empty }.exists()
        );
    }

    #[test]
    fn applies_changed_values_over_a_known_state() {
        let base = UnitState {
            unit: "containerctl@web.service".into(),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            main_pid: 10,
            ..UnitState::default()
        };
        let unit = props(&[("ActiveState", Value::from("failed")), ("SubState", Value::from("failed"))]);
        let service = props(&[
            ("Result", Value::from("exit-code")),
            ("ExecMainStatus", Value::I32(3)),
            ("MainPID", Value::U32(0)),
        ]);
        let state = apply_properties(base, "containerctl@web.service", &unit, &service);
        assert_eq!(state.load_state, "loaded");
        assert_eq!(state.active_state, "failed");
        assert_eq!(state.result, "exit-code");
        assert_eq!(state.exec_main_status, 3);
        assert_eq!(state.main_pid, 0);
    }

    #[test]
    fn resolve_prefers_the_read_unless_it_went_back_in_time() {
        let unit = "containerctl@web.service";
        let known = Known {
            state: UnitState {
                unit: unit.into(),
                load_state: "loaded".into(),
                active_state: "active".into(),
                main_pid: 10,
                ..UnitState::default()
            },
            changed_mono: 100,
        };
        let signal_unit = props(&[
            ("ActiveState", Value::from("inactive")),
            ("StateChangeTimestampMonotonic", Value::U64(200)),
        ]);
        let signal_service = props(&[("ExecMainCode", Value::I32(2)), ("ExecMainStatus", Value::I32(15))]);

        let fresh = (
            props(&[
                ("LoadState", Value::from("loaded")),
                ("ActiveState", Value::from("inactive")),
                ("StateChangeTimestampMonotonic", Value::U64(200)),
            ]),
            props(&[("ExecMainCode", Value::I32(2)), ("ExecMainStatus", Value::I32(15))]),
        );
        let next = resolve_state(unit, Some(&fresh), &signal_unit, &signal_service, Some(&known));
        assert_eq!(
            (next.state.active_state.as_str(), next.state.main_pid, next.changed_mono),
            ("inactive", 0, 200)
        );

        // Collected and loaded afresh by the read: nothing ever happened to that unit object.
        let reloaded = (
            props(&[("LoadState", Value::from("loaded")), ("ActiveState", Value::from("inactive"))]),
            props(&[("ExecMainCode", Value::I32(0))]),
        );
        let next = resolve_state(unit, Some(&reloaded), &signal_unit, &signal_service, Some(&known));
        assert_eq!(next.state.exec_main_code, 2);
        assert_eq!(next.state.exec_main_status, 15);
        assert_eq!(next.state.active_state, "inactive");
        assert_eq!(next.state.main_pid, 10, "fields the signals did not carry come from the known state");
        assert_eq!(next.changed_mono, 200);

        let next = resolve_state(unit, None, &signal_unit, &signal_service, None);
        assert_eq!(next.state.unit, unit);
        assert_eq!(next.state.load_state, "loaded");
        assert_eq!(next.state.exec_main_status, 15);
        let next = resolve_state(unit, None, &Properties::new(), &signal_service, None);
        assert_eq!((next.state.active_state.as_str(), next.state.sub_state.as_str()), ("inactive", "dead"));
    }

    fn changed(unit: &str, interface: &str, entries: &[(&str, Value<'_>)]) -> Signal {
        Signal::Changed { unit: unit.into(), interface: interface.into(), props: props(entries) }
    }

    #[test]
    fn plan_merges_changes_until_new_or_removed() {
        let a = "containerctl@a.service";
        let b = "containerctl@b.service";
        let steps = plan(vec![
            changed(a, UNIT_INTERFACE, &[("ActiveState", Value::from("deactivating"))]),
            changed(b, UNIT_INTERFACE, &[]),
            changed(a, SERVICE_INTERFACE, &[("Result", Value::from("success"))]),
            changed(a, UNIT_INTERFACE, &[("ActiveState", Value::from("inactive"))]),
            Signal::Removed(a.into()),
            Signal::New(a.into()),
            changed(a, UNIT_INTERFACE, &[]),
            changed(b, UNIT_INTERFACE, &[]),
            Signal::Reloaded,
            changed(b, UNIT_INTERFACE, &[]),
        ]);
        let summary: Vec<String> = steps
            .iter()
            .map(|step| match step {
                Step::Read { unit, removed, unit_props, service_props, .. } => format!(
                    "read {unit} removed={removed} active={:?} result={:?}",
                    prop_string(unit_props, "ActiveState"),
                    prop_string(service_props, "Result")
                ),
                Step::New(unit) => format!("new {unit}"),
                Step::Removed(unit) => format!("removed {unit}"),
                Step::Reloaded => "reloaded".into(),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "read containerctl@a.service removed=true active=Some(\"inactive\") result=Some(\"success\")",
                "read containerctl@b.service removed=false active=None result=None",
                "removed containerctl@a.service",
                "new containerctl@a.service",
                "read containerctl@a.service removed=false active=None result=None",
                "reloaded",
                "read containerctl@b.service removed=false active=None result=None",
            ]
        );
    }

    fn empty_message() -> Message {
        Message::method_call("/", "Ping").expect("static names are valid").build(&()).expect("empty body")
    }

    #[test]
    fn bus_errors_are_classified() {
        let method_error = |name: &str| {
            zbus::Error::MethodError(
                zbus::names::OwnedErrorName::try_from(name.to_owned()).expect("valid error name"),
                Some("detail".into()),
                empty_message(),
            )
        };
        let unit = Some("containerctl@x.service");
        let e = SystemdError::from_bus(
            "start containerctl@x.service",
            unit,
            method_error("org.freedesktop.systemd1.NoSuchUnit"),
        );
        assert!(matches!(&e, SystemdError::NoSuchUnit { unit } if unit == "containerctl@x.service"));
        assert_eq!(e.to_string(), "no such unit containerctl@x.service");
        let e = SystemdError::from_bus(
            "stop containerctl@x.service",
            unit,
            method_error("org.freedesktop.DBus.Error.AccessDenied"),
        );
        assert!(matches!(e, SystemdError::AccessDenied { .. }));
        assert_eq!(
            e.to_string(),
            "systemd denied access to stop containerctl@x.service: detail (containerctld must run as root)"
        );
        let e = SystemdError::from_bus(
            "start containerctl@x.service",
            unit,
            method_error("org.freedesktop.systemd1.UnitMasked"),
        );
        assert!(
            matches!(&e, SystemdError::Refused { error, .. } if error == "org.freedesktop.systemd1.UnitMasked")
        );
        let e =
            SystemdError::from_bus("start containerctl@x.service", unit, method_error("org.example.Other"));
        assert!(matches!(e, SystemdError::Bus { .. }));
        let io = zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert!(SystemdError::from_bus("reload its configuration", None, io).ends_watch());
    }
}
