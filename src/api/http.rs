//! The HTTP transport: the web page's files, /healthz, /metrics, and the API behind bearer
//! tokens or a session cookie with CSRF protection.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use super::{ApiError, Caller};
use crate::auth::{CSRF_HEADER, SESSION_COOKIE};
use crate::daemon::Daemon;

/// The web page, embedded at build time from web/.
#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// The session a request came with (cookie authentication only).
#[derive(Debug, Clone)]
pub struct SessionId(pub String);

/// Everything served on the HTTP listener.
pub fn http_app(daemon: Arc<Daemon>) -> Router {
    let auth = axum::middleware::from_fn_with_state(daemon.clone(), authorize_http);
    let metrics = Router::new()
        .route("/metrics", get(super::metrics::metrics))
        .route_layer(auth.clone())
        .with_state(daemon.clone());
    Router::new()
        .route("/", get(index))
        .route("/static/{*path}", get(asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(metrics)
        .merge(super::app(daemon).layer(auth))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn embedded(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_owned();
            (
                [(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache".to_owned())],
                Body::from(file.data.into_owned()),
            )
                .into_response()
        }
        None => ApiError::NotFound(format!("no file {path}")).into_response(),
    }
}

async fn index() -> Response {
    embedded("index.html")
}

async fn asset(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    // Only embedded files exist: a path with `..` or a NUL simply names none of them.
    embedded(&path)
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    })
}

fn same(a: &str, b: &str) -> bool {
    // Constant time for equal lengths: the CSRF token must not leak through timing.
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Bearer token or session cookie (with `X-CSRF-Token` on every method but GET and HEAD) →
/// [`Caller`]; anything else is 401. Logging in (POST /api/v1/session) needs neither, nor
/// does the API's description (GET /api/v1/openapi.json: public, as the web page's files).
pub async fn authorize_http(State(daemon): State<Arc<Daemon>>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path();
    if (path == "/api/v1/session" && method == Method::POST)
        || (path == "/api/v1/openapi.json" && method == Method::GET)
    {
        return next.run(request).await;
    }
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let Some(token) = value.to_str().ok().and_then(|s| s.strip_prefix("Bearer ")) else {
            return ApiError::Unauthorized("the Authorization header must be `Bearer TOKEN`".into())
                .into_response();
        };
        return match daemon.auth.verify(token.trim()) {
            Ok(c) if c.once => {
                ApiError::Unauthorized("a login link's token only logs in through the web page".into())
                    .into_response()
            }
            Ok(c) => {
                let actor = format!("token {} ({})", c.sub, c.jti.get(..8).unwrap_or(&c.jti));
                request.extensions_mut().insert(Caller { role: c.role, actor });
                next.run(request).await
            }
            Err(e) => ApiError::Unauthorized(e.to_string()).into_response(),
        };
    }
    if let Some(sid) = cookie(headers, SESSION_COOKIE) {
        return match daemon.auth.session(&sid) {
            Ok(s) => {
                if method != Method::GET && method != Method::HEAD {
                    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                    if !same(sent, &s.csrf) {
                        return ApiError::Forbidden {
                            message: "missing or wrong X-CSRF-Token: reload the page".into(),
                            violations: Vec::new(),
                        }
                        .into_response();
                    }
                }
                request
                    .extensions_mut()
                    .insert(Caller { role: s.role, actor: format!("web session of {}", s.name) });
                request.extensions_mut().insert(SessionId(sid));
                next.run(request).await
            }
            Err(e) => ApiError::Unauthorized(e.to_string()).into_response(),
        };
    }
    ApiError::Unauthorized("log in: send Authorization: Bearer TOKEN, or use the web page".into())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; containerctl_session=abc; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc".into()));
        assert_eq!(cookie(&h, "missing"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
