//! `containerctl registry login|logout|list|test`: credentials for private registries (admin).
//!
//! The password is read from standard input only (`--password-stdin`): from a pipe as is, minus
//! one trailing newline, or from a terminal after a prompt with echo off. It goes to the daemon in
//! one request and is never printed.

use std::io::{self, IsTerminal, Read};

use super::{Ctx, Error};
use crate::client::{self, route, RegistryInfo, RegistryLogin, RegistryTested};
use crate::credentials::{self, RegistryKey};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Check a credential with the registry (through dockerd) and store it for pulls.
    Login {
        /// HOST[:PORT][/NAMESPACE]; docker.io for Docker Hub.
        #[arg(value_name = "REGISTRY", value_parser = parse_registry)]
        registry: String,
        #[arg(long, short = 'u')]
        username: String,
        /// Read the password from standard input (required: it is never an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Print the API's JSON of the stored credential (never the password).
        #[arg(long)]
        json: bool,
    },
    /// Remove a stored credential.
    Logout {
        #[arg(value_name = "REGISTRY", value_parser = parse_registry)]
        registry: String,
    },
    /// List the stored credentials: registry, user, when added, last used (never a password).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Ask the registry again whether it accepts a stored credential.
    Test {
        #[arg(value_name = "REGISTRY", value_parser = parse_registry)]
        registry: String,
        #[arg(long)]
        json: bool,
    },
}

/// clap value parser: REGISTRY is checked (and written canonically) before anything is sent.
fn parse_registry(s: &str) -> Result<String, String> {
    RegistryKey::parse(s).map(|k| k.to_string()).map_err(|r| r.to_string())
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        RegistryCommand::Login { registry, username, password_stdin: _, json } => {
            credentials::check_username(&username).map_err(|r| Error::Usage(r.to_string()))?;
            let password = read_password()?;
            let login = RegistryLogin { registry, username, password };
            let info = ctx.client.registry_login(&login)?;
            if json {
                let v = serde_json::to_string(&info).map_err(|e| Error::Failed(e.to_string()))?;
                return ctx.term.println(&v);
            }
            ctx.term.println(&format!(
                "logged in to {} as {}: the credential is stored for pulls of {}/...",
                info.registry, info.username, info.registry
            ))
        }
        RegistryCommand::Logout { registry } => {
            let r = ctx.client.registry_logout(&registry)?;
            ctx.term.println(&format!("removed the credential for {}", r.registry))
        }
        RegistryCommand::List { json } => {
            let raw = ctx.client.get_raw(&route::registries())?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let list: Vec<RegistryInfo> = client::decode(&route::registries(), &raw)?;
            if list.is_empty() {
                ctx.term.note("no stored registry credentials: see containerctl registry login");
                return Ok(());
            }
            ctx.term.print(&render_list(&list))
        }
        RegistryCommand::Test { registry, json } => {
            let raw = ctx.client.registry_test(&registry)?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let t: RegistryTested = client::decode(&route::registry_test(), &raw)?;
            ctx.term.println(&format!(
                "registry {} accepts the stored credential of {} ({})",
                t.registry, t.username, t.message
            ))
        }
    }
}

/// The table of `registry list`.
fn render_list(list: &[RegistryInfo]) -> String {
    let when = |ms: Option<i64>| ms.map_or_else(|| "never".to_owned(), super::ui::format_stamp);
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|r| {
            [
                r.registry.clone(),
                r.username.clone(),
                super::ui::format_stamp(r.added_ms),
                when(r.last_used_ms),
            ]
        })
        .collect();
    let head = ["REGISTRY", "USER", "ADDED", "LAST USED"];
    let width =
        |i: usize| rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = String::new();
    for row in std::iter::once(head.map(str::to_owned)).chain(rows) {
        out.push_str(&format!("{:<w0$}  {:<w1$}  {:<w2$}  {}\n", row[0], row[1], row[2], row[3]));
    }
    out
}

/// The password from standard input: a pipe's whole content minus one trailing newline (as
/// `docker login --password-stdin`), or a line typed at a terminal with echo off.
fn read_password() -> Result<String, Error> {
    let stdin = io::stdin();
    let mut text = if stdin.is_terminal() {
        super::term::read_hidden("Password: ")?
    } else {
        let mut bytes = Vec::new();
        // One byte more than allowed, so that a longer one is refused rather than cut.
        stdin
            .lock()
            .take(MAX_READ)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read the password from standard input", e))?;
        String::from_utf8(bytes)
            .map_err(|_| Error::Failed("the password on standard input is not UTF-8".into()))?
    };
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    credentials::check_password(&text).map_err(|r| {
        Error::Failed(format!(
            "{r}: give it on standard input, for example printf '%s' \"$PASSWORD\" | containerctl registry login ..."
        ))
    })?;
    Ok(text)
}

const MAX_READ: u64 = 8192 + 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_checked_and_canonical_before_any_request() {
        assert_eq!(parse_registry("GHCR.io/Org").map_err(|e| e.contains("namespace")), Err(true));
        assert_eq!(parse_registry("index.docker.io/me"), Ok("docker.io/me".to_owned()));
        assert!(parse_registry("https://ghcr.io").is_err_and(|e| e.ends_with("(rule: registry name)")));
    }

    #[test]
    fn the_list_never_has_a_password_column_and_says_never() {
        let list = [
            RegistryInfo {
                registry: "reg.example:5443/team".into(),
                username: "robot".into(),
                added_ms: 1_790_000_000_000,
                verified_ms: Some(1_790_000_000_000),
                last_used_ms: None,
            },
            RegistryInfo {
                registry: "docker.io".into(),
                username: "me".into(),
                added_ms: 1_790_000_000_000,
                verified_ms: None,
                last_used_ms: Some(1_790_000_100_000),
            },
        ];
        let t = render_list(&list);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "REGISTRY               USER   ADDED                 LAST USED");
        assert_eq!(lines[1], "reg.example:5443/team  robot  2026-09-21T14:13:20Z  never");
        assert_eq!(lines[2], "docker.io              me     2026-09-21T14:13:20Z  2026-09-21T14:15:00Z");
    }
}
