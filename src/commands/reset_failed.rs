//! `containerctl reset-failed [NAME]...`: clear the failed state of units (`systemctl
//! reset-failed`), or of every failed unit without NAME, so that a failed instance without a unit
//! file disappears from `list`.

use super::{Ctx, Error};
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
    super::for_each_name(ctx, &args.names, |name| {
        let done = ctx.client.reset_failed(Some(name.as_str()))?;
        Ok(if done.reset.is_empty() {
            format!("{name}: not failed")
        } else {
            format!("{name}: failed state cleared")
        })
    })
}
