//! The web listener (`[web]`): the operator API as HTTP/JSON for the county's other systems
//! (`POST /v1/<Method>`, [`api`]), authenticated with API tokens ([`tokens`]), described by an
//! OpenAPI 3 document made from the proto descriptors ([`openapi`], `GET /openapi.json`).
//! A thin edge: every route calls the operator service the gRPC listener serves. HTTPS with the
//! `[web.tls]` certificate (reloaded with the node's other TLS material), or plain HTTP on
//! loopback. The web console
//! ([`console`]) is served by the same listener, on the same operator service.

pub mod api;
mod certificate;
pub mod console;
pub mod logins;
pub mod openapi;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, warn};

use crate::config::NodeConfig;

use crate::operator::OperatorService;
pub use certificate::{WebCertificate, WebReload};

/// The whole web listener: the API under `/v1/`, `GET /openapi.json`, and the console's pages
/// everywhere else.
pub fn router(api: api::Api, console: console::Console) -> Router {
    api::routes(api)
        .route("/openapi.json", get(openapi_json))
        .merge(console::routes(console))
}

/// `GET /openapi.json`: the document `hancha openapi` prints (no token needed: it describes the
/// API, nothing of its data).
async fn openapi_json() -> axum::response::Response {
    match openapi::document() {
        Ok(document) => ([(header::CONTENT_TYPE, "application/json")], document).into_response(),
        Err(error) => {
            warn!(%error, "cannot make the OpenAPI document");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The bound web listener.
#[derive(Debug)]
pub struct WebListening {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its certificate, when it serves TLS (reloaded with the node's other TLS material).
    pub certificate: Option<Arc<WebCertificate>>,
}

/// Binds `web.listen` (when set) and serves [`router`] for `operator` until `shutdown` turns
/// true.
pub async fn spawn(
    config: &NodeConfig,
    operator: &OperatorService,
    tasks: &mut JoinSet<()>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<WebListening>> {
    let Some(listen) = config.web.listen else {
        return Ok(None);
    };
    let certificate = config.web.tls.as_ref().map(WebCertificate::load).transpose()?;
    let tls = certificate
        .as_ref()
        .map(|certificate| server_config(Arc::clone(certificate)))
        .transpose()?
        .map(TlsAcceptor::from);
    if tls.is_none() && !listen.ip().is_loopback() {
        anyhow::bail!("web.listen {listen} is not loopback: [web.tls] cert and key are required");
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the web listener on {listen}"))?;
    let address = listener.local_addr()?;
    let service = operator.for_web();
    let console = console::Console::new(
        service.clone(),
        config.web.login_required(),
        config.limits.rpc_timeout,
        tls.is_some(),
    );
    let api = api::Api {
        identify: tokens::Identify {
            node: Arc::clone(service.node()),
            login_required: config.web.login_required(),
        },
        service,
        // JSON is larger than the protobuf the gRPC limit counts
        max_body_bytes: config.limits.max_message_bytes.saturating_mul(2),
        rpc_timeout: config.limits.rpc_timeout,
    };
    let app = router(api, console);
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let handshake_timeout = config.limits.handshake_timeout;
    tasks.spawn(async move {
        let result = match tls {
            None => axum::serve(listener, app).with_graceful_shutdown(stop).await,
            Some(acceptor) => {
                let incoming = TlsListener::start(listener, acceptor, handshake_timeout);
                axum::serve(incoming, app).with_graceful_shutdown(stop).await
            }
        };
        if let Err(error) = result {
            warn!(%error, "web listener stopped with an error");
        }
    });
    Ok(Some(WebListening { address, certificate }))
}

/// The web listener's TLS configuration: TLS 1.3, HTTP/1.1, the `[web.tls]` certificate (as
/// reloaded), no client certificates (callers authenticate with tokens or console logins).
fn server_config(certificate: Arc<WebCertificate>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepted TLS connections waiting for the server; the handshakes run concurrently, each
/// bounded by the handshake timeout, so a slow client holds up nobody else.
struct TlsListener {
    /// Handshaken connections.
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    /// Where it listens.
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor, timeout: Duration) -> TlsListener {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // ends (closing the port) once the server has stopped and dropped its side
                let accepted = tokio::select! {
                    () = sender.closed() => break,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        debug!(%error, "web listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => debug!(%peer, %error, "web listener: tls handshake failed"),
                        Err(_) => debug!(%peer, "web listener: tls handshake timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // the accept loop never ends while the receiver lives
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
