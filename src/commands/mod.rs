//! One file per `containerctl` subcommand: its clap arguments and its `run`.

pub mod validate;

use clap::{Parser, Subcommand};

/// Manage Docker containers as systemd units.
#[derive(Debug, Parser)]
#[command(name = "containerctl", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check unit files and print every error with its file, line and column.
    Validate(validate::Args),
}

/// Exit statuses of `containerctl` (documented in containerctl(1)).
pub mod exit {
    pub const OK: u8 = 0;
    /// A checked input is invalid (validate found errors).
    pub const INVALID: u8 = 1;
    /// Usage error (clap's own code).
    pub const USAGE: u8 = 2;
}

pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate(args) => validate::run(args),
    }
}
