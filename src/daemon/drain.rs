//! `drain`: every movable unit of this host moved to other members, one after the other (a drain
//! of another node is forwarded there: `move_forward`).
//!
//! A unit is movable when its file is an admin's (in the unit directory), it is not a Swarm
//! service, and it is enabled or running (a disabled, stopped unit is left: it is what a move
//! leaves behind). For each, the members are tried in turn (the one that took fewest units of
//! this drain first) until one's preflight passes; a unit no member can take is reported with
//! every member's blockers and stays as it is. A dry run plans each unit this way and changes
//! nothing (two units planned to one member are checked against it as it is now).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Daemon, OpError};
use crate::cluster::ops as cluster_ops;
use crate::policy::Caller;
use crate::progress::Progress;
use crate::unit::UnitName;
use crate::wire::{DrainMove, DrainNode, DrainResult, MoveUnit};

/// Where a drain runs.
pub enum DrainAt {
    /// This host is the node: the other members, to move the units to.
    Here(Vec<cluster_ops::PeerNode>),
    /// Another member is the node: the drain is forwarded there.
    Other(cluster_ops::PeerNode),
}

impl Daemon {
    /// Checks a drain's request before it streams: this host is a member; the node named is this
    /// host (the other members to move to) or another member (where to forward the drain).
    pub async fn check_drain(&self, node: &str) -> Result<DrainAt, OpError> {
        let me = self.cluster.state().ok_or_else(|| {
            OpError::Conflict("this host is not a cluster member: drain moves units between members".into())
        })?;
        let named = cluster_ops::lookup(self, node.trim()).await.map_err(|e| match e.kind {
            cluster_ops::StepKind::NotFound => OpError::NotFound(e.message_with_hint()),
            _ => OpError::Unavailable(e.message_with_hint()),
        })?;
        if named.addr != me.addr {
            return Ok(DrainAt::Other(named));
        }
        let others: Vec<_> = cluster_ops::members(self)
            .await
            .map_err(|e| OpError::Unavailable(e.message_with_hint()))?
            .into_iter()
            .filter(|m| m.addr != me.addr)
            .collect();
        if others.is_empty() {
            return Err(OpError::Conflict("no other active member to move the units to".into()));
        }
        Ok(DrainAt::Here(others))
    }

    /// The units a drain moves, by name, and those it leaves with why.
    fn drain_candidates(&self) -> (Vec<UnitName>, Vec<DrainMove>) {
        let mut movable = Vec::new();
        let mut skipped = Vec::new();
        let mut defs = self.definitions();
        defs.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (name, def) in defs {
            let state = self.active_state(name.as_str());
            let running = matches!(state.as_str(), "active" | "activating" | "reloading");
            let skip = |why: String| DrainMove {
                unit: name.to_string(),
                state: "skipped".into(),
                detail: why,
                ..DrainMove::default()
            };
            match &def.unit {
                _ if !def.path.starts_with(&self.config.unit_dir) => skipped.push(skip(format!(
                    "{} is a vendor or runtime unit: only units in {} move",
                    def.path.display(),
                    self.config.unit_dir.display()
                ))),
                Err(e) => skipped.push(DrainMove {
                    state: "blocked".into(),
                    detail: format!("{name} does not validate: {e}"),
                    ..skip(String::new())
                }),
                Ok(u) if u.deploy.is_some() => {
                    skipped.push(skip("a Swarm service ([deploy]): Swarm places it".into()))
                }
                Ok(u) if !u.service.enabled && !running => {
                    skipped.push(skip("disabled and stopped: left here".into()))
                }
                Ok(_) => movable.push(name),
            }
        }
        (movable, skipped)
    }

    /// Runs a drain (see the module): every unit's outcome, in name order.
    pub async fn drain(
        self: &Arc<Self>,
        caller: &Caller,
        req: &DrainNode,
        others: Vec<cluster_ops::PeerNode>,
        p: &Progress,
    ) -> DrainResult {
        let (movable, mut skipped) = self.drain_candidates();
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        p.step(
            "drain",
            "running",
            format!("{} units to move to {} other members", movable.len(), others.len()),
        );
        for name in movable {
            let mut order = others.clone();
            order.sort_by_key(|m| (taken.get(&m.hostname).copied().unwrap_or(0), m.hostname.clone()));
            let mut blockers = Vec::new();
            let mut chosen = None;
            for m in &order {
                let req = MoveUnit {
                    to: m.hostname.clone(),
                    dry_run: req.dry_run,
                    keep_source: false,
                    soak: None,
                    warm: req.warm,
                };
                match self.plan_move(caller, &name, &req).await {
                    Ok(plan) if plan.result.blockers.is_empty() => {
                        chosen = Some(plan);
                        break;
                    }
                    Ok(plan) => blockers.extend(plan.result.blockers),
                    Err(e) => blockers.push(format!("{}: {e}", m.hostname)),
                }
            }
            let Some(plan) = chosen else {
                let detail = format!("no member can take it: {}", blockers.join("; "));
                p.step("drain", "running", format!("{name}: {detail}"));
                out.push(DrainMove {
                    unit: name.to_string(),
                    state: "blocked".into(),
                    detail,
                    ..DrainMove::default()
                });
                continue;
            };
            let to = plan.result.to.clone();
            *taken.entry(to.clone()).or_default() += 1;
            if req.dry_run {
                out.push(DrainMove {
                    unit: name.to_string(),
                    to: Some(to.clone()),
                    state: "planned".into(),
                    detail: format!("{} MB in {} files", plan.result.bytes >> 20, plan.result.files),
                    ..DrainMove::default()
                });
                continue;
            }
            p.step("drain", "running", format!("{name}: moving to {to}"));
            let moved = match self.move_unit(caller, plan, p).await {
                Ok(r) => DrainMove {
                    unit: name.to_string(),
                    to: Some(to),
                    state: "moved".into(),
                    detail: format!("{} MB in {} files", r.bytes >> 20, r.files),
                    downtime_ms: r.downtime_ms,
                },
                Err(f) => DrainMove {
                    unit: name.to_string(),
                    to: Some(to),
                    state: "failed".into(),
                    detail: format!("{} ({})", f.message, f.hint),
                    downtime_ms: None,
                },
            };
            p.step("drain", "running", format!("{name}: {} {}", moved.state, moved.detail));
            out.push(moved);
        }
        out.append(&mut skipped);
        let left = out.iter().filter(|m| m.state == "blocked" || m.state == "failed").count();
        p.step(
            "drain",
            if left == 0 { "done" } else { "failed" },
            format!(
                "{} of {} units {}",
                out.iter().filter(|m| m.state == "moved" || m.state == "planned").count(),
                out.iter().filter(|m| m.state != "skipped").count(),
                if req.dry_run { "can move" } else { "moved" }
            ),
        );
        DrainResult { node: crate::cluster::hostname(), dry_run: req.dry_run, moves: out }
    }
}
