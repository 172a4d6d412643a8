//! The connecting side: channels to peers over mutual TLS, and what a server's refusal of our
//! certificate was.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use super::is_abandoned;
use crate::tls::identity::County;
use crate::tls::live::{Connections, Role, TrackedTcp};

/// Placeholder server name for rustls: our verifier ignores names and SNI is disabled.
const PLACEHOLDER_SERVER_NAME: &str = "peer.hancha.invalid";

/// The timings of a channel to a peer (a node takes them from its `[limits]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelTimings {
    /// How long a client waits for TCP + TLS to a peer before giving up on this attempt.
    pub connect_timeout: Duration,
    /// HTTP/2 keep-alive pings, so a peer that vanished without closing is noticed.
    pub keep_alive_interval: Duration,
    /// How long a keep-alive ping may go unanswered before the connection is dropped.
    pub keep_alive_timeout: Duration,
}

impl Default for ChannelTimings {
    fn default() -> Self {
        ChannelTimings {
            connect_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(10),
        }
    }
}

// === client channels ===

/// Why a channel to a peer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `host:port` does not make a valid URI authority.
    #[error("invalid peer address {address:?}")]
    InvalidAddress {
        /// What the caller passed.
        address: String,
        /// The URI parser's complaint.
        #[source]
        source: tonic::transport::Error,
    },
    /// TCP, TLS (including a server certificate for the wrong county) or HTTP/2 failed.
    #[error("cannot connect to peer at {address}")]
    Transport {
        /// Where we tried to connect.
        address: String,
        /// What went wrong; its source chain names the TLS failure.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Opens a channel to the peer at `peer_address` (`host:port`) over mutual TLS, connecting now.
///
/// `config` comes from [`client_config`](crate::tls::client_config) and fixes which county the server
/// must prove to be. Note that with TLS 1.3 the server judges *our* certificate after the client
/// side of the handshake has finished, so a rejection of our certificate surfaces on the first
/// call, not here.
pub async fn connect(peer_address: &str, config: Arc<ClientConfig>) -> Result<Channel, ConnectError> {
    let endpoint = endpoint(peer_address, ChannelTimings::default())?;
    endpoint
        .connect_with_connector(tls_connector(peer_address, config))
        .await
        .map_err(|source| ConnectError::Transport {
            address: peer_address.to_owned(),
            source,
        })
}

/// Like [`connect`], and also returns a [`RefusalWatch`] that learns why the server hung up if it
/// refuses our certificate after the handshake, for a client that wants to tell its user (the
/// `hancha` command line; the call itself only fails with "operation was canceled").
pub async fn connect_watched(
    peer_address: &str,
    config: Arc<ClientConfig>,
) -> Result<(Channel, RefusalWatch), ConnectError> {
    let endpoint = endpoint(peer_address, ChannelTimings::default())?;
    let watch = RefusalWatch::default();
    let connector = tls_connector_watched(peer_address, config, Some(watch.clone()));
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|source| ConnectError::Transport {
            address: peer_address.to_owned(),
            source,
        })?;
    Ok((channel, watch))
}

/// Asks the server at `peer_address` once more for its verdict on our certificate: completes
/// the client side of the handshake, sends nothing, and waits at most `patience` for an alert.
/// For after a call failed with the connection closed but no alert read: the server's reset
/// (it closes with our request unread) can make the kernel drop the alert that came before it,
/// which a connection that sent nothing never has to fear. `None` when the server kept the
/// connection open (it accepted us) or could not be reached.
pub async fn probe_refusal(
    peer_address: &str,
    config: Arc<ClientConfig>,
    patience: Duration,
) -> Option<Refusal> {
    use tokio::io::AsyncReadExt;
    let attempt = async {
        let tcp = TcpStream::connect(peer_address).await.ok()?;
        let server_name = ServerName::try_from(PLACEHOLDER_SERVER_NAME).ok()?;
        let mut tls = TlsConnector::from(config).connect(server_name, tcp).await.ok()?;
        let mut byte = [0_u8; 1];
        match tls.read(&mut byte).await {
            Ok(read) => refusal_of(Ok(read > 0)),
            Err(error) => refusal_of(Err(&error)),
        }
    };
    tokio::time::timeout(patience, attempt).await.ok().flatten()
}

/// Like [`connect`], but connects on first use and reconnects as needed, so a node can start
/// while a peer is down, with the node's `timings`. Fails only on an invalid address.
pub fn connect_lazy(
    peer_address: &str,
    config: Arc<ClientConfig>,
    timings: ChannelTimings,
) -> Result<Channel, ConnectError> {
    let endpoint = endpoint(peer_address, timings)?;
    Ok(endpoint.connect_with_connector_lazy(tls_connector(peer_address, config)))
}

/// Like [`connect_lazy`], and tracks every connection in `connections` with the server
/// certificate of `county` it verified, so that a reload whose CRLs revoke that certificate
/// closes it (the channel then connects again, and the handshake refuses the revoked server).
pub fn connect_lazy_tracked(
    peer_address: &str,
    config: Arc<ClientConfig>,
    timings: ChannelTimings,
    connections: Arc<Connections>,
    county: County,
) -> Result<Channel, ConnectError> {
    let endpoint = endpoint(peer_address, timings)?;
    let connector = tls_connector_tracked(
        peer_address,
        config,
        None,
        Some((connections, Role::Server(county))),
    );
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// What [`connect_lazy_tracked`] makes, as a function making a new lazy channel each time it is
/// called (the address checked once, here), for a client that drops its channel when idle and
/// opens another when needed.
pub fn reconnector_tracked(
    peer_address: &str,
    config: Arc<ClientConfig>,
    timings: ChannelTimings,
    connections: Arc<Connections>,
    county: County,
) -> Result<impl Fn() -> Channel + Send + Sync + 'static, ConnectError> {
    let endpoint = endpoint(peer_address, timings)?;
    let peer_address = peer_address.to_owned();
    Ok(move || {
        let connector = tls_connector_tracked(
            &peer_address,
            Arc::clone(&config),
            None,
            Some((Arc::clone(&connections), Role::Server(county))),
        );
        endpoint.connect_with_connector_lazy(connector)
    })
}

fn endpoint(peer_address: &str, timings: ChannelTimings) -> Result<Endpoint, ConnectError> {
    // The scheme is only for tonic's bookkeeping: the connector below does TLS itself.
    let endpoint = Endpoint::from_shared(format!("http://{peer_address}")).map_err(|source| {
        ConnectError::InvalidAddress {
            address: peer_address.to_owned(),
            source,
        }
    })?;
    Ok(endpoint
        .connect_timeout(timings.connect_timeout)
        .http2_keep_alive_interval(timings.keep_alive_interval)
        .keep_alive_timeout(timings.keep_alive_timeout))
}

/// A tower service that dials `peer_address` and runs the TLS handshake, for tonic's
/// `connect_with_connector`. The URI tonic passes is ignored: it is derived from the same address.
fn tls_connector(
    peer_address: &str,
    config: Arc<ClientConfig>,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<Watched<tokio_rustls::client::TlsStream<TrackedTcp>>>,
    Error = io::Error,
    Future: Send,
> + Send
+ 'static {
    tls_connector_tracked(peer_address, config, None, None)
}

/// [`tls_connector`], telling `watch` (if any) how the server refused us.
fn tls_connector_watched(
    peer_address: &str,
    config: Arc<ClientConfig>,
    watch: Option<RefusalWatch>,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<Watched<tokio_rustls::client::TlsStream<TrackedTcp>>>,
    Error = io::Error,
    Future: Send,
> + Send
+ 'static {
    tls_connector_tracked(peer_address, config, watch, None)
}

/// [`tls_connector_watched`], tracking each connection (if asked) with the server's chain.
fn tls_connector_tracked(
    peer_address: &str,
    config: Arc<ClientConfig>,
    watch: Option<RefusalWatch>,
    tracking: Option<(Arc<Connections>, Role)>,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<Watched<tokio_rustls::client::TlsStream<TrackedTcp>>>,
    Error = io::Error,
    Future: Send,
> + Send
+ 'static {
    let peer_address: Arc<str> = Arc::from(peer_address);
    let connector = TlsConnector::from(config);
    tower::service_fn(move |_uri: Uri| {
        let peer_address = Arc::clone(&peer_address);
        let connector = connector.clone();
        let watch = watch.clone();
        let tracking = tracking.clone();
        async move {
            let tcp = TcpStream::connect(&*peer_address).await?;
            tcp.set_nodelay(true)?;
            let server_name = ServerName::try_from(PLACEHOLDER_SERVER_NAME)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
            let tls = connector.connect(server_name, TrackedTcp::new(tcp)).await?;
            if let Some((connections, role)) = &tracking {
                let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
                if connections
                    .track(
                        tls.get_ref().0,
                        *role,
                        chain.iter().map(|c| c.clone().into_owned()).collect(),
                    )
                    .is_some()
                {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the server's certificate was revoked by a reload during the handshake",
                    ));
                }
            }
            Ok(TokioIo::new(Watched {
                inner: tls,
                watch,
                received_any: false,
            }))
        }
    })
}

// === impl RefusalWatch ===

/// How a server refused our certificate after the client's side of the TLS 1.3 handshake had
/// finished (the server judges the client certificate last, and says so with an alert on the
/// client's first read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server sent this TLS alert before any data: `certificate_expired`, `unknown_ca`, ...
    Alert(rustls::AlertDescription),
    /// The server closed or reset the connection before sending any data, without an alert.
    ClosedBeforeAnyData,
}

/// Filled in by a channel from [`connect_watched`] when the server hangs up on it right after
/// the handshake; read it after a call failed.
#[derive(Clone, Debug, Default)]
pub struct RefusalWatch(Arc<std::sync::Mutex<Option<Refusal>>>);

impl RefusalWatch {
    /// How the server refused us, if it did.
    pub fn refusal(&self) -> Option<Refusal> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the first alert; a connection seen closed (a write that failed first, say) only
    /// until the alert that explains it is read.
    fn record(&self, refusal: Refusal) {
        let mut slot = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match (*slot, refusal) {
            (Some(Refusal::Alert(_)), _) => {}
            (Some(Refusal::ClosedBeforeAnyData), Refusal::ClosedBeforeAnyData) => {}
            _ => *slot = Some(refusal),
        }
    }
}

/// A client TLS stream that tells its [`RefusalWatch`] what ended it, if the server hung up
/// before sending anything.
#[derive(Debug)]
pub struct Watched<S> {
    /// The TLS stream.
    inner: S,
    /// Where a refusal is recorded; `None` for channels nobody watches.
    watch: Option<RefusalWatch>,
    /// Whether the server has sent any data: after that, a closed connection is no refusal.
    received_any: bool,
}

impl<S> Watched<S> {
    /// Takes note of a read or write: data from the server ends the watch, a refusal before any
    /// data is recorded.
    fn observe(&mut self, outcome: Result<bool, &io::Error>) {
        if self.received_any {
            return;
        }
        if matches!(outcome, Ok(true)) {
            self.received_any = true;
            return;
        }
        if let (Some(watch), Some(refusal)) = (&self.watch, refusal_of(outcome)) {
            watch.record(refusal);
        }
    }
}

/// What the outcome of a read (`Ok(true)`: data came) or of a failed write says about a server
/// that has sent nothing yet.
fn refusal_of(outcome: Result<bool, &io::Error>) -> Option<Refusal> {
    match outcome {
        Ok(true) => None,
        Ok(false) => Some(Refusal::ClosedBeforeAnyData),
        Err(error) => match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::AlertReceived(alert)) => Some(Refusal::Alert(*alert)),
            _ if is_abandoned(error) => Some(Refusal::ClosedBeforeAnyData),
            _ => None,
        },
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &result {
            Poll::Ready(Ok(())) => this.observe(Ok(buf.filled().len() > before)),
            Poll::Ready(Err(error)) => this.observe(Err(error)),
            Poll::Pending => {}
        }
        result
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Err(error)) = &result {
            this.observe(Err(error));
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Err(error)) = &result {
            this.observe(Err(error));
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
