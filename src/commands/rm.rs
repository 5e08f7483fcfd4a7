//! `containerctl rm NAME [--yes]`: stop the unit and remove its file from /etc. On a terminal it
//! asks first unless --yes is given.

use super::{Ctx, Error};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unit's NAME (its file is NAME.toml).
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub name: UnitName,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let name = args.name.as_str();
    if !args.yes && ctx.term.interactive {
        let file = ctx.client.file(name)?;
        let question = format!("stop containerctl@{name}.service and remove {}?", file.path);
        if !ctx.term.ask(&question, false)? {
            return Err(Error::Failed(format!("{name}: not removed")));
        }
    }
    ctx.client.remove(name)?;
    ctx.term.println(&format!("{name}: removed"))
}
