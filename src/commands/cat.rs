//! `containerctl cat NAME [--json]`: the unit's file as the daemon reads it.

use super::{ui, Ctx, Error};
use crate::client::{self, route, UnitFile};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Print the API's JSON: path, text and revision.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let path = route::file(args.name.as_str());
    let raw = ctx.client.get_raw(&path)?;
    if args.json {
        return ctx.term.print_raw_json(&raw);
    }
    let file: UnitFile = client::decode(&path, &raw)?;
    if file.changed_on_disk {
        ctx.term.note(&format!("warning: {}: {}", args.name, ui::CHANGED_ON_DISK));
    }
    if ctx.term.stdout_tty {
        // Like `systemctl cat`, but only on a terminal so that `cat NAME > file` copies the file.
        let header = format!("# {}", file.path);
        ctx.term.println(&ctx.term.out.paint(Some(ui::Color::Dim), &header))?;
    }
    ctx.term.print(&file.text)?;
    if !file.text.is_empty() && !file.text.ends_with('\n') {
        ctx.term.println("")?;
    }
    Ok(())
}
