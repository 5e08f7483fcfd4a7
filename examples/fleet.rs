//! The load generator of bench/fleet.sh: many simulated members of a real containerctl cluster,
//! speaking the member protocol with the crate's own wire types and TLS client.
//!
//! `fleet join` admits one member per join token (`containerctl cluster token create` on the
//! manager, single-use), each from its own local address (the manager takes a join's address
//! from its connection): `POST /cluster/v1/join` over TLS pinned to the CA in the token, then
//! `POST /cluster/v1/member-cert` with the node credential, as a member does at start. It writes
//! the members (address, node id, credential, certificate) to a state file.
//!
//! `fleet load` reads that file and sends each member's inventory (`POST /cluster/v1/report`,
//! bearer node credential, TLS presenting the member certificate) at the report interval, after
//! a unit of a member changed (one second after the change, as the reporter lets a burst settle),
//! and in bursts where every member reports at once; it prints the latency of every kind of
//! request as one member measures it (connect, handshake, request, answer).
//!
//! What is not simulated is the member's own side of the engines: a simulated member does not
//! join the Swarm and mounts no Gluster volume (the manager's side of the join, Gluster's
//! `auth.allow` included, is real). Not shipped: an example, built by bench/fleet.sh.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use containerctl::cluster::inventory::{next_report_in, Inventory, Resources, Shared, UnitSummary};
use containerctl::cluster::ops::{JoinBundle, JoinRequest, MemberCert};
use containerctl::cluster::tls::Client;
use containerctl::cluster::token::JoinToken;
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(about = "Simulated members of a containerctl cluster (bench/fleet.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join one member per token, each from its own local address.
    Join {
        /// Join tokens, one a line.
        #[arg(long)]
        tokens: PathBuf,
        /// The first member's address; the others follow it (the host must have them all).
        #[arg(long)]
        first_addr: Ipv4Addr,
        /// How many members.
        #[arg(long, default_value_t = 100)]
        members: u32,
        /// Where the members are written.
        #[arg(long)]
        state: PathBuf,
        /// Seconds a request may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Send the members' reports.
    Load {
        #[arg(long)]
        state: PathBuf,
        /// The report interval (the manager's `[cluster] report_interval`), seconds.
        #[arg(long, default_value_t = 15)]
        interval: u64,
        /// How long the load runs, seconds.
        #[arg(long, default_value_t = 120)]
        duration: u64,
        /// Units in each member's inventory.
        #[arg(long, default_value_t = 5)]
        units: usize,
        /// Times every member reports at once during the run (evenly spaced).
        #[arg(long, default_value_t = 2)]
        bursts: u32,
        /// Unit changes per minute across the fleet (a random member's unit fails or recovers).
        #[arg(long, default_value_t = 30)]
        changes_per_min: u32,
        /// Seconds a request may take.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
}

/// A joined member, as `join` writes it for `load`.
#[derive(Serialize, Deserialize)]
struct Member {
    addr: IpAddr,
    hostname: String,
    node_id: String,
    credential: String,
    manager_api: String,
    ca_pem: String,
    cert: MemberCert,
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let result = match rt {
        Ok(rt) => rt.block_on(async {
            match cli.command {
                Command::Join { tokens, first_addr, members, state, timeout } => {
                    join(&tokens, first_addr, members, &state, Duration::from_secs(timeout)).await
                }
                Command::Load { state, interval, duration, units, bursts, changes_per_min, timeout } => {
                    let plan = Plan {
                        interval: Duration::from_secs(interval.max(1)),
                        duration: Duration::from_secs(duration),
                        units,
                        bursts,
                        changes_per_min,
                        timeout: Duration::from_secs(timeout),
                    };
                    load(&state, plan).await
                }
            }
        }),
        Err(e) => Err(format!("cannot start the runtime: {e}")),
    };
    if let Err(e) = result {
        eprintln!("fleet: {e}");
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One request with a deadline; Ok: status and body.
async fn call(
    c: &Client,
    addr: &str,
    path: &str,
    credential: Option<&str>,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, bytes::Bytes), String> {
    let auth: Vec<(&str, String)> =
        credential.map(|c| ("authorization", format!("Bearer {c}"))).into_iter().collect();
    match tokio::time::timeout(timeout, c.request(addr, http::Method::POST, path, &auth, Some(body))).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
    }
}

fn refused(what: &str, status: u16, body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let why = v["error"]["message"]
        .as_str()
        .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_owned);
    format!("{what}: HTTP {status}: {why}")
}

async fn join(
    tokens: &std::path::Path,
    first: Ipv4Addr,
    count: u32,
    state: &std::path::Path,
    timeout: Duration,
) -> Result<(), String> {
    let text =
        std::fs::read_to_string(tokens).map_err(|e| format!("cannot read {}: {e}", tokens.display()))?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.len() < count as usize {
        return Err(format!("{} holds {} tokens, {count} are needed", tokens.display(), lines.len()));
    }
    let (mut members, mut join_ms, mut cert_ms) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in lines.iter().take(count as usize).enumerate() {
        let n = u32::try_from(i).unwrap_or(u32::MAX);
        let addr = IpAddr::V4(Ipv4Addr::from(u32::from(first).wrapping_add(n)));
        let hostname = format!("sim-{:03}", i + 1);
        let t = JoinToken::decode(line).map_err(|e| format!("token {}: {e}", i + 1))?;
        let manager =
            t.managers.first().cloned().ok_or_else(|| format!("token {} names no manager", i + 1))?;
        let client = Client::pinned(&t.ca_digest).map_err(|e| e.to_string())?.from_local(addr);
        let req = JoinRequest {
            token_id: t.id.clone(),
            secret: t.secret.clone(),
            hostname: hostname.clone(),
            addr: addr.to_string(),
        };
        let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let (status, answer) = call(&client, &manager, "/cluster/v1/join", None, body, timeout)
            .await
            .map_err(|e| format!("join of {hostname} from {addr}: {e}"))?;
        join_ms.push(ms(start.elapsed()));
        if status != 200 {
            return Err(refused(&format!("join of {hostname} from {addr}"), status, &answer));
        }
        let b: JoinBundle = serde_json::from_slice(&answer).map_err(|e| format!("join answer: {e}"))?;
        let client = Client::with_ca(&b.ca_pem).map_err(|e| e.to_string())?.from_local(addr);
        let start = Instant::now();
        let (status, answer) = call(
            &client,
            &b.manager_api,
            "/cluster/v1/member-cert",
            Some(&b.credential),
            b"{}".to_vec(),
            timeout,
        )
        .await
        .map_err(|e| format!("member certificate of {hostname}: {e}"))?;
        cert_ms.push(ms(start.elapsed()));
        if status != 200 {
            return Err(refused(&format!("member certificate of {hostname}"), status, &answer));
        }
        let cert: MemberCert =
            serde_json::from_slice(&answer).map_err(|e| format!("member certificate: {e}"))?;
        members.push(Member {
            addr,
            hostname,
            node_id: b.node_id,
            credential: b.credential,
            manager_api: b.manager_api,
            ca_pem: b.ca_pem,
            cert,
        });
        eprint!("\rjoins done {}/{count}", i + 1);
    }
    eprintln!();
    let text = serde_json::to_string(&members).map_err(|e| e.to_string())?;
    std::fs::write(state, text).map_err(|e| format!("cannot write {}: {e}", state.display()))?;
    println!("{}", summary("join (token exchange)", &mut join_ms, 0));
    println!("{}", summary("member certificate", &mut cert_ms, 0));
    Ok(())
}

struct Plan {
    interval: Duration,
    duration: Duration,
    units: usize,
    bursts: u32,
    changes_per_min: u32,
    timeout: Duration,
}

/// Why a member reports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Interval,
    Change,
    Burst,
}

/// A small deterministic generator (xorshift): the bench needs spread, not secrecy.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The inventory a member with `units` units reports; `failed` units are down. Free memory and
/// load move between reports, as a real host's do, so no two reports are byte for byte alike.
fn inventory(m: &Member, units: usize, failed: &[bool], rng: &mut Rng) -> Inventory {
    Inventory {
        hostname: m.hostname.clone(),
        units: (0..units)
            .map(|u| {
                let down = failed.get(u).copied().unwrap_or(false);
                UnitSummary {
                    name: format!("svc{u}"),
                    active_state: if down { "failed" } else { "active" }.into(),
                    sub_state: if down { "failed" } else { "running" }.into(),
                    image: Some(format!("{}/app{u}", m.manager_api.replace(":5001", ":5002"))),
                    version: Some(format!("1.{u}.0")),
                }
            })
            .collect(),
        containers: u32::try_from(units).unwrap_or(0),
        images: (0..units).map(|u| format!("app{u}:1.{u}.0")).collect(),
        devices: vec!["/dev/serial/by-id/usb-FTDI_FT232R-if00-port0".into()],
        resources: Resources {
            cpus: 4,
            memory_total_bytes: 8 << 30,
            memory_available_bytes: (5 << 30) + rng.below(1 << 28),
            load1: f64::from(u32::try_from(rng.below(200)).unwrap_or(0)) / 100.0,
            disk_avail_bytes: 40 << 30,
        },
        shared: Shared {
            path: "/var/lib/containerctl/shared".into(),
            mounted: true,
            volume: "containerctl".into(),
            size_bytes: 100 << 30,
            used_bytes: 1 << 30,
            avail_bytes: 99 << 30,
        },
    }
}

type Sample = (Kind, Result<f64, String>);

/// One member's reports until `end`: at the interval (first at a random point of it), one second
/// after a change, and at each burst.
async fn member_loop(
    m: Member,
    plan: Arc<Plan>,
    seed: u64,
    mut changes: tokio::sync::mpsc::Receiver<usize>,
    mut bursts: tokio::sync::watch::Receiver<u32>,
    end: tokio::time::Instant,
    out: tokio::sync::mpsc::UnboundedSender<Sample>,
) {
    let client = match Client::member(&m.ca_pem, &m.cert.cert_pem, &m.cert.key_pem) {
        Ok(c) => c.from_local(m.addr),
        Err(e) => {
            let _ = out.send((Kind::Interval, Err(format!("{}: client: {e}", m.hostname))));
            return;
        }
    };
    let mut rng = Rng(seed | 1);
    let mut failed = vec![false; plan.units];
    let interval_ms = u64::try_from(plan.interval.as_millis()).unwrap_or(u64::MAX);
    let mut next = tokio::time::Instant::now() + Duration::from_millis(rng.below(interval_ms));
    loop {
        let kind = tokio::select! {
            () = tokio::time::sleep_until(end) => break,
            () = tokio::time::sleep_until(next) => Kind::Interval,
            Some(u) = changes.recv() => {
                if let Some(f) = failed.get_mut(u) { *f = !*f; }
                tokio::time::sleep(Duration::from_secs(1)).await;
                Kind::Change
            }
            Ok(()) = bursts.changed() => Kind::Burst,
        };
        let body = serde_json::to_vec(&inventory(&m, plan.units, &failed, &mut rng)).unwrap_or_default();
        let start = Instant::now();
        let r = match call(
            &client,
            &m.manager_api,
            "/cluster/v1/report",
            Some(&m.credential),
            body,
            plan.timeout,
        )
        .await
        {
            Ok((204 | 200, _)) => Ok(ms(start.elapsed())),
            Ok((status, answer)) => Err(refused(&format!("report of {}", m.hostname), status, &answer)),
            Err(e) => Err(format!("report of {}: {e}", m.hostname)),
        };
        let _ = out.send((kind, r));
        // As a member's reporter does: the interval give or take a tenth, after any report.
        next = tokio::time::Instant::now() + next_report_in(plan.interval, rng.next());
    }
}

async fn load(state: &std::path::Path, plan: Plan) -> Result<(), String> {
    let text = std::fs::read_to_string(state).map_err(|e| format!("cannot read {}: {e}", state.display()))?;
    let members: Vec<Member> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", state.display()))?;
    if members.is_empty() {
        return Err(format!("{} holds no members: run `fleet join` first", state.display()));
    }
    let plan = Arc::new(plan);
    let start = tokio::time::Instant::now();
    let end = start + plan.duration;
    let (out, mut samples) = tokio::sync::mpsc::unbounded_channel();
    let (burst_tx, burst_rx) = tokio::sync::watch::channel(0u32);
    let mut change_tx = Vec::new();
    let count = members.len();
    for (i, m) in members.into_iter().enumerate() {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        change_tx.push(tx);
        let seed = 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1);
        tokio::spawn(member_loop(m, plan.clone(), seed, rx, burst_rx.clone(), end, out.clone()));
    }
    drop(out);
    // The driver: unit changes at random members, bursts evenly spaced.
    let driver = {
        let plan = plan.clone();
        tokio::spawn(async move {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            let change_every =
                (plan.changes_per_min > 0).then(|| Duration::from_secs(60) / plan.changes_per_min);
            let burst_every = plan.duration / (plan.bursts + 1);
            let mut next_change = change_every.map(|d| start + d);
            let mut next_burst = (plan.bursts > 0).then(|| start + burst_every);
            let mut sent = 0u32;
            loop {
                let wake = [next_change, next_burst].into_iter().flatten().min().unwrap_or(end);
                if wake >= end {
                    break;
                }
                tokio::time::sleep_until(wake).await;
                if next_change == Some(wake) {
                    let who = usize::try_from(rng.below(count as u64)).unwrap_or(0);
                    let unit = usize::try_from(rng.below(plan.units as u64)).unwrap_or(0);
                    if let Some(tx) = change_tx.get(who) {
                        let _ = tx.try_send(unit);
                    }
                    next_change = change_every.map(|d| wake + d);
                }
                if next_burst == Some(wake) {
                    sent += 1;
                    let _ = burst_tx.send(sent);
                    next_burst = (sent < plan.bursts).then(|| wake + burst_every);
                }
            }
        })
    };
    let mut by_kind: [(Kind, &str, Vec<f64>, u32); 3] = [
        (Kind::Interval, "report at the interval", Vec::new(), 0),
        (Kind::Change, "report after a unit change", Vec::new(), 0),
        (Kind::Burst, "report in a burst (every member at once)", Vec::new(), 0),
    ];
    let mut first_error = None;
    let mut last_progress = Instant::now();
    let mut done = 0usize;
    while let Some((kind, r)) = samples.recv().await {
        let slot = by_kind.iter_mut().find(|s| s.0 == kind);
        match (r, slot) {
            (Ok(t), Some(s)) => s.2.push(t),
            (Err(e), Some(s)) => {
                s.3 += 1;
                first_error.get_or_insert(e);
            }
            (_, None) => {}
        }
        done += 1;
        if last_progress.elapsed() >= Duration::from_secs(10) {
            eprintln!("reports sent {done}, {}s of {}s", start.elapsed().as_secs(), plan.duration.as_secs());
            last_progress = Instant::now();
        }
    }
    let _ = driver.await;
    let mut all: Vec<f64> = Vec::new();
    let mut errors = 0;
    for (_, name, times, errs) in &mut by_kind {
        all.extend(times.iter());
        errors += *errs;
        println!("{}", summary(name, times, *errs));
    }
    println!("{}", summary("every report", &mut all, errors));
    if let Some(e) = first_error {
        return Err(format!("{errors} reports failed, the first: {e}"));
    }
    Ok(())
}

/// `NAME: N ok, E failed, p50 X ms, p99 Y ms, max Z ms` (nearest rank).
fn summary(name: &str, times: &mut [f64], errors: u32) -> String {
    times.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let n = times.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n as f64) * p).ceil() as usize;
        times[i.clamp(1, n) - 1]
    };
    format!(
        "{name}: {} ok, {errors} failed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        rank(0.50),
        rank(0.99),
        rank(1.0)
    )
}
