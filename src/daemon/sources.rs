//! Start-up, the event sources (systemd signals, Docker events, samples, timers), the event
//! loop and shutdown of containerctld.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Daemon, Event};
use crate::config::Config;
use crate::db::Db;
use crate::notify;
use crate::runner::spec::LABEL_UNIT;
use crate::systemd::Systemd;

/// How often CPU and memory are sampled for each running container.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Systemd(Box<crate::systemd::SystemdError>),
}

impl From<crate::systemd::SystemdError> for StartError {
    fn from(e: crate::systemd::SystemdError) -> Self {
        StartError::Systemd(Box::new(e))
    }
}

/// Opens what the daemon needs (configuration, store, systemd, Docker, signing keys) and reads
/// the units' states. Nothing is served and no task is started: the binary does the wiring.
pub async fn open(config_path: &Path) -> Result<Arc<Daemon>, StartError> {
    let config: Config = crate::config::load(config_path).map_err(|d| StartError::Config(d.to_string()))?;
    remove_stale_temporaries(&config.unit_dir);
    // A write of registries.json cut short leaves its temporary (passwords, mode 0600) here.
    remove_stale_temporaries(&config.state_dir);
    let db = Db::open(&config.state_dir.join("containerctl.db"))?;
    let systemd = Systemd::connect().await?;
    let docker = match crate::runner::connect().await {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!("{e}: health, samples and events wait until dockerd answers");
            None
        }
    };
    let auth = crate::auth::Auth::load(&config.state_dir.join("keys"), db.tokens()?)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let daemon = Arc::new(Daemon::new(config, db, systemd, docker, auth));
    // The runners read secrets (and the key of their digests) from here: it exists from the start.
    daemon.secrets.ensure().map_err(|e| StartError::Config(format!("the secret store: {e}")))?;
    remove_stale_temporaries(daemon.secrets.dir());
    daemon.resync_systemd().await?;
    // Updates a containerctld that stopped left half-way: their unit files are whole (every
    // write is atomic) but nobody watched or rolled them back.
    for u in daemon.db().interrupt_updates(crate::time::now_ms())? {
        tracing::warn!(
            "the update of {} from {} to {} was interrupted: containerctld stopped during it; check the unit",
            u.start.unit,
            u.start.from_version,
            u.start.to_version
        );
    }
    // Moves a containerctld that stopped left: a target's staging is removed at the cluster's
    // start; a source's moves are settled in the background (`move_settle`).
    match daemon.db().interrupt_moves(crate::time::now_ms()) {
        Ok(0) => {}
        Ok(n) => tracing::warn!("{n} moves to this host were interrupted: containerctld stopped during them"),
        Err(e) => tracing::error!("cannot mark interrupted moves: {e}"),
    }
    super::move_settle::settle_unfinished_moves(&daemon);
    super::move_out::resume_soaks(&daemon);
    // Files written or changed while the daemon was down.
    daemon.record_hand_edits().await;
    daemon.sync_update_timers().await;
    if daemon.group_gid().is_none() {
        tracing::warn!(
            "group {} does not exist: only root can use the socket (create it with groupadd --system {})",
            daemon.config.group,
            daemon.config.group
        );
    }
    Ok(daemon)
}

/// Removes the temporaries a containerctld killed during an edit left in `dir` (the unit
/// directory, the state directory, the secret directory; the file itself was never touched: it is
/// replaced by a rename). A temporary whose
/// writer still runs (this process, or another containerctld) is kept.
fn remove_stale_temporaries(dir: &Path) {
    let own = std::process::id();
    let is_alive = |pid: u32| pid == own || is_containerctld(pid);
    let (removed, failed) = crate::atomic_file::remove_stale(dir, is_alive);
    for path in removed {
        tracing::info!("removed {}: a temporary file left by a containerctld that is gone", path.display());
    }
    for (path, e) in failed {
        tracing::warn!("cannot remove the stale temporary file {}: {e}", path.display());
    }
}

fn is_containerctld(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == "containerctld")
}

/// Handles the events of every source, one at a time, until the senders are gone.
pub async fn event_loop(daemon: Arc<Daemon>, mut rx: mpsc::Receiver<Event>) {
    while let Some(event) = rx.recv().await {
        daemon.handle(event).await;
    }
}

/// systemd's signals. A lost system bus ends the daemon (exit status 1) so that systemd restarts
/// it with a fresh connection and subscription; container units are not affected.
pub async fn systemd_source(daemon: Arc<Daemon>, tx: mpsc::Sender<Event>) {
    match daemon.systemd.watch().await {
        Ok(mut changes) => {
            let _ = tx.send(Event::SystemdResync).await;
            while let Some(change) = changes.recv().await {
                if tx.send(Event::Systemd(change)).await.is_err() {
                    return;
                }
            }
            tracing::error!("lost the connection to systemd: exiting so that systemd restarts containerctld");
        }
        Err(e) => {
            tracing::error!("cannot watch systemd: {e}: exiting so that systemd restarts containerctld")
        }
    }
    notify::stopping("lost the connection to systemd");
    std::process::exit(1);
}

/// Waits for dockerd if it was not there at start, then runs the Docker event and sample sources.
pub async fn docker_sources(daemon: Arc<Daemon>, tx: mpsc::Sender<Event>) {
    let docker = loop {
        if let Some(d) = daemon.docker() {
            break d;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let Ok(d) = crate::runner::connect().await {
            tracing::info!("dockerd answers now");
            daemon.set_docker(d);
        }
    };
    tokio::spawn(sample_source(daemon.clone(), docker.clone(), tx.clone()));
    docker_source(docker, tx).await;
}

/// Docker's event stream for containerctl containers and image pulls. After a break it starts
/// again from the last event seen, so events that happened meanwhile are still recorded.
async fn docker_source(docker: bollard::Docker, tx: mpsc::Sender<Event>) {
    let mut since: Option<i64> = Some(crate::time::now_ms() / 1000 - 3600);
    loop {
        let filters = HashMap::from([("type", vec!["container", "image"])]);
        let mut builder = bollard::query_parameters::EventsOptionsBuilder::default().filters(&filters);
        if let Some(s) = since {
            builder = builder.since(&s.to_string());
        }
        let mut stream = docker.events(Some(builder.build()));
        if tx.send(Event::DockerConnected).await.is_err() {
            return;
        }
        while let Some(item) = stream.next().await {
            match item {
                Ok(m) => {
                    if let Some(t) = m.time {
                        since = Some(t);
                    }
                    let ours = m
                        .actor
                        .as_ref()
                        .and_then(|a| a.attributes.as_ref())
                        .is_some_and(|a| a.contains_key(LABEL_UNIT))
                        || m.action.as_deref() == Some("pull");
                    if ours && tx.send(Event::Docker(m)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("docker event stream broke: {e}");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// CPU and memory of every running containerctl container, sampled one-shot in turn.
async fn sample_source(daemon: Arc<Daemon>, docker: bollard::Docker, tx: mpsc::Sender<Event>) {
    let mut previous: HashMap<String, (u64, u64)> = HashMap::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tick.tick().await;
        let running: Vec<String> = daemon
            .units
            .read()
            .map(|u| u.iter().filter(|(_, s)| s.active_state == "active").map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        for name in running {
            let options = bollard::query_parameters::StatsOptionsBuilder::default()
                .stream(false)
                .one_shot(true)
                .build();
            let container = format!("containerctl-{name}");
            let Some(Ok(stats)) = docker.stats(&container, Some(options)).next().await else { continue };
            let memory_bytes = stats.memory_stats.as_ref().and_then(|m| m.usage);
            let cpu = stats.cpu_stats.as_ref();
            let total = cpu.and_then(|c| c.cpu_usage.as_ref()).and_then(|u| u.total_usage);
            let system = cpu.and_then(|c| c.system_cpu_usage);
            let cpus = cpu.and_then(|c| c.online_cpus).unwrap_or(1);
            let cpu_percent = match (total, system, previous.get(&name)) {
                (Some(t), Some(s), Some((pt, ps))) if s > *ps && t >= *pt => {
                    Some((t - pt) as f64 / (s - ps) as f64 * f64::from(cpus) * 100.0)
                }
                _ => None,
            };
            if let (Some(t), Some(s)) = (total, system) {
                previous.insert(name.clone(), (t, s));
            }
            if tx.send(Event::Sample { name, cpu_percent, memory_bytes }).await.is_err() {
                return;
            }
        }
    }
}

/// The unit list's file watch (inotify), waited on in a thread of its own (tokio registers a
/// descriptor it does not own only with `unsafe`): the events are taken into the listing at once
/// and an [`Event::UnitFiles`] tells the web page's stream, so a hand edit shows there without a
/// request. Listings take the queue themselves too.
pub fn spawn_unit_files_source(daemon: Arc<Daemon>, tx: mpsc::Sender<Event>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let Some(inotify) = daemon.listing.watch_waiter() else { return };
    let wait = move || loop {
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!(
                    "cannot wait on the unit files' watch ({e}): hand edits show at the next request"
                );
                return;
            }
        }
        match daemon.listing.files_seen() {
            Some(true) if tx.blocking_send(Event::UnitFiles).is_err() => return,
            Some(_) => {}
            None => return,
        }
    };
    if let Err(e) = std::thread::Builder::new().name("unit-files".into()).stack_size(256 * 1024).spawn(wait) {
        tracing::warn!(
            "cannot start the unit files' watch thread ({e}): hand edits show at the next request"
        );
    }
}

pub async fn timer_source(tx: mpsc::Sender<Event>) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        if tx.send(Event::Prune).await.is_err() {
            return;
        }
    }
}
