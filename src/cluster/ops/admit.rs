//! The primary manager's side of membership, called by the cluster API and the local API: join
//! tokens ([`create_token`]), admitting a host that presents one ([`admit`]), authenticating a
//! node's credential, adding a manager-role member's Gluster brick, and what the registry's token
//! endpoint grants a credential. Apart from `join.rs` because it runs on the other host: what
//! it trusts is only what a joining host sends, so it checks every field it takes.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::join::{JoinBundle, JoinRequest};
use super::{check_ip, docker, fail, kind, StepError, StepKind};
use crate::cluster::{self, gluster, token, Role};
use crate::daemon::Daemon;
use crate::db::{JoinTokenRecord, NodeRecord};
use crate::time::now_ms;

/// How long a manager waits for a joining host to show up in the Swarm before it rotates the
/// Swarm join token anyway.
const JOIN_WAIT: Duration = Duration::from_secs(120);

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
            StepKind::Conflict,
        )
    })?;
    if !(1..=100).contains(&uses) {
        return Err(kind(fail(step, format!("uses must be 1 to 100, not {uses}"), ""), StepKind::BadRequest));
    }
    if !(5_000..=7 * 24 * 3_600_000).contains(&ttl_ms) {
        return Err(kind(
            fail(
                step,
                "ttl must be between 5s and 7d",
                "short-lived tokens are the point: 15m is the default",
            ),
            StepKind::BadRequest,
        ));
    }
    let t = token::JoinToken {
        managers: vec![s.manager_api.clone()],
        ca_digest: s.ca_digest.clone(),
        id: cluster::new_id("jt"),
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
    let node_id = cluster::new_id("n");
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
        swarm_managers: vec![format!("{}:{}", s.addr, cluster::SWARM_PORT)],
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
        return Err(kind(fail(step, "only managers keep a brick", ""), StepKind::Forbidden));
    }
    gluster::peer_probe(&n.addr).await.map_err(|e| fail(step, e.to_string(), ""))?;
    gluster::wait_peer_in_cluster(&n.addr, Duration::from_secs(30))
        .await
        .map_err(|e| fail(step, e.to_string(), ""))?;
    let brick = format!("{}:{}", n.addr, d.cluster.paths.brick().display());
    let info = gluster::volume_info(cluster::VOLUME).await.map_err(|e| fail(step, e.to_string(), ""))?;
    let info = info.ok_or_else(|| {
        fail(step, "the shared volume does not exist", "run `containerctl cluster init` again")
    })?;
    if !info.bricks.contains(&brick) {
        gluster::add_brick(cluster::VOLUME, &brick, info.replica.max(1) + 1)
            .await
            .map_err(|e| fail(step, e.to_string(), ""))?;
    }
    if let Some(mut s) = d.cluster.state() {
        if !s.gluster_servers.contains(&n.addr) {
            s.gluster_servers.push(n.addr.clone());
            let _ = cluster::save_state(&d.cluster.paths, &s);
            d.cluster.set_state(Some(s));
        }
    }
    Ok(())
}

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
}
