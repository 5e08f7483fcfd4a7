//! `containerctl enable|disable NAME...`: set `service.enabled`, so the unit starts at boot or not.
//! Neither starts nor stops it now, like `systemctl enable` without `--now`.

use super::{term, Ctx, Error};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One or more unit NAMEs.
    #[arg(value_name = "NAME", required = true, value_parser = super::parse_name)]
    pub names: Vec<UnitName>,
}

pub fn run(args: Args, enabled: bool, ctx: &Ctx) -> Result<(), Error> {
    let word = if enabled { "enabled" } else { "disabled" };
    let mut first_failure = None;
    for name in &args.names {
        match ctx.client.set_enabled(name.as_str(), enabled) {
            Ok(applied) if applied.changed => {
                let rev = applied.revision.map(|r| format!(" (revision {r})")).unwrap_or_default();
                ctx.term.println(&format!("{name}: {word}{rev}"))?;
            }
            Ok(_) => ctx.term.println(&format!("{name}: already {word}"))?,
            Err(e) => {
                let err = Error::from(e);
                term::report(&err, None, ctx.term.err);
                first_failure.get_or_insert(err.exit_code());
            }
        }
    }
    match first_failure {
        Some(code) => Err(Error::Reported(code)),
        None => Ok(()),
    }
}
