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
    let loopback_only = !console.login_required;
    api::routes(api)
        .route("/openapi.json", get(openapi_json))
        .merge(console::routes(console))
        .layer(axum::middleware::from_fn(move |request, next| {
            guard(loopback_only, request, next)
        }))
}

/// What every answer of the web listener gets, and what every request must show.
///
/// - Without logins (a loopback listener without `require_login`) a request must name a
///   loopback host (`127.0.0.1`, `[::1]`, `localhost`): a page of another site that made its
///   name resolve to 127.0.0.1 (DNS rebinding) would otherwise read the county-wide console
///   and its form token. Answered `421 Misdirected Request`.
/// - Answers are not cached (`no-store`: the inquiry and window pages show full ID numbers, and
///   window PCs are shared) unless a route says otherwise (the style sheet), may not be framed
///   (clickjacking), and load nothing from elsewhere (`Content-Security-Policy`).
async fn guard(
    loopback_only: bool,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if loopback_only {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| request.uri().host());
        if !host.is_some_and(names_loopback) {
            return (
                axum::http::StatusCode::MISDIRECTED_REQUEST,
                "this listener answers only requests addressed to 127.0.0.1, [::1] or localhost \
                 (set web.require_login to serve other names)",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, axum::http::HeaderValue::from_static(value));
        }
    }
    response
}

/// Whether a `Host` header (`name[:port]`) names this machine: `localhost` or a loopback
/// address.
fn names_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
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

#[cfg(test)]
mod tests {
    use super::names_loopback;

    #[test]
    fn only_loopback_names_pass_the_host_check() {
        for host in [
            "127.0.0.1:7550",
            "127.0.0.1",
            "localhost",
            "LOCALHOST:80",
            "[::1]:7550",
            "127.8.9.10:1",
        ] {
            assert!(names_loopback(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:7550",
            "10.0.0.1:80",
            "localhost.evil.example",
            "[::2]:1",
            "",
            "127.0.0.1.nip.io",
        ] {
            assert!(!names_loopback(host), "{host}");
        }
    }
}
