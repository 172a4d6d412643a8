//! The rustls configurations for the exchange API: mutual TLS 1.3, nothing older, nothing
//! optional.
//!
//! Both sides use the ring provider explicitly rather than a process-wide default, so the result
//! does not depend on which crate happened to install a provider first.

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};

use super::credentials::{NodeIdentity, TrustAnchors};
use super::identity::County;
use super::verify::{CountyServerVerifier, IdentityClientVerifier};

/// The only protocol a peer connection may speak, advertised by ALPN: gRPC runs on HTTP/2.
const ALPN_H2: &[u8] = b"h2";

/// Why a TLS configuration could not be built from otherwise loaded credentials.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// rustls refused the protocol versions, certificate or key.
    #[error("cannot build TLS configuration")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. no usable trust anchor).
    #[error("cannot build client certificate verifier")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listener side of the exchange API.
///
/// TLS 1.3 only; every client must present a certificate that chains to `anchors` for client
/// authentication *and* names exactly one county (a county-less certificate is refused during the
/// handshake, so handlers never see an unnamed peer). ALPN offers `h2` only.
pub fn server_config(
    identity: &NodeIdentity,
    anchors: &TrustAnchors,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = provider();
    let webpki_verifier =
        WebPkiClientVerifier::builder_with_provider(anchors.roots(), Arc::clone(&provider)).build()?;
    let client_verifier = Arc::new(IdentityClientVerifier::county(webpki_verifier));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(identity.cert_chain().to_vec(), identity.private_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // Our clients never resume (see `client_config`), so issuing tickets would be wasted work.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The dialling side towards one peer county.
///
/// TLS 1.3 only; presents this node's certificate, and accepts the server only if its chain
/// verifies against `anchors` for server authentication and its certificate names
/// `expected_county`. Build one configuration per peer county. Host names are not checked (peers
/// come from configuration, and a DNS name says nothing about which county answers), so SNI is
/// off; resumption is off too, so every connection re-verifies the peer's certificate.
pub fn client_config(
    identity: &NodeIdentity,
    anchors: &TrustAnchors,
    expected_county: County,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = provider();
    let server_verifier = Arc::new(CountyServerVerifier::new(
        anchors.roots(),
        expected_county,
        provider.signature_verification_algorithms,
    ));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier)
        .with_client_auth_cert(identity.cert_chain().to_vec(), identity.private_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.enable_sni = false;
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The operator API's listener when it is exposed beyond loopback: TLS 1.3, the node's own
/// certificate as server certificate, and a client certificate required from the *operator* CA
/// (`operator_anchors`). An expired certificate or one from another CA fails the handshake; a
/// valid one that is not an operator's (a county certificate, two townships, a township of
/// another county) completes it and every call is refused with a status saying why, so the
/// operator learns what is wrong with it (the service reads the identity, `crate::operator`).
pub fn operator_server_config(
    identity: &NodeIdentity,
    operator_anchors: &TrustAnchors,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = provider();
    let webpki = WebPkiClientVerifier::builder_with_provider(operator_anchors.roots(), Arc::clone(&provider))
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(webpki)
        .with_single_cert(identity.cert_chain().to_vec(), identity.private_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Why an operator's TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OperatorClientError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls refused the certificate, key or CA.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The operator's side of the operator API over mutual TLS: presents the operator certificate
/// and accepts the node only if its certificate chains to `node_ca` and names `node_county`.
pub fn operator_client_config(
    certificate: &std::path::Path,
    private_key: &std::path::Path,
    node_ca: &std::path::Path,
    node_county: County,
) -> Result<Arc<ClientConfig>, OperatorClientError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| OperatorClientError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    let bad = |path: &std::path::Path, reason: &str| OperatorClientError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&read(certificate)?)
        .collect::<Result<_, _>>()
        .map_err(|_| bad(certificate, "not a PEM certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(&read(private_key)?)
        .map_err(|_| bad(private_key, "no PEM private key"))?;
    let anchors = TrustAnchors::from_pem(&String::from_utf8_lossy(&read(node_ca)?))
        .map_err(|e| bad(node_ca, &e.to_string()))?;
    let provider = provider();
    let verifier = Arc::new(CountyServerVerifier::new(
        anchors.roots(),
        node_county,
        provider.signature_verification_algorithms,
    ));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(ConfigError::from)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(ConfigError::from)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.enable_sni = false;
    Ok(Arc::new(config))
}
