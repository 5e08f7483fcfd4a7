//! `containerctl cluster join TOKEN` on the joining host: exchange the token with the manager
//! over TLS that trusts only the CA pinned in the token, trust the CA and the registry, then join
//! the Swarm and mount the shared volume at the same time. Its own file because it is the client
//! half of a join (the manager's half is `admit.rs`); the wire types both halves share
//! ([`JoinRequest`], [`JoinBundle`]) live here.

use std::sync::Arc;

use bollard::models::{LocalNodeState, SwarmJoinRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::background::start_background;
use super::volume::mount_shared;
use super::{
    already_member, check_ip, detect_addr, docker, fail, kind, need_binary, start_unit, swarm_view,
    trust_registry, write, write_registry_auth, Progress, StepError, StepKind,
};
use crate::cluster::{self, tls, token, Role, State};
use crate::daemon::Daemon;

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
    let t = token::JoinToken::decode(text)
        .map_err(|e| kind(fail("token", e.to_string(), ""), StepKind::BadRequest))?;
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
            StepKind::Conflict,
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
            hostname: cluster::hostname(),
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
                    if status == 403 || status == 401 { StepKind::Forbidden } else { StepKind::Failed },
                ));
            }
            Err(e @ tls::TlsError::CaMismatch { .. }) => {
                return Err(kind(fail("manager", e.to_string(), ""), StepKind::Forbidden));
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((b, addr)) = bundle else {
        let e = last_err.map(|e| e.to_string()).unwrap_or_default();
        return Err(kind(
            fail("manager", e, "check the manager's address and that TCP 5001 is reachable from this host"),
            StepKind::Unavailable,
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
    p.step("trust", "done", format!("registry {} trusted through {}", b.registry, cluster::DOCKER_CERTS_DIR));

    // Swarm and the shared volume at the same time: neither needs the other.
    p.step("swarm", "running", format!("joining the Swarm at {}", b.swarm_managers.join(",")));
    let req = SwarmJoinRequest {
        listen_addr: Some(format!("0.0.0.0:{}", cluster::SWARM_PORT)),
        advertise_addr: Some(format!("{addr}:{}", cluster::SWARM_PORT)),
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
        hostname: cluster::hostname(),
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
        cluster::save_state(paths, &state).map_err(|e| fail("state", e.to_string(), ""))?;
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
