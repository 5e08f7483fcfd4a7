//! Credentials for the cluster registry, written by `containerctl cluster init/join`.
//!
//! They are passed to dockerd only for images whose registry part is the cluster registry's
//! address, never to another registry.

use bollard::auth::DockerCredentials;
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
}
