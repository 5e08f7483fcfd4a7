//! containerctld: the containerctl daemon. See containerctld(8) and ARCHITECTURE.md.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use containerctl::daemon::{self, Daemon, Event, StartError};
use containerctl::{api, cluster, notify, port_holder, serve};
use tokio::sync::mpsc;
use tracing_subscriber::prelude::*;

/// Why the daemon stopped before or while serving.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("cannot listen on {path}: {source}")]
    Bind { path: String, source: std::io::Error },
    #[error("{}", port_holder::in_use_message(*addr, holder.as_ref(), config))]
    PortInUse { addr: std::net::SocketAddr, holder: Option<port_holder::Holder>, config: PathBuf },
}

fn init_logging() {
    // The journal when systemd runs us, stderr otherwise; a journal that cannot be reached is
    // never fatal.
    let journald = std::env::var_os("JOURNAL_STREAM").and_then(|_| tracing_journald::layer().ok());
    let registry = tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
    match journald {
        Some(layer) => registry.with(layer.with_syslog_identifier("containerctld".into())).init(),
        None => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init(),
    }
}

fn main() -> ExitCode {
    let mut config = PathBuf::from(containerctl::config::DEFAULT_PATH);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => match args.next() {
                Some(p) => config = PathBuf::from(p),
                None => {
                    eprintln!("containerctld: --config needs a path");
                    return ExitCode::from(2);
                }
            },
            "--help" | "-h" => {
                println!("usage: containerctld [--config PATH] [--version]\nThe containerctl daemon; see containerctld(8).");
                return ExitCode::SUCCESS;
            }
            // Hidden: the OpenAPI document of the HTTP API, as `make install` ships it.
            "openapi" => {
                print!("{}", api::openapi::json());
                return ExitCode::SUCCESS;
            }
            "--version" => {
                println!("containerctld {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("containerctld: unknown argument `{other}`\nusage: containerctld [--config PATH] [--version]");
                return ExitCode::from(2);
            }
        }
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("containerctld: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("containerctld: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The wiring: the daemon's state, its event sources and loop, the cluster's background work,
/// the listeners (socket and HTTP), readiness and the watchdog, until SIGTERM or SIGINT.
async fn run(config_path: &Path) -> Result<(), RunError> {
    let daemon = daemon::open(config_path).await?;

    let (tx, rx) = mpsc::channel::<Event>(1024);
    tokio::spawn(daemon::sources::systemd_source(daemon.clone(), tx.clone()));
    tokio::spawn(daemon::sources::docker_sources(daemon.clone(), tx.clone()));
    daemon::sources::spawn_unit_files_source(daemon.clone(), tx.clone());
    tokio::spawn(daemon::sources::timer_source(tx));
    tokio::spawn(daemon::sources::event_loop(daemon.clone(), rx));
    tokio::spawn(daemon::notifications::deliver(daemon.clone()));
    daemon
        .cluster
        .set_server(Arc::new(|listener, tls, app| tokio::spawn(serve_cluster_api(listener, tls, app))));
    cluster::ops::start_background(&daemon);

    let listener = bind(&daemon.config.socket, daemon.group_gid())?;
    let http = match daemon.config.http_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::AddrInUse {
                let holder = port_holder::holder(addr);
                RunError::PortInUse { addr, holder, config: config_path.to_owned() }
            } else {
                RunError::Bind { path: addr.to_string(), source }
            }
        })?),
        None => None,
    };
    if let Some(interval) = notify::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval / 2);
            loop {
                tick.tick().await;
                notify::watchdog();
            }
        });
    }
    let where_ = match daemon.config.http_listen {
        Some(addr) => format!("{} and http://{addr}/", daemon.config.socket.display()),
        None => daemon.config.socket.display().to_string(),
    };
    notify::ready(&format!("serving {where_}"));
    tracing::info!("serving the API on {where_}");

    if let Some(http) = http {
        tokio::spawn(serve_http(http, api::http_app(daemon.clone())));
    }
    serve_socket(&daemon, listener).await;
    notify::stopping("shutting down");
    if let Err(e) = std::fs::remove_file(&daemon.config.socket) {
        tracing::warn!("cannot remove {}: {e}", daemon.config.socket.display());
    }
    Ok(())
}

/// Accepts connections until `stop` resolves: one more than the listener's cap is answered 503
/// and closed; each other is served by `serve_one` in a task of its own, holding its place.
async fn accept_loop<Io, P, A, AF, S, SF>(
    what: &'static str,
    accept: A,
    serve_one: S,
    stop: impl Future<Output = ()>,
) where
    Io: tokio::io::AsyncWrite + Unpin + Send + 'static,
    P: std::fmt::Debug,
    A: Fn() -> AF,
    AF: Future<Output = std::io::Result<(Io, P)>>,
    S: Fn(Io, P, serve::Limits) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let gate = serve::Gate::new(serve::Limits::default());
    tokio::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            () = &mut stop => return,
            accepted = accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("{what}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(place) = gate.enter() else {
            tracing::warn!("{what}: {} connections open: one more from {peer:?} refused", gate.open());
            tokio::spawn(serve::refuse(io));
            continue;
        };
        let served = serve_one(io, peer, gate.limits());
        tokio::spawn(async move {
            served.await;
            drop(place);
        });
    }
}

/// Serves `app` on one plain connection, `info` as the request's `ConnectInfo`.
async fn serve_plain<Io, I>(io: Io, info: I, app: axum::Router, limits: serve::Limits, what: &'static str)
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    I: Clone + std::fmt::Debug + Send + Sync + 'static,
{
    let extend = {
        let info = info.clone();
        move |x: &mut http::Extensions| {
            x.insert(axum::extract::ConnectInfo(info.clone()));
        }
    };
    if let Err(e) = serve::connection(io, app, limits, extend).await {
        tracing::debug!("{what}: connection from {info:?}: {e}");
    }
}

/// The socket's connections, each with the peer's credentials, until SIGTERM or SIGINT.
async fn serve_socket(daemon: &Arc<Daemon>, listener: tokio::net::UnixListener) {
    let app = api::socket_app(daemon.clone());
    let accept = || async {
        let (stream, _) = listener.accept().await?;
        let peer = match stream.peer_cred() {
            Ok(c) => api::Peer { uid: c.uid(), gid: c.gid(), pid: c.pid() },
            // Unknown credentials are nobody's: refused by authorize_peer.
            Err(_) => api::Peer { uid: u32::MAX, gid: u32::MAX, pid: None },
        };
        Ok((stream, peer))
    };
    let serve_one = |io, peer, limits| serve_plain(io, peer, app.clone(), limits, "socket");
    accept_loop("socket", accept, serve_one, shutdown_signal()).await;
}

/// The cluster API (primary manager only), over TLS from the cluster CA.
async fn serve_cluster_api(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let serve_one =
        |tcp, peer, limits| cluster::tls::serve_connection(tcp, peer, acceptor.clone(), app.clone(), limits);
    accept_loop("cluster API", || listener.accept(), serve_one, std::future::pending()).await;
}

/// The web page and HTTP API.
async fn serve_http(listener: tokio::net::TcpListener, app: axum::Router) {
    let serve_one = |io, peer, limits| serve_plain(io, peer, app.clone(), limits, "HTTP");
    accept_loop("HTTP", || listener.accept(), serve_one, std::future::pending()).await;
}

/// Binds the socket and sets its owner and mode before anyone can be told it is ready.
fn bind(path: &Path, gid: Option<u32>) -> Result<tokio::net::UnixListener, RunError> {
    let fail = |source| RunError::Bind { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(fail)?;
    let mode = match gid {
        Some(gid) => {
            std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(fail)?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    Ok(listener)
}

/// Resolves on SIGTERM or SIGINT. SIGHUP is logged and ignored (configuration is read at start).
/// After the signal, open connections (a `logs -f`) get a few seconds before the process exits.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => tracing::info!("SIGHUP ignored: restart containerctld to apply a changed configuration"),
        }
    }
    tracing::info!("shutting down");
    notify::stopping("shutting down");
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        tracing::info!("closing the connections still open");
        std::process::exit(0);
    });
}
