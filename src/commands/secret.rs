//! `containerctl secret set|list|rm`: values units get as files (`secrets`) or environment
//! variables (`env_secrets`). Admins set and remove them, operators list them; no command and no
//! route of the API shows a value, and this one never prints it.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use super::{ui, Ctx, Error};
use crate::client::{self, route, SecretInfo};
use crate::secrets::{SecretName, MAX_BYTES};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SecretCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Store a secret (new or replaced) from stdin, typed without echo on a terminal, or --file.
    Set {
        #[arg(value_name = "NAME", value_parser = parse_secret_name)]
        name: SecretName,
        /// Read the value from this file (its bytes as they are) instead of stdin.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List secrets: names, sizes, dates and the units that use them, never values.
    #[command(visible_alias = "ls")]
    List {
        /// Print the API's JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret; refused while a unit file references it, unless --force.
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(value_name = "NAME", value_parser = parse_secret_name)]
        name: SecretName,
        /// Remove it even though units use it: they fail at their next start until it is set again.
        #[arg(long)]
        force: bool,
    },
}

fn parse_secret_name(s: &str) -> Result<SecretName, String> {
    SecretName::new(s)
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        SecretCommand::Set { name, file, json } => set(ctx, &name, file, json),
        SecretCommand::List { json } => {
            let path = route::secrets();
            let raw = ctx.client.get_raw(&path)?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let list: Vec<SecretInfo> = client::decode(&path, &raw)?;
            if list.is_empty() {
                ctx.term.note("no secrets: an admin stores one with containerctl secret set NAME");
                return Ok(());
            }
            ctx.term.print(&ui::render_secrets(&list, ctx.term.out))
        }
        SecretCommand::Rm { name, force } => {
            let removed = ctx.client.secret_remove(name.as_str(), force)?;
            ctx.term.println(&format!("secret {name}: removed"))?;
            if !removed.units.is_empty() {
                ctx.term.note(&format!(
                    "warning: {} still reference secret {name}: they fail at their next start until it is set again",
                    removed.units.join(", ")
                ));
            }
            Ok(())
        }
    }
}

fn set(ctx: &Ctx, name: &SecretName, file: Option<PathBuf>, json: bool) -> Result<(), Error> {
    let value = match &file {
        Some(path) => {
            let meta = std::fs::metadata(path)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            if meta.len() > MAX_BYTES as u64 {
                return Err(too_large(meta.len()));
            }
            std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?
        }
        None if std::io::stdin().is_terminal() => {
            // One line, typed with echo off; its newline is not part of the value.
            let line =
                super::term::read_hidden(&format!("value of secret {name} (not shown; end with Enter): "))?;
            let value = line.strip_suffix('\n').unwrap_or(&line);
            value.strip_suffix('\r').unwrap_or(value).as_bytes().to_vec()
        }
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_BYTES as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io("cannot read the value from stdin", e))?;
            buf
        }
    };
    if value.is_empty() {
        return Err(Error::Usage(format!(
            "the value of secret {name} is empty: pipe it in (printf '%s' VALUE | containerctl secret set {name}) \
             or give --file PATH"
        )));
    }
    if value.len() > MAX_BYTES {
        return Err(too_large(value.len() as u64));
    }
    let one_line = value.ends_with(b"\n") && !value[..value.len() - 1].contains(&b'\n');
    let set = ctx.client.secret_set(name.as_str(), value)?;
    if json {
        let v = serde_json::to_string(&set).map_err(|e| Error::Failed(e.to_string()))?;
        return ctx.term.println(&v);
    }
    let how = if set.created { "created" } else { "replaced" };
    ctx.term.println(&format!("secret {name}: {how} ({} bytes)", set.size))?;
    if one_line && file.is_none() {
        ctx.term.note(
            "note: the value ends with a newline, which is part of it (printf '%s' VALUE leaves it out)",
        );
    }
    if !set.units.is_empty() && !set.created {
        ctx.term.note(&format!(
            "{} get the new value at their next start: containerctl restart {}",
            set.units.join(", "),
            set.units.join(" ")
        ));
    }
    Ok(())
}

fn too_large(size: u64) -> Error {
    Error::Usage(format!(
        "the value is {size} bytes, more than the {MAX_BYTES} bytes (500 KiB) a secret may hold"
    ))
}
