//! `containerctl logs NAME [-f] [-n N] [--json]`: the unit's journal (the container's output and the
//! runner's messages), streamed by the daemon as NDJSON.

use super::{ui, Ctx, Error};
use crate::client::LogLine;
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Keep printing new lines as they arrive (until interrupted).
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last lines to show.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 100)]
    pub lines: u32,
    /// Print each journal entry as the API's JSON object, one per line (NDJSON).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let style = ctx.term.out;
    ctx.client.logs(args.name.as_str(), args.lines, args.follow, |raw: &[u8]| -> Result<(), Error> {
        let text = String::from_utf8_lossy(raw);
        if args.json {
            return ctx.term.println(&text);
        }
        match serde_json::from_slice::<LogLine>(raw) {
            Ok(line) => ctx.term.println(&ui::render_log_line(&line, style)),
            Err(_) => ctx.term.println(&text),
        }
    })
}
