//! The periodic work of members: every member reports its inventory (the primary manager writes
//! its own straight into the database, the others send it to the cluster API), and the primary
//! manager marks nodes `down` when Swarm says so or their reports stop. Separate from the
//! operations because these loops run for as long as the host is a member and never fail: a
//! manager that is away is logged once, and its return.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{self, tls, State};
use crate::daemon::{Daemon, NoticeKind};
use crate::time::now_ms;

/// Reports this node's inventory periodically and soon after changes.
pub(super) async fn report_loop(d: Arc<Daemon>) {
    let mut changes = d.changes.subscribe();
    let interval = d.cluster.report_interval;
    // A change wakes the loop often (CPU samples count too); the inventory is collected and sent
    // before the interval is up only when the units' states changed, which is cheap to tell.
    let mut last: Option<(String, tokio::time::Instant)> = None;
    // The interval with a tenth of jitter (see next_report_in), drawn again after every report.
    let random = std::collections::hash_map::RandomState::new();
    let mut reports = 0u64;
    let mut this_interval = interval;
    let mut client: Option<tls::Client> = None;
    let mut failing = false;
    while let Some(s) = d.cluster.state() {
        let key = serde_json::to_string(
            &d.list()
                .iter()
                .map(|u| (&u.name, &u.active_state, &u.sub_state, &u.version))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        let due = last.as_ref().is_none_or(|(k, at)| *k != key || at.elapsed() >= this_interval);
        if due {
            let inv = cluster::inventory::collect(&d).await;
            let body = serde_json::to_string(&inv).unwrap_or_default();
            if s.primary {
                match d.db().node_report(&s.node_id, now_ms(), &body) {
                    Ok(reported) => d.cluster.reported(&s.node_id, reported, &inv),
                    Err(e) => tracing::warn!("cluster: cannot store this manager's own report: {e}"),
                }
            } else {
                match send_report(&d, &s, &mut client, body).await {
                    Ok(()) if failing => {
                        tracing::info!("cluster: reports reach {} again", s.manager_api);
                        failing = false;
                    }
                    Ok(()) => {}
                    // Said once, not at every interval while the manager is away.
                    Err(e) if !failing => {
                        tracing::warn!("cluster: report to {} failed (retrying quietly): {e}", s.manager_api);
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            last = Some((key, tokio::time::Instant::now()));
            reports += 1;
            this_interval = cluster::inventory::next_report_in(
                interval,
                std::hash::BuildHasher::hash_one(&random, reports),
            );
        }
        let wait = last.as_ref().map_or(this_interval, |(_, at)| this_interval.saturating_sub(at.elapsed()));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = d.cluster.report_now.notified() => { last = None; }
            r = changes.changed() => {
                if r.is_err() { break }
                // Let a burst of changes settle into one report.
                tokio::time::sleep(Duration::from_secs(1)).await;
                changes.mark_unchanged();
            }
        }
    }
    d.cluster.reporter_running.store(false, std::sync::atomic::Ordering::SeqCst);
}

/// Sends a report; the client (trusting the cluster CA) is made once and dropped after a failure.
async fn send_report(
    d: &Daemon,
    s: &State,
    client: &mut Option<tls::Client>,
    body: String,
) -> Result<(), String> {
    if client.is_none() {
        let ca = std::fs::read_to_string(d.cluster.paths.ca_cert()).map_err(|e| e.to_string())?;
        *client = Some(tls::Client::with_ca(&ca).map_err(|e| e.to_string())?);
    }
    let Some(c) = client.as_ref() else { return Err("no client".into()) };
    let auth = [("authorization", format!("Bearer {}", s.credential))];
    let result = match c
        .request(&s.manager_api, http::Method::POST, "/cluster/v1/report", &auth, Some(body.into_bytes()))
        .await
    {
        Ok((204 | 200, _)) => Ok(()),
        Ok((status, body)) => Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
        Err(e) => Err(e.to_string()),
    };
    if result.is_err() {
        *client = None;
    }
    result
}

/// On the primary manager: nodes whose Swarm node is down or who stopped reporting are `down`.
/// This is also the one place node_down and node_up are emitted: a node is said down once, and up
/// once it reports and Swarm agrees, so a node that reports while Swarm sees it down (its dockerd
/// stopped) is not announced at every report that brings its state back `up`.
pub(super) async fn supervise(d: Arc<Daemon>) {
    let interval = Duration::from_secs(2).max(d.cluster.report_interval / 3);
    let mut said_down: HashSet<String> = match d.db().nodes() {
        Ok(nodes) => nodes.into_iter().filter(|n| n.state == "down").map(|n| n.id).collect(),
        Err(_) => HashSet::new(),
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(me) = d.cluster.state() else { break };
        let swarm = match d.docker() {
            Some(docker) => docker.list_nodes(None).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let Ok(nodes) = d.db().nodes() else { continue };
        let now = now_ms();
        let stale_ms = i64::try_from(d.cluster.report_interval.as_millis() * 3).unwrap_or(i64::MAX);
        for n in nodes {
            if n.state == "left" || n.state == "removed" || n.id == me.node_id {
                said_down.remove(&n.id);
                continue;
            }
            let swarm_node = swarm.iter().find(|s| {
                n.swarm_node_id.as_deref().is_some_and(|id| s.id.as_deref() == Some(id))
                    || s.status.as_ref().and_then(|st| st.addr.as_deref()) == Some(n.addr.as_str())
            });
            if let (None, Some(sn)) = (&n.swarm_node_id, swarm_node) {
                if let Some(id) = &sn.id {
                    let _ = d.db().set_node_swarm_id(&n.id, id);
                }
            }
            let swarm_down = swarm_node
                .and_then(|sn| sn.status.as_ref())
                .and_then(|st| st.state)
                .is_some_and(|st| st == bollard::models::NodeState::DOWN);
            let silent = now - n.last_seen_ms > stale_ms;
            if n.state == "up" && (swarm_down || silent) {
                let why = if swarm_down {
                    "Docker Swarm reports the node down".to_owned()
                } else {
                    format!("no report for {}s", (now - n.last_seen_ms) / 1000)
                };
                if d.db().set_node_state(&n.id, "down", now, &why).unwrap_or(false) {
                    tracing::warn!("cluster: node {} ({}) is down: {why}", n.hostname, n.id);
                    if said_down.insert(n.id.clone()) {
                        d.emit_node(NoticeKind::NodeDown, &n.hostname, format!("{}: {why}", n.addr));
                    }
                    d.cluster.changed();
                }
            } else if n.state == "up" && said_down.remove(&n.id) {
                tracing::info!("cluster: node {} ({}) is up again", n.hostname, n.id);
                d.emit_node(NoticeKind::NodeUp, &n.hostname, format!("{}: reports again", n.addr));
            }
        }
    }
}
