//! Web sessions, tokens and the other routes the web page and `containerctl token` use.

use super::openapi::IdPath;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::http::SessionId;
use super::units::body;
use super::{ApiError, Caller};
use crate::auth::{self, SESSION_COOKIE};
use crate::daemon::Daemon;
use crate::policy::{Action, Role};
use crate::time::now_ms;
use crate::wire;

type D = State<Arc<Daemon>>;

/// POST /session: a token (or a one-time login link's token) becomes a session cookie.
#[utoipa::path(
post, path = "/session", tag = "sessions", security(()), request_body = wire::Login, responses((status = 200, description = "logged in: the session cookie is set (HttpOnly, SameSite=Strict)", body = wire::Session, headers(("set-cookie" = String, description = "containerctl_session=…"))))
)]
pub async fn create(State(d): D, b: Result<Json<wire::Login>, JsonRejection>) -> Result<Response, ApiError> {
    let b = body(b)?;
    let claims = d.auth.verify(b.token.trim()).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if claims.once {
        let fresh = d.auth.use_once(&claims.jti) && d.db().use_token(&claims.jti)?;
        if !fresh {
            return Err(ApiError::Unauthorized(auth::AuthError::Used.to_string()));
        }
    }
    let (sid, s) = d.auth.start_session(&claims).map_err(|e| match e {
        auth::AuthError::TooManySessions => ApiError::TooMany(e.to_string()),
        other => ApiError::Unauthorized(other.to_string()),
    })?;
    let max_age = (s.expires_at_ms - now_ms()).max(0) / 1000;
    let cookie = format!("{SESSION_COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}");
    let body = wire::Session { role: s.role, name: s.name, csrf: s.csrf, expires_at_ms: s.expires_at_ms };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[utoipa::path(
get, path = "/session", tag = "sessions", responses((status = 200, description = "the session of the cookie sent", body = wire::Session))
)]
pub async fn get(State(d): D, sid: Option<Extension<SessionId>>) -> Result<Json<wire::Session>, ApiError> {
    let Some(Extension(SessionId(sid))) = sid else {
        return Err(ApiError::Unauthorized("no session: log in".into()));
    };
    let s = d.auth.session(&sid).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    Ok(Json(wire::Session { role: s.role, name: s.name, csrf: s.csrf, expires_at_ms: s.expires_at_ms }))
}

#[utoipa::path(
delete, path = "/session", tag = "sessions", responses((status = 200, description = "logged out: the cookie is cleared", body = wire::LoggedOut))
)]
pub async fn delete(State(d): D, sid: Option<Extension<SessionId>>) -> Response {
    if let Some(Extension(SessionId(sid))) = sid {
        d.auth.end_session(&sid);
    }
    let expired = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, expired)], Json(wire::LoggedOut { logged_out: true })).into_response()
}

#[utoipa::path(
get, path = "/whoami", tag = "sessions", responses((status = 200, description = "ok", body = wire::Whoami))
)]
pub async fn whoami(Extension(c): Extension<Caller>) -> Json<wire::Whoami> {
    Json(wire::Whoami { role: c.role, actor: c.actor })
}

#[utoipa::path(
post, path = "/tokens", tag = "tokens", request_body = wire::NewToken, responses((status = 200, description = "the token is shown only here", body = wire::CreatedToken))
)]
pub async fn token_create(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::NewToken>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ManageTokens, "*")?;
    let b = body(b)?;
    let name = b.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("a token name is 1-64 printable characters".into()));
    }
    let ttl = auth::parse_ttl(b.ttl.as_deref().unwrap_or("30d")).map_err(ApiError::BadRequest)?;
    let (token, record) =
        d.auth.issue(name, b.role, ttl, false).map_err(|e| ApiError::Internal(e.to_string()))?;
    d.db().record_token(&record)?;
    d.audit(
        &c,
        "token create",
        None,
        None,
        None,
        &format!("ok: {} ({}, role {})", record.name, record.id, record.role),
    );
    Ok(Json(json!(wire::CreatedToken {
        id: record.id,
        name: record.name,
        role: record.role,
        expires_at_ms: record.expires_at_ms,
        token,
    })))
}

#[utoipa::path(
get, path = "/tokens", tag = "tokens", responses((status = 200, description = "ok", body = Vec<wire::TokenInfo>))
)]
pub async fn token_list(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ManageTokens, "*")?;
    let list: Vec<Value> = d
        .auth
        .list()
        .into_iter()
        .filter(|t| !t.once)
        .map(|t| {
            json!(wire::TokenInfo {
                id: t.id,
                name: t.name,
                role: t.role,
                created_at_ms: t.created_at_ms,
                expires_at_ms: t.expires_at_ms,
                revoked: t.revoked,
            })
        })
        .collect();
    Ok(Json(json!(list)))
}

#[utoipa::path(
delete, path = "/tokens/{id}", tag = "tokens", params(IdPath), responses((status = 200, description = "ok", body = wire::RevokedToken))
)]
pub async fn token_revoke(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::ManageTokens, "*")?;
    if !id.chars().all(|ch| ch.is_ascii_hexdigit()) || !d.auth.revoke(&id) {
        return Err(ApiError::NotFound(format!("no token {id}: see containerctl token list")));
    }
    d.db().revoke_token(&id)?;
    d.audit(&c, "token revoke", None, None, None, &format!("ok: {id}"));
    Ok(Json(json!(wire::RevokedToken { id, revoked: true })))
}

/// A one-time admin login link for the web page (what `containerctl web login` prints).
#[utoipa::path(
post, path = "/login-link", tag = "sessions", responses((status = 200, description = "ok", body = wire::LoginLink))
)]
pub async fn login_link(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::LoginLink, "*")?;
    let (token, record) = d
        .auth
        .issue("login link", Role::Admin, auth::LOGIN_LINK_TTL_MS, true)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    d.db().record_token(&record)?;
    d.audit(&c, "login link", None, None, None, "ok");
    let base = match d.config.http_listen {
        Some(addr) => format!("http://{addr}"),
        None => return Err(ApiError::Conflict("the web page is disabled (http.listen is empty)".into())),
    };
    Ok(Json(json!(wire::LoginLink {
        url: format!("{base}/#login={token}"),
        expires_at_ms: record.expires_at_ms
    })))
}

/// GET /stream: the unit list as Server-Sent Events, at connect and after changes (coalesced).
#[utoipa::path(
get, path = "/stream", tag = "sessions", responses((status = 200, description = "Server-Sent Events: `units` (data: the unit list, as GET /units) at connect and after changes, `cluster` after node or join token changes, `ping` every 15 s", content_type = "text/event-stream", body = String))
)]
pub async fn stream(
    State(d): D,
    Extension(c): Extension<Caller>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let place = d.event_streams.enter().ok_or_else(|| {
        ApiError::TooMany(format!(
            "{} event streams are open: close a page of the web interface and reload",
            d.event_streams.open()
        ))
    })?;
    let rx = d.changes.subscribe();
    let crx = d.cluster.changes.subscribe();
    // `units` on connect and after unit changes; `cluster` after node or join token changes.
    // The stream holds its place until the page goes away.
    let state = (d, c, rx, crx, true, place);
    let stream = futures_util::stream::unfold(state, |(d, c, mut rx, mut crx, first, place)| async move {
        let event = if first {
            "units"
        } else {
            let event = tokio::select! {
                r = rx.changed() => { r.ok()?; "units" }
                r = crx.changed() => { r.ok()?; "cluster" }
            };
            // Coalesce bursts (a restart changes several properties in a row).
            tokio::time::sleep(Duration::from_millis(250)).await;
            if event == "units" {
                rx.mark_unchanged();
            } else {
                crx.mark_unchanged();
            }
            event
        };
        // The list as the daemon keeps it rendered: every open page sends the same text (20 pages
        // used to cost the daemon 20 listings of every unit per change).
        let data: Arc<str> = if event == "units" {
            d.list_json(crate::policy::reads_plain_values(c.role))
        } else {
            "{}".into()
        };
        Some((Ok(Event::default().event(event).data(&*data)), (d, c, rx, crx, false, place)))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).event(Event::default().event("ping"))))
}

/// POST /keys/rotate: new tokens are signed with a new key; older tokens stay valid until they
/// expire or are revoked (their key is kept for verification).
#[utoipa::path(
post, path = "/keys/rotate", tag = "tokens", responses((status = 200, description = "new tokens are signed with the new key; older ones stay valid", body = wire::RotatedKey))
)]
pub async fn rotate_key(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Value>, ApiError> {
    super::allow(&c, Action::RotateKeys, "*")?;
    let kid = d.auth.rotate().map_err(|e| ApiError::Internal(e.to_string()))?;
    d.audit(&c, "key rotate", None, None, None, &format!("ok: key {kid}"));
    Ok(Json(json!(wire::RotatedKey { key_id: kid })))
}
