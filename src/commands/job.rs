//! `containerctl start|stop|restart NAME...`: run the systemd job of each unit and wait for it.
//!
//! Like systemctl, success is silent. A failed job prints the daemon's reason, systemd's job
//! result, the unit's status text and its last log lines; the other units are still tried and the
//! exit status is that of the first failure.

use super::{term, Ctx, Error};
use crate::client::Job;
use crate::unit::UnitName;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One or more unit NAMEs.
    #[arg(value_name = "NAME", required = true, value_parser = super::parse_name)]
    pub names: Vec<UnitName>,
}

pub fn run(args: Args, job: Job, ctx: &Ctx) -> Result<(), Error> {
    let mut first_failure = None;
    for name in &args.names {
        if let Err(e) = ctx.client.job(name.as_str(), job) {
            let err = Error::from(e);
            let code = err.exit_code();
            term::report(&err, None, ctx.term.err);
            if err_is_job_failure(&err) {
                ctx.term.note(&format!(
                    "see `containerctl status {name}` and `containerctl logs {name}` for details"
                ));
            }
            first_failure.get_or_insert(code);
        }
    }
    match first_failure {
        Some(code) => Err(Error::Reported(code)),
        None => Ok(()),
    }
}

fn err_is_job_failure(e: &Error) -> bool {
    matches!(e, Error::Client(c) if c.api().is_some_and(|a| a.status == 502))
}
