//! What a member runs in the background, started at daemon start and after init or join: the
//! cluster API listener on the primary manager, the manager's supervision of the nodes, and the
//! reporter on every member. Kept apart from the operations because it is the one place that
//! spawns long-lived tasks (they are registered with [`Cluster`](super::Cluster) so leave can
//! stop them).

use std::sync::Arc;

use super::reports::{report_loop, supervise};
use crate::cluster::{self, tls, State};
use crate::daemon::Daemon;

/// Binds the cluster API listener on the primary manager (once) and hands it to the server that
/// containerctld's main registered ([`Cluster::set_server`](super::Cluster::set_server)).
pub(super) async fn start_api(d: &Arc<Daemon>, s: &State) -> Result<(), String> {
    if d.cluster.api_running.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    let paths = &d.cluster.paths;
    let chain = std::fs::read_to_string(paths.server_cert()).map_err(|e| e.to_string())?;
    let key = std::fs::read_to_string(paths.server_key()).map_err(|e| e.to_string())?;
    let cfg = tls::server_config(&chain, &key).map_err(|e| e.to_string())?;
    let ip: std::net::IpAddr = s.addr.parse().map_err(|_| format!("`{}` is not an IP address", s.addr))?;
    let listen = std::net::SocketAddr::new(ip, cluster::API_PORT);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let Some(serve) = d.cluster.server() else {
        return Err("no server is wired for the cluster API (containerctld's main registers one)".into());
    };
    let app = cluster::server::app(d.clone());
    d.cluster.add_task(serve(listener, cfg, app));
    d.cluster.api_running.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// Starts what a member runs in the background: the cluster API and supervision on the primary
/// manager, reporting on the others. Called at daemon start and after init/join.
pub fn start_background(d: &Arc<Daemon>) {
    let Some(s) = d.cluster.state() else { return };
    if s.primary {
        let d2 = d.clone();
        tokio::spawn(async move {
            if let Err(e) = start_api(&d2, &s).await {
                tracing::error!("cluster API not started: {e}");
            }
        });
        let d2 = d.clone();
        d.cluster.add_task(tokio::spawn(async move { supervise(d2).await }));
    }
    if !d.cluster.reporter_running.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let d2 = d.clone();
        d.cluster.add_task(tokio::spawn(async move { report_loop(d2).await }));
    }
}
