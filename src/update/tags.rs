//! The tags of an image's repository, from its registry's Registry v2 API
//! (`GET /v2/REPOSITORY/tags/list`, following `Link: <…>; rel="next"` pages).
//!
//! Trust is Docker's for that registry: the system's CA bundle plus every `*.crt` in
//! `/etc/docker/certs.d/HOST[:PORT]/` (where `cluster join` puts the cluster CA). Plain HTTP is
//! used only where Docker would use it (the caller says so: a registry on a loopback address or
//! in dockerd's insecure-registries), and only after HTTPS failed. A `401` with
//! `WWW-Authenticate: Bearer realm=…` is answered with the token flow (the credentials, when
//! there are some, as Basic authentication to the realm), `Basic` with the credentials directly.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;

use crate::cluster::tls::{Answer, Client, TlsError};

/// Docker's directory of per-registry CA certificates.
pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";
/// Where Debian (and derivatives) and Fedora (and derivatives) keep the system's CA bundle.
/// Docker Hub's registry host, for images without a registry in their name.
pub const DOCKER_HUB: &str = "registry-1.docker.io";
/// Pages of tags read at most (a registry may hold very many).
const MAX_PAGES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum TagsError {
    #[error("{0}")]
    Transport(#[from] TlsError),
    #[error("{registry} refused to list the tags of {repository}: {status} {detail}")]
    Refused { registry: String, repository: String, status: u16, detail: String },
    #[error("{registry} answered {what}: {detail}")]
    Protocol { registry: String, what: String, detail: String },
}

/// An image's repository as Docker resolves it: `busybox` is `library/busybox` on Docker Hub,
/// `ghcr.io/org/app` is `org/app` on `ghcr.io`, `localhost:5000/app` is `app` there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// `HOST[:PORT]` as written (Docker Hub as [`DOCKER_HUB`]).
    pub registry: String,
    pub name: String,
}

impl Repository {
    pub fn of(image: &str) -> Repository {
        match image.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                let registry = match first {
                    "docker.io" | "index.docker.io" => DOCKER_HUB.to_owned(),
                    other => other.to_owned(),
                };
                let name = if registry == DOCKER_HUB && !rest.contains('/') {
                    format!("library/{rest}")
                } else {
                    rest.to_owned()
                };
                Repository { registry, name }
            }
            Some(_) => Repository { registry: DOCKER_HUB.to_owned(), name: image.to_owned() },
            None => Repository { registry: DOCKER_HUB.to_owned(), name: format!("library/{image}") },
        }
    }

    /// `HOST:PORT` to connect to (443 when the name has no port).
    fn addr(&self) -> String {
        with_port(&self.registry, 443)
    }
}

fn with_port(host: &str, default: u16) -> String {
    let has_port = host.rsplit_once(':').is_some_and(|(h, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (!h.starts_with('[') || h.ends_with(']'))
    });
    if has_port {
        host.to_owned()
    } else {
        format!("{host}:{default}")
    }
}

/// How to reach a registry: its credentials and whether plain HTTP is allowed after HTTPS failed.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub username: Option<String>,
    pub password: Option<String>,
    pub insecure: bool,
    /// Docker's certificate directory (tests point it elsewhere).
    pub certs_dir: Option<PathBuf>,
}

/// The roots Docker trusts for `registry`: the system bundle and the registry's certs.d files.
pub fn roots_for(registry: &str, certs_dir: &Path) -> RootCertStore {
    let mut roots = crate::cluster::tls::system_roots();
    let dir = certs_dir.join(registry);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(pem) = std::fs::read(&f) {
                crate::cluster::tls::add_pem_certs(&mut roots, &pem);
            }
        }
    }
    roots
}

/// Every tag of `image`'s repository.
pub async fn list(image: &str, access: &Access) -> Result<Vec<String>, TagsError> {
    let repo = Repository::of(image);
    let certs = access.certs_dir.clone().unwrap_or_else(|| PathBuf::from(DOCKER_CERTS_DIR));
    let https = Client::with_roots(roots_for(&repo.registry, &certs))?;
    let mut session = Session { repo: &repo, access, client: https, authorization: None };
    let first = format!("/v2/{}/tags/list", repo.name);
    let answer = match session.get(&first).await {
        Err(TagsError::Transport(TlsError::Handshake { .. } | TlsError::Http { .. })) if access.insecure => {
            session.client = Client::plain();
            session.get(&first).await?
        }
        other => other?,
    };
    let mut tags = Vec::new();
    let mut answer = answer;
    for _ in 0..MAX_PAGES {
        let page: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|e| TagsError::Protocol {
                registry: repo.registry.clone(),
                what: "a tag list that is not JSON".into(),
                detail: e.to_string(),
            })?;
        tags.extend(
            page.get("tags")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned)),
        );
        match next_link(&answer.headers) {
            Some(next) => answer = session.get(&next).await?,
            None => break,
        }
    }
    Ok(tags)
}

struct Session<'a> {
    repo: &'a Repository,
    access: &'a Access,
    client: Client,
    authorization: Option<String>,
}

impl Session<'_> {
    /// GET `path` on the registry, authenticating once when it asks for it.
    async fn get(&mut self, path: &str) -> Result<Answer, TagsError> {
        let addr = self.repo.addr();
        let mut answer = self.client.send(&addr, http::Method::GET, path, &self.headers(), None).await?;
        if answer.status == 401 && self.authorization.is_none() {
            let challenge = answer
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            self.authorization = Some(self.authenticate(&challenge).await?);
            answer = self.client.send(&addr, http::Method::GET, path, &self.headers(), None).await?;
        }
        if answer.status != 200 {
            let detail = registry_error(&answer.body);
            return Err(TagsError::Refused {
                registry: self.repo.registry.clone(),
                repository: self.repo.name.clone(),
                status: answer.status,
                detail,
            });
        }
        Ok(answer)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("accept", "application/json".to_owned())];
        if let Some(a) = &self.authorization {
            h.push(("authorization", a.clone()));
        }
        h
    }

    fn basic(&self) -> Option<String> {
        use base64::Engine as _;
        let (u, p) = (self.access.username.as_ref()?, self.access.password.as_ref()?);
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))))
    }

    /// The Authorization header a `401`'s challenge asks for.
    async fn authenticate(&self, challenge: &str) -> Result<String, TagsError> {
        let protocol = |what: &str, detail: String| TagsError::Protocol {
            registry: self.repo.registry.clone(),
            what: what.to_owned(),
            detail,
        };
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            return self.basic().ok_or_else(|| TagsError::Refused {
                registry: self.repo.registry.clone(),
                repository: self.repo.name.clone(),
                status: 401,
                detail: "the registry wants a user and password: containerctl registry login".into(),
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(protocol("401 without a challenge it can answer", challenge.to_owned()));
        }
        let get =
            |k: &str| params.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        let realm =
            get("realm").ok_or_else(|| protocol("a Bearer challenge without a realm", challenge.into()))?;
        let mut query = Vec::new();
        if let Some(service) = get("service") {
            query.push(("service", service));
        }
        query.push(("scope", get("scope").unwrap_or_else(|| format!("repository:{}:pull", self.repo.name))));
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        let (secure, authority, path) = split_url(&realm)
            .ok_or_else(|| protocol("a token realm that is not an http(s) URL", realm.clone()))?;
        let path = if path.contains('?') { format!("{path}&{query}") } else { format!("{path}?{query}") };
        let client = if secure {
            let certs = self.access.certs_dir.clone().unwrap_or_else(|| PathBuf::from(DOCKER_CERTS_DIR));
            let host = authority.strip_suffix(":443").unwrap_or(&authority);
            Client::with_roots(roots_for(host, &certs))?
        } else if self.access.insecure {
            Client::plain()
        } else {
            return Err(protocol("a token realm over plain HTTP", realm.clone()));
        };
        let mut headers = vec![("accept", "application/json".to_owned())];
        if let Some(b) = self.basic() {
            headers.push(("authorization", b));
        }
        let answer = client.send(&authority, http::Method::GET, &path, &headers, None).await?;
        if answer.status != 200 {
            return Err(TagsError::Refused {
                registry: self.repo.registry.clone(),
                repository: self.repo.name.clone(),
                status: answer.status,
                detail: format!("its token service {realm} refused: {}", registry_error(&answer.body)),
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| protocol("a token that is not JSON", e.to_string()))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| protocol("a token answer without a token", String::new()))?;
        Ok(format!("Bearer {token}"))
    }
}

/// `Bearer realm="…",service="…"` → ("Bearer", [(realm, …), (service, …)]).
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            }
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_owned(), params)
}

/// `https://host[:port]/path?q` → (secure, "host:port", "/path?q").
fn split_url(url: &str) -> Option<(bool, String, String)> {
    let (secure, rest) = match url.split_once("://")? {
        ("https", r) => (true, r),
        ("http", r) => (false, r),
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((secure, with_port(authority, if secure { 443 } else { 80 }), path))
}

/// The path of a `Link: </v2/…?last=x&n=y>; rel="next"` header.
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    let (target, params) = link.split_once(';')?;
    if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
        return None;
    }
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    let path = match split_url(target) {
        Some((_, _, path)) => path,
        None => target.to_owned(),
    };
    path.starts_with("/v2/").then_some(path)
}

/// The registry's error message (`{"errors": [{"message": …}]}`), or the start of the body.
fn registry_error(body: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let from_json = v.as_ref().and_then(|v| v["errors"][0]["message"].as_str()).map(str::to_owned);
    from_json.unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_resolve_as_docker_does() {
        let r = |i: &str| {
            let r = Repository::of(i);
            (r.registry, r.name)
        };
        assert_eq!(r("busybox"), (DOCKER_HUB.into(), "library/busybox".into()));
        assert_eq!(r("grafana/grafana"), (DOCKER_HUB.into(), "grafana/grafana".into()));
        assert_eq!(r("docker.io/nginx"), (DOCKER_HUB.into(), "library/nginx".into()));
        assert_eq!(r("ghcr.io/org/app"), ("ghcr.io".into(), "org/app".into()));
        assert_eq!(r("localhost:5000/app"), ("localhost:5000".into(), "app".into()));
        assert_eq!(Repository::of("reg.test:5443/ctl/app").addr(), "reg.test:5443");
        assert_eq!(Repository::of("ghcr.io/a/b").addr(), "ghcr.io:443");
    }

    #[test]
    fn challenges_and_links() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(params[0], ("realm".into(), "https://auth.docker.io/token".into()));
        assert_eq!(params[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(params[2].1, "repository:library/busybox:pull");
        assert_eq!(parse_challenge("Basic realm=x").0, "Basic");
        assert_eq!(
            split_url("https://10.0.0.1:5001/v2/token?a=b"),
            Some((true, "10.0.0.1:5001".into(), "/v2/token?a=b".into()))
        );
        assert_eq!(split_url("http://h/t"), Some((false, "h:80".into(), "/t".into())));
        assert_eq!(split_url("ftp://h/t"), None);
        let mut h = http::HeaderMap::new();
        h.insert("link", http::HeaderValue::from_static("</v2/app/tags/list?last=1.2&n=100>; rel=\"next\""));
        assert_eq!(next_link(&h).as_deref(), Some("/v2/app/tags/list?last=1.2&n=100"));
        h.insert("link", http::HeaderValue::from_static("<https://elsewhere/x>; rel=\"next\""));
        assert_eq!(next_link(&h), None);
    }

    /// A registry that wants a bearer token from its realm (Basic u:p) and pages its tags.
    async fn token_registry() -> String {
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let realm = format!("http://{addr}/token");
        let tags = move |headers: HeaderMap, uri: axum::http::Uri| {
            let realm = realm.clone();
            async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer T0K") {
                    let challenge =
                        format!(r#"Bearer realm="{realm}",service="reg",scope="repository:ns/app:pull""#);
                    return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)], "{}")
                        .into_response();
                }
                if uri.query().is_some_and(|q| q.contains("last=1.1")) {
                    return axum::Json(serde_json::json!({"tags": ["1.2"]})).into_response();
                }
                let link = "</v2/ns/app/tags/list?last=1.1&n=2>; rel=\"next\"".to_owned();
                ([("link", link)], axum::Json(serde_json::json!({"tags": ["1.0", "1.1"]}))).into_response()
            }
        };
        let token = |headers: HeaderMap, uri: axum::http::Uri| async move {
            use base64::Engine as _;
            let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p"));
            let scoped = uri.query().is_some_and(|q| {
                q.contains("scope=repository%3Ans%2Fapp%3Apull") && q.contains("service=reg")
            });
            if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(basic.as_str()) && scoped {
                axum::Json(serde_json::json!({"token": "T0K"})).into_response()
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        };
        let app = axum::Router::new()
            .route("/v2/ns/app/tags/list", axum::routing::get(tags))
            .route("/token", axum::routing::get(token));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let app = app.clone();
                tokio::spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_token_flow_and_pages_of_a_plain_http_registry() {
        let addr = token_registry().await;
        let image = format!("{addr}/ns/app");
        let access = Access {
            username: Some("u".into()),
            password: Some("p".into()),
            insecure: true,
            certs_dir: Some(PathBuf::from("/nonexistent")),
        };
        let tags = list(&image, &access).await.expect("tags");
        assert_eq!(tags, ["1.0", "1.1", "1.2"]);
        // Without the credentials the token service refuses, and the error says so.
        let anonymous = Access { username: None, password: None, ..access.clone() };
        let e = list(&image, &anonymous).await.expect_err("refused");
        assert!(e.to_string().contains("token service"), "{e}");
        // Plain HTTP only where Docker would use it: not for a registry it reaches over TLS.
        let strict = Access { insecure: false, ..access };
        assert!(matches!(list(&image, &strict).await, Err(TagsError::Transport(_))));
    }

    #[test]
    fn registry_errors_are_read() {
        assert_eq!(
            registry_error(
                br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#
            ),
            "repository name not known to registry"
        );
        assert_eq!(registry_error(b"plain"), "plain");
    }
}
