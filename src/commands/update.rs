//! `containerctl update`: move units to new versions with a health-gated rollback.
//!
//! - `update NAME [--to VERSION] [--digest D] [--soak D] [--dry-run]`: one unit (without
//!   `--to`, the newest version its `[update]` policy allows).
//! - `update --check [NAME...]`: the newest version each unit's policy allows.
//! - `update --all`: every allowed update, one unit at a time, then a summary.
//! - `update --scheduled NAME`: what the unit's timer runs (the update with `auto = true`,
//!   else a check).
//!
//! Progress goes to stderr; the outcome to stdout. A rollback exits 1 after saying
//! "rolled back to VERSION: REASON" and the failed run's last log lines.

use serde_json::Value;

use super::stream::{self, Streamed};
use super::{exit, ui, Ctx, Error};
use crate::unit::UnitName;
use crate::wire::{CheckUpdates, StepFailure, UpdateCheck, UpdateResult, UpdateUnit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit(s): one to update, or those to check (default: all).
    #[arg(value_parser = super::parse_name)]
    pub names: Vec<UnitName>,
    /// The version (tag) to move to (default: the newest the unit's [update] policy allows).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// The digest the new version must have (sha256:…); without it, the digest pulled is pinned.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
    /// How long the unit must stay up and healthy after it started (default [update] soak, 30s).
    #[arg(long, value_name = "DURATION")]
    pub soak: Option<String>,
    /// Show the change and the plan; pull and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Show the newest version each unit's policy allows (from its registry); change nothing.
    #[arg(long, conflicts_with_all = ["all", "to", "digest", "dry_run", "scheduled"])]
    pub check: bool,
    /// Apply every allowed update, one unit at a time, each with its rollback.
    #[arg(long, conflicts_with_all = ["to", "digest", "scheduled"])]
    pub all: bool,
    /// What a unit's timer runs: the update when [update] auto = true, else a check.
    #[arg(long, conflicts_with_all = ["to", "digest", "dry_run"])]
    pub scheduled: bool,
    /// Print the daemon's NDJSON lines (the check's or the summary's JSON for --check and --all).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    if args.check {
        let checks = check(ctx, &args.names, args.json)?;
        if args.json {
            return print_json(ctx, &checks);
        }
        return ctx.term.print(&render_checks(&checks));
    }
    if args.all {
        if !args.names.is_empty() {
            return Err(Error::Usage(
                "--all takes no NAME: it updates every unit with an allowed update".into(),
            ));
        }
        return all(ctx, &args);
    }
    let [name] = &args.names[..] else {
        return Err(Error::Usage(
            "give one NAME to update (or --check to see the available versions, --all to apply them)".into(),
        ));
    };
    let body = UpdateUnit {
        to: args.to.clone(),
        digest: args.digest.clone(),
        soak: args.soak.clone(),
        dry_run: args.dry_run,
        scheduled: args.scheduled,
    };
    match one(ctx, name, &body, args.json)? {
        Ok(r) if args.json => {
            let _ = r;
            Ok(())
        }
        Ok(r) => ctx.term.print(&render_result(&r)),
        Err(code) => Err(Error::Reported(code)),
    }
}

/// Runs one update; the result, or the exit status after the failure was reported.
fn one(ctx: &Ctx, name: &UnitName, body: &UpdateUnit, json: bool) -> Result<Result<UpdateResult, u8>, Error> {
    let route = format!("/units/{name}/update");
    match stream::run(ctx, &route, body, json)? {
        Streamed::Result(v) => Ok(Ok(decode(v)?)),
        Streamed::Failure(f) => {
            if !json {
                report_failure(name, &f);
            }
            Ok(Err(stream::exit_for(&f.kind)))
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::Failed(format!("unexpected answer from containerctld: {e}")))
}

fn report_failure(name: &UnitName, f: &StepFailure) {
    eprintln!("containerctl: {name}: {}", f.message);
    let log: Vec<String> = f
        .detail
        .as_ref()
        .and_then(|d| serde_json::from_value::<UpdateResult>(d.clone()).ok())
        .map(|r| r.log)
        .unwrap_or_default();
    if !log.is_empty() {
        eprintln!("  last lines of the failed run:");
        for l in log {
            eprintln!("    {l}");
        }
    }
    if !f.hint.is_empty() {
        eprintln!("  hint: {}", f.hint);
    }
}

fn check(ctx: &Ctx, names: &[UnitName], json: bool) -> Result<Vec<UpdateCheck>, Error> {
    let body = CheckUpdates { units: names.iter().map(ToString::to_string).collect() };
    // --json prints the checks at the end, not the progress lines.
    let _ = json;
    match stream::run(ctx, "/updates/check", &body, false)? {
        Streamed::Result(v) => decode(v),
        Streamed::Failure(f) => {
            eprintln!("containerctl: update check failed: {}", f.message);
            Err(Error::Reported(stream::exit_for(&f.kind)))
        }
    }
}

fn print_json<T: serde::Serialize>(ctx: &Ctx, v: &T) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Failed(e.to_string()))?;
    ctx.term.println(&text)
}

/// `--all`: check, then each allowed update in turn; a summary; exit 1 if any did not succeed.
fn all(ctx: &Ctx, args: &Args) -> Result<(), Error> {
    let checks = check(ctx, &[], false)?;
    let mut summary: Vec<UpdateResult> = Vec::new();
    let mut worst = exit::OK;
    for c in checks.iter().filter(|c| c.available.is_some() && c.error.is_none()) {
        let Ok(name) = UnitName::new(&c.name) else { continue };
        let body = UpdateUnit {
            to: c.available.clone(),
            soak: args.soak.clone(),
            dry_run: args.dry_run,
            ..UpdateUnit::default()
        };
        eprintln!("── {name}: {} → {}", c.current, c.available.as_deref().unwrap_or(""));
        match one(ctx, &name, &body, false)? {
            Ok(r) => summary.push(r),
            Err(code) => {
                worst = worst.max(code);
                summary.push(UpdateResult {
                    name: c.name.clone(),
                    outcome: "rolled_back".into(),
                    from_version: c.current.clone(),
                    to_version: c.available.clone().unwrap_or_default(),
                    ..UpdateResult::default()
                });
            }
        }
    }
    for c in checks.iter().filter(|c| c.error.is_some()) {
        worst = worst.max(exit::FAILED);
        eprintln!("containerctl: {}: cannot check: {}", c.name, c.error.as_deref().unwrap_or(""));
    }
    if args.json {
        print_json(ctx, &summary)?;
    } else if summary.is_empty() {
        ctx.term.println("no update is available that the units' policies allow")?;
    } else {
        ctx.term.print(&render_summary(&summary))?;
    }
    match worst {
        exit::OK => Ok(()),
        code => Err(Error::Reported(code)),
    }
}

fn render_result(r: &UpdateResult) -> String {
    let digest = r.to_digest.as_deref().map(|d| format!(" ({})", short_digest(d))).unwrap_or_default();
    match r.outcome.as_str() {
        "planned" => {
            let mut out = String::new();
            if let Some(diff) = r.diff.as_deref().filter(|d| !d.is_empty()) {
                out.push_str(diff);
                if !diff.ends_with('\n') {
                    out.push('\n');
                }
            }
            out.push_str(&format!("update {} from {} to {} would:\n", r.name, r.from_version, r.to_version));
            for (i, step) in r.plan.iter().enumerate() {
                out.push_str(&format!("  {}. {step}\n", i + 1));
            }
            out.push_str("(dry run: nothing was pulled or changed)\n");
            out
        }
        "unchanged" => format!("{} runs {}{digest} already: nothing to do\n", r.name, r.to_version),
        "checked" if r.to_version != r.from_version => {
            format!("{}: {} is available (auto = false: not applied)\n", r.name, r.to_version)
        }
        "checked" => format!("{}: {} is the newest version its policy allows\n", r.name, r.from_version),
        "saved" => format!(
            "{} will run {}{digest} at its next start (it is not running; revision {})\n",
            r.name,
            r.to_version,
            r.revision.map_or("-".into(), |n| n.to_string())
        ),
        _ => {
            let mut out = format!(
                "updated {} from {} to {}{digest}, revision {}\n",
                r.name,
                r.from_version,
                r.to_version,
                r.revision.map_or("-".into(), |n| n.to_string())
            );
            if !r.dependants.is_empty() {
                out.push_str(&format!("restarted with it: {}\n", r.dependants.join(", ")));
            }
            if let Some(img) = &r.removed_image {
                out.push_str(&format!("removed the image before the previous one: {}\n", short_digest(img)));
            }
            out
        }
    }
}

fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", &hex[..hex.len().min(12)]),
        None => d.to_owned(),
    }
}

fn render_checks(checks: &[UpdateCheck]) -> String {
    use ui::{Align, Table};
    let mut table = Table::new(&[
        ("UNIT", Align::Left),
        ("IMAGE", Align::Left),
        ("CURRENT", Align::Left),
        ("AVAILABLE", Align::Left),
        ("POLICY", Align::Left),
        ("NOTE", Align::Left),
    ]);
    for c in checks {
        let note = match (&c.error, c.skipped.is_empty()) {
            (Some(e), _) => format!("cannot check: {e}"),
            (None, false) => format!("skips {} (rolled back)", c.skipped.join(", ")),
            (None, true) => String::new(),
        };
        table.row(vec![
            (c.name.clone(), None),
            (c.image.clone(), None),
            (c.current.clone(), None),
            (c.available.clone().unwrap_or_else(|| "-".into()), None),
            (c.policy.clone(), None),
            (note, None),
        ]);
    }
    table.render(ui::Style::PLAIN)
}

fn render_summary(results: &[UpdateResult]) -> String {
    use ui::{Align, Table};
    let mut table = Table::new(&[
        ("UNIT", Align::Left),
        ("FROM", Align::Left),
        ("TO", Align::Left),
        ("OUTCOME", Align::Left),
    ]);
    for r in results {
        table.row(vec![
            (r.name.clone(), None),
            (r.from_version.clone(), None),
            (r.to_version.clone(), None),
            (r.outcome.replace('_', " "), None),
        ]);
    }
    table.render(ui::Style::PLAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_as_sentences() {
        let r = UpdateResult {
            name: "web".into(),
            outcome: "updated".into(),
            from_version: "1.0".into(),
            to_version: "1.1".into(),
            to_digest: Some(format!("sha256:{}", "ab".repeat(32))),
            revision: Some(4),
            dependants: vec!["app".into()],
            ..UpdateResult::default()
        };
        assert_eq!(
            render_result(&r),
            "updated web from 1.0 to 1.1 (sha256:abababababab), revision 4\nrestarted with it: app\n"
        );
        let plan = UpdateResult {
            outcome: "planned".into(),
            diff: Some("-a\n+b\n".into()),
            plan: vec!["pull x".into()],
            ..r.clone()
        };
        assert!(render_result(&plan).contains("-a\n+b\nupdate web from 1.0 to 1.1 would:\n  1. pull x\n"));
    }
}
