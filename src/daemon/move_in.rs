//! The target's side of a move, called by the member routes (`cluster::peer`) for another
//! member whose certificate and address were checked there. Everything it receives is hostile
//! until checked: the unit's name and text are parsed, the caller's role is the source daemon's
//! word but this host's own policy decides what that role may run here, the manifest is
//! validated against the volumes the unit declares, and the stream must follow the manifest.
//!
//! Nothing is half-written: data goes to staging places first (a temporary Docker volume per
//! named volume, `.containerctl-move-ID-NAME` beside a host path), recorded in
//! `STATE/cluster/moves/ID.json` before they are made so a daemon killed mid-way removes them
//! at its next start ([`clean_stale_moves`]). Only a commit whose sums match renames them into
//! place, writes the unit and starts it; a start that fails undoes all of it.
//!
//! A warm move sends its data twice: the first pass (the unit still runs on the source) is
//! received unfinished into the first staging places; the delta ([`Daemon::move_delta`]) brings
//! the manifest of the stopped unit and the files the source did not change since, which the
//! second pass takes from the first places into new ones (all recorded the same way), so the
//! commit checks every file of the final manifest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Daemon;

mod commit;
use crate::policy::{self, Action, Caller, Role};
use crate::time::now_ms;
use crate::transfer::{self, pipe, receive, FileKey, Kind, Manifest, VolumeId};
use crate::unit::{self, Unit, UnitName};
use crate::wire::{MoveBegin, MoveDelta, MoveOffer, MovePreflight, MoveRevision};
pub use commit::clean_stale_moves;

/// Label of the temporary volumes a move stages into.
pub const MOVE_LABEL: &str = "io.containerctl.move";
/// Room left free beyond the data, for the file system's own blocks.
const MARGIN: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MoveInError {
    /// Hostile or malformed input, or a caller the policy refuses.
    #[error("{0}")]
    Refused(String),
    /// The target cannot take the unit now (its blockers).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// A step on the target failed; everything of the move was undone here.
    #[error("{0}")]
    Failed(String),
}

/// A staging place and where it goes at commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Staged {
    Named { name: String, temp: String, root: PathBuf },
    Host { path: PathBuf, root: PathBuf },
}

impl Staged {
    fn root(&self) -> &Path {
        match self {
            Staged::Named { root, .. } | Staged::Host { root, .. } => root,
        }
    }
}

/// What `STATE/cluster/moves/ID.json` records of a move being received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    unit: String,
    temp_volumes: Vec<String>,
    dirs: Vec<PathBuf>,
    /// Written before the commit puts anything in place, and the record kept until the commit
    /// ended: what a daemon stopped during the commit had placed or written is undone at its
    /// next start ([`Daemon::undo_commit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commit: Option<Committing>,
}

/// A commit under way: where each staging root goes and which inode it is (a rename keeps it, so
/// what is found in place is known to be this move's), and the sum of the unit's text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Committing {
    text_sum: String,
    places: Vec<Place>,
}

/// A staging root and its final place.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Place {
    to: VolumeId,
    dev: u64,
    ino: u64,
}

impl Place {
    /// The staging root of `root`, before it is renamed to `to`.
    fn of(root: &Path, to: VolumeId) -> std::io::Result<Place> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(root)?;
        Ok(Place { to, dev: m.dev(), ino: m.ino() })
    }

    /// Whether `path` is the staging root, renamed there (a rename keeps the inode).
    fn holds_staged(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
    }
}

/// Files a second pass takes from the first: where they are and their sums.
type Reuse = HashMap<FileKey, (PathBuf, String)>;

/// A move being received.
pub struct Incoming {
    unit: UnitName,
    parsed: Unit,
    text: String,
    caller: Caller,
    source: String,
    manifest: Manifest,
    revisions: Vec<MoveRevision>,
    staged: Vec<Staged>,
    received: Option<transfer::Sums>,
    busy: bool,
    /// A warm move: its first pass is received unfinished.
    warm: bool,
    /// After a delta: the first pass's places and the files taken from them, with their sums.
    first: Option<(Vec<Staged>, Reuse)>,
    /// The room left for the data on this host when the move began.
    room: u64,
    /// Its row in the moves table.
    record: Option<i64>,
    /// After a stream that broke (the connection, not a refusal): the files whole in the
    /// staging places, with their sums, which a resumed pass takes instead of receiving again.
    partial: Option<HashMap<FileKey, String>>,
    /// Staging places of earlier passes still to remove once a pass arrived whole.
    leftover: Vec<Staged>,
    /// Passes begun (names the staging places of the next).
    passes: u32,
    /// When the source last asked something of it (the staging expires after a while without).
    touched: std::time::Instant,
}

/// The moves this daemon is receiving, by id.
pub type Moves = std::sync::Mutex<HashMap<String, Incoming>>;

/// The moves this daemon committed or gave up since it started, by id: `committing`, `moved`
/// or `failed` (what a source that restarted asks, `GET /cluster/v1/moves/ID/outcome`).
pub type Ended = std::sync::Mutex<HashMap<String, &'static str>>;

fn caller_of(offer: &MoveOffer, from: &str) -> Result<Caller, String> {
    caller_from(&offer.caller, from)
}

/// Who asked, as another member says (its word on the role; this host's policy decides what the
/// role may do here): only operators and admins move units; the name is cut to 128 characters
/// without control characters and marked with the member it came through.
pub fn caller_from(caller: &crate::wire::MoveCaller, from: &str) -> Result<Caller, String> {
    let role = match caller.role.as_str() {
        "admin" => Role::Admin,
        "operator" => Role::Operator,
        other => {
            return Err(format!("role `{other}` may not move units: an operator or admin may (rule: roles)"))
        }
    };
    let actor: String = caller.actor.chars().filter(|c| !c.is_control()).take(128).collect();
    Ok(Caller { role, actor: format!("{actor} via {from}") })
}

fn free_bytes(path: &Path) -> u64 {
    let mut p = path;
    loop {
        if let Ok(s) = nix::sys::statvfs::statvfs(p) {
            return s.blocks_available().saturating_mul(s.fragment_size());
        }
        match p.parent() {
            Some(parent) => p = parent,
            None => return 0,
        }
    }
}

fn empty_or_absent(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(m) => m.is_dir() && std::fs::read_dir(p).is_ok_and(|mut rd| rd.next().is_none()),
    }
}

/// Whether this daemon may write below `dir` (its unit's ReadWritePaths=).
fn writable(dir: &Path) -> bool {
    nix::sys::statvfs::statvfs(dir).is_ok_and(|s| !s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn staging_dir(path: &Path, id: &str) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    Some(path.parent()?.join(format!(".containerctl-move-{id}-{name}")))
}

impl Daemon {
    /// The checks of an offer, without side effects: every blocker at once.
    pub async fn move_preflight(&self, from: &str, offer: &MoveOffer) -> MovePreflight {
        match self.check_offer(from, offer).await {
            Ok((_, _, _, pre)) | Err(pre) => pre,
        }
    }

    async fn check_offer(
        &self,
        from: &str,
        offer: &MoveOffer,
    ) -> Result<(UnitName, Unit, Caller, MovePreflight), MovePreflight> {
        let host = crate::cluster::hostname();
        let only = |blockers: Vec<String>| MovePreflight { blockers, ..MovePreflight::default() };
        let name = UnitName::new(&offer.unit).map_err(|e| only(vec![format!("{e} (rule: unit names)")]))?;
        let caller = caller_of(offer, from).map_err(|e| only(vec![e]))?;
        let file = self.config.unit_dir.join(format!("{name}.toml")).display().to_string();
        let parsed = unit::parse(name.as_str(), &file, &offer.text).map_err(|d| {
            only(d.iter().map(|d| format!("the unit does not validate here: {}", d.message)).collect())
        })?;
        let mut blockers = Vec::new();
        if parsed.deploy.is_some() {
            blockers
                .push(format!("{name} runs as a Swarm service ([deploy]): Swarm places it, it is not moved"));
        }
        if self.definition(&name).is_some() {
            blockers.push(format!("a unit {name} exists on {host} already (rule: the name is free)"));
        }
        for v in policy::may(caller.role, Action::Edit, name.as_str(), false)
            .err()
            .into_iter()
            .chain(policy::may(caller.role, Action::Start, name.as_str(), false).err())
            .chain(self.check_definition(&caller, &name, None, &parsed))
        {
            blockers.push(format!("the policy of {host} refuses it: {v}"));
        }
        for d in self.port_conflicts(&name, &parsed, &file, &offer.text) {
            blockers.push(d.message);
        }
        for p in &parsed.container.ports {
            let ip = p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            let addr = format!("{}:{}", if ip.contains(':') { format!("[{ip}]") } else { ip }, p.host_port);
            let free = if p.protocol.as_str() == "udp" {
                std::net::UdpSocket::bind(&addr).is_ok()
            } else {
                std::net::TcpListener::bind(&addr).is_ok()
            };
            if !free {
                blockers
                    .push(format!("port {} is in use on {host} (rule: its ports are free)", p.host_socket()));
            }
        }
        for dev in &parsed.container.devices {
            if !dev.host.exists() {
                blockers.push(format!(
                    "device {} is not present on {host} (rule: its devices are present)",
                    dev.host.display()
                ));
            }
        }
        let mut pre = MovePreflight::default();
        let docker = self.docker();
        let mut need: HashMap<PathBuf, u64> = HashMap::new();
        let volumes_root = match &docker {
            Some(d) => {
                d.info().await.ok().and_then(|i| i.docker_root_dir).map(|r| Path::new(&r).join("volumes"))
            }
            None => None,
        }
        .unwrap_or_else(|| PathBuf::from("/var/lib/docker/volumes"));
        for v in transfer::volumes_of(&parsed) {
            match &v {
                VolumeId::Named(n) => {
                    if let Some(d) = &docker {
                        if d.inspect_volume(n).await.is_ok() {
                            blockers.push(format!(
                                "volume {n} exists on {host} already (rule: its volumes are free)"
                            ));
                        }
                    }
                    need.insert(volumes_root.clone(), 0);
                }
                VolumeId::Host(p) => {
                    if !empty_or_absent(p) {
                        blockers.push(format!(
                            "{} exists on {host} and is not empty (rule: its volumes are free)",
                            p.display()
                        ));
                    }
                    match p.parent() {
                        Some(parent) if parent.is_dir() => {
                            need.insert(parent.to_path_buf(), 0);
                        }
                        _ => blockers.push(format!(
                            "the parent directory of {} does not exist on {host}: an admin creates it",
                            p.display()
                        )),
                    }
                }
            }
        }
        for dir in need.keys().filter(|d| !writable(d)) {
            blockers.push(format!(
                "{} is read-only for containerctld on {host}: add it to ReadWritePaths= in a drop-in of containerctld.service (rule: the data can be written)",
                dir.display()
            ));
        }
        pre.free_bytes =
            need.keys().map(|p| free_bytes(p)).min().unwrap_or_else(|| free_bytes(&volumes_root));
        if offer.bytes.saturating_add(MARGIN) > pre.free_bytes && !need.is_empty() {
            blockers.push(format!(
                "{} MB to copy but {} MB free on {host} (rule: enough disk)",
                offer.bytes >> 20,
                pre.free_bytes >> 20
            ));
        }
        let reference = format!("{}:{}", parsed.container.image, parsed.container.version);
        let present = match &docker {
            Some(d) => d.inspect_image(&reference).await.is_ok(),
            None => {
                blockers.push(format!("dockerd is not reachable on {host}"));
                false
            }
        };
        let registry = self.cluster.state().map(|s| s.registry).unwrap_or_default();
        pre.image = if present {
            "present".into()
        } else if !registry.is_empty() && parsed.container.image.starts_with(&format!("{registry}/")) {
            "registry".into()
        } else if offer.image_on_source {
            "stream".into()
        } else {
            blockers.push(format!(
                "image {reference} is neither on {host}, in the cluster registry nor on the source"
            ));
            String::new()
        };
        pre.blockers = blockers;
        if pre.blockers.is_empty() {
            Ok((name, parsed, caller, pre))
        } else {
            Err(pre)
        }
    }

    /// Checks the offer again and the manifest, then makes the staging places.
    pub async fn move_begin(&self, from: &str, begin: MoveBegin) -> Result<String, MoveInError> {
        let (name, parsed, caller, pre) = self
            .check_offer(from, &begin.offer)
            .await
            .map_err(|p| MoveInError::Conflict(p.blockers.join("; ")))?;
        if self.moves_in.lock().is_ok_and(|m| m.values().any(|i| i.unit == name)) {
            return Err(MoveInError::Conflict(format!("a move of {name} to this host is under way already")));
        }
        let expected = transfer::volumes_of(&parsed);
        let room = pre.free_bytes.saturating_sub(MARGIN).min(begin.offer.bytes);
        begin
            .manifest
            .validate(&expected, room)
            .map_err(|r| MoveInError::Refused(format!("refused: {r}")))?;
        let id = crate::cluster::new_id("mv");
        let mut record = Record { unit: name.to_string(), ..Record::default() };
        let staged = match self.stage(&id, "", &expected, &mut record).await {
            Ok(s) => s,
            Err(e) => {
                self.drop_staging(&id).await;
                return Err(e);
            }
        };
        let incoming = Incoming {
            unit: name.clone(),
            parsed,
            text: begin.offer.text,
            caller,
            source: begin.offer.source,
            manifest: begin.manifest,
            revisions: begin.revisions,
            staged,
            received: None,
            busy: false,
            warm: begin.warm,
            first: None,
            room: pre.free_bytes.saturating_sub(MARGIN),
            record: None,
            touched: std::time::Instant::now(),
            partial: None,
            leftover: Vec::new(),
            passes: 1,
        };
        let record = self
            .db()
            .start_move(&crate::db::NewMove {
                unit: name.to_string(),
                side: "target".into(),
                peer: from.to_owned(),
                actor: incoming.caller.actor.clone(),
                warm: incoming.warm,
                started_ms: now_ms(),
                bytes: begin.offer.bytes,
            })
            .map_err(|e| tracing::error!("move {id}: cannot record it: {e}"))
            .ok();
        let incoming = Incoming { record, ..incoming };
        if let Ok(mut m) = self.moves_in.lock() {
            m.insert(id.clone(), incoming);
        }
        tracing::info!("move {id}: receiving {name} from {from}");
        Ok(id)
    }

    /// Records, then makes, the staging places of one pass (`pass` is "" for the first).
    async fn stage(
        &self,
        id: &str,
        pass: &str,
        expected: &[VolumeId],
        record: &mut Record,
    ) -> Result<Vec<Staged>, MoveInError> {
        let mut temps = Vec::new();
        let mut staged = Vec::new();
        for (i, v) in expected.iter().enumerate() {
            match v {
                VolumeId::Named(_) => temps.push(format!("containerctl-move-{id}-{i}{pass}")),
                VolumeId::Host(p) => {
                    let dir = staging_dir(p, &format!("{id}{pass}"))
                        .ok_or_else(|| MoveInError::Refused(format!("bad host path {}", p.display())))?;
                    record.dirs.push(dir.clone());
                    staged.push(Staged::Host { path: p.clone(), root: dir });
                }
            }
        }
        record.temp_volumes.extend(temps.iter().cloned());
        self.write_record(id, record)?;
        self.make_staging(id, expected, &temps, staged).await
    }

    fn write_record(&self, id: &str, record: &Record) -> Result<(), MoveInError> {
        let path = self.record_path(id);
        let json = serde_json::to_vec(record).map_err(|e| MoveInError::Failed(e.to_string()))?;
        crate::atomic_file::write_private(&path, &json, 0o600)
            .map_err(|e| MoveInError::Failed(format!("cannot write {}: {e}", path.display())))
    }

    async fn make_staging(
        &self,
        id: &str,
        expected: &[VolumeId],
        temps: &[String],
        hosts: Vec<Staged>,
    ) -> Result<Vec<Staged>, MoveInError> {
        let docker = self.docker().ok_or_else(|| MoveInError::Failed("dockerd is not reachable".into()))?;
        let mut hosts = hosts.into_iter();
        let mut temps = temps.iter();
        let mut out = Vec::new();
        for v in expected {
            match v {
                VolumeId::Named(n) => {
                    let temp = temps.next().cloned().unwrap_or_default();
                    let req = bollard::models::VolumeCreateRequest {
                        name: Some(temp.clone()),
                        labels: Some(HashMap::from([(MOVE_LABEL.to_owned(), id.to_owned())])),
                        ..Default::default()
                    };
                    let vol = docker.create_volume(req).await.map_err(|e| {
                        MoveInError::Failed(format!("cannot create the staging volume {temp}: {e}"))
                    })?;
                    out.push(Staged::Named { name: n.clone(), temp, root: PathBuf::from(vol.mountpoint) });
                }
                VolumeId::Host(_) => {
                    let s = hosts.next().ok_or_else(|| MoveInError::Failed("staging".into()))?;
                    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                        .create(s.root())
                        .map_err(|e| {
                            MoveInError::Failed(format!("cannot create {}: {e}", s.root().display()))
                        })?;
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// Removes a move's staging places and its record (what a failure, an abort and the next
    /// start after a crash do).
    async fn drop_staging(&self, id: &str) {
        let removed = self.moves_in.lock().ok().and_then(|mut m| m.remove(id));
        self.move_ended(id, "failed");
        if let Some(rec) = removed.and_then(|i| i.record) {
            self.end_record(rec, "failed", "refused or broken: what was staged is removed");
        }
        let path = self.record_path(id);
        let record = self.read_record(id);
        let mut failures = Vec::new();
        for dir in &record.dirs {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failures.push(format!("{}: {e}", dir.display()));
                }
            }
        }
        if let Some(docker) = self.docker() {
            for v in &record.temp_volumes {
                match docker.remove_volume(v, None::<bollard::query_parameters::RemoveVolumeOptions>).await {
                    Ok(()) => {}
                    Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
                    Err(e) => failures.push(format!("volume {v}: {e}")),
                }
            }
        } else if !record.temp_volumes.is_empty() {
            failures.push("dockerd is not reachable to remove the staging volumes".into());
        }
        if failures.is_empty() {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failures.push(format!("{}: {e}", path.display()));
                }
            }
            tracing::info!("move {id}: staged data removed");
        } else {
            tracing::error!(
                "move {id}: staged data left (removed at the next start): {}",
                failures.join("; ")
            );
        }
    }

    fn take_incoming(&self, id: &str) -> Result<(), MoveInError> {
        let mut m = self.moves_in.lock().map_err(|_| MoveInError::Failed("lock".into()))?;
        let i =
            m.get_mut(id).ok_or_else(|| MoveInError::NotFound(format!("no move {id} is under way here")))?;
        if i.busy {
            return Err(MoveInError::Conflict(format!("move {id} is busy")));
        }
        i.busy = true;
        i.touched = std::time::Instant::now();
        Ok(())
    }

    /// Receives the data of move `id` from `body`; any refusal removes everything staged. A stream
    /// that breaks (not the warm first pass's) keeps what arrived whole, for a resumed pass.
    pub async fn move_receive(&self, id: &str, body: axum::body::Body) -> Result<u64, MoveInError> {
        self.take_incoming(id)?;
        let done = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let (manifest, roots, how, resumable) = match self.moves_in.lock() {
            Ok(m) => match m.get(id) {
                Some(i) => {
                    let (finish, reuse) = match &i.first {
                        Some((_, reuse)) => (true, reuse.clone()),
                        None => (!i.warm, HashMap::new()),
                    };
                    (
                        i.manifest.clone(),
                        i.staged.iter().map(|s| s.root().to_path_buf()).collect::<Vec<_>>(),
                        receive::Receive { finish, reuse, done: Some(done.clone()) },
                        !(i.warm && i.first.is_none()),
                    )
                }
                None => return Err(MoveInError::NotFound(format!("no move {id} is under way here"))),
            },
            Err(_) => return Err(MoveInError::Failed("lock".into())),
        };
        let began = std::time::Instant::now();
        let reader = pipe::BodyQueue::read_ahead(body.into_data_stream());
        let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c2 = counted.clone();
        let result = tokio::task::spawn_blocking(move || {
            receive::receive_with(
                &manifest,
                &roots,
                reader,
                &mut |k| {
                    c2.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
                },
                &how,
            )
        })
        .await
        .map_err(|e| receive::ReceiveError::Stream(std::io::Error::other(e.to_string())))
        .and_then(|r| r);
        match result {
            Ok(sums) => {
                let n = counted.load(std::sync::atomic::Ordering::Relaxed);
                let ms = began.elapsed().as_millis();
                tracing::info!("move {id}: {} MB received, hashed and synced in {ms} ms", n >> 20);
                // What this pass did not take of the earlier ones is not needed any more.
                let old = self.moves_in.lock().ok().and_then(|mut m| {
                    m.get_mut(id).map(|i| {
                        let mut old: Vec<Staged> = std::mem::take(&mut i.leftover);
                        old.extend(i.first.as_ref().map(|(places, _)| places.clone()).unwrap_or_default());
                        old
                    })
                });
                self.remove_places(id, &old.unwrap_or_default()).await;
                if let Ok(mut m) = self.moves_in.lock() {
                    if let Some(i) = m.get_mut(id) {
                        i.received = Some(sums);
                        i.busy = false;
                        i.touched = std::time::Instant::now();
                    }
                }
                Ok(counted.load(std::sync::atomic::Ordering::Relaxed))
            }
            Err(receive::ReceiveError::Stream(e)) if resumable => {
                let have = done.lock().map(|d| d.clone()).unwrap_or_default();
                let n = have.len();
                if let Ok(mut m) = self.moves_in.lock() {
                    if let Some(i) = m.get_mut(id) {
                        i.partial = Some(have);
                        i.busy = false;
                        i.touched = std::time::Instant::now();
                    }
                }
                tracing::warn!("move {id}: the stream broke after {n} whole files ({e}); they are kept for a resumed pass");
                Err(MoveInError::Failed(format!(
                    "the stream broke after {n} whole files ({e}): they are kept for a resumed pass"
                )))
            }
            Err(e) => {
                tracing::warn!("move {id}: {e}");
                self.drop_staging(id).await;
                Err(MoveInError::Refused(e.to_string()))
            }
        }
    }

    /// What a move whose stream broke has whole here: each file's volume, path, size and sum.
    pub fn move_have(&self, id: &str) -> Result<Vec<crate::wire::MoveHave>, MoveInError> {
        let m = self.moves_in.lock().map_err(|_| MoveInError::Failed("lock".into()))?;
        let i = m.get(id).ok_or_else(|| MoveInError::NotFound(format!("no move {id} is under way here")))?;
        let Some(partial) = &i.partial else { return Ok(Vec::new()) };
        Ok(i.manifest
            .volumes
            .iter()
            .enumerate()
            .flat_map(|(v, d)| d.entries.iter().filter(|e| e.kind == Kind::File).map(move |e| (v, e)))
            .filter_map(|(v, e)| {
                partial.get(&(v, e.path.clone())).map(|sum| crate::wire::MoveHave {
                    volume: v,
                    path: e.path.clone(),
                    size: e.size,
                    sum: sum.clone(),
                })
            })
            .collect())
    }

    /// The delta of a warm move, after the source stopped the unit: the final manifest and the
    /// files the first pass has (`reuse`). Checked like a begin's manifest; a reused file must be
    /// a file of the same path and size that the first pass received. New staging places are
    /// made for the second pass; any refusal removes everything staged.
    pub async fn move_delta(&self, id: &str, delta: MoveDelta) -> Result<(), MoveInError> {
        self.take_incoming(id)?;
        let checked = self.check_delta(id, &delta);
        let (expected, first_places, reuse) = match checked {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("move {id}: {e}");
                self.drop_staging(id).await;
                return Err(e);
            }
        };
        let mut record = self.read_record(id);
        let pass = self.moves_in.lock().ok().and_then(|m| m.get(id).map(|i| i.passes + 1)).unwrap_or(2);
        let staged = match self.stage(id, &format!("-{pass}"), &expected, &mut record).await {
            Ok(s) => s,
            Err(e) => {
                self.drop_staging(id).await;
                return Err(e);
            }
        };
        if let Ok(mut m) = self.moves_in.lock() {
            if let Some(i) = m.get_mut(id) {
                i.manifest = delta.manifest;
                if let Some((places, _)) = i.first.take() {
                    i.leftover.extend(places);
                }
                i.staged = staged;
                i.received = None;
                i.partial = None;
                i.passes = pass;
                i.first = Some((first_places, reuse));
                i.busy = false;
                i.touched = std::time::Instant::now();
            }
        }
        Ok(())
    }

    fn check_delta(
        &self,
        id: &str,
        delta: &MoveDelta,
    ) -> Result<(Vec<VolumeId>, Vec<Staged>, Reuse), MoveInError> {
        let m = self.moves_in.lock().map_err(|_| MoveInError::Failed("lock".into()))?;
        let i = m.get(id).ok_or_else(|| MoveInError::NotFound(format!("no move {id} is under way here")))?;
        let files = |m: &Manifest| -> Vec<(FileKey, u64)> {
            m.volumes
                .iter()
                .enumerate()
                .flat_map(|(v, d)| {
                    d.entries
                        .iter()
                        .filter(|e| e.kind == Kind::File)
                        .map(move |e| ((v, e.path.clone()), e.size))
                })
                .collect()
        };
        // A warm move's first pass (whole), or a pass whose stream broke (what arrived whole).
        let before: HashMap<FileKey, (u64, &String)> = match (&i.received, i.warm, &i.first, &i.partial) {
            (_, _, _, Some(partial)) => files(&i.manifest)
                .into_iter()
                .filter_map(|(k, size)| partial.get(&k).map(|sum| (k, (size, sum))))
                .collect(),
            (Some(sums), true, None, None) => {
                files(&i.manifest).into_iter().zip(sums).map(|((k, size), sum)| (k, (size, sum))).collect()
            }
            _ => {
                return Err(MoveInError::Conflict(format!(
                    "move {id}: a delta follows the first pass of a warm move, once, or a stream that broke (rule: warm moves and resumed passes)"
                )))
            }
        };
        let expected = transfer::volumes_of(&i.parsed);
        let room = i.room;
        delta
            .manifest
            .validate(&expected, room)
            .map_err(|r| MoveInError::Refused(format!("refused: {r}")))?;
        let now: HashMap<FileKey, u64> = delta
            .manifest
            .volumes
            .iter()
            .enumerate()
            .flat_map(|(v, d)| d.entries.iter().filter(|e| e.kind == Kind::File).map(move |e| (v, e)))
            .map(|(v, e)| ((v, e.path.clone()), e.size))
            .collect();
        let mut reuse = HashMap::new();
        for r in &delta.reuse {
            let key = (r.volume, r.path.clone());
            match (before.get(&key), now.get(&key)) {
                (Some((size, sum)), Some(now_size)) if size == now_size => {
                    let root = i.staged.get(r.volume).map(Staged::root).unwrap_or(Path::new("/nonexistent"));
                    reuse.insert(key, (transfer::below(root, &r.path), (*sum).clone()));
                }
                _ => {
                    return Err(MoveInError::Refused(format!(
                        "refused: `{}` of volume {} is not a file of the same size an earlier pass received (rule: reused files were received before)",
                        r.path, r.volume
                    )))
                }
            }
        }
        Ok((expected, i.staged.clone(), reuse))
    }

    /// Removes staging places a later pass no longer needs (the record keeps their names, so a
    /// crash before this removes them at the next start).
    async fn remove_places(&self, id: &str, places: &[Staged]) {
        let docker = self.docker();
        for p in places {
            let done = match p {
                Staged::Named { temp, .. } => match &docker {
                    Some(d) => d
                        .remove_volume(temp, None::<bollard::query_parameters::RemoveVolumeOptions>)
                        .await
                        .map_err(|e| format!("volume {temp}: {e}")),
                    None => Err(format!("volume {temp}: dockerd is not reachable")),
                },
                Staged::Host { root, .. } => {
                    std::fs::remove_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))
                }
            };
            if let Err(e) = done {
                tracing::warn!("move {id}: the first pass's staging is left until the move ends: {e}");
            }
        }
    }

    /// Gives up move `id`: everything staged is removed.
    pub async fn move_abort(&self, id: &str) -> Result<(), MoveInError> {
        let Some(rec) = self.moves_in.lock().ok().and_then(|m| m.get(id).map(|i| i.record)) else {
            return Err(MoveInError::NotFound(format!("no move {id} is under way here")));
        };
        if let Some(rec) = rec {
            self.end_record(rec, "failed", "given up by the source");
        }
        self.drop_staging(id).await;
        Ok(())
    }

    /// The outcome of a move in the moves table (only a running one's is set).
    fn end_record(&self, rec: i64, state: &str, detail: &str) {
        if let Err(e) = self.db().end_move(rec, state, detail, None, now_ms()) {
            tracing::error!("a move's outcome was not recorded: {e}");
        }
    }

    /// Removes the staging of moves whose source asked nothing for `expiry` (and none under way):
    /// recorded as `expired`.
    pub async fn expire_staging(&self, expiry: Duration) {
        let stale: Vec<(String, Option<i64>, String)> = match self.moves_in.lock() {
            Ok(m) => m
                .iter()
                .filter(|(_, i)| !i.busy && i.touched.elapsed() >= expiry)
                .map(|(id, i)| (id.clone(), i.record, i.source.clone()))
                .collect(),
            Err(_) => return,
        };
        for (id, rec, source) in stale {
            let why = format!(
                "{source} asked nothing for {}: what was staged is removed",
                crate::unit::systemd_duration(expiry)
            );
            tracing::warn!("move {id}: {why}");
            if let Some(rec) = rec {
                self.end_record(rec, "expired", &why);
            }
            self.drop_staging(&id).await;
        }
    }
}

/// Test-only (the system test's drop-in sets it; containerctld(8), ENVIRONMENT): with `VAR=1`
/// the daemon exits at once (status 1, nothing cleaned up, as a crash) at the point `when`.
pub(super) fn test_hook(var: &str, when: &str) {
    if std::env::var_os(var).is_some_and(|v| v == "1") {
        tracing::error!("{var} is set: exiting {when} (a test)");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_staged_data_renamed_into_place_is_taken_for_the_moves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (staging, place) = (dir.path().join(".containerctl-move-x-data"), dir.path().join("data"));
        std::fs::create_dir(&staging).expect("staging");
        std::fs::write(staging.join("f"), b"moved").expect("file");
        let p = Place::of(&staging, VolumeId::Host(place.clone())).expect("place");
        let json =
            serde_json::to_string(&Committing { text_sum: "s".into(), places: vec![p] }).expect("json");
        let p = serde_json::from_str::<Committing>(&json).expect("read back").places.remove(0);
        assert!(!p.holds_staged(&place), "nothing placed yet");
        // A directory made there by someone else while the staging root exists is not the move's
        // (while it exists, no other file has its inode).
        std::fs::create_dir(&place).expect("other");
        assert!(!p.holds_staged(&place), "a directory the move did not place is left alone");
        std::fs::remove_dir(&place).expect("remove");
        std::fs::rename(&staging, &place).expect("rename");
        assert!(p.holds_staged(&place), "the renamed staging root is the move's");
        // A record of an older daemon, without the commit, reads back as none.
        let old: Record =
            serde_json::from_str(r#"{"unit":"u","temp_volumes":[],"dirs":[]}"#).expect("old record");
        assert!(old.commit.is_none());
    }
}
