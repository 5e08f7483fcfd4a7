//! The cluster registry seen from the daemon: `containerctl image push` (tag the local image into
//! the registry, push it with the right credential, stream Docker's progress) and the list of
//! images it holds, for the Cluster page. Its own file because it is the one operation that
//! talks to the registry rather than configuring it.

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{docker, fail, kind, Progress, StepError, StepKind};
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

/// `containerctl image push IMAGE:TAG`: tags the local image into the cluster registry and
/// pushes it, streaming Docker's progress. `token` is an operator token of the manager, needed
/// when pushing from another host.
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
    let credentials = match (s.primary, token) {
        (_, Some(t)) => bollard::auth::DockerCredentials {
            username: Some("token".into()),
            password: Some(t),
            serveraddress: Some(s.registry.clone()),
            ..Default::default()
        },
        (true, None) => bollard::auth::DockerCredentials {
            username: Some("containerctld".into()),
            password: Some(std::fs::read_to_string(d.cluster.paths.push_secret()).map(|s| s.trim().to_owned()).map_err(|e| fail(step, e.to_string(), ""))?),
            serveraddress: Some(s.registry.clone()),
            ..Default::default()
        },
        (false, None) => {
            return Err(kind(
                fail(
                    step,
                    "pushing from a host other than the manager needs an operator token of the manager",
                    "create one on the manager (`containerctl token create --role operator`) and pass it with --token",
                ),
                StepKind::Forbidden,
            ))
        }
    };
    let docker = docker(d, step)?;
    let target = format!("{}/{plain}", s.registry);
    docker.inspect_image(image).await.map_err(|_| {
        kind(
            fail(
                step,
                format!("there is no local image {image}"),
                "build or load it first (`docker images`)",
            ),
            StepKind::NotFound,
        )
    })?;
    let opts = bollard::query_parameters::TagImageOptionsBuilder::new().repo(&target).tag(tag).build();
    docker
        .tag_image(image, Some(opts))
        .await
        .map_err(|e| fail(step, format!("docker tag failed: {e}"), ""))?;
    p.step(step, "running", format!("pushing {image} as {target}:{tag}"));
    let opts = bollard::query_parameters::PushImageOptionsBuilder::new().tag(tag).build();
    let mut stream = docker.push_image(&target, Some(opts), Some(credentials));
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
    p.step(step, "done", format!("{target}:{tag} {digest}"));
    Ok(format!("{target}:{tag}"))
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
                "pushing needs an operator or admin token",
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
