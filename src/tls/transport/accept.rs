//! The accepting side: an incoming stream of verified connections for the server, and
//! [`peer_county`] for handlers.
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
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, warn};

use super::is_abandoned;
use crate::domain::policy::{Rejection, RejectionCode};
use crate::tls::identity::{County, county_from_certificate};
use crate::tls::live::{Connections, Role, TrackedTcp};

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
