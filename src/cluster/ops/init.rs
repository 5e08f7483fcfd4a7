//! `containerctl cluster init` on the host that becomes the primary manager: Swarm, cluster CA and
//! server certificate, cluster API, registry, Gluster volume, mount, then membership, in that
//! order. It is its own file because it is the one operation that creates the cluster's
//! services (the registry's setup is here too, as only init runs it); every step checks first,
//! so a second init after a failure continues and an init on the primary manager repairs.

use std::sync::Arc;
use std::time::Duration;

use bollard::models::{LocalNodeState, SwarmInitRequest};

use super::background::{start_api, start_background};
use super::volume::mount_shared;
use super::{
    already_member, check_ip, detect_addr, docker, fail, kind, need_binary, start_unit, swarm_view,
    trust_registry, write, write_registry_auth, Cleanup, Progress, StepError, StepKind,
};
use crate::cluster::{self, ca, gluster, registry, tls, Role, State};
use crate::daemon::Daemon;
use crate::db::NodeRecord;
use crate::time::now_ms;

/// The registry unit Debian's docker-registry package ships and enables (on :5000).
const DEBIAN_REGISTRY_UNIT: &str = "docker-registry.service";

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
                StepKind::BadRequest,
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
                StepKind::Conflict,
            ))
        }
        _ => {
            p.step("swarm", "running", "initialising Docker Swarm");
            let req = SwarmInitRequest {
                listen_addr: Some(format!("0.0.0.0:{}", cluster::SWARM_PORT)),
                advertise_addr: Some(format!("{addr}:{}", cluster::SWARM_PORT)),
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
    let cluster_id = existing.as_ref().map_or_else(|| cluster::new_id("c"), |s| s.cluster_id.clone());
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
    if ca::valid_dns_name(&cluster::hostname()) {
        names.push(cluster::hostname());
    }
    let server = ca::issue_server(&ca_pair, &names).map_err(|e| fail("ca", e.to_string(), ""))?;
    write(&paths.server_key(), &server.key_pem, 0o600, "ca")?;
    write(&paths.server_cert(), &format!("{}{}", server.cert_pem, ca_pair.cert_pem), 0o644, "ca")?;
    p.step("ca", "done", format!("server certificate for {}", names.join(", ")));

    let node_id = existing.as_ref().map_or_else(|| cluster::new_id("n"), |s| s.node_id.clone());
    let credential = existing
        .as_ref()
        .map_or_else(|| format!("{node_id}.{}", crate::digest::random_hex(32)), |s| s.credential.clone());
    let state = State {
        cluster_id: cluster_id.clone(),
        node_id: node_id.clone(),
        role: Role::Manager,
        primary: true,
        hostname: cluster::hostname(),
        addr: addr.clone(),
        manager_api: format!("{addr}:{}", cluster::API_PORT),
        registry: format!("{addr}:{}", cluster::REGISTRY_PORT),
        gluster_servers: existing.as_ref().map_or_else(|| vec![addr.clone()], |s| s.gluster_servers.clone()),
        volume: cluster::VOLUME.into(),
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
    p.step("gluster", "running", format!("volume {} with a brick on {addr}", cluster::VOLUME));
    need_binary("/usr/sbin/gluster", "glusterfs-server", "gluster")?;
    start_unit(d, "glusterd.service", "gluster", false).await?;
    let brick = format!("{addr}:{}", paths.brick().display());
    match gluster::volume_info(cluster::VOLUME).await.map_err(|e| fail("gluster", e.to_string(), ""))? {
        Some(info) if info.started => p.step("gluster", "skipped", "volume exists and is started"),
        Some(_) => {
            gluster::start_volume(cluster::VOLUME).await.map_err(|e| fail("gluster", e.to_string(), ""))?;
            p.step("gluster", "done", "volume started");
        }
        None => {
            std::fs::create_dir_all(paths.brick())
                .map_err(|e| fail("gluster", format!("cannot create the brick directory: {e}"), ""))?;
            gluster::create_volume(cluster::VOLUME, &brick)
                .await
                .map_err(|e| fail("gluster", e.to_string(), ""))?;
            gluster::start_volume(cluster::VOLUME).await.map_err(|e| fail("gluster", e.to_string(), ""))?;
            p.step("gluster", "done", format!("volume {} created with brick {brick}", cluster::VOLUME));
        }
    }

    // Only members may mount it: the manager now, each host as it is admitted.
    super::admit::sync_auth_allow(d, &addr, None).await?;
    p.step("gluster", "done", "only the cluster's members may mount the volume (auth.allow)");

    // 6. Mount.
    mount_shared(d, &state.gluster_servers, &state.volume, p).await?;

    // 7. Membership.
    cluster::save_state(paths, &state).map_err(|e| fail("state", e.to_string(), ""))?;
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
        service: cluster::REGISTRY_SERVICE.into(),
        issuer: cluster::REGISTRY_ISSUER.into(),
        rootcertbundle: paths.token_cert(),
    };
    write(std::path::Path::new(cluster::REGISTRY_CONFIG), &registry::render_config(&cfg), 0o644, step)?;
    trust_registry(&s.registry, ca_pem, step)?;
    // Debian's docker-registry package enables a registry of its own on :5000, the web page's port.
    // Ours does not need it gone (it listens on :5002): a failure is reported, not fatal.
    let mut cleanup = Cleanup::new(p);
    if d.systemd.unit_state(DEBIAN_REGISTRY_UNIT).await.is_ok_and(|u| u.active_state != "inactive") {
        cleanup.stop_unit(d, step, DEBIAN_REGISTRY_UNIT).await;
        p.step(step, "done", format!("stopped {DEBIAN_REGISTRY_UNIT} (containerctl runs its own on :5002)"));
    }
    let disabled = d.systemd.disable(DEBIAN_REGISTRY_UNIT).await;
    cleanup.check(step, format!("disabling {DEBIAN_REGISTRY_UNIT}"), disabled);
    d.systemd.reload().await.map_err(|e| fail(step, format!("daemon-reload failed: {e}"), ""))?;
    start_unit(d, cluster::REGISTRY_UNIT, step, true).await?;
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
                    format!("see `journalctl -u {}`", cluster::REGISTRY_UNIT),
                ))
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
    p.step(step, "done", format!("registry on https://{}/ (token auth by the cluster API)", s.registry));
    Ok(())
}
