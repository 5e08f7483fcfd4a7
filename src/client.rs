//! The client side of the local API (docs/api.md), for the `containerctl` CLI.
//!
//! The CLI never talks to dockerd or D-Bus: everything goes through containerctld's socket, so the
//! daemon's roles, policy and audit apply to every command. Requests run on a current-thread tokio
//! runtime owned by [`Client`]; callers see blocking calls. Errors keep the daemon's own message and
//! the details (violations, diagnostics, job result and log lines) so the CLI can show all of them.
//!
//! The wire types are `crate::wire`'s, shared with the daemon; they accept missing fields, so that
//! a daemon that adds a field or omits an optional one does not break the CLI.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::wire::{
    Applied, ClusterStatus, CreatedToken, Device, Diff, Event, JobDone, JoinTokenCreated, JoinTokenInfo,
    LogEntry, LogLine, Node, RegistryInfo, RegistryLogin, RegistryRemoved, RegistryTested, Removed,
    RemovedNode, ResetFailed, Revision, RotatedKey, SecretInfo, SecretRemoved, SecretSet, StreamLine,
    TokenInfo, Unit, UnitDetail, UnitFile, Violation, WireDiagnostic,
};
use crate::wire::{NewToken, NewUnit, PutFile, RegistryRef, RevertUnit, RevokedToken, SetUnit};

/// Where the daemon listens when `CONTAINERCTL_SOCKET` is not set.
pub const DEFAULT_SOCKET: &str = "/run/containerctl/containerctl.sock";
/// Environment variable that overrides [`DEFAULT_SOCKET`].
pub const SOCKET_ENV: &str = "CONTAINERCTL_SOCKET";
/// Prefix of every route.
pub const API_PREFIX: &str = "/api/v1";

/// Everything that can go wrong between the CLI and containerctld.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket, or nobody listening on it.
    #[error("cannot reach containerctld at {}: is it running? (systemctl status containerctld)", path.display())]
    Unreachable { path: PathBuf, source: io::Error },
    /// The socket exists but its mode keeps us out (not root, not in group containerctl).
    #[error(
        "permission denied connecting to containerctld at {}: only root and members of group containerctl may use it",
        path.display()
    )]
    SocketDenied { path: PathBuf, source: io::Error },
    /// The connection broke after it was made (daemon stopped or crashed mid-request).
    #[error("lost the connection to containerctld at {}: {detail}", path.display())]
    Connection { path: PathBuf, detail: String },
    /// The daemon answered with an error; Display is its message.
    #[error("{}", .0.message)]
    Api(Box<ApiError>),
    /// The daemon answered something this client does not understand.
    #[error("unexpected answer from containerctld: {0}")]
    Protocol(String),
    /// The runtime could not be built (out of file descriptors or memory).
    #[error("cannot start the api client: {0}")]
    Runtime(io::Error),
}

impl ClientError {
    /// The API error, if the daemon sent one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// An error answer: `{"error": {kind, message, violations, diagnostics, result, status_text, log}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: String,
    pub message: String,
    pub violations: Vec<Violation>,
    pub diagnostics: Vec<WireDiagnostic>,
    /// The daemon's rendering of each diagnostic, with the offending line quoted (`invalid`
    /// only): what a client shows when it does not hold the refused text (`set`).
    pub rendered: Vec<String>,
    /// systemd's job result (`job_failed` only).
    pub result: Option<String>,
    pub status_text: Option<String>,
    pub log: Vec<LogEntry>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    violations: Vec<Violation>,
    #[serde(default)]
    diagnostics: Vec<WireDiagnostic>,
    #[serde(default)]
    rendered: Vec<String>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    status_text: Option<String>,
    #[serde(default)]
    log: Vec<LogEntry>,
}

/// The `kind` documented for each status, for answers that do not carry one.
fn kind_for_status(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 | 403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "too_large",
        422 => "invalid",
        502 => "job_failed",
        503 => "unavailable",
        _ => "internal",
    }
}

impl ApiError {
    /// Decodes an error answer; a body that is not the documented shape still gives a message.
    pub fn from_response(status: u16, body: &[u8]) -> ApiError {
        match serde_json::from_slice::<ErrorEnvelope>(body) {
            Ok(ErrorEnvelope { error: e }) => ApiError {
                status,
                kind: e.kind.unwrap_or_else(|| kind_for_status(status).to_owned()),
                message: e.message.filter(|m| !m.is_empty()).unwrap_or_else(|| generic_message(status)),
                violations: e.violations,
                diagnostics: e.diagnostics,
                rendered: e.rendered,
                result: e.result,
                status_text: e.status_text,
                log: e.log,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let first = text.lines().map(str::trim).find(|l| !l.is_empty());
                ApiError {
                    status,
                    kind: kind_for_status(status).to_owned(),
                    message: first.map_or_else(|| generic_message(status), |l| truncate(l, 300)),
                    violations: Vec::new(),
                    diagnostics: Vec::new(),
                    rendered: Vec::new(),
                    result: None,
                    status_text: None,
                    log: Vec::new(),
                }
            }
        }
    }
}

fn generic_message(status: u16) -> String {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error");
    format!("containerctld answered {status} {}", reason.to_lowercase())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// A job verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Start,
    Stop,
    Restart,
}

impl Job {
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Start => "start",
            Job::Stop => "stop",
            Job::Restart => "restart",
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `s` as one path segment: anything but letters, digits, `-`, `.` and `_` percent-encoded.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Decodes an answer fetched with [`Client::get_raw`] into a wire type.
pub fn decode<T: DeserializeOwned>(route: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("{route}: {e}")))
}

/// Route paths below [`API_PREFIX`]. NAMEs must already be valid unit names (they are used as is).
pub mod route {
    pub fn units() -> String {
        "/units".to_owned()
    }
    pub fn unit(name: &str) -> String {
        format!("/units/{name}")
    }
    pub fn file(name: &str) -> String {
        format!("/units/{name}/file")
    }
    pub fn set(name: &str) -> String {
        format!("/units/{name}/set")
    }
    /// `start`, `stop`, `restart`, `enable` or `disable`.
    pub fn action(name: &str, verb: &str) -> String {
        format!("/units/{name}/{verb}")
    }
    pub fn reset_failed_all() -> String {
        "/units/reset-failed".to_owned()
    }
    pub fn revert(name: &str) -> String {
        format!("/units/{name}/revert")
    }
    pub fn history(name: &str) -> String {
        format!("/units/{name}/history")
    }
    pub fn diff(name: &str, from: Option<u64>, to: Option<u64>) -> String {
        let mut q = Vec::new();
        if let Some(f) = from {
            q.push(format!("from={f}"));
        }
        if let Some(t) = to {
            q.push(format!("to={t}"));
        }
        if q.is_empty() {
            format!("/units/{name}/diff")
        } else {
            format!("/units/{name}/diff?{}", q.join("&"))
        }
    }
    pub fn logs(name: &str, lines: u32, follow: bool) -> String {
        format!("/units/{name}/logs?n={lines}&follow={follow}")
    }
    pub fn devices() -> String {
        "/devices".to_owned()
    }
    pub fn registries() -> String {
        "/registries".to_owned()
    }
    /// REGISTRY holds `/` and `:`: it goes in the query, percent-encoded.
    pub fn registry(registry: &str) -> String {
        format!("/registries?registry={}", super::encode(registry))
    }
    pub fn registry_test() -> String {
        "/registries/test".to_owned()
    }
    pub fn secrets() -> String {
        "/secrets".to_owned()
    }
    /// NAME must be a valid secret name (used as is).
    pub fn secret(name: &str, force: bool) -> String {
        if force {
            format!("/secrets/{name}?force=true")
        } else {
            format!("/secrets/{name}")
        }
    }
}

/// A connection to containerctld's local socket.
pub struct Client {
    socket: PathBuf,
    runtime: tokio::runtime::Runtime,
    http: HttpClient<UnixConnector, Full<Bytes>>,
}

impl Client {
    /// The socket from `CONTAINERCTL_SOCKET`, else [`DEFAULT_SOCKET`].
    pub fn from_env() -> Result<Client, ClientError> {
        let socket = std::env::var_os(SOCKET_ENV)
            .filter(|s| !s.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
        Client::new(socket)
    }

    pub fn new(socket: PathBuf) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let http = HttpClient::builder(TokioExecutor::new()).build(UnixConnector);
        Ok(Client { socket, runtime, http })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn uri(&self, route: &str) -> Result<Uri, ClientError> {
        Uri::builder()
            .scheme("unix")
            .authority(format!("{}:0", hex(self.socket.as_os_str().as_encoded_bytes())))
            .path_and_query(format!("{API_PREFIX}{route}"))
            .build()
            .map_err(|e| ClientError::Protocol(format!("bad request path {route}: {e}")))
    }

    fn request(
        &self,
        method: Method,
        route: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        self.request_typed(method, route, body, "application/json")
    }

    /// A request whose body (when given) has `content_type`.
    fn request_typed(
        &self,
        method: Method,
        route: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut req =
            Request::builder().method(method).uri(self.uri(route)?).header("accept", "application/json");
        if body.is_some() {
            req = req.header("content-type", content_type);
        }
        req.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol(format!("cannot build the request for {route}: {e}")))
    }

    fn transport_error(&self, e: &(dyn std::error::Error + 'static), connecting: bool) -> ClientError {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if let Some(io) = err.downcast_ref::<io::Error>() {
                let copy = io::Error::new(io.kind(), io.to_string());
                return match io.kind() {
                    io::ErrorKind::PermissionDenied => {
                        ClientError::SocketDenied { path: self.socket.clone(), source: copy }
                    }
                    _ if connecting => ClientError::Unreachable { path: self.socket.clone(), source: copy },
                    _ => ClientError::Connection { path: self.socket.clone(), detail: io.to_string() },
                };
            }
            cur = err.source();
        }
        let mut detail = e.to_string();
        let mut cur = e.source();
        while let Some(err) = cur {
            detail = err.to_string();
            cur = err.source();
        }
        if connecting {
            ClientError::Unreachable { path: self.socket.clone(), source: io::Error::other(detail) }
        } else {
            ClientError::Connection { path: self.socket.clone(), detail }
        }
    }

    /// Sends one request and returns the whole body of a 2xx answer.
    pub fn call(&self, method: Method, route: &str, body: Option<Vec<u8>>) -> Result<Bytes, ClientError> {
        self.send_request(self.request(method, route, body)?)
    }

    fn send_request(&self, req: Request<Full<Bytes>>) -> Result<Bytes, ClientError> {
        self.runtime.block_on(async {
            let resp = self.http.request(req).await.map_err(|e| self.transport_error(&e, e.is_connect()))?;
            let status = resp.status();
            let bytes =
                resp.into_body().collect().await.map_err(|e| self.transport_error(&e, false))?.to_bytes();
            if status.is_success() {
                Ok(bytes)
            } else {
                Err(ClientError::Api(Box::new(ApiError::from_response(status.as_u16(), &bytes))))
            }
        })
    }

    /// A JSON request; `body` is serialised when given.
    pub fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        let bytes = self.call(method, route, body)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("{route}: {e}")))
    }

    /// `GET route`, the body exactly as the daemon sent it (for `--json`).
    pub fn get_raw(&self, route: &str) -> Result<Bytes, ClientError> {
        self.call(Method::GET, route, None)
    }

    /// `GET route` decoded as `T`.
    pub fn get<T: DeserializeOwned>(&self, route: &str) -> Result<T, ClientError> {
        self.send(Method::GET, route, None::<&()>)
    }

    pub fn units(&self) -> Result<Vec<Unit>, ClientError> {
        self.get(&route::units())
    }

    pub fn unit(&self, name: &str) -> Result<UnitDetail, ClientError> {
        self.get(&route::unit(name))
    }

    pub fn file(&self, name: &str) -> Result<UnitFile, ClientError> {
        self.get(&route::file(name))
    }

    pub fn put_file(&self, name: &str, text: &str, restart: bool) -> Result<Applied, ClientError> {
        self.send(Method::PUT, &route::file(name), Some(&PutFile { text: text.to_owned(), restart }))
    }

    pub fn set(
        &self,
        name: &str,
        assignments: &[String],
        unset: &[String],
        restart: bool,
    ) -> Result<Applied, ClientError> {
        self.send(
            Method::POST,
            &route::set(name),
            Some(&SetUnit { assignments: assignments.to_vec(), unset: unset.to_vec(), restart }),
        )
    }

    pub fn create(
        &self,
        name: &str,
        image: &str,
        version: &str,
        args: &[String],
    ) -> Result<Applied, ClientError> {
        self.send(
            Method::POST,
            &route::units(),
            Some(&NewUnit {
                name: name.to_owned(),
                image: image.to_owned(),
                version: version.to_owned(),
                args: args.to_vec(),
                text: None,
            }),
        )
    }

    /// `POST /import`: the units, all or none.
    pub fn import(&self, body: &crate::wire::ImportUnits) -> Result<crate::wire::Imported, ClientError> {
        self.send(Method::POST, "/import", Some(body))
    }

    pub fn remove(&self, name: &str) -> Result<Removed, ClientError> {
        self.send(Method::DELETE, &route::unit(name), None::<&()>)
    }

    /// Runs a start, stop or restart job and waits for its end.
    pub fn job(&self, name: &str, job: Job) -> Result<JobDone, ClientError> {
        self.send(Method::POST, &route::action(name, job.as_str()), None::<&()>)
    }

    /// Clears the failed state of `name`, or of every failed unit.
    pub fn reset_failed(&self, name: Option<&str>) -> Result<ResetFailed, ClientError> {
        let path = match name {
            Some(n) => route::action(n, "reset-failed"),
            None => route::reset_failed_all(),
        };
        self.send(Method::POST, &path, None::<&()>)
    }

    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<Applied, ClientError> {
        let verb = if enabled { "enable" } else { "disable" };
        self.send(Method::POST, &route::action(name, verb), None::<&()>)
    }

    pub fn revert(&self, name: &str, rev: u32, restart: bool) -> Result<Applied, ClientError> {
        self.send(Method::POST, &route::revert(name), Some(&RevertUnit { rev, restart }))
    }

    pub fn token_create(
        &self,
        name: &str,
        role: crate::policy::Role,
        ttl: &str,
    ) -> Result<CreatedToken, ClientError> {
        let body = NewToken { name: name.to_owned(), role, ttl: Some(ttl.to_owned()) };
        self.send(Method::POST, "/tokens", Some(&body))
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, ClientError> {
        self.get("/tokens")
    }

    pub fn token_revoke(&self, id: &str) -> Result<(), ClientError> {
        let _: RevokedToken = self.send(Method::DELETE, &format!("/tokens/{id}"), None::<&()>)?;
        Ok(())
    }

    pub fn rotate_key(&self) -> Result<RotatedKey, ClientError> {
        self.send(Method::POST, "/keys/rotate", None::<&()>)
    }

    /// Logs in to a registry through the daemon, which stores the credential if it is accepted.
    pub fn registry_login(&self, login: &RegistryLogin) -> Result<RegistryInfo, ClientError> {
        self.send(Method::POST, &route::registries(), Some(login))
    }

    pub fn registry_logout(&self, registry: &str) -> Result<RegistryRemoved, ClientError> {
        self.send(Method::DELETE, &route::registry(registry), None::<&()>)
    }

    pub fn registry_test(&self, registry: &str) -> Result<Bytes, ClientError> {
        let body = serde_json::to_vec(&RegistryRef { registry: registry.to_owned() })
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        self.call(Method::POST, &route::registry_test(), Some(body))
    }

    pub fn secrets(&self) -> Result<Vec<SecretInfo>, ClientError> {
        self.get(&route::secrets())
    }

    /// Stores `value` (any bytes, sent as they are) as secret `name`.
    pub fn secret_set(&self, name: &str, value: Vec<u8>) -> Result<SecretSet, ClientError> {
        let route = route::secret(name, false);
        let req = self.request_typed(Method::PUT, &route, Some(value), "application/octet-stream")?;
        let bytes = self.send_request(req)?;
        decode(&route, &bytes)
    }

    pub fn secret_remove(&self, name: &str, force: bool) -> Result<SecretRemoved, ClientError> {
        self.send(Method::DELETE, &route::secret(name, force), None::<&()>)
    }

    pub fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.get("/cluster")
    }

    pub fn nodes(&self) -> Result<Vec<Node>, ClientError> {
        self.get("/cluster/nodes")
    }

    pub fn remove_node(&self, id_or_host: &str) -> Result<RemovedNode, ClientError> {
        self.send(Method::DELETE, &format!("/cluster/nodes/{}", encode(id_or_host)), None::<&()>)
    }

    pub fn join_token_create(
        &self,
        body: &crate::wire::NewJoinToken,
    ) -> Result<JoinTokenCreated, ClientError> {
        self.send(Method::POST, "/cluster/tokens", Some(body))
    }

    pub fn join_tokens(&self) -> Result<Vec<JoinTokenInfo>, ClientError> {
        self.get("/cluster/tokens")
    }

    pub fn join_token_revoke(&self, id: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &format!("/cluster/tokens/{}", encode(id)), None).map(|_| ())
    }

    /// `GET route` as a stream of lines (NDJSON): `on_line` gets each non-empty line as sent, until
    /// the daemon ends the stream or `on_line` fails.
    pub fn stream_lines<E: From<ClientError>>(
        &self,
        route: &str,
        on_line: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.stream_lines_with(Method::GET, route, None::<&()>, on_line)
    }

    /// Like [`Client::stream_lines`] with any method and a JSON body (long operations that
    /// stream their progress as NDJSON).
    pub fn stream_lines_with<E: From<ClientError>, B: Serialize>(
        &self,
        method: Method,
        route: &str,
        body: Option<&B>,
        mut on_line: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        let req = self.request(method, route, body)?;
        self.runtime.block_on(async {
            let resp = self.http.request(req).await.map_err(|e| self.transport_error(&e, e.is_connect()))?;
            let status = resp.status();
            let mut body = resp.into_body();
            if !status.is_success() {
                let bytes = body.collect().await.map_err(|e| self.transport_error(&e, false))?.to_bytes();
                return Err(
                    ClientError::Api(Box::new(ApiError::from_response(status.as_u16(), &bytes))).into()
                );
            }
            let mut buf: Vec<u8> = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| self.transport_error(&e, false))?;
                let Ok(data) = frame.into_data() else { continue };
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let line = trim_line(&line);
                    if !line.is_empty() {
                        on_line(line)?;
                    }
                }
            }
            let rest = trim_line(&buf);
            if !rest.is_empty() {
                on_line(rest)?;
            }
            Ok(())
        })
    }

    /// Journal lines of a unit as NDJSON lines (`follow` keeps the stream open).
    pub fn logs<E: From<ClientError>>(
        &self,
        name: &str,
        lines: u32,
        follow: bool,
        on_line: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.stream_lines(&route::logs(name, lines, follow), on_line)
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\n' | b'\r' | b' ' | b'\t'] = l {
        l = rest;
    }
    l
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_documented_error_shape() {
        let body = br#"{"error": {"kind": "forbidden", "message": "operators may not add privileged mode",
            "violations": [{"rule": "privileged", "message": "container.privileged is admin-only"}]}}"#;
        let e = ApiError::from_response(403, body);
        assert_eq!(e.kind, "forbidden");
        assert_eq!(e.message, "operators may not add privileged mode");
        assert_eq!(e.violations[0].rule, "privileged");
        assert!(e.diagnostics.is_empty());
        assert_eq!(ClientError::Api(Box::new(e)).to_string(), "operators may not add privileged mode");
    }

    #[test]
    fn job_failed_log_accepts_strings_and_objects() {
        let body = br#"{"error": {"kind": "job_failed", "message": "job for containerctl@web.service failed",
            "result": "failed", "status_text": "image pull failed",
            "log": ["plain line", {"at_us": 5, "priority": 3, "identifier": "web", "message": "boom"}]}}"#;
        let e = ApiError::from_response(502, body);
        assert_eq!(e.result.as_deref(), Some("failed"));
        assert_eq!(e.log[0], LogEntry::Text("plain line".into()));
        let LogEntry::Line(l) = &e.log[1] else { panic!("{:?}", e.log[1]) };
        assert_eq!((l.priority, l.message.as_str()), (Some(3), "boom"));
    }

    #[test]
    fn a_body_that_is_not_the_error_shape_still_gives_a_message() {
        let e = ApiError::from_response(422, b"Failed to deserialize the JSON body\n");
        assert_eq!((e.kind.as_str(), e.message.as_str()), ("invalid", "Failed to deserialize the JSON body"));
        let e = ApiError::from_response(503, b"");
        assert_eq!(
            (e.kind.as_str(), e.message.as_str()),
            ("unavailable", "containerctld answered 503 service unavailable")
        );
        let e = ApiError::from_response(404, br#"{"error": {}}"#);
        assert_eq!(
            (e.kind.as_str(), e.message.as_str()),
            ("not_found", "containerctld answered 404 not found")
        );
    }

    #[test]
    fn unit_tolerates_missing_fields() {
        let u: Unit = serde_json::from_str(r#"{"name": "web", "active_state": "active"}"#).expect("unit");
        assert!(u.valid);
        assert_eq!(u.health, None);
        let d: UnitDetail =
            serde_json::from_str(r#"{"name": "web", "text": "x", "log": [{"at_us": 1, "message": "m"}]}"#)
                .expect("detail");
        assert_eq!(d.unit.name, "web");
        assert_eq!(d.log.len(), 1);
    }

    #[test]
    fn routes_and_uris() {
        assert_eq!(route::diff("web", None, None), "/units/web/diff");
        assert_eq!(route::diff("web", Some(3), None), "/units/web/diff?from=3");
        assert_eq!(route::diff("web", Some(3), Some(5)), "/units/web/diff?from=3&to=5");
        assert_eq!(route::logs("web", 10, true), "/units/web/logs?n=10&follow=true");
        assert_eq!(route::secret("db.pw", false), "/secrets/db.pw");
        assert_eq!(route::secret("db.pw", true), "/secrets/db.pw?force=true");
        assert_eq!(hex(b"/a.sock"), "2f612e736f636b");
        let c = Client::new(PathBuf::from("/run/x.sock")).expect("client");
        let uri = c.uri("/units").expect("uri");
        assert_eq!(uri.path(), "/api/v1/units");
        assert_eq!(uri.scheme_str(), Some("unix"));
    }

    #[test]
    fn trims_line_ends() {
        assert_eq!(trim_line(b"{}\r\n"), b"{}");
        assert!(trim_line(b"  \n").is_empty());
    }
}
