//! The runner: the main process of `containerctl@NAME.service`.
//!
//! It turns a container's life into what systemd understands: READY=1 once the container runs
//! (once healthy when a health check is set), STATUS= lines, WATCHDOG=1 while not unhealthy, the
//! container's output on its own stdout for journald, and the container's exit status as its own.
//! It is the only module that drives Docker for a unit; it owns exactly one container,
//! `containerctl-NAME`, or, for a unit with `[deploy]`, the Swarm service of that name
//! (see [`swarm`]).

pub mod exits;
pub mod hostpath;
pub mod lock;
pub mod output;
pub mod registry;
pub mod slots;
pub mod spec;
mod stop_clock;
pub mod swarm;

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::signal::unix::{signal, SignalKind};

use crate::journal;
use crate::notify;
use crate::unit::{Unit, VolumeSource};
use output::{Relay, Stream};

/// The unit cannot run as defined (missing device, digest mismatch, no definition, a registry
/// that refuses the pull for want of a valid login). systemd does not restart on it
/// (RestartPreventExitStatus= in the template): retrying would not help.
pub const EXIT_CONFIG: u8 = 78;
/// Docker failed (unreachable, pull failed, create refused); restarting may help.
pub const EXIT_DOCKER: u8 = 125;
/// The health check failed `retries` times in a row.
pub const EXIT_UNHEALTHY: u8 = 123;

const IDENT: &str = "containerctl-runner";

/// How long a runner waits for a start slot ([`slots`]) before it fails: the slots' holders are
/// bounded by [`DOCKER_WAIT_MAX`], so only a host whose starts keep failing gets here.
pub const SLOT_WAIT_MAX: Duration = Duration::from_secs(30 * 60);
/// How long the preparation (connect, inspect, create, start) may wait on dockerd without
/// progress before the runner fails with `EXIT_DOCKER` (a pull's progress counts as progress).
pub const DOCKER_WAIT_MAX: Duration = Duration::from_secs(5 * 60);
/// While it waits (for a slot, on dockerd), the runner asks systemd for this much more start
/// time every [`EXTEND_EVERY`], so TimeoutStartSec= counts neither wait; the two bounds above
/// end a wait that would never finish.
const EXTEND_BY: Duration = Duration::from_secs(30);
const EXTEND_EVERY: Duration = Duration::from_secs(10);
/// How much longer than `stop_timeout` a stop may wait on dockerd: the runner keeps
/// TimeoutStopSec= from running out for that long. dockerd kills a container that ignores its
/// stop signal after `stop_timeout`, so only a busy dockerd (hundreds of units stopping at once,
/// as at a host's shutdown: 465 of 500 runners were killed at TimeoutStopSec= before) makes a stop
/// take longer; a killed runner left its container running, dockerd was stopped with it still
/// running and spent the next boot cleaning up.
pub const STOP_QUEUE_MAX: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Docker(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => EXIT_CONFIG,
            RunError::Docker(_) => EXIT_DOCKER,
        }
    }
}

fn docker_err(context: &str) -> impl Fn(DockerError) -> RunError + '_ {
    move |e| RunError::Docker(format!("{context}: {}", describe(&e)))
}

fn describe(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        other => other.to_string(),
    }
}

pub fn is_not_found(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code: 404, .. })
}

/// Logs a line of the runner's own (not the container's) under the unit.
pub fn log(priority: u8, message: &str) {
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        journal::send(priority, IDENT, message, &[]);
    } else {
        eprintln!("{IDENT}: {message}");
    }
}

/// Where dockerd listens: DOCKER_HOST=unix://... or the default socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Connects to dockerd ([`docker_host`]), negotiating the API version down to what the engine
/// speaks. Registry credentials go out URL-safe ([`registry::url_safe_auth`]).
pub async fn connect() -> Result<Docker, RunError> {
    let host = docker_host();
    let pinged = match host.strip_prefix("unix://") {
        Some(socket) => ping_api_version(socket).await,
        None => None,
    };
    let version = match pinged {
        Some(v) if v < *bollard::API_DEFAULT_VERSION => v,
        _ => *bollard::API_DEFAULT_VERSION,
    };
    let docker = Docker::connect_with_unix(&host, 120, &version)
        .map_err(docker_err("cannot connect to dockerd"))?
        .with_request_modifier(registry::url_safe_auth);
    if pinged.is_some() {
        return Ok(docker);
    }
    docker.negotiate_version().await.map_err(docker_err("cannot reach dockerd"))
}

/// dockerd's API version from the `Api-Version` header of `GET /_ping`, which it answers without
/// asking anything else; bollard's negotiation reads it from `GET /version`, which asks containerd
/// and runc for their versions too (11 ms of every start). None: negotiate the usual way.
async fn ping_api_version(socket: &str) -> Option<bollard::ClientVersion> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let uri: hyper::Uri = hyperlocal::Uri::new(socket, "/_ping").into();
    let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(hyperlocal::UnixConnector);
    let response = tokio::time::timeout(Duration::from_secs(30), client.get(uri)).await.ok()?.ok()?;
    let header = response.headers().get("api-version")?.to_str().ok()?;
    let (major, minor) = header.trim().split_once('.')?;
    Some(bollard::ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
}

/// Runs `unit` to the end and returns the exit status for the runner's process.
pub async fn run(unit: Unit, start_slots: Vec<(u32, std::fs::File)>, exits: exits::ExitRecord) -> u8 {
    // Read at every start, so a container gets the secrets' values as they are now.
    let secrets = match crate::secrets::Store::from_env().resolve(&unit.secrets) {
        Ok(s) => s,
        Err(e) => {
            let e = RunError::Config(format!("refusing to start: {e}"));
            notify::status(&format!("failed: {e}"));
            log(journal::ERR, &e.to_string());
            return e.exit_code();
        }
    };
    if unit.deploy.is_some() {
        return swarm::run(unit, secrets).await;
    }
    let mut runner = Runner {
        unit,
        start_slots,
        exits,
        secrets,
        docker: None,
        hash: String::new(),
        owned: false,
        progress: Rc::new(Cell::new(Instant::now())),
    };
    match runner.run().await {
        Ok(code) => code,
        Err(Failure { error, keep }) => {
            notify::status(&format!("failed: {error}"));
            log(journal::ERR, &error.to_string());
            if !keep {
                runner.remove().await;
            }
            // A failed run is restarted restart_sec after it ended, as an exit is.
            runner.exits.ended(exits::Ended::Failure, crate::time::now_ns(), |m| log(journal::WARNING, m));
            error.exit_code()
        }
    }
}

/// How `Runner::run` failed, and whether the container stays for the next start (a wait that
/// took too long is no reason to throw away what dockerd did).
struct Failure {
    error: RunError,
    keep: bool,
}

impl From<RunError> for Failure {
    fn from(error: RunError) -> Self {
        Failure { error, keep: false }
    }
}

/// How the preparation of a start ended.
enum Preparation {
    Done(Result<Prepared, RunError>),
    Stopped,
    TooLong(Duration),
}

struct Runner {
    unit: Unit,
    /// The host's start slots, opened before the runner locked itself ([`slots::prepare`]);
    /// taken by the start.
    start_slots: Vec<(u32, std::fs::File)>,
    /// When the container last exited by itself, and where to record its next such exit: see
    /// [`exits`].
    exits: exits::ExitRecord,
    /// The values of the unit's secrets, read at start (never logged).
    secrets: crate::secrets::Resolved,
    docker: Option<Docker>,
    hash: String,
    /// Whether `containerctl-NAME` is known to be ours (labelled for this unit, or created here).
    /// Only then may the runner remove it.
    owned: bool,
    /// When the preparation last made progress (began, or a pull moved on): see
    /// [`DOCKER_WAIT_MAX`].
    progress: Rc<Cell<Instant>>,
}

/// How the container's life ended, as far as the runner is concerned.
enum End {
    Stopped,
    Unhealthy,
    Exited(i64),
}

impl Runner {
    fn name(&self) -> String {
        self.unit.name.container_name()
    }

    fn docker(&self) -> &Docker {
        self.docker.as_ref().expect("connected before use")
    }

    async fn run(&mut self) -> Result<u8, Failure> {
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| RunError::Docker(format!("signal handler: {e}")))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| RunError::Docker(format!("signal handler: {e}")))?;
        self.hash = spec::definition_hash(&self.unit, &self.secrets.fingerprint);
        let shared = self.unit.container.volumes.iter().any(|v| matches!(v.source, VolumeSource::Shared(_)));
        if shared && !crate::cluster::shared::shared().mounted {
            // Without the mount, the container would write to the local directory below it,
            // and its data would silently differ from the other hosts'.
            return Err(RunError::Docker(format!(
                "the cluster's shared volume is not mounted at {}: shared: volumes need this host \
                 in a cluster (`containerctl cluster join`); see `systemctl status {}`",
                crate::unit::Volume::SHARED_ROOT,
                crate::cluster::MOUNT_UNIT
            ))
            .into());
        }
        // After a failed run, before anything: failing runs follow each other restart_sec apart
        // (see [`exits`]).
        if let Some((_, wait)) = self.restart_wait(exits::Ended::Failure) {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop_requested(&mut term, &mut int) => return Ok(0),
            }
        }
        // Held until the container runs: see [`slots`].
        let slot = tokio::select! {
            r = take_slot(self.unit.name.as_str(), std::mem::take(&mut self.start_slots)) => r?,
            () = stop_requested(&mut term, &mut int) => return Ok(0),
        };
        let outcome = {
            self.progress.set(Instant::now());
            let progress = Rc::clone(&self.progress);
            let prepare = async {
                notify::status("connecting to dockerd");
                self.docker = Some(connect().await?);
                self.prepare().await
            };
            tokio::pin!(prepare);
            let mut extend = tokio::time::interval(EXTEND_EVERY);
            loop {
                tokio::select! {
                    r = &mut prepare => break Preparation::Done(r),
                    _ = extend.tick() => {
                        let idle = progress.get().elapsed();
                        if idle >= DOCKER_WAIT_MAX {
                            break Preparation::TooLong(idle);
                        }
                        notify::extend_timeout(EXTEND_BY);
                    }
                    () = stop_requested(&mut term, &mut int) => break Preparation::Stopped,
                }
            }
        };
        let prepared = match outcome {
            Preparation::Done(r) => r?,
            // Stopped while preparing: whatever dockerd made so far stays for the next start
            // (which reuses a container of this definition); only a running one is stopped.
            Preparation::Stopped => {
                self.stop_kept().await;
                return Ok(0);
            }
            Preparation::TooLong(idle) => {
                return Err(Failure {
                    error: RunError::Docker(format!(
                        "dockerd has not finished starting the container after {} s without progress: \
                         see `systemctl status docker` and `journalctl -u docker`",
                        idle.as_secs()
                    )),
                    keep: true,
                })
            }
        };
        drop(slot);
        let (end, exited_at) = self.supervise(prepared, &mut term, &mut int).await?;
        if !matches!(end, End::Stopped) {
            // restart_sec counts from here (see [`exits`]); a stop is not followed by a restart.
            self.exits.ended(exits::Ended::Exit, exited_at, |m| log(journal::WARNING, m));
        }
        Ok(match end {
            // A stop keeps the container, as an exit does: the next start of an unchanged
            // definition starts the same container again (see `prepare`) instead of paying a
            // remove and a create, and the last run can be inspected meanwhile.
            End::Stopped => 0,
            End::Unhealthy => EXIT_UNHEALTHY,
            End::Exited(code) => {
                let code = u8::try_from(code).unwrap_or(u8::MAX);
                let msg = format!("container exited with status {code}");
                notify::status(&msg);
                log(if code == 0 { journal::INFO } else { journal::WARNING }, &msg);
                code
            }
        })
    }

    /// Ready the container: adopt a running one with our definition, or make a fresh one.
    async fn prepare(&mut self) -> Result<Prepared, RunError> {
        let name = self.name();
        let docker = self.docker().clone();
        if let Some(existing) = match docker.inspect_container(&name, None).await {
            Ok(c) => Some(c),
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(docker_err("cannot inspect the container")(e)),
        } {
            let labels = existing.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
            if labels.get(spec::LABEL_UNIT).map(String::as_str) != Some(self.unit.name.as_str()) {
                return Err(RunError::Config(format!(
                    "a container named {name} exists that containerctl did not create: rename or remove it (docker rm -f {name})"
                )));
            }
            self.owned = true;
            let status = existing.state.as_ref().and_then(|s| s.status);
            if let Some(state @ (ContainerStateStatusEnum::REMOVING | ContainerStateStatusEnum::DEAD)) =
                status
            {
                // A removal dockerd has not finished (a runner stopped while removing it): a
                // start now fails with "container is marked for removal", so let it end.
                self.finish_removal(state == ContainerStateStatusEnum::DEAD).await?;
                return self.create().await;
            }
            let running = existing.state.as_ref().and_then(|s| s.running).unwrap_or(false);
            let same_definition = labels.get(spec::LABEL_HASH).is_some_and(|h| *h == self.hash);
            // A running container is adopted as it is; a stopped one is started again only if
            // its image is still what image:version names here (a tag moved by a pull or a
            // `docker tag` gets a new container, checked against the pinned digest below).
            let same_image =
                running || (same_definition && self.same_image(existing.image.as_deref()).await?);
            let same = same_definition && same_image;
            if same {
                let events = Some(self.events());
                let health =
                    if running { existing.state.and_then(|s| s.health).and_then(|h| h.status) } else { None };
                let attach = self.attach().await?;
                let id = existing.id.unwrap_or(name);
                if running {
                    log(journal::INFO, &format!("adopted running container {}", short(&id)));
                } else {
                    // Like Docker's own restart: the same container, started again. Docker mounts
                    // its bind sources and maps its devices again, so they are checked again.
                    self.check_devices()?;
                    self.check_host_paths()?;
                    let held = self.hold_restart().await;
                    docker
                        .start_container(&id, None)
                        .await
                        .map_err(docker_err("cannot start the container"))?;
                    log(journal::INFO, &format!("restarted container {}{held}", short(&id)));
                }
                return Ok(Prepared { attach, events, health, id });
            }
            let why = if !same_definition {
                "its definition changed"
            } else {
                "its image is no longer the one image:version names"
            };
            log(journal::INFO, &format!("replacing stale container {name}: {why}"));
            if running {
                let t = spec::stop_seconds(&self.unit);
                let _ = docker
                    .stop_container(&name, Some(StopContainerOptionsBuilder::default().t(t).build()))
                    .await;
            }
            docker
                .remove_container(&name, Some(RemoveContainerOptionsBuilder::default().force(true).build()))
                .await
                .map_err(docker_err("cannot remove the stale container"))?;
        }
        self.create().await
    }

    /// Lets a removal of `containerctl-NAME` that dockerd began finish; `dead`: dockerd gave up
    /// on it, so remove it again.
    async fn finish_removal(&self, dead: bool) -> Result<(), RunError> {
        let name = self.name();
        log(journal::INFO, &format!("waiting for dockerd to finish removing container {name}"));
        notify::status(&format!("waiting for dockerd to remove the old container {name}"));
        if dead {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            match self.docker().remove_container(&name, Some(options)).await {
                Ok(()) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                // 409: another removal is under way; wait for it below.
                Err(DockerError::DockerResponseServerError { status_code: 409, .. }) => {}
                Err(e) => return Err(docker_err("cannot remove the dead container")(e)),
            }
        }
        let options = WaitContainerOptionsBuilder::default().condition("removed").build();
        match self.docker().wait_container(&name, Some(options)).next().await {
            Some(Ok(_)) | None => Ok(()),
            Some(Err(DockerError::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(e)) if is_not_found(&e) => Ok(()),
            Some(Err(e)) => Err(docker_err("cannot wait for the old container's removal")(e)),
        }
    }

    /// Creates and starts a fresh container.
    async fn create(&mut self) -> Result<Prepared, RunError> {
        let name = self.name();
        let docker = self.docker().clone();
        self.ensure_image().await?;
        self.check_devices()?;
        let checked = self.check_host_paths()?;
        notify::status("creating container");
        let body = spec::create_body(&checked, &self.hash, &self.secrets);
        let created = docker
            .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body)
            .await
            .map_err(docker_err("cannot create the container"))?;
        self.owned = true;
        let attach = self.attach().await?;
        let events = Some(self.events());
        let held = self.hold_restart().await;
        docker.start_container(&created.id, None).await.map_err(docker_err("cannot start the container"))?;
        log(
            journal::INFO,
            &format!(
                "started container {} from {}{held}",
                short(&created.id),
                self.unit.container.reference()
            ),
        );
        Ok(Prepared { attach, events, health: None, id: created.id })
    }

    /// When the last run ended, if it ended as `how`, and how long to hold this start until
    /// `restart_sec` has passed since (at most [`exits::LEAD`]: systemd waited the rest); a hold
    /// is said in the unit's status.
    fn restart_wait(&self, how: exits::Ended) -> Option<(i64, Duration)> {
        let ended = self.exits.last(how)?;
        let wait = exits::hold(ended, self.unit.service.restart_sec, crate::time::now_ns());
        if !wait.is_zero() {
            notify::status(&format!(
                "starting in {} ms: restart_sec counts from the end of the last run",
                wait.as_millis()
            ));
        }
        Some((ended, wait))
    }

    /// After the container's last run ended (other than by a stop or a failure), waits out
    /// [`Self::restart_wait`]; what to add to the start's journal line.
    async fn hold_restart(&self) -> String {
        let Some((exited, wait)) = self.restart_wait(exits::Ended::Exit) else { return String::new() };
        let restart_sec = self.unit.service.restart_sec;
        tokio::time::sleep(wait).await;
        let after =
            Duration::from_nanos(u64::try_from(crate::time::now_ns().saturating_sub(exited)).unwrap_or(0));
        format!(", {} ms after it exited (restart_sec {} ms)", after.as_millis(), restart_sec.as_millis())
    }

    /// Every mapped device must exist on the host.
    fn check_devices(&self) -> Result<(), RunError> {
        match self.unit.container.devices.iter().find(|d| !Path::new(&d.host).exists()) {
            Some(d) => Err(RunError::Config(format!(
                "device {} is missing: connect it or remove it from devices",
                d.host.display()
            ))),
            None => Ok(()),
        }
    }

    /// Whether `image` (a container's image ID) is what image:version names now. An image that
    /// is gone or unreadable is "not the same": the container is replaced, and the create path
    /// pulls and checks the digest as for a first start.
    async fn same_image(&self, image: Option<&str>) -> Result<bool, RunError> {
        let Some(image) = image else { return Ok(false) };
        match self.docker().inspect_image(&self.unit.container.reference()).await {
            Ok(current) => Ok(current.id.as_deref() == Some(image)),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(docker_err("cannot inspect the image")(e)),
        }
    }

    /// The unit with its bind-mount sources checked right before Docker gets them (see
    /// [`hostpath`]); the allowed roots come from containerctl.toml's policy.
    fn check_host_paths(&self) -> Result<Unit, RunError> {
        let binds = self.unit.container.volumes.iter().any(|v| !matches!(v.source, VolumeSource::Named(_)));
        if !binds {
            return Ok(self.unit.clone());
        }
        let file = crate::config::path();
        let config = crate::config::load(&file).map_err(|d| {
            RunError::Config(format!(
                "cannot read the policy to check host paths: {d}; fix {}",
                file.display()
            ))
        })?;
        hostpath::check_volumes(&self.unit, &config.policy.allowed_host_paths)
            .map_err(|r| RunError::Config(format!("refusing to start: {r}")))
    }

    async fn attach(&self) -> Result<bollard::container::AttachContainerResults, RunError> {
        let options = AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .logs(false)
            .build();
        self.docker()
            .attach_container(&self.name(), Some(options))
            .await
            .map_err(docker_err("cannot attach to the container"))
    }

    /// The container's `die` and health events. `die` carries the exit code and comes before
    /// dockerd's cleanup (unmounts, network), which it does holding the container's lock: the
    /// answer to `wait` comes only after it, 100-450 ms later. Docker's own restart policy starts
    /// its delay at the die, so the runner ends there too, and systemd's restart delay runs
    /// while dockerd cleans up (a new runner's inspect waits for the lock, as Docker's restart
    /// does). `wait` stays the fallback: it also ends a runner whose stream broke.
    fn events(&self) -> EventStream {
        let filters = HashMap::from([
            ("container", vec![self.name()]),
            ("type", vec!["container".to_owned()]),
            ("event", vec!["die".to_owned(), "health_status".to_owned()]),
        ]);
        self.docker().events(Some(EventsOptionsBuilder::default().filters(&filters).build())).boxed()
    }

    /// Makes sure `image:version` is present (pulling it with progress) and has the pinned digest.
    async fn ensure_image(&self) -> Result<(), RunError> {
        let reference = self.unit.container.reference();
        let image = match self.docker().inspect_image(&reference).await {
            Ok(image) => image,
            Err(e) if is_not_found(&e) => {
                self.pull().await?;
                self.docker()
                    .inspect_image(&reference)
                    .await
                    .map_err(docker_err("cannot inspect the pulled image"))?
            }
            Err(e) => return Err(docker_err("cannot inspect the image")(e)),
        };
        if let Some(want) = &self.unit.container.digest {
            let id_matches = image.id.as_deref() == Some(want.as_str());
            let repo_matches = image.repo_digests.iter().flatten().any(|d| d.ends_with(&format!("@{want}")));
            if !id_matches && !repo_matches {
                let have = image.id.unwrap_or_default();
                return Err(RunError::Config(format!(
                    "refusing to start: {reference} is {have}, but the unit pins digest {want}"
                )));
            }
        }
        Ok(())
    }

    async fn pull(&self) -> Result<(), RunError> {
        let c = &self.unit.container;
        let reference = c.reference();
        log(journal::INFO, &format!("pulling {reference}"));
        notify::status(&format!("pulling {reference}"));
        let options = CreateImageOptionsBuilder::default().from_image(&c.image).tag(&c.version).build();
        let (auth, sent) = match registry::for_image(&c.image) {
            Some(cred) => (Some(cred.auth), Some(cred.source)),
            None => (None, None),
        };
        let mut stream = self.docker().create_image(Some(options), None, auth);
        let mut layers: HashMap<String, (i64, i64)> = HashMap::new();
        let mut last = Instant::now();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| {
                let detail = describe(&e);
                if crate::credentials::is_auth_refusal(&detail) {
                    // Retrying with the same credential would only hammer the registry (and
                    // risk a lockout): a configuration error, not restarted.
                    RunError::Config(registry::refusal_message(&reference, &c.image, sent.as_ref(), &detail))
                } else {
                    RunError::Docker(format!("cannot pull {reference}: {detail}"))
                }
            })?;
            if let (Some(id), Some(p)) = (info.id, info.progress_detail) {
                if let (Some(cur), Some(total)) = (p.current, p.total) {
                    layers.insert(id, (cur, total));
                }
            }
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                let (cur, total) = layers.values().fold((0, 0), |(a, b), (c, t)| (a + c, b + t));
                let msg = format!(
                    "pulling {reference}: {} of {} MB in {} layers",
                    cur >> 20,
                    total >> 20,
                    layers.len()
                );
                notify::status(&msg);
                notify::extend_timeout(EXTEND_BY);
                self.progress.set(Instant::now());
                log(journal::INFO, &msg);
            }
        }
        log(journal::INFO, &format!("pulled {reference}"));
        Ok(())
    }

    /// Follows the running container to its end: how it ended, and when (the `die` event's time,
    /// ns since the epoch).
    async fn supervise(
        &self,
        p: Prepared,
        term: &mut tokio::signal::unix::Signal,
        int: &mut tokio::signal::unix::Signal,
    ) -> Result<(End, i64), RunError> {
        let Prepared { attach, mut events, mut health, id } = p;
        let mut output = attach.output;
        let mut relay = Relay::from_env().with_limit(self.unit.service.log_rate_limit);
        let wait_options = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let mut wait = self.docker().wait_container(&id, Some(wait_options)).boxed();
        let want_health = self.unit.health.is_some();
        let mut ready = false;
        let mut stopping: Option<End> = None;
        let mut output_open = true;
        let watchdog = notify::watchdog_interval().map(|d| d / 3);
        let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        // While systemd stops the unit: TimeoutStopSec= extended until the container is gone.
        let mut stop = self.stop_clock();
        let started = short(&id);
        let exit_code;
        let mut exited_at = None;
        loop {
            if !ready && (!want_health || health == Some(HealthStatusEnum::HEALTHY)) {
                ready = true;
                let msg = if want_health {
                    format!("running container {started}, healthy")
                } else {
                    format!("running container {started}")
                };
                notify::ready(&msg);
            }
            tokio::select! {
                chunk = output.next(), if output_open => match chunk {
                    Some(Ok(LogOutput::StdOut { message })) => relay.push(Stream::Stdout, &message),
                    Some(Ok(LogOutput::StdErr { message })) => relay.push(Stream::Stderr, &message),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => output_open = false,
                },
                event = next_event(&mut events) => match event {
                    Some((action, code, at)) => {
                        if let ("die", Some(code)) = (action.as_str(), code) {
                            exit_code = code;
                            exited_at = at;
                            break;
                        }
                        if let Some(status) = action.strip_prefix("health_status: ") {
                            let new = match status.trim() {
                                "healthy" => HealthStatusEnum::HEALTHY,
                                "unhealthy" => HealthStatusEnum::UNHEALTHY,
                                _ => HealthStatusEnum::STARTING,
                            };
                            if health != Some(new) && ready {
                                notify::status(&format!("running container {started}, {status}"));
                            }
                            if new == HealthStatusEnum::UNHEALTHY && stopping.is_none() {
                                let detail = self.last_health_output(&id).await;
                                let msg = format!("unhealthy: {} checks failed in a row{detail}", self.unit.health.as_ref().map_or(0, |h| h.retries));
                                notify::status(&msg);
                                log(journal::ERR, &msg);
                                stopping = Some(End::Unhealthy);
                                self.stop_in_background();
                            }
                            health = Some(new);
                        }
                    }
                    None => events = None,
                },
                () = sleep_until_due(relay.note_due()), if relay.note_due().is_some() => {
                    // At the priorities of the lines journald may have dropped: it reports the
                    // drop of a priority only with a message of that priority.
                    if let Some((note, warning)) = relay.take_note() {
                        log(journal::INFO, &note);
                        if warning {
                            log(journal::WARNING, &note);
                        }
                    }
                }
                _ = tick.tick(), if watchdog.is_some() => {
                    // Keep pinging while a stop is under way so the runner can finish it.
                    if health != Some(HealthStatusEnum::UNHEALTHY) || stopping.is_some() {
                        notify::watchdog();
                    }
                }
                () = stop_requested(term, int), if stopping.is_none() => {
                    notify::stopping("stopping container");
                    stopping = Some(End::Stopped);
                    stop.begin();
                    self.stop_in_background();
                }
                () = stop.due() => stop.extend(),
                result = wait.next() => {
                    exit_code = match result {
                        Some(Ok(r)) => r.status_code,
                        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
                        Some(Err(e)) => return Err(docker_err("lost the container")(e)),
                        None => return Err(RunError::Docker("lost the container: wait ended without a status".into())),
                    };
                    break;
                }
            }
        }
        // Pass on what the container wrote just before it exited.
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        while output_open {
            tokio::select! {
                chunk = output.next() => match chunk {
                    Some(Ok(LogOutput::StdOut { message })) => relay.push(Stream::Stdout, &message),
                    Some(Ok(LogOutput::StdErr { message })) => relay.push(Stream::Stderr, &message),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => output_open = false,
                },
                _ = &mut deadline => output_open = false,
            }
        }
        relay.finish();
        // Stopped by systemd: the unit is stopped once dockerd is done with the container. Its
        // `die` comes before dockerd's cleanup (network sandbox, mounts), which holds the
        // container's lock, so an inspect answers only after it. At a host's shutdown,
        // docker.service is stopped once the last unit is: with 500 units, dockerd still had
        // hundreds of cleanups to do, gave up after 15 s ("Force shutdown daemon") and removed
        // the stale sandboxes at the next boot, 30 s before it answered. A crash keeps exiting
        // at `die`, so that the restart comes as early as it can.
        if stop.began() {
            let _ = stop.hold(self.docker().inspect_container(&id, None)).await;
        }
        Ok((stopping.unwrap_or(End::Exited(exit_code)), exited_at.unwrap_or_else(crate::time::now_ns)))
    }

    async fn last_health_output(&self, id: &str) -> String {
        let Ok(c) = self.docker().inspect_container(id, None).await else { return String::new() };
        let last = c.state.and_then(|s| s.health).and_then(|h| h.log).and_then(|l| l.into_iter().last());
        match last {
            Some(r) => format!(
                " (last check exited {}: {})",
                r.exit_code.unwrap_or(-1),
                r.output.unwrap_or_default().trim().chars().take(200).collect::<String>()
            ),
            None => String::new(),
        }
    }

    fn stop_in_background(&self) {
        let docker = self.docker().clone();
        let name = self.name();
        let t = spec::stop_seconds(&self.unit);
        tokio::spawn(async move {
            let _ =
                docker.stop_container(&name, Some(StopContainerOptionsBuilder::default().t(t).build())).await;
        });
    }

    /// After a stop while preparing: stops the container if it runs (the unit is being stopped;
    /// a start may have got through) and keeps it, so the next start of this definition reuses
    /// it instead of creating it again. Failures are logged, not fatal.
    async fn stop_kept(&self) {
        notify::stopping("stopping container");
        // A dockerd busy with the start it was asked for answers late: systemd is kept waiting.
        let _ = self.stop_clock().hold(self.stop_kept_now()).await;
    }

    /// The clock of a stop of this unit ([`stop_clock`]).
    fn stop_clock(&self) -> stop_clock::StopClock {
        stop_clock::StopClock::new(Duration::from_secs(
            u64::try_from(spec::stop_seconds(&self.unit)).unwrap_or(0),
        ))
    }

    async fn stop_kept_now(&self) {
        let Some(docker) = self.docker.as_ref() else { return };
        let name = self.name();
        let ours = match docker.inspect_container(&name, None).await {
            Ok(c) => {
                let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
                labels.get(spec::LABEL_UNIT).map(String::as_str) == Some(self.unit.name.as_str())
            }
            Err(_) => false,
        };
        if !ours {
            return;
        }
        let options = StopContainerOptionsBuilder::default().t(spec::stop_seconds(&self.unit)).build();
        match docker.stop_container(&name, Some(options)).await {
            Ok(()) => {}
            // 304: not running.
            Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) if is_not_found(&e) => return,
            Err(e) => log(journal::WARNING, &format!("cannot stop container {name}: {}", describe(&e))),
        }
        log(journal::INFO, &format!("stopped while starting: container {name} kept for the next start"));
    }

    /// Removes the container, whatever state it is in. Failures are logged, not fatal.
    async fn remove(&self) {
        let Some(docker) = self.docker.as_ref().filter(|_| self.owned) else { return };
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match docker.remove_container(&self.name(), Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(DockerError::DockerResponseServerError { status_code: 409, .. }) => {}
            Err(e) => {
                log(journal::WARNING, &format!("cannot remove container {}: {}", self.name(), describe(&e)))
            }
        }
    }
}

/// Either stop signal: SIGTERM (systemd's stop) or SIGINT (by hand). Cancel-safe, as `recv` is.
async fn stop_requested(term: &mut tokio::signal::unix::Signal, int: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Waits for a start slot ([`slots`]) while telling systemd what the start waits for and
/// keeping its start timeout from running out.
async fn take_slot(
    name: &str,
    start_slots: Vec<(u32, std::fs::File)>,
) -> Result<Option<slots::Slot>, RunError> {
    let mut extended: Option<Instant> = None;
    let mut count = 0;
    let taken = slots::take(start_slots, std::process::id() as usize, SLOT_WAIT_MAX, |w| {
        if extended.is_none() {
            count = w.slots;
            notify::status(&format!(
                "waiting for a start slot: all {} are taken by units starting (units.parallel_starts)",
                w.slots
            ));
        }
        if extended.is_none_or(|t| t.elapsed() >= EXTEND_EVERY) {
            notify::extend_timeout(EXTEND_BY);
            extended = Some(Instant::now());
        }
    });
    let started = Instant::now();
    match taken.await {
        Ok(slot) => {
            if let (Some(slot), true) = (&slot, count > 0) {
                let waited = started.elapsed().as_secs_f64();
                log(
                    journal::INFO,
                    &format!("took start slot {} of {count} after waiting {waited:.1} s", slot.index),
                );
            }
            Ok(slot)
        }
        Err(waited) => Err(RunError::Docker(format!(
            "no start slot came free in {} s: {count} units kept starting all that time ({name} was \
             waiting); see `systemctl list-jobs` and units.parallel_starts in containerctl.toml(5)",
            waited.as_secs()
        ))),
    }
}

type EventStream =
    futures_util::stream::BoxStream<'static, Result<bollard::models::EventMessage, DockerError>>;

struct Prepared {
    attach: bollard::container::AttachContainerResults,
    events: Option<EventStream>,
    health: Option<HealthStatusEnum>,
    id: String,
}

/// The next event's action, the exit code a `die` carries and the event's time (ns since the
/// epoch); pending forever when there is no stream.
async fn next_event(events: &mut Option<EventStream>) -> Option<(String, Option<i64>, Option<i64>)> {
    match events {
        Some(stream) => loop {
            match stream.next().await {
                Some(Ok(ev)) => {
                    if let Some(action) = ev.action {
                        let code = ev
                            .actor
                            .and_then(|a| a.attributes)
                            .and_then(|a| a.get("exitCode").and_then(|c| c.parse().ok()));
                        return Some((action, code, ev.time_nano));
                    }
                }
                Some(Err(_)) | None => return None,
            }
        },
        None => std::future::pending().await,
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Sleeps until `due` (forever when None; the caller's guard keeps that branch off).
async fn sleep_until_due(due: Option<std::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
