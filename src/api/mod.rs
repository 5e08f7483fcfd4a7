//! The HTTP/JSON API under /api/v1 (docs/api.md), served on the local socket by containerctld.
//!
//! `app` builds the router so tests can call it directly. Who the caller is comes from the
//! transport: on the Unix socket, SO_PEERCRED (see [`Peer`] and [`authorize_peer`]). Handlers see
//! only a [`Caller`] and the [`Daemon`]; every change goes through `daemon::ops`, which applies the
//! policy and records history and audit.

pub mod cluster;
mod error;
mod http;
pub mod metrics;
mod moves;
mod redact;
mod registries;
mod secrets;
mod session;
mod units;
mod update;

use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use http::http_app;

use crate::daemon::Daemon;
use crate::policy::{self, Action, Role};

/// Largest request body accepted (a unit file is at most 256 KiB).
pub const MAX_BODY_BYTES: usize = 300 * 1024;
/// Largest body of any route, a secret's value included (its handler has the exact limit).
const MAX_ANY_BODY_BYTES: usize = 1024 * 1024;
/// `POST /import`: a Compose file or up to 100 unit files; the outer limit is the bound.
const IMPORT_BODY_BYTES: usize = MAX_ANY_BODY_BYTES;

pub use crate::policy::Caller;

/// The role check every handler makes before anything else: [`policy::may`] decides every
/// verb, and a refusal names its rule.
pub(crate) fn allow(c: &Caller, action: Action, unit: &str) -> Result<(), ApiError> {
    policy::may(c.role, action, unit, false).map_err(ApiError::from)
}

/// A long operation's answer: `200` with one JSON line per value `rx` yields (NDJSON), as the
/// operation reports its steps and, last, its result or failure.
/// Runs a long operation in a task of its own (a client that goes away does not stop it half-way)
/// and streams its progress as NDJSON; `op` returns the last line (`{"result": …}` or
/// `{"error": …}`).
pub(crate) fn streamed<F>(op: impl FnOnce(crate::progress::Progress) -> F) -> Response
where
    F: std::future::Future<Output = serde_json::Value> + Send + 'static,
{
    let (p, rx) = crate::progress::Progress::new();
    let last = p.clone();
    let fut = op(p);
    tokio::spawn(async move {
        let line = fut.await;
        last.send(line);
    });
    ndjson(rx)
}

pub(crate) fn ndjson(rx: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>) -> Response {
    let lines = crate::progress::ndjson_lines(rx);
    ([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(lines))
        .into_response()
}

/// Credentials of the process at the other end of the Unix socket.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// The router with every route of docs/api.md. Authentication is added by the transport.
pub fn app(daemon: Arc<Daemon>) -> Router {
    let api = Router::new()
        .route("/units", get(units::list).post(units::create))
        .route("/units/reset-failed", post(units::reset_failed_all))
        .route("/units/{name}", get(units::detail).delete(units::remove))
        .route("/units/{name}/file", get(units::file).put(units::put_file))
        .route("/units/{name}/set", post(units::set))
        .route("/units/{name}/start", post(units::start))
        .route("/units/{name}/stop", post(units::stop))
        .route("/units/{name}/restart", post(units::restart))
        .route("/units/{name}/reset-failed", post(units::reset_failed))
        .route("/units/{name}/enable", post(units::enable))
        .route("/units/{name}/disable", post(units::disable))
        .route("/units/{name}/history", get(units::history))
        .route("/units/{name}/revisions/{rev}", get(units::revision))
        .route("/units/{name}/diff", get(units::diff))
        .route("/units/{name}/revert", post(units::revert))
        .route("/units/{name}/logs", get(units::logs))
        .route("/units/{name}/events", get(units::events))
        .route("/units/{name}/preview", post(units::preview))
        .route("/devices", get(units::devices))
        .route("/audit", get(units::audit))
        .route("/session", post(session::create).get(session::get).delete(session::delete))
        .route("/whoami", get(session::whoami))
        .route("/stream", get(session::stream))
        .route("/tokens", get(session::token_list).post(session::token_create))
        .route("/tokens/{id}", axum::routing::delete(session::token_revoke))
        .route("/login-link", post(session::login_link))
        .route("/keys/rotate", post(session::rotate_key))
        .route("/cluster", get(cluster::status))
        .route("/cluster/init", post(cluster::init))
        .route("/cluster/join", post(cluster::join))
        .route("/cluster/leave", post(cluster::leave))
        .route("/cluster/nodes", get(cluster::nodes))
        .route("/cluster/members", get(cluster::members))
        .route("/cluster/nodes/{id}", get(cluster::node).delete(cluster::remove_node))
        .route("/cluster/tokens", get(cluster::tokens).post(cluster::token_create))
        .route("/cluster/tokens/{id}", axum::routing::delete(cluster::token_revoke))
        .route("/images/push", post(cluster::push))
        .route("/registries", get(registries::list).post(registries::login).delete(registries::logout))
        .route("/registries/test", post(registries::test))
        .route("/units/{name}/update", post(update::update))
        .route("/units/{name}/move", post(moves::move_unit))
        .route("/cluster/nodes/{node}/drain", post(moves::drain))
        .route("/moves", get(moves::list))
        .route("/units/{name}/versions", get(update::versions))
        .route("/updates/check", post(update::check))
        .route("/secrets", get(secrets::list))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // A secret's value may be larger than a unit file: its handler reads at most
        // secrets::BODY_LIMIT bytes and says why a larger value is refused.
        .route("/secrets/{name}", axum::routing::put(secrets::put).delete(secrets::remove))
        // Several unit files, or a Compose file, in one request.
        .route(
            "/import",
            post(units::import).layer(tower_http::limit::RequestBodyLimitLayer::new(IMPORT_BODY_BYTES)),
        );
    Router::new()
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::BadRequest("method not allowed on this route".into())
        })
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_ANY_BODY_BYTES))
        .with_state(daemon)
}

/// The socket's app: `app` behind [`authorize_peer`].
pub fn socket_app(daemon: Arc<Daemon>) -> Router {
    app(daemon.clone()).layer(axum::middleware::from_fn_with_state(daemon, authorize_peer))
}

/// Turns the peer's credentials into a [`Caller`]: uid 0 is admin, members of the configured
/// group are operators, anyone else is refused before any handler runs.
pub async fn authorize_peer(
    State(daemon): State<Arc<Daemon>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut request: Request,
    next: Next,
) -> Response {
    let role = if peer.uid == 0 {
        Some(Role::Admin)
    } else if daemon.group_gid().is_some_and(|gid| peer_in_group(&peer, gid)) {
        Some(Role::Operator)
    } else {
        None
    };
    let Some(role) = role else {
        return ApiError::Forbidden {
            message: format!(
                "uid {} may not use containerctl: ask an admin to add you to the group {}",
                peer.uid, daemon.config.group
            ),
            violations: Vec::new(),
        }
        .into_response();
    };
    let user = nix::unistd::User::from_uid(peer.uid.into()).ok().flatten().map(|u| u.name);
    let actor = match user {
        Some(name) => format!("uid {} ({name})", peer.uid),
        None => format!("uid {}", peer.uid),
    };
    request.extensions_mut().insert(Caller { role, actor });
    next.run(request).await
}

/// Whether the peer process has `gid` as its primary or a supplementary group. Supplementary
/// groups come from /proc/PID/status, which reflects the process's real credentials.
fn peer_in_group(peer: &Peer, gid: u32) -> bool {
    if peer.gid == gid {
        return true;
    }
    let Some(pid) = peer.pid else { return false };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|groups| groups.split_whitespace().any(|g| g.parse::<u32>() == Ok(gid)))
}
