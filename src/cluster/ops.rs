//! The cluster's operations as the daemon runs them: init, join, leave, remove, join tokens,
//! image push, and the background work (the cluster API listener, reporting, node supervision).
//!
//! Each multi-step operation reports its steps to a [`Progress`] as it goes; every step checks
//! what is there before changing it, so running an operation again after a failure continues
//! where it stopped. A failed step says what to do ([`StepError`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::models::{LocalNodeState, SwarmInitRequest, SwarmJoinRequest};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ca, gluster, registry, tls, token, Paths, Role, State};
use crate::daemon::Daemon;
use crate::db::{JoinTokenRecord, NodeRecord};
use crate::time::now_ms;

/// How long a manager waits for a joining host to show up in the Swarm before it rotates the
/// Swarm join token anyway.
const JOIN_WAIT: Duration = Duration::from_secs(120);
/// The registry unit Debian's docker-registry package ships and enables (on :5000).
const DEBIAN_REGISTRY_UNIT: &str = "docker-registry.service";

/// A step of a long operation, streamed to the caller as one JSON line.
#[derive(Clone)]
pub struct Progress(tokio::sync::mpsc::UnboundedSender<Value>);

impl Progress {
    pub fn new() -> (Progress, tokio::sync::mpsc::UnboundedReceiver<Value>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Progress(tx), rx)
    }

    /// `state` is `running`, `done`, `skipped` or `failed`.
    pub fn step(&self, step: &str, state: &str, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::info!("cluster: {step}: {state} {detail}");
        let _ = self.0.send(json!({"step": step, "state": state, "detail": detail}));
    }

    pub fn send(&self, v: Value) {
        let _ = self.0.send(v);
    }
}

/// A step that failed: what, why, and what to do.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct StepError {
    pub step: String,
    pub message: String,
    pub hint: String,
    /// HTTP-like kind for the API: `conflict`, `forbidden`, `unavailable`, `bad_request`, `failed`.
    pub kind: &'static str,
}

fn fail(step: &str, message: impl Into<String>, hint: impl Into<String>) -> StepError {
    StepError { step: step.into(), message: message.into(), hint: hint.into(), kind: "failed" }
}

fn kind(mut e: StepError, kind: &'static str) -> StepError {
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
    pub report_interval: Duration,
    /// Bumped when nodes or join tokens change (the web page's stream sends `event: cluster`).
    pub changes: tokio::sync::watch::Sender<u64>,
    api_running: std::sync::atomic::AtomicBool,
    reporter_running: std::sync::atomic::AtomicBool,
    /// The registry token signer, read from its key file once (primary manager only).
    signer: Mutex<Option<Arc<registry::TokenSigner>>>,
}

impl Cluster {
    pub fn load(state_dir: &std::path::Path, report_interval: Duration) -> Cluster {
        let paths = Paths::new(state_dir);
        let state = super::load_state(&paths).unwrap_or_else(|e| {
            tracing::error!("cluster state unreadable, acting as no member: {e}");
            None
        });
        Cluster {
            paths,
            state: Mutex::new(state),
            tasks: Mutex::new(Vec::new()),
            report_now: tokio::sync::Notify::new(),
            op_lock: tokio::sync::Mutex::new(()),
            report_interval,
            changes: tokio::sync::watch::channel(0).0,
            api_running: std::sync::atomic::AtomicBool::new(false),
            reporter_running: std::sync::atomic::AtomicBool::new(false),
            signer: Mutex::new(None),
        }
    }

    pub fn state(&self) -> Option<State> {
        self.state.lock().ok().and_then(|s| s.clone())
    }

    fn set_state(&self, s: Option<State>) {
        if let Ok(mut g) = self.state.lock() {
            *g = s;
        }
    }

    fn add_task(&self, t: tokio::task::JoinHandle<()>) {
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
            *cached = Some(Arc::new(registry::TokenSigner::from_pem(&key, super::REGISTRY_ISSUER).ok()?));
        }
        cached.clone()
    }

    /// Something the Cluster page shows changed.
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
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
    super::write_atomic(path, text.as_bytes(), mode).map_err(|e| {
        fail(step, format!("cannot write {}: {e}", path.display()), "check the file system and permissions")
    })
}

fn docker(d: &Daemon, step: &str) -> Result<bollard::Docker, StepError> {
    d.docker().ok_or_else(|| {
        kind(
            fail(step, "dockerd is not reachable", "start Docker (`systemctl start docker`) and retry"),
            "unavailable",
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
            "bad_request",
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

/// Mounts the shared volume now and for every boot: the mount unit's file goes to
/// /etc/containerctl/cluster (the generator installs it at boot and at every daemon-reload), and
/// the mount itself is started at once as a transient unit with the same settings, which needs no
/// daemon-reload (that alone takes longer than a whole Swarm join).
async fn mount_shared(d: &Daemon, servers: &[String], volume: &str, p: &Progress) -> Result<(), StepError> {
    let step = "shared volume";
    let root = crate::unit::Volume::SHARED_ROOT;
    need_binary("/usr/sbin/mount.glusterfs", "glusterfs-client", step)?;
    // systemd creates the mount point. The daemon does not touch it: its own mount namespace may
    // hold a stale copy of an earlier mount there.
    write(
        std::path::Path::new(super::MOUNT_UNIT_SOURCE),
        &gluster::mount_unit(servers, volume),
        0o644,
        step,
    )?;
    if super::inventory::shared().mounted {
        p.step(step, "skipped", format!("already mounted at {root}"));
        return Ok(());
    }
    p.step(step, "running", format!("mounting {volume} from {} at {root}", servers.join(",")));
    let (what, options) = gluster::mount_source(servers, volume);
    let spec = crate::systemd::MountSpec {
        description: format!("containerctl shared volume (GlusterFS {volume})"),
        what,
        where_: root.into(),
        fs_type: "glusterfs".into(),
        options,
        after: vec!["network-online.target".into()],
        wants: vec!["network-online.target".into()],
    };
    let hint = format!(
        "check `journalctl -u {}` and that {} is reachable (TCP 24007 and the brick ports)",
        super::MOUNT_UNIT,
        servers.join(",")
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // A unit loaded from a file (after a reload or a boot) is started as it is; otherwise
        // the mount is made a transient unit.
        let loaded = d.systemd.unit_state(super::MOUNT_UNIT).await.is_ok_and(|u| u.load_state == "loaded");
        let outcome = if loaded {
            d.systemd.start(super::MOUNT_UNIT).await
        } else {
            d.systemd.mount_transient(super::MOUNT_UNIT, &spec).await
        };
        let why = match outcome {
            Ok(o) if o.is_done() && super::inventory::shared().mounted => break,
            Ok(o) if o.is_done() => "the mount unit is active but nothing is mounted".to_owned(),
            Ok(o) => format!("the mount failed (job result {})", o.result),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(fail(step, why, hint));
        }
        // A brick that was just added or a volume just started can take a moment; a failed
        // transient unit must be cleared before it can be made again.
        let _ = d.systemd.reset_failed(super::MOUNT_UNIT).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    p.step(step, "done", format!("mounted at {root}"));
    Ok(())
}

async fn unmount_shared(d: &Daemon) {
    let _ = d.systemd.stop(super::MOUNT_UNIT).await;
    let _ = std::fs::remove_file(super::MOUNT_UNIT_SOURCE);
    let _ = d.systemd.reload().await;
}

fn trust_registry(registry: &str, ca_pem: &str, step: &str) -> Result<(), StepError> {
    let dir = std::path::Path::new(super::DOCKER_CERTS_DIR).join(registry);
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
        "conflict",
    )
}

/// `containerctl cluster init`.
pub async fn init(d: &Arc<Daemon>, advertise: Option<String>, p: &Progress) -> Result<State, StepError> {
    let c = &d.cluster;
    let _guard = c.op_lock.lock().await;
    let existing = c.state();
    if let Some(s) = existing.as_ref().filter(|s| !s.primary) {
        return Err(already_member("init", s));
    }
    let docker = docker(d, "swarm")?;
    let addr = match advertise.or_else(|| existing.as_ref().map(|s| s.addr.clone())) {
        Some(a) => check_ip(&a, "address")?,
        None => detect_addr("192.0.2.1:9").ok_or_else(|| {
            kind(
                fail(
                    "address",
                    "cannot tell this host's address",
                    "pass --advertise-addr with an IP address of this host",
                ),
                "bad_request",
            )
        })?,
    };
    p.step("address", "done", format!("advertising {addr}"));

    // 1. Swarm.
    let view = swarm_view(&docker).await?;
    match view.state {
        LocalNodeState::ACTIVE if view.manager => p.step("swarm", "skipped", "already a Swarm manager"),
        LocalNodeState::ACTIVE | LocalNodeState::PENDING | LocalNodeState::LOCKED => {
            return Err(kind(
                fail(
                    "swarm",
                    "this host is already in a Swarm and is not a manager of it",
                    "leave it first (`docker swarm leave`), or init on a manager",
                ),
                "conflict",
            ))
        }
        _ => {
            p.step("swarm", "running", "initialising Docker Swarm");
            let req = SwarmInitRequest {
                listen_addr: Some(format!("0.0.0.0:{}", super::SWARM_PORT)),
                advertise_addr: Some(format!("{addr}:{}", super::SWARM_PORT)),
                ..Default::default()
            };
            docker.init_swarm(req).await.map_err(|e| {
                fail(
                    "swarm",
                    format!("docker swarm init failed: {e}"),
                    "check that port 2377 is free and the address is this host's",
                )
            })?;
            p.step("swarm", "done", "Swarm initialised");
        }
    }
    let swarm_node_id = swarm_view(&docker).await.map(|v| v.node_id).unwrap_or_default();

    // 2. CA and server certificate.
    let paths = &c.paths;
    let cluster_id = existing.as_ref().map_or_else(|| super::new_id("c"), |s| s.cluster_id.clone());
    let ca_pair = if paths.ca_cert().exists() && paths.ca_key().exists() {
        p.step("ca", "skipped", "cluster CA exists");
        ca::Pair { cert_pem: c.read(&paths.ca_cert(), "ca")?, key_pem: c.read(&paths.ca_key(), "ca")? }
    } else {
        let pair = ca::create_ca(&cluster_id).map_err(|e| fail("ca", e.to_string(), ""))?;
        write(&paths.ca_key(), &pair.key_pem, 0o600, "ca")?;
        write(&paths.ca_cert(), &pair.cert_pem, 0o644, "ca")?;
        p.step("ca", "done", "cluster CA created");
        pair
    };
    let ca_digest = ca::digest_pem(&ca_pair.cert_pem).map_err(|e| fail("ca", e.to_string(), ""))?;
    let mut names = vec![addr.clone(), "127.0.0.1".into()];
    if ca::valid_dns_name(&super::hostname()) {
        names.push(super::hostname());
    }
    let server = ca::issue_server(&ca_pair, &names).map_err(|e| fail("ca", e.to_string(), ""))?;
    write(&paths.server_key(), &server.key_pem, 0o600, "ca")?;
    write(&paths.server_cert(), &format!("{}{}", server.cert_pem, ca_pair.cert_pem), 0o644, "ca")?;
    p.step("ca", "done", format!("server certificate for {}", names.join(", ")));

    let node_id = existing.as_ref().map_or_else(|| super::new_id("n"), |s| s.node_id.clone());
    let credential = existing
        .as_ref()
        .map_or_else(|| format!("{node_id}.{}", crate::digest::random_hex(32)), |s| s.credential.clone());
    let state = State {
        cluster_id: cluster_id.clone(),
        node_id: node_id.clone(),
        role: Role::Manager,
        primary: true,
        hostname: super::hostname(),
        addr: addr.clone(),
        manager_api: format!("{addr}:{}", super::API_PORT),
        registry: format!("{addr}:{}", super::REGISTRY_PORT),
        gluster_servers: existing.as_ref().map_or_else(|| vec![addr.clone()], |s| s.gluster_servers.clone()),
        volume: super::VOLUME.into(),
        ca_digest,
        credential: credential.clone(),
    };

    // 3. Cluster API.
    start_api(d, &state).await.map_err(|e| {
        fail("cluster api", e, format!("check that nothing else listens on {}", state.manager_api))
    })?;
    p.step("cluster api", "done", format!("serving https://{}/", state.manager_api));

    // 4. Registry.
    setup_registry(d, &state, &ca_pair.cert_pem, p).await?;

    // 5. Gluster volume.
    p.step("gluster", "running", format!("volume {} with a brick on {addr}", super::VOLUME));
    need_binary("/usr/sbin/gluster", "glusterfs-server", "gluster")?;
    start_unit(d, "glusterd.service", "gluster", false).await?;
    let brick = format!("{addr}:{}", paths.brick().display());
    match gluster::volume_info(super::VOLUME).await.map_err(|e| fail("gluster", e.to_string(), ""))? {
        Some(info) if info.started => p.step("gluster", "skipped", "volume exists and is started"),
        Some(_) => {
            gluster::start_volume(super::VOLUME).await.map_err(|e| fail("gluster", e.to_string(), ""))?;
            p.step("gluster", "done", "volume started");
        }
        None => {
            std::fs::create_dir_all(paths.brick())
                .map_err(|e| fail("gluster", format!("cannot create the brick directory: {e}"), ""))?;
            gluster::create_volume(super::VOLUME, &brick)
                .await
                .map_err(|e| fail("gluster", e.to_string(), ""))?;
            gluster::start_volume(super::VOLUME).await.map_err(|e| fail("gluster", e.to_string(), ""))?;
            p.step("gluster", "done", format!("volume {} created with brick {brick}", super::VOLUME));
        }
    }

    // 6. Mount.
    mount_shared(d, &state.gluster_servers, &state.volume, p).await?;

    // 7. Membership.
    super::save_state(paths, &state).map_err(|e| fail("state", e.to_string(), ""))?;
    write_registry_auth(paths, &state, "state")?;
    if d.db().node(&node_id).ok().flatten().is_none() {
        let rec = NodeRecord {
            id: node_id.clone(),
            hostname: state.hostname.clone(),
            addr: addr.clone(),
            role: "manager".into(),
            secret_sha256: crate::digest::sha256_hex(credential.as_bytes()),
            joined_at_ms: now_ms(),
            last_seen_ms: now_ms(),
            state: "up".into(),
            swarm_node_id: Some(swarm_node_id),
            inventory: "{}".into(),
        };
        d.db()
            .put_node(&rec, "joined", "initialised the cluster")
            .map_err(|e| fail("state", e.to_string(), ""))?;
    }
    c.set_state(Some(state.clone()));
    start_background(d);
    p.step(
        "cluster",
        "done",
        format!("cluster {cluster_id} ready; add hosts with `containerctl cluster token create`"),
    );
    Ok(state)
}

async fn setup_registry(d: &Arc<Daemon>, s: &State, ca_pem: &str, p: &Progress) -> Result<(), StepError> {
    let step = "registry";
    let paths = &d.cluster.paths;
    need_binary("/usr/bin/docker-registry", "docker-registry", step)?;
    if !paths.token_key().exists() {
        let (key_pem, cert_pem) =
            registry::TokenSigner::generate().map_err(|e| fail(step, e.to_string(), ""))?;
        write(&paths.token_key(), &key_pem, 0o600, step)?;
        write(&paths.token_cert(), &cert_pem, 0o644, step)?;
    }
    if !paths.push_secret().exists() {
        write(&paths.push_secret(), &crate::digest::random_hex(32), 0o600, step)?;
    }
    let storage = d.config.state_dir.join("registry");
    std::fs::create_dir_all(&storage)
        .map_err(|e| fail(step, format!("cannot create {}: {e}", storage.display()), ""))?;
    let cfg = registry::RegistryConfig {
        listen: s.registry.clone(),
        storage_dir: storage,
        tls_cert: Some(paths.server_cert()),
        tls_key: Some(paths.server_key()),
        realm: format!("https://{}/v2/token", s.manager_api),
        service: super::REGISTRY_SERVICE.into(),
        issuer: super::REGISTRY_ISSUER.into(),
        rootcertbundle: paths.token_cert(),
    };
    write(std::path::Path::new(super::REGISTRY_CONFIG), &registry::render_config(&cfg), 0o644, step)?;
    trust_registry(&s.registry, ca_pem, step)?;
    // Debian's docker-registry package enables a registry of its own on :5000, the web page's port.
    if d.systemd.unit_state(DEBIAN_REGISTRY_UNIT).await.is_ok_and(|u| u.active_state != "inactive") {
        let _ = d.systemd.stop(DEBIAN_REGISTRY_UNIT).await;
        p.step(step, "done", format!("stopped {DEBIAN_REGISTRY_UNIT} (containerctl runs its own on :5002)"));
    }
    let _ = d.systemd.disable(DEBIAN_REGISTRY_UNIT).await;
    d.systemd.reload().await.map_err(|e| fail(step, format!("daemon-reload failed: {e}"), ""))?;
    start_unit(d, super::REGISTRY_UNIT, step, true).await?;
    // Ready when it answers over TLS with the cluster CA (401: it wants a token).
    let client = tls::Client::with_ca(ca_pem).map_err(|e| fail(step, e.to_string(), ""))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.request(&s.registry, http::Method::GET, "/v2/", &[], None).await {
            Ok((401 | 200, _)) => break,
            other if tokio::time::Instant::now() >= deadline => {
                return Err(fail(
                    step,
                    format!("the registry does not answer on {}: {other:?}", s.registry),
                    format!("see `journalctl -u {}`", super::REGISTRY_UNIT),
                ))
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
    p.step(step, "done", format!("registry on https://{}/ (token auth by the cluster API)", s.registry));
    Ok(())
}

/// Starts the cluster API listener on the primary manager (once).
async fn start_api(d: &Arc<Daemon>, s: &State) -> Result<(), String> {
    if d.cluster.api_running.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    let paths = &d.cluster.paths;
    let chain = std::fs::read_to_string(paths.server_cert()).map_err(|e| e.to_string())?;
    let key = std::fs::read_to_string(paths.server_key()).map_err(|e| e.to_string())?;
    let cfg = tls::server_config(&chain, &key).map_err(|e| e.to_string())?;
    let ip: std::net::IpAddr = s.addr.parse().map_err(|_| format!("`{}` is not an IP address", s.addr))?;
    let listen = std::net::SocketAddr::new(ip, super::API_PORT);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let app = super::server::app(d.clone());
    d.cluster.add_task(tokio::spawn(tls::serve(listener, cfg, app)));
    d.cluster.api_running.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// Starts what a member runs in the background: the cluster API and supervision on the primary
/// manager, reporting on the others. Called at daemon start and after init/join.
pub fn start_background(d: &Arc<Daemon>) {
    let Some(s) = d.cluster.state() else { return };
    if s.primary {
        let d2 = d.clone();
        tokio::spawn(async move {
            if let Err(e) = start_api(&d2, &s).await {
                tracing::error!("cluster API not started: {e}");
            }
        });
        let d2 = d.clone();
        d.cluster.add_task(tokio::spawn(async move { supervise(d2).await }));
    }
    if !d.cluster.reporter_running.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let d2 = d.clone();
        d.cluster.add_task(tokio::spawn(async move { report_loop(d2).await }));
    }
}

/// Reports this node's inventory periodically and soon after changes.
async fn report_loop(d: Arc<Daemon>) {
    let mut changes = d.changes.subscribe();
    let interval = d.cluster.report_interval;
    // A change wakes the loop often (CPU samples count too); the inventory is collected and sent
    // before the interval is up only when the units' states changed, which is cheap to tell.
    let mut last: Option<(String, tokio::time::Instant)> = None;
    let mut client: Option<tls::Client> = None;
    let mut failing = false;
    while let Some(s) = d.cluster.state() {
        let key = serde_json::to_string(
            &d.list()
                .iter()
                .map(|u| (&u.name, &u.active_state, &u.sub_state, &u.version))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        let due = last.as_ref().is_none_or(|(k, at)| *k != key || at.elapsed() >= interval);
        if due {
            let inv = super::inventory::collect(&d).await;
            let body = serde_json::to_string(&inv).unwrap_or_default();
            if s.primary {
                let _ = d.db().node_report(&s.node_id, now_ms(), &body);
                d.cluster.changed();
            } else {
                match send_report(&d, &s, &mut client, body).await {
                    Ok(()) if failing => {
                        tracing::info!("cluster: reports reach {} again", s.manager_api);
                        failing = false;
                    }
                    Ok(()) => {}
                    // Said once, not at every interval while the manager is away.
                    Err(e) if !failing => {
                        tracing::warn!("cluster: report to {} failed (retrying quietly): {e}", s.manager_api);
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            last = Some((key, tokio::time::Instant::now()));
        }
        let wait = last.as_ref().map_or(interval, |(_, at)| interval.saturating_sub(at.elapsed()));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = d.cluster.report_now.notified() => { last = None; }
            r = changes.changed() => {
                if r.is_err() { break }
                // Let a burst of changes settle into one report.
                tokio::time::sleep(Duration::from_secs(1)).await;
                changes.mark_unchanged();
            }
        }
    }
    d.cluster.reporter_running.store(false, std::sync::atomic::Ordering::SeqCst);
}

/// Sends a report; the client (trusting the cluster CA) is made once and dropped after a failure.
async fn send_report(
    d: &Daemon,
    s: &State,
    client: &mut Option<tls::Client>,
    body: String,
) -> Result<(), String> {
    if client.is_none() {
        let ca = std::fs::read_to_string(d.cluster.paths.ca_cert()).map_err(|e| e.to_string())?;
        *client = Some(tls::Client::with_ca(&ca).map_err(|e| e.to_string())?);
    }
    let Some(c) = client.as_ref() else { return Err("no client".into()) };
    let auth = [("authorization", format!("Bearer {}", s.credential))];
    let result = match c
        .request(&s.manager_api, http::Method::POST, "/cluster/v1/report", &auth, Some(body.into_bytes()))
        .await
    {
        Ok((204 | 200, _)) => Ok(()),
        Ok((status, body)) => Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
        Err(e) => Err(e.to_string()),
    };
    if result.is_err() {
        *client = None;
    }
    result
}

/// On the primary manager: nodes whose Swarm node is down or who stopped reporting are `down`.
async fn supervise(d: Arc<Daemon>) {
    let interval = Duration::from_secs(2).max(d.cluster.report_interval / 3);
    loop {
        tokio::time::sleep(interval).await;
        let Some(me) = d.cluster.state() else { break };
        let swarm = match d.docker() {
            Some(docker) => docker.list_nodes(None).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let Ok(nodes) = d.db().nodes() else { continue };
        let now = now_ms();
        let stale_ms = i64::try_from(d.cluster.report_interval.as_millis() * 3).unwrap_or(i64::MAX);
        for n in nodes {
            if n.state == "left" || n.state == "removed" || n.id == me.node_id {
                continue;
            }
            let swarm_node = swarm.iter().find(|s| {
                n.swarm_node_id.as_deref().is_some_and(|id| s.id.as_deref() == Some(id))
                    || s.status.as_ref().and_then(|st| st.addr.as_deref()) == Some(n.addr.as_str())
            });
            if let (None, Some(sn)) = (&n.swarm_node_id, swarm_node) {
                if let Some(id) = &sn.id {
                    let _ = d.db().set_node_swarm_id(&n.id, id);
                }
            }
            let swarm_down = swarm_node
                .and_then(|sn| sn.status.as_ref())
                .and_then(|st| st.state)
                .is_some_and(|st| st == bollard::models::NodeState::DOWN);
            let silent = now - n.last_seen_ms > stale_ms;
            if n.state == "up" && (swarm_down || silent) {
                let why = if swarm_down {
                    "Docker Swarm reports the node down".to_owned()
                } else {
                    format!("no report for {}s", (now - n.last_seen_ms) / 1000)
                };
                if d.db().set_node_state(&n.id, "down", now, &why).unwrap_or(false) {
                    tracing::warn!("cluster: node {} ({}) is down: {why}", n.hostname, n.id);
                    d.cluster.changed();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Join tokens (manager).

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_host_names_are_cleaned() {
        assert_eq!(clean_hostname("web-1.example"), "web-1.example");
        assert_eq!(clean_hostname("\u{1b}[31mevil\u{1b}[0m<b>"), "31mevil0mb");
        assert_eq!(clean_hostname(""), "unnamed");
        assert_eq!(clean_hostname(&"a".repeat(100)).len(), 64);
    }

    #[test]
    fn progress_lines_carry_step_state_and_detail() {
        let (p, mut rx) = Progress::new();
        p.step("swarm", "done", "joined");
        let v = rx.try_recv().expect("a line");
        assert_eq!(v, json!({"step": "swarm", "state": "done", "detail": "joined"}));
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub role: Role,
    pub expires_at_ms: i64,
    pub uses: u32,
}

pub fn create_token(d: &Daemon, role: Role, ttl_ms: i64, uses: u32) -> Result<CreatedToken, StepError> {
    let step = "token";
    let s = d.cluster.state().filter(|s| s.primary).ok_or_else(|| {
        kind(
            fail(
                step,
                "this host is not the cluster's manager",
                "run it on the host where you ran `containerctl cluster init`",
            ),
            "conflict",
        )
    })?;
    if !(1..=100).contains(&uses) {
        return Err(kind(fail(step, format!("uses must be 1 to 100, not {uses}"), ""), "bad_request"));
    }
    if !(5_000..=7 * 24 * 3_600_000).contains(&ttl_ms) {
        return Err(kind(
            fail(
                step,
                "ttl must be between 5s and 7d",
                "short-lived tokens are the point: 15m is the default",
            ),
            "bad_request",
        ));
    }
    let t = token::JoinToken {
        managers: vec![s.manager_api.clone()],
        ca_digest: s.ca_digest.clone(),
        id: super::new_id("jt"),
        secret: crate::digest::random_hex(32),
    };
    let now = now_ms();
    let rec = JoinTokenRecord {
        id: t.id.clone(),
        secret_sha256: token::JoinToken::secret_hash(&t.secret),
        role: role.as_str().into(),
        created_at_ms: now,
        expires_at_ms: now + ttl_ms,
        uses,
        used: 0,
        revoked: false,
    };
    d.db().insert_join_token(&rec).map_err(|e| fail(step, e.to_string(), ""))?;
    d.cluster.changed();
    Ok(CreatedToken { id: t.id.clone(), token: t.encode(), role, expires_at_ms: rec.expires_at_ms, uses })
}

// ---------------------------------------------------------------------------------------------
// Join (the joining host).

/// What the manager hands a host that presents a valid join token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinBundle {
    pub cluster_id: String,
    pub node_id: String,
    pub credential: String,
    pub role: Role,
    pub swarm_token: String,
    pub swarm_managers: Vec<String>,
    pub ca_pem: String,
    pub registry: String,
    pub manager_api: String,
    pub gluster_servers: Vec<String>,
    pub volume: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token_id: String,
    pub secret: String,
    pub hostname: String,
    pub addr: String,
}

/// `containerctl cluster join TOKEN`.
pub async fn join(
    d: &Arc<Daemon>,
    text: &str,
    advertise: Option<String>,
    p: &Progress,
) -> Result<State, StepError> {
    let c = &d.cluster;
    let _guard = c.op_lock.lock().await;
    let t =
        token::JoinToken::decode(text).map_err(|e| kind(fail("token", e.to_string(), ""), "bad_request"))?;
    if let Some(s) = c.state() {
        return Err(already_member("join", &s));
    }
    let docker = docker(d, "swarm")?;
    let view = swarm_view(&docker).await?;
    if view.state != LocalNodeState::INACTIVE && view.state != LocalNodeState::EMPTY {
        return Err(kind(
            fail(
                "swarm",
                format!("this host is already in a Docker Swarm (node {})", view.node_id),
                "leave it first with `docker swarm leave` (a manager needs --force), then join again",
            ),
            "conflict",
        ));
    }

    // Exchange the token, trusting only the pinned CA.
    let client = tls::Client::pinned(&t.ca_digest).map_err(|e| fail("manager", e.to_string(), ""))?;
    let mut last_err = None;
    let mut bundle = None;
    for m in &t.managers {
        p.step("manager", "running", format!("contacting {m} (CA {})", &t.ca_digest[..19]));
        let addr = match &advertise {
            Some(a) => check_ip(a, "address")?,
            None => detect_addr(m)
                .ok_or_else(|| fail("address", "cannot tell this host's address", "pass --advertise-addr"))?,
        };
        let req = JoinRequest {
            token_id: t.id.clone(),
            secret: t.secret.clone(),
            hostname: super::hostname(),
            addr,
        };
        let body = serde_json::to_vec(&req).unwrap_or_default();
        match client.request(m, http::Method::POST, "/cluster/v1/join", &[], Some(body)).await {
            Ok((200, body)) => {
                bundle = Some((
                    serde_json::from_slice::<JoinBundle>(&body)
                        .map_err(|e| fail("manager", format!("unexpected answer from {m}: {e}"), ""))?,
                    req.addr,
                ));
                break;
            }
            Ok((status, body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                let msg = v["error"]["message"].as_str().unwrap_or("refused").to_owned();
                return Err(kind(
                    fail(
                        "token",
                        msg,
                        "ask the manager's admin for a new token (`containerctl cluster token create`)",
                    ),
                    if status == 403 || status == 401 { "forbidden" } else { "failed" },
                ));
            }
            Err(e @ tls::TlsError::CaMismatch { .. }) => {
                return Err(kind(fail("manager", e.to_string(), ""), "forbidden"));
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((b, addr)) = bundle else {
        let e = last_err.map(|e| e.to_string()).unwrap_or_default();
        return Err(kind(
            fail("manager", e, "check the manager's address and that TCP 5001 is reachable from this host"),
            "unavailable",
        ));
    };
    p.step(
        "manager",
        "done",
        format!("accepted into cluster {} as {} ({})", b.cluster_id, b.role.as_str(), b.node_id),
    );

    // CA and registry trust.
    let paths = &c.paths;
    write(&paths.ca_cert(), &b.ca_pem, 0o644, "trust")?;
    trust_registry(&b.registry, &b.ca_pem, "trust")?;
    p.step("trust", "done", format!("registry {} trusted through {}", b.registry, super::DOCKER_CERTS_DIR));

    // Swarm and the shared volume at the same time: neither needs the other.
    p.step("swarm", "running", format!("joining the Swarm at {}", b.swarm_managers.join(",")));
    let req = SwarmJoinRequest {
        listen_addr: Some(format!("0.0.0.0:{}", super::SWARM_PORT)),
        advertise_addr: Some(format!("{addr}:{}", super::SWARM_PORT)),
        remote_addrs: Some(b.swarm_managers.clone()),
        join_token: Some(b.swarm_token.clone()),
        ..Default::default()
    };
    let swarm = async {
        docker.join_swarm(req).await.map_err(|e| {
            fail(
                "swarm",
                format!("docker swarm join failed: {e}"),
                "check that TCP 2377, TCP/UDP 7946 and UDP 4789 are open between the hosts",
            )
        })?;
        p.step("swarm", "done", format!("joined as {}", b.role.as_str()));
        Ok::<(), StepError>(())
    };
    // A manager's brick must be in the volume before it mounts (so its replica fills from the
    // start); a worker only mounts.
    let shared = async {
        if b.role == Role::Manager {
            add_own_brick(d, &b, p).await?;
        }
        mount_shared(d, &b.gluster_servers, &b.volume, p).await
    };
    let (swarm, shared) = tokio::join!(swarm, shared);
    let state = State {
        cluster_id: b.cluster_id.clone(),
        node_id: b.node_id.clone(),
        role: b.role,
        primary: false,
        hostname: super::hostname(),
        addr,
        manager_api: b.manager_api.clone(),
        registry: b.registry.clone(),
        gluster_servers: b.gluster_servers.clone(),
        volume: b.volume.clone(),
        ca_digest: t.ca_digest.clone(),
        credential: b.credential.clone(),
    };
    // The host is a member as soon as it is in the Swarm: save it so that `leave` can undo the
    // rest if the shared volume failed (and `join` is not run twice).
    if swarm.is_ok() {
        super::save_state(paths, &state).map_err(|e| fail("state", e.to_string(), ""))?;
        write_registry_auth(paths, &state, "state")?;
        c.set_state(Some(state.clone()));
    }
    swarm?;
    shared?;
    start_background(d);
    c.report_now.notify_one();
    p.step("cluster", "done", format!("joined cluster {} as {}", state.cluster_id, state.role.as_str()));
    Ok(state)
}

/// A manager-role member adds a brick of its own to the volume (the primary probes it).
async fn add_own_brick(d: &Arc<Daemon>, b: &JoinBundle, p: &Progress) -> Result<(), StepError> {
    let step = "gluster";
    need_binary("/usr/sbin/gluster", "glusterfs-server", step)?;
    start_unit(d, "glusterd.service", step, false).await?;
    std::fs::create_dir_all(d.cluster.paths.brick())
        .map_err(|e| fail(step, format!("cannot create the brick directory: {e}"), ""))?;
    p.step(step, "running", "asking the manager to add this host's brick");
    let client = tls::Client::with_ca(&d.cluster.read(&d.cluster.paths.ca_cert(), step)?)
        .map_err(|e| fail(step, e.to_string(), ""))?;
    let auth = [("authorization", format!("Bearer {}", b.credential))];
    match client
        .request(&b.manager_api, http::Method::POST, "/cluster/v1/brick", &auth, Some(b"{}".to_vec()))
        .await
    {
        Ok((200 | 204, _)) => {
            p.step(step, "done", "brick added: this host keeps a replica of the shared volume");
            Ok(())
        }
        Ok((_, body)) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            Err(fail(
                step,
                v["error"]["message"].as_str().unwrap_or("refused").to_owned(),
                "see the manager's journal",
            ))
        }
        Err(e) => Err(fail(step, e.to_string(), "")),
    }
}

// ---------------------------------------------------------------------------------------------
// Leave and remove.

/// `containerctl cluster leave` on a member that is not the primary manager.
pub async fn leave(d: &Arc<Daemon>, p: &Progress) -> Result<(), StepError> {
    let c = &d.cluster;
    let _guard = c.op_lock.lock().await;
    let Some(s) = c.state() else {
        return Err(kind(fail("leave", "this host is not in a cluster", ""), "conflict"));
    };
    if s.primary {
        return teardown(d, &s, p).await;
    }
    // Tell the manager first (it removes this host's brick and Swarm node); go on if it is gone.
    let ca = std::fs::read_to_string(c.paths.ca_cert()).unwrap_or_default();
    match tls::Client::with_ca(&ca) {
        Ok(client) => {
            let auth = [("authorization", format!("Bearer {}", s.credential))];
            match client
                .request(&s.manager_api, http::Method::POST, "/cluster/v1/leave", &auth, Some(b"{}".to_vec()))
                .await
            {
                Ok((200 | 204, _)) => p.step("manager", "done", "the manager removed this node"),
                Ok((status, _)) => {
                    p.step("manager", "skipped", format!("the manager answered {status}; leaving anyway"))
                }
                Err(e) => p.step(
                    "manager",
                    "skipped",
                    format!("{e}; leaving anyway (remove the node on the manager)"),
                ),
            }
        }
        Err(e) => p.step("manager", "skipped", e.to_string()),
    }
    c.stop_tasks();
    c.reporter_running.store(false, std::sync::atomic::Ordering::SeqCst);
    c.api_running.store(false, std::sync::atomic::Ordering::SeqCst);
    unmount_shared(d).await;
    p.step("shared volume", "done", "unmounted");
    if let Some(docker) = d.docker() {
        let opts =
            bollard::query_parameters::LeaveSwarmOptionsBuilder::new().force(s.role == Role::Manager).build();
        match docker.leave_swarm(Some(opts)).await {
            Ok(()) => p.step("swarm", "done", "left the Swarm"),
            Err(e) => p.step("swarm", "skipped", format!("{e}")),
        }
    }
    let _ = std::fs::remove_dir_all(std::path::Path::new(super::DOCKER_CERTS_DIR).join(&s.registry));
    for f in [c.paths.state(), c.paths.registry_auth(), c.paths.ca_cert()] {
        let _ = std::fs::remove_file(f);
    }
    c.set_state(None);
    p.step("cluster", "done", format!("left cluster {}", s.cluster_id));
    Ok(())
}

/// `cluster leave` on the first manager once it is the only member: the cluster is taken down.
/// The registry's images and the brick's files stay on disk (the brick directory is renamed, so a
/// later `cluster init` starts a new volume); the CA is kept and reused by a later init.
async fn teardown(d: &Arc<Daemon>, s: &State, p: &Progress) -> Result<(), StepError> {
    let c = &d.cluster;
    let nodes = d.db().nodes().map_err(|e| fail("leave", e.to_string(), ""))?;
    let others: Vec<String> = nodes
        .iter()
        .filter(|n| n.id != s.node_id && n.state != "left" && n.state != "removed")
        .map(|n| n.hostname.clone())
        .collect();
    if !others.is_empty() {
        return Err(kind(
            fail(
                "leave",
                format!(
                    "this host is the cluster's first manager and {} still member(s): {}",
                    others.len(),
                    others.join(", ")
                ),
                "have them leave (`containerctl cluster leave` there) or remove them (`containerctl cluster remove NODE`) first",
            ),
            "conflict",
        ));
    }
    c.stop_tasks();
    c.reporter_running.store(false, std::sync::atomic::Ordering::SeqCst);
    c.api_running.store(false, std::sync::atomic::Ordering::SeqCst);
    p.step("cluster api", "done", "stopped");
    unmount_shared(d).await;
    p.step("shared volume", "done", "unmounted");
    let _ = d.systemd.stop(super::REGISTRY_UNIT).await;
    let _ = std::fs::remove_file(super::REGISTRY_CONFIG);
    let _ = d.systemd.reload().await;
    p.step(
        "registry",
        "done",
        format!("stopped; its images stay in {}", d.config.state_dir.join("registry").display()),
    );
    match gluster::delete_volume(&s.volume).await {
        Ok(()) => {
            let kept = c.paths.dir.join(format!("brick-left-{}", now_ms()));
            let _ = std::fs::rename(c.paths.brick(), &kept);
            p.step(
                "gluster",
                "done",
                format!("volume {} deleted; its files stay in {}", s.volume, kept.display()),
            );
        }
        Err(e) => p.step("gluster", "skipped", e.to_string()),
    }
    if let Some(docker) = d.docker() {
        let opts = bollard::query_parameters::LeaveSwarmOptionsBuilder::new().force(true).build();
        match docker.leave_swarm(Some(opts)).await {
            Ok(()) => p.step("swarm", "done", "left the Swarm (it is gone)"),
            Err(e) => p.step("swarm", "skipped", e.to_string()),
        }
    }
    let _ = std::fs::remove_dir_all(std::path::Path::new(super::DOCKER_CERTS_DIR).join(&s.registry));
    for f in [c.paths.state(), c.paths.registry_auth()] {
        let _ = std::fs::remove_file(f);
    }
    let _ = d.db().set_node_state(&s.node_id, "left", now_ms(), "the cluster was taken down");
    c.set_state(None);
    d.cluster.changed();
    p.step("cluster", "done", format!("cluster {} taken down", s.cluster_id));
    Ok(())
}

/// On the primary manager: forget node `id` (by id or host name) and take it out of the Swarm
/// and the Gluster volume.
pub async fn remove_node(d: &Arc<Daemon>, id_or_host: &str, why: &str) -> Result<NodeRecord, StepError> {
    let step = "remove";
    let s = d
        .cluster
        .state()
        .filter(|s| s.primary)
        .ok_or_else(|| kind(fail(step, "this host is not the cluster's manager", ""), "conflict"))?;
    let nodes = d.db().nodes().map_err(|e| fail(step, e.to_string(), ""))?;
    let n = nodes.into_iter().find(|n| n.id == id_or_host || n.hostname == id_or_host).ok_or_else(|| {
        kind(fail(step, format!("no node {id_or_host}"), "see `containerctl cluster nodes`"), "not_found")
    })?;
    if n.id == s.node_id {
        return Err(kind(fail(step, "the manager cannot remove itself", ""), "conflict"));
    }
    let now = now_ms();
    let final_state = if why == "left" { "left" } else { "removed" };
    d.db().set_node_state(&n.id, final_state, now, why).map_err(|e| fail(step, e.to_string(), ""))?;
    if n.role == "manager" {
        let brick = format!("{}:{}", n.addr, d.cluster.paths.brick().display());
        if let Ok(Some(info)) = gluster::volume_info(super::VOLUME).await {
            if info.bricks.contains(&brick) {
                let replica = info.replica.saturating_sub(1).max(1);
                if let Err(e) = gluster::remove_brick(super::VOLUME, &brick, replica).await {
                    tracing::warn!("cluster: removing brick {brick}: {e}");
                }
            }
        }
        if let Err(e) = gluster::peer_detach(&n.addr).await {
            tracing::warn!("cluster: gluster peer detach {}: {e}", n.addr);
        }
    }
    // A manager is demoted first (Docker refuses to remove a raft member, and a manager leaving
    // on its own could cost the Swarm its quorum); the Swarm node goes once it is down (a node
    // that left is, within seconds). A node that leaves right after joining may not have its
    // Swarm id recorded yet: it is found by its address.
    if let Some(docker) = d.docker() {
        let addr = n.addr.clone();
        let recorded = n.swarm_node_id.clone();
        let swarm_id = match recorded.clone() {
            Some(id) => Some(id),
            None => swarm_id_by_addr(&docker, &addr).await,
        };
        if n.role == "manager" {
            if let Some(id) = &swarm_id {
                if let Err(e) = demote(&docker, id).await {
                    tracing::warn!("cluster: demoting Swarm node {id}: {e}");
                }
            }
        }
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let id = match &swarm_id {
                    Some(id) => Some(id.clone()),
                    None => swarm_id_by_addr(&docker, &addr).await,
                };
                let Some(id) = id else { break };
                let opts = bollard::query_parameters::DeleteNodeOptionsBuilder::new().force(true).build();
                match docker.delete_node(&id, Some(opts)).await {
                    Ok(()) => break,
                    Err(e) if tokio::time::Instant::now() > deadline => {
                        tracing::warn!("cluster: could not remove Swarm node {id}: {e}");
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        });
    }
    d.cluster.changed();
    Ok(n)
}

async fn swarm_id_by_addr(docker: &bollard::Docker, addr: &str) -> Option<String> {
    let nodes = docker.list_nodes(None).await.ok()?;
    nodes
        .into_iter()
        .find(|n| n.status.as_ref().and_then(|s| s.addr.as_deref()) == Some(addr))
        .and_then(|n| n.id)
}

async fn demote(docker: &bollard::Docker, swarm_id: &str) -> Result<(), bollard::errors::Error> {
    let node = docker.inspect_node(swarm_id).await?;
    let version = node.version.and_then(|v| v.index).unwrap_or(0);
    let mut spec = node.spec.unwrap_or_default();
    if spec.role == Some(bollard::models::NodeSpecRoleEnum::WORKER) {
        return Ok(());
    }
    spec.role = Some(bollard::models::NodeSpecRoleEnum::WORKER);
    let opts = bollard::query_parameters::UpdateNodeOptionsBuilder::default()
        .version(i64::try_from(version).unwrap_or(0))
        .build();
    docker.update_node(swarm_id, spec, opts).await
}

// ---------------------------------------------------------------------------------------------
// Manager side of a join (called by the cluster API).

pub async fn admit(
    d: &Arc<Daemon>,
    req: JoinRequest,
) -> Result<JoinBundle, Result<token::Refusal, StepError>> {
    let s = d.cluster.state().filter(|s| s.primary).ok_or(Err(fail("join", "not the manager", "")))?;
    let addr = check_ip(&req.addr, "join").map_err(Err)?;
    let verdict = d
        .db()
        .consume_join_token(&req.token_id, &token::JoinToken::secret_hash(&req.secret), now_ms())
        .map_err(|e| Err(fail("join", e.to_string(), "")))?;
    let rec = verdict.map_err(Ok)?;
    let role = Role::parse(&rec.role).unwrap_or(Role::Worker);
    let docker = docker(d, "join").map_err(Err)?;
    let swarm = docker.inspect_swarm().await.map_err(|e| Err(fail("join", e.to_string(), "")))?;
    let tokens = swarm.join_tokens.unwrap_or_default();
    let swarm_token = match role {
        Role::Manager => tokens.manager,
        Role::Worker => tokens.worker,
    }
    .unwrap_or_default();
    let node_id = super::new_id("n");
    let credential = format!("{node_id}.{}", crate::digest::random_hex(32));
    let now = now_ms();
    let node = NodeRecord {
        id: node_id.clone(),
        hostname: clean_hostname(&req.hostname),
        addr: addr.clone(),
        role: role.as_str().into(),
        secret_sha256: crate::digest::sha256_hex(credential.as_bytes()),
        joined_at_ms: now,
        last_seen_ms: now,
        state: "up".into(),
        swarm_node_id: None,
        inventory: "{}".into(),
    };
    d.db()
        .put_node(&node, "joined", &format!("joined as {} with token {}", role.as_str(), rec.id))
        .map_err(|e| Err(fail("join", e.to_string(), "")))?;
    let ca_pem = std::fs::read_to_string(d.cluster.paths.ca_cert())
        .map_err(|e| Err(fail("join", e.to_string(), "")))?;
    // Once the host is in the Swarm (or after a deadline), the Swarm join token it was given is
    // rotated, so a copy of it is worthless.
    let d2 = d.clone();
    let addr2 = addr.clone();
    let nid = node_id.clone();
    tokio::spawn(async move { rotate_after_join(d2, nid, addr2, role).await });
    d.cluster.changed();
    Ok(JoinBundle {
        cluster_id: s.cluster_id.clone(),
        node_id,
        credential,
        role,
        swarm_token,
        swarm_managers: vec![format!("{}:{}", s.addr, super::SWARM_PORT)],
        ca_pem,
        registry: s.registry.clone(),
        manager_api: s.manager_api.clone(),
        gluster_servers: s.gluster_servers.clone(),
        volume: s.volume.clone(),
    })
}

/// A host name as a joining host claims it, reduced to what a host name may contain, so that it
/// is safe to print in a terminal and to show in the web page.
fn clean_hostname(claimed: &str) -> String {
    let clean: String = claimed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "unnamed".into()
    } else {
        clean
    }
}

async fn rotate_after_join(d: Arc<Daemon>, node_id: String, addr: String, role: Role) {
    let Some(docker) = d.docker() else { return };
    let deadline = tokio::time::Instant::now() + JOIN_WAIT;
    while tokio::time::Instant::now() < deadline {
        let nodes = docker.list_nodes(None).await.unwrap_or_default();
        let found = nodes.iter().find(|n| {
            n.status.as_ref().and_then(|s| s.addr.as_deref()) == Some(addr.as_str())
                && n.status.as_ref().and_then(|s| s.state) == Some(bollard::models::NodeState::READY)
        });
        if let Some(id) = found.and_then(|n| n.id.clone()) {
            let _ = d.db().set_node_swarm_id(&node_id, &id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Err(e) = rotate_swarm_token(&docker, role).await {
        tracing::error!("cluster: rotating the Swarm {} join token failed: {e}", role.as_str());
    } else {
        tracing::info!("cluster: rotated the Swarm {} join token after {node_id} joined", role.as_str());
    }
}

async fn rotate_swarm_token(docker: &bollard::Docker, role: Role) -> Result<(), bollard::errors::Error> {
    let swarm = docker.inspect_swarm().await?;
    let version = swarm.version.and_then(|v| v.index).unwrap_or(0);
    let spec = swarm.spec.unwrap_or_default();
    let opts = bollard::query_parameters::UpdateSwarmOptionsBuilder::new()
        .version(i64::try_from(version).unwrap_or(0))
        .rotate_worker_token(role == Role::Worker)
        .rotate_manager_token(role == Role::Manager)
        .build();
    docker.update_swarm(spec, opts).await
}

/// The node a cluster API request authenticates as (`Bearer ID.SECRET`).
pub fn authenticate_node(d: &Daemon, credential: &str) -> Option<NodeRecord> {
    let (id, _) = credential.split_once('.')?;
    let n = d.db().node(id).ok().flatten()?;
    let ok = crate::digest::sha256_hex(credential.as_bytes()) == n.secret_sha256;
    (ok && n.state != "removed" && n.state != "left").then_some(n)
}

/// On the primary: add a manager-role member's brick (peer probe, then add-brick).
pub async fn add_brick_for(d: &Daemon, n: &NodeRecord) -> Result<(), StepError> {
    let step = "gluster";
    if n.role != "manager" {
        return Err(kind(fail(step, "only managers keep a brick", ""), "forbidden"));
    }
    gluster::peer_probe(&n.addr).await.map_err(|e| fail(step, e.to_string(), ""))?;
    gluster::wait_peer_in_cluster(&n.addr, Duration::from_secs(30))
        .await
        .map_err(|e| fail(step, e.to_string(), ""))?;
    let brick = format!("{}:{}", n.addr, d.cluster.paths.brick().display());
    let info = gluster::volume_info(super::VOLUME).await.map_err(|e| fail(step, e.to_string(), ""))?;
    let info = info.ok_or_else(|| {
        fail(step, "the shared volume does not exist", "run `containerctl cluster init` again")
    })?;
    if !info.bricks.contains(&brick) {
        gluster::add_brick(super::VOLUME, &brick, info.replica.max(1) + 1)
            .await
            .map_err(|e| fail(step, e.to_string(), ""))?;
    }
    if let Some(mut s) = d.cluster.state() {
        if !s.gluster_servers.contains(&n.addr) {
            s.gluster_servers.push(n.addr.clone());
            let _ = super::save_state(&d.cluster.paths, &s);
            d.cluster.set_state(Some(s));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Registry.

/// What the registry's token endpoint grants a Basic credential: `Some(true)` push and pull,
/// `Some(false)` pull only, `None` nothing.
pub fn registry_grant(d: &Daemon, user: &str, password: &str) -> Option<(String, bool)> {
    let paths = &d.cluster.paths;
    if user == "containerctld" {
        let secret = std::fs::read_to_string(paths.push_secret()).ok()?;
        let ok = !secret.is_empty()
            && crate::digest::sha256_hex(secret.trim().as_bytes())
                == crate::digest::sha256_hex(password.as_bytes());
        return ok.then(|| ("containerctld".to_owned(), true));
    }
    if password.starts_with("n-") {
        return authenticate_node(d, password).map(|n| (format!("node {}", n.hostname), false));
    }
    let claims = d.auth.verify(password).ok()?;
    Some((format!("token {}", claims.sub), claims.role >= crate::policy::Role::Operator))
}

/// Images in the cluster registry with their tags (primary manager only).
pub async fn registry_images(d: &Daemon) -> Option<Vec<Value>> {
    let s = d.cluster.state().filter(|s| s.primary)?;
    let ca = std::fs::read_to_string(d.cluster.paths.ca_cert()).ok()?;
    let client = tls::Client::with_ca(&ca).ok()?;
    let signer = d.cluster.signer()?;
    let bearer = |access: registry::Access| {
        let tok = signer.issue("containerctld", super::REGISTRY_SERVICE, &[access], 60).ok()?;
        Some([("authorization", format!("Bearer {tok}"))])
    };
    let catalog =
        registry::Access { kind: "registry".into(), name: "catalog".into(), actions: vec!["*".into()] };
    let auth = bearer(catalog)?;
    let (status, body) =
        client.request(&s.registry, http::Method::GET, "/v2/_catalog?n=1000", &auth, None).await.ok()?;
    if status != 200 {
        return None;
    }
    let repos: Vec<String> = serde_json::from_slice::<Value>(&body)
        .ok()?
        .get("repositories")?
        .as_array()?
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    let mut out = Vec::new();
    for r in repos {
        let pull =
            registry::Access { kind: "repository".into(), name: r.clone(), actions: vec!["pull".into()] };
        let Some(auth) = bearer(pull) else { continue };
        let tags = match client
            .request(&s.registry, http::Method::GET, &format!("/v2/{r}/tags/list"), &auth, None)
            .await
        {
            Ok((200, body)) => {
                serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("tags").cloned())
            }
            _ => None,
        };
        out.push(json!({"name": r, "tags": tags.unwrap_or(json!([]))}));
    }
    Some(out)
}

/// `containerctl image push IMAGE:TAG`: tags the local image into the cluster registry and
/// pushes it, streaming Docker's progress. `token` is an operator token of the manager, needed
/// when pushing from another host.
pub async fn push(d: &Daemon, image: &str, token: Option<String>, p: &Progress) -> Result<String, StepError> {
    let step = "push";
    let s = d.cluster.state().ok_or_else(|| {
        kind(
            fail(
                step,
                "this host is not in a cluster",
                "run `containerctl cluster init` or `cluster join` first",
            ),
            "conflict",
        )
    })?;
    let (repo, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') && !r.is_empty() && !t.is_empty() => (r, t),
        _ => {
            return Err(kind(
                fail(step, format!("`{image}` has no tag"), "name the image as NAME:TAG, e.g. myapp:1.2"),
                "bad_request",
            ))
        }
    };
    let plain = repo.strip_prefix(&format!("{}/", s.registry)).unwrap_or(repo);
    if plain.split('/').next().is_some_and(|first| first.contains(':') || first.contains('.')) {
        return Err(kind(
            fail(
                step,
                format!("`{repo}` names another registry"),
                "push images by their local name, e.g. myapp:1.2",
            ),
            "bad_request",
        ));
    }
    let credentials = match (s.primary, token) {
        (_, Some(t)) => bollard::auth::DockerCredentials {
            username: Some("token".into()),
            password: Some(t),
            serveraddress: Some(s.registry.clone()),
            ..Default::default()
        },
        (true, None) => bollard::auth::DockerCredentials {
            username: Some("containerctld".into()),
            password: Some(std::fs::read_to_string(d.cluster.paths.push_secret()).map(|s| s.trim().to_owned()).map_err(|e| fail(step, e.to_string(), ""))?),
            serveraddress: Some(s.registry.clone()),
            ..Default::default()
        },
        (false, None) => {
            return Err(kind(
                fail(
                    step,
                    "pushing from a host other than the manager needs an operator token of the manager",
                    "create one on the manager (`containerctl token create --role operator`) and pass it with --token",
                ),
                "forbidden",
            ))
        }
    };
    let docker = docker(d, step)?;
    let target = format!("{}/{plain}", s.registry);
    docker.inspect_image(image).await.map_err(|_| {
        kind(
            fail(
                step,
                format!("there is no local image {image}"),
                "build or load it first (`docker images`)",
            ),
            "not_found",
        )
    })?;
    let opts = bollard::query_parameters::TagImageOptionsBuilder::new().repo(&target).tag(tag).build();
    docker
        .tag_image(image, Some(opts))
        .await
        .map_err(|e| fail(step, format!("docker tag failed: {e}"), ""))?;
    p.step(step, "running", format!("pushing {image} as {target}:{tag}"));
    let opts = bollard::query_parameters::PushImageOptionsBuilder::new().tag(tag).build();
    let mut stream = docker.push_image(&target, Some(opts), Some(credentials));
    let mut digest = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|e| e.message) {
                    return Err(push_error(&e));
                }
                let status = info.status.unwrap_or_default();
                if let Some(dg) = status.split_whitespace().find(|w| w.starts_with("sha256:")) {
                    digest = dg.to_owned();
                }
                p.send(json!({"step": step, "state": "progress", "detail": status, "progress": info.progress_detail.map(|d| json!({"current": d.current, "total": d.total}))}));
            }
            Err(e) => return Err(push_error(&e.to_string())),
        }
    }
    p.step(step, "done", format!("{target}:{tag} {digest}"));
    Ok(format!("{target}:{tag}"))
}

fn push_error(message: &str) -> StepError {
    let denied = message.contains("denied")
        || message.contains("unauthorized")
        || message.contains("authentication required");
    if denied {
        kind(
            fail(
                "push",
                format!("the registry refused the push: {message}"),
                "pushing needs an operator or admin token",
            ),
            "forbidden",
        )
    } else {
        fail(
            "push",
            message.to_owned(),
            "check the registry's journal (`journalctl -u containerctl-registry`)",
        )
    }
}
