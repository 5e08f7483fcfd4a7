//! Member to member: every member has a certificate from the cluster CA for its address (good
//! for serving and as a client), fetched from the primary manager with its node credential and
//! kept in the cluster directory, and serves the member routes ([`crate::cluster::peer`]) on its
//! address's cluster API port. Who a caller is comes from two facts: its TLS client certificate
//! was signed by the cluster CA, and the address it connects from is an active member's (asked of
//! the primary manager, which keeps the members), so a removed host is refused even with a
//! certificate it kept.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{fail, kind, StepError, StepKind};
use crate::cluster::{self, ca, tls, State};
use crate::daemon::Daemon;
use crate::db::NodeRecord;

/// A member's certificate (then the CA) and key, as the primary manager issues them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Which member: its node id, host name or address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerQuery {
    pub name: String,
}

/// An active member as another member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerNode {
    pub id: String,
    pub hostname: String,
    pub addr: String,
}

impl PeerNode {
    pub fn api(&self) -> String {
        format!("{}:{}", self.addr, cluster::API_PORT)
    }
}

fn ca_pair(d: &Daemon, step: &str) -> Result<ca::Pair, StepError> {
    let c = &d.cluster;
    Ok(ca::Pair { cert_pem: c.read(&c.paths.ca_cert(), step)?, key_pem: c.read(&c.paths.ca_key(), step)? })
}

/// On the primary manager: a member certificate for node `n`'s recorded address (never one the
/// caller names).
pub fn issue_member_cert(d: &Daemon, n: &NodeRecord) -> Result<MemberCert, StepError> {
    let ca = ca_pair(d, "member certificate")?;
    let pair = ca::issue_member(&ca, &n.addr).map_err(|e| fail("member certificate", e.to_string(), ""))?;
    Ok(MemberCert { cert_pem: format!("{}{}", pair.cert_pem, ca.cert_pem), key_pem: pair.key_pem })
}

/// On the primary manager: the active member called `name` (id, host name or address).
pub fn find_member(d: &Daemon, name: &str) -> Result<Option<PeerNode>, StepError> {
    let nodes = d.db().nodes().map_err(|e| fail("members", e.to_string(), ""))?;
    let mut found = nodes
        .into_iter()
        .filter(super::admit::is_active)
        .filter(|n| n.id == name || n.addr == name || n.hostname == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(kind(
            fail(
                "members",
                format!("more than one member is called {name}"),
                "name it by its node id or address",
            ),
            StepKind::Conflict,
        ));
    }
    Ok(first.map(|n| PeerNode { id: n.id, hostname: n.hostname, addr: n.addr }))
}

/// This host's member certificate: made locally on the primary manager, else asked of it once.
pub async fn ensure_member_cert(d: &Daemon, s: &State) -> Result<(), StepError> {
    let paths = &d.cluster.paths;
    if paths.member_cert().exists() && paths.member_key().exists() {
        return Ok(());
    }
    let step = "member certificate";
    let cert = if s.primary {
        let me = d.db().node(&s.node_id).map_err(|e| fail(step, e.to_string(), ""))?;
        let addr = me.map_or_else(|| s.addr.clone(), |n| n.addr);
        let ca = ca_pair(d, step)?;
        let pair = ca::issue_member(&ca, &addr).map_err(|e| fail(step, e.to_string(), ""))?;
        MemberCert { cert_pem: format!("{}{}", pair.cert_pem, ca.cert_pem), key_pem: pair.key_pem }
    } else {
        let body = manager_call(d, s, "/cluster/v1/member-cert", &serde_json::json!({})).await?;
        serde_json::from_slice(&body)
            .map_err(|e| fail(step, format!("bad answer of the manager: {e}"), ""))?
    };
    super::write(&paths.member_key(), &cert.key_pem, 0o600, step)?;
    super::write(&paths.member_cert(), &cert.cert_pem, 0o644, step)
}

/// A POST of `body` to the primary manager's cluster API with this node's credential.
async fn manager_call<B: Serialize>(
    d: &Daemon,
    s: &State,
    path: &str,
    body: &B,
) -> Result<bytes::Bytes, StepError> {
    let step = "manager";
    let ca = d.cluster.read(&d.cluster.paths.ca_cert(), step)?;
    let client = tls::Client::with_ca(&ca).map_err(|e| fail(step, e.to_string(), ""))?;
    let auth = [("authorization", format!("Bearer {}", s.credential))];
    let body = serde_json::to_vec(body).map_err(|e| fail(step, e.to_string(), ""))?;
    let (status, answer) =
        client.request(&s.manager_api, http::Method::POST, path, &auth, Some(body)).await.map_err(|e| {
            kind(fail(step, e.to_string(), "the cluster's manager must be reachable"), StepKind::Unavailable)
        })?;
    match status {
        200 => Ok(answer),
        404 => Err(kind(fail(step, error_message(&answer), ""), StepKind::NotFound)),
        s => Err(fail(step, format!("HTTP {s}: {}", error_message(&answer)), "")),
    }
}

/// The `message` of an API error body, or the body.
pub fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect())
}

/// The active member called `name`: from the store on the primary manager, else asked of it.
pub async fn lookup(d: &Daemon, name: &str) -> Result<PeerNode, StepError> {
    let s = d.cluster.state().ok_or_else(|| {
        kind(fail("members", "this host is not a cluster member", "join a cluster first"), StepKind::Conflict)
    })?;
    let not_found = || {
        kind(
            fail(
                "members",
                format!("no active member is called {name}"),
                "see `containerctl cluster nodes` on the manager",
            ),
            StepKind::NotFound,
        )
    };
    if s.primary {
        return find_member(d, name)?.ok_or_else(not_found);
    }
    match manager_call(d, &s, "/cluster/v1/peer", &PeerQuery { name: name.to_owned() }).await {
        Ok(body) => serde_json::from_slice(&body)
            .map_err(|e| fail("members", format!("bad answer of the manager: {e}"), "")),
        Err(e) if e.kind == StepKind::NotFound => Err(not_found()),
        Err(e) => Err(e),
    }
}

/// On the primary manager: every active member.
pub fn active_members(d: &Daemon) -> Result<Vec<PeerNode>, StepError> {
    let nodes = d.db().nodes().map_err(|e| fail("members", e.to_string(), ""))?;
    Ok(nodes
        .into_iter()
        .filter(super::admit::is_active)
        .map(|n| PeerNode { id: n.id, hostname: n.hostname, addr: n.addr })
        .collect())
}

/// Every active member: from the store on the primary manager, else asked of it.
pub async fn members(d: &Daemon) -> Result<Vec<PeerNode>, StepError> {
    let s = d.cluster.state().ok_or_else(|| {
        kind(fail("members", "this host is not a cluster member", "join a cluster first"), StepKind::Conflict)
    })?;
    if s.primary {
        return active_members(d);
    }
    let body = manager_call(d, &s, "/cluster/v1/peers", &serde_json::json!({})).await?;
    serde_json::from_slice(&body).map_err(|e| fail("members", format!("bad answer of the manager: {e}"), ""))
}

/// A client that presents this member's certificate to another member.
pub fn peer_client(d: &Daemon) -> Result<tls::Client, StepError> {
    let c = &d.cluster;
    let step = "member certificate";
    let (ca, cert, key) = (
        c.read(&c.paths.ca_cert(), step)?,
        c.read(&c.paths.member_cert(), step)?,
        c.read(&c.paths.member_key(), step)?,
    );
    tls::Client::member(&ca, &cert, &key).map_err(|e| fail(step, e.to_string(), ""))
}

/// Binds the member routes on a member that is not the primary manager (which serves them with
/// the cluster API), with its member certificate.
pub(super) async fn start_member_api(d: &Arc<Daemon>, s: &State) -> Result<(), String> {
    let paths = &d.cluster.paths;
    let chain = std::fs::read_to_string(paths.member_cert()).map_err(|e| e.to_string())?;
    let key = std::fs::read_to_string(paths.member_key()).map_err(|e| e.to_string())?;
    let ca = std::fs::read_to_string(paths.ca_cert()).map_err(|e| e.to_string())?;
    let cfg = tls::server_config(&chain, &key, Some(&ca)).map_err(|e| e.to_string())?;
    super::background::serve_api(d, s, cfg, cluster::peer::app(d.clone())).await
}

/// How long a member waits for the manager before it asks again for its certificate.
pub(super) const RETRY: Duration = Duration::from_secs(5);
