//! The main process of `containerctl@NAME.service`: runs the unit's container and reports its
//! life to systemd. Not meant to be run by hand; see containerctl.unit(5).

use std::process::ExitCode;

use containerctl::runner::{self, EXIT_CONFIG};
use containerctl::{generator, journal, notify, unit};

fn fail(message: &str) -> ExitCode {
    notify::status(&format!("failed: {message}"));
    runner::log(journal::ERR, message);
    ExitCode::from(EXIT_CONFIG)
}

fn main() -> ExitCode {
    // The host's start slots, made if missing: with the exit record below, the only files the
    // runner makes, so before the lock (no input but their count, from the generator's drop-in,
    // and the unit's name, checked).
    let start_slots = runner::slots::prepare(|m| runner::log(journal::WARNING, m));
    // And this unit's exit record (runner::exits), read and cleared now, written at an exit.
    let exits = std::env::args().nth(1).and_then(|n| unit::UnitName::new(&n).ok()).map_or_else(
        runner::exits::ExitRecord::default,
        |name| {
            runner::exits::ExitRecord::open(std::path::Path::new(runner::exits::DIR), &name, |m| {
                runner::log(journal::WARNING, m)
            })
        },
    );
    // Then, before any other input is read: from here on the runner may only read files.
    match runner::lock::restrict_to_reading() {
        Ok(runner::lock::Locked::Fully | runner::lock::Locked::Partly) => {}
        Ok(runner::lock::Locked::Not) => runner::log(
            journal::INFO,
            "this kernel has no Landlock: the runner's file system is not locked to reading",
        ),
        Err(e) => runner::log(journal::WARNING, &e),
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name] = args.as_slice() else {
        eprintln!("usage: containerctl-runner NAME  (started by containerctl@NAME.service)");
        return ExitCode::from(2);
    };
    let Some(definition) = std::env::var_os(generator::DEFINITION_ENV) else {
        return fail(&format!(
            "no valid definition for unit {name}: check it with `containerctl validate /etc/containerctl/units/{name}.toml`, fix it and run `systemctl daemon-reload`"
        ));
    };
    let path = std::path::PathBuf::from(definition);
    let text = match generator::read_definition(&path) {
        Ok(t) => t,
        Err(d) => return fail(&d.to_string()),
    };
    let unit = match unit::parse(name, &path.display().to_string(), &text) {
        Ok(u) => u,
        Err(diags) => {
            let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
            return fail(&shown.join("\n"));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            runner::log(journal::ERR, &format!("cannot start the async runtime: {e}"));
            return ExitCode::from(runner::EXIT_DOCKER);
        }
    };
    ExitCode::from(runtime.block_on(runner::run(unit, start_slots, exits)))
}
