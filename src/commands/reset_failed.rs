//! `containerctl reset-failed [NAME]...`: clear the failed state of units (`systemctl
//! reset-failed`), or of every failed unit without NAME, so that a failed instance without a unit
//! file disappears from `list`.

use super::{term, Ctx, Error};
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Unit NAMEs; every failed unit when none is given.
    #[arg(value_name = "NAME", value_parser = super::parse_name)]
    pub names: Vec<UnitName>,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    if args.names.is_empty() {
        let done = ctx.client.reset_failed(None)?;
        for name in &done.reset {
            ctx.term.println(&format!("{name}: failed state cleared"))?;
        }
        return Ok(());
    }
    let mut first_failure = None;
    for name in &args.names {
        match ctx.client.reset_failed(Some(name.as_str())) {
            Ok(done) if done.reset.is_empty() => ctx.term.println(&format!("{name}: not failed"))?,
            Ok(_) => ctx.term.println(&format!("{name}: failed state cleared"))?,
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
