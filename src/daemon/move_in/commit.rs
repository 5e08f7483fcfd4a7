//! The commit of a move on the target: the sums checked against the manifest, the staged data
//! renamed into place, the unit written with its history and started, READY (and healthy) waited
//! for; any failure undoes all of it. A commit is recorded before anything is put in place, so
//! what a daemon stopped mid-commit had placed or written is undone at its next start
//! ([`clean_stale_moves`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{empty_or_absent, test_hook, Committing, Incoming, MoveInError, Place, Record, Staged};
use crate::daemon::Daemon;
use crate::db::NewEvent;
use crate::policy::{Action, Caller, Role};
use crate::time::now_ms;
use crate::transfer::{self, receive, VolumeId};
use crate::unit::UnitName;

impl Daemon {
    /// Checks the sums, puts the data in place, writes the unit with its history, starts it and
    /// waits for READY (and healthy); any failure undoes all of it here.
    pub async fn move_commit(&self, id: &str, sums: &transfer::Sums) -> Result<String, MoveInError> {
        self.take_incoming(id)?;
        let Some(i) = self.moves_in.lock().ok().and_then(|mut m| m.remove(id)) else {
            return Err(MoveInError::NotFound(format!("no move {id} is under way here")));
        };
        let rec = i.record;
        self.move_ended(id, "committing");
        let out = self.commit_incoming(id, i, sums).await;
        self.move_ended(id, if out.is_ok() { "moved" } else { "failed" });
        if let Some(rec) = rec {
            match &out {
                Ok(detail) => self.end_record(rec, "moved", detail),
                Err(e) => self.end_record(rec, "failed", &e.to_string()),
            }
        }
        out
    }

    pub(super) fn move_ended(&self, id: &str, state: &'static str) {
        if let Ok(mut m) = self.moves_ended.lock() {
            m.insert(id.to_owned(), state);
        }
    }

    /// What became of move `id` here, and the unit now (for a source that restarted).
    pub fn move_outcome(&self, id: &str, unit: &UnitName) -> crate::wire::MoveOutcome {
        let receiving = self.moves_in.lock().ok().and_then(|m| m.get(id).map(|i| i.unit.clone()));
        let ended = self.moves_ended.lock().ok().and_then(|m| m.get(id).copied());
        let state = match (&receiving, ended) {
            (Some(_), _) => "receiving",
            (None, Some(s)) => s,
            (None, None) => "unknown",
        };
        let here = self.unit_here(unit);
        crate::wire::MoveOutcome {
            state: state.to_owned(),
            defined: here.is_some(),
            active: here.is_some_and(|h| h.active),
        }
    }

    async fn commit_incoming(
        &self,
        id: &str,
        i: Incoming,
        sums: &transfer::Sums,
    ) -> Result<String, MoveInError> {
        // Put back so that drop_staging finds nothing more to forget.
        let received = i.received.clone().unwrap_or_default();
        if i.received.is_none() {
            self.drop_staging(id).await;
            return Err(MoveInError::Conflict(format!("move {id}: no data was received")));
        }
        let began = std::time::Instant::now();
        if let Err(r) = receive::verify(&i.manifest, sums, &received) {
            self.drop_staging(id).await;
            return Err(MoveInError::Refused(format!("refused: {r}: nothing was started")));
        }
        // Recorded before anything is put in place: a daemon stopped from here until the commit
        // ended has what it placed and wrote undone at its next start.
        if let Err(e) = self.record_commit(id, &i) {
            self.drop_staging(id).await;
            return Err(e);
        }
        let mut placed = Vec::new();
        if let Err(e) = self.place(&i, &mut placed).await {
            self.remove_placed(&i, &placed).await;
            self.drop_staging(id).await;
            return Err(e);
        }
        test_hook("CONTAINERCTLD_TEST_ABORT_AFTER_PLACE", "after the data was put in place");
        tracing::info!("move {id}: sums verified and data in place in {} ms", began.elapsed().as_millis());
        match self.install_and_start(&i).await {
            Ok(detail) => {
                let path = self.record_path(id);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::error!("move {id}: {} is left: {e}", path.display());
                }
                // Test-only: the unit runs here and the source is never told.
                test_hook("CONTAINERCTLD_TEST_ABORT_BEFORE_COMMIT_ANSWER", "before answering the commit");
                Ok(detail)
            }
            Err(e) => {
                self.undo_install(&i).await;
                self.remove_placed(&i, &placed).await;
                self.drop_staging(id).await;
                Err(e)
            }
        }
    }

    pub(super) fn record_path(&self, id: &str) -> PathBuf {
        self.cluster.paths.moves().join(format!("{id}.json"))
    }

    /// The record of move `id` (empty when there is none or it cannot be read).
    pub(super) fn read_record(&self, id: &str) -> Record {
        std::fs::read(self.record_path(id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Adds to the record of move `id` where each staging root goes and its inode.
    fn record_commit(&self, id: &str, i: &Incoming) -> Result<(), MoveInError> {
        let mut record = self.read_record(id);
        let mut places = Vec::new();
        for s in &i.staged {
            let to = match s {
                Staged::Named { name, .. } => VolumeId::Named(name.clone()),
                Staged::Host { path, .. } => VolumeId::Host(path.clone()),
            };
            let place = Place::of(s.root(), to)
                .map_err(|e| MoveInError::Failed(format!("cannot read {}: {e}", s.root().display())))?;
            places.push(place);
        }
        record.unit = i.unit.to_string();
        record.commit = Some(Committing { text_sum: crate::digest::sha256_hex(i.text.as_bytes()), places });
        self.write_record(id, &record)
    }

    /// What a commit that a stopped daemon left had placed and written, undone: the unit (if its
    /// text is the move's), each final place that holds this move's staging root (same inode) or
    /// is a volume left empty. The staging and the record go afterwards ([`Daemon::drop_staging`]).
    async fn undo_commit(&self, id: &str, record: &Record, c: &Committing) {
        if let Ok(name) = UnitName::new(&record.unit) {
            let written = self
                .definition(&name)
                .is_some_and(|d| crate::digest::sha256_hex(d.text.as_bytes()) == c.text_sum);
            if written {
                let admin = Caller { role: Role::Admin, actor: format!("containerctld (undo of move {id})") };
                match self.remove(&admin, &name).await {
                    Ok(()) => tracing::warn!("move {id}: the unit {name} its commit wrote was removed"),
                    Err(e) => {
                        tracing::error!("move {id}: cannot remove the unit {name} its commit wrote: {e}")
                    }
                }
            }
        }
        let docker = self.docker();
        for p in &c.places {
            match &p.to {
                VolumeId::Named(n) => {
                    let Some(d) = &docker else {
                        tracing::error!("move {id}: volume {n} is not checked: dockerd is not reachable");
                        continue;
                    };
                    let Ok(vol) = d.inspect_volume(n).await else { continue };
                    let mountpoint = PathBuf::from(&vol.mountpoint);
                    if p.holds_staged(&mountpoint) || empty_or_absent(&mountpoint) {
                        match d.remove_volume(n, None::<bollard::query_parameters::RemoveVolumeOptions>).await
                        {
                            Ok(()) => tracing::warn!("move {id}: volume {n} its commit placed was removed"),
                            Err(e) => {
                                tracing::error!("move {id}: cannot remove volume {n} its commit placed: {e}")
                            }
                        }
                    }
                }
                VolumeId::Host(path) => {
                    if p.holds_staged(path) {
                        match std::fs::remove_dir_all(path) {
                            Ok(()) => {
                                tracing::warn!("move {id}: {} its commit placed was removed", path.display())
                            }
                            Err(e) => tracing::error!(
                                "move {id}: cannot remove {} its commit placed: {e}",
                                path.display()
                            ),
                        }
                    }
                }
            }
        }
    }

    /// Renames every staging place into its final place.
    async fn place(&self, i: &Incoming, placed: &mut Vec<VolumeId>) -> Result<(), MoveInError> {
        let docker = self.docker().ok_or_else(|| MoveInError::Failed("dockerd is not reachable".into()))?;
        for s in &i.staged {
            match s {
                Staged::Named { name, temp, root } => {
                    let req = bollard::models::VolumeCreateRequest {
                        name: Some(name.clone()),
                        ..Default::default()
                    };
                    let vol = docker
                        .create_volume(req)
                        .await
                        .map_err(|e| MoveInError::Failed(format!("cannot create volume {name}: {e}")))?;
                    placed.push(VolumeId::Named(name.clone()));
                    let dest = PathBuf::from(&vol.mountpoint);
                    if !empty_or_absent(&dest) {
                        return Err(MoveInError::Conflict(format!(
                            "volume {name} appeared meanwhile and is not empty"
                        )));
                    }
                    std::fs::rename(root, &dest).map_err(|e| {
                        MoveInError::Failed(format!(
                            "cannot move {} to {}: {e}",
                            root.display(),
                            dest.display()
                        ))
                    })?;
                    // The staging volume gets an empty directory back, then goes.
                    let _ = std::fs::create_dir(root);
                    let _ = docker
                        .remove_volume(temp, None::<bollard::query_parameters::RemoveVolumeOptions>)
                        .await;
                }
                Staged::Host { path, root } => {
                    if !empty_or_absent(path) {
                        return Err(MoveInError::Conflict(format!(
                            "{} appeared meanwhile and is not empty",
                            path.display()
                        )));
                    }
                    std::fs::rename(root, path).map_err(|e| {
                        MoveInError::Failed(format!(
                            "cannot move {} to {}: {e}",
                            root.display(),
                            path.display()
                        ))
                    })?;
                    placed.push(VolumeId::Host(path.clone()));
                }
            }
        }
        Ok(())
    }

    async fn install_and_start(&self, i: &Incoming) -> Result<String, MoveInError> {
        let name = &i.unit;
        let fail = |step: &str, e: String| {
            MoveInError::Failed(format!("{step} on {}: {e}", crate::cluster::hostname()))
        };
        if let Some((_, earlier)) = i.revisions.split_last() {
            let mut db = self.db();
            for r in earlier {
                db.record_revision(name.as_str(), &r.actor, &r.action, &r.text, r.at_ms)
                    .map_err(|e| fail("history", e.to_string()))?;
            }
        }
        self.apply_text(&i.caller, name, i.text.clone(), "move", false)
            .await
            .map_err(|e| fail("write", e.to_string()))?;
        let detail = format!("moved from {} by {}", i.source, i.caller.actor);
        if let Err(e) = self.db().record_event(&NewEvent {
            unit: name.to_string(),
            at_ms: now_ms(),
            kind: "move".into(),
            detail: detail.clone(),
        }) {
            tracing::error!("move of {name}: cannot record its event: {e}");
        }
        let started = tokio::time::Instant::now();
        tracing::info!("move of {name}: written with its history, starting it");
        self.job(&i.caller, name, Action::Start).await.map_err(|e| fail("start", e.to_string()))?;
        tracing::info!("move of {name}: ready in {} ms", started.elapsed().as_millis());
        if i.parsed.health.is_some() {
            let deadline = started + crate::generator::start_timeout(&i.parsed) + Duration::from_secs(30);
            loop {
                let health = self.container_health(name).await;
                match health.as_deref() {
                    Some("healthy") => break,
                    Some("unhealthy") => return Err(fail("health", format!("{name} is unhealthy"))),
                    _ if tokio::time::Instant::now() >= deadline => {
                        return Err(fail(
                            "health",
                            format!("{name} is not healthy after {}s", started.elapsed().as_secs()),
                        ))
                    }
                    _ => self.wait_change(Duration::from_millis(500)).await,
                }
            }
        }
        Ok(format!(
            "{name} is ready on {} after {:.1}s",
            crate::cluster::hostname(),
            started.elapsed().as_secs_f64()
        ))
    }

    /// After a failed start: the unit stopped and removed (its history keeps the attempt).
    async fn undo_install(&self, i: &Incoming) {
        let admin = Caller { role: Role::Admin, actor: format!("move undo ({})", i.caller.actor) };
        if self.definition(&i.unit).is_some() {
            if let Err(e) = self.remove(&admin, &i.unit).await {
                tracing::error!("move of {}: cannot remove the unit again: {e}", i.unit);
            }
        }
    }

    /// The data a failed commit had put in place, removed.
    async fn remove_placed(&self, i: &Incoming, placed: &[VolumeId]) {
        let docker = self.docker();
        for v in placed {
            match v {
                VolumeId::Named(n) => {
                    if let Some(d) = &docker {
                        if let Err(e) =
                            d.remove_volume(n, None::<bollard::query_parameters::RemoveVolumeOptions>).await
                        {
                            tracing::error!("move of {}: cannot remove volume {n}: {e}", i.unit);
                        }
                    }
                }
                VolumeId::Host(p) => {
                    if let Err(e) = std::fs::remove_dir_all(p) {
                        tracing::error!("move of {}: cannot remove {}: {e}", i.unit, p.display());
                    }
                }
            }
        }
    }
}

/// At start: what moves that were being received when the daemon stopped had staged is removed.
pub fn clean_stale_moves(d: &Arc<Daemon>) {
    let expiry = d.config.move_staging_expiry;
    let weak = Arc::downgrade(d);
    d.cluster.add_task(tokio::spawn(async move {
        let every = (expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::time::sleep(every).await;
            let Some(d) = weak.upgrade() else { return };
            d.expire_staging(expiry).await;
        }
    }));
    let dir = d.cluster.paths.moves();
    let Ok(rd) = std::fs::read_dir(&dir) else { return };
    let ids: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_owned))
        .collect();
    if ids.is_empty() {
        return;
    }
    let d = d.clone();
    tokio::spawn(async move {
        // dockerd may come up after the daemon: wait for it a while.
        for _ in 0..60 {
            if d.docker().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for id in ids {
            let record = d.read_record(&id);
            if let Some(c) = &record.commit {
                tracing::warn!("move {id}: its commit was cut short by a daemon that stopped, undoing it");
                d.undo_commit(&id, &record, c).await;
            }
            tracing::info!("move {id}: left by a daemon that stopped mid-way, removing what it staged");
            d.drop_staging(&id).await;
        }
    });
}
