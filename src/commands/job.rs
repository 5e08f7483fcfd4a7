//! `containerctl start|stop|restart NAME...`: run the systemd job of each unit and wait for it.
//!
//! Like systemctl, success is silent. A failed job prints the daemon's reason, systemd's job
//! result, the unit's status text and its last log lines; the other units are still tried and the
//! exit status is that of the first failure.

use super::{term, Ctx, Error};
use crate::client::{Job, Unit};
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
        match ctx.client.job(name.as_str(), job) {
            Ok(done) => {
                if let Some(warning) = old_definition_warning(name, job, done.state.as_ref()) {
                    ctx.term.note(&warning);
                }
            }
            Err(e) => {
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
    }
    match first_failure {
        Some(code) => Err(Error::Reported(code)),
        None => Ok(()),
    }
}

/// Started or restarted while the file on disk is not what systemd loaded: the old definition runs.
fn old_definition_warning(name: &UnitName, job: Job, state: Option<&Unit>) -> Option<String> {
    let verb = match job {
        Job::Start => "started",
        Job::Restart => "restarted",
        Job::Stop => return None,
    };
    state.filter(|s| s.changed_on_disk).map(|_| {
        format!(
            "warning: {name} {verb} with its old definition: the file {}, then restart it",
            super::ui::CHANGED_ON_DISK
        )
    })
}

fn err_is_job_failure(e: &Error) -> bool {
    matches!(e, Error::Client(c) if c.api().is_some_and(|a| a.status == 502))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_or_restart_of_a_changed_file_warns() {
        let name = UnitName::new("web").expect("valid name");
        let mut u = Unit { name: "web".into(), ..Unit::default() };
        assert_eq!(old_definition_warning(&name, Job::Restart, Some(&u)), None);
        u.changed_on_disk = true;
        let w = old_definition_warning(&name, Job::Restart, Some(&u)).expect("warns");
        assert!(w.starts_with("warning: web restarted with its old definition"), "{w}");
        assert!(w.contains("systemctl daemon-reload"), "{w}");
        assert!(old_definition_warning(&name, Job::Start, Some(&u)).is_some());
        assert_eq!(old_definition_warning(&name, Job::Stop, Some(&u)), None);
        assert_eq!(old_definition_warning(&name, Job::Restart, None), None);
    }
}
