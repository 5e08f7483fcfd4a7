//! `containerctl cluster …` and `containerctl image push`: federation through containerctld.
//!
//! Long operations (init, join, leave, push) stream their steps: each is printed to stderr as it
//! happens (`--json` prints the daemon's NDJSON lines to stdout instead), and a failed step ends
//! the command with its message, what to do, and a non-zero status.

use serde_json::{json, Value};

use super::{Ctx, Error};
use crate::client::{self, ClusterStatus, JoinTokenInfo, Node};
use crate::wire::{ClusterInit, ClusterJoin, ImagePush, NewJoinToken};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Make this host the cluster's manager: Swarm, CA, cluster API, registry, shared volume.
    Init {
        /// The IP address other hosts reach this one at (default: the address of the default route).
        #[arg(long)]
        advertise_addr: Option<String>,
        /// Print the daemon's progress lines (NDJSON) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Join the cluster with a token from `containerctl cluster token create`.
    Join {
        token: String,
        /// The IP address the others reach this host at (default: the one that routes to the manager).
        #[arg(long)]
        advertise_addr: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Leave the cluster: the manager forgets this node; the Swarm and the shared mount are undone.
    Leave {
        #[arg(long)]
        json: bool,
    },
    /// On the manager: remove a node (by id or host name) from the cluster, the Swarm and the volume.
    Remove { node: String },
    /// Join tokens (manager, admin).
    Token(TokenArgs),
    /// On the manager: every node with its state, last report and units.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// This host's membership, the registry and the shared volume.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a new join token (shown once).
    Create {
        #[arg(long, default_value = "worker", value_parser = ["worker", "manager"])]
        role: String,
        /// How long it is valid (5s to 7d).
        #[arg(long, default_value = "15m")]
        ttl: String,
        /// How many hosts may join with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        #[arg(long)]
        json: bool,
    },
    /// List join tokens and their state (valid, expired, used, revoked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a join token: it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Push a local image (NAME:TAG) into the cluster registry as REGISTRY/NAME:TAG.
    Push {
        image: String,
        /// An operator token of the manager (`containerctl token create` there), needed when
        /// pushing from another host; also read from $CONTAINERCTL_TOKEN.
        #[arg(long, env = "CONTAINERCTL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Streams a long operation; returns its result, or reports its failure and ends the command.
fn run_streamed<B: serde::Serialize>(ctx: &Ctx, route: &str, body: &B, json: bool) -> Result<Value, Error> {
    match super::stream::run(ctx, route, body, json)? {
        super::stream::Streamed::Result(r) => Ok(r),
        super::stream::Streamed::Failure(e) => {
            if !json {
                let hint = Some(e.hint.as_str())
                    .filter(|h| !h.is_empty())
                    .map(|h| format!("\n  hint: {h}"))
                    .unwrap_or_default();
                let step = if e.step.is_empty() { "operation" } else { e.step.as_str() };
                eprintln!("containerctl: {step} failed: {}{hint}", e.message);
            }
            Err(Error::Reported(super::stream::exit_for(&e.kind)))
        }
    }
}

fn date(ms: i64) -> String {
    super::ui::format_time(ms)
}

fn ago(ms: i64) -> String {
    let now = crate::time::now_ms();
    super::ui::format_span(u64::try_from((now - ms).max(0) / 1000).unwrap_or(0)) + " ago"
}

pub fn run(args: Args, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        ClusterCommand::Init { advertise_addr, json } => {
            let r = run_streamed(ctx, "/cluster/init", &ClusterInit { advertise_addr }, json)?;
            if !json {
                ctx.term.println(&format!(
                    "cluster {} initialised: API https://{}/, registry {}",
                    r["cluster_id"].as_str().unwrap_or(""),
                    r["manager_api"].as_str().unwrap_or(""),
                    r["registry"].as_str().unwrap_or("")
                ))?;
                eprintln!("next: `containerctl cluster token create` here, then `containerctl cluster join TOKEN` on each host");
            }
            Ok(())
        }
        ClusterCommand::Join { token, advertise_addr, json } => {
            let r = run_streamed(ctx, "/cluster/join", &ClusterJoin { token, advertise_addr }, json)?;
            if !json {
                ctx.term.println(&format!(
                    "joined cluster {} as {} (node {})",
                    r["cluster_id"].as_str().unwrap_or(""),
                    r["role"].as_str().unwrap_or(""),
                    r["node_id"].as_str().unwrap_or("")
                ))?;
            }
            Ok(())
        }
        ClusterCommand::Leave { json } => {
            run_streamed(ctx, "/cluster/leave", &serde_json::Map::new(), json)?;
            if !json {
                ctx.term.println("left the cluster")?;
            }
            Ok(())
        }
        ClusterCommand::Remove { node } => {
            let n = ctx.client.remove_node(&node)?;
            ctx.term.println(&format!("removed {} ({})", n.hostname, n.id))
        }
        ClusterCommand::Token(t) => token(t, ctx),
        ClusterCommand::Nodes { json } => {
            let raw = ctx.client.get_raw("/cluster/nodes")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let nodes: Vec<Node> = client::decode("/cluster/nodes", &raw)?;
            ctx.term.print(&render_nodes(&nodes, ctx.term.out))
        }
        ClusterCommand::Status { json } => {
            let raw = ctx.client.get_raw("/cluster")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let v: ClusterStatus = client::decode("/cluster", &raw)?;
            ctx.term.print(&render_status(&v))
        }
    }
}

fn token(t: TokenArgs, ctx: &Ctx) -> Result<(), Error> {
    match t.command {
        TokenCommand::Create { role, ttl, uses, json } => {
            let body = NewJoinToken { role: Some(role.clone()), ttl: Some(ttl), uses: Some(uses) };
            let t = ctx.client.join_token_create(&body)?;
            if json {
                let v = serde_json::to_string(&t).map_err(|e| Error::Failed(e.to_string()))?;
                return ctx.term.println(&v);
            }
            ctx.term.println(&t.token)?;
            eprintln!(
                "join token {} for a {role}, {uses} use(s), valid until {}; on the new host run: containerctl cluster join TOKEN",
                t.id,
                date(t.expires_at_ms)
            );
            Ok(())
        }
        TokenCommand::List { json } => {
            let raw = ctx.client.get_raw("/cluster/tokens")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let list: Vec<JoinTokenInfo> = client::decode("/cluster/tokens", &raw)?;
            let mut table = super::ui::Table::new(&[
                ("ID", super::ui::Align::Left),
                ("ROLE", super::ui::Align::Left),
                ("STATE", super::ui::Align::Left),
                ("USES", super::ui::Align::Right),
                ("EXPIRES", super::ui::Align::Left),
            ]);
            for t in &list {
                table.row(vec![
                    (t.id.clone(), None),
                    (t.role.clone(), None),
                    (t.state.clone(), None),
                    (format!("{}/{}", t.used, t.uses), None),
                    (date(t.expires_at_ms), None),
                ]);
            }
            ctx.term.print(&table.render(ctx.term.out))
        }
        TokenCommand::Revoke { id } => {
            ctx.client.join_token_revoke(&id)?;
            ctx.term.println(&format!("revoked {id}"))
        }
    }
}

fn render_nodes(nodes: &[Node], style: super::ui::Style) -> String {
    use super::ui::{Align, Color, Table};
    let mut table = Table::new(&[
        ("NODE", Align::Left),
        ("HOST", Align::Left),
        ("ADDRESS", Align::Left),
        ("ROLE", Align::Left),
        ("STATE", Align::Left),
        ("SWARM", Align::Left),
        ("UNITS", Align::Right),
        ("LAST SEEN", Align::Left),
    ]);
    for n in nodes {
        let state = n.state.clone();
        let color = match state.as_str() {
            "up" => Some(Color::Green),
            "down" => Some(Color::Red),
            _ => None,
        };
        table.row(vec![
            (n.id.clone(), None),
            (n.hostname.clone(), None),
            (n.addr.clone(), None),
            (n.role.clone(), None),
            (state, color),
            (n.swarm_state.clone().unwrap_or_else(|| "-".into()), None),
            (n.units.len().to_string(), None),
            (ago(n.last_seen_ms), None),
        ]);
    }
    table.render(style)
}

fn render_status(v: &ClusterStatus) -> String {
    let Some(m) = v.membership.as_ref().filter(|_| v.member) else {
        return "not in a cluster (containerctl cluster init, or cluster join TOKEN)\n".into();
    };
    let mut out = String::new();
    let primary = if m.primary { " (first manager)" } else { "" };
    out.push_str(&format!("cluster:   {}\n", m.cluster_id));
    out.push_str(&format!("this node: {} {} {}{primary}\n", m.node_id, m.hostname, m.role));
    out.push_str(&format!("manager:   https://{}/\n", m.manager_addrs.first().map_or("", String::as_str)));
    out.push_str(&format!("registry:  {}\n", m.registry.address));
    for i in m.registry.images.iter().flatten() {
        out.push_str(&format!("           {}:{}\n", i.name, i.tags.join(",")));
    }
    let s = &m.shared;
    if s["mounted"] == json!(true) {
        out.push_str(&format!(
            "shared:    {} mounted, {} used of {}\n",
            s["path"].as_str().unwrap_or(""),
            super::ui::format_size(s["used_bytes"].as_u64().unwrap_or(0)),
            super::ui::format_size(s["size_bytes"].as_u64().unwrap_or(0))
        ));
    } else {
        out.push_str(&format!("shared:    {} NOT mounted\n", s["path"].as_str().unwrap_or("")));
    }
    if let Some(sw) = &m.swarm {
        out.push_str(&format!(
            "swarm:     {} ({} nodes, {} managers)\n",
            sw.state.as_deref().unwrap_or(""),
            sw.nodes.unwrap_or(0),
            sw.managers.unwrap_or(0)
        ));
    }
    out
}

pub fn run_image(args: ImageArgs, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        ImageCommand::Push { image, token, json } => {
            let r = run_streamed(ctx, "/images/push", &ImagePush { image, token }, json)?;
            if !json {
                ctx.term.println(r["image"].as_str().unwrap_or(""))?;
            }
            Ok(())
        }
    }
}
