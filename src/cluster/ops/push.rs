//! The cluster registry seen from the daemon: `containerctl image push` (tag the local image into
//! the registry, push it with the right credential, stream Docker's progress) and the list of
//! images it holds, for the Cluster page. Its own file because it is the one operation that
//! talks to the registry rather than configuring it.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{docker, fail, kind, Progress, StepError, StepKind};
use crate::cluster::registry::{Manifest, TagCheck};
use crate::cluster::{self, registry, tls};
use crate::daemon::Daemon;

/// Images in the cluster registry with their tags (primary manager only).
pub async fn registry_images(d: &Daemon) -> Option<Vec<Value>> {
    let s = d.cluster.state().filter(|s| s.primary)?;
    let ca = std::fs::read_to_string(d.cluster.paths.ca_cert()).ok()?;
    let client = tls::Client::with_ca(&ca).ok()?;
    let signer = d.cluster.signer()?;
    let bearer = |access: registry::Access| {
        let tok = signer.issue("containerctld", cluster::REGISTRY_SERVICE, &[access], 60).ok()?;
        Some([("authorization", format!("Bearer {tok}"))])
    };
    let catalog =
        registry::Access { kind: "registry".into(), name: "catalog".into(), actions: vec!["*".into()] };
    let auth = bearer(catalog)?;
    let (status, body) =
        client.request(&s.registry, http::Method::GET, "/v2/_catalog?n=1000", &auth, None).await.ok()?;
    if status != 200 {
        return None;
    }
    let repos: Vec<String> = serde_json::from_slice::<Value>(&body)
        .ok()?
        .get("repositories")?
        .as_array()?
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .filter(|r| !r.starts_with(registry::STAGING_PREFIX))
        .collect();
    let mut out = Vec::new();
    for r in repos {
        let pull =
            registry::Access { kind: "repository".into(), name: r.clone(), actions: vec!["pull".into()] };
        let Some(auth) = bearer(pull) else { continue };
        let tags = match client
            .request(&s.registry, http::Method::GET, &format!("/v2/{r}/tags/list"), &auth, None)
            .await
        {
            Ok((200, body)) => {
                serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("tags").cloned())
            }
            _ => None,
        };
        out.push(json!({"name": r, "tags": tags.unwrap_or(json!([]))}));
    }
    Some(out)
}

/// `containerctl image push IMAGE:TAG`: pushes the local image to the cluster registry as
/// `REGISTRY/IMAGE:TAG`, streaming Docker's progress. Tags are immutable: a tag that holds
/// another image is refused before anything is pushed or tagged; one that holds this image is
/// left as it is. On the manager the daemon checks the tag and pushes with its own secret; on
/// another host it pushes to a staging repository with `token` (an operator token of the
/// manager) and asks the manager to check the tag and copy the image there.
pub async fn push(d: &Daemon, image: &str, token: Option<String>, p: &Progress) -> Result<String, StepError> {
    let step = "push";
    let s = d.cluster.state().ok_or_else(|| {
        kind(
            fail(
                step,
                "this host is not in a cluster",
                "run `containerctl cluster init` or `cluster join` first",
            ),
            StepKind::Conflict,
        )
    })?;
    let (repo, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') && !r.is_empty() && !t.is_empty() => (r, t),
        _ => {
            return Err(kind(
                fail(step, format!("`{image}` has no tag"), "name the image as NAME:TAG, e.g. myapp:1.2"),
                StepKind::BadRequest,
            ))
        }
    };
    let plain = repo.strip_prefix(&format!("{}/", s.registry)).unwrap_or(repo);
    if plain.split('/').next().is_some_and(|first| first.contains(':') || first.contains('.')) {
        return Err(kind(
            fail(
                step,
                format!("`{repo}` names another registry"),
                "push images by their local name, e.g. myapp:1.2",
            ),
            StepKind::BadRequest,
        ));
    }
    if plain.starts_with(registry::STAGING_PREFIX) || !valid_repo(plain) || !valid_tag(tag) {
        return Err(kind(
            fail(
                step,
                format!("`{plain}:{tag}` is not a name the cluster registry takes"),
                format!(
                    "use lower-case path components and a tag of letters, digits, '.', '_' and '-' (not below {})",
                    registry::STAGING_PREFIX
                ),
            ),
            StepKind::BadRequest,
        ));
    }
    if !s.primary && token.is_none() {
        return Err(kind(
            fail(
                step,
                "pushing from a host other than the manager needs an operator token of the manager",
                "create one on the manager (`containerctl token create --role operator`) and pass it with --token",
            ),
            StepKind::Forbidden,
        ));
    }
    let docker = docker(d, step)?;
    let target = format!("{}/{plain}", s.registry);
    let local = docker.inspect_image(image).await.map_err(|_| {
        kind(
            fail(
                step,
                format!("there is no local image {image}"),
                "build or load it first (`docker images`)",
            ),
            StepKind::NotFound,
        )
    })?;
    let image_id = local.id.unwrap_or_default();
    if s.primary {
        // The daemon's own push: the tag is checked and written under one lock.
        let _guard = d.cluster.push_lock.lock().await;
        let reg = ManagerRegistry::new(d, &s, step)?;
        let existing = reg.manifest(plain, tag).await?;
        match registry::check_tag(plain, tag, existing.as_ref(), &image_id) {
            TagCheck::Taken(message) => {
                return Err(kind(fail(step, message, registry::taken_hint(plain, tag)), StepKind::Conflict))
            }
            TagCheck::Same(digest) => {
                tag_local(&docker, image, &target, tag).await?;
                p.step(step, "done", format!("{target}:{tag} {digest} (already in the registry: unchanged)"));
                return Ok(format!("{target}:{tag}"));
            }
            TagCheck::Absent => {}
        }
        let secret = std::fs::read_to_string(d.cluster.paths.push_secret())
            .map(|s| s.trim().to_owned())
            .map_err(|e| fail(step, e.to_string(), ""))?;
        let credentials = bollard::auth::DockerCredentials {
            username: Some("containerctld".into()),
            password: Some(secret),
            serveraddress: Some(s.registry.clone()),
            ..Default::default()
        };
        tag_local(&docker, image, &target, tag).await?;
        p.step(step, "running", format!("pushing {image} as {target}:{tag}"));
        let digest = docker_push(&docker, &target, tag, credentials, p).await?;
        p.step(step, "done", format!("{target}:{tag} {digest}"));
        return Ok(format!("{target}:{tag}"));
    }
    // Another host: stage, then the manager checks the tag and copies the image to it.
    let token = token.unwrap_or_default();
    let staged_repo = format!("{}{plain}", registry::STAGING_PREFIX);
    let staged_tag = crate::digest::random_hex(8);
    let staged = format!("{}/{staged_repo}", s.registry);
    let credentials = bollard::auth::DockerCredentials {
        username: Some("token".into()),
        password: Some(token.clone()),
        serveraddress: Some(s.registry.clone()),
        ..Default::default()
    };
    tag_local(&docker, image, &staged, &staged_tag).await?;
    p.step(step, "running", format!("pushing {image} to {staged}:{staged_tag} for the manager to check"));
    let pushed = docker_push(&docker, &staged, &staged_tag, credentials, p).await;
    let rm = bollard::query_parameters::RemoveImageOptionsBuilder::new().noprune(true).build();
    if let Err(e) = docker.remove_image(&format!("{staged}:{staged_tag}"), Some(rm), None).await {
        tracing::warn!("cluster: removing the local tag {staged}:{staged_tag}: {e}");
    }
    pushed?;
    let req = PromoteRequest {
        staged_repo,
        staged_tag,
        repo: plain.to_owned(),
        tag: tag.to_owned(),
        image_id: image_id.clone(),
    };
    let (digest, unchanged) = ask_promote(d, &s, &token, &req).await?;
    tag_local(&docker, image, &target, tag).await?;
    let note = if unchanged { " (already in the registry: unchanged)" } else { "" };
    p.step(step, "done", format!("{target}:{tag} {digest}{note}"));
    Ok(format!("{target}:{tag}"))
}

/// What a host asks the manager to copy from staging to a tag (`POST /cluster/v1/promote`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromoteRequest {
    pub staged_repo: String,
    pub staged_tag: String,
    pub repo: String,
    pub tag: String,
    /// The image ID (config digest) the pusher pushed: the staged manifest must be that image.
    pub image_id: String,
}

/// On the manager: copies a staged image to its tag after checking that the staged manifest is
/// the image the caller pushed and that the tag is absent or holds that same image. Returns the
/// tag's manifest digest and whether it was there already.
pub async fn promote(d: &Daemon, req: &PromoteRequest) -> Result<(String, bool), StepError> {
    let step = "push";
    let s =
        d.cluster.state().filter(|s| s.primary).ok_or_else(|| {
            kind(fail(step, "this host is not the cluster's manager", ""), StepKind::Conflict)
        })?;
    let names_ok = req.staged_repo == format!("{}{}", registry::STAGING_PREFIX, req.repo)
        && !req.repo.starts_with(registry::STAGING_PREFIX)
        && valid_repo(&req.repo)
        && valid_tag(&req.tag)
        && valid_tag(&req.staged_tag)
        && req.image_id.strip_prefix("sha256:").is_some_and(|h| h.len() == 64);
    if !names_ok {
        return Err(kind(fail(step, "bad promote request", ""), StepKind::BadRequest));
    }
    let (repo, tag) = (req.repo.as_str(), req.tag.as_str());
    let _guard = d.cluster.push_lock.lock().await;
    let reg = ManagerRegistry::new(d, &s, step)?;
    let staged = reg.manifest(&req.staged_repo, &req.staged_tag).await?.ok_or_else(|| {
        kind(
            fail(step, format!("nothing is staged as {}:{}", req.staged_repo, req.staged_tag), "push again"),
            StepKind::NotFound,
        )
    })?;
    if staged.config.as_deref() != Some(req.image_id.as_str()) {
        return Err(kind(
            fail(
                step,
                format!(
                    "the staged {}:{} is not image {} (it is {})",
                    req.staged_repo,
                    req.staged_tag,
                    req.image_id,
                    staged.config.as_deref().unwrap_or("a manifest list")
                ),
                "push again",
            ),
            StepKind::Conflict,
        ));
    }
    let existing = reg.manifest(repo, tag).await?;
    match registry::check_tag(repo, tag, existing.as_ref(), &req.image_id) {
        TagCheck::Taken(message) => {
            tracing::warn!("cluster: push refused: {message}");
            Err(kind(fail(step, message, registry::taken_hint(repo, tag)), StepKind::Conflict))
        }
        TagCheck::Same(digest) => Ok((digest, true)),
        TagCheck::Absent => {
            reg.copy(&req.staged_repo, &staged, repo, tag).await?;
            tracing::info!("cluster: {repo}:{tag} is {} (image {})", staged.digest, req.image_id);
            Ok((staged.digest, false))
        }
    }
}

/// Asks the manager to promote a staged image; `(digest, unchanged)`.
async fn ask_promote(
    d: &Daemon,
    s: &crate::cluster::State,
    token: &str,
    req: &PromoteRequest,
) -> Result<(String, bool), StepError> {
    let step = "push";
    let client = tls::Client::with_ca(&d.cluster.read(&d.cluster.paths.ca_cert(), step)?)
        .map_err(|e| fail(step, e.to_string(), ""))?;
    let auth = [("authorization", format!("Bearer {token}"))];
    let body = serde_json::to_vec(req).map_err(|e| fail(step, e.to_string(), ""))?;
    let (status, body) = client
        .request(&s.manager_api, http::Method::POST, "/cluster/v1/promote", &auth, Some(body))
        .await
        .map_err(|e| {
            kind(fail(step, e.to_string(), "check that the manager is reachable"), StepKind::Unavailable)
        })?;
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    if status == 200 {
        let digest = v["digest"].as_str().unwrap_or_default().to_owned();
        return Ok((digest, v["unchanged"].as_bool().unwrap_or(false)));
    }
    let message = v["error"]["message"].as_str().unwrap_or("the manager refused the push").to_owned();
    let k = match status {
        401 | 403 => StepKind::Forbidden,
        409 => StepKind::Conflict,
        400 => StepKind::BadRequest,
        404 => StepKind::NotFound,
        _ => StepKind::Failed,
    };
    Err(kind(fail(step, message, ""), k))
}

async fn tag_local(docker: &bollard::Docker, image: &str, repo: &str, tag: &str) -> Result<(), StepError> {
    let opts = bollard::query_parameters::TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
    docker.tag_image(image, Some(opts)).await.map_err(|e| fail("push", format!("docker tag failed: {e}"), ""))
}

/// `docker push REPO:TAG`, streaming its progress; the manifest digest it reports.
async fn docker_push(
    docker: &bollard::Docker,
    repo: &str,
    tag: &str,
    credentials: bollard::auth::DockerCredentials,
    p: &Progress,
) -> Result<String, StepError> {
    let step = "push";
    let opts = bollard::query_parameters::PushImageOptionsBuilder::new().tag(tag).build();
    let mut stream = docker.push_image(repo, Some(opts), Some(credentials));
    let mut digest = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|e| e.message) {
                    return Err(push_error(&e));
                }
                let status = info.status.unwrap_or_default();
                if let Some(dg) = status.split_whitespace().find(|w| w.starts_with("sha256:")) {
                    digest = dg.to_owned();
                }
                p.send(json!({"step": step, "state": "progress", "detail": status, "progress": info.progress_detail.map(|d| json!({"current": d.current, "total": d.total}))}));
            }
            Err(e) => return Err(push_error(&e.to_string())),
        }
    }
    Ok(digest)
}

/// A repository name as distribution takes it: `/`-separated lower-case components of
/// `[a-z0-9]` with single `.`, `_`, `__` or `-` runs inside.
fn valid_repo(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-'))
        })
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

/// The cluster registry as the manager's daemon talks to it, with tokens it signs itself.
struct ManagerRegistry {
    client: tls::Client,
    addr: String,
    signer: std::sync::Arc<registry::TokenSigner>,
}

impl ManagerRegistry {
    fn new(d: &Daemon, s: &crate::cluster::State, step: &str) -> Result<ManagerRegistry, StepError> {
        let ca = d.cluster.read(&d.cluster.paths.ca_cert(), step)?;
        let client = tls::Client::with_ca(&ca).map_err(|e| fail(step, e.to_string(), ""))?;
        let signer = d.cluster.signer().ok_or_else(|| {
            fail(
                step,
                "the registry token key is missing",
                "run `containerctl cluster init` again on the manager",
            )
        })?;
        Ok(ManagerRegistry { client, addr: s.registry.clone(), signer })
    }

    fn auth(&self, access: &[(&str, &[&str])]) -> Result<Vec<(&'static str, String)>, StepError> {
        let access: Vec<registry::Access> = access
            .iter()
            .map(|(name, actions)| registry::Access {
                kind: "repository".into(),
                name: (*name).to_owned(),
                actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            })
            .collect();
        let tok = self
            .signer
            .issue("containerctld", cluster::REGISTRY_SERVICE, &access, 120)
            .map_err(|e| fail("push", e.to_string(), ""))?;
        Ok(vec![("authorization", format!("Bearer {tok}"))])
    }

    fn failed(&self, what: &str, status: u16, body: &[u8]) -> StepError {
        fail(
            "push",
            format!("the registry answered {status} to {what}: {}", String::from_utf8_lossy(body).trim()),
            format!("see `journalctl -u {}`", cluster::REGISTRY_UNIT),
        )
    }

    /// The manifest `repo:reference` holds, `None` when there is none.
    async fn manifest(&self, repo: &str, reference: &str) -> Result<Option<Manifest>, StepError> {
        let mut headers = self.auth(&[(repo, &["pull"])])?;
        headers.push(("accept", registry::MANIFEST_ACCEPT.to_owned()));
        let path = format!("/v2/{repo}/manifests/{reference}");
        let (status, body) = self
            .client
            .request(&self.addr, http::Method::GET, &path, &headers, None)
            .await
            .map_err(|e| kind(fail("push", e.to_string(), ""), StepKind::Unavailable))?;
        match status {
            200 => Manifest::parse(&body)
                .map(Some)
                .map_err(|e| fail("push", format!("{repo}:{reference}: {e}"), "")),
            404 => Ok(None),
            _ => Err(self.failed(&format!("GET {path}"), status, &body)),
        }
    }

    /// Puts manifest `m` of repository `from` under `to:tag`, its blobs mounted across (nothing
    /// is uploaded again).
    async fn copy(&self, from: &str, m: &Manifest, to: &str, tag: &str) -> Result<(), StepError> {
        let headers = self.auth(&[(from, &["pull"]), (to, &["pull", "push"])])?;
        for blob in &m.blobs {
            let path = format!("/v2/{to}/blobs/uploads/?mount={blob}&from={from}");
            let (status, body) = self
                .client
                .request(&self.addr, http::Method::POST, &path, &headers, None)
                .await
                .map_err(|e| fail("push", e.to_string(), ""))?;
            if status != 201 {
                return Err(self.failed(&format!("mounting {blob} from {from} into {to}"), status, &body));
            }
        }
        let mut headers = headers;
        headers.push(("content-type", m.media_type.clone()));
        let path = format!("/v2/{to}/manifests/{tag}");
        let (status, body) = self
            .client
            .request(&self.addr, http::Method::PUT, &path, &headers, Some(m.bytes.clone()))
            .await
            .map_err(|e| fail("push", e.to_string(), ""))?;
        if status != 201 {
            return Err(self.failed(&format!("PUT {path}"), status, &body));
        }
        Ok(())
    }
}

fn push_error(message: &str) -> StepError {
    let denied = message.contains("denied")
        || message.contains("unauthorized")
        || message.contains("authentication required");
    if denied {
        kind(
            fail(
                "push",
                format!("the registry refused the push: {message}"),
                "pushing from another host needs an operator or admin token of the manager (--token)",
            ),
            StepKind::Forbidden,
        )
    } else {
        fail(
            "push",
            message.to_owned(),
            "check the registry's journal (`journalctl -u containerctl-registry`)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_and_tags_as_distribution_takes_them() {
        for ok in ["app", "team/app", "a.b/c-d", "a__b"] {
            assert!(valid_repo(ok), "{ok}");
        }
        for bad in ["", "App", "/app", "app/", "a//b", "-a", "a-", "a:b", "../x", "a b"] {
            assert!(!valid_repo(bad), "{bad}");
        }
        assert!(valid_tag("1.2-rc_1") && valid_tag("_x") && valid_tag(&"a".repeat(128)));
        assert!(!valid_tag("") && !valid_tag(".1") && !valid_tag("a/b") && !valid_tag(&"a".repeat(129)));
    }
}
