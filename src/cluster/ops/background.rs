//! What a member runs in the background, started at daemon start and after init or join: the
//! cluster API listener on the primary manager (the member routes on the others), the manager's supervision of the nodes, and the
//! reporter on every member. Kept apart from the operations because it is the one place that
//! spawns long-lived tasks (they are registered with [`Cluster`](super::Cluster) so leave can
//! stop them).

use std::sync::Arc;

use super::peers::{ensure_member_cert, start_member_api, RETRY};
use super::reports::{report_loop, supervise};
use crate::cluster::{self, tls, State};
use crate::daemon::Daemon;

/// Binds the cluster API listener on the primary manager (once) and hands it to the server that
/// containerctld's main registered ([`Cluster::set_server`](super::Cluster::set_server)). It
/// serves the member routes too, asking members for their certificate.
pub(super) async fn start_api(d: &Arc<Daemon>, s: &State) -> Result<(), String> {
    let paths = &d.cluster.paths;
    let chain = std::fs::read_to_string(paths.server_cert()).map_err(|e| e.to_string())?;
    let key = std::fs::read_to_string(paths.server_key()).map_err(|e| e.to_string())?;
    let ca = std::fs::read_to_string(paths.ca_cert()).map_err(|e| e.to_string())?;
    let cfg = tls::server_config(&chain, &key, Some(&ca)).map_err(|e| e.to_string())?;
    let app = cluster::server::app(d.clone()).merge(cluster::peer::app(d.clone()));
    serve_api(d, s, cfg, app).await
}

/// Binds ADDR:5001 (once) and serves `app` there.
pub(super) async fn serve_api(
    d: &Arc<Daemon>,
    s: &State,
    cfg: Arc<rustls::ServerConfig>,
    app: axum::Router,
) -> Result<(), String> {
    if d.cluster.api_running.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    let ip: std::net::IpAddr = s.addr.parse().map_err(|_| format!("`{}` is not an IP address", s.addr))?;
    let listen = std::net::SocketAddr::new(ip, cluster::API_PORT);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let Some(serve) = d.cluster.server() else {
        return Err("no server is wired for the cluster API (containerctld's main registers one)".into());
    };
    d.cluster.add_task(serve(listener, cfg, app));
    d.cluster.api_running.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// This member's certificate (asked of the manager until it answers), then its listener.
async fn member_side(d: Arc<Daemon>, s: State) {
    // The manager's cluster API (joins, reports) never waits for its member certificate.
    if s.primary {
        if let Err(e) = start_api(&d, &s).await {
            tracing::error!("cluster API not started: {e}");
        }
    }
    let mut said = false;
    while let Err(e) = ensure_member_cert(&d, &s).await {
        if !said {
            tracing::warn!(
                "cluster: no member certificate yet, moves to and from this host wait for it: {e}"
            );
            said = true;
        }
        tokio::time::sleep(RETRY).await;
    }
    if !s.primary {
        if let Err(e) = start_member_api(&d, &s).await {
            tracing::error!("cluster API (member routes) not started: {e}");
        }
    }
}

/// Starts what a member runs in the background: the cluster API and supervision on the primary
/// manager, reporting on the others. Called at daemon start and after init/join.
pub fn start_background(d: &Arc<Daemon>) {
    let Some(s) = d.cluster.state() else { return };
    crate::daemon::clean_stale_moves(d);
    let primary = s.primary;
    d.cluster.add_task(tokio::spawn(member_side(d.clone(), s)));
    if primary {
        let d2 = d.clone();
        d.cluster.add_task(tokio::spawn(async move { supervise(d2).await }));
    }
    if !d.cluster.reporter_running.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let d2 = d.clone();
        d.cluster.add_task(tokio::spawn(async move { report_loop(d2).await }));
    }
}
