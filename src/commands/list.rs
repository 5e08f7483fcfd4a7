//! `containerctl list [--json]`: every unit with its state, like `systemctl list-units`.

use super::{ui, Ctx, Error};
use crate::client::{self, route, Unit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the API's JSON array of units.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let path = route::units();
    let raw = ctx.client.get_raw(&path)?;
    if args.json {
        return ctx.term.print_raw_json(&raw);
    }
    let mut units: Vec<Unit> = client::decode(&path, &raw)?;
    units.sort_by(|a, b| a.name.cmp(&b.name));
    if units.is_empty() {
        ctx.term.note("no units: create one with `containerctl new NAME --image IMAGE --version VERSION`");
        return Ok(());
    }
    ctx.term.print(&ui::render_list(&units, ctx.term.out))?;
    for u in units.iter().filter(|u| u.changed_on_disk) {
        ctx.term.note(&format!("warning: {}: {}", u.name, ui::CHANGED_ON_DISK));
    }
    for u in units.iter().filter(|u| !u.valid) {
        ctx.term.note(&format!(
            "warning: the unit file of {} has errors; see `containerctl status {}`",
            u.name, u.name
        ));
    }
    Ok(())
}
