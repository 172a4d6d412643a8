//! Connection tracking: every live TLS connection with the certificate chain the other side
//! presented, so that a reload whose CRLs revoke a certificate closes that side's connections.

use super::*;

/// Which side of which listener a tracked connection's certificate was verified for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A peer's client certificate, on the peer listener.
    PeerClient,
    /// An operator's client certificate, on the operator listener.
    OperatorClient,
    /// A peer's server certificate, on a connection we dialled to that county.
    Server(County),
}

impl Role {
    /// For logs, metrics and audit records: `peer`, `operator` or `outbound`.
    pub fn label(self) -> &'static str {
        match self {
            Role::PeerClient => "peer",
            Role::OperatorClient => "operator",
            Role::Server(_) => "outbound",
        }
    }
}

/// A connection closed because its certificate is now revoked.
#[derive(Clone, Debug)]
pub struct ClosedConnection {
    /// Which kind of connection.
    pub role: Role,
    /// The county the certificate names, if any (an operator's names none).
    pub county: Option<County>,
    /// The certificate's serial number, hex.
    pub serial: String,
    /// Its issuer's name.
    pub issuer: String,
    /// The other end's address.
    pub remote: Option<SocketAddr>,
}

/// One tracked connection.
struct Tracked {
    role: Role,
    chain: Vec<CertificateDer<'static>>,
    remote: Option<SocketAddr>,
    switch: Arc<KillSwitch>,
}

/// Every live connection made with a verified certificate, to close those whose certificate is
/// revoked later.
///
/// A handshake verifies a certificate against the material of its moment, and the connection
/// is tracked only once the handshake is over: a reload may swap the material and close the
/// revoked connections in between. So the registry keeps the material in force too, swapped
/// under the same lock the reload closes connections under, and [`Connections::track`] checks
/// each connection it adds against it: whichever comes second, the reload or the tracking,
/// sees the other.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Tracked>>,
    /// The material in force, as the last reload left it (`None` until a node's first load).
    material: Mutex<Option<Arc<TlsMaterial>>>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections").field("live", &self.len()).finish()
    }
}

impl Connections {
    /// How many connections are tracked now.
    pub fn len(&self) -> usize {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tracks the connection over `stream` until it is dropped. If the material in force now
    /// revokes its certificate (a reload between its handshake and now), it is closed at once
    /// and returned.
    pub(crate) fn track(
        self: &Arc<Self>,
        stream: &TrackedTcp,
        role: Role,
        chain: Vec<CertificateDer<'static>>,
    ) -> Option<ClosedConnection> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        *stream
            .switch
            .tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((id, Arc::downgrade(self)));
        let tracked = Tracked {
            role,
            chain,
            remote: stream.inner.peer_addr().ok(),
            switch: Arc::clone(&stream.switch),
        };
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let material = self
            .material
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let closed = material.and_then(|material| close_if_revoked(&tracked, &material, UnixTime::now()));
        live.insert(id, tracked);
        closed
    }

    /// Makes `material` the material in force and closes the connections whose certificates
    /// it finds revoked.
    pub(super) fn close_revoked(&self, material: &Arc<TlsMaterial>, now: UnixTime) -> Vec<ClosedConnection> {
        let live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *self
            .material
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(material));
        live.values()
            .filter_map(|tracked| close_if_revoked(tracked, material, now))
            .collect()
    }
}

/// Closes `tracked` if `material` finds its certificate revoked, saying which it closed.
fn close_if_revoked(tracked: &Tracked, material: &TlsMaterial, now: UnixTime) -> Option<ClosedConnection> {
    let (leaf, intermediates) = tracked.chain.split_first()?;
    let verdict = match tracked.role {
        Role::Server(county) => material
            .verify_server(county, leaf, intermediates, now)
            .map(|_| ()),
        role => material.verify_client(role, leaf, intermediates, now).map(|_| ()),
    };
    if !matches!(
        verdict,
        Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
    ) {
        return None;
    }
    tracked.switch.close();
    let (serial, issuer) = x509_parser::parse_x509_certificate(leaf)
        .map(|(_, parsed)| {
            (
                parsed.raw_serial_as_string().replace(':', ""),
                parsed.issuer().to_string(),
            )
        })
        .unwrap_or_default();
    Some(ClosedConnection {
        role: tracked.role,
        county: county_from_certificate(leaf).ok(),
        serial,
        issuer,
        remote: tracked.remote,
    })
}

/// Closes one connection from outside: its next read or write fails, waking whoever waits.
#[derive(Default)]
pub(super) struct KillSwitch {
    pub(super) closed: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    /// Set once tracked: the registry to leave when the connection is dropped.
    tracked: Mutex<Option<(u64, Weak<Connections>)>>,
}

impl KillSwitch {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for waker in self
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            waker.wake();
        }
    }

    /// `Err` once closed; otherwise remembers who to wake.
    fn check(&self, cx: &Context<'_>) -> io::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed: the certificate it was made with is revoked",
            ));
        }
        let mut wakers = self
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
            if wakers.len() >= 4 {
                wakers.remove(0);
            }
            wakers.push(cx.waker().clone());
        }
        drop(wakers);
        // closed between the first look and registering: do not miss it
        if self.closed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed: the certificate it was made with is revoked",
            ));
        }
        Ok(())
    }
}

/// A TCP stream that [`Connections`] can close from outside (under TLS, on both sides).
pub struct TrackedTcp {
    inner: TcpStream,
    pub(super) switch: Arc<KillSwitch>,
}

impl fmt::Debug for TrackedTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedTcp")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl TrackedTcp {
    /// Wraps a fresh TCP stream; it is tracked once its handshake verified a certificate.
    pub(crate) fn new(inner: TcpStream) -> TrackedTcp {
        TrackedTcp {
            inner,
            switch: Arc::new(KillSwitch::default()),
        }
    }

    /// The TCP stream underneath.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl Drop for TrackedTcp {
    fn drop(&mut self) {
        let tracked = self
            .switch
            .tracked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((id, connections)) = tracked
            && let Some(connections) = connections.upgrade()
        {
            connections
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
        }
    }
}

impl AsyncRead for TrackedTcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.switch.check(cx)?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.switch.check(cx)?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
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
        this.switch.check(cx)?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for TrackedTcp {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
