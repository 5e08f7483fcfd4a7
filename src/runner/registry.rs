//! Which credential a pull sends: the cluster registry's, written by `containerctl cluster
//! init/join`, for images whose registry part is the cluster registry's address (never to another
//! registry); otherwise the stored credential of `containerctl registry login` that applies (see
//! [`crate::credentials`]).

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::BollardRequest;
use serde::Deserialize;

/// Where the cluster's registry credentials live on every member.
pub const AUTH_FILE: &str = "/var/lib/containerctl/cluster/registry-auth.json";

#[derive(Debug, Deserialize)]
struct AuthFile {
    serveraddress: String,
    username: String,
    password: String,
}

/// The registry part of an image repository (`host:5002` of `host:5002/cam`), as Docker decides
/// it: a first path component with `.` or `:` in it, or `localhost`.
pub fn registry_of(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// The credentials in `text` (the auth file's content) if they are for `image`'s registry.
pub fn credentials_for(text: &str, image: &str) -> Result<Option<DockerCredentials>, String> {
    let auth: AuthFile = serde_json::from_str(text).map_err(|e| format!("{AUTH_FILE}: {e}"))?;
    if registry_of(image) != Some(auth.serveraddress.as_str()) {
        return Ok(None);
    }
    Ok(Some(DockerCredentials {
        username: Some(auth.username),
        password: Some(auth.password),
        serveraddress: Some(auth.serveraddress),
        ..Default::default()
    }))
}

/// The cluster registry's credentials for `image`, if this host has them and they apply. A
/// missing file means no credentials; an unreadable or malformed one is logged and ignored, so
/// the pull reports what the registry says.
pub fn credentials(image: &str) -> Option<DockerCredentials> {
    let text = match std::fs::read_to_string(AUTH_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            super::log(crate::journal::WARNING, &format!("cannot read {AUTH_FILE}: {e}"));
            return None;
        }
    };
    credentials_for(&text, image).unwrap_or_else(|e| {
        super::log(crate::journal::WARNING, &e);
        None
    })
}

/// This host's cluster registry address (`HOST:5002`), if it is a member. Quiet: for callers
/// other than the runner.
pub fn cluster_registry() -> Option<String> {
    let text = std::fs::read_to_string(AUTH_FILE).ok()?;
    serde_json::from_str::<AuthFile>(&text).ok().map(|a| a.serveraddress)
}

/// Whose credential a pull sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// This host's node credential for the cluster registry.
    Cluster,
    /// A credential of `containerctl registry login`: its REGISTRY[/NAMESPACE] and user.
    Stored { registry: String, username: String },
}

/// A credential for one image. No Debug: it holds a password.
pub struct Credential {
    pub auth: DockerCredentials,
    pub source: Source,
}

/// The credential a pull of `image` sends, if any: the cluster registry's for its address, else
/// the stored one with the longest matching registry/namespace. An unreadable store is logged
/// and the pull goes without (the registry's refusal then says what to do).
pub fn for_image(image: &str) -> Option<Credential> {
    if let Some(auth) = credentials(image) {
        return Some(Credential { auth, source: Source::Cluster });
    }
    let path = crate::credentials::path(Path::new(crate::config::DEFAULT_STATE_DIR));
    match crate::credentials::load(&path) {
        Ok(store) => store.lookup(image).map(|e| Credential {
            auth: e.docker_credentials(),
            source: Source::Stored { registry: e.registry.clone(), username: e.username.clone() },
        }),
        Err(e) => {
            super::log(crate::journal::WARNING, &format!("{e}; pulling {image} without a stored credential"));
            None
        }
    }
}

/// What the runner says when a registry refused a pull of `reference` (the unit's `image` is
/// `image`) for authentication: the registry, whose credential was sent, and the command that
/// fixes it. `detail` is dockerd's message.
pub fn refusal_message(reference: &str, image: &str, sent: Option<&Source>, detail: &str) -> String {
    let host = crate::credentials::registry_host(image);
    match sent {
        None => format!(
            "cannot pull {reference}: registry {host} refused it without a login ({detail}); \
             an admin runs `containerctl registry login {host} --username USER --password-stdin`, \
             then start the unit again"
        ),
        Some(Source::Stored { registry, username }) => format!(
            "cannot pull {reference}: registry {host} refused the stored credential of {username} for \
             {registry} ({detail}); an admin runs `containerctl registry login {registry} --username USER \
             --password-stdin` with a valid password (`containerctl registry test {registry}` checks the \
             stored one), then start the unit again"
        ),
        Some(Source::Cluster) => format!(
            "cannot pull {reference}: the cluster registry {host} refused this host's node credential \
             ({detail}); check the membership with `containerctl cluster status`"
        ),
    }
}

/// bollard encodes X-Registry-Auth with the standard base64 alphabet, but dockerd decodes it with
/// the URL-safe one, and for a pull it silently drops a header it cannot decode: the pull goes
/// without credentials. A password with `?`, `~` or `>` in it is enough for `/` or `+` to appear.
/// Installed as the request modifier of every connection ([`super::connect`]), this re-encodes
/// the header.
pub fn url_safe_auth(mut request: BollardRequest) -> BollardRequest {
    let fixed = request
        .headers()
        .get(AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|json| http::HeaderValue::from_str(&URL_SAFE.encode(json)).ok());
    if let Some(v) = fixed {
        request.headers_mut().insert(AUTH_HEADER, v);
    }
    request
}

const AUTH_HEADER: &str = "X-Registry-Auth";

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = r#"{"serveraddress": "10.0.0.1:5002", "username": "node", "password": "s3cret"}"#;

    #[test]
    fn registry_part() {
        assert_eq!(registry_of("10.0.0.1:5002/cam"), Some("10.0.0.1:5002"));
        assert_eq!(registry_of("registry.example/a/b"), Some("registry.example"));
        assert_eq!(registry_of("localhost/a"), Some("localhost"));
        assert_eq!(registry_of("ctl-test/busybox"), None);
        assert_eq!(registry_of("busybox"), None);
    }

    #[test]
    fn credentials_only_for_their_registry() {
        let c = credentials_for(AUTH, "10.0.0.1:5002/cam").expect("valid").expect("applies");
        assert_eq!(c.username.as_deref(), Some("node"));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.serveraddress.as_deref(), Some("10.0.0.1:5002"));
        assert!(credentials_for(AUTH, "10.0.0.1:5003/cam").expect("valid").is_none());
        assert!(credentials_for(AUTH, "ctl-test/busybox").expect("valid").is_none());
        assert!(credentials_for("{}", "10.0.0.1:5002/cam").is_err());
    }

    #[test]
    fn refusals_name_the_registry_and_the_command() {
        let m = refusal_message(
            "reg.example:5443/app:1",
            "reg.example:5443/app",
            None,
            "no basic auth credentials",
        );
        assert!(m.contains("registry reg.example:5443 refused"), "{m}");
        assert!(
            m.contains("`containerctl registry login reg.example:5443 --username USER --password-stdin`"),
            "{m}"
        );
        assert!(m.contains("no basic auth credentials"), "{m}");
        let sent = Source::Stored { registry: "ghcr.io/org".into(), username: "robot".into() };
        let m = refusal_message("ghcr.io/org/app:2", "ghcr.io/org/app", Some(&sent), "denied: denied");
        assert!(m.contains("stored credential of robot for ghcr.io/org"), "{m}");
        assert!(m.contains("`containerctl registry login ghcr.io/org"), "{m}");
        assert!(m.contains("`containerctl registry test ghcr.io/org`"), "{m}");
        let m = refusal_message("busybox:1", "busybox", None, "pull access denied");
        assert!(m.contains("registry login docker.io "), "{m}");
        let m = refusal_message(
            "10.0.0.1:5002/cam:1",
            "10.0.0.1:5002/cam",
            Some(&Source::Cluster),
            "unauthorized",
        );
        assert!(m.contains("cluster registry 10.0.0.1:5002") && m.contains("cluster status"), "{m}");
    }

    #[test]
    fn registry_auth_is_sent_url_safe() {
        // `???` puts a 0x3F at a position where standard base64 writes `/`.
        let json = r#"{"username":"u","password":"a???~~~>>>","serveraddress":"reg:5443"}"#;
        let standard = STANDARD.encode(json);
        assert!(standard.contains('/') || standard.contains('+'), "{standard}");
        let request = http::Request::builder()
            .header(AUTH_HEADER, &standard)
            .body(bollard::body_full(Default::default()))
            .expect("a request");
        let request = url_safe_auth(request);
        let sent =
            request.headers().get(AUTH_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(!sent.contains('/') && !sent.contains('+'), "{sent}");
        assert_eq!(URL_SAFE.decode(&sent).ok().as_deref(), Some(json.as_bytes()));
        let plain = http::Request::builder().body(bollard::body_full(Default::default())).expect("a request");
        assert!(url_safe_auth(plain).headers().get(AUTH_HEADER).is_none());
    }
}
