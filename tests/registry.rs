//! cluster::registry against the real thing: Debian's docker-registry (distribution 2.8) with the
//! config `render_config` writes and token authentication by a small token endpoint built from
//! `parse_scope`, `grant`, `TokenSigner` and `token_response`; the local dockerd pushes and pulls.
//! Needs dockerd, /usr/bin/docker-registry and ctl-test/busybox:1 (scripts/test.sh provides all
//! three); built only with `--features docker-tests`. Plain HTTP on 127.0.0.1: dockerd treats
//! loopback registries as insecure, so no TLS is involved here.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptions, TagImageOptionsBuilder,
};
use bollard::Docker;
use containerctl::cluster::registry::{
    grant, parse_scope, render_config, token_response, PushRight, RegistryConfig, TokenSigner,
};
use futures_util::StreamExt;

const SERVICE: &str = "containerctl-registry";
const ISSUER: &str = "containerctl-test";
const IMAGE: &str = "ctl-test/busybox:1";

struct Registry {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// The status line of `GET path` over plain HTTP/1.0, or None if nothing answers yet.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).split_whitespace().nth(1)?.parse().ok()
}

fn start_registry(dir: &Path, port: u16, token_port: u16, cert_pem: &str) -> Registry {
    let bundle = dir.join("token.crt");
    std::fs::write(&bundle, cert_pem).expect("write rootcertbundle");
    let config = RegistryConfig {
        listen: format!("127.0.0.1:{port}"),
        storage_dir: dir.join("storage"),
        tls_cert: None,
        tls_key: None,
        realm: format!("http://127.0.0.1:{token_port}/v2/token"),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        rootcertbundle: bundle,
    };
    let path = dir.join("config.yml");
    std::fs::write(&path, render_config(&config)).expect("write config");
    let log = dir.join("registry.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("/usr/bin/docker-registry (apt install docker-registry)");
    let reg = Registry { child, log };
    // Ready once /v2/ answers 401: token auth is on and nothing gets in without a token.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http_status(port, "/v2/") {
            Some(401) => return reg,
            Some(other) => panic!("registry answered /v2/ with {other}, not 401; log:\n{}", reg.log()),
            None if Instant::now() > deadline => {
                panic!("registry did not answer in 30s; log:\n{}", reg.log())
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

struct Issuer {
    signer: TokenSigner,
}

/// The token endpoint: Basic "pushpw" gets pull and push, "pullpw" pull only, anything else 401.
async fn token(
    State(issuer): State<Arc<Issuer>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = basic.as_deref().and_then(|b| b.split_once(':')) else {
        return unauthorized();
    };
    let right = match password {
        "pushpw" => PushRight::All,
        "stagepw" => PushRight::Staging,
        "pullpw" => PushRight::None,
        _ => return unauthorized(),
    };
    let service = query.iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str()).unwrap_or("");
    if service != SERVICE {
        return (StatusCode::BAD_REQUEST, "unknown service").into_response();
    }
    let requested: Vec<_> =
        query.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| parse_scope(v)).collect();
    let access = grant(&requested, right);
    match issuer.signer.issue(user, service, &access, 300) {
        Ok(t) => Json(token_response(&t, 300)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"containerctl\"")], "")
        .into_response()
}

fn creds(password: &str) -> Option<DockerCredentials> {
    Some(DockerCredentials {
        username: Some("tester".into()),
        password: Some(password.into()),
        ..Default::default()
    })
}

/// Pushes `repo:1`; Err carries dockerd's message.
async fn push(docker: &Docker, repo: &str, credentials: Option<DockerCredentials>) -> Result<(), String> {
    let opts = PushImageOptionsBuilder::default().tag("1").build();
    let mut stream = docker.push_image(repo, Some(opts), credentials);
    while let Some(item) = stream.next().await {
        item.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn pull(docker: &Docker, repo: &str, credentials: Option<DockerCredentials>) -> Result<(), String> {
    let opts = CreateImageOptionsBuilder::default().from_image(repo).tag("1").build();
    let mut stream = docker.create_image(Some(opts), None, credentials);
    while let Some(item) = stream.next().await {
        item.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn tag(docker: &Docker, repo: &str) {
    let opts = TagImageOptionsBuilder::default().repo(repo).tag("1").build();
    docker.tag_image(IMAGE, Some(opts)).await.expect("docker tag");
}

async fn untag(docker: &Docker, repo: &str) {
    let _ = docker.remove_image(&format!("{repo}:1"), None::<RemoveImageOptions>, None).await;
}

async fn has_image(docker: &Docker, reference: &str) -> bool {
    docker.inspect_image(reference).await.is_ok()
}

#[tokio::test]
async fn push_and_pull_with_containerctl_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key_pem, cert_pem) = TokenSigner::generate().expect("generate key");
    let signer = TokenSigner::from_pem(&key_pem, ISSUER).expect("load key");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind token endpoint");
    let token_port = listener.local_addr().expect("addr").port();
    let app = Router::new().route("/v2/token", get(token)).with_state(Arc::new(Issuer { signer }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = free_port();
    let registry = start_registry(dir.path(), port, token_port, &cert_pem);

    let docker = containerctl::runner::connect().await.expect("dockerd");
    assert!(has_image(&docker, IMAGE).await, "{IMAGE} missing: run testbed/lib.sh tb_build_images");
    let repo = format!("127.0.0.1:{port}/ctl-test/busybox");
    let other = format!("127.0.0.1:{port}/other/busybox");
    tag(&docker, &repo).await;
    tag(&docker, &other).await;

    let r = push(&docker, &repo, creds("pushpw")).await;
    assert!(r.is_ok(), "push with push credentials failed: {r:?}\nregistry log:\n{}", registry.log());

    let r = push(&docker, &other, creds("pullpw")).await;
    assert!(r.as_ref().is_err_and(|e| e.contains("denied")), "push with pull-only credentials: {r:?}");

    // A staging right (API tokens) pushes to incoming/ only, never to a tag of another repository.
    let r = push(&docker, &other, creds("stagepw")).await;
    assert!(r.as_ref().is_err_and(|e| e.contains("denied")), "push with a staging right: {r:?}");
    let staged = format!("127.0.0.1:{port}/incoming/busybox");
    tag(&docker, &staged).await;
    let r = push(&docker, &staged, creds("stagepw")).await;
    untag(&docker, &staged).await;
    assert!(
        r.is_ok(),
        "push to incoming/ with a staging right failed: {r:?}\nregistry log:\n{}",
        registry.log()
    );

    let r = push(&docker, &other, creds("wrong")).await;
    assert!(r.as_ref().is_err_and(|e| e.contains("unauthorized")), "push with a wrong password: {r:?}");

    untag(&docker, &repo).await;
    assert!(!has_image(&docker, &format!("{repo}:1")).await);
    let r = pull(&docker, &repo, creds("pullpw")).await;
    assert!(r.is_ok(), "pull with pull credentials failed: {r:?}\nregistry log:\n{}", registry.log());
    assert!(has_image(&docker, &format!("{repo}:1")).await);

    untag(&docker, &repo).await;
    let r = pull(&docker, &repo, None).await;
    assert!(r.as_ref().is_err_and(|e| e.contains("unauthorized")), "anonymous pull: {r:?}");
    assert!(!has_image(&docker, &format!("{repo}:1")).await);

    // The pull-only push above must not have created the other repository.
    untag(&docker, &other).await;
    let r = pull(&docker, &other, creds("pushpw")).await;
    assert!(
        r.as_ref().is_err_and(|e| e.contains("manifest unknown")),
        "{other} after a pull-only push: {r:?}"
    );
}
