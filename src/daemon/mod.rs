//! containerctld: the API over systemd (zbus), Docker (bollard) and SQLite.
//!
//! Containers do not depend on the daemon: runners keep them going while it is down. The daemon
//! keeps live state pushed by systemd (PropertiesChanged) and Docker (events), records history,
//! and serves the API. Everything that makes the daemon do background work arrives as an
//! [`Event`] on one channel and is handled in [`Daemon::handle`]; requests are served by the API
//! handlers, which change things only through [`ops`].

pub mod drain;
mod error;
mod file_watch;
pub mod files;
mod import;
pub mod listing;
pub mod move_forward;
pub mod move_in;
pub mod move_out;
pub mod move_settle;
pub mod notifications;
pub mod ops;
mod registries;
mod requirements;
mod restart_loops;
mod restart_wake;
mod secrets;
pub mod sources;
pub mod update;
mod update_check;
mod update_swarm;
mod update_watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use crate::config::Config;
use crate::db::{Db, NewEvent, Retention};
use crate::search::{self, Found};
use crate::systemd::{Systemd, UnitChange, UnitState};
use crate::time::now_ms;
use crate::unit::{self, Unit, UnitName};

pub use error::OpError;
pub use move_in::{clean_stale_moves, MoveInError};
pub use sources::{open, StartError};

/// Everything that can make the daemon do work outside a request.
#[derive(Debug)]
pub enum Event {
    /// systemd pushed a change of a container unit.
    Systemd(UnitChange),
    /// Re-read every unit's state (after subscribing, to cover what happened before).
    SystemdResync,
    /// A Docker event about a containerctl container or an image.
    Docker(bollard::models::EventMessage),
    /// Docker's event stream (re)started: relist so nothing missed is lost.
    DockerConnected,
    /// A CPU/memory sample of a unit's container.
    Sample { name: String, cpu_percent: Option<f64>, memory_bytes: Option<u64> },
    /// A unit file or systemd's generator directory changed (the listing's inotify watch).
    UnitFiles,
    /// Time to apply the history retention.
    Prune,
}

/// A parsed unit file, cached by path, modification time and length.
#[derive(Debug, Clone)]
pub struct Definition {
    pub path: PathBuf,
    pub text: String,
    pub unit: Result<Unit, String>,
    stamp: (SystemTime, u64),
}

/// `logs --follow` streams at once, at most (each runs a journalctl process).
pub const MAX_LOG_FOLLOWERS: usize = 32;
/// The web page's event streams at once, at most.
pub const MAX_EVENT_STREAMS: usize = 64;

/// Live per-unit facts that do not come from systemd.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub health: Option<String>,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
}

pub struct Daemon {
    pub config: Config,
    pub db: Mutex<Db>,
    pub systemd: Systemd,
    /// Set once dockerd answered; containerctld starts and serves without it.
    docker: RwLock<Option<bollard::Docker>>,
    /// systemd's view, keyed by NAME; updated from signals, never polled. Every write tells
    /// `listing` (see `listing.rs`).
    units: RwLock<BTreeMap<String, UnitState>>,
    live: RwLock<HashMap<String, Live>>,
    definitions: RwLock<HashMap<PathBuf, Definition>>,
    /// The unit list as requests read it, built again only where something changed.
    listing: listing::Listing,
    /// How many times the store wrote updates or update checks (read by `listing`).
    updates_written: Arc<AtomicU64>,
    /// The definitions systemd loaded (the generator's copies) by path, with the stamp they were
    /// read at: a listing stats them but reads only the changed ones.
    loaded: files::StampedTexts,
    /// Serialises changes to unit files so two edits never interleave.
    pub write_lock: tokio::sync::Mutex<()>,
    group_gid: Option<u32>,
    /// Tokens and web sessions of the HTTP API.
    pub auth: crate::auth::Auth,
    /// Bumped whenever something a unit list shows may have changed (the web page's stream).
    pub changes: tokio::sync::watch::Sender<u64>,
    /// Cluster membership and its background work.
    pub cluster: crate::cluster::ops::Cluster,
    /// `logs --follow` streams open at once (each is a journalctl process).
    pub log_followers: crate::serve::Gate,
    /// The web page's event streams open at once.
    pub event_streams: crate::serve::Gate,
    /// Units with an update under way (one at a time per unit).
    updating: Mutex<std::collections::HashSet<String>>,
    /// Every [`Notice`], for whoever listens.
    pub notices: tokio::sync::broadcast::Sender<Notice>,
    /// The webhooks' queues and counters (`[notify]`).
    pub outbox: crate::webhook::Outbox,
    /// Recent automatic restarts per unit, to tell a restart loop.
    restart_loops: Mutex<restart_loops::RestartLoops>,
    /// The secrets' values (/var/lib/containerctl/secrets): written here, read by the runners.
    pub secrets: crate::secrets::Store,
    /// Moves this host is receiving, by id.
    moves_in: move_in::Moves,
    /// Moves received here that were committed or given up since this daemon started.
    moves_ended: move_in::Ended,
    /// Units being moved away from this host (one move per unit at a time).
    moving: Mutex<std::collections::HashSet<String>>,
}

/// Something that happened that someone may want to hear about: a unit failing, restarting in a
/// loop or turning unhealthy, what update checks and updates found and did, cluster nodes going
/// down and coming back. Made in one place each (`notifications.rs`'s `emit`, `emit_node`,
/// `notice`); subscribe with `Daemon::notices.subscribe()`. Webhooks get them through
/// `Daemon::outbox`.
pub type Notice = crate::webhook::Message;
pub use crate::webhook::EventKind as NoticeKind;

/// One unit as the API lists it (docs/api.md `Unit`).
pub use crate::wire::Unit as UnitView;

impl Daemon {
    pub fn new(
        config: Config,
        db: Db,
        systemd: Systemd,
        docker: Option<bollard::Docker>,
        auth: crate::auth::Auth,
    ) -> Daemon {
        let group_gid = nix::unistd::Group::from_name(&config.group).ok().flatten().map(|g| g.gid.as_raw());
        let cluster = crate::cluster::ops::Cluster::load(&config.state_dir, config.cluster_report_interval);
        let secrets = crate::secrets::Store::new(config.state_dir.join("secrets"));
        let outbox = crate::webhook::Outbox::new(config.notify.clone());
        let updates_written = db.updates_written();
        let listing =
            listing::Listing::new(search::search_path(), PathBuf::from(crate::generator::NORMAL_DIR));
        Daemon {
            config,
            db: Mutex::new(db),
            systemd,
            docker: RwLock::new(docker),
            units: RwLock::new(BTreeMap::new()),
            live: RwLock::new(HashMap::new()),
            definitions: RwLock::new(HashMap::new()),
            loaded: files::StampedTexts::default(),
            listing,
            updates_written,
            write_lock: tokio::sync::Mutex::new(()),
            group_gid,
            auth,
            changes: tokio::sync::watch::channel(0).0,
            cluster,
            log_followers: crate::serve::Gate::new(crate::serve::Limits {
                max_connections: MAX_LOG_FOLLOWERS,
                ..crate::serve::Limits::default()
            }),
            event_streams: crate::serve::Gate::new(crate::serve::Limits {
                max_connections: MAX_EVENT_STREAMS,
                ..crate::serve::Limits::default()
            }),
            updating: Mutex::new(std::collections::HashSet::new()),
            notices: tokio::sync::broadcast::channel(64).0,
            outbox,
            restart_loops: Mutex::new(restart_loops::RestartLoops::default()),
            secrets,
            moves_in: std::sync::Mutex::new(HashMap::new()),
            moves_ended: std::sync::Mutex::new(HashMap::new()),
            moving: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The health Docker reports of the unit's container now (`healthy`, `unhealthy`,
    /// `starting`), if it has a check and Docker answers.
    pub async fn container_health(&self, name: &UnitName) -> Option<String> {
        let docker = self.docker()?;
        let c = docker.inspect_container(&name.container_name(), None).await.ok()?;
        c.state?.health?.status.map(|h| h.to_string())
    }

    pub fn docker(&self) -> Option<bollard::Docker> {
        self.docker.read().ok().and_then(|d| d.clone())
    }

    pub fn set_docker(&self, docker: bollard::Docker) {
        if let Ok(mut d) = self.docker.write() {
            *d = Some(docker);
        }
    }

    /// Tells the web page's stream that the unit list may have changed.
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn group_gid(&self) -> Option<u32> {
        self.group_gid
    }

    pub fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        // A panic while holding the lock leaves SQLite consistent (transactions); keep serving.
        self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The unit files of the search path, parsed (cached while a file is unchanged).
    pub fn definitions(&self) -> Vec<(UnitName, Definition)> {
        let mut out = Vec::new();
        for found in search::discover(&search::search_path()) {
            if let Found::File { name, path } = found {
                if let Some(d) = self.definition_at(&name, &path, true) {
                    out.push((name, d));
                }
            }
        }
        out
    }

    /// systemd's ActiveState of unit `name` as last seen ("" when unknown).
    pub fn active_state(&self, name: &str) -> String {
        self.units.read().ok().and_then(|u| u.get(name).map(|s| s.active_state.clone())).unwrap_or_default()
    }

    /// The definition of `name` from the search path, if it has a file.
    pub fn definition(&self, name: &UnitName) -> Option<Definition> {
        let path = search::find(&search::search_path(), name)?;
        self.definition_at(name, &path, true)
    }

    /// The definition in the file at `path`, parsed; from the cache when `trust_stamp` and the
    /// file's stamp (modification time, length) is the one it was read at.
    fn definition_at(&self, name: &UnitName, path: &Path, trust_stamp: bool) -> Option<Definition> {
        let stamp = file_stamp(path)?;
        if let Some(d) = self.definitions.read().ok()?.get(path) {
            if trust_stamp && d.stamp == stamp {
                return Some(d.clone());
            }
        }
        let d = parse_definition(name, path, stamp);
        if let Ok(mut cache) = self.definitions.write() {
            cache.insert(path.to_owned(), d.clone());
        }
        Some(d)
    }

    pub fn view(&self, name: &UnitName) -> Option<UnitView> {
        let def = self.definition(name);
        let units = self.units.read().ok()?;
        let state = units.get(name.as_str());
        if def.is_none() && !state.is_some_and(shown_without_file) {
            return None;
        }
        let live = self.live.read().ok()?;
        let loaded = self.loaded_text(name.as_str());
        let mut v = view(name.as_str(), def.as_ref(), loaded.as_deref(), state, live.get(name.as_str()));
        if def.is_some() {
            v.update = self.update_states().remove(name.as_str());
        }
        Some(v)
    }

    /// The last check and the last update of every unit that has either, by NAME.
    fn update_states(&self) -> HashMap<String, crate::wire::UnitUpdate> {
        let mut out: HashMap<String, crate::wire::UnitUpdate> = HashMap::new();
        let db = self.db();
        for c in db.checks().unwrap_or_default() {
            let u = out.entry(c.unit).or_default();
            // A check of another image or version than the unit has now says nothing of it.
            u.available = c.available;
            u.checked_at_ms = Some(c.at_ms);
            u.check_error = c.error;
        }
        for r in db.last_updates().unwrap_or_default() {
            let s = r.start;
            out.entry(s.unit).or_default().last = Some(crate::wire::LastUpdate {
                outcome: r.outcome,
                from_version: s.from_version,
                to_version: s.to_version,
                to_digest: r.to_digest,
                reason: r.reason,
                actor: s.actor,
                at_ms: r.ended_ms.unwrap_or(s.started_ms),
            });
        }
        out
    }

    /// Re-reads systemd's state of every container unit.
    pub async fn resync_systemd(&self) -> Result<(), crate::systemd::SystemdError> {
        let states = self.systemd.list().await?;
        let mut map = BTreeMap::new();
        for s in states {
            if let Some(name) = s.instance() {
                map.insert(name.to_owned(), s.clone());
            }
        }
        self.listing.all_changed();
        if let Ok(mut units) = self.units.write() {
            *units = map;
        }
        self.listing.all_changed();
        Ok(())
    }

    /// Refreshes one unit's state from systemd (after a job, before answering).
    pub async fn refresh(&self, name: &UnitName) {
        if let Ok(state) = self.systemd.unit_state(&name.service()).await {
            self.apply_state(name.as_str(), state);
        }
    }

    /// Records an event of `unit` unless it is recorded already (an event replayed after a
    /// restart of the daemon or of Docker's stream); returns whether it is new.
    fn record(&self, unit: &str, kind: &str, detail: String, at_ms: i64) -> bool {
        let mut db = self.db();
        match db.has_event(unit, kind, at_ms) {
            Ok(true) => false,
            _ => {
                let e = NewEvent { unit: unit.to_owned(), at_ms, kind: kind.to_owned(), detail };
                if let Err(err) = db.record_event(&e) {
                    tracing::warn!("cannot record event for {unit}: {err}");
                }
                true
            }
        }
    }

    /// Stores a new systemd state and records the lifecycle transitions it shows.
    fn apply_state(&self, name: &str, state: UnitState) {
        let previous = self.units.read().ok().and_then(|u| u.get(name).cloned());
        let at = if state.state_change_us > 0 {
            i64::try_from(state.state_change_us / 1000).unwrap_or(i64::MAX)
        } else {
            now_ms()
        };
        if state.sub_state == "auto-restart"
            && previous.as_ref().is_none_or(|p| p.sub_state != "auto-restart")
        {
            self.wake_for_restart(&state);
        }
        if let Some(prev) = &previous {
            if state.n_restarts > prev.n_restarts {
                self.record(name, "restarted", format!("restart #{}", state.n_restarts), at);
                self.restarted(name, state.n_restarts - prev.n_restarts, &state, at);
            }
            if prev.active_state != state.active_state {
                match state.active_state.as_str() {
                    "active" => {
                        self.record(name, "ready", state.status_text.clone(), at);
                    }
                    "failed" => {
                        let detail = format!(
                            "{}, status {}: {}",
                            state.result, state.exec_main_status, state.status_text
                        );
                        if self.record(name, "failed", detail.clone(), at) {
                            self.emit(NoticeKind::UnitFailed, name, at, detail);
                        }
                        self.settled(name);
                    }
                    "inactive" if prev.active_state != "inactive" => {
                        self.record(name, "stopped", format!("status {}", state.exec_main_status), at);
                        self.settled(name);
                    }
                    _ => {}
                }
            }
        }
        self.listing.unit_changed(name);
        if let Ok(mut units) = self.units.write() {
            units.insert(name.to_owned(), state);
        }
        self.listing.unit_changed(name);
        self.changed();
    }

    /// Handles one event of the daemon's loop.
    pub async fn handle(&self, event: Event) {
        match event {
            Event::Systemd(UnitChange::State(state)) => {
                if let Some(name) = state.instance().map(str::to_owned) {
                    self.apply_state(&name, state);
                }
            }
            // Loaded into systemd's memory; its state arrives as State changes. Reading it here
            // would load it again and loop (New, Removed, New, ...) for inactive units.
            Event::Systemd(UnitChange::New(_)) => {}
            Event::Systemd(UnitChange::Removed(unit)) => {
                // systemd unloads stopped units, and every unit for a moment during a
                // daemon-reload. A running unit is only being reloaded: keep its state.
                if let Some(name) = crate::systemd::instance_of(&unit) {
                    self.listing.unit_changed(name);
                    if let Ok(mut units) = self.units.write() {
                        let stopped = units
                            .get(name)
                            .is_none_or(|s| matches!(s.active_state.as_str(), "inactive" | "failed"));
                        if stopped {
                            units.remove(name);
                        }
                    }
                    self.listing.unit_changed(name);
                }
            }
            Event::Systemd(UnitChange::Reloaded) | Event::SystemdResync => {
                if let Err(e) = self.resync_systemd().await {
                    tracing::warn!("cannot re-read unit states: {e}");
                }
                // What systemd loaded is read again: the generator ran (and the stream is told).
                self.listing.reload_ended();
                self.changed();
                self.record_hand_edits().await;
                self.sync_update_timers().await;
            }
            Event::Docker(message) => {
                let unit = message
                    .actor
                    .as_ref()
                    .and_then(|a| a.attributes.as_ref())
                    .and_then(|a| a.get(crate::runner::spec::LABEL_UNIT))
                    .cloned();
                if let Some(name) = &unit {
                    self.listing.unit_changed(name);
                }
                self.docker_event(message);
                if let Some(name) = &unit {
                    self.listing.unit_changed(name);
                }
                self.changed();
            }
            Event::DockerConnected => self.relist_containers().await,
            Event::Sample { name, cpu_percent, memory_bytes } => {
                self.listing.unit_changed(&name);
                if let Ok(mut live) = self.live.write() {
                    let l = live.entry(name.clone()).or_default();
                    l.cpu_percent = cpu_percent;
                    l.memory_bytes = memory_bytes;
                }
                self.listing.unit_changed(&name);
                self.changed();
            }
            // The listing took the events already: the web page's stream is told.
            Event::UnitFiles => self.changed(),
            Event::Prune => {
                let h = &self.config.history;
                let r = Retention {
                    revisions_per_unit: h.revisions_per_unit,
                    events_per_unit: h.events_per_unit,
                    event_max_age_ms: i64::try_from(h.event_max_age.as_millis()).unwrap_or(i64::MAX),
                    audit_max_rows: h.audit_max_rows,
                };
                match self.db().prune(&r, now_ms()) {
                    Ok(report) => tracing::debug!("pruned history: {report:?}"),
                    Err(e) => tracing::warn!("cannot prune history: {e}"),
                }
            }
        }
    }

    fn docker_event(&self, m: bollard::models::EventMessage) {
        let Some(action) = m.action.clone() else { return };
        let attrs = m.actor.as_ref().and_then(|a| a.attributes.clone()).unwrap_or_default();
        let at = m.time_nano.map(|n| n / 1_000_000).or(m.time.map(|s| s * 1000)).unwrap_or_else(now_ms);
        if let Some(name) = attrs.get(crate::runner::spec::LABEL_UNIT) {
            let (kind, detail) = match action.as_str() {
                "start" => ("started", attrs.get("image").cloned().unwrap_or_default()),
                "die" => ("exited", format!("status {}", attrs.get("exitCode").map_or("?", String::as_str))),
                "oom" => ("oom", "killed by the kernel's out-of-memory handler".to_owned()),
                a if a.starts_with("health_status") => {
                    let status =
                        a.trim_start_matches("health_status").trim_start_matches(':').trim().to_owned();
                    if let Ok(mut live) = self.live.write() {
                        live.entry(name.clone()).or_default().health = Some(status.clone());
                    }
                    if status == "unhealthy" && self.record(name, "health", status.clone(), at) {
                        let image = attrs.get("image").map_or("", String::as_str);
                        let detail = format!("its health check fails (image {image})");
                        self.emit(NoticeKind::Unhealthy, name, at, detail);
                        return;
                    }
                    ("health", status)
                }
                _ => return,
            };
            self.record(name, kind, detail, at);
        } else if action == "pull" {
            let image = m.actor.and_then(|a| a.id).unwrap_or_default();
            self.registry_pulled(&image, at);
            for (name, def) in self.definitions() {
                if def.unit.as_ref().is_ok_and(|u| u.container.reference() == image) {
                    self.record(name.as_str(), "pulled", image.clone(), at);
                }
            }
        }
    }

    /// After (re)connecting to Docker: take health from the containers as they are now.
    async fn relist_containers(&self) {
        let Some(docker) = self.docker() else { return };
        let filters = HashMap::from([("label", vec![crate::runner::spec::LABEL_UNIT])]);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let Ok(containers) = docker.list_containers(Some(options)).await else { return };
        let mut health = HashMap::new();
        for c in containers {
            let Some(name) = c.labels.as_ref().and_then(|l| l.get(crate::runner::spec::LABEL_UNIT)).cloned()
            else {
                continue;
            };
            let status = c.status.unwrap_or_default();
            let h = ["(healthy)", "(unhealthy)", "(health: starting)"]
                .iter()
                .find(|s| status.contains(*s))
                .map(|s| s.trim_matches(|c| c == '(' || c == ')').trim_start_matches("health: ").to_owned());
            health.insert(name, h);
        }
        self.listing.all_changed();
        if let Ok(mut live) = self.live.write() {
            for (name, h) in health {
                live.entry(name).or_default().health = h;
            }
        }
        self.listing.all_changed();
    }
}

/// The stamp (modification time, length) of the unit file at `path`; None when it is gone or
/// empty (an empty file masks the unit).
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    (meta.len() > 0).then_some((meta.modified().ok()?, meta.len()))
}

/// Reads and parses the unit file at `path`, whose stamp is `stamp`.
fn parse_definition(name: &UnitName, path: &Path, stamp: (SystemTime, u64)) -> Definition {
    let text = match search::read_unit_file(path) {
        Ok(t) => t,
        Err(d) => {
            return Definition { path: path.to_owned(), text: String::new(), unit: Err(d.to_string()), stamp }
        }
    };
    let file = path.display().to_string();
    let unit = unit::parse(name.as_str(), &file, &text)
        .map_err(|diags| diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"));
    Definition { path: path.to_owned(), text, unit, stamp }
}

/// An instance without a unit file is shown while it runs or failed. Inactive, it is only the
/// template loaded because a unit requires or follows the NAME: nothing to show.
fn shown_without_file(state: &UnitState) -> bool {
    state.exists() && state.active_state != "inactive"
}

fn view(
    name: &str,
    def: Option<&Definition>,
    loaded: Option<&str>,
    state: Option<&UnitState>,
    live: Option<&Live>,
) -> UnitView {
    let unit = def.and_then(|d| d.unit.as_ref().ok());
    let on_disk = def.map(|d| d.text.as_str()).filter(|t| !t.is_empty());
    let changed_on_disk = files::changed_on_disk(on_disk, unit.is_some(), loaded);
    let running = state.is_some_and(|s| s.active_state == "active" || s.active_state == "activating");
    UnitView {
        name: name.to_owned(),
        description: unit.and_then(|u| u.description.clone()),
        image: unit.map(|u| u.container.image.clone()),
        version: unit.map(|u| u.container.version.clone()),
        source: def.map(|d| d.path.display().to_string()),
        valid: def.is_some_and(|d| d.unit.is_ok()),
        error: def.and_then(|d| d.unit.as_ref().err().cloned()),
        enabled: unit.is_some_and(|u| u.service.enabled),
        protected: unit.is_some_and(|u| u.service.protected),
        active_state: state.map_or("inactive".into(), |s| s.active_state.clone()),
        sub_state: state.map_or("dead".into(), |s| s.sub_state.clone()),
        result: state.map_or("success".into(), |s| s.result.clone()),
        status_text: state.map(|s| s.status_text.clone()).unwrap_or_default(),
        n_restarts: state.map_or(0, |s| s.n_restarts),
        exit_code: state.map_or(0, |s| s.exec_main_code),
        exit_status: state.map_or(0, |s| s.exec_main_status),
        main_pid: state.map_or(0, |s| s.main_pid),
        since_us: state.map_or(0, |s| s.state_change_us),
        health: if unit.is_some_and(|u| u.health.is_some()) && running {
            live.and_then(|l| l.health.clone()).or(Some("starting".into()))
        } else {
            None
        },
        cpu_percent: if running { live.and_then(|l| l.cpu_percent) } else { None },
        memory_bytes: if running { live.and_then(|l| l.memory_bytes) } else { None },
        changed_on_disk,
        update: None,
    }
}

/// Shared handle used by the API.
pub type Shared = Arc<Daemon>;
