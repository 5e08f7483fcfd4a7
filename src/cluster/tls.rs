//! TLS for the cluster API: rustls with the ring provider, a server loop for axum, a client that
//! trusts only the cluster CA, and the verifier a joining host uses before it has the CA: it
//! accepts a chain only if one of its certificates has the SHA-256 pinned in the join token and
//! the server certificate verifies against that certificate for the address dialled.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// Largest response body a cluster API client accepts.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("bad certificate or key: {0}")]
    Pem(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot reach {addr}: {message}")]
    Unreachable { addr: String, message: String },
    #[error(
        "{addr} is not the cluster's manager: its certificate is not signed by the CA pinned in the \
         join token ({pin}); check the address and ask the manager's admin for a new token"
    )]
    CaMismatch { addr: String, pin: String },
    #[error("TLS handshake with {addr} failed: {message}")]
    Handshake { addr: String, message: String },
    #[error("request to {addr} failed: {message}")]
    Http { addr: String, message: String },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Pem("no certificate in PEM".into()));
    }
    Ok(certs)
}

/// Where distributions keep the system's trusted certificates (Debian's, then Fedora's).
const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

/// The certificates the system trusts (its bundle; empty when there is none).
pub fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    if let Some(bundle) = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read(p).ok()) {
        add_pem_certs(&mut roots, &bundle);
    }
    roots
}

/// Adds every certificate of `pem` that parses; others are skipped, as a bundle's odd entry is.
pub fn add_pem_certs(roots: &mut RootCertStore, pem: &[u8]) {
    for cert in CertificateDer::pem_slice_iter(pem).flatten() {
        let _ = roots.add(cert);
    }
}

pub fn roots_from_pem(pem: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(pem)? {
        roots.add(c).map_err(|e| TlsError::Pem(e.to_string()))?;
    }
    Ok(Arc::new(roots))
}

/// Server configuration presenting `chain_pem` (server certificate, then the CA). With
/// `client_ca`, a client may present a certificate, which must then be signed by that CA (a
/// member's); clients without one are still served (joins, the registry's token endpoint), and
/// the handlers that need a member look for [`PeerCertificate`].
pub fn server_config(
    chain_pem: &str,
    key_pem: &str,
    client_ca: Option<&str>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs_from_pem(chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem(e.to_string()))?;
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots_from_pem(ca)?, provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Pem(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Client configuration trusting only `ca_pem`.
pub fn client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = roots_from_pem(ca_pem)?;
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Client configuration for a join: trusts the chain's certificate whose digest is `pin`.
pub fn pinned_client_config(pin: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = Arc::new(PinnedVerifier { pin: pin.to_owned(), provider: provider() });
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// Verifies `leaf` for `name` against `roots` (what both client configurations do).
pub fn verify_with_roots(
    roots: Arc<RootCertStore>,
    leaf: &CertificateDer<'_>,
    name: &str,
) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let name = ServerName::try_from(name.to_owned()).map_err(|e| rustls::Error::General(e.to_string()))?;
    verifier.verify_server_cert(leaf, &[], &name, &[], UnixTime::now()).map(|_| ())
}

const PIN_MISMATCH: &str = "no certificate in the chain has the pinned digest";

#[derive(Debug)]
struct PinnedVerifier {
    pin: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| super::ca::digest_der(c) == self.pin)
            .ok_or_else(|| rustls::Error::General(PIN_MISMATCH.into()))?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned()).map_err(|e| rustls::Error::General(e.to_string()))?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether the client of a connection presented a certificate the cluster CA signed (verified
/// by rustls during the handshake): a request extension of every cluster API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCertificate(pub bool);

/// A request body that is streamed (a move's data, an image).
pub type StreamBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// An HTTP(S) client for one request at a time: of the cluster API (trusting the cluster CA, or
/// while joining only the pinned digest), or of a registry (trusting what Docker trusts for it,
/// or plain HTTP where Docker would use it).
#[derive(Clone)]
pub struct Client {
    /// None: plain HTTP.
    cfg: Option<Arc<ClientConfig>>,
    pin: Option<String>,
    /// The local address connections come from (None: the kernel's choice).
    local: Option<std::net::IpAddr>,
}

/// An answer: status, headers and the body (at most 4 MiB).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Client {
    pub fn with_ca(ca_pem: &str) -> Result<Client, TlsError> {
        Ok(Client { cfg: Some(client_config(ca_pem)?), pin: None, local: None })
    }

    pub fn pinned(pin: &str) -> Result<Client, TlsError> {
        Ok(Client { cfg: Some(pinned_client_config(pin)?), pin: Some(pin.to_owned()), local: None })
    }

    /// HTTPS trusting `roots`.
    pub fn with_roots(roots: RootCertStore) -> Result<Client, TlsError> {
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client { cfg: Some(Arc::new(cfg)), pin: None, local: None })
    }

    /// A member talking to another member: trusts only the cluster CA and presents this host's
    /// member certificate (`cert_pem` then the CA, `key_pem`).
    pub fn member(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Client, TlsError> {
        let chain = certs_from_pem(cert_pem)?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem(e.to_string()))?;
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots_from_pem(ca_pem)?)
            .with_client_auth_cert(chain, key)?;
        Ok(Client { cfg: Some(Arc::new(cfg)), pin: None, local: None })
    }

    /// Plain HTTP (a registry Docker reaches without TLS).
    pub fn plain() -> Client {
        Client { cfg: None, pin: None, local: None }
    }

    /// The same client, its connections made from the local address `ip` (bench/fleet.sh's
    /// load generator speaks for many members from one host, one address each).
    #[must_use]
    pub fn from_local(mut self, ip: std::net::IpAddr) -> Client {
        self.local = Some(ip);
        self
    }

    async fn connect(&self, addr: &str) -> std::io::Result<tokio::net::TcpStream> {
        let Some(ip) = self.local else { return tokio::net::TcpStream::connect(addr).await };
        let to = tokio::net::lookup_host(addr)
            .await?
            .find(|a| a.is_ipv4() == ip.is_ipv4())
            .ok_or_else(|| std::io::Error::other(format!("{addr} has no address of {ip}'s family")))?;
        let socket =
            if ip.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.bind(std::net::SocketAddr::new(ip, 0))?;
        socket.connect(to).await
    }

    /// One HTTPS request to `addr` (`HOST:PORT`); returns the status and the body.
    pub async fn request(
        &self,
        addr: &str,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), TlsError> {
        self.send(addr, method, path, headers, body).await.map(|a| (a.status, a.body))
    }

    /// Like [`Client::request`], with the answer's headers.
    pub async fn send(
        &self,
        addr: &str,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, TlsError> {
        let json = body.is_some() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let mut headers = headers.to_vec();
        if json {
            headers.push(("content-type", "application/json".into()));
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default()))
            .map_err(|never: std::convert::Infallible| -> std::io::Error { match never {} })
            .boxed_unsync();
        self.send_body(addr, method, path, &headers, body, REQUEST_TIMEOUT).await
    }

    /// A request with a streamed body; the answer must begin within `timeout` (the whole upload
    /// included, since servers answer once they read it).
    pub async fn send_body(
        &self,
        addr: &str,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: StreamBody,
        timeout: Duration,
    ) -> Result<Answer, TlsError> {
        self.send_streaming(addr, (method, path, headers), body, timeout, None).await
    }

    /// Like [`Client::send_body`]; with `sink`, a successful answer's body is handed to it chunk
    /// by chunk as it arrives (a long operation's progress) instead of being collected.
    pub async fn send_streaming(
        &self,
        addr: &str,
        (method, path, headers): (http::Method, &str, &[(&str, String)]),
        body: StreamBody,
        timeout: Duration,
        sink: Option<&mut (dyn FnMut(Bytes) + Send)>,
    ) -> Result<Answer, TlsError> {
        let unreachable = |m: String| TlsError::Unreachable { addr: addr.to_owned(), message: m };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(addr))
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(e.to_string()))?;
        let Some(cfg) = &self.cfg else {
            return exchange(TokioIo::new(tcp), addr, (method, path, headers), body, timeout, sink).await;
        };
        let host = super::host_of(addr).trim_start_matches('[').trim_end_matches(']').to_owned();
        let name = ServerName::try_from(host).map_err(|e| unreachable(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(cfg.clone());
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| unreachable("TLS handshake timed out".into()))?
            .map_err(|e| {
                let message = e.to_string();
                match &self.pin {
                    Some(pin) if message.contains(PIN_MISMATCH) || message.contains("UnknownIssuer") => {
                        TlsError::CaMismatch { addr: addr.to_owned(), pin: pin.clone() }
                    }
                    _ => TlsError::Handshake { addr: addr.to_owned(), message },
                }
            })?;
        exchange(TokioIo::new(tls), addr, (method, path, headers), body, timeout, sink).await
    }
}

/// One HTTP/1 request and its answer over an established connection.
async fn exchange<T>(
    io: TokioIo<T>,
    addr: &str,
    (method, path, headers): (http::Method, &str, &[(&str, String)]),
    body: StreamBody,
    timeout: Duration,
    sink: Option<&mut (dyn FnMut(Bytes) + Send)>,
) -> Result<Answer, TlsError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let http_err = |m: String| TlsError::Http { addr: addr.to_owned(), message: m };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| http_err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::builder().method(method).uri(path).header("host", addr);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req.body(body).map_err(|e| http_err(e.to_string()))?;
    let resp = tokio::time::timeout(timeout, sender.send_request(req))
        .await
        .map_err(|_| http_err(format!("no response within {}s", timeout.as_secs())))?
        .map_err(|e| http_err(e.to_string()))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    if let (Some(sink), true) = (sink, (200..300).contains(&status)) {
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(|e| http_err(e.to_string()))?.into_data() {
                sink(data);
            }
        }
        return Ok(Answer { status, headers, body: Bytes::new() });
    }
    let body = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| http_err(e.to_string()))?
        .to_bytes();
    Ok(Answer { status, headers, body })
}

/// Serves `app` over TLS on one accepted connection: the handshake (within 10 s), then HTTP/1
/// with `limits` (crate::serve), the peer's address as `ConnectInfo`.
pub async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    limits: crate::serve::Limits,
) {
    // Reads from the socket of up to 256 KiB once the peer streams, which rustls then takes a
    // record at a time: a system call for 16 records, not one each (67,580 `recvfrom`s for a move
    // of 1 GiB); 16 KiB for a connection that sends a report.
    let tcp = super::tls_io::GrowingReader::new(tcp);
    let tls = match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!("cluster API: TLS handshake with {peer} failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let member = PeerCertificate(tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()));
    let extend = move |x: &mut http::Extensions| {
        x.insert(axum::extract::ConnectInfo(peer));
        x.insert(member);
    };
    if let Err(e) = crate::serve::connection(super::tls_io::ReadAll::new(tls), app, limits, extend).await {
        tracing::debug!("cluster API: connection from {peer}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve_once() -> (String, super::super::ca::Pair) {
        let ca = super::super::ca::create_ca("c-t").expect("ca");
        let srv = super::super::ca::issue_server(&ca, &["127.0.0.1".into()]).expect("server");
        let cfg =
            server_config(&format!("{}{}", srv.cert_pem, ca.cert_pem), &srv.key_pem, None).expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let app = axum::Router::new().route("/hi", axum::routing::get(|| async { "hello" }));
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            while let Ok((tcp, peer)) = listener.accept().await {
                let limits = crate::serve::Limits::default();
                tokio::spawn(serve_connection(tcp, peer, acceptor.clone(), app.clone(), limits));
            }
        });
        (addr, ca)
    }

    #[tokio::test]
    async fn pinned_and_ca_clients_talk_to_the_server_and_a_wrong_pin_is_refused() {
        let (addr, ca) = serve_once().await;
        let pin = super::super::ca::digest_pem(&ca.cert_pem).expect("digest");
        let (status, body) = Client::pinned(&pin)
            .expect("client")
            .request(&addr, http::Method::GET, "/hi", &[], None)
            .await
            .expect("ok");
        assert_eq!((status, &body[..]), (200, &b"hello"[..]));
        let (status, _) = Client::with_ca(&ca.cert_pem)
            .expect("client")
            .request(&addr, http::Method::GET, "/hi", &[], None)
            .await
            .expect("ok");
        assert_eq!(status, 200);
        let wrong = format!("sha256:{}", "0".repeat(64));
        let e =
            Client::pinned(&wrong).expect("client").request(&addr, http::Method::GET, "/hi", &[], None).await;
        assert!(matches!(e, Err(TlsError::CaMismatch { .. })), "{e:?}");
        let other = super::super::ca::create_ca("c-other").expect("ca");
        let e = Client::with_ca(&other.cert_pem)
            .expect("client")
            .request(&addr, http::Method::GET, "/hi", &[], None)
            .await;
        assert!(matches!(e, Err(TlsError::Handshake { .. })), "{e:?}");
        let e = Client::with_ca(&ca.cert_pem)
            .expect("client")
            .request("127.0.0.1:1", http::Method::GET, "/", &[], None)
            .await;
        assert!(matches!(e, Err(TlsError::Unreachable { .. })), "{e:?}");
    }
}
