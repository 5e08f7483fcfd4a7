//! The cluster's operations as the daemon runs them, one file per operation: [`init`](init()),
//! [`join`](join()), [`leave`](leave()) and [`remove_node`], the manager's side of a join and its
//! join tokens (`admit.rs`), image push (`push.rs`), and the background work (`background.rs`,
//! `reports.rs`). This file holds what they share: the daemon's [`Cluster`] state, [`Progress`]
//! (each multi-step operation reports its steps as it goes), [`StepError`] (a failed step says
//! what to do) and the small steps every operation is made of. Every step checks what is there
//! before changing it, so running an operation again after a failure continues where it stopped;
//! cleanup goes on past a failure and reports it ([`Cleanup`]).

mod admit;
mod background;
mod cleanup;
mod init;
mod join;
mod leave;
mod peers;
mod push;
mod reports;
mod swarm_wait;
mod volume;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::models::LocalNodeState;
use serde::Serialize;
use serde_json::json;

pub use self::admit::{
    add_brick_for, admit, authenticate_node, check_join_addr, create_token, registry_grant, CreatedToken,
};
pub use self::background::start_background;
pub use self::cleanup::Cleanup;
pub use self::init::init;
pub use self::join::{join, JoinBundle, JoinRequest};
pub use self::leave::{leave, leave_node, leave_with_warnings, remove_node};
pub use self::peers::{
    active_members, error_message, find_member, issue_member_cert, lookup, members, peer_client, MemberCert,
    PeerNode, PeerQuery,
};
pub use self::push::{promote, push, registry_images, PromoteRequest};
use crate::cluster::{self, registry, Paths, State};
use crate::daemon::Daemon;

pub use crate::progress::Progress;

/// What kind of failure a [`StepError`] is; the APIs map it to a status. Serialised as the
/// `kind` of the error line of a streamed operation (`"bad_request"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The step could not be done (the default): what was there failed or refused.
    Failed,
    /// The host is not in the state the operation needs (already a member, not the manager, …).
    Conflict,
    /// The request itself is wrong (an address that is no IP, a bad token, a bad count).
    BadRequest,
    /// The caller or the token may not do this.
    Forbidden,
    /// What the request names does not exist (a node, a local image).
    NotFound,
    /// Something the step needs is not reachable (dockerd, the manager).
    Unavailable,
}

/// A step that failed: what, why, and what to do.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct StepError {
    pub step: String,
    pub message: String,
    pub hint: String,
    pub kind: StepKind,
}

impl StepError {
    /// The message followed by the hint, as the APIs' error messages say it.
    pub fn message_with_hint(&self) -> String {
        if self.hint.is_empty() {
            self.message.clone()
        } else {
            format!("{}; {}", self.message, self.hint)
        }
    }
}

fn fail(step: &str, message: impl Into<String>, hint: impl Into<String>) -> StepError {
    StepError { step: step.into(), message: message.into(), hint: hint.into(), kind: StepKind::Failed }
}

fn kind(mut e: StepError, kind: StepKind) -> StepError {
    e.kind = kind;
    e
}

/// The daemon's cluster state: membership and the background tasks it runs.
pub struct Cluster {
    pub paths: Paths,
    state: Mutex<Option<State>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Wakes the reporter after a change.
    pub report_now: tokio::sync::Notify,
    /// Serialises init, join, leave and remove.
    pub op_lock: tokio::sync::Mutex<()>,
    /// Serialises the manager's check-then-write of registry tags (its own pushes, promotions).
    push_lock: tokio::sync::Mutex<()>,
    pub report_interval: Duration,
    /// Admitted hosts not seen in the Swarm yet, the wake-up of the one task that waits for
    /// them, and whether that task runs (`swarm_wait.rs`).
    pending_joins: Mutex<Vec<swarm_wait::PendingJoin>>,
    join_wake: tokio::sync::Notify,
    join_watcher: std::sync::atomic::AtomicBool,
    /// Bumped when nodes or join tokens change (the web page's stream sends `event: cluster`).
    pub changes: tokio::sync::watch::Sender<u64>,
    /// The manager's record of what each node's last report showed (`Inventory::shown_digest`),
    /// so that a report that changes only gauges bumps nothing.
    shown: Mutex<std::collections::HashMap<String, u64>>,
    api_running: std::sync::atomic::AtomicBool,
    reporter_running: std::sync::atomic::AtomicBool,
    /// The registry token signer, read from its key file once (primary manager only).
    signer: Mutex<Option<Arc<registry::TokenSigner>>>,
    /// Serves the cluster API on a listener init or start-up bound: registered by the binary,
    /// which does the serving of every listener.
    server: std::sync::OnceLock<ServeFn>,
}

/// Serves `Router` over TLS (`ServerConfig`) on a bound listener until the task is aborted.
pub type ServeFn = Arc<
    dyn Fn(tokio::net::TcpListener, Arc<rustls::ServerConfig>, axum::Router) -> tokio::task::JoinHandle<()>
        + Send
        + Sync,
>;

impl Cluster {
    pub fn load(state_dir: &std::path::Path, report_interval: Duration) -> Cluster {
        let paths = Paths::new(state_dir);
        let state = cluster::load_state(&paths).unwrap_or_else(|e| {
            tracing::error!("cluster state unreadable, acting as no member: {e}");
            None
        });
        Cluster {
            paths,
            state: Mutex::new(state),
            tasks: Mutex::new(Vec::new()),
            report_now: tokio::sync::Notify::new(),
            op_lock: tokio::sync::Mutex::new(()),
            push_lock: tokio::sync::Mutex::new(()),
            report_interval,
            pending_joins: Mutex::new(Vec::new()),
            join_wake: tokio::sync::Notify::new(),
            join_watcher: std::sync::atomic::AtomicBool::new(false),
            changes: tokio::sync::watch::channel(0).0,
            shown: Mutex::new(std::collections::HashMap::new()),
            api_running: std::sync::atomic::AtomicBool::new(false),
            reporter_running: std::sync::atomic::AtomicBool::new(false),
            signer: Mutex::new(None),
            server: std::sync::OnceLock::new(),
        }
    }

    /// Registers how the cluster API is served (once, by containerctld's main).
    pub fn set_server(&self, serve: ServeFn) {
        if self.server.set(serve).is_err() {
            tracing::warn!("the cluster API's server was registered twice: the first one stays");
        }
    }

    fn server(&self) -> Option<ServeFn> {
        self.server.get().cloned()
    }

    pub fn state(&self) -> Option<State> {
        self.state.lock().ok().and_then(|s| s.clone())
    }

    fn set_state(&self, s: Option<State>) {
        if let Ok(mut g) = self.state.lock() {
            *g = s;
        }
    }

    pub fn add_task(&self, t: tokio::task::JoinHandle<()>) {
        if let Ok(mut g) = self.tasks.lock() {
            g.push(t);
        }
    }

    /// The registry token signer of this host, if it has the key (the primary manager). The key
    /// never changes once made, so it is read once.
    pub fn signer(&self) -> Option<Arc<registry::TokenSigner>> {
        let mut cached = self.signer.lock().ok()?;
        if cached.is_none() {
            let key = std::fs::read_to_string(self.paths.token_key()).ok()?;
            *cached = Some(Arc::new(registry::TokenSigner::from_pem(&key, cluster::REGISTRY_ISSUER).ok()?));
        }
        cached.clone()
    }

    /// Something the Cluster page shows changed.
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A node's report went to the store as `reported` says: tells the pages when it shows
    /// something new, that is when the node came back or its report differs from its last one in
    /// more than gauges (a report that was not stored tells nothing). With 100
    /// members reporting every 15 s, a bump per report had every open Cluster page load every node
    /// several times a second; the gauges and "last seen" are refreshed by the page's own timer.
    pub fn reported(
        &self,
        node_id: &str,
        reported: crate::db::Reported,
        inventory: &super::inventory::Inventory,
    ) {
        if reported == crate::db::Reported::NotAMember {
            return;
        }
        let digest = inventory.shown_digest();
        let new = {
            let mut shown = self.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            shown.insert(node_id.to_owned(), digest) != Some(digest)
        };
        if new || reported == crate::db::Reported::CameBack {
            self.changed();
        }
    }

    fn stop_tasks(&self) {
        if let Ok(mut g) = self.tasks.lock() {
            for t in g.drain(..) {
                t.abort();
            }
        }
    }

    fn read(&self, path: &std::path::Path, step: &str) -> Result<String, StepError> {
        std::fs::read_to_string(path)
            .map_err(|e| fail(step, format!("cannot read {}: {e}", path.display()), ""))
    }
}

fn write(path: &std::path::Path, text: &str, mode: u32, step: &str) -> Result<(), StepError> {
    cluster::write_atomic(path, text.as_bytes(), mode).map_err(|e| {
        fail(step, format!("cannot write {}: {e}", path.display()), "check the file system and permissions")
    })
}

fn docker(d: &Daemon, step: &str) -> Result<bollard::Docker, StepError> {
    d.docker().ok_or_else(|| {
        kind(
            fail(step, "dockerd is not reachable", "start Docker (`systemctl start docker`) and retry"),
            StepKind::Unavailable,
        )
    })
}

/// Where this host's Swarm membership stands.
struct SwarmView {
    state: LocalNodeState,
    manager: bool,
    node_id: String,
}

async fn swarm_view(docker: &bollard::Docker) -> Result<SwarmView, StepError> {
    let info = docker.info().await.map_err(|e| fail("swarm", format!("cannot ask dockerd: {e}"), ""))?;
    let s = info.swarm.unwrap_or_default();
    Ok(SwarmView {
        state: s.local_node_state.unwrap_or(LocalNodeState::INACTIVE),
        manager: s.control_available.unwrap_or(false),
        node_id: s.node_id.unwrap_or_default(),
    })
}

/// The address of this host that routes to `toward` (or to anywhere, for init).
fn detect_addr(toward: &str) -> Option<String> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect(toward).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then(|| ip.to_string())
}

fn check_ip(addr: &str, step: &str) -> Result<String, StepError> {
    addr.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).map_err(|_| {
        kind(
            fail(
                step,
                format!("`{addr}` is not an IP address"),
                "pass --advertise-addr with an IP address of this host",
            ),
            StepKind::BadRequest,
        )
    })
}

fn need_binary(path: &str, package: &str, step: &str) -> Result<(), StepError> {
    if std::path::Path::new(path).exists() {
        Ok(())
    } else {
        Err(fail(step, format!("{path} is missing"), format!("install it: `apt install {package}` (or dnf)")))
    }
}

async fn start_unit(d: &Daemon, unit: &str, step: &str, restart: bool) -> Result<(), StepError> {
    let outcome = if restart { d.systemd.restart(unit).await } else { d.systemd.start(unit).await };
    let outcome = outcome.map_err(|e| fail(step, format!("systemd could not start {unit}: {e}"), ""))?;
    if outcome.is_done() {
        Ok(())
    } else {
        Err(fail(
            step,
            format!("{unit} did not start (job result {})", outcome.result),
            format!("see `journalctl -u {unit}`"),
        ))
    }
}

fn trust_registry(registry: &str, ca_pem: &str, step: &str) -> Result<(), StepError> {
    let dir = std::path::Path::new(cluster::DOCKER_CERTS_DIR).join(registry);
    std::fs::create_dir_all(&dir).map_err(|e| {
        fail(
            step,
            format!("cannot create {}: {e}", dir.display()),
            "create it with `systemd-tmpfiles --create containerctl.conf` (the package does), then `systemctl restart containerctld`",
        )
    })?;
    write(&dir.join("ca.crt"), ca_pem, 0o644, step)
}

fn write_registry_auth(paths: &Paths, s: &State, step: &str) -> Result<(), StepError> {
    let auth = json!({"serveraddress": s.registry, "username": s.node_id, "password": s.credential});
    write(&paths.registry_auth(), &auth.to_string(), 0o600, step)
}

/// Refusal of init or join on a host that is already a member.
fn already_member(step: &str, s: &State) -> StepError {
    kind(
        fail(
            step,
            format!("this host is already a {} of cluster {}", s.role.as_str(), s.cluster_id),
            "run `containerctl cluster leave` first",
        ),
        StepKind::Conflict,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn progress_lines_carry_step_state_and_detail() {
        let (p, mut rx) = Progress::new();
        p.step("swarm", "done", "joined");
        let v = rx.try_recv().expect("a line");
        assert_eq!(v, json!({"step": "swarm", "state": "done", "detail": "joined"}));
    }

    #[test]
    fn step_kinds_serialise_as_the_api_names_them() {
        let names: Vec<Value> = [
            StepKind::Failed,
            StepKind::Conflict,
            StepKind::BadRequest,
            StepKind::Forbidden,
            StepKind::NotFound,
            StepKind::Unavailable,
        ]
        .iter()
        .map(|k| json!(k))
        .collect();
        assert_eq!(
            names,
            [
                json!("failed"),
                json!("conflict"),
                json!("bad_request"),
                json!("forbidden"),
                json!("not_found"),
                json!("unavailable")
            ]
        );
        let e = kind(fail("push", "denied", "use a token"), StepKind::Forbidden);
        assert_eq!(e.message_with_hint(), "denied; use a token");
        assert_eq!(fail("push", "denied", "").message_with_hint(), "denied");
    }
}
