//! Webhook notifications (`[notify]` in containerctl.toml): what an event looks like on the wire,
//! the endpoints' URLs (validated, and redacted wherever they are shown), the bounded queue of
//! each endpoint, one delivery attempt, and what its outcome means (delivered, retry later,
//! refused for good).
//!
//! Delivery itself (the retries, the audit of each attempt) is the daemon's: it owns the tasks and
//! the store. Nothing here formats a URL's user information or query: tokens of ntfy and Gotify
//! travel there, and [`Endpoint`]'s `Display` and `Debug` show neither.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use crate::cluster::tls::Client;

/// Everything a webhook can be told, by the names the JSON body and `events` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A unit failed and systemd will not restart it (no restart policy, exit 78, start limit).
    UnitFailed,
    /// A unit was restarted [`LOOP_RESTARTS`] times within [`LOOP_WINDOW`].
    RestartLoop,
    /// A unit's container turned unhealthy.
    Unhealthy,
    /// An update check found a newer version the unit's policy allows.
    UpdateAvailable,
    Updated,
    RolledBack,
    /// A cluster node stopped reporting, or Docker Swarm says it is down (primary manager only).
    NodeDown,
    /// A node that was down reports again (primary manager only).
    NodeUp,
}

/// Restarts within [`LOOP_WINDOW`] that make a restart loop.
pub const LOOP_RESTARTS: usize = 3;
/// See [`LOOP_RESTARTS`].
pub const LOOP_WINDOW: Duration = Duration::from_secs(300);

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::UnitFailed,
        EventKind::RestartLoop,
        EventKind::Unhealthy,
        EventKind::UpdateAvailable,
        EventKind::Updated,
        EventKind::RolledBack,
        EventKind::NodeDown,
        EventKind::NodeUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UnitFailed => "unit_failed",
            EventKind::RestartLoop => "restart_loop",
            EventKind::Unhealthy => "unhealthy",
            EventKind::UpdateAvailable => "update_available",
            EventKind::Updated => "updated",
            EventKind::RolledBack => "rolled_back",
            EventKind::NodeDown => "node_down",
            EventKind::NodeUp => "node_up",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What happened, in words, for titles: "web failed", "node h2 is down".
    fn summary(self, subject: &str) -> String {
        match self {
            EventKind::UnitFailed => format!("{subject} failed"),
            EventKind::RestartLoop => format!("{subject} is in a restart loop"),
            EventKind::Unhealthy => format!("{subject} is unhealthy"),
            EventKind::UpdateAvailable => format!("update available for {subject}"),
            EventKind::Updated => format!("{subject} updated"),
            EventKind::RolledBack => format!("{subject} rolled back"),
            EventKind::NodeDown => format!("node {subject} is down"),
            EventKind::NodeUp => format!("node {subject} is up"),
        }
    }
}

/// One event as webhooks receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: EventKind,
    /// The unit concerned; None for node events.
    pub unit: Option<String>,
    /// The host where it happened: this host for unit events, the node for node events.
    pub host: String,
    pub at_ms: i64,
    pub detail: String,
}

impl Message {
    fn title(&self) -> String {
        match &self.unit {
            Some(unit) => format!("{} on {}", self.kind.summary(unit), self.host),
            None => self.kind.summary(&self.host),
        }
    }
}

/// How a message is written in the request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `{"event", "unit", "host", "at", "detail"}` (application/json).
    #[default]
    Json,
    /// The title and the detail as plain text, the title also as the `Title` header (ntfy).
    Text,
    /// `title=...&message=...` (application/x-www-form-urlencoded: Gotify's /message).
    Form,
}

impl Format {
    pub const NAMES: [&str; 3] = ["json", "text", "form"];

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "text" => Some(Format::Text),
            "form" => Some(Format::Form),
            _ => None,
        }
    }
}

/// A request's body and the headers that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The wire form of `m` in `format` (pure).
pub fn payload(m: &Message, format: Format) -> Payload {
    let mut headers = vec![
        ("user-agent", concat!("containerctld/", env!("CARGO_PKG_VERSION")).to_owned()),
        ("x-containerctl-event", m.kind.as_str().to_owned()),
    ];
    let title = m.title();
    let (content_type, body) = match format {
        Format::Json => {
            let body = JsonBody {
                event: m.kind.as_str(),
                unit: m.unit.as_deref(),
                host: &m.host,
                at: crate::time::format_stamp(m.at_ms),
                detail: &m.detail,
            };
            ("application/json", serde_json::to_vec(&body).unwrap_or_default())
        }
        Format::Text => {
            headers.push(("title", header_safe(&title)));
            let text = if m.detail.is_empty() { title } else { format!("{title}\n{}", m.detail) };
            ("text/plain; charset=utf-8", text.into_bytes())
        }
        Format::Form => {
            let message = if m.detail.is_empty() { title.clone() } else { m.detail.clone() };
            let form =
                serde_urlencoded::to_string([("title", title.as_str()), ("message", message.as_str())])
                    .unwrap_or_default();
            ("application/x-www-form-urlencoded", form.into_bytes())
        }
    };
    Payload { content_type, headers, body }
}

/// The JSON body, its fields in the documented order.
#[derive(serde::Serialize)]
struct JsonBody<'a> {
    event: &'a str,
    unit: Option<&'a str>,
    host: &'a str,
    at: String,
    detail: &'a str,
}

/// A header value from any text: visible ASCII and spaces kept, the rest `?`.
fn header_safe(s: &str) -> String {
    s.chars().map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// A webhook's URL, checked: http or https, a host, no fragment. Shown (`Display`, `Debug`) with
/// its user information and query replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    https: bool,
    /// `HOST:PORT`, an IPv6 host in brackets.
    addr: String,
    /// The path and the query, as sent.
    target: String,
    /// `Basic ...` from the URL's user information.
    authorization: Option<String>,
    shown: String,
}

/// Longest webhook URL accepted.
pub const MAX_URL: usize = 2048;

impl Endpoint {
    /// Checks `url`. The error names the rule broken and quotes the URL redacted.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let shown = redact(url);
        if url.len() > MAX_URL {
            return Err(format!("`{shown}` is longer than {MAX_URL} bytes"));
        }
        if url.contains('#') {
            return Err(format!("`{shown}` has a fragment (#...), which is never sent to a server"));
        }
        if !url.contains("://") {
            return Err(format!("`{shown}` is not an absolute URL: it must start with http:// or https://"));
        }
        let uri: http::Uri =
            url.parse().map_err(|_| format!("`{shown}` is not a URL (write http://HOST[:PORT]/PATH)"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return Err(format!("`{shown}`: the scheme `{other}` is not http or https")),
            None => {
                return Err(format!(
                    "`{shown}` is not an absolute URL: it must start with http:// or https://"
                ))
            }
        };
        let authority = uri.authority().ok_or_else(|| format!("`{shown}` names no host"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(format!("`{shown}` names no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        if port == 0 {
            return Err(format!("`{shown}`: port 0 is not a port"));
        }
        let authorization = match authority.as_str().rsplit_once('@') {
            Some((userinfo, _)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let (Some(user), Some(password)) = (percent_decode(user), percent_decode(password)) else {
                    return Err(format!(
                        "`{shown}`: the user information is not valid percent-encoded UTF-8"
                    ));
                };
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {token}"))
            }
            None => None,
        };
        let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let target = if target.is_empty() { "/".to_owned() } else { target };
        Ok(Endpoint { https, addr: format!("{host}:{port}"), target, authorization, shown })
    }

    /// The URL without its user information and query (for logs and the audit).
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({})", self.shown)
    }
}

/// `url` with the user information (between `//` and `@`) and the query (from `?`) replaced by
/// `***`; works on text that is not a valid URL too, so that errors can quote it.
pub fn redact(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, _)) => (b, true),
        None => (url, false),
    };
    let mut out = match before_query.split_once("//") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}//***@{host}{path}"),
                None => before_query.to_owned(),
            }
        }
        None => before_query.to_owned(),
    };
    if query {
        out.push_str("?***");
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `[notify]`: where to send which events, how, and how hard to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub webhooks: Vec<Endpoint>,
    /// The events sent; every event when None.
    pub events: Option<Vec<EventKind>>,
    pub format: Format,
    /// The longest one attempt may take (connection, TLS, request and answer).
    pub timeout: Duration,
    /// Attempts per message and webhook, the first included.
    pub attempts: u32,
    /// Messages waiting per webhook; beyond it the oldest is dropped.
    pub queue: usize,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_ATTEMPTS: u32 = 6;
pub const MAX_ATTEMPTS: u32 = 20;
pub const DEFAULT_QUEUE: usize = 256;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            webhooks: Vec::new(),
            events: None,
            format: Format::Json,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            queue: DEFAULT_QUEUE,
        }
    }
}

impl Settings {
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&kind))
    }
}

/// How long to wait after failed attempt `n` (1-based): 1s, 2s, 4s, ... at most 60s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered(u16),
    /// Worth another attempt: no connection, a timeout, 408, 425, 429 or 5xx.
    Retry(String),
    /// Another attempt would get the same answer (3xx, other 4xx).
    Refused(String),
}

impl Outcome {
    pub fn of(result: Result<u16, String>) -> Outcome {
        match result {
            Ok(status @ 200..=299) => Outcome::Delivered(status),
            Ok(status @ (408 | 425 | 429 | 500..=599)) => Outcome::Retry(format!("HTTP {status}")),
            Ok(status @ 300..=399) => Outcome::Refused(format!("HTTP {status} (redirects are not followed)")),
            Ok(status) => Outcome::Refused(format!("HTTP {status}")),
            Err(e) => Outcome::Retry(e),
        }
    }
}

/// The client for `endpoint`: HTTPS trusting the system's certificates, or plain HTTP.
pub fn client_for(endpoint: &Endpoint) -> Result<Client, String> {
    if endpoint.https {
        Client::with_roots(crate::cluster::tls::system_roots()).map_err(|e| e.to_string())
    } else {
        Ok(Client::plain())
    }
}

/// One POST of `payload` to `endpoint`, given up after `timeout`: the answer's status.
pub async fn send(
    client: &Client,
    endpoint: &Endpoint,
    payload: &Payload,
    timeout: Duration,
) -> Result<u16, String> {
    let mut headers: Vec<(&str, String)> = payload.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    headers.push(("content-type", payload.content_type.to_owned()));
    if let Some(a) = &endpoint.authorization {
        headers.push(("authorization", a.clone()));
    }
    let post = client.request(
        &endpoint.addr,
        http::Method::POST,
        &endpoint.target,
        &headers,
        Some(payload.body.clone()),
    );
    match tokio::time::timeout(timeout, post).await {
        Ok(Ok((status, _))) => Ok(status),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f64())),
    }
}

/// A bounded first-in first-out queue: a push into a full queue drops the oldest entry.
pub struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    ready: tokio::sync::Notify,
}

impl<T> Queue<T> {
    pub fn new(capacity: usize) -> Queue<T> {
        Queue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: tokio::sync::Notify::new(),
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `item`; returns the entry dropped to make room, if one was.
    pub fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut items = self.items();
            let dropped = if items.len() >= self.capacity { items.pop_front() } else { None };
            items.push_back(item);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// The oldest entry, waiting for one.
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.items().pop_front() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What happened to notifications since the daemon started (/metrics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages a webhook accepted.
    pub delivered: AtomicU64,
    /// Messages given up: refused, or every attempt failed.
    pub failed: AtomicU64,
    /// Messages dropped from a full queue before any attempt.
    pub dropped: AtomicU64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The webhooks' queues: each webhook gets every message it wants, in order, and a slow or
/// unreachable one delays only its own.
pub struct Outbox {
    pub settings: Settings,
    queues: Vec<Queue<Message>>,
    pub counters: Counters,
}

impl Outbox {
    pub fn new(settings: Settings) -> Outbox {
        let queues = settings.webhooks.iter().map(|_| Queue::new(settings.queue)).collect();
        Outbox { settings, queues, counters: Counters::default() }
    }

    /// Queues `m` for every webhook, unless `events` leaves it out. Never waits: a full queue
    /// loses its oldest message (counted, and logged with the webhook's redacted URL).
    pub fn post(&self, m: &Message) {
        if !self.settings.wants(m.kind) {
            return;
        }
        for (endpoint, queue) in self.settings.webhooks.iter().zip(&self.queues) {
            if let Some(old) = queue.push(m.clone()) {
                Counters::add(&self.counters.dropped);
                tracing::warn!(
                    "notification {} of {} dropped: {} messages wait for {endpoint} already",
                    old.kind.as_str(),
                    crate::time::format_stamp(old.at_ms),
                    self.settings.queue
                );
            }
        }
    }

    /// The webhooks with their queues.
    pub fn webhooks(&self) -> impl Iterator<Item = (&Endpoint, &Queue<Message>)> {
        self.settings.webhooks.iter().zip(&self.queues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: EventKind, unit: Option<&str>) -> Message {
        Message {
            kind,
            unit: unit.map(str::to_owned),
            host: "h1".into(),
            at_ms: 1_763_769_001_000,
            detail: "rolled back to 1.0.1: unhealthy".into(),
        }
    }

    #[test]
    fn event_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("failed"), None);
    }

    #[test]
    fn json_body_has_the_documented_fields() {
        let p = payload(&message(EventKind::RolledBack, Some("web")), Format::Json);
        assert_eq!(p.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&p.body).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"event": "rolled_back", "unit": "web", "host": "h1",
                "at": "2025-11-21T23:50:01Z", "detail": "rolled back to 1.0.1: unhealthy"})
        );
        assert!(p.headers.contains(&("x-containerctl-event", "rolled_back".into())));
        assert!(String::from_utf8_lossy(&p.body)
            .starts_with(r#"{"event":"rolled_back","unit":"web","host":"h1","at":"#));
        let p = payload(&message(EventKind::NodeDown, None), Format::Json);
        let v: serde_json::Value = serde_json::from_slice(&p.body).expect("json");
        assert_eq!((v["unit"].is_null(), v["event"].as_str()), (true, Some("node_down")));
    }

    #[test]
    fn text_and_form_bodies() {
        let p = payload(&message(EventKind::RolledBack, Some("web")), Format::Text);
        assert_eq!(
            String::from_utf8_lossy(&p.body),
            "web rolled back on h1\nrolled back to 1.0.1: unhealthy"
        );
        assert!(p.headers.contains(&("title", "web rolled back on h1".into())));
        assert!(p.content_type.starts_with("text/plain"));
        let p = payload(&message(EventKind::NodeUp, None), Format::Form);
        assert_eq!(
            String::from_utf8_lossy(&p.body),
            "title=node+h1+is+up&message=rolled+back+to+1.0.1%3A+unhealthy"
        );
        assert_eq!(header_safe("héllo\nx"), "h?llo?x");
    }

    #[test]
    fn urls_are_checked_and_shown_without_secrets() {
        let e = Endpoint::parse("https://bob:s%3Acret@ntfy.example/alerts?auth=tok123").expect("valid");
        assert_eq!(e.to_string(), "https://***@ntfy.example/alerts?***");
        assert_eq!(format!("{e:?}"), "Endpoint(https://***@ntfy.example/alerts?***)");
        assert_eq!((e.addr.as_str(), e.target.as_str()), ("ntfy.example:443", "/alerts?auth=tok123"));
        let basic = base64::engine::general_purpose::STANDARD.encode("bob:s:cret");
        assert_eq!(e.authorization, Some(format!("Basic {basic}")));
        let e = Endpoint::parse("http://[::1]:8099").expect("valid");
        assert_eq!((e.addr.as_str(), e.target.as_str(), e.https), ("[::1]:8099", "/", false));
        assert_eq!(Endpoint::parse("http://10.0.0.1/hook").map(|e| e.addr), Ok("10.0.0.1:80".into()));
        for (url, says) in [
            ("ftp://h/x?token=t0p", "the scheme `ftp` is not http or https"),
            ("ntfy.example/alerts", "must start with http:// or https://"),
            ("http://h/x#frag", "has a fragment"),
            ("http://h:0/", "port 0"),
            ("http://u:%zz@h/", "percent-encoded"),
            ("http://a b/", "is not a URL"),
        ] {
            let err = Endpoint::parse(url).expect_err(url);
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("t0p") && !err.contains("%zz"), "{url}: {err}");
        }
        assert!(Endpoint::parse(&format!("http://h/{}", "a".repeat(MAX_URL))).is_err());
        assert_eq!(redact("https://u:p@h:1/p?q=1"), "https://***@h:1/p?***");
        assert_eq!(redact("nonsense?token=x"), "nonsense?***");
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn outcomes_and_backoff() {
        assert_eq!(Outcome::of(Ok(204)), Outcome::Delivered(204));
        assert!(matches!(Outcome::of(Ok(503)), Outcome::Retry(_)));
        assert!(matches!(Outcome::of(Ok(429)), Outcome::Retry(_)));
        assert!(matches!(Outcome::of(Err("connection refused".into())), Outcome::Retry(_)));
        assert!(matches!(Outcome::of(Ok(404)), Outcome::Refused(_)));
        assert!(matches!(Outcome::of(Ok(301)), Outcome::Refused(m) if m.contains("redirects")));
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[tokio::test]
    async fn posts_over_https_with_basic_auth_and_gives_up_after_the_timeout() {
        use crate::cluster::{ca, tls};
        let ca = ca::create_ca("w-t").expect("ca");
        let srv = ca::issue_server(&ca, &["127.0.0.1".into()]).expect("server");
        let cfg = tls::server_config(&format!("{}{}", srv.cert_pem, ca.cert_pem), &srv.key_pem, None)
            .expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(http::HeaderMap, String, String)>();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |uri: http::Uri, headers: http::HeaderMap, body: String| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, uri.to_string(), body));
                    http::StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            while let Ok((tcp, peer)) = listener.accept().await {
                let limits = crate::serve::Limits::default();
                tokio::spawn(tls::serve_connection(tcp, peer, acceptor.clone(), app.clone(), limits));
            }
        });
        let endpoint = Endpoint::parse(&format!("https://bot:pw@{addr}/hook?token=abc")).expect("url");
        let client = Client::with_ca(&ca.cert_pem).expect("client");
        let m = message(EventKind::RolledBack, Some("web"));
        let sent = send(&client, &endpoint, &payload(&m, Format::Json), Duration::from_secs(5)).await;
        assert_eq!(Outcome::of(sent), Outcome::Delivered(204));
        let (headers, uri, body) = rx.recv().await.expect("received");
        assert_eq!(uri, "/hook?token=abc");
        let basic = base64::engine::general_purpose::STANDARD.encode("bot:pw");
        assert_eq!(
            headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some(format!("Basic {basic}").as_str())
        );
        assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
        assert_eq!(headers.get("x-containerctl-event").and_then(|v| v.to_str().ok()), Some("rolled_back"));
        assert!(body.starts_with(r#"{"event":"rolled_back","unit":"web""#), "{body}");

        // A server that accepts and never answers: the attempt ends at the timeout, to be retried.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = silent.accept().await {
                held.push(tcp);
            }
        });
        let endpoint = Endpoint::parse(&format!("http://{silent_addr}/")).expect("url");
        let sent =
            send(&Client::plain(), &endpoint, &payload(&m, Format::Text), Duration::from_secs(1)).await;
        assert_eq!(sent, Err("no answer within 1s".into()));
        assert!(matches!(Outcome::of(sent), Outcome::Retry(_)));
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let q = Queue::new(2);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), Some(1));
        assert_eq!(q.len(), 2);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        assert_eq!(rt.block_on(async { (q.pop().await, q.pop().await) }), (2, 3));
        assert!(q.is_empty());
    }

    #[test]
    fn the_outbox_filters_and_counts_what_it_drops() {
        let settings = Settings {
            webhooks: vec![
                Endpoint::parse("http://a/").expect("url"),
                Endpoint::parse("http://b/").expect("url"),
            ],
            events: Some(vec![EventKind::RolledBack, EventKind::UnitFailed]),
            queue: 1,
            ..Settings::default()
        };
        let outbox = Outbox::new(settings);
        outbox.post(&message(EventKind::Updated, Some("web")));
        assert!(outbox.webhooks().all(|(_, q)| q.is_empty()), "not a chosen event");
        outbox.post(&message(EventKind::UnitFailed, Some("web")));
        outbox.post(&message(EventKind::RolledBack, Some("web")));
        assert!(outbox.webhooks().all(|(_, q)| q.len() == 1));
        assert_eq!(Counters::get(&outbox.counters.dropped), 2, "one per webhook");
    }

    #[test]
    fn settings_filter_events() {
        let mut s = Settings::default();
        assert!(EventKind::ALL.iter().all(|k| s.wants(*k)));
        s.events = Some(vec![EventKind::RolledBack]);
        assert!(s.wants(EventKind::RolledBack) && !s.wants(EventKind::UnitFailed));
    }
}
