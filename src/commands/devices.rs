//! `containerctl devices [--json]`: host devices by stable name and the units that use them.

use super::{ui, Ctx, Error};
use crate::client::{self, route, Device};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the API's JSON array of devices.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let path = route::devices();
    let raw = ctx.client.get_raw(&path)?;
    if args.json {
        return ctx.term.print_raw_json(&raw);
    }
    let devices: Vec<Device> = client::decode(&path, &raw)?;
    if devices.is_empty() {
        ctx.term.note("no devices found");
        return Ok(());
    }
    ctx.term.print(&ui::render_devices(&devices, ctx.term.out))?;
    let missing = devices.iter().filter(|d| !d.present).count();
    if missing > 0 {
        ctx.term
            .note(&format!("warning: {missing} declared device(s) missing: units using them cannot start"));
    }
    Ok(())
}
