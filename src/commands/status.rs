//! `containerctl status NAME [--json]`: state, health, image, source and recent log lines.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{ui, Ctx, Error};
use crate::client::{self, route, UnitDetail};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Print the API's JSON (unit, file text, events and log lines).
    #[arg(long)]
    pub json: bool,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let path = route::unit(args.name.as_str());
    let raw = ctx.client.get_raw(&path)?;
    if args.json {
        return ctx.term.print_raw_json(&raw);
    }
    let detail: UnitDetail = client::decode(&path, &raw)?;
    ctx.term.print(&ui::render_status(&detail, now_ms(), ctx.term.out))
}
