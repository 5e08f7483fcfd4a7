//! The source's moves that a containerctld which stopped left unfinished, settled when it
//! starts again, and the resume of one by a later move of the same unit to the same member.
//!
//! What the source records as a move goes (`moves.step`, `moves.resume`) decides what is safe:
//!
//! ```text
//! before the stop (image, warm copy)  ─► nothing was stopped; the target gives its staging up
//! stopped, commit not sent (stop, copy) ─► the unit starts here again if it ran; the target's
//!                                        staging stays for a resumed move until its expiry
//! commit sent (commit)                 ─► the target is asked (with a deadline): moved or the
//!                                        unit runs there ─► finished here (disabled, soak);
//!                                        the commit never arrived or failed there and the unit is
//!                                        not there ─► starts here again; anything else ─►
//!                                        `uncertain`: never started here, the admin decides
//! answered (committed)                 ─► finished here
//! ```
//!
//! Two running copies are worse than a stopped one: the unit starts here again only when the
//! target cannot run it. All of it runs in the background, so the start of the daemon (READY,
//! the watchdog) never waits for an unreachable member.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Daemon;
use crate::cluster::ops::{self as cluster_ops, PeerNode};
use crate::cluster::tls;
use crate::policy::{Action, Caller, Role};
use crate::progress::Progress;
use crate::time::now_ms;
use crate::transfer::{self, Kind, Manifest};
use crate::unit::UnitName;
use crate::wire::{MoveDelta, MoveOutcome, MoveReused};

/// How long a restarted source keeps asking the target what became of a commit.
const SETTLE_DEADLINE: Duration = Duration::from_secs(180);
/// Between two questions to a target that did not answer or is still committing.
const SETTLE_RETRY: Duration = Duration::from_secs(2);
/// Why a move ended with a restart.
const RESTARTED: &str = "containerctld restarted during the move";

/// What a source records (JSON in `moves.resume`) to settle a move after a restart or resume it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resume {
    /// The move's id on the target, once begun.
    pub move_id: Option<String>,
    /// The unit was active before the stop.
    pub was_active: bool,
    /// SHA-256 of the unit's text: a resumed move sends the same definition.
    pub text_sum: String,
    pub soak_ms: u64,
    pub keep_source: bool,
}

/// A running move's row and what it records to be settled after a restart.
pub(super) struct Journal {
    pub rec: Option<i64>,
    pub resume: Resume,
    /// The commit was sent and no answer came back: the target may run the unit.
    pub commit_unanswered: bool,
}

impl Journal {
    pub fn save(&self, d: &Daemon) {
        let (Some(rec), Ok(json)) = (self.rec, serde_json::to_string(&self.resume)) else { return };
        if let Err(e) = d.db().set_move_resume(rec, Some(&json)) {
            tracing::warn!("a move's state for a restart was not recorded: {e}");
        }
    }

    /// The step, recorded before it is taken (what a restart settles by).
    pub fn step(&self, d: &Daemon, step: &str) {
        if let Some(rec) = self.rec {
            if let Err(e) = d.db().move_step(rec, step) {
                tracing::warn!("a move's step was not recorded: {e}");
            }
        }
    }
}

/// Where an unfinished move was when the daemon stopped (from its recorded step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    BeforeStop,
    Stopped,
    CommitSent,
    Committed,
}

impl Phase {
    pub fn of(step: &str) -> Phase {
        match step {
            "stop" | "copy" => Phase::Stopped,
            "commit" => Phase::CommitSent,
            "committed" => Phase::Committed,
            _ => Phase::BeforeStop,
        }
    }
}

/// What the target said of a move whose commit was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSays {
    Answered(MoveOutcome),
    Unreachable(String),
}

/// What settling a move does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Ask the target again later (it is committing, or did not answer).
    Wait,
    /// The unit did not move: the target gives up (or keeps its staging for a resume), the unit
    /// starts here again if it ran; the move is recorded with `state`.
    Undo { give_up: bool, start: bool, state: &'static str },
    /// The unit runs on the target: disabled here, the move recorded `moved`.
    Finish,
    /// Nobody knows whether the target runs it: nothing started here.
    Uncertain,
}

/// The decision, pure: `says` is `None` where the target was not asked.
pub fn decide(phase: Phase, was_active: bool, says: Option<&TargetSays>, deadline_passed: bool) -> Settle {
    match phase {
        Phase::BeforeStop => Settle::Undo { give_up: true, start: false, state: "interrupted" },
        Phase::Stopped => Settle::Undo { give_up: false, start: was_active, state: "interrupted" },
        Phase::Committed => Settle::Finish,
        Phase::CommitSent => match says {
            Some(TargetSays::Answered(o)) => match (o.state.as_str(), o.defined, o.active) {
                ("moved", _, _) | (_, true, true) => Settle::Finish,
                ("receiving", false, _) => {
                    Settle::Undo { give_up: true, start: was_active, state: "interrupted" }
                }
                ("failed", false, _) => Settle::Undo { give_up: false, start: was_active, state: "failed" },
                ("unknown", false, _) => {
                    Settle::Undo { give_up: false, start: was_active, state: "interrupted" }
                }
                _ if deadline_passed => Settle::Uncertain,
                _ => Settle::Wait,
            },
            _ if deadline_passed => Settle::Uncertain,
            _ => Settle::Wait,
        },
    }
}

/// Why nobody knows whether `peer` runs the unit, from what it said (`None`: not asked).
pub fn why_uncertain(peer: &str, says: Option<&TargetSays>) -> String {
    match says {
        Some(TargetSays::Unreachable(e)) => format!("{peer} could not be asked ({e})"),
        Some(TargetSays::Answered(o)) => format!(
            "{peer} says {} and the unit is {}",
            o.state,
            if o.defined { "defined but not running there" } else { "not there" }
        ),
        None => format!("{peer} was not asked"),
    }
}

/// Moving guard for a settle (the unit is not moved again meanwhile).
struct Settling(Arc<Daemon>, String);

impl Drop for Settling {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.moving.lock() {
            set.remove(&self.1);
        }
    }
}

/// At start: every move this host was the source of and that a stopped daemon left unfinished,
/// settled in the background.
pub fn settle_unfinished_moves(d: &Arc<Daemon>) {
    let left = match d.db().unfinished_source_moves() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot read the unfinished moves: {e}");
            return;
        }
    };
    for m in left {
        let Ok(name) = UnitName::new(&m.unit) else { continue };
        let Some(guard) = d
            .moving
            .lock()
            .ok()
            .and_then(|mut set| set.insert(m.unit.clone()).then(|| Settling(d.clone(), m.unit.clone())))
        else {
            continue;
        };
        let resume: Resume =
            m.resume.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
        let d = d.clone();
        tokio::spawn(async move {
            d.settle_move(m.id, &name, &m.peer, Phase::of(&m.step), &resume).await;
            drop(guard);
        });
    }
}

impl Daemon {
    async fn settle_move(self: &Arc<Self>, rec: i64, name: &UnitName, peer: &str, phase: Phase, r: &Resume) {
        let (settle, says) = self.settle_asking(phase, name, peer, r).await;
        tracing::info!("move of {name} to {peer} left unfinished at {phase:?}: {settle:?}");
        let admin =
            Caller { role: Role::Admin, actor: format!("containerctld (the move of {name} to {peer})") };
        let (state, detail) = match settle {
            Settle::Wait => return,
            Settle::Undo { give_up, start, state } => {
                if give_up {
                    self.give_up_after_restart(peer, r).await;
                }
                let kept = if !give_up && r.move_id.is_some() && phase == Phase::Stopped {
                    format!(
                        "; what {peer} staged is kept for a new `containerctl move {name} --to {peer}` \
                         until its staging expires"
                    )
                } else {
                    String::new()
                };
                let here = if start {
                    match self.job(&admin, name, Action::Start).await {
                        Ok(_) => format!("{name} runs here again"),
                        Err(e) => {
                            tracing::error!("move of {name}: it did not start here again: {e}");
                            format!("{name} did not start here again: {e}")
                        }
                    }
                } else if phase == Phase::BeforeStop {
                    format!("nothing was stopped: {name} runs here as before")
                } else {
                    format!("{name} stays here as it was (stopped)")
                };
                (state, format!("{RESTARTED}; {here}{kept}"))
            }
            Settle::Finish => {
                self.finish_after_restart(rec, &admin, name, peer, r).await;
                (
                    "moved",
                    format!("moved to {peer}; {RESTARTED}, the move was finished when it started again"),
                )
            }
            Settle::Uncertain => {
                let why = why_uncertain(peer, says.as_ref());
                let detail = format!(
                    "{RESTARTED} after it asked {peer} to start {name}, and {why}: {name} was not started here \
                     so that it never runs twice; check `containerctl status {name}` on {peer}, then \
                     `containerctl start {name}` here if it does not run there, or `containerctl disable {name}` \
                     here if it does"
                );
                tracing::error!("move of {name}: {detail}");
                ("uncertain", detail)
            }
        };
        self.audit(&admin, "move", Some(name.as_str()), None, None, &format!("{state}: {detail}"));
        if let Err(e) = self.db().end_move(rec, state, &detail, None, now_ms()) {
            tracing::error!("a move's outcome was not recorded: {e}");
        }
    }

    /// What to do with a move left at `phase`, asking the target (again, until
    /// [`SETTLE_DEADLINE`]) where [`decide`] needs its word: what a restarted source does, and a
    /// running one whose commit got no answer (the connection broke, the target restarted).
    /// Never `Settle::Wait`. The second value is what the target last said.
    pub(super) async fn settle_asking(
        &self,
        phase: Phase,
        name: &UnitName,
        peer: &str,
        r: &Resume,
    ) -> (Settle, Option<TargetSays>) {
        let started = tokio::time::Instant::now();
        let mut says: Option<TargetSays> = None;
        loop {
            let deadline_passed = started.elapsed() >= SETTLE_DEADLINE;
            match decide(phase, r.was_active, says.as_ref(), deadline_passed) {
                Settle::Wait => {
                    if says.is_some() {
                        tokio::time::sleep(SETTLE_RETRY).await;
                    }
                    says = Some(self.ask_outcome(peer, name, r).await);
                }
                s => return (s, says),
            }
        }
    }

    async fn ask_outcome(&self, peer: &str, name: &UnitName, r: &Resume) -> TargetSays {
        let Some(id) = &r.move_id else { return TargetSays::Unreachable("no move id was recorded".into()) };
        let target = match cluster_ops::lookup(self, peer).await {
            Ok(t) => t,
            Err(e) => return TargetSays::Unreachable(e.message_with_hint()),
        };
        let client = match cluster_ops::peer_client(self) {
            Ok(c) => c,
            Err(e) => return TargetSays::Unreachable(e.message_with_hint()),
        };
        let path = format!("/cluster/v1/moves/{id}/outcome?unit={name}");
        match client.request(&target.api(), http::Method::GET, &path, &[], None).await {
            Ok((200, body)) => match serde_json::from_slice(&body) {
                Ok(o) => TargetSays::Answered(o),
                Err(e) => TargetSays::Unreachable(format!("bad answer: {e}")),
            },
            Ok((status, body)) => {
                TargetSays::Unreachable(format!("{status}: {}", cluster_ops::error_message(&body)))
            }
            Err(e) => TargetSays::Unreachable(e.to_string()),
        }
    }

    /// Best effort: a target that is not told removes the staging at its expiry.
    async fn give_up_after_restart(&self, peer: &str, r: &Resume) {
        let Some(id) = &r.move_id else { return };
        let asked = async {
            let target = cluster_ops::lookup(self, peer).await.map_err(|e| e.message_with_hint())?;
            let client = cluster_ops::peer_client(self).map_err(|e| e.message_with_hint())?;
            let path = format!("/cluster/v1/moves/{id}");
            client
                .request(&target.api(), http::Method::DELETE, &path, &[], None)
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = asked.await {
            tracing::warn!(
                "move {id}: {peer} was not told to give up ({e}); it removes what it staged at its expiry"
            );
        }
    }

    /// The unit runs on `peer`: disabled here, the move recorded, the data removed after the soak.
    async fn finish_after_restart(
        self: &Arc<Self>,
        rec: i64,
        admin: &Caller,
        name: &UnitName,
        peer: &str,
        r: &Resume,
    ) {
        if let Err(e) = self.enable(admin, name, false).await {
            tracing::error!("move of {name}: it runs on {peer} but was not disabled here: {e}");
        }
        if let Err(e) = self.db().record_event(&crate::db::NewEvent {
            unit: name.to_string(),
            at_ms: now_ms(),
            kind: "move".into(),
            detail: format!("moved to {peer} (finished after containerctld restarted)"),
        }) {
            tracing::error!("move of {name}: cannot record its event: {e}");
        }
        if r.keep_source {
            return;
        }
        let volumes = self.named_volumes_of(name);
        self.remove_after_soak(Some(rec), admin, name, peer, Duration::from_millis(r.soak_ms), volumes);
    }

    /// A move of a stopped unit to `target` that finds a move a restart interrupted there: the
    /// files the target has whole and whose sums equal what is read here now are reused, the
    /// rest is sent (a delta). `None`: nothing to resume (a fresh begin follows).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn resume_interrupted(
        &self,
        client: &tls::Client,
        target: &PeerNode,
        name: &UnitName,
        text: &str,
        manifest: &Manifest,
        roots: &[PathBuf],
        p: &Progress,
    ) -> Option<(String, std::collections::HashMap<transfer::FileKey, String>)> {
        let (old, json) = self.db().resumable_move(name.as_str(), &target.hostname).ok().flatten()?;
        // Used once, whatever comes of it.
        if let Err(e) = self.db().set_move_resume(old, None) {
            tracing::warn!("move of {name}: {e}");
        }
        let r: Resume = serde_json::from_str(&json).ok()?;
        let id = r.move_id?;
        if r.text_sum != crate::digest::sha256_hex(text.as_bytes()) {
            self.give_up_after_restart(&target.hostname, &Resume { move_id: Some(id), ..Resume::default() })
                .await;
            return None;
        }
        let path = format!("/cluster/v1/moves/{id}");
        let have: Vec<crate::wire::MoveHave> =
            match client.request(&target.api(), http::Method::GET, &path, &[], None).await {
                Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["have"].clone()).ok())
                    .unwrap_or_default(),
                _ => return None,
            };
        let sized: std::collections::HashMap<transfer::FileKey, u64> = manifest
            .volumes
            .iter()
            .enumerate()
            .flat_map(|(i, v)| {
                v.entries.iter().filter(|e| e.kind == Kind::File).map(move |e| ((i, e.path.clone()), e.size))
            })
            .collect();
        let claimed: Vec<(transfer::FileKey, String)> = have
            .into_iter()
            .filter(|h| sized.get(&(h.volume, h.path.clone())) == Some(&h.size))
            .map(|h| ((h.volume, h.path), h.sum))
            .collect();
        let roots = roots.to_vec();
        // Read again here (the unit is stopped): only what still has the target's sum is reused.
        let reuse = tokio::task::spawn_blocking(move || {
            claimed
                .into_iter()
                .filter(|((i, path), sum)| {
                    roots.get(*i).is_some_and(|root| {
                        file_sum(&transfer::below(root, path)).as_deref() == Some(sum.as_str())
                    })
                })
                .collect::<std::collections::HashMap<_, _>>()
        })
        .await
        .ok()?;
        let delta = MoveDelta {
            manifest: manifest.clone(),
            reuse: reuse.keys().map(|(v, path)| MoveReused { volume: *v, path: path.clone() }).collect(),
        };
        let body = serde_json::to_vec(&delta).ok()?;
        let path = format!("/cluster/v1/moves/{id}/delta");
        match client.request(&target.api(), http::Method::POST, &path, &[], Some(body)).await {
            Ok((s, _)) if (200..300).contains(&s) => {}
            _ => {
                self.give_up_after_restart(
                    &target.hostname,
                    &Resume { move_id: Some(id), ..Resume::default() },
                )
                .await;
                return None;
            }
        }
        let kept: u64 = reuse.keys().filter_map(|k| sized.get(k)).sum();
        p.step(
            "copy",
            "running",
            format!(
                "resuming the move a restart interrupted: {} MB in {} files staged on {} before are not sent again",
                kept >> 20,
                reuse.len(),
                target.hostname
            ),
        );
        Some((id, reuse))
    }
}

/// A file's SHA-256 (hex), or `None` when it cannot be read.
fn file_sum(path: &std::path::Path) -> Option<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut sha = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf).ok()? {
            0 => return Some(crate::digest::hex(&sha.finalize())),
            k => sha.update(&buf[..k]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(state: &str, defined: bool, active: bool) -> TargetSays {
        TargetSays::Answered(MoveOutcome { state: state.into(), defined, active })
    }

    #[test]
    fn a_move_killed_before_the_commit_starts_the_unit_here_again_only_if_it_ran() {
        assert_eq!(
            decide(Phase::of("copy"), true, None, false),
            Settle::Undo { give_up: false, start: true, state: "interrupted" }
        );
        assert_eq!(
            decide(Phase::of("stop"), false, None, false),
            Settle::Undo { give_up: false, start: false, state: "interrupted" }
        );
        // Before the stop nothing was stopped: nothing to start, the target gives up.
        for step in ["", "image", "warm copy"] {
            assert_eq!(
                decide(Phase::of(step), true, None, false),
                Settle::Undo { give_up: true, start: false, state: "interrupted" }
            );
        }
    }

    #[test]
    fn after_the_commit_the_unit_never_starts_here_while_the_target_may_run_it() {
        let sent = Phase::of("commit");
        assert_eq!(decide(sent, true, None, false), Settle::Wait);
        assert_eq!(decide(sent, true, Some(&said("moved", true, true)), false), Settle::Finish);
        assert_eq!(decide(sent, true, Some(&said("unknown", true, true)), false), Settle::Finish);
        assert_eq!(decide(sent, true, Some(&said("committing", false, false)), false), Settle::Wait);
        assert_eq!(decide(sent, true, Some(&said("committing", false, false)), true), Settle::Uncertain);
        // Defined there but not running: it may be starting or restarting.
        assert_eq!(decide(sent, true, Some(&said("unknown", true, false)), true), Settle::Uncertain);
        let down = TargetSays::Unreachable("no route".into());
        assert_eq!(decide(sent, true, Some(&down), false), Settle::Wait);
        assert_eq!(decide(sent, true, Some(&down), true), Settle::Uncertain);
        // The target undid it, or never got the commit, and has no unit: it runs here again.
        assert_eq!(
            decide(sent, true, Some(&said("failed", false, false)), false),
            Settle::Undo { give_up: false, start: true, state: "failed" }
        );
        assert_eq!(
            decide(sent, true, Some(&said("receiving", false, false)), false),
            Settle::Undo { give_up: true, start: true, state: "interrupted" }
        );
        assert_eq!(decide(Phase::of("committed"), true, None, false), Settle::Finish);
    }
}
