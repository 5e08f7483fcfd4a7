//! `containerctl revert NAME REV [--restart]`: write an earlier revision back (validated and
//! policy-checked again, recorded as a new revision).

use super::{ui, Ctx, Error};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// The revision to restore (see `containerctl history NAME`).
    #[arg(value_name = "REV")]
    pub rev: u32,
    /// Restart the unit afterwards if it is active.
    #[arg(long)]
    pub restart: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let name = args.name.as_str();
    let applied = ctx.client.revert(name, args.rev, args.restart)?;
    if !applied.changed {
        return ctx.term.println(&format!("{name}: already at the text of revision {}", args.rev));
    }
    ctx.term.println(&format!(
        "{} (reverted to revision {})",
        ui::describe_applied(name, &applied, args.restart),
        args.rev
    ))?;
    super::note_warnings(ctx, &applied);
    if !args.restart && !applied.restarted {
        super::note_next_start(ctx, name, false);
    }
    Ok(())
}
