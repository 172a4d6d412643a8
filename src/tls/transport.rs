//! The seams between mutual TLS and tonic: an incoming stream of verified connections for the
//! server, a connector for client channels, and [`peer_county`] for handlers.
//!
//! tonic 0.14 (feature `tls-ring`, which enables `tls-connect-info`) implements `Connected` for
//! `tokio_rustls::server::TlsStream<TcpStream>`, so the streams yielded by [`TlsIncoming`] put the
//! client's verified chain into every request's extensions and `Request::peer_certs()` works;
//! [`peer_county`] builds on that.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::{Channel, Endpoint, Uri};
use tracing::{debug, warn};

use super::identity::{County, county_from_certificate};
use super::live::{Connections, Role, TrackedTcp};
use crate::domain::policy::{Rejection, RejectionCode};

/// How long a client may take to complete the TLS handshake before we hang up, unless the node's
/// `[limits]` say otherwise. Long enough for a slow link between county data centres, short
/// enough that idle sockets do not pile up.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once; beyond this the accept loop waits, leaving further connections
/// in the kernel's backlog instead of in our memory.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Verified connections waiting for the server to pick them up.
const READY_QUEUE: usize = 64;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

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

// === impl TlsIncoming ===

/// Told about every connection refused during the TLS handshake (no or untrusted client
/// certificate, expired certificate, TLS 1.2, plaintext), with the peer address and the TLS
/// error, so that the node can audit refusals that never reach a handler.
///
/// Called on the handshake task: it must return at once (e.g. `try_send` on a channel), never
/// block or wait on I/O. Not called for a client that leaves without completing a handshake
/// (closed, reset, or silent until the timeout): that is what port scanners and load-balancer
/// probes do, and auditing them would only flood the log.
pub type HandshakeFailureHook = Arc<dyn Fn(SocketAddr, &io::Error) + Send + Sync>;

/// A stream of connections that completed the mutual-TLS handshake, for
/// `tonic::transport::Server::builder().serve_with_incoming_shutdown(...)`.
///
/// Handshakes run concurrently in their own tasks, so one slow or hostile client cannot hold up
/// the accept loop. A failed or timed-out handshake is logged with the peer address and dropped
/// (and reported to the [`HandshakeFailureHook`], if any); the stream never yields an error
/// (which tonic would merely log anyway), so the server keeps serving. Dropping the stream stops
/// the accept loop, closes the listener and abandons handshakes in flight; the loop ends on the
/// runtime after the drop, so whoever must know the port is free again awaits
/// [`TlsIncoming::closed`].
#[derive(Debug)]
pub struct TlsIncoming {
    /// Verified connections, fed by the accept loop.
    ready: mpsc::Receiver<TlsStream<TrackedTcp>>,
    /// The accept loop (which owns the handshake tasks), aborted on drop.
    accept_loop: JoinHandle<()>,
    /// Told (by being dropped) once the accept loop has closed the listener.
    closed: Option<oneshot::Receiver<()>>,
}

/// The listener, with the sender that says it is closed: fields drop in order, so the listener
/// is closed before anyone waiting on [`TlsIncoming::closed`] hears of it.
struct Listening {
    listener: TcpListener,
    _closed: oneshot::Sender<()>,
}

/// Starts accepting mutual-TLS connections on `listener` with [`DEFAULT_HANDSHAKE_TIMEOUT`].
///
/// Must be called inside a tokio runtime: the accept loop is spawned immediately.
pub fn tls_incoming(listener: TcpListener, config: Arc<ServerConfig>) -> TlsIncoming {
    TlsIncoming::new(listener, config, DEFAULT_HANDSHAKE_TIMEOUT)
}

impl TlsIncoming {
    /// Starts accepting on `listener`; a client that has not finished its handshake within
    /// `handshake_timeout` is disconnected. Must be called inside a tokio runtime.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>, handshake_timeout: Duration) -> Self {
        Self::start(listener, config, handshake_timeout, None, None)
    }

    /// Like [`TlsIncoming::new`], and calls `on_failure` for every handshake a client attempted
    /// and failed (see [`HandshakeFailureHook`] for which ones count).
    pub fn with_failure_hook(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        handshake_timeout: Duration,
        on_failure: HandshakeFailureHook,
    ) -> Self {
        Self::start(listener, config, handshake_timeout, Some(on_failure), None)
    }

    /// Like [`TlsIncoming::with_failure_hook`], and tracks every verified connection in
    /// `connections` (its client certificate verified for `role`), so that a reload whose CRLs
    /// revoke that certificate closes it.
    pub fn tracked(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        handshake_timeout: Duration,
        on_failure: HandshakeFailureHook,
        connections: Arc<Connections>,
        role: Role,
    ) -> Self {
        Self::start(
            listener,
            config,
            handshake_timeout,
            Some(on_failure),
            Some((connections, role)),
        )
    }

    fn start(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        handshake_timeout: Duration,
        on_failure: Option<HandshakeFailureHook>,
        tracking: Option<(Arc<Connections>, Role)>,
    ) -> Self {
        let (sender, ready) = mpsc::channel(READY_QUEUE);
        let (closed_sender, closed) = oneshot::channel();
        let acceptor = TlsAcceptor::from(config);
        let accept_loop = tokio::spawn(accept_loop(
            Listening {
                listener,
                _closed: closed_sender,
            },
            acceptor,
            handshake_timeout,
            sender,
            on_failure,
            tracking,
        ));
        Self {
            ready,
            accept_loop,
            closed: Some(closed),
        }
    }

    /// Resolves once the listener is closed, after this stream was dropped. Take it once,
    /// before handing the stream to the server (taken again, it resolves at once).
    pub fn closed(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let closed = self.closed.take();
        async move {
            if let Some(closed) = closed {
                let _ = closed.await;
            }
        }
    }
}

impl Stream for TlsIncoming {
    type Item = Result<TlsStream<TrackedTcp>, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ready.poll_recv(cx).map(|ready| ready.map(Ok))
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept_loop(
    listening: Listening,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    ready: mpsc::Sender<TlsStream<TrackedTcp>>,
    on_failure: Option<HandshakeFailureHook>,
    tracking: Option<(Arc<Connections>, Role)>,
) {
    // Owning the handshake tasks here means aborting this loop aborts them too.
    let mut handshakes = JoinSet::new();
    loop {
        while handshakes.try_join_next().is_some() {}
        if handshakes.len() >= MAX_PENDING_HANDSHAKES {
            handshakes.join_next().await;
            continue;
        }
        tokio::select! {
            () = ready.closed() => return,
            accepted = listening.listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    handshakes.spawn(handshake(
                        acceptor.clone(),
                        tcp,
                        peer,
                        handshake_timeout,
                        ready.clone(),
                        on_failure.clone(),
                        tracking.clone(),
                    ));
                }
                Err(error) => {
                    warn!(%error, "accepting tcp connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    handshake_timeout: Duration,
    ready: mpsc::Sender<TlsStream<TrackedTcp>>,
    on_failure: Option<HandshakeFailureHook>,
    tracking: Option<(Arc<Connections>, Role)>,
) {
    // gRPC exchanges many small frames; Nagle's algorithm would only add latency.
    if let Err(error) = tcp.set_nodelay(true) {
        debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let tcp = TrackedTcp::new(tcp);
    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            if is_abandoned(&error) {
                debug!(%peer, %error, "tls handshake abandoned");
            } else {
                let said = crate::domain::privacy::without_id_numbers(&error.to_string()).into_owned();
                warn!(%peer, error = %said, "tls handshake failed");
                if let Some(on_failure) = &on_failure {
                    on_failure(peer, &error);
                }
            }
            return;
        }
        Err(_elapsed) => {
            warn!(%peer, timeout = ?handshake_timeout, "tls handshake timed out");
            return;
        }
    };
    let county = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| county_from_certificate(leaf).ok());
    debug!(%peer, county = ?county, "peer connected");
    if let Some((connections, role)) = &tracking {
        let chain = stream.get_ref().1.peer_certificates().unwrap_or_default();
        if let Some(closed) = connections.track(
            stream.get_ref().0,
            *role,
            chain.iter().map(|c| c.clone().into_owned()).collect(),
        ) {
            // a reload revoked the certificate while the handshake was under way
            warn!(%peer, county = ?closed.county, serial = %closed.serial, "connection closed: its certificate was revoked by a reload during the handshake");
            return;
        }
    }
    // Err means the server stopped; the connection is simply dropped.
    let _ = ready.send(stream).await;
}

/// Port scanners and load-balancer probes connect and leave; that is not worth a warning.
/// Anything else (unknown CA, expired certificate, TLS 1.2, no certificate, plaintext) is a peer
/// that tried and failed, which an operator wants to see.
fn is_abandoned(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

// === peer identity in handlers ===

/// The county of the peer that sent `request`, read from its verified client certificate.
///
/// Works for requests that arrived over [`TlsIncoming`] (tonic attaches the chain through its
/// `Connected` impl for `tokio_rustls::server::TlsStream<TcpStream>`). Anything else — a request
/// without a TLS connection, or one from a test harness — is `UNAUTHENTICATED`. The leaf is
/// re-parsed per call (a few microseconds); the handshake has already refused certificates that
/// do not name one county, so the error branch is defence in depth.
pub fn peer_county<T>(request: &tonic::Request<T>) -> Result<County, Rejection> {
    let unauthenticated = |reason| Rejection::new(RejectionCode::Unauthenticated, reason);
    let chain = request
        .peer_certs()
        .ok_or_else(|| unauthenticated("no verified client certificate"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| unauthenticated("no verified client certificate"))?;
    county_from_certificate(leaf).map_err(|_| unauthenticated("client certificate names no single county"))
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
/// `config` comes from [`client_config`](super::client_config) and fixes which county the server
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
