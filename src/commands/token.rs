//! `containerctl token create|list|revoke`: API tokens for the HTTP API and the web page.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Ctx, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once and never stored.
    Create {
        /// A name to recognise the token by (who or what uses it).
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// How long it is valid, like 12h or 30d.
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Print the API's JSON instead of the token alone.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id: it stops working at once.
    Revoke { id: String },
    /// Sign new tokens with a new key; existing tokens stay valid until they expire.
    RotateKey,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    token: String,
    expires_at_ms: i64,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    name: String,
    role: String,
    expires_at_ms: i64,
    revoked: bool,
}

fn date(ms: i64) -> String {
    super::ui::format_time(ms)
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        TokenCommand::Create { name, role, ttl, json } => {
            let body = json!({"name": name, "role": role, "ttl": ttl});
            let v: Value = ctx.client.send(hyper::Method::POST, "/tokens", Some(&body))?;
            if json {
                return ctx.term.println(&v.to_string());
            }
            let c: Created = serde_json::from_value(v).map_err(|e| Error::Failed(e.to_string()))?;
            ctx.term.println(&c.token)?;
            eprintln!("token {} for {name} ({role}), valid until {}", c.id, date(c.expires_at_ms));
            Ok(())
        }
        TokenCommand::List { json } => {
            let raw = ctx.client.get_raw("/tokens")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let list: Vec<Listed> = serde_json::from_slice(&raw).map_err(|e| Error::Failed(e.to_string()))?;
            ctx.term
                .println(&format!("{:<32}  {:<20}  {:<8}  {:<24}  STATE", "ID", "NAME", "ROLE", "EXPIRES"))?;
            for t in list {
                let state = if t.revoked {
                    "revoked"
                } else if t.expires_at_ms < crate::time::now_ms() {
                    "expired"
                } else {
                    "valid"
                };
                ctx.term.println(&format!(
                    "{:<32}  {:<20}  {:<8}  {:<24}  {state}",
                    t.id,
                    t.name,
                    t.role,
                    date(t.expires_at_ms)
                ))?;
            }
            Ok(())
        }
        TokenCommand::RotateKey => {
            let v: Value = ctx.client.send(hyper::Method::POST, "/keys/rotate", None::<&()>)?;
            let kid = v.get("key_id").and_then(Value::as_str).unwrap_or("?");
            ctx.term.println(&format!("new tokens are signed with key {kid}"))
        }
        TokenCommand::Revoke { id } => {
            let _: Value = ctx.client.send(hyper::Method::DELETE, &format!("/tokens/{id}"), None::<&()>)?;
            ctx.term.println(&format!("revoked token {id}"))
        }
    }
}
