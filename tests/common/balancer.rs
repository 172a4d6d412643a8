//! A TCP load balancer of the test's own: one address in front of several replicas of a
//! county's node, as a county puts HAProxy (`mode tcp`) or a cloud layer-4 balancer in front of
//! them. It forwards plain TCP, so mutual TLS stays end to end between the peer and whichever
//! replica takes the connection, and every replica must present the county's certificate.
//!
//! Each new connection goes to the next replica in turn that accepts it (a replica that refuses,
//! because it is gone, is skipped, as a balancer's passive health check does). When either side
//! of a forwarded connection closes or breaks, both are closed: a replica that dies takes its
//! connections with it, and the peer on the other side sees its connection end at once and
//! connects again, to another replica.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long the balancer waits for a replica to accept a connection before trying the next.
const BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A running balancer; stops when dropped.
pub struct Balancer {
    /// Where peers connect.
    address: SocketAddr,
    /// What the forwarding tasks count, shared with them.
    shared: Arc<Shared>,
    /// The accept loop.
    task: JoinHandle<()>,
}

/// What the balancer knows of its replicas, for the test to read.
struct Shared {
    /// The replicas' peer listeners, in the order connections are handed out.
    backends: Vec<SocketAddr>,
    /// Where the round robin stands.
    next: AtomicUsize,
    /// Connections open to each replica now.
    open: Vec<AtomicUsize>,
    /// Connections ever forwarded to each replica.
    forwarded: Vec<AtomicUsize>,
    /// When a connection to each replica last closed.
    last_closed: Vec<Mutex<Option<Instant>>>,
}

impl Balancer {
    /// Listens on a free loopback port and forwards to `backends`.
    pub async fn start(backends: &[SocketAddr]) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the balancer");
        let address = listener.local_addr().expect("the balancer's address");
        let shared = Arc::new(Shared {
            backends: backends.to_vec(),
            next: AtomicUsize::new(0),
            open: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            forwarded: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            last_closed: backends.iter().map(|_| Mutex::new(None)).collect(),
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(Arc::clone(&accepting).forward(client));
            }
        });
        Balancer {
            address,
            shared,
            task,
        }
    }

    /// Where peers connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Connections open to each replica now, in the order of the backends given at start.
    pub fn open_connections(&self) -> Vec<usize> {
        self.shared
            .open
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect()
    }

    /// Connections ever forwarded to each replica.
    pub fn forwarded(&self) -> Vec<usize> {
        self.shared
            .forwarded
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect()
    }

    /// When a connection to replica `index` last closed, if one has.
    pub fn last_closed(&self, index: usize) -> Option<Instant> {
        *self.shared.last_closed[index].lock().unwrap()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    /// Hands `client` to the next replica that accepts it and copies bytes both ways until
    /// either side closes; then closes both.
    async fn forward(self: Arc<Self>, client: TcpStream) {
        let Some((index, backend)) = self.connect_next().await else {
            return; // no replica accepts: the client sees its connection closed
        };
        let _ = client.set_nodelay(true);
        let _ = backend.set_nodelay(true);
        self.open[index].fetch_add(1, Ordering::SeqCst);
        self.forwarded[index].fetch_add(1, Ordering::SeqCst);
        let (mut client_read, mut client_write) = client.into_split();
        let (mut backend_read, mut backend_write) = backend.into_split();
        tokio::select! {
            _ = tokio::io::copy(&mut client_read, &mut backend_write) => {}
            _ = tokio::io::copy(&mut backend_read, &mut client_write) => {}
        }
        // Dropping the halves closes both sockets.
        drop((client_read, client_write, backend_read, backend_write));
        *self.last_closed[index].lock().unwrap() = Some(Instant::now());
        self.open[index].fetch_sub(1, Ordering::SeqCst);
    }

    /// A connection to the next replica in turn that accepts one, trying each at most once.
    async fn connect_next(&self) -> Option<(usize, TcpStream)> {
        for _ in 0..self.backends.len() {
            let index = self.next.fetch_add(1, Ordering::SeqCst) % self.backends.len();
            let attempt =
                tokio::time::timeout(BACKEND_CONNECT_TIMEOUT, TcpStream::connect(self.backends[index]));
            if let Ok(Ok(stream)) = attempt.await {
                return Some((index, stream));
            }
        }
        None
    }
}
