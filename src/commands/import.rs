//! `containerctl import compose FILE` and `containerctl import docker-run -- ARGS...`: units
//! from what people already run. The files are read here, as the user who runs the command
//! (the daemon reads nothing on their behalf); the units are created by the daemon, all or
//! none, through the same checks as `new` and `edit`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Ctx, Error};
use crate::import::{compose, docker_run, Imported as Converted, Outcome};
use crate::wire::{ImportUnits, Imported};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// One unit per service of a Compose file, named PREFIX-SERVICE.
    Compose {
        /// The Compose file (compose.yaml); its directory holds .env and relative paths.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// The unit a `docker run` command line describes, named after its --name.
    #[command(name = "docker-run")]
    DockerRun {
        #[command(flatten)]
        common: Common,
        /// `docker run` options, the image and its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "ARGS")]
        args: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// Unit names start with P- (default for Compose: the project name).
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// Show the units and everything that would refuse them; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start the units once all are written, dependencies first.
    #[arg(long, conflicts_with = "dry_run")]
    pub start: bool,
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    let (outcome, common) = match args.what {
        What::Compose { file, common } => (convert_compose(&file, common.prefix.as_deref())?, common),
        What::DockerRun { common, args } => {
            let read = |p: &str| std::fs::read_to_string(p).map_err(|e| e.to_string());
            let input =
                docker_run::Input { args: &args, prefix: common.prefix.as_deref(), read_env_file: &read };
            (docker_run::convert(&input), common)
        }
    };
    for n in &outcome.notes {
        ctx.term.note(&format!("note: {n}"));
    }
    if !outcome.errors.is_empty() {
        for e in &outcome.errors {
            ctx.term.note(&format!("error: {e}"));
        }
        return Err(Error::Failed(format!(
            "{} error{} in the conversion: nothing was written",
            outcome.errors.len(),
            if outcome.errors.len() == 1 { "" } else { "s" }
        )));
    }
    let body = ImportUnits {
        units: outcome.units.into_iter().map(Converted::into_wire).collect(),
        compose: None,
        dry_run: common.dry_run,
        start: common.start,
    };
    let imported = ctx.client.import(&body)?;
    if common.json {
        let text = serde_json::to_string_pretty(&imported).map_err(|e| Error::Failed(e.to_string()))?;
        return ctx.term.println(&text);
    }
    ctx.term.print(&render(&imported))?;
    let failed: Vec<_> =
        imported.units.iter().filter(|u| u.started.as_deref().is_some_and(|s| s != "done")).collect();
    if !failed.is_empty() {
        return Err(Error::Failed(format!(
            "{} did not start: see containerctl status {}",
            failed.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", "),
            failed[0].name
        )));
    }
    Ok(())
}

fn render(i: &Imported) -> String {
    let mut out = String::new();
    for u in &i.units {
        if i.dry_run {
            out.push_str(&format!("# {} would be written to {}\n{}\n", u.name, u.path, u.text));
        } else {
            let rev = u.revision.map(|r| format!(" (revision {r})")).unwrap_or_default();
            let started = match u.started.as_deref() {
                Some("done") => ", started".to_owned(),
                Some(other) => format!(", not started: {other}"),
                None => String::new(),
            };
            out.push_str(&format!("{}: created {}{rev}{started}\n", u.name, u.path));
        }
        for w in &u.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
    }
    if i.dry_run {
        out.push_str(&format!("dry run: {} unit(s) checked, nothing written\n", i.units.len()));
    }
    out
}

/// Reads FILE, its directory's `.env` and the env_files it names, and converts it. Variables
/// of the environment win over `.env`, as in Compose.
fn convert_compose(file: &Path, prefix: Option<&str>) -> Result<Outcome, Error> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    let dir = std::path::absolute(file)
        .map_err(|e| Error::io(format!("cannot resolve {}", file.display()), e))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut vars: BTreeMap<String, String> = match std::fs::read_to_string(dir.join(".env")) {
        Ok(t) => compose::dotenv_vars(&t)
            .map_err(|e| Error::Failed(format!("{}: {e}", dir.join(".env").display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(Error::io(format!("cannot read {}", dir.join(".env").display()), e)),
    };
    vars.extend(std::env::vars());
    let read = |p: &str| {
        std::fs::read_to_string(dir.join(p))
            .map_err(|e| format!("cannot read {}: {e}", dir.join(p).display()))
    };
    let name = file.display().to_string();
    let input = compose::Input {
        file: &name,
        text: &text,
        dir: Some(&dir),
        vars: &vars,
        read_env_file: &read,
        prefix,
    };
    Ok(compose::convert(&input))
}
