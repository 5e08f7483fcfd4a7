//! Serving HTTP/1 connections with limits, for every listener of the project (the local socket,
//! the web page and HTTP API, the cluster API): at most `max_connections` at once (one more is
//! answered `503` and closed, never queued without bound), and a client that does not send a
//! complete request head within `header_timeout` (also between requests on a kept-alive
//! connection) is disconnected. Who accepts and when is the caller's: this module only serves a
//! connection it is given.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 256, header_timeout: Duration::from_secs(30) }
    }
}

/// Counts a listener's open connections.
#[derive(Debug, Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    limits: Limits,
}

/// An open connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Entered(#[allow(dead_code)] OwnedSemaphorePermit);

impl Gate {
    pub fn new(limits: Limits) -> Gate {
        Gate { permits: Arc::new(Semaphore::new(limits.max_connections)), limits }
    }

    /// A place for one more connection, or None when `max_connections` are open.
    pub fn enter(&self) -> Option<Entered> {
        self.permits.clone().try_acquire_owned().ok().map(Entered)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.limits.max_connections - self.permits.available_permits()
    }
}

/// The answer to a connection beyond the limit, written before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 92\r\n\r\n{\"error\": {\"kind\": \"unavailable\", \"message\": \"too many connections: try again in a moment\"}}";

/// Tells a client beyond the limit so, then closes its connection.
pub async fn refuse<IO: AsyncWrite + Unpin>(mut io: IO) {
    // Best effort: a client that does not read its answer loses nothing else.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = io.write_all(BUSY).await;
        let _ = io.shutdown().await;
    })
    .await;
}

/// Serves `router` on one connection until the client or the server ends it; `extend` adds
/// per-connection request extensions (the peer's identity).
pub async fn connection<IO, F>(
    io: IO,
    router: axum::Router,
    limits: Limits,
    extend: F,
) -> Result<(), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(&mut http::Extensions) + Clone + Send + Sync + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        extend(req.extensions_mut());
        let mut router = router.clone();
        async move {
            use tower::Service;
            let r: Result<axum::response::Response, Infallible> =
                router.call(req.map(axum::body::Body::new)).await;
            r
        }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), svc)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .expect("content-length");
        assert_eq!(body.len(), len);
        let v: serde_json::Value = serde_json::from_str(body.trim_end()).expect("json body");
        assert_eq!(v["error"]["kind"], "unavailable");
    }

    #[test]
    fn the_gate_counts_places() {
        let g = Gate::new(Limits { max_connections: 2, header_timeout: Duration::from_secs(1) });
        let a = g.enter().expect("first");
        let _b = g.enter().expect("second");
        assert!(g.enter().is_none(), "a third connection is refused");
        assert_eq!(g.open(), 2);
        drop(a);
        assert!(g.enter().is_some(), "a place is free again");
    }

    #[tokio::test]
    async fn a_silent_client_is_disconnected_and_a_real_one_served() {
        let router = axum::Router::new().route("/x", axum::routing::get(|| async { "ok" }));
        let limits = Limits { max_connections: 4, header_timeout: Duration::from_millis(200) };
        let (client, server) = tokio::io::duplex(4096);
        let served = tokio::spawn(connection(server, router.clone(), limits, |_| {}));
        // The client says nothing: the server ends the connection after the header timeout.
        let ended = tokio::time::timeout(Duration::from_secs(5), served).await;
        assert!(ended.is_ok(), "the connection was not closed");
        drop(client);

        let (mut client, server) = tokio::io::duplex(4096);
        tokio::spawn(connection(server, router, limits, |_| {}));
        client.write_all(b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").await.expect("write");
        let mut answer = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut client, &mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
    }
}
