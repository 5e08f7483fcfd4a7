//! `containerctl`: the administrator's command. See containerctl(1).

use std::process::ExitCode;

use clap::Parser;
use containerctl::commands::{self, Cli};

fn main() -> ExitCode {
    ExitCode::from(commands::run(Cli::parse()))
}
