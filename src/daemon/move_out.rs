//! The source's side of a move, run where the unit is: a state machine (the data stream of each
//! pass, its resumes and the commit request are in `stream.rs`).
//!
//! ```text
//! plan: the unit, the caller's rights here, the target (asked of the manager), the data walked
//!       (blockers: links out, device nodes, set-user-ID files), the target's preflight
//!       (name, policy, ports, devices, disk, image) ─► refused / planned (dry run)
//! image streamed to the target when only this host has it (the unit still runs)
//! stop ─► walk again (the manifest) ─► begin on the target ─► stream the data (progress)
//!      ─► commit: the target checks the sums, puts the data in place, writes the unit with its
//!         history, starts it and waits for READY (healthy with [health])
//! ─► disable here (the file stays, the data until the soak is over or for good)
//! any failure after the stop ─► the target gives up what it staged, the unit starts here again
//! ```
//!
//! A warm move (`--warm`) copies first while the unit runs (a file that changes meanwhile is sent
//! as it was read and marked dirty); after the stop it walks again and sends the target a delta:
//! the final manifest and the files unchanged since the first walk (same inode, size,
//! modification and change times, not dirty, not racy), which the target takes from the first
//! pass. Only the rest is streamed, so the downtime is the delta. A failure of the first pass
//! stops nothing.
//!
//! Invariants: nothing stops before every check passed; a failure leaves the unit running here as
//! before (if it was) and nothing on the target; one move per unit at a time.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;

use super::move_settle::{why_uncertain, Journal, Phase, Resume, Settle};
use super::{Daemon, OpError};

mod stream;
use crate::cluster::ops::{self as cluster_ops, PeerNode};
use crate::cluster::tls;
use crate::policy::{self, Action, Caller};
use crate::progress::Progress;
use crate::time::now_ms;
use crate::transfer::source::{FirstPass, Packed, Stamp};
use crate::transfer::{self, pipe, source, Kind, Manifest, VolumeId};
use crate::unit::{Unit, UnitName};
use crate::wire::{
    MoveBegin, MoveBegun, MoveCaller, MoveCommit, MoveDelta, MoveOffer, MovePreflight, MoveResult,
    MoveReused, MoveRevision, MoveUnit,
};
use stream::send;

/// What the estimate assumes a move copies per second.
const ASSUMED_RATE: f64 = 60.0 * 1024.0 * 1024.0;
/// How long the target must stay up before the source's data goes, by default.
const DEFAULT_SOAK: Duration = Duration::from_secs(600);
/// The data stream's answer may take this long (the whole upload is before it).
const STREAM_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A failed move: the step, what happened, and what was done about it.
#[derive(Debug, Clone)]
pub struct MoveFailure {
    pub step: &'static str,
    pub message: String,
    pub hint: String,
    /// How the move is recorded: `failed`, or `uncertain` when nobody knows whether the target
    /// runs the unit.
    pub state: &'static str,
}

fn failed(step: &'static str, message: impl Into<String>, hint: impl Into<String>) -> MoveFailure {
    MoveFailure { step, message: message.into(), hint: hint.into(), state: "failed" }
}

/// The error line of a failed move, as the stream sends it.
pub fn failure_line(f: &MoveFailure) -> serde_json::Value {
    serde_json::json!({"error": {"kind": "failed", "step": f.step, "message": f.message, "hint": f.hint}})
}

/// What was checked before anything stops.
pub struct MovePlan {
    pub name: UnitName,
    unit: Unit,
    text: String,
    target: PeerNode,
    roots: Vec<(VolumeId, PathBuf)>,
    offer: MoveOffer,
    preflight: MovePreflight,
    pub result: MoveResult,
    soak: Duration,
}

/// Releases a unit's "move under way" mark when dropped.
struct Moving<'a>(&'a Daemon, String);

impl Drop for Moving<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.moving.lock() {
            set.remove(&self.1);
        }
    }
}

async fn peer_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    client: &tls::Client,
    target: &PeerNode,
    method: http::Method,
    path: &str,
    body: &B,
) -> Result<T, String> {
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let (status, answer) =
        client.request(&target.api(), method, path, &[], Some(body)).await.map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "{} answered {status}: {}",
            target.hostname,
            cluster_ops::error_message(&answer)
        ));
    }
    let answer = if answer.is_empty() { Bytes::from_static(b"null") } else { answer };
    serde_json::from_slice(&answer).map_err(|e| format!("bad answer of {}: {e}", target.hostname))
}

impl Daemon {
    /// The volumes of `unit` on this host, with their directories.
    async fn move_roots(&self, unit: &Unit) -> Result<Vec<(VolumeId, PathBuf)>, String> {
        let mut out = Vec::new();
        for v in transfer::volumes_of(unit) {
            let root = match &v {
                VolumeId::Named(n) => {
                    let docker = self.docker().ok_or("dockerd is not reachable")?;
                    match docker.inspect_volume(n).await {
                        Ok(vol) => PathBuf::from(vol.mountpoint),
                        Err(e) => return Err(format!("volume {n}: {e}")),
                    }
                }
                VolumeId::Host(p) => p.clone(),
            };
            out.push((v, root));
        }
        Ok(out)
    }

    /// Walks the volumes: the manifest, or every blocker.
    async fn walk_volumes(roots: &[(VolumeId, PathBuf)]) -> Result<Manifest, Vec<String>> {
        Self::walk_stamped(roots).await.map(|(m, _)| m)
    }

    /// Walks the volumes: the manifest and each volume's file stamps, or every blocker.
    async fn walk_stamped(roots: &[(VolumeId, PathBuf)]) -> Result<(Manifest, Vec<Stamps>), Vec<String>> {
        let roots = roots.to_vec();
        let walked = tokio::task::spawn_blocking(move || {
            roots.iter().map(|(v, r)| source::walk(v.clone(), r)).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| vec![e.to_string()])?;
        let blockers: Vec<String> = walked.iter().flat_map(|w| w.blockers.clone()).collect();
        if !blockers.is_empty() {
            return Err(blockers);
        }
        let stamps = walked.iter().map(|w| w.stamps.clone()).collect();
        Ok((Manifest { volumes: walked.into_iter().filter_map(|w| w.data).collect() }, stamps))
    }

    /// Checks a move and decides what it does; refusals change nothing.
    pub async fn plan_move(
        &self,
        caller: &Caller,
        name: &UnitName,
        req: &MoveUnit,
    ) -> Result<MovePlan, OpError> {
        let def = self
            .definition(name)
            .ok_or_else(|| OpError::NotFound(format!("no unit {name}: see containerctl list")))?;
        let unit =
            def.unit.clone().map_err(|e| OpError::Conflict(format!("{name} does not validate: {e}")))?;
        let protected = unit.service.protected;
        for action in [Action::Stop, Action::Disable, Action::Edit] {
            policy::may(caller.role, action, name.as_str(), protected).map_err(|v| {
                self.audit_move(caller, name, &format!("refused: {v}"));
                OpError::refused(v)
            })?;
        }
        if !def.path.starts_with(&self.config.unit_dir) {
            return Err(OpError::Conflict(format!(
                "{} is a vendor or runtime unit: only units in {} move",
                def.path.display(),
                self.config.unit_dir.display()
            )));
        }
        let me = self.cluster.state().ok_or_else(|| {
            OpError::Conflict("this host is not a cluster member: moves go between members".into())
        })?;
        if req.to.trim().is_empty() {
            return Err(OpError::InvalidInput("name the member to move to (--to NODE)".into()));
        }
        let target = cluster_ops::lookup(self, req.to.trim()).await.map_err(|e| match e.kind {
            cluster_ops::StepKind::NotFound => OpError::NotFound(e.message_with_hint()),
            _ => OpError::Unavailable(e.message_with_hint()),
        })?;
        if target.addr == me.addr {
            return Err(OpError::InvalidInput(format!("{name} is on {} already", target.hostname)));
        }
        let soak = match &req.soak {
            Some(s) => {
                crate::unit::parse_duration(s).map_err(|e| OpError::InvalidInput(format!("soak: {e}")))?
            }
            None => DEFAULT_SOAK,
        };
        let mut blockers = Vec::new();
        if unit.deploy.is_some() {
            blockers
                .push(format!("{name} runs as a Swarm service ([deploy]): Swarm places it, it is not moved"));
        }
        let roots = self.move_roots(&unit).await.unwrap_or_else(|e| {
            blockers.push(e);
            Vec::new()
        });
        let manifest = match Self::walk_volumes(&roots).await {
            Ok(m) => m,
            Err(b) => {
                blockers.extend(b.into_iter().map(|b| format!("on {}: {b}", me.hostname)));
                Manifest::default()
            }
        };
        let reference = format!("{}:{}", unit.container.image, unit.container.version);
        let image_on_source = match self.docker() {
            Some(d) => d.inspect_image(&reference).await.is_ok(),
            None => false,
        };
        let offer = MoveOffer {
            unit: name.to_string(),
            text: def.text.clone(),
            caller: MoveCaller { role: caller.role.to_string(), actor: caller.actor.clone() },
            source: me.hostname.clone(),
            bytes: manifest.bytes(),
            files: manifest.files() as u64,
            image_on_source,
        };
        let client =
            cluster_ops::peer_client(self).map_err(|e| OpError::Unavailable(e.message_with_hint()))?;
        let preflight: MovePreflight =
            peer_json(&client, &target, http::Method::POST, "/cluster/v1/moves/preflight", &offer)
                .await
                .map_err(|e| {
                    OpError::Unavailable(format!("the preflight on {} failed: {e}", target.hostname))
                })?;
        blockers.extend(preflight.blockers.iter().map(|b| format!("on {}: {b}", target.hostname)));
        let volumes: Vec<String> = roots.iter().map(|(v, _)| v.to_string()).collect();
        let mut plan =
            vec![format!("check on {}: name, policy, ports, devices, disk, image", target.hostname)];
        if preflight.image == "stream" {
            plan.push(format!("stream image {reference} to {} (the unit still runs)", target.hostname));
        }
        let what = if volumes.is_empty() { "no volumes".to_owned() } else { volumes.join(", ") };
        if req.warm {
            plan.push(format!(
                "copy {what} ({} MB in {} files) to {} while {name} runs",
                offer.bytes >> 20,
                offer.files,
                target.hostname
            ));
            plan.push(format!("stop {} on {}", name.service(), me.hostname));
            plan.push(format!(
                "send what changed since, and verify every file's SHA-256 on {}",
                target.hostname
            ));
        } else {
            plan.push(format!("stop {} on {}", name.service(), me.hostname));
            plan.push(format!(
                "copy {what} ({} MB in {} files) to {} and verify every file's SHA-256",
                offer.bytes >> 20,
                offer.files,
                target.hostname
            ));
        }
        plan.push(format!(
            "write {name} on {} with its history, start it and wait until it is ready{}",
            target.hostname,
            if unit.health.is_some() { " and healthy" } else { "" }
        ));
        plan.push(format!(
            "disable {name} on {}; {}",
            me.hostname,
            if req.keep_source {
                "keep its data".to_owned()
            } else {
                format!(
                    "remove its file and data after {} if it did not run here again",
                    crate::unit::systemd_duration(soak)
                )
            }
        ));
        let result = MoveResult {
            unit: name.to_string(),
            from: me.hostname.clone(),
            to: target.hostname.clone(),
            dry_run: req.dry_run,
            plan,
            bytes: offer.bytes,
            files: offer.files,
            volumes,
            image: preflight.image.clone(),
            estimate_seconds: (offer.bytes as f64 / ASSUMED_RATE * 10.0).round() / 10.0 + 2.0,
            blockers,
            downtime_ms: None,
            seconds: None,
            keep_source: req.keep_source,
            warm: req.warm,
            sent_after_stop: None,
        };
        Ok(MovePlan {
            name: name.clone(),
            unit,
            text: def.text,
            target,
            roots,
            offer,
            preflight,
            result,
            soak,
        })
    }

    /// Runs a planned move (see the module's state machine).
    pub async fn move_unit(
        self: &Arc<Self>,
        caller: &Caller,
        plan: MovePlan,
        p: &Progress,
    ) -> Result<MoveResult, MoveFailure> {
        let result = plan.result.clone();
        if result.dry_run {
            return Ok(result);
        }
        if !result.blockers.is_empty() {
            let message =
                format!("{} cannot move to {}: nothing was stopped", plan.name, plan.target.hostname);
            self.audit_move(caller, &plan.name, &format!("refused: {}", result.blockers.join("; ")));
            return Err(failed("preflight", message, result.blockers.join("; ")));
        }
        let _moving = {
            let mut set = self.moving.lock().map_err(|_| failed("move", "lock", ""))?;
            if !set.insert(plan.name.to_string()) {
                return Err(failed(
                    "move",
                    format!("{} is being moved already", plan.name),
                    "wait for that move to end",
                ));
            }
            Moving(self, plan.name.to_string())
        };
        let rec = self
            .db()
            .start_move(&crate::db::NewMove {
                unit: plan.name.to_string(),
                side: "source".into(),
                peer: plan.target.hostname.clone(),
                actor: caller.actor.clone(),
                warm: plan.result.warm,
                started_ms: now_ms(),
                bytes: plan.result.bytes,
            })
            .map_err(|e| tracing::error!("move of {}: cannot record it: {e}", plan.name))
            .ok();
        let outcome = self.run_move(caller, plan, p, rec).await;
        if let Some(rec) = rec {
            let ended = match &outcome {
                Ok(r) => {
                    self.db().end_move(rec, "moved", &format!("moved to {}", r.to), r.downtime_ms, now_ms())
                }
                Err(f) => self.db().end_move(
                    rec,
                    f.state,
                    &format!("failed at {}: {}; {}", f.step, f.message, f.hint),
                    None,
                    now_ms(),
                ),
            };
            if let Err(e) = ended {
                tracing::error!("a move's outcome was not recorded: {e}");
            }
        }
        outcome
    }

    /// Records the step a move is at (what `GET /moves` shows of a move under way).
    fn record_step(&self, rec: Option<i64>, step: &str) {
        if let Some(rec) = rec {
            if let Err(e) = self.db().move_step(rec, step) {
                tracing::warn!("a move's step was not recorded: {e}");
            }
        }
    }

    async fn run_move(
        self: &Arc<Self>,
        caller: &Caller,
        plan: MovePlan,
        p: &Progress,
        rec: Option<i64>,
    ) -> Result<MoveResult, MoveFailure> {
        let mut result = plan.result.clone();
        let started = tokio::time::Instant::now();
        let client =
            cluster_ops::peer_client(self).map_err(|e| failed("connect", e.message_with_hint(), ""))?;
        p.step("preflight", "done", format!("{} can take {}", plan.target.hostname, plan.name));
        if plan.preflight.image == "stream" {
            self.record_step(rec, "image");
            self.stream_image(&client, &plan, p).await?;
        }
        let mut first = None;
        if plan.result.warm {
            self.record_step(rec, "warm copy");
            let mut id = None;
            match self.first_pass(&client, &plan, p, &mut id, rec).await {
                Ok(f) => first = Some((f, id)),
                Err(f) => {
                    if let Some(id) = &id {
                        self.give_up(&client, &plan, id).await;
                    }
                    let hint =
                        format!("nothing was stopped: {} runs on {} as before", plan.name, plan.offer.source);
                    self.audit_move(
                        caller,
                        &plan.name,
                        &format!("failed at {}: {}; {hint}", f.step, f.message),
                    );
                    return Err(MoveFailure { hint, ..f });
                }
            }
        }
        let was_active = self.active_state(plan.name.as_str()) == "active";
        let mut journal = Journal {
            rec,
            resume: Resume {
                move_id: first.as_ref().and_then(|(_, id)| id.clone()),
                was_active,
                text_sum: crate::digest::sha256_hex(plan.text.as_bytes()),
                soak_ms: u64::try_from(plan.soak.as_millis()).unwrap_or(u64::MAX),
                keep_source: plan.result.keep_source,
            },
            commit_unanswered: false,
        };
        journal.save(self);
        self.record_step(rec, "stop");
        p.step("stop", "running", format!("stopping {} on {}", plan.name.service(), plan.offer.source));
        self.job(caller, &plan.name, Action::Stop)
            .await
            .map_err(|e| failed("stop", e.to_string(), "nothing else was changed"))?;
        let stopped = tokio::time::Instant::now();
        p.step("stop", "done", format!("{} stopped", plan.name.service()));
        let (first, mut moved_id) = match first {
            Some((f, id)) => (Some(f), id),
            None => (None, None),
        };
        self.record_step(rec, "copy");
        let mut outcome =
            self.transfer_and_commit(&client, &plan, p, &mut moved_id, first, &mut journal).await;
        // The commit went out and no answer came back: the target may have committed and may run
        // the unit. Ask it, as a restarted source would, before anything starts here.
        let mut give_up = true;
        let mut sent_unknown = false;
        if let (Err(f), true) = (&outcome, journal.commit_unanswered) {
            let f = f.clone();
            let mut resume = journal.resume.clone();
            resume.move_id = moved_id.clone();
            p.step(
                "start",
                "running",
                format!("{}; asking {} what became of the move", f.message, plan.target.hostname),
            );
            let (settle, says) =
                self.settle_asking(Phase::CommitSent, &plan.name, &plan.target.hostname, &resume).await;
            tracing::info!("move of {}: the commit was not answered; {settle:?}", plan.name);
            match settle {
                Settle::Finish => {
                    p.step(
                        "start",
                        "done",
                        format!("{} runs {} (it said so when asked)", plan.target.hostname, plan.name),
                    );
                    outcome = Ok(0);
                    sent_unknown = true;
                }
                Settle::Undo { give_up: g, .. } => give_up = g,
                Settle::Uncertain | Settle::Wait => {
                    let why = why_uncertain(&plan.target.hostname, says.as_ref());
                    let hint = format!(
                        "{} was not started here so that it never runs twice; check `containerctl status {}` on {}, \
                         then `containerctl start {}` here if it does not run there, or `containerctl disable {}` here if it does",
                        plan.name, plan.name, plan.target.hostname, plan.name, plan.name
                    );
                    p.step("undo", "done", hint.clone());
                    self.audit_move(caller, &plan.name, &format!("uncertain: {}: {why}; {hint}", f.message));
                    return Err(MoveFailure {
                        message: format!("{}; {why}", f.message),
                        hint,
                        state: "uncertain",
                        ..f
                    });
                }
            }
        }
        if let Err(f) = &outcome {
            // Undo: the target gives up what it staged, the unit runs here again.
            if let (Some(id), true) = (&moved_id, give_up) {
                self.give_up(&client, &plan, id).await;
            }
            let again = if was_active {
                match self.job(caller, &plan.name, Action::Start).await {
                    Ok(_) => format!("{} runs on {} again", plan.name, plan.offer.source),
                    Err(e) => format!("{} did not start again on {}: {e}", plan.name, plan.offer.source),
                }
            } else {
                format!("{} stays on {} as it was (stopped)", plan.name, plan.offer.source)
            };
            p.step("undo", "done", again.clone());
            self.audit_move(caller, &plan.name, &format!("failed at {}: {}; {again}", f.step, f.message));
            return Err(MoveFailure { hint: again, ..f.clone() });
        }
        result.sent_after_stop = if sent_unknown { None } else { outcome.ok() };
        result.downtime_ms = Some(u64::try_from(stopped.elapsed().as_millis()).unwrap_or(u64::MAX));
        let disabled = self.enable(caller, &plan.name, false).await;
        if let Err(e) = &disabled {
            tracing::error!(
                "move of {}: it runs on {} but was not disabled here: {e}",
                plan.name,
                plan.target.hostname
            );
        }
        let detail = format!("moved to {} by {}", plan.target.hostname, caller.actor);
        if let Err(e) = self.db().record_event(&crate::db::NewEvent {
            unit: plan.name.to_string(),
            at_ms: now_ms(),
            kind: "move".into(),
            detail: detail.clone(),
        }) {
            tracing::error!("move of {}: cannot record its event: {e}", plan.name);
        }
        self.audit(
            caller,
            "move",
            Some(plan.name.as_str()),
            Some(plan.text.clone()),
            None,
            &format!("ok: {detail}"),
        );
        p.step(
            "disable",
            "done",
            format!(
                "{} disabled on {}{}",
                plan.name,
                plan.offer.source,
                if plan.result.keep_source { "; its data is kept" } else { "" }
            ),
        );
        if !plan.result.keep_source {
            let volumes = plan
                .roots
                .iter()
                .filter_map(|(v, _)| match v {
                    VolumeId::Named(n) => Some(n.clone()),
                    VolumeId::Host(_) => None,
                })
                .collect();
            self.remove_after_soak(rec, caller, &plan.name, &plan.target.hostname, plan.soak, volumes);
        }
        result.seconds = Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        Ok(result)
    }

    /// Tells the target to give up move `id` (what it staged goes).
    async fn give_up(&self, client: &tls::Client, plan: &MovePlan, id: &str) {
        let path = format!("/cluster/v1/moves/{id}");
        if let Err(e) = client.request(&plan.target.api(), http::Method::DELETE, &path, &[], None).await {
            tracing::warn!("move of {}: the target was not told to give up ({e}); it removes what it staged at its next start", plan.name);
        }
    }

    fn audit_move(&self, caller: &Caller, name: &UnitName, result: &str) {
        self.audit(caller, "move", Some(name.as_str()), None, None, result);
    }

    /// The unit's revisions, oldest first, as they travel with it.
    fn move_history(&self, name: &UnitName) -> Vec<MoveRevision> {
        let db = self.db();
        let infos = db.revisions(name.as_str()).unwrap_or_default();
        let mut out: Vec<MoveRevision> = infos
            .iter()
            .rev()
            .filter_map(|r| db.revision(name.as_str(), r.rev).ok().flatten())
            .map(|r| MoveRevision { at_ms: r.at_ms, actor: r.actor, action: r.action, text: r.text })
            .collect();
        // Only the history since the unit was last created here.
        if let Some(start) = out.iter().rposition(|r| r.action == "rm") {
            out.drain(..=start);
        }
        out
    }

    async fn stream_image(
        &self,
        client: &tls::Client,
        plan: &MovePlan,
        p: &Progress,
    ) -> Result<(), MoveFailure> {
        let reference = format!("{}:{}", plan.unit.container.image, plan.unit.container.version);
        let docker = self.docker().ok_or_else(|| failed("image", "dockerd is not reachable", ""))?;
        p.step("image", "running", format!("streaming {reference} to {}", plan.target.hostname));
        let stream = docker
            .export_image(&reference)
            .map(|r| r.map(hyper::body::Frame::data).map_err(std::io::Error::other));
        let body = BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream));
        let answer = send(
            client,
            &plan.target,
            http::Method::PUT,
            "/cluster/v1/images",
            ("application/x-tar", body),
            STREAM_TIMEOUT,
        )
        .await
        .map_err(|e| {
            failed(
                "image",
                format!("streaming {reference} to {} failed: {e}", plan.target.hostname),
                "nothing was stopped",
            )
        })?;
        if !(200..300).contains(&answer.status) {
            return Err(failed(
                "image",
                format!(
                    "{} refused {reference}: {}",
                    plan.target.hostname,
                    cluster_ops::error_message(&answer.body)
                ),
                "nothing was stopped",
            ));
        }
        p.step("image", "done", format!("{reference} is on {}", plan.target.hostname));
        Ok(())
    }

    /// After the soak, if the unit did not run here meanwhile: its file (a revision `rm` by the
    /// move) and its named volumes go, so the name is free here again. Host paths stay. The end of
    /// the soak is recorded in the move's row (`rec`), so that a restart resumes it
    /// ([`resume_soaks`]).
    pub(super) fn remove_after_soak(
        self: &Arc<Self>,
        rec: Option<i64>,
        caller: &Caller,
        name: &UnitName,
        to: &str,
        soak: Duration,
        volumes: Vec<String>,
    ) {
        let until = now_ms().saturating_add(i64::try_from(soak.as_millis()).unwrap_or(i64::MAX));
        if let Some(rec) = rec {
            if let Err(e) = self.db().set_move_soak(rec, Some(until)) {
                tracing::warn!(
                    "move of {name}: the end of its soak was not recorded (a restart forgets it): {e}"
                );
            }
        }
        let caller = Caller {
            role: policy::Role::Admin,
            actor: format!("{} (move to {to}, after the soak)", caller.actor),
        };
        self.spawn_soak(rec, caller, name.clone(), soak, volumes);
    }

    fn spawn_soak(
        self: &Arc<Self>,
        rec: Option<i64>,
        caller: Caller,
        name: UnitName,
        soak: Duration,
        volumes: Vec<String>,
    ) {
        let d = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(soak).await;
            d.end_soak(&caller, &name, volumes).await;
            if let Some(rec) = rec {
                if let Err(e) = d.db().set_move_soak(rec, None) {
                    tracing::warn!("move of {name}: the end of its soak was not recorded: {e}");
                }
            }
        });
    }

    async fn end_soak(&self, caller: &Caller, name: &UnitName, volumes: Vec<String>) {
        let here = self.active_state(name.as_str());
        if here == "active" || here == "activating" {
            tracing::warn!("move of {name}: it runs here again, its file and data are kept");
            return;
        }
        if self.definition(name).is_some() {
            if let Err(e) = self.remove(caller, name).await {
                tracing::warn!("move of {name}: its file is kept: {e}");
                return;
            }
        }
        // dockerd may come up after a daemon that just started: wait for it a while.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let docker = loop {
            match self.docker() {
                Some(d) => break d,
                None if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!("move of {name}: dockerd is not reachable, volumes {volumes:?} are kept");
                    return;
                }
                None => self.wait_change(Duration::from_secs(1)).await,
            }
        };
        for v in volumes {
            match docker.remove_volume(&v, None::<bollard::query_parameters::RemoveVolumeOptions>).await {
                Ok(()) => tracing::info!("move of {name}: volume {v} removed after the soak"),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(e) => tracing::warn!("move of {name}: volume {v} kept: {e}"),
            }
        }
    }

    /// The named volumes of `name`'s definition here (what its soak removes).
    pub(super) fn named_volumes_of(&self, name: &UnitName) -> Vec<String> {
        self.definition(name)
            .and_then(|def| def.unit.ok())
            .map(|u| {
                transfer::volumes_of(&u)
                    .into_iter()
                    .filter_map(|v| match v {
                        VolumeId::Named(n) => Some(n),
                        VolumeId::Host(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// At start: the soaks of moved units that a containerctld that stopped left under way, resumed
/// with the time they had left (at once where it is over).
pub fn resume_soaks(d: &Arc<Daemon>) {
    let soaking = match d.db().soaking_moves() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot read the soaks under way: {e}");
            return;
        }
    };
    for s in soaking {
        let Ok(name) = UnitName::new(&s.unit) else { continue };
        let left = Duration::from_millis(u64::try_from(s.until_ms.saturating_sub(now_ms())).unwrap_or(0));
        tracing::info!(
            "move of {name} to {}: its soak resumes, its copy here goes in {}",
            s.peer,
            crate::unit::systemd_duration(left)
        );
        let caller = Caller {
            role: policy::Role::Admin,
            actor: format!("{} (move to {}, after the soak)", s.actor, s.peer),
        };
        let volumes = d.named_volumes_of(&name);
        d.spawn_soak(Some(s.id), caller, name, left, volumes);
    }
}

/// Each volume's file stamps, by path.
type Stamps = std::collections::HashMap<String, Stamp>;
