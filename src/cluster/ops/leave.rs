//! Leaving and removing: `cluster leave` on a member (tell the manager, unmount, leave the
//! Swarm, forget the membership), the teardown of the whole cluster when the primary manager
//! leaves last, and the manager's removal of a node (brick, Swarm node, record). Its own file
//! because these are the undoing operations: they go on past failures, so each failure is
//! collected in a [`Cleanup`] and reported instead of stopping the rest.

use std::sync::Arc;
use std::time::Duration;

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
    forget_membership(&s, &[c.paths.state(), c.paths.registry_auth(), c.paths.ca_cert()], &mut cleanup);
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

/// On the primary manager: forget node `id` (by id or host name) and take it out of the Swarm
/// and the Gluster volume.
pub async fn remove_node(d: &Arc<Daemon>, id_or_host: &str, why: &str) -> Result<NodeRecord, StepError> {
    let step = "remove";
    let s =
        d.cluster.state().filter(|s| s.primary).ok_or_else(|| {
            kind(fail(step, "this host is not the cluster's manager", ""), StepKind::Conflict)
        })?;
    let nodes = d.db().nodes().map_err(|e| fail(step, e.to_string(), ""))?;
    let n = nodes.into_iter().find(|n| n.id == id_or_host || n.hostname == id_or_host).ok_or_else(|| {
        kind(
            fail(step, format!("no node {id_or_host}"), "see `containerctl cluster nodes`"),
            StepKind::NotFound,
        )
    })?;
    if n.id == s.node_id {
        return Err(kind(fail(step, "the manager cannot remove itself", ""), StepKind::Conflict));
    }
    let now = now_ms();
    let final_state = if why == "left" { "left" } else { "removed" };
    d.db().set_node_state(&n.id, final_state, now, why).map_err(|e| fail(step, e.to_string(), ""))?;
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
    // Swarm id recorded yet: it is found by its address.
    if let Some(docker) = d.docker() {
        let addr = n.addr.clone();
        let recorded = n.swarm_node_id.clone();
        let swarm_id = match recorded.clone() {
            Some(id) => Some(id),
            None => swarm_id_by_addr(&docker, &addr).await,
        };
        if n.role == "manager" {
            if let Some(id) = &swarm_id {
                if let Err(e) = demote(&docker, id).await {
                    tracing::warn!("cluster: demoting Swarm node {id}: {e}");
                }
            }
        }
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let id = match &swarm_id {
                    Some(id) => Some(id.clone()),
                    None => swarm_id_by_addr(&docker, &addr).await,
                };
                let Some(id) = id else { break };
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
    Ok(n)
}

async fn swarm_id_by_addr(docker: &bollard::Docker, addr: &str) -> Option<String> {
    let nodes = docker.list_nodes(None).await.ok()?;
    nodes
        .into_iter()
        .find(|n| n.status.as_ref().and_then(|s| s.addr.as_deref()) == Some(addr))
        .and_then(|n| n.id)
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
