//! Raw TLS and plaintext attempts against a node, for the clients `hancha::tls::client_config`
//! refuses to build, and the audit record a refused handshake leaves.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{Cluster, PATIENCE, eventually};

/// A hand-built rustls client trusting `ca_pem` (standard WebPKI verification of `localhost`,
/// which every test node certificate carries), speaking only `versions`, presenting
/// `certificate` (`(cert_pem, key_pem)`) if given. For clients `hancha::tls::client_config`
/// will not build: no certificate, TLS 1.2, an expired or foreign certificate.
pub fn raw_tls_client(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    certificate: Option<(&str, &str)>,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match certificate {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("a private key");
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// Dials `address` with `config`, completes the client side of the handshake and sends the
/// HTTP/2 preface; returns the local address used (which the server's audit record names) and
/// the error that ended the attempt. Panics if the server answers instead of refusing.
pub async fn raw_tls_attempt(
    address: SocketAddr,
    config: rustls::ClientConfig,
) -> (SocketAddr, std::io::Error) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let attempt = async {
        let mut tls = connector.connect(name, tcp).await?;
        // TLS 1.3: the server judges the client certificate after the client's side of the
        // handshake is done, so its verdict arrives as an alert on the first read.
        tls.write_all(HTTP2_PREFACE).await?;
        let mut buffer = [0_u8; 64];
        tls.read(&mut buffer).await
    };
    match tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("raw tls attempt hangs")
    {
        Ok(bytes) => panic!("expected a refusal, the server answered with {bytes} bytes"),
        Err(error) => (local, error),
    }
}

/// What an HTTP/2 client sends first (a gRPC client over plaintext sends exactly this).
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Speaks plaintext HTTP/2 to `address`; returns the local address once the server has hung up
/// without answering (panics if it answers).
pub async fn plaintext_attempt(address: SocketAddr) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let attempt = async {
        tcp.write_all(HTTP2_PREFACE).await?;
        // Whatever the server sends back must not be HTTP/2: at most a TLS alert, then EOF.
        let mut received = Vec::new();
        tcp.read_to_end(&mut received).await?;
        Ok::<_, std::io::Error>(received)
    };
    // A reset is a refusal too; what was received, if anything, must be a TLS alert record
    // (content type 21), never an HTTP/2 frame.
    if let Ok(received) = tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("plaintext attempt hangs")
    {
        assert!(
            received.is_empty() || received[0] == 21,
            "the server answered plaintext: {received:?}"
        );
    }
    local
}

/// The TLS alert a raw client received, if that is what ended its attempt.
pub fn rustls_alert(error: &std::io::Error) -> Option<rustls::AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

impl Cluster {
    /// Waits for `county`'s audit record of the failed TLS handshake from `client` (the local
    /// address of the refused connection) and returns it.
    pub async fn handshake_audit(
        &self,
        county: &str,
        client: SocketAddr,
    ) -> hancha::store::audit::AuditEntry {
        let node = self.node(county);
        let marker = format!("UNAUTHENTICATED: tls handshake failed from {client}: ");
        eventually("the failed handshake is audited", || async {
            node.store()
                .recent_audit(100)
                .await
                .unwrap()
                .into_iter()
                .map(|record| record.entry)
                .find(|entry| entry.reason.as_deref().is_some_and(|r| r.starts_with(&marker)))
        })
        .await
    }
}
