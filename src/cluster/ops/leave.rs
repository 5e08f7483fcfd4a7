//! Leaving and removing: `cluster leave` on a member (tell the manager, unmount, leave the
//! Swarm, forget the membership), the teardown of the whole cluster when the primary manager
//! leaves last, and the manager's removal of a node (brick, Swarm node, record). Its own file
//! because these are the undoing operations: they go on past failures, so each failure is
//! collected in a [`Cleanup`] and reported instead of stopping the rest.

use std::sync::Arc;
use std::time::Duration;

use super::admit::{find_swarm_node, is_active, sync_auth_allow};
use super::volume::unmount_shared;
use super::{fail, kind, Cleanup, Progress, StepError, StepKind};
use crate::cluster::{self, gluster, tls, Role, State};
use crate::daemon::Daemon;
use crate::db::NodeRecord;
use crate::time::now_ms;

/// `containerctl cluster leave`. What failed while cleaning up was reported as it happened (see
/// [`leave_with_warnings`]); leaving succeeds all the same, as it always did.
pub async fn leave(d: &Arc<Daemon>, p: &Progress) -> Result<(), StepError> {
    leave_with_warnings(d, p).await.map(|_reported| ())
}

/// `containerctl cluster leave` on a member that is not the primary manager (on the primary it is
/// the `teardown`). Returns what could not be undone, each as `step: what failed: error`; each
/// was logged and sent to `p` already.
pub async fn leave_with_warnings(d: &Arc<Daemon>, p: &Progress) -> Result<Vec<String>, StepError> {
    let c = &d.cluster;
    let _guard = c.op_lock.lock().await;
    let Some(s) = c.state() else {
        return Err(kind(fail("leave", "this host is not in a cluster", ""), StepKind::Conflict));
    };
    if s.primary {
        return teardown(d, &s, p).await;
    }
    let mut cleanup = Cleanup::new(p);
    // Tell the manager first (it removes this host's brick and Swarm node); go on if it is gone.
    let ca = std::fs::read_to_string(c.paths.ca_cert()).unwrap_or_default();
    match tls::Client::with_ca(&ca) {
        Ok(client) => {
            let auth = [("authorization", format!("Bearer {}", s.credential))];
            match client
                .request(&s.manager_api, http::Method::POST, "/cluster/v1/leave", &auth, Some(b"{}".to_vec()))
                .await
            {
                Ok((200 | 204, _)) => p.step("manager", "done", "the manager removed this node"),
                Ok((status, _)) => {
                    let detail = format!("the manager answered {status}; leaving anyway");
                    p.step("manager", "skipped", detail.clone());
                    cleanup.noted("manager", detail);
                }
                Err(e) => {
                    let detail = format!("{e}; leaving anyway (remove the node on the manager)");
                    p.step("manager", "skipped", detail.clone());
                    cleanup.noted("manager", detail);
                }
            }
        }
        Err(e) => {
            p.step("manager", "skipped", e.to_string());
            cleanup.noted("manager", e);
        }
    }
    c.stop_tasks();
    c.reporter_running.store(false, std::sync::atomic::Ordering::SeqCst);
    c.api_running.store(false, std::sync::atomic::Ordering::SeqCst);
    unmount_shared(d, &mut cleanup).await;
    p.step("shared volume", "done", "unmounted");
    if let Some(docker) = d.docker() {
        let opts =
            bollard::query_parameters::LeaveSwarmOptionsBuilder::new().force(s.role == Role::Manager).build();
        match docker.leave_swarm(Some(opts)).await {
            Ok(()) => p.step("swarm", "done", "left the Swarm"),
            Err(e) => {
                p.step("swarm", "skipped", format!("{e}"));
                cleanup.noted("swarm", e);
            }
        }
    }
    forget_membership(
        &s,
        &[
            c.paths.state(),
            c.paths.registry_auth(),
            c.paths.ca_cert(),
            c.paths.member_cert(),
            c.paths.member_key(),
        ],
        &mut cleanup,
    );
    c.set_state(None);
    p.step("cluster", "done", format!("left cluster {}", s.cluster_id));
    Ok(cleanup.into_failures())
}

/// Removes Docker's trust of the cluster registry and this host's membership files.
fn forget_membership(s: &State, files: &[std::path::PathBuf], cleanup: &mut Cleanup<'_>) {
    cleanup.remove_dir_all("trust", &std::path::Path::new(cluster::DOCKER_CERTS_DIR).join(&s.registry));
    for f in files {
        cleanup.remove_file("state", f);
    }
}

/// `cluster leave` on the first manager once it is the only member: the cluster is taken down.
/// The registry's images and the brick's files stay on disk (the brick directory is renamed, so a
/// later `cluster init` starts a new volume); the CA is kept and reused by a later init. Once the
/// members are checked, every step runs even when one before it failed; the failures are returned.
async fn teardown(d: &Arc<Daemon>, s: &State, p: &Progress) -> Result<Vec<String>, StepError> {
    let c = &d.cluster;
    let nodes = d.db().nodes().map_err(|e| fail("leave", e.to_string(), ""))?;
    let others: Vec<String> = nodes
        .iter()
        .filter(|n| n.id != s.node_id && n.state != "left" && n.state != "removed")
        .map(|n| n.hostname.clone())
        .collect();
    if !others.is_empty() {
        return Err(kind(
            fail(
                "leave",
                format!(
                    "this host is the cluster's first manager and {} still member(s): {}",
                    others.len(),
                    others.join(", ")
                ),
                "have them leave (`containerctl cluster leave` there) or remove them (`containerctl cluster remove NODE`) first",
            ),
            StepKind::Conflict,
        ));
    }
    let mut cleanup = Cleanup::new(p);
    c.stop_tasks();
    c.reporter_running.store(false, std::sync::atomic::Ordering::SeqCst);
    c.api_running.store(false, std::sync::atomic::Ordering::SeqCst);
    p.step("cluster api", "done", "stopped");
    unmount_shared(d, &mut cleanup).await;
    p.step("shared volume", "done", "unmounted");
    cleanup.stop_unit(d, "registry", cluster::REGISTRY_UNIT).await;
    cleanup.remove_file("registry", std::path::Path::new(cluster::REGISTRY_CONFIG));
    cleanup.reload(d, "registry").await;
    p.step(
        "registry",
        "done",
        format!("stopped; its images stay in {}", d.config.state_dir.join("registry").display()),
    );
    match gluster::delete_volume(&s.volume).await {
        Ok(()) => {
            let kept = c.paths.dir.join(format!("brick-left-{}", now_ms()));
            cleanup.rename("gluster", &c.paths.brick(), &kept);
            p.step(
                "gluster",
                "done",
                format!("volume {} deleted; its files stay in {}", s.volume, kept.display()),
            );
        }
        Err(e) => {
            p.step("gluster", "skipped", e.to_string());
            cleanup.noted("gluster", e);
        }
    }
    if let Some(docker) = d.docker() {
        let opts = bollard::query_parameters::LeaveSwarmOptionsBuilder::new().force(true).build();
        match docker.leave_swarm(Some(opts)).await {
            Ok(()) => p.step("swarm", "done", "left the Swarm (it is gone)"),
            Err(e) => {
                p.step("swarm", "skipped", e.to_string());
                cleanup.noted("swarm", e);
            }
        }
    }
    forget_membership(s, &[c.paths.state(), c.paths.registry_auth()], &mut cleanup);
    let marked = d.db().set_node_state(&s.node_id, "left", now_ms(), "the cluster was taken down");
    cleanup.check("state", "recording this node as left", marked);
    c.set_state(None);
    d.cluster.changed();
    p.step("cluster", "done", format!("cluster {} taken down", s.cluster_id));
    Ok(cleanup.into_failures())
}

/// On the primary manager: forget node `id_or_host` (its id, or the host name of exactly one
/// member) and take it out of the Swarm and the Gluster volume (`cluster remove`).
pub async fn remove_node(d: &Arc<Daemon>, id_or_host: &str, why: &str) -> Result<NodeRecord, StepError> {
    let step = "remove";
    let nodes = d.db().nodes().map_err(|e| fail(step, e.to_string(), ""))?;
    let n =
        resolve_node(&nodes, id_or_host).map_err(|(k, message, hint)| kind(fail(step, message, hint), k))?;
    remove_member(d, n, why).await
}

/// On the primary manager: node `n` (authenticated by its own credential) leaves. Only that node
/// is touched, whatever the request says.
pub async fn leave_node(d: &Arc<Daemon>, n: &NodeRecord) -> Result<NodeRecord, StepError> {
    remove_member(d, n.clone(), "left").await
}

/// The node `id_or_host` names: the node with that id, else the one active member with that
/// host name (else the one former member with it). Host names are what joining hosts claim, so
/// two nodes may share one: then the id is needed.
fn resolve_node(nodes: &[NodeRecord], id_or_host: &str) -> Result<NodeRecord, (StepKind, String, String)> {
    if let Some(n) = nodes.iter().find(|n| n.id == id_or_host) {
        return Ok(n.clone());
    }
    let named = |active: bool| -> Vec<&NodeRecord> {
        nodes.iter().filter(|n| n.hostname == id_or_host && is_active(n) == active).collect()
    };
    let mut found = named(true);
    if found.is_empty() {
        found = named(false);
    }
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err((
            StepKind::NotFound,
            format!("no node {id_or_host}"),
            "see `containerctl cluster nodes`".into(),
        )),
        many => Err((
            StepKind::Conflict,
            format!(
                "{} nodes are named {id_or_host}: {}",
                many.len(),
                many.iter().map(|n| format!("{} ({})", n.id, n.addr)).collect::<Vec<_>>().join(", ")
            ),
            "name the node by its id (`containerctl cluster nodes` lists them)".into(),
        )),
    }
}

/// Takes member `n` out of the Swarm (by its own Swarm node, never by address) and the Gluster
/// volume, and out of the volume's `auth.allow`.
async fn remove_member(d: &Arc<Daemon>, n: NodeRecord, why: &str) -> Result<NodeRecord, StepError> {
    let step = "remove";
    let s =
        d.cluster.state().filter(|s| s.primary).ok_or_else(|| {
            kind(fail(step, "this host is not the cluster's manager", ""), StepKind::Conflict)
        })?;
    if n.id == s.node_id {
        return Err(kind(fail(step, "the manager cannot remove itself", ""), StepKind::Conflict));
    }
    // Which Swarm node is this member's: decided before anything changes, so that a doubt refuses
    // the whole removal.
    let docker = d.docker();
    let swarm_id = match &docker {
        Some(docker) => find_swarm_node(d, docker, &n.id, false).await?,
        None => None,
    };
    if let Some(id) = &swarm_id {
        if id == &swarm_view_id(d).await {
            return Err(kind(
                fail(step, format!("node {} is recorded as this manager's own Swarm node {id}", n.id), ""),
                StepKind::Conflict,
            ));
        }
    }
    let now = now_ms();
    let final_state = if why == "left" { "left" } else { "removed" };
    d.db().set_node_state(&n.id, final_state, now, why).map_err(|e| fail(step, e.to_string(), ""))?;
    let allow = sync_auth_allow(d, &s.addr, None).await;
    if n.role == "manager" {
        let brick = format!("{}:{}", n.addr, d.cluster.paths.brick().display());
        if let Ok(Some(info)) = gluster::volume_info(cluster::VOLUME).await {
            if info.bricks.contains(&brick) {
                let replica = info.replica.saturating_sub(1).max(1);
                if let Err(e) = gluster::remove_brick(cluster::VOLUME, &brick, replica).await {
                    tracing::warn!("cluster: removing brick {brick}: {e}");
                }
            }
        }
        if let Err(e) = gluster::peer_detach(&n.addr).await {
            tracing::warn!("cluster: gluster peer detach {}: {e}", n.addr);
        }
    }
    // A manager is demoted first (Docker refuses to remove a raft member, and a manager leaving
    // on its own could cost the Swarm its quorum); the Swarm node goes once it is down (a node
    // that left is, within seconds). A node that leaves right after joining may not have its
    // Swarm id recorded yet: it is looked for by its host name and address together, never by
    // the address alone, and never taking another member's recorded Swarm node.
    if let Some(docker) = docker {
        if n.role == "manager" {
            if let Some(id) = &swarm_id {
                if let Err(e) = demote(&docker, id).await {
                    tracing::warn!("cluster: demoting Swarm node {id}: {e}");
                }
            }
        }
        let d2 = d.clone();
        let node_id = n.id.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let id = match &swarm_id {
                    Some(id) => Some(id.clone()),
                    None => match find_swarm_node(&d2, &docker, &node_id, false).await {
                        Ok(id) => id,
                        Err(e) => {
                            tracing::warn!("cluster: not removing a Swarm node for {node_id}: {}", e.message);
                            None
                        }
                    },
                };
                let Some(id) = id else {
                    if tokio::time::Instant::now() > deadline {
                        tracing::warn!("cluster: no Swarm node of {node_id} found to remove");
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                let opts = bollard::query_parameters::DeleteNodeOptionsBuilder::new().force(true).build();
                match docker.delete_node(&id, Some(opts)).await {
                    Ok(()) => break,
                    Err(e) if tokio::time::Instant::now() > deadline => {
                        tracing::warn!("cluster: could not remove Swarm node {id}: {e}");
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        });
    }
    d.cluster.changed();
    allow?;
    Ok(n)
}

/// This host's own Swarm node id ("" when unknown).
async fn swarm_view_id(d: &Daemon) -> String {
    match d.docker() {
        Some(docker) => super::swarm_view(&docker).await.map(|v| v.node_id).unwrap_or_default(),
        None => String::new(),
    }
}

async fn demote(docker: &bollard::Docker, swarm_id: &str) -> Result<(), bollard::errors::Error> {
    let node = docker.inspect_node(swarm_id).await?;
    let version = node.version.and_then(|v| v.index).unwrap_or(0);
    let mut spec = node.spec.unwrap_or_default();
    if spec.role == Some(bollard::models::NodeSpecRoleEnum::WORKER) {
        return Ok(());
    }
    spec.role = Some(bollard::models::NodeSpecRoleEnum::WORKER);
    let opts = bollard::query_parameters::UpdateNodeOptionsBuilder::default()
        .version(i64::try_from(version).unwrap_or(0))
        .build();
    docker.update_node(swarm_id, spec, opts).await
}

#[cfg(test)]
mod tests {
    use super::super::admit::tests::node;
    use super::*;

    #[test]
    fn nodes_are_named_by_id_or_by_one_host_name() {
        let nodes = vec![
            node("n-1", "c1", "10.0.0.1", "up", None),
            node("n-2", "c2", "10.0.0.2", "up", None),
            node("n-3", "n-2", "10.0.0.3", "up", None),
            node("n-4", "c4", "10.0.0.4", "left", None),
            node("n-5", "c4", "10.0.0.5", "up", None),
            node("n-6", "c6", "10.0.0.6", "up", None),
            node("n-7", "c6", "10.0.0.7", "up", None),
        ];
        let id = |q: &str| resolve_node(&nodes, q).map(|n| n.id).map_err(|(k, m, _)| (k, m));
        // An id wins over a host name that looks like it.
        assert_eq!(id("n-2"), Ok("n-2".into()));
        assert_eq!(id("c1"), Ok("n-1".into()));
        // The member, not the one that left.
        assert_eq!(id("c4"), Ok("n-5".into()));
        let (k, m) = id("c6").expect_err("two members named c6");
        assert_eq!(k, StepKind::Conflict);
        assert!(m.contains("n-6") && m.contains("n-7"), "{m}");
        assert_eq!(id("nope").map_err(|(k, _)| k), Err(StepKind::NotFound));
    }
}
