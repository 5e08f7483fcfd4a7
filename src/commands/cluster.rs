//! `containerctl cluster …` and `containerctl image push`: federation through containerctld.
//!
//! Long operations (init, join, leave, push) stream their steps: each is printed to stderr as it
//! happens (`--json` prints the daemon's NDJSON lines to stdout instead), and a failed step ends
//! the command with its message, what to do, and a non-zero status.

use std::io::Write;

use serde_json::{json, Value};

use super::{exit, Ctx, Error};

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

fn exit_for(kind: &str) -> u8 {
    match kind {
        "forbidden" => exit::DENIED,
        "not_found" => exit::NOT_FOUND,
        "unavailable" => exit::UNAVAILABLE,
        _ => exit::FAILED,
    }
}

/// Streams a long operation; returns its result.
fn run_streamed(ctx: &Ctx, route: &str, body: Value, json: bool) -> Result<Value, Error> {
    let mut result = None;
    let mut failure: Option<Value> = None;
    let stderr_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_progress = String::new();
    ctx.client.stream_lines_with::<Error>(hyper::Method::POST, route, Some(&body), |line| {
        if json {
            ctx.term.println(&String::from_utf8_lossy(line))?;
        }
        let v: Value =
            serde_json::from_slice(line).map_err(|e| Error::Failed(format!("bad progress line: {e}")))?;
        if let Some(r) = v.get("result") {
            result = Some(r.clone());
        } else if let Some(e) = v.get("error") {
            failure = Some(e.clone());
        } else if !json {
            let step = v["step"].as_str().unwrap_or("");
            let detail = v["detail"].as_str().unwrap_or("");
            match v["state"].as_str().unwrap_or("") {
                "progress" => {
                    if stderr_tty && detail != last_progress {
                        eprint!("\r\x1b[K  {detail}");
                        let _ = std::io::stderr().flush();
                    } else if !stderr_tty && detail != last_progress && !detail.starts_with("Pushing") {
                        eprintln!("  {detail}");
                    }
                    last_progress = detail.to_owned();
                }
                "failed" => {}
                state => {
                    if stderr_tty && !last_progress.is_empty() {
                        eprint!("\r\x1b[K");
                        last_progress.clear();
                    }
                    let mark = match state {
                        "done" => "✓",
                        "skipped" => "·",
                        _ => "…",
                    };
                    eprintln!("{mark} {step}: {detail}");
                }
            }
        }
        Ok(())
    })?;
    if let Some(e) = failure {
        if !json {
            let hint = e["hint"]
                .as_str()
                .filter(|h| !h.is_empty())
                .map(|h| format!("\n  hint: {h}"))
                .unwrap_or_default();
            eprintln!(
                "containerctl: {} failed: {}{hint}",
                e["step"].as_str().unwrap_or("operation"),
                e["message"].as_str().unwrap_or("")
            );
        }
        return Err(Error::Reported(exit_for(e["kind"].as_str().unwrap_or(""))));
    }
    result.ok_or_else(|| {
        Error::Failed("the daemon ended the operation without a result (see its journal)".into())
    })
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
            let r = run_streamed(ctx, "/cluster/init", json!({"advertise_addr": advertise_addr}), json)?;
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
            let r = run_streamed(
                ctx,
                "/cluster/join",
                json!({"token": token, "advertise_addr": advertise_addr}),
                json,
            )?;
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
            run_streamed(ctx, "/cluster/leave", json!({}), json)?;
            if !json {
                ctx.term.println("left the cluster")?;
            }
            Ok(())
        }
        ClusterCommand::Remove { node } => {
            let v: Value = ctx.client.send(
                hyper::Method::DELETE,
                &format!("/cluster/nodes/{}", encode(&node)),
                None::<&Value>,
            )?;
            ctx.term.println(&format!(
                "removed {} ({})",
                v["hostname"].as_str().unwrap_or(""),
                v["id"].as_str().unwrap_or("")
            ))
        }
        ClusterCommand::Token(t) => token(t, ctx),
        ClusterCommand::Nodes { json } => {
            let raw = ctx.client.get_raw("/cluster/nodes")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let nodes: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| Error::Failed(e.to_string()))?;
            ctx.term.print(&render_nodes(&nodes, ctx.term.out))
        }
        ClusterCommand::Status { json } => {
            let raw = ctx.client.get_raw("/cluster")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let v: Value = serde_json::from_slice(&raw).map_err(|e| Error::Failed(e.to_string()))?;
            ctx.term.print(&render_status(&v))
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn token(t: TokenArgs, ctx: &Ctx) -> Result<(), Error> {
    match t.command {
        TokenCommand::Create { role, ttl, uses, json } => {
            let v: Value = ctx.client.send(
                hyper::Method::POST,
                "/cluster/tokens",
                Some(&json!({"role": role, "ttl": ttl, "uses": uses})),
            )?;
            if json {
                return ctx.term.println(&v.to_string());
            }
            ctx.term.println(v["token"].as_str().unwrap_or(""))?;
            eprintln!(
                "join token {} for a {role}, {uses} use(s), valid until {}; on the new host run: containerctl cluster join TOKEN",
                v["id"].as_str().unwrap_or(""),
                date(v["expires_at_ms"].as_i64().unwrap_or(0))
            );
            Ok(())
        }
        TokenCommand::List { json } => {
            let raw = ctx.client.get_raw("/cluster/tokens")?;
            if json {
                return ctx.term.print_raw_json(&raw);
            }
            let list: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| Error::Failed(e.to_string()))?;
            let mut table = super::ui::Table::new(&[
                ("ID", super::ui::Align::Left),
                ("ROLE", super::ui::Align::Left),
                ("STATE", super::ui::Align::Left),
                ("USES", super::ui::Align::Right),
                ("EXPIRES", super::ui::Align::Left),
            ]);
            for t in &list {
                table.row(vec![
                    (t["id"].as_str().unwrap_or("").to_owned(), None),
                    (t["role"].as_str().unwrap_or("").to_owned(), None),
                    (t["state"].as_str().unwrap_or("").to_owned(), None),
                    (format!("{}/{}", t["used"], t["uses"]), None),
                    (date(t["expires_at_ms"].as_i64().unwrap_or(0)), None),
                ]);
            }
            ctx.term.print(&table.render(ctx.term.out))
        }
        TokenCommand::Revoke { id } => {
            ctx.client.call(hyper::Method::DELETE, &format!("/cluster/tokens/{}", encode(&id)), None)?;
            ctx.term.println(&format!("revoked {id}"))
        }
    }
}

fn render_nodes(nodes: &[Value], style: super::ui::Style) -> String {
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
        let state = n["state"].as_str().unwrap_or("").to_owned();
        let color = match state.as_str() {
            "up" => Some(Color::Green),
            "down" => Some(Color::Red),
            _ => None,
        };
        table.row(vec![
            (n["id"].as_str().unwrap_or("").to_owned(), None),
            (n["hostname"].as_str().unwrap_or("").to_owned(), None),
            (n["addr"].as_str().unwrap_or("").to_owned(), None),
            (n["role"].as_str().unwrap_or("").to_owned(), None),
            (state, color),
            (n["swarm_state"].as_str().unwrap_or("-").to_owned(), None),
            (n["units"].as_array().map_or(0, Vec::len).to_string(), None),
            (ago(n["last_seen_ms"].as_i64().unwrap_or(0)), None),
        ]);
    }
    table.render(style)
}

fn render_status(v: &Value) -> String {
    if v["member"] != json!(true) {
        return "not in a cluster (containerctl cluster init, or cluster join TOKEN)\n".into();
    }
    let mut out = String::new();
    let primary = if v["primary"] == json!(true) { " (first manager)" } else { "" };
    out.push_str(&format!("cluster:   {}\n", v["cluster_id"].as_str().unwrap_or("")));
    out.push_str(&format!(
        "this node: {} {} {}{primary}\n",
        v["node_id"].as_str().unwrap_or(""),
        v["hostname"].as_str().unwrap_or(""),
        v["role"].as_str().unwrap_or("")
    ));
    out.push_str(&format!("manager:   https://{}/\n", v["manager_addrs"][0].as_str().unwrap_or("")));
    out.push_str(&format!("registry:  {}\n", v["registry"]["address"].as_str().unwrap_or("")));
    if let Some(images) = v["registry"]["images"].as_array() {
        for i in images {
            let tags: Vec<&str> = i["tags"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push_str(&format!("           {}:{}\n", i["name"].as_str().unwrap_or(""), tags.join(",")));
        }
    }
    let s = &v["shared"];
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
    if let Some(sw) = v["swarm"].as_object() {
        out.push_str(&format!(
            "swarm:     {} ({} nodes, {} managers)\n",
            sw.get("state").and_then(Value::as_str).unwrap_or(""),
            sw.get("nodes").cloned().unwrap_or(json!(0)),
            sw.get("managers").cloned().unwrap_or(json!(0))
        ));
    }
    out
}

pub fn run_image(args: ImageArgs, ctx: &Ctx) -> Result<(), Error> {
    match args.command {
        ImageCommand::Push { image, token, json } => {
            let r = run_streamed(ctx, "/images/push", json!({"image": image, "token": token}), json)?;
            if !json {
                ctx.term.println(r["image"].as_str().unwrap_or(""))?;
            }
            Ok(())
        }
    }
}
