//! The primary manager's side of membership, called by the cluster API and the local API: join
//! tokens ([`create_token`]), admitting a host that presents one ([`admit`]), authenticating a
//! node's credential, adding a manager-role member's Gluster brick, and what the registry's token
//! endpoint grants a credential. Apart from `join.rs` because it runs on the other host: what
//! it trusts is only what a joining host sends, so it checks every field it takes.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::join::{JoinBundle, JoinRequest};
use super::{check_ip, docker, fail, kind, swarm_wait, StepError, StepKind};
use crate::cluster::{self, gluster, registry, token, Role};
use crate::daemon::Daemon;
use crate::db::{JoinTokenRecord, NodeRecord};
use crate::time::now_ms;

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
    // One active member per address: bricks, Gluster peers and `auth.allow` are by address. Checked
    // before the token is used.
    let nodes = d.db().nodes().map_err(|e| Err(fail("join", e.to_string(), "")))?;
    if let Some(other) = nodes.iter().find(|n| n.addr == addr && is_active(n)) {
        return Err(Err(kind(
            fail(
                "join",
                format!("{addr} is the address of member {} ({})", other.hostname, other.id),
                format!(
                    "if that host was reinstalled, remove it on the manager first (`containerctl cluster remove {}`)",
                    other.id
                ),
            ),
            StepKind::Conflict,
        )));
    }
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
    // The new member may mount the shared volume (it does so at once).
    sync_auth_allow(d, &s.addr, Some(&node)).await.map_err(Err)?;
    d.db()
        .put_node(&node, "joined", &format!("joined as {} with token {}", role.as_str(), rec.id))
        .map_err(|e| Err(fail("join", e.to_string(), "")))?;
    let ca_pem = std::fs::read_to_string(d.cluster.paths.ca_cert())
        .map_err(|e| Err(fail("join", e.to_string(), "")))?;
    // Once the host is in the Swarm (or after a deadline), the Swarm join token it was given is
    // rotated, so a copy of it is worthless.
    swarm_wait::watch(d, node_id.clone(), role);
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

pub(super) async fn rotate_swarm_token(
    docker: &bollard::Docker,
    role: Role,
) -> Result<(), bollard::errors::Error> {
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

/// A node that is still a member (not left, not removed).
pub(super) fn is_active(n: &NodeRecord) -> bool {
    n.state != "left" && n.state != "removed"
}

/// A join must claim the address it connects from: the manager adds bricks, Gluster peers and
/// `auth.allow` entries by that address, and finds the node's Swarm node by it.
pub fn check_join_addr(claimed: &str, peer: std::net::IpAddr) -> Result<(), String> {
    let peer = peer.to_canonical();
    match claimed.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.to_canonical() == peer => Ok(()),
        Ok(_) => Err(format!(
            "the join claims address {claimed} but connected from {peer}: a host joins with the address \
             it connects to the manager from (leave out --advertise-addr, or pass {peer})"
        )),
        Err(_) => Err(format!("`{claimed}` is not an IP address")),
    }
}

/// What a Swarm node says about itself, for [`match_swarm_node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SwarmNodeView {
    pub id: String,
    pub hostname: String,
    pub addr: String,
    pub ready: bool,
}

impl SwarmNodeView {
    pub(super) fn of(n: &bollard::models::Node) -> Option<SwarmNodeView> {
        let status = n.status.as_ref();
        Some(SwarmNodeView {
            id: n.id.clone()?,
            hostname: n.description.as_ref().and_then(|d| d.hostname.clone()).unwrap_or_default(),
            addr: status.and_then(|s| s.addr.clone()).unwrap_or_default(),
            ready: status.and_then(|s| s.state) == Some(bollard::models::NodeState::READY),
        })
    }
}

/// The Swarm node of the member `n`, when its id was not recorded at join: the one Swarm node
/// whose own host name and address are the member's and that is no other member's recorded
/// node. `Ok(None)`: none (yet); `Err`: more than one could be it, so none is taken.
pub(super) fn match_swarm_node<'a>(
    n: &NodeRecord,
    others: &[NodeRecord],
    swarm: &'a [SwarmNodeView],
    need_ready: bool,
) -> Result<Option<&'a SwarmNodeView>, String> {
    let taken: Vec<&str> =
        others.iter().filter(|o| o.id != n.id).filter_map(|o| o.swarm_node_id.as_deref()).collect();
    let found: Vec<&SwarmNodeView> = swarm
        .iter()
        .filter(|s| {
            clean_hostname(&s.hostname) == n.hostname
                && s.addr == n.addr
                && (s.ready || !need_ready)
                && !taken.contains(&s.id.as_str())
        })
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(format!(
            "{} Swarm nodes ({}) have the host name {} and the address {} of node {}",
            many.len(),
            many.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", "),
            n.hostname,
            n.addr,
            n.id
        )),
    }
}

/// The Swarm node id of member `node_id`: the one recorded at join, else [`match_swarm_node`].
pub(super) async fn find_swarm_node(
    d: &Daemon,
    docker: &bollard::Docker,
    node_id: &str,
    need_ready: bool,
) -> Result<Option<String>, StepError> {
    let step = "swarm";
    let nodes = d.db().nodes().map_err(|e| fail(step, e.to_string(), ""))?;
    let Some(n) = nodes.iter().find(|n| n.id == node_id) else { return Ok(None) };
    if let Some(id) = &n.swarm_node_id {
        return Ok(Some(id.clone()));
    }
    let list = docker.list_nodes(None).await.map_err(|e| fail(step, e.to_string(), ""))?;
    let views: Vec<SwarmNodeView> = list.iter().filter_map(SwarmNodeView::of).collect();
    match match_swarm_node(n, &nodes, &views, need_ready) {
        Ok(found) => Ok(found.map(|s| s.id.clone())),
        Err(why) => Err(kind(
            fail(step, why, "remove the Swarm node by hand (`docker node rm ID`) once you know which it is"),
            StepKind::Conflict,
        )),
    }
}

/// Keeps the shared volume's `auth.allow` to the addresses of the members (and the manager's
/// own): no other host can mount it.
/// `joining`: a member about to be recorded.
pub(super) async fn sync_auth_allow(
    d: &Daemon,
    manager_addr: &str,
    joining: Option<&NodeRecord>,
) -> Result<(), StepError> {
    let step = "gluster";
    let mut nodes = d.db().nodes().map_err(|e| fail(step, e.to_string(), ""))?;
    nodes.extend(joining.cloned());
    let allowed = allowed_addrs(manager_addr, &nodes);
    gluster::set_auth_allow(cluster::VOLUME, &allowed).await.map_err(|e| {
        fail(
            step,
            format!("cannot limit the shared volume to the members ({}): {e}", allowed.join(",")),
            "see `journalctl -u glusterd`; run `containerctl cluster init` again on the manager to retry",
        )
    })
}

/// The addresses that may mount the shared volume: the manager's and every active member's,
/// sorted, without repeats.
pub(super) fn allowed_addrs(manager_addr: &str, nodes: &[NodeRecord]) -> Vec<String> {
    let mut out: Vec<String> = std::iter::once(manager_addr.to_owned())
        .chain(nodes.iter().filter(|n| is_active(n)).map(|n| n.addr.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The node a cluster API request authenticates as (`Bearer ID.SECRET`).
pub fn authenticate_node(d: &Daemon, credential: &str) -> Option<NodeRecord> {
    let (id, _) = credential.split_once('.')?;
    let n = d.db().node(id).ok().flatten()?;
    let ok = crate::digest::sha256_hex(credential.as_bytes()) == n.secret_sha256;
    (ok && is_active(&n)).then_some(n)
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

/// What the registry's token endpoint grants a Basic credential: the subject and what it may
/// push, `None` nothing. Only the manager's daemon (the push secret) pushes to a tag; API tokens
/// of operators and admins push to staging repositories only, from where the manager copies an
/// image to its tag once it has checked the tag (`containerctl image push`); nodes pull.
pub fn registry_grant(d: &Daemon, user: &str, password: &str) -> Option<(String, registry::PushRight)> {
    let paths = &d.cluster.paths;
    if user == "containerctld" {
        let secret = std::fs::read_to_string(paths.push_secret()).ok()?;
        let ok = !secret.is_empty()
            && crate::digest::sha256_hex(secret.trim().as_bytes())
                == crate::digest::sha256_hex(password.as_bytes());
        return ok.then(|| ("containerctld".to_owned(), registry::PushRight::All));
    }
    if password.starts_with("n-") {
        return authenticate_node(d, password)
            .map(|n| (format!("node {}", n.hostname), registry::PushRight::None));
    }
    let claims = d.auth.verify(password).ok()?;
    let right = if claims.role >= crate::policy::Role::Operator {
        registry::PushRight::Staging
    } else {
        registry::PushRight::None
    };
    Some((format!("token {}", claims.sub), right))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::cluster::ops) fn node(
        id: &str,
        host: &str,
        addr: &str,
        state: &str,
        swarm: Option<&str>,
    ) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            hostname: host.into(),
            addr: addr.into(),
            role: "worker".into(),
            secret_sha256: String::new(),
            joined_at_ms: 0,
            last_seen_ms: 0,
            state: state.into(),
            swarm_node_id: swarm.map(str::to_owned),
            inventory: "{}".into(),
        }
    }

    fn swarm(id: &str, host: &str, addr: &str) -> SwarmNodeView {
        SwarmNodeView { id: id.into(), hostname: host.into(), addr: addr.into(), ready: true }
    }

    #[test]
    fn a_join_claims_the_address_it_connects_from() {
        let peer: std::net::IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(check_join_addr("10.0.0.2", peer), Ok(()));
        let e = check_join_addr("10.0.0.3", peer).expect_err("another address");
        assert!(e.contains("10.0.0.3") && e.contains("10.0.0.2"), "{e}");
        assert!(check_join_addr("c2", peer).is_err_and(|e| e.contains("not an IP")));
        // A listener on [::] sees IPv4 peers as mapped addresses.
        let mapped: std::net::IpAddr = "::ffff:10.0.0.2".parse().expect("ip");
        assert_eq!(check_join_addr("10.0.0.2", mapped), Ok(()));
    }

    #[test]
    fn swarm_nodes_are_matched_by_host_name_and_address_never_taking_another_members() {
        let me = node("n-2", "c2", "10.0.0.2", "up", None);
        let others = vec![me.clone(), node("n-3", "c3", "10.0.0.3", "up", Some("s3"))];
        let list = vec![swarm("s2", "c2", "10.0.0.2"), swarm("s3", "c3", "10.0.0.3")];
        assert_eq!(
            match_swarm_node(&me, &others, &list, true).map(|s| s.map(|s| s.id.clone())),
            Ok(Some("s2".into()))
        );
        // The address alone is not enough: a node claiming c3's address under another name.
        let liar = node("n-9", "evil", "10.0.0.3", "up", None);
        assert_eq!(match_swarm_node(&liar, &others, &list, false), Ok(None));
        // Nor the host name alone.
        let namesake = node("n-8", "c3", "10.0.0.8", "up", None);
        assert_eq!(match_swarm_node(&namesake, &others, &list, false), Ok(None));
        // Host name and address of another member's recorded Swarm node: not taken.
        let twin = node("n-7", "c3", "10.0.0.3", "up", None);
        assert_eq!(match_swarm_node(&twin, &others, &list, false), Ok(None));
        // Not ready yet, when ready is needed.
        let mut down = list.clone();
        down[0].ready = false;
        assert_eq!(match_swarm_node(&me, &others, &down, true), Ok(None));
        assert!(match_swarm_node(&me, &others, &down, false).is_ok_and(|s| s.is_some()));
        // Two candidates: refused, naming both.
        let two = vec![swarm("s2", "c2", "10.0.0.2"), swarm("s2b", "c2", "10.0.0.2")];
        let e = match_swarm_node(&me, &others, &two, false).expect_err("ambiguous");
        assert!(e.contains("s2, s2b") && e.contains("n-2"), "{e}");
    }

    #[test]
    fn auth_allow_lists_the_manager_and_active_members() {
        let nodes = vec![
            node("n-1", "c1", "10.0.0.1", "up", None),
            node("n-2", "c2", "10.0.0.2", "down", None),
            node("n-3", "c3", "10.0.0.3", "left", None),
            node("n-4", "c4", "10.0.0.4", "removed", None),
        ];
        assert_eq!(allowed_addrs("10.0.0.1", &nodes), vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()]);
        assert_eq!(allowed_addrs("10.0.0.1", &[]), vec!["10.0.0.1".to_owned()]);
    }

    #[test]
    fn claimed_host_names_are_cleaned() {
        assert_eq!(clean_hostname("web-1.example"), "web-1.example");
        assert_eq!(clean_hostname("\u{1b}[31mevil\u{1b}[0m<b>"), "31mevil0mb");
        assert_eq!(clean_hostname(""), "unnamed");
        assert_eq!(clean_hostname(&"a".repeat(100)).len(), 64);
    }
}
