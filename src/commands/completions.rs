//! `containerctl completions SHELL`: a completion script for bash, zsh or fish on stdout.

use clap::CommandFactory;

use super::{Cli, Error};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> Result<(), Error> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "containerctl", &mut script);
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, &script).map_err(Error::Output)
}
