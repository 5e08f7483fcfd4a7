//! Handlers of /api/v1/cluster… and /api/v1/images/push (docs/api.md "Cluster").
//!
//! Init, join, leave and push are long: they answer `200` with NDJSON, one line per step
//! (`{"step", "state", "detail"}`), and end with `{"result": …}` or `{"error": {…}}`. The
//! operation runs in its own task, so a client that goes away does not leave it half done.

use super::openapi::IdPath;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::units::body;
use super::{ApiError, Caller};
use crate::cluster::ops::{self, Progress, StepError};
use crate::cluster::Role as ClusterRole;
use crate::daemon::Daemon;
use crate::policy::Action;
use crate::time::now_ms;
use crate::wire;

type D = State<Arc<Daemon>>;

/// A failed step as the API's error (a step that failed is `503`, as dockerd or the manager
/// being away is).
pub fn step_error(e: StepError) -> ApiError {
    use crate::cluster::ops::StepKind;
    let message = e.message_with_hint();
    match e.kind {
        StepKind::Forbidden => ApiError::Forbidden { message, violations: vec![] },
        StepKind::BadRequest => ApiError::BadRequest(message),
        StepKind::Conflict => ApiError::Conflict(message),
        StepKind::NotFound => ApiError::NotFound(message),
        StepKind::Unavailable | StepKind::Failed => ApiError::Unavailable(message),
    }
}

/// Runs `op` in a task and streams its progress as NDJSON.
fn stream<F, T>(d: &Arc<Daemon>, c: &Caller, action: &'static str, op: F) -> Response
where
    F: FnOnce(
            Arc<Daemon>,
            Progress,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StepError>> + Send>>
        + Send
        + 'static,
    T: serde::Serialize + Send + 'static,
{
    let (p, rx) = Progress::new();
    let d2 = d.clone();
    let caller = c.clone();
    tokio::spawn(async move {
        let result = op(d2.clone(), p.clone()).await;
        let (line, outcome) = match &result {
            Ok(v) => (json!({"result": v}), "ok".to_owned()),
            Err(e) => {
                p.step(&e.step, "failed", e.message.clone());
                (
                    json!({"error": {"kind": e.kind, "step": e.step, "message": e.message, "hint": e.hint}}),
                    format!("failed: {e}"),
                )
            }
        };
        d2.audit(&caller, action, None, None, None, &outcome);
        p.send(line);
    });
    super::ndjson(rx)
}

#[utoipa::path(
post, path = "/cluster/init", tag = "cluster", request_body = wire::ClusterInit, responses((status = 200, description = "this host becomes the cluster manager: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": …}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
pub async fn init(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::ClusterInit>, JsonRejection>,
) -> Result<Response, ApiError> {
    super::allow(&c, Action::InitCluster, "*")?;
    let b = body(b)?;
    Ok(stream(&d, &c, "cluster init", move |d, p| {
        Box::pin(async move { ops::init(&d, b.advertise_addr, &p).await })
    }))
}

#[utoipa::path(
post, path = "/cluster/join", tag = "cluster", request_body = wire::ClusterJoin, responses((status = 200, description = "this host joins a cluster: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": …}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
pub async fn join(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::ClusterJoin>, JsonRejection>,
) -> Result<Response, ApiError> {
    super::allow(&c, Action::JoinCluster, "*")?;
    let b = body(b)?;
    Ok(stream(&d, &c, "cluster join", move |d, p| {
        Box::pin(async move { ops::join(&d, &b.token, b.advertise_addr, &p).await })
    }))
}

#[utoipa::path(
post, path = "/cluster/leave", tag = "cluster", responses((status = 200, description = "this host leaves its cluster: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": …}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
pub async fn leave(State(d): D, Extension(c): Extension<Caller>) -> Result<Response, ApiError> {
    super::allow(&c, Action::LeaveCluster, "*")?;
    Ok(stream(&d, &c, "cluster leave", move |d, p| {
        Box::pin(async move { ops::leave(&d, &p).await.map(|()| json!({})) })
    }))
}

#[utoipa::path(
post, path = "/images/push", tag = "images", request_body = wire::ImagePush, responses((status = 200, description = "the image is pushed to the cluster registry: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": …}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
pub async fn push(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::ImagePush>, JsonRejection>,
) -> Result<Response, ApiError> {
    super::allow(&c, Action::PushImage, "*")?;
    let b = body(b)?;
    Ok(stream(&d, &c, "image push", move |d, p| {
        Box::pin(
            async move { ops::push(&d, &b.image, b.token, &p).await.map(|image| json!({"image": image})) },
        )
    }))
}

/// `GET /cluster`: this host's membership, the registry and the shared volume.
#[utoipa::path(
get, path = "/cluster", tag = "cluster", responses((status = 200, description = "this host membership", body = wire::ClusterStatus))
)]
pub async fn status(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ReadCluster, "*")?;
    let Some(s) = d.cluster.state() else {
        return Ok(Json(json!(wire::ClusterStatus { member: false, membership: None })));
    };
    let images = ops::registry_images(&d).await;
    let swarm = match d.docker() {
        Some(docker) => docker.info().await.ok().and_then(|i| i.swarm).map(|sw| wire::SwarmStatus {
            node_id: sw.node_id,
            state: sw.local_node_state.map(|s| s.to_string()),
            managers: sw.managers,
            nodes: sw.nodes,
        }),
        None => None,
    };
    let images = images.map(|list| list.into_iter().filter_map(|i| serde_json::from_value(i).ok()).collect());
    let status = wire::ClusterStatus {
        member: true,
        membership: Some(wire::Membership {
            role: s.role.as_str().to_owned(),
            primary: s.primary,
            cluster_id: s.cluster_id,
            node_id: s.node_id,
            hostname: s.hostname,
            addr: s.addr,
            manager_addrs: vec![s.manager_api],
            registry: wire::RegistryStatus { address: s.registry, images },
            shared: json!(crate::cluster::shared::shared()),
            swarm,
        }),
    };
    Ok(Json(json!(status)))
}

fn node_json(n: &crate::db::NodeRecord, swarm: &[bollard::models::Node]) -> wire::Node {
    let inv: Value = serde_json::from_str(&n.inventory).unwrap_or(json!({}));
    let sn = swarm.iter().find(|s| n.swarm_node_id.as_deref().is_some_and(|id| s.id.as_deref() == Some(id)));
    let list = |key: &str| inv.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    wire::Node {
        id: n.id.clone(),
        hostname: n.hostname.clone(),
        addr: n.addr.clone(),
        role: n.role.clone(),
        state: n.state.clone(),
        swarm_state: sn.and_then(|s| s.status.as_ref()).and_then(|s| s.state).map(|s| s.to_string()),
        availability: sn.and_then(|s| s.spec.as_ref()).and_then(|s| s.availability).map(|a| a.to_string()),
        joined_at_ms: n.joined_at_ms,
        last_seen_ms: n.last_seen_ms,
        units: list("units"),
        containers: inv.get("containers").cloned().unwrap_or(json!(0)),
        images: list("images"),
        devices: list("devices"),
        resources: inv.get("resources").cloned().unwrap_or(json!({})),
        shared: inv.get("shared").cloned().unwrap_or(json!(null)),
        history: None,
    }
}

fn manager(d: &Daemon) -> Result<crate::cluster::State, ApiError> {
    d.cluster.state().filter(|s| s.primary).ok_or_else(|| {
        ApiError::Conflict(
            "this host is not the cluster's manager: ask the host that ran `containerctl cluster init`"
                .into(),
        )
    })
}

async fn swarm_nodes(d: &Daemon) -> Vec<bollard::models::Node> {
    match d.docker() {
        Some(docker) => docker.list_nodes(None).await.unwrap_or_default(),
        None => Vec::new(),
    }
}

#[utoipa::path(
get, path = "/cluster/nodes", tag = "cluster", responses((status = 200, description = "on the manager only", body = Vec<wire::Node>))
)]
pub async fn nodes(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ReadCluster, "*")?;
    manager(&d)?;
    let swarm = swarm_nodes(&d).await;
    let nodes = d.db().nodes()?;
    Ok(Json(json!(nodes.iter().map(|n| node_json(n, &swarm)).collect::<Vec<_>>())))
}

#[utoipa::path(
get, path = "/cluster/nodes/{id}", tag = "cluster", params(IdPath), responses((status = 200, description = "with its history", body = wire::Node))
)]
pub async fn node(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ReadCluster, "*")?;
    manager(&d)?;
    let n = d.db().node_by_id_or_hostname(&id)?.ok_or_else(|| ApiError::NotFound(format!("no node {id}")))?;
    let swarm = swarm_nodes(&d).await;
    let mut v = node_json(&n, &swarm);
    v.history = Some(d.db().node_history(&n.id, 200)?.into_iter().map(|e| json!(e)).collect());
    Ok(Json(json!(v)))
}

#[utoipa::path(
delete, path = "/cluster/nodes/{id}", tag = "cluster", params(IdPath), responses((status = 200, description = "ok", body = wire::RemovedNode))
)]
pub async fn remove_node(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::allow(&c, Action::RemoveNode, "*")?;
    manager(&d)?;
    let result = ops::remove_node(&d, &id, "removed by an admin").await;
    d.audit(&c, "cluster remove", None, Some(id.clone()), None, if result.is_ok() { "ok" } else { "failed" });
    let n = result.map_err(step_error)?;
    Ok(Json(json!(wire::RemovedNode { id: n.id, hostname: n.hostname, state: "removed".into() }))
        .into_response())
}

#[utoipa::path(
get, path = "/cluster/tokens", tag = "cluster", responses((status = 200, description = "ok", body = Vec<wire::JoinTokenInfo>))
)]
pub async fn tokens(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ListJoinTokens, "*")?;
    manager(&d)?;
    let now = now_ms();
    let list: Vec<wire::JoinTokenInfo> = d
        .db()
        .join_tokens()?
        .into_iter()
        .map(|t| wire::JoinTokenInfo {
            state: t.state(now).to_owned(),
            id: t.id,
            role: t.role,
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
            uses: t.uses,
            used: t.used,
            revoked: t.revoked,
        })
        .collect();
    Ok(Json(json!(list)))
}

#[utoipa::path(
post, path = "/cluster/tokens", tag = "cluster", request_body = wire::NewJoinToken, responses((status = 201, description = "the join token is shown only here", body = wire::JoinTokenCreated))
)]
pub async fn token_create(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::NewJoinToken>, JsonRejection>,
) -> Result<Response, ApiError> {
    super::allow(&c, Action::CreateJoinToken, "*")?;
    manager(&d)?;
    let b = body(b)?;
    let r = b.role.as_deref().unwrap_or("worker");
    let role = ClusterRole::parse(r)
        .ok_or_else(|| ApiError::BadRequest(format!("role `{r}` must be worker or manager")))?;
    let ttl = crate::unit::parse_duration(b.ttl.as_deref().unwrap_or("15m"))
        .map_err(|e| ApiError::BadRequest(format!("ttl: {e}")))?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let created = ops::create_token(&d, role, ttl_ms, b.uses.unwrap_or(1)).map_err(step_error)?;
    d.audit(
        &c,
        "cluster token create",
        None,
        None,
        Some(format!("{} {} uses={}", created.id, role.as_str(), created.uses)),
        "ok",
    );
    let created = wire::JoinTokenCreated {
        id: created.id,
        token: created.token,
        role: role.as_str().to_owned(),
        expires_at_ms: created.expires_at_ms,
        uses: created.uses,
    };
    Ok((StatusCode::CREATED, Json(json!(created))).into_response())
}

#[utoipa::path(
delete, path = "/cluster/tokens/{id}", tag = "cluster", params(IdPath), responses((status = 204, description = "revoked"))
)]
pub async fn token_revoke(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::allow(&c, Action::RevokeJoinToken, "*")?;
    manager(&d)?;
    if !d.db().revoke_join_token(&id)? {
        return Err(ApiError::NotFound(format!("no join token {id}")));
    }
    d.cluster.changed();
    d.audit(&c, "cluster token revoke", None, Some(id), None, "ok");
    Ok(StatusCode::NO_CONTENT)
}

/// The answer of `GET /cluster/members`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Members {
    /// This host's name.
    #[serde(rename = "self")]
    pub this: String,
    pub members: Vec<crate::cluster::ops::PeerNode>,
}

#[utoipa::path(
get, path = "/cluster/members", tag = "cluster", responses((status = 200, description = "this host's name and every active member", body = Members))
)]
/// `GET /cluster/members`: this host's name and every active member (what the web page's Move
/// action offers), on any member.
pub async fn members(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ReadCluster, "*")?;
    let s =
        d.cluster.state().ok_or_else(|| ApiError::Conflict("this host is not a cluster member".into()))?;
    let members = ops::members(&d).await.map_err(|e| ApiError::Unavailable(e.message_with_hint()))?;
    Ok(Json(json!(Members { this: s.hostname, members })))
}
