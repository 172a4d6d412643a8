//! The one way a webhook request leaves the node: an HTTP/1.1 POST on a fresh connection, over
//! TLS 1.2 or 1.3 for `https://` (trusting the system's root certificates), with the connection
//! and the whole request bounded in time, redirects never followed and at most a few KiB of the
//! answer read. [`WebhookPoster`] is the seam: the delivery worker is tested through it too.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::warn;

use crate::domain::privacy::without_id_numbers;
use crate::domain::webhook::WebhookUrl;

/// Most bytes of an endpoint's answer read (its body is kept only to say why it failed).
const MAX_ANSWER_BYTES: usize = 4 * 1024;

/// Most characters of an answer kept in `last_error`.
const MAX_ERROR_CHARS: usize = 200;

/// One request to send.
#[derive(Clone, Debug)]
pub struct WebhookRequest {
    /// Where.
    pub url: WebhookUrl,
    /// The `webhook-*` headers (their values hold no secret: signatures only).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Bytes,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// The endpoint answered 2xx: the event is delivered.
    Accepted(u16),
    /// Anything else: tried again later.
    Failed {
        /// What failed, a `webhook_attempts.result` value: `http_status`, `redirect`,
        /// `timeout`, `connect`, `tls` or `other`.
        result: &'static str,
        /// The status, if the endpoint answered.
        status: Option<u16>,
        /// Why, in words for the operator.
        error: String,
    },
}

impl PostOutcome {
    /// The `webhook_attempts.result` value.
    pub fn result(&self) -> &'static str {
        match self {
            PostOutcome::Accepted(_) => "delivered",
            PostOutcome::Failed { result, .. } => result,
        }
    }
}

/// Sends webhook requests.
pub trait WebhookPoster: Send + Sync + std::fmt::Debug {
    /// Sends `request` once.
    fn post(&self, request: WebhookRequest) -> BoxFuture<'_, PostOutcome>;
}

/// [`WebhookPoster`] over the network.
#[derive(Clone, Debug)]
pub struct HttpPoster {
    /// TLS for `https://` endpoints: TLS 1.2 or 1.3, the system's roots.
    tls: Arc<rustls::ClientConfig>,
    /// How long TCP connect and the TLS handshake may take, together.
    connect_timeout: Duration,
    /// How long the whole request may take.
    total_timeout: Duration,
}

impl HttpPoster {
    /// A poster trusting the system's root certificates (the OS trust store, or the files
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` name). A county system with a certificate from the
    /// county's own CA is reached once that CA is in the machine's trust store.
    pub fn new(connect_timeout: Duration, total_timeout: Duration) -> anyhow::Result<HttpPoster> {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            warn!(%error, "a system root certificate could not be read; webhooks trust the others");
        }
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            warn!("no system root certificates found: https:// webhook endpoints cannot be verified");
        }
        HttpPoster::with_roots(roots, connect_timeout, total_timeout)
    }

    /// A poster trusting exactly `roots`.
    pub fn with_roots(
        roots: rustls::RootCertStore,
        connect_timeout: Duration,
        total_timeout: Duration,
    ) -> anyhow::Result<HttpPoster> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpPoster {
            tls: Arc::new(config),
            connect_timeout,
            total_timeout,
        })
    }

    async fn exchange(&self, request: WebhookRequest) -> PostOutcome {
        let failed = |result, error: String| PostOutcome::Failed {
            result,
            status: None,
            error,
        };
        let url = request.url.clone();
        let connect = async {
            // plain HTTP only ever to this machine: `localhost` is taken as the loopback
            // address, never as whatever a resolver or a hosts file says it is
            let host = if !url.tls() && url.host().eq_ignore_ascii_case("localhost") {
                "127.0.0.1"
            } else {
                url.host()
            };
            let tcp = TcpStream::connect((host, url.port()))
                .await
                .map_err(|error| failed("connect", format!("cannot connect: {error}")))?;
            if !url.tls() && !tcp.peer_addr().is_ok_and(|peer| peer.ip().is_loopback()) {
                return Err(failed(
                    "connect",
                    "plain HTTP goes to a loopback address only".into(),
                ));
            }
            let _ = tcp.set_nodelay(true);
            if !url.tls() {
                return Ok::<_, PostOutcome>(Box::new(tcp) as Box<dyn Stream>);
            }
            let name = ServerName::try_from(url.host().to_string())
                .map_err(|_| failed("tls", "the host is not a valid TLS server name".into()))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(|error| failed("tls", format!("tls handshake failed: {error}")))?;
            Ok(Box::new(tls) as Box<dyn Stream>)
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(outcome)) => return outcome,
            Err(_) => {
                return failed(
                    "timeout",
                    format!(
                        "no connection within {}",
                        humantime::format_duration(self.connect_timeout)
                    ),
                );
            }
        };
        let (mut sender, connection) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        {
            Ok(pair) => pair,
            Err(error) => return failed("other", format!("http: {error}")),
        };
        // the connection's task ends with this call: one request per connection
        let connection = AbortOnDrop(tokio::spawn(connection));
        let mut builder = hyper::Request::post(url.path_and_query())
            .header(hyper::header::HOST, url.authority())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("hancha/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let http_request = match builder.body(Full::new(request.body)) {
            Ok(http_request) => http_request,
            Err(error) => return failed("other", format!("request: {error}")),
        };
        let response = match sender.send_request(http_request).await {
            Ok(response) => response,
            Err(error) => return failed("other", format!("http: {error}")),
        };
        let status = response.status();
        let answer = read_some(response.into_body()).await;
        drop(connection);
        let code = status.as_u16();
        if status.is_success() {
            return PostOutcome::Accepted(code);
        }
        let (result, error) = if status.is_redirection() {
            (
                "redirect",
                format!("answered {status}: redirects are not followed"),
            )
        } else {
            let said: String = without_id_numbers(&String::from_utf8_lossy(&answer))
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_ERROR_CHARS)
                .collect();
            let said = said.trim();
            (
                "http_status",
                if said.is_empty() {
                    format!("answered {status}")
                } else {
                    format!("answered {status}: {said}")
                },
            )
        };
        PostOutcome::Failed {
            result,
            status: Some(code),
            error,
        }
    }
}

impl WebhookPoster for HttpPoster {
    fn post(&self, request: WebhookRequest) -> BoxFuture<'_, PostOutcome> {
        Box::pin(async move {
            match tokio::time::timeout(self.total_timeout, self.exchange(request)).await {
                Ok(outcome) => outcome,
                Err(_) => PostOutcome::Failed {
                    result: "timeout",
                    status: None,
                    error: format!(
                        "no answer within {}",
                        humantime::format_duration(self.total_timeout)
                    ),
                },
            }
        })
    }
}

/// A TCP or TLS stream.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Aborts the connection's task when the request is done or dropped (a timeout).
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// At most [`MAX_ANSWER_BYTES`] of `body`; what does not arrive is not waited for beyond the
/// request's own timeout.
async fn read_some(mut body: hyper::body::Incoming) -> Vec<u8> {
    let mut read = Vec::new();
    while read.len() < MAX_ANSWER_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_ANSWER_BYTES - read.len();
                    read.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            _ => break,
        }
    }
    read
}
