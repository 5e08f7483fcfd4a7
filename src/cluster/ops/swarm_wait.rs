//! The primary manager's wait for admitted hosts to show up in the Swarm: their Swarm node id is
//! recorded, and the Swarm join token each was given is rotated once it is there (or after a
//! deadline), so a copy of it is worthless. One task waits for every pending join, asking dockerd
//! for its nodes and the store for the members once per tick, instead of a poller per join: a
//! hundred hosts joining at once (bench/fleet.sh) cost one `docker node ls` a tick, not a hundred.

use std::sync::Arc;
use std::time::Duration;

use super::admit::{match_swarm_node, rotate_swarm_token, SwarmNodeView};
use crate::cluster::Role;
use crate::daemon::Daemon;
use crate::db::NodeRecord;

/// How long a manager waits for a joining host to show up in the Swarm before it rotates the
/// Swarm join token anyway.
pub(super) const JOIN_WAIT: Duration = Duration::from_secs(120);
const TICK: Duration = Duration::from_millis(500);

/// A host admitted whose Swarm node is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJoin {
    pub node_id: String,
    pub role: Role,
    pub deadline: tokio::time::Instant,
}

/// What one look at the Swarm settled.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Settled {
    /// Members whose Swarm node was found: (node id, Swarm node id).
    pub found: Vec<(String, String)>,
    /// Pending joins that are over (found, gone from the store, ambiguous or past their deadline).
    pub done: Vec<String>,
    /// Roles whose Swarm join token is to be rotated now (each once).
    pub rotate: Vec<Role>,
    /// Why a member's Swarm node could not be told apart (logged).
    pub ambiguous: Vec<String>,
}

/// Pure: what `pending` joins became, given the members and the Swarm's nodes at `now`.
pub(super) fn settle(
    pending: &[PendingJoin],
    nodes: &[NodeRecord],
    swarm: &[SwarmNodeView],
    now: tokio::time::Instant,
) -> Settled {
    let mut out = Settled::default();
    for p in pending {
        let over = match nodes.iter().find(|n| n.id == p.node_id) {
            None => true,
            Some(n) if n.swarm_node_id.is_some() => true,
            Some(n) => match match_swarm_node(n, nodes, swarm, true) {
                Ok(Some(s)) => {
                    out.found.push((n.id.clone(), s.id.clone()));
                    true
                }
                Ok(None) => now >= p.deadline,
                Err(why) => {
                    out.ambiguous.push(why);
                    true
                }
            },
        };
        if over {
            out.done.push(p.node_id.clone());
            if !out.rotate.contains(&p.role) {
                out.rotate.push(p.role);
            }
        }
    }
    // Every host admitted with a role was given the same Swarm token: rotating it while one of
    // them has not joined yet would make that host's `docker swarm join` fail. A role's token is
    // rotated once no join of that role is awaited (each is awaited until its deadline at most).
    out.rotate.retain(|role| !pending.iter().any(|p| p.role == *role && !out.done.contains(&p.node_id)));
    out
}

/// Waits (in the shared task) for the host admitted as `node_id` to show up in the Swarm.
pub(super) fn watch(d: &Arc<Daemon>, node_id: String, role: Role) {
    let c = &d.cluster;
    if let Ok(mut p) = c.pending_joins.lock() {
        p.push(PendingJoin { node_id, role, deadline: tokio::time::Instant::now() + JOIN_WAIT });
    }
    c.join_wake.notify_one();
    if !c.join_watcher.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let d2 = d.clone();
        tokio::spawn(async move { wait_loop(d2).await });
    }
}

async fn wait_loop(d: Arc<Daemon>) {
    let c = &d.cluster;
    loop {
        let pending = c.pending_joins.lock().map(|p| p.clone()).unwrap_or_default();
        if pending.is_empty() {
            // A join after the list was read leaves a permit, so this does not miss it.
            c.join_wake.notified().await;
            continue;
        }
        tokio::time::sleep(TICK).await;
        let Some(docker) = d.docker() else {
            if let Ok(mut p) = c.pending_joins.lock() {
                p.clear();
            }
            continue;
        };
        let swarm = match docker.list_nodes(None).await {
            Ok(list) => list.iter().filter_map(SwarmNodeView::of).collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!("cluster: cannot list the Swarm's nodes (retrying): {e}");
                Vec::new()
            }
        };
        let Ok(nodes) = d.db().nodes() else { continue };
        let s = settle(&pending, &nodes, &swarm, tokio::time::Instant::now());
        for why in &s.ambiguous {
            tracing::warn!("cluster: not recording a Swarm node: {why}");
        }
        for (node, swarm_id) in &s.found {
            if let Err(e) = d.db().set_node_swarm_id(node, swarm_id) {
                tracing::warn!("cluster: cannot record Swarm node {swarm_id} of {node}: {e}");
            }
        }
        if let Ok(mut p) = c.pending_joins.lock() {
            p.retain(|j| !s.done.contains(&j.node_id));
        }
        for role in s.rotate {
            match rotate_swarm_token(&docker, role).await {
                Ok(()) => tracing::info!(
                    "cluster: rotated the Swarm {} join token after {} join(s)",
                    role.as_str(),
                    s.done.len()
                ),
                Err(e) => {
                    tracing::error!("cluster: rotating the Swarm {} join token failed: {e}", role.as_str())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::admit::tests::node;
    use super::*;

    fn view(id: &str, host: &str, addr: &str) -> SwarmNodeView {
        SwarmNodeView { id: id.into(), hostname: host.into(), addr: addr.into(), ready: true }
    }

    #[test]
    fn one_look_settles_every_pending_join_and_rotates_a_role_once_none_of_it_is_awaited() {
        let now = tokio::time::Instant::now();
        let later = now + Duration::from_secs(60);
        let pending = vec![
            PendingJoin { node_id: "n-1".into(), role: Role::Worker, deadline: later },
            PendingJoin { node_id: "n-2".into(), role: Role::Worker, deadline: later },
            PendingJoin { node_id: "n-3".into(), role: Role::Worker, deadline: later },
            PendingJoin { node_id: "n-4".into(), role: Role::Manager, deadline: now },
            PendingJoin { node_id: "n-gone".into(), role: Role::Worker, deadline: later },
        ];
        let nodes = vec![
            node("n-1", "h1", "10.0.0.1", "up", None),
            node("n-2", "h2", "10.0.0.2", "up", None),
            node("n-3", "h3", "10.0.0.3", "up", None),
            node("n-4", "h4", "10.0.0.4", "up", None),
        ];
        let swarm = vec![view("s1", "h1", "10.0.0.1"), view("s2", "h2", "10.0.0.2")];
        let s = settle(&pending, &nodes, &swarm, now);
        assert_eq!(s.found, vec![("n-1".to_owned(), "s1".to_owned()), ("n-2".to_owned(), "s2".to_owned())]);
        // n-3 is still awaited; n-4's deadline is here; n-gone is no longer a member.
        assert_eq!(s.done, ["n-1", "n-2", "n-4", "n-gone"]);
        // n-3 was given the worker token too: it is not rotated before n-3 is in the Swarm.
        assert_eq!(s.rotate, vec![Role::Manager]);
        assert!(s.ambiguous.is_empty());
        let left: Vec<_> = pending.into_iter().filter(|p| !s.done.contains(&p.node_id)).collect();
        let swarm = vec![view("s3", "h3", "10.0.0.3")];
        let s = settle(&left, &nodes, &swarm, now);
        assert_eq!((s.done, s.rotate), (vec!["n-3".to_owned()], vec![Role::Worker]));
    }

    #[test]
    fn nothing_in_the_swarm_yet_settles_nothing_and_rotates_nothing() {
        let now = tokio::time::Instant::now();
        let pending =
            vec![PendingJoin { node_id: "n-1".into(), role: Role::Worker, deadline: now + JOIN_WAIT }];
        let nodes = vec![node("n-1", "h1", "10.0.0.1", "up", None)];
        assert_eq!(settle(&pending, &nodes, &[], now), Settled::default());
        // A node recorded already (by the supervision loop) is over.
        let recorded = vec![node("n-1", "h1", "10.0.0.1", "up", Some("s1"))];
        let s = settle(&pending, &recorded, &[], now);
        assert_eq!((s.done, s.rotate), (vec!["n-1".to_owned()], vec![Role::Worker]));
        // Two Swarm nodes could be it: over, said, none recorded.
        let two = vec![view("s1", "h1", "10.0.0.1"), view("s1b", "h1", "10.0.0.1")];
        let s = settle(&pending, &nodes, &two, now);
        assert!(s.found.is_empty() && s.ambiguous.len() == 1, "{s:?}");
    }
}
