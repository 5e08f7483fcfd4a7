//! `containerctl enable|disable NAME...`: set `service.enabled`, so the unit starts at boot or not.
//! Neither starts nor stops it now, like `systemctl enable` without `--now`.

use super::{Ctx, Error};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One or more unit NAMEs.
    #[arg(value_name = "NAME", required = true, value_parser = super::parse_name)]
    pub names: Vec<UnitName>,
}

pub fn run(args: Args, enabled: bool, ctx: &Ctx) -> Result<(), Error> {
    let word = if enabled { "enabled" } else { "disabled" };
    super::for_each_name(ctx, &args.names, |name| {
        let applied = ctx.client.set_enabled(name.as_str(), enabled)?;
        Ok(if applied.changed {
            let rev = applied.revision.map(|r| format!(" (revision {r})")).unwrap_or_default();
            format!("{name}: {word}{rev}")
        } else {
            format!("{name}: already {word}")
        })
    })
}
