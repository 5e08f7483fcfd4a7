//! `containerctl history NAME [--json]`: the saved revisions of a unit's file, newest first.

use super::{ui, Ctx, Error};
use crate::client::{self, route, Revision};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Print the API's JSON array of revisions.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let path = route::history(args.name.as_str());
    let raw = ctx.client.get_raw(&path)?;
    if args.json {
        return ctx.term.print_raw_json(&raw);
    }
    let revisions: Vec<Revision> = client::decode(&path, &raw)?;
    if revisions.is_empty() {
        ctx.term.note(&format!("{}: no revisions recorded", args.name));
        return Ok(());
    }
    ctx.term.print(&ui::render_history(&revisions, ctx.term.out))
}
