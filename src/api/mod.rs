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
pub mod openapi;
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
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;

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

/// The routes of /api/v1 with their documentation. Add a route ONLY as
/// `.routes(routes!(module::handler))`, the handler carrying `#[utoipa::path(...)]`: that one call
/// registers it and puts it in the OpenAPI document. A plain `.route(...)` would serve it
/// undocumented, and `tests::every_route_is_documented` fails on it.
fn api_routes() -> OpenApiRouter<Arc<Daemon>> {
    OpenApiRouter::new()
        .routes(routes!(units::list, units::create))
        .routes(routes!(units::reset_failed_all))
        .routes(routes!(units::detail, units::remove))
        .routes(routes!(units::file, units::put_file))
        .routes(routes!(units::set))
        .routes(routes!(units::start))
        .routes(routes!(units::stop))
        .routes(routes!(units::restart))
        .routes(routes!(units::reset_failed))
        .routes(routes!(units::enable))
        .routes(routes!(units::disable))
        .routes(routes!(units::history))
        .routes(routes!(units::revision))
        .routes(routes!(units::diff))
        .routes(routes!(units::revert))
        .routes(routes!(units::logs))
        .routes(routes!(units::events))
        .routes(routes!(units::preview))
        .routes(routes!(units::devices))
        .routes(routes!(units::audit))
        .routes(routes!(session::create, session::get, session::delete))
        .routes(routes!(session::whoami))
        .routes(routes!(session::stream))
        .routes(routes!(session::token_list, session::token_create))
        .routes(routes!(session::token_revoke))
        .routes(routes!(session::login_link))
        .routes(routes!(session::rotate_key))
        .routes(routes!(cluster::status))
        .routes(routes!(cluster::init))
        .routes(routes!(cluster::join))
        .routes(routes!(cluster::leave))
        .routes(routes!(cluster::nodes))
        .routes(routes!(cluster::members))
        .routes(routes!(cluster::node, cluster::remove_node))
        .routes(routes!(cluster::tokens, cluster::token_create))
        .routes(routes!(cluster::token_revoke))
        .routes(routes!(cluster::push))
        .routes(routes!(registries::list, registries::login, registries::logout))
        .routes(routes!(registries::test))
        .routes(routes!(update::update))
        .routes(routes!(moves::move_unit))
        .routes(routes!(moves::drain))
        .routes(routes!(moves::list))
        .routes(routes!(update::versions))
        .routes(routes!(update::check))
        .routes(routes!(secrets::list))
        .routes(routes!(openapi::document))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // A secret's value may be larger than a unit file: its handler reads at most
        // secrets::BODY_LIMIT bytes and says why a larger value is refused.
        .routes(routes!(secrets::put, secrets::remove))
        // Several unit files, or a Compose file, in one request.
        .routes(
            routes!(units::import).layer(tower_http::limit::RequestBodyLimitLayer::new(IMPORT_BODY_BYTES)),
        )
}

/// The prefix of every route of [`api_routes`].
pub const PREFIX: &str = "/api/v1";

/// The OpenAPI document of [`app`]'s routes (served at /api/v1/openapi.json).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::<Arc<Daemon>>::new().nest(PREFIX, api_routes()).into_openapi();
    openapi::finish(&mut doc);
    doc
}

/// The router with every route of docs/api.md. Authentication is added by the transport.
pub fn app(daemon: Arc<Daemon>) -> Router {
    let (api, _) = api_routes().split_for_parts();
    Router::new()
        .nest(PREFIX, api)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The files that hold handlers of /api/v1, as `api_routes` names their modules.
    const HANDLER_FILES: &[(&str, &str)] = &[
        ("units", include_str!("units.rs")),
        ("session", include_str!("session.rs")),
        ("cluster", include_str!("cluster.rs")),
        ("registries", include_str!("registries.rs")),
        ("secrets", include_str!("secrets.rs")),
        ("update", include_str!("update.rs")),
        ("moves", include_str!("moves.rs")),
        ("openapi", include_str!("openapi.rs")),
    ];

    /// The text of `fn api_routes` in this file.
    fn api_routes_source() -> &'static str {
        let src = include_str!("mod.rs");
        let start = src.find("fn api_routes()").expect("api_routes is in mod.rs");
        let len = src[start..].find("\n}\n").expect("api_routes ends");
        &src[start..start + len]
    }

    /// `module::handler` of every `routes!(…)` in `api_routes`.
    fn registered() -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for part in api_routes_source().split("routes!(").skip(1) {
            let list = part.split(')').next().expect("routes! closes");
            out.extend(list.split(',').map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()));
        }
        out
    }

    #[test]
    fn every_route_is_registered_through_routes_and_so_documented() {
        // A plain `.route(…)` (or a nested or merged axum Router) serves a route that is in no
        // document: only `routes!` registers and documents in one call.
        for (i, line) in api_routes_source().lines().enumerate() {
            for plain in [".route(", ".route_service(", ".nest(", ".nest_service(", ".merge("] {
                assert!(
                    !line.contains(plain),
                    "api_routes line {}: `{}` adds a route the OpenAPI document does not know; \
                     register it with .routes(routes!(handler)) and #[utoipa::path]",
                    i + 1,
                    line.trim()
                );
            }
        }
        // Every public handler of the API's files is registered, and documented where it is.
        let registered = registered();
        for (module, src) in HANDLER_FILES {
            let lines: Vec<&str> = src.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let Some(rest) = line.strip_prefix("pub async fn ") else { continue };
                let name = rest.split(['(', '<']).next().expect("a fn has a name");
                let handler = format!("{module}::{name}");
                assert!(
                    registered.contains(&handler),
                    "{handler} is a handler in no routes!(…) of api_routes"
                );
                let annotated = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|l| !l.trim().is_empty() && !l.starts_with('}'))
                    .any(|l| l.starts_with("#[utoipa::path("));
                assert!(annotated, "{handler} has no #[utoipa::path(…)] above it");
            }
        }
    }

    #[test]
    fn every_registered_handler_is_an_operation_of_the_document() {
        let doc = serde_json::to_value(super::openapi()).expect("the document is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut operations = 0;
        let paths = doc["paths"].as_object().expect("paths");
        for (path, item) in paths {
            assert!(path.starts_with("/api/v1/"), "{path} is outside /api/v1");
            for (method, op) in item.as_object().expect("a path item") {
                operations += 1;
                let responses = op["responses"].as_object().expect("responses");
                assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path} documents no success");
                for status in ["400", "403", "404", "500"] {
                    assert!(responses.contains_key(status), "{method} {path} lacks the {status} error");
                }
                assert_eq!(responses["404"]["$ref"], "#/components/responses/Error404");
            }
        }
        assert_eq!(operations, registered().len(), "one operation per registered handler");
        let mut ids = BTreeSet::new();
        for item in paths.values() {
            for op in item.as_object().expect("a path item").values() {
                let id = op["operationId"].as_str().expect("every operation has an id");
                assert!(ids.insert(id.to_owned()), "operationId {id} is not unique");
            }
        }
        assert_eq!(
            doc["components"]["responses"]["Error404"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        let login = &paths["/api/v1/session"]["post"]["responses"];
        assert!(login.get("401").is_some(), "a bad token in the login body is 401");
        assert_eq!(paths["/api/v1/openapi.json"]["get"]["security"], serde_json::json!([{}]));
        assert!(paths["/api/v1/session"]["post"]["security"].is_array(), "logging in needs no token");
        assert!(doc["security"].as_array().is_some_and(|s| s.len() == 2), "bearer or session");
        let logs = &paths["/api/v1/units/{name}/logs"]["get"]["responses"]["200"]["content"];
        assert!(logs.get("application/x-ndjson").is_some(), "logs stream NDJSON: {logs}");
    }
}
