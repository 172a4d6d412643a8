//! Peers that behave badly on purpose, for the tests that one bad peer harms no one: a
//! listener that accepts TCP and never says a word (a black hole), a mutual-TLS gRPC server
//! that answers every call `UNAVAILABLE`, and a TCP proxy that puts a peer seconds away.
//! Each runs until the test's runtime ends.

use std::net::SocketAddr;
use std::time::Duration;

use hancha::tls::dev::TestPki;
use hancha::tls::{TrustAnchors, server_config, tls_incoming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A listener that accepts every connection and then neither reads nor writes: the TLS
/// handshake never finishes.
pub async fn black_hole() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    address
}

/// A peer listener for `county` (certificate from `pki`, clients verified as usual) whose every
/// call is answered `UNAVAILABLE`.
pub async fn unavailable_peer(pki: &TestPki, county: &str) -> SocketAddr {
    let identity = pki.county_identity(county).expect("identity");
    let anchors = TrustAnchors::from_pem(&pki.ca_pem()).expect("anchors");
    let config = server_config(&identity, &anchors).expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    let routes = tonic::service::Routes::from(axum::Router::new().fallback(|| async {
        tonic::Status::unavailable("this county's node is unavailable").into_http::<axum::body::Body>()
    }));
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tls_incoming(listener, config))
            .await;
    });
    address
}

/// A TCP proxy to `upstream` that delivers every byte `one_way` late in each direction (a
/// round trip of twice that), without limiting how much is in transit.
pub async fn distant(upstream: SocketAddr, one_way: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(delayed(client_read, server_write, one_way));
                tokio::spawn(delayed(server_read, client_write, one_way));
            });
        }
    });
    address
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (chunks, mut arriving) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = arriving.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let at = tokio::time::Instant::now() + delay;
                if chunks.send((at, buffer[..read].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(chunks);
    let _ = writer.await;
}

/// Whether `county`'s circuit to `peer` is open, as its metrics say (`hancha_peer_circuit_open`).
pub async fn circuit_open_in_metrics(metrics_url: &str, peer: &str) -> bool {
    let (_, body) = super::http_get(metrics_url).await;
    let series = format!("hancha_peer_circuit_open{{peer=\"{peer}\"}} 1");
    body.lines().any(|line| line == series)
}

/// Established TCP connections to `port` on this machine (from `/proc/net/tcp`): with the nodes
/// in one process, those a node opened to the peer listening there.
pub fn connections_to_port(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[3] == "01" && fields[2].rsplit(':').next() == Some(wanted.as_str())
        })
        .count()
}
