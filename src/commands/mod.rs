//! One file per `containerctl` subcommand: its clap arguments and its `run`.
//!
//! Every subcommand except `validate` and `completions` goes through containerctld's local API
//! ([`crate::client`]); none talks to dockerd or D-Bus. `ui` renders (pure), `term` owns the
//! terminal: output, prompts, colour decisions.

pub mod cat;
pub mod cluster;
pub mod completions;
pub mod devices;
pub mod diff;
pub mod edit;
pub mod enable;
pub mod history;
pub mod import;
pub mod job;
pub mod list;
pub mod logs;
pub mod moves;
pub mod new;
pub mod registry;
pub mod reset_failed;
pub mod revert;
pub mod rm;
pub mod secret;
pub mod set;
pub mod status;
pub mod stream;
pub mod term;
pub mod token;
pub mod ui;
pub mod update;
pub mod validate;
pub mod web;

use std::io;

use clap::{Parser, Subcommand};

use crate::client::{ApiError, Client, ClientError, Job};
use crate::unit::UnitName;

/// Manage Docker containers as systemd units.
#[derive(Debug, Parser)]
#[command(
    name = "containerctl",
    version,
    about,
    after_help = "Every command except validate and completions talks to containerctld on \
                  $CONTAINERCTL_SOCKET (default /run/containerctl/containerctl.sock). See containerctl(1)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every unit with its state, health and image.
    #[command(visible_alias = "ls")]
    List(list::Args),
    /// Show a unit's state, health, image, source file and last log lines.
    Status(status::Args),
    /// Start units and wait until each job has finished.
    Start(job::Args),
    /// Stop units and wait until each job has finished.
    Stop(job::Args),
    /// Restart units and wait until each job has finished.
    Restart(job::Args),
    /// Start units at boot (sets service.enabled = true).
    Enable(enable::Args),
    /// Do not start units at boot (sets service.enabled = false).
    Disable(enable::Args),
    /// Print a unit's file.
    Cat(cat::Args),
    /// Edit a unit's file in $VISUAL or $EDITOR; it is validated before it is saved.
    Edit(edit::Args),
    /// Change keys of a unit's file, keeping its comments and layout.
    Set(set::Args),
    /// Create a unit file.
    New(new::Args),
    /// Create units from a Compose file or a docker run command line.
    Import(import::Args),
    /// Stop a unit and remove its file.
    #[command(visible_alias = "remove")]
    Rm(rm::Args),
    /// Clear the failed state of units, or of every failed unit.
    ResetFailed(reset_failed::Args),
    /// Show a unit's journal.
    Logs(logs::Args),
    /// List the saved revisions of a unit's file.
    History(history::Args),
    /// Show what changed in a unit's file since a revision.
    Diff(diff::Args),
    /// Write an earlier revision back as the unit's file.
    Revert(revert::Args),
    /// Move a unit to a new version, watched and rolled back if it fails; check for updates.
    Update(update::Args),
    /// Move a unit and its data to another member of the cluster.
    Move(moves::Args),
    /// Move every movable unit of a node to other members.
    Drain(moves::DrainArgs),
    /// List host devices with their stable names and the units that use them.
    Devices(devices::Args),
    /// Tokens for the HTTP API and the web page (admin).
    Token(token::Args),
    /// The web page on http://127.0.0.1:5000.
    Web(web::Args),
    /// Federation: a Docker Swarm of hosts with a registry and a shared volume.
    Cluster(cluster::Args),
    /// Images in the cluster registry.
    Image(cluster::ImageArgs),
    /// Credentials for private registries, used by every pull (admin).
    Registry(registry::Args),
    /// Secrets units get as files or environment variables (set and rm: admin; list: operator).
    Secret(secret::Args),
    /// Check unit files and print every error with its file, line and column.
    Validate(validate::Args),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    Completions(completions::Args),
    /// The units' names, one a line, for the bash completion; silent when the daemon is not there.
    #[command(name = "__complete-units", hide = true)]
    CompleteUnits,
}

/// Exit statuses of `containerctl` (documented in containerctl(1)).
pub mod exit {
    pub const OK: u8 = 0;
    /// A checked input is invalid (validate found errors).
    pub const INVALID: u8 = 1;
    /// A job failed, an input or edit was refused, or the daemon reported an error.
    pub const FAILED: u8 = 1;
    /// Usage error (clap's own code).
    pub const USAGE: u8 = 2;
    /// The unit (or revision) does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The daemon refused the caller (403), or the socket's permissions did.
    pub const DENIED: u8 = 4;
    /// containerctld is unreachable, or systemd or Docker is unavailable to it (503).
    pub const UNAVAILABLE: u8 = 5;
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Bad arguments found after parsing (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A refusal or failure with a message (exit 1).
    #[error("{0}")]
    Failed(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// Writing to stdout failed (a closed pipe ends quietly).
    #[error("cannot write to stdout: {0}")]
    Output(io::Error),
    /// Already reported on stderr: exit with this status.
    #[error("exit status {0}")]
    Reported(u8),
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Client(e) => client_exit_code(e),
            Error::Usage(_) => exit::USAGE,
            Error::Failed(_) | Error::Io { .. } => exit::FAILED,
            Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
            Error::Output(_) => exit::FAILED,
            Error::Reported(code) => *code,
        }
    }
}

pub fn client_exit_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Unreachable { .. } | ClientError::Connection { .. } => exit::UNAVAILABLE,
        ClientError::SocketDenied { .. } => exit::DENIED,
        ClientError::Api(a) => api_exit_code(a),
        ClientError::Protocol(_) | ClientError::Runtime(_) => exit::FAILED,
    }
}

fn api_exit_code(e: &ApiError) -> u8 {
    match e.status {
        401 | 403 => exit::DENIED,
        404 => exit::NOT_FOUND,
        503 => exit::UNAVAILABLE,
        _ => exit::FAILED,
    }
}

/// What every API subcommand gets: the client and how to talk to the terminal.
pub struct Ctx {
    pub client: Client,
    pub term: term::Term,
}

/// The warnings of a saved unit file (a credential in plain text, a secret not set yet), on stderr.
pub fn note_warnings(ctx: &Ctx, applied: &crate::client::Applied) {
    for w in &applied.warnings {
        ctx.term.note(&format!("warning: {w}"));
    }
}

/// After a change saved without a restart: says that a running unit needs one (never of a stopped
/// unit, nor of a change to `service.enabled` alone).
pub fn note_next_start(ctx: &Ctx, name: &str, only_enabled: bool) {
    let state = ctx.client.units().ok().and_then(|list| list.into_iter().find(|u| u.name == name));
    if let Some(note) =
        ui::next_start_note(name, state.as_ref().map(|u| u.active_state.as_str()), only_enabled)
    {
        ctx.term.note(&note);
    }
}

/// clap value parser for NAME arguments: invalid names are usage errors, never sent.
/// Runs `one` for each of `names`, printing the line it returns; a failure is reported on stderr
/// and the others still run. The exit status is the first failure's.
pub fn for_each_name(
    ctx: &Ctx,
    names: &[UnitName],
    mut one: impl FnMut(&UnitName) -> Result<String, ClientError>,
) -> Result<(), Error> {
    let mut first_failure = None;
    for name in names {
        match one(name) {
            Ok(line) => ctx.term.println(&line)?,
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

pub fn parse_name(s: &str) -> Result<UnitName, String> {
    UnitName::new(s)
}

pub fn run(cli: Cli) -> u8 {
    let term = term::Term::detect();
    let result = match cli.command {
        Command::Validate(args) => return validate::run(args),
        Command::Completions(args) => completions::run(args),
        Command::CompleteUnits => match Client::from_env() {
            Ok(client) => completions::run_units(&Ctx { client, term }),
            Err(e) => Err(Error::Reported(Error::from(e).exit_code())),
        },
        command => match Client::from_env() {
            Ok(client) => dispatch(command, &Ctx { client, term }),
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            term::report(&e, None, term.err);
            e.exit_code()
        }
    }
}

fn dispatch(command: Command, ctx: &Ctx) -> Result<(), Error> {
    match command {
        Command::List(a) => list::run(a, ctx),
        Command::Token(a) => token::run(a, ctx),
        Command::Web(a) => web::run(a, ctx),
        Command::Cluster(a) => cluster::run(a, ctx),
        Command::Image(a) => cluster::run_image(a, ctx),
        Command::Registry(a) => registry::run(a, ctx),
        Command::Secret(a) => secret::run(a, ctx),
        Command::Status(a) => status::run(a, ctx),
        Command::Start(a) => job::run(a, Job::Start, ctx),
        Command::Stop(a) => job::run(a, Job::Stop, ctx),
        Command::Restart(a) => job::run(a, Job::Restart, ctx),
        Command::Enable(a) => enable::run(a, true, ctx),
        Command::Disable(a) => enable::run(a, false, ctx),
        Command::Cat(a) => cat::run(a, ctx),
        Command::Edit(a) => edit::run(a, ctx),
        Command::Set(a) => set::run(a, ctx),
        Command::New(a) => new::run(a, ctx),
        Command::Import(a) => import::run(a, ctx),
        Command::Rm(a) => rm::run(a, ctx),
        Command::ResetFailed(a) => reset_failed::run(a, ctx),
        Command::Logs(a) => logs::run(a, ctx),
        Command::History(a) => history::run(a, ctx),
        Command::Diff(a) => diff::run(a, ctx),
        Command::Revert(a) => revert::run(a, ctx),
        Command::Update(a) => update::run(a, ctx),
        Command::Move(a) => moves::run(a, ctx),
        Command::Drain(a) => moves::drain(a, ctx),
        Command::Devices(a) => devices::run(a, ctx),
        Command::CompleteUnits => completions::run_units(ctx),
        Command::Validate(_) | Command::Completions(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn names_are_checked_before_any_request() {
        let err = Cli::try_parse_from(["containerctl", "status", "Web"]).err().map(|e| e.exit_code());
        assert_eq!(err, Some(2));
        assert!(Cli::try_parse_from(["containerctl", "status", "web"]).is_ok());
    }

    #[test]
    fn exit_codes_follow_the_status() {
        let api = |status| Error::Client(ClientError::Api(Box::new(ApiError::from_response(status, b""))));
        assert_eq!(api(403).exit_code(), exit::DENIED);
        assert_eq!(api(404).exit_code(), exit::NOT_FOUND);
        assert_eq!(api(422).exit_code(), exit::FAILED);
        assert_eq!(api(502).exit_code(), exit::FAILED);
        assert_eq!(api(503).exit_code(), exit::UNAVAILABLE);
        assert_eq!(Error::Output(io::Error::from(io::ErrorKind::BrokenPipe)).exit_code(), exit::OK);
        assert_eq!(Error::Usage("x".into()).exit_code(), exit::USAGE);
    }
}
