//! `containerctl token create|list|revoke`: API tokens for the HTTP API and the web page.

use super::{Ctx, Error};
use crate::client::{self, TokenInfo};
use crate::policy::Role;

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

fn date(ms: i64) -> String {
    super::ui::format_time(ms)
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        TokenCommand::Create { name, role, ttl, json } => {
            let role_value = match role.as_str() {
                "viewer" => Role::Viewer,
                "operator" => Role::Operator,
                _ => Role::Admin,
            };
            let c = ctx.client.token_create(&name, role_value, &ttl)?;
            if json {
                let v = serde_json::to_string(&c).map_err(|e| Error::Failed(e.to_string()))?;
                return ctx.term.println(&v);
            }
            ctx.term.println(&c.token)?;
            eprintln!("token {} for {name} ({role}), valid until {}", c.id, date(c.expires_at_ms));
            Ok(())
        }
        TokenCommand::List { json } => {
            let raw = ctx.client.get_raw("/tokens")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let list: Vec<TokenInfo> = client::decode("/tokens", &raw)?;
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
            let k = ctx.client.rotate_key()?;
            ctx.term.println(&format!("new tokens are signed with key {}", k.key_id))
        }
        TokenCommand::Revoke { id } => {
            ctx.client.token_revoke(&id)?;
            ctx.term.println(&format!("revoked token {id}"))
        }
    }
}
