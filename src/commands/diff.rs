//! `containerctl diff NAME [REV [TO]] [--json]`: a unified diff between revisions of a unit's file.

use super::{ui, Ctx, Error};
use crate::client::{self, route, Diff};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Compare from this revision (default: the latest revision before the current file).
    #[arg(value_name = "REV")]
    pub from: Option<u64>,
    /// Compare to this revision (default: the current file).
    #[arg(value_name = "TO", requires = "from")]
    pub to: Option<u64>,
    /// Print the API's JSON: from, to and the diff text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let path = route::diff(args.name.as_str(), args.from, args.to);
    let raw = ctx.client.get_raw(&path)?;
    if args.json {
        return ctx.term.print_raw_json(&raw);
    }
    let diff: Diff = client::decode(&path, &raw)?;
    if diff.diff.is_empty() {
        ctx.term.note(&format!("{}: no differences", args.name));
        return Ok(());
    }
    ctx.term.print(&ui::render_diff(&diff.diff, ctx.term.out))
}
