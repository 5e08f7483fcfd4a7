//! The cluster API, served by the primary manager on ADDR:5001 over TLS from the cluster CA.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /cluster/v1/join` | a join token in the body; `addr` must be the address it connects from | admits a host: Swarm token, CA, registry, volume, node credential |
//! | `POST /cluster/v1/report` | node credential | stores the node's inventory |
//! | `POST /cluster/v1/brick` | manager node credential | adds the node's Gluster brick |
//! | `POST /cluster/v1/leave` | node credential | takes that node (and only it) out of the Swarm and the volume |
//! | `POST /cluster/v1/member-cert` | node credential | the node's member certificate for its recorded address (member-to-member TLS) |
//! | `POST /cluster/v1/peer` | node credential | the active member with a node id, host name or address (`{"name": …}`) |
//! | `POST /cluster/v1/peers` | node credential | every active member (a drain chooses among them) |
//! | `POST /cluster/v1/promote` | operator or admin API token | copies an image staged in `incoming/NAME` to `NAME:TAG` if the tag is absent or holds that image |
//! | `GET /v2/token` | Basic: node credential, API token or the daemon's push secret | registry token (distribution's token auth): push to any tag only for the push secret, to `incoming/` for API tokens |
//!
//! Requests are limited to 1 MiB. Credentials are compared by their SHA-256.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;

use super::api_error::ClusterApiError;
use super::ops::{self, JoinRequest};
use super::registry;
use crate::daemon::Daemon;
use crate::db::NodeRecord;
use crate::time::now_ms;

const BODY_LIMIT: usize = 1024 * 1024;
/// How long a registry token is valid.
const REGISTRY_TOKEN_TTL: u64 = 300;

pub fn app(d: Arc<Daemon>) -> Router {
    Router::new()
        .route("/cluster/v1/join", post(join))
        .route("/cluster/v1/report", post(report))
        .route("/cluster/v1/brick", post(brick))
        .route("/cluster/v1/leave", post(leave))
        .route("/cluster/v1/promote", post(promote))
        .route("/cluster/v1/member-cert", post(member_cert))
        .route("/cluster/v1/peer", post(peer))
        .route("/cluster/v1/peers", post(peers))
        .route("/v2/token", get(registry_token))
        .fallback(|| async { ClusterApiError::NotFound("no such route".into()) })
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .with_state(d)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn node(d: &Daemon, headers: &HeaderMap) -> Result<NodeRecord, ClusterApiError> {
    bearer(headers)
        .and_then(|c| ops::authenticate_node(d, c))
        .ok_or_else(|| ClusterApiError::Unauthorized("a valid node credential is required".into()))
}

async fn join(
    State(d): State<Arc<Daemon>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    body: Result<Json<JoinRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    let Json(req) =
        body.map_err(|e| ClusterApiError::BadRequest(format!("bad join request: {}", e.body_text())))?;
    let token_id = req.token_id.clone();
    // Before anything else: the token is not used and nothing is recorded.
    if let Err(why) = ops::check_join_addr(&req.addr, peer.ip()) {
        tracing::warn!("cluster: join from {peer} refused: token {token_id}: {why}");
        return Err(ClusterApiError::BadRequest(why));
    }
    match ops::admit(&d, req).await {
        Ok(bundle) => {
            tracing::info!(
                "cluster: {peer} joined as {} ({}) with token {token_id}",
                bundle.node_id,
                bundle.role.as_str()
            );
            Ok(Json(bundle).into_response())
        }
        Err(Ok(refusal)) => {
            tracing::warn!("cluster: join from {peer} refused: token {token_id}: {}", refusal.message());
            Err(ClusterApiError::Forbidden(refusal.message().into()))
        }
        Err(Err(e)) => Err(e.into()),
    }
}

async fn report(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ClusterApiError> {
    let n = node(&d, &headers)?;
    let inv: super::inventory::Inventory =
        serde_json::from_slice(&body).map_err(|e| ClusterApiError::BadRequest(format!("bad report: {e}")))?;
    let text = serde_json::to_string(&inv).map_err(|e| ClusterApiError::Internal(e.to_string()))?;
    let reported = d.db().node_report(&n.id, now_ms(), &text)?;
    d.cluster.reported(&n.id, reported, &inv);
    Ok(StatusCode::NO_CONTENT)
}

async fn brick(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Result<StatusCode, ClusterApiError> {
    let n = node(&d, &headers)?;
    ops::add_brick_for(&d, &n).await?;
    let _ = d.db().set_node_state(&n.id, "up", now_ms(), "brick added to the shared volume");
    Ok(StatusCode::NO_CONTENT)
}

async fn leave(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Result<StatusCode, ClusterApiError> {
    let n = node(&d, &headers)?;
    // Only the node whose credential this is leaves; nothing in the request can name another.
    ops::leave_node(&d, &n).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn member_cert(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Result<Response, ClusterApiError> {
    let n = node(&d, &headers)?;
    let cert = ops::issue_member_cert(&d, &n)?;
    tracing::info!("cluster: member certificate issued to {} ({}) for {}", n.hostname, n.id, n.addr);
    Ok(Json(cert).into_response())
}

async fn peer(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    body: Result<Json<ops::PeerQuery>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    node(&d, &headers)?;
    let Json(q) =
        body.map_err(|e| ClusterApiError::BadRequest(format!("bad peer query: {}", e.body_text())))?;
    match ops::find_member(&d, &q.name)? {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ClusterApiError::NotFound(format!("no active member is called {}", q.name))),
    }
}

async fn peers(State(d): State<Arc<Daemon>>, headers: HeaderMap) -> Result<Response, ClusterApiError> {
    node(&d, &headers)?;
    Ok(Json(ops::active_members(&d)?).into_response())
}

/// A host's `containerctl image push`: the image it staged goes to its tag once the manager has
/// checked the tag. Needs the operator or admin API token the image was staged with.
async fn promote(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    body: Result<Json<ops::PromoteRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    let claims = bearer(&headers)
        .and_then(|t| d.auth.verify(t).ok())
        .ok_or_else(|| ClusterApiError::Unauthorized("an API token of the manager is required".into()))?;
    if claims.role < crate::policy::Role::Operator {
        return Err(ClusterApiError::Forbidden("pushing needs an operator or admin token".into()));
    }
    let Json(req) =
        body.map_err(|e| ClusterApiError::BadRequest(format!("bad promote request: {}", e.body_text())))?;
    let (digest, unchanged) = ops::promote(&d, &req).await?;
    tracing::info!(
        "cluster: {}:{} {digest} pushed by token {}{}",
        req.repo,
        req.tag,
        claims.sub,
        if unchanged { " (unchanged)" } else { "" }
    );
    Ok(Json(serde_json::json!({"digest": digest, "unchanged": unchanged})).into_response())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn unauthorized() -> Response {
    let mut r =
        ClusterApiError::Unauthorized("registry access needs a node credential or an API token".into())
            .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"containerctl registry\""),
    );
    r
}

async fn registry_token(State(d): State<Arc<Daemon>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let Some((user, password)) = basic(&headers) else { return unauthorized() };
    let Some((subject, right)) = ops::registry_grant(&d, &user, &password) else {
        tracing::warn!("cluster: registry token refused for user {user:?}");
        return unauthorized();
    };
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let service = params.iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str());
    if service.is_some_and(|s| s != super::REGISTRY_SERVICE) {
        return ClusterApiError::BadRequest(format!("unknown service (this is {})", super::REGISTRY_SERVICE))
            .into_response();
    }
    let requested: Vec<registry::Access> =
        params.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| registry::parse_scope(v)).collect();
    let granted = registry::grant(&requested, right);
    let Some(signer) = d.cluster.signer() else {
        return ClusterApiError::Unavailable("this host does not run the cluster registry".into())
            .into_response();
    };
    let signed = signer.issue(&subject, super::REGISTRY_SERVICE, &granted, REGISTRY_TOKEN_TTL);
    match signed {
        Ok(tok) => Json(registry::token_response(&tok, REGISTRY_TOKEN_TTL)).into_response(),
        Err(e) => ClusterApiError::Internal(e.to_string()).into_response(),
    }
}
