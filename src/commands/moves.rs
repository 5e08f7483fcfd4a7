//! `containerctl move NAME --to NODE [--warm] [--dry-run] [--keep-source] [--soak D] [--json]`:
//! move a unit and its data to another member of the cluster.
//!
//! `containerctl drain NODE [--warm] [--dry-run] [--json]`: every movable unit of NODE (any member)
//! moved to other members; exits 1 when a unit could not be moved.
//!
//! Progress goes to stderr; the plan or the outcome to stdout. A move refused by its checks exits
//! 1 after listing every blocker, with nothing stopped; so does a dry run that found blockers.

use super::stream::{self, Streamed};
use super::{Ctx, Error};
use crate::unit::UnitName;
use crate::wire::{DrainNode, DrainResult, MoveResult, MoveUnit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit to move.
    #[arg(value_parser = super::parse_name)]
    pub name: UnitName,
    /// The member to move it to: node id, host name or address.
    #[arg(long, value_name = "NODE")]
    pub to: String,
    /// Copy while the unit runs, then stop it and send only what changed (the downtime is the delta).
    #[arg(long)]
    pub warm: bool,
    /// Show the plan, the bytes to copy, an estimate of the time and every blocker; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the unit's data on this host for good (else it goes once the target stayed up for the soak).
    #[arg(long)]
    pub keep_source: bool,
    /// How long the target must stay up before this host's copy of the data is removed (default 10m).
    #[arg(long, value_name = "DURATION")]
    pub soak: Option<String>,
    /// Print the daemon's NDJSON lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let body = MoveUnit {
        to: args.to.clone(),
        dry_run: args.dry_run,
        keep_source: args.keep_source,
        soak: args.soak.clone(),
        warm: args.warm,
    };
    let route = format!("/units/{}/move", args.name);
    match stream::run(ctx, &route, &body, args.json)? {
        Streamed::Result(v) => {
            let r: MoveResult = serde_json::from_value(v)
                .map_err(|e| Error::Failed(format!("unexpected answer from containerctld: {e}")))?;
            if !args.json {
                ctx.term.print(&render(&r))?;
            }
            // A dry run that found blockers says so in its status too.
            if r.blockers.is_empty() {
                Ok(())
            } else {
                Err(Error::Reported(super::exit::FAILED))
            }
        }
        Streamed::Failure(f) => {
            if !args.json {
                eprintln!("containerctl: {}: {}", args.name, f.message);
                for part in f.hint.split("; ").filter(|h| !h.is_empty()) {
                    eprintln!("  {part}");
                }
            }
            Err(Error::Reported(stream::exit_for(&f.kind)))
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    /// The node to empty: a member's host name, node id or address.
    pub node: String,
    /// Move each unit warm (copy while it runs, then only what changed).
    #[arg(long)]
    pub warm: bool,
    /// Show which member would take each unit and which cannot move; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the daemon's NDJSON lines.
    #[arg(long)]
    pub json: bool,
}

pub fn drain(args: DrainArgs, ctx: &Ctx) -> Result<(), Error> {
    let body = DrainNode { dry_run: args.dry_run, warm: args.warm };
    let route = format!("/cluster/nodes/{}/drain", urlencoding_segment(&args.node));
    match stream::run(ctx, &route, &body, args.json)? {
        Streamed::Result(v) => {
            let r: DrainResult = serde_json::from_value(v)
                .map_err(|e| Error::Failed(format!("unexpected answer from containerctld: {e}")))?;
            if !args.json {
                ctx.term.print(&render_drain(&r))?;
            }
            if r.moves.iter().any(|m| m.state == "blocked" || m.state == "failed") {
                Err(Error::Reported(super::exit::FAILED))
            } else {
                Ok(())
            }
        }
        Streamed::Failure(f) => {
            if !args.json {
                eprintln!("containerctl: drain {}: {}", args.node, f.message);
            }
            Err(Error::Reported(stream::exit_for(&f.kind)))
        }
    }
}

/// A node name as one path segment: only the characters of host names, ids and addresses.
fn urlencoding_segment(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')).collect()
}

/// Each unit of a drain, one line.
pub fn render_drain(r: &DrainResult) -> String {
    let mut out =
        format!("drain {}{}\n", r.node, if r.dry_run { " (dry run: nothing was changed)" } else { "" });
    for m in &r.moves {
        let to = m.to.as_deref().map(|t| format!(" -> {t}")).unwrap_or_default();
        let down = m.downtime_ms.map(|d| format!(", downtime {:.1}s", d as f64 / 1000.0)).unwrap_or_default();
        out.push_str(&format!("  {}{to}: {}: {}{down}\n", m.unit, m.state, m.detail));
    }
    out
}

/// The plan of a dry run, or what a move did.
pub fn render(r: &MoveResult) -> String {
    let mut out = String::new();
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1_048_576.0);
    if r.dry_run {
        out.push_str(&format!(
            "move {} from {} to {} (dry run: nothing was changed)\n",
            r.unit, r.from, r.to
        ));
        for (i, step) in r.plan.iter().enumerate() {
            out.push_str(&format!("  {}. {step}\n", i + 1));
        }
        out.push_str(&format!(
            "data: {} in {} files ({}); image: {}; estimated time: {:.0}s\n",
            mb(r.bytes),
            r.files,
            if r.volumes.is_empty() { "no volumes".to_owned() } else { r.volumes.join(", ") },
            if r.image.is_empty() { "unavailable" } else { &r.image },
            r.estimate_seconds.ceil()
        ));
        if r.blockers.is_empty() {
            out.push_str("blockers: none\n");
        } else {
            out.push_str(&format!("blockers ({}):\n", r.blockers.len()));
            for b in &r.blockers {
                out.push_str(&format!("  - {b}\n"));
            }
        }
    } else {
        out.push_str(&format!(
            "{} moved from {} to {}: {} in {} files, downtime {:.1}s, {:.1}s in all\n",
            r.unit,
            r.from,
            r.to,
            mb(r.bytes),
            r.files,
            r.downtime_ms.unwrap_or(0) as f64 / 1000.0,
            r.seconds.unwrap_or(0.0)
        ));
        if r.warm {
            out.push_str(&format!(
                "warm: copied while it ran, then {} sent after the stop\n",
                mb(r.sent_after_stop.unwrap_or(0))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_lists_the_plan_and_every_blocker() {
        let r = MoveResult {
            unit: "cam".into(),
            from: "a".into(),
            to: "b".into(),
            dry_run: true,
            plan: vec!["stop".into(), "copy".into()],
            bytes: 3 << 20,
            files: 2,
            volumes: vec!["volume cam-data".into()],
            image: "registry".into(),
            estimate_seconds: 2.1,
            blockers: vec!["on b: port 8080/tcp is in use".into()],
            ..MoveResult::default()
        };
        let text = render(&r);
        assert!(text.contains("  1. stop\n  2. copy"), "{text}");
        assert!(
            text.contains("3.0 MB in 2 files (volume cam-data); image: registry; estimated time: 3s"),
            "{text}"
        );
        assert!(text.contains("blockers (1):\n  - on b: port 8080/tcp is in use"), "{text}");
    }
}
