//! The two rustls certificate verifiers that turn "a chain our CA signed" into "this county".
//!
//! Both do the standard `WebPKI` chain validation (signatures with the provider's algorithms,
//! validity period, key purpose) and then insist that the leaf names exactly one county. The
//! client side additionally insists it is the county it meant to reach; DNS names play no part,
//! because peers are found by configuration, not by name lookup.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore, SignatureScheme,
};

use super::identity::{County, IdentityError, county_from_certificate};

/// Why a chain that verified is still refused: it names the wrong county.
#[derive(Debug, thiserror::Error)]
#[error("server certificate names county {actual}, expected {expected}")]
pub(crate) struct CountyMismatch {
    pub(crate) expected: County,
    pub(crate) actual: County,
}

pub(crate) fn certificate_error(error: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

pub(crate) fn identity_error(error: IdentityError) -> rustls::Error {
    certificate_error(error)
}

// === impl IdentityClientVerifier ===

/// Server side of the peer listener: a client must present a certificate chaining to our
/// anchors (client-auth purpose) that names exactly one county. Refusing at the handshake means
/// no request ever reaches a handler from a peer we could not name. (The operator API checks
/// its client's identity after the handshake instead, so that a refused operator learns why
/// from a gRPC status: see `crate::operator`.)
#[derive(Debug)]
pub(crate) struct IdentityClientVerifier {
    /// rustls' `WebPKI` client verifier, built with client authentication mandatory.
    webpki: Arc<dyn ClientCertVerifier>,
    /// Whether the verified leaf names the right kind of holder.
    identify: fn(&[u8]) -> Result<(), IdentityError>,
}

impl IdentityClientVerifier {
    /// For the peer listener: the client is one county's node.
    pub(crate) fn county(webpki: Arc<dyn ClientCertVerifier>) -> Self {
        Self {
            webpki,
            identify: |der| county_from_certificate(der).map(|_| ()),
        }
    }
}

impl ClientCertVerifier for IdentityClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.webpki.verify_client_cert(end_entity, intermediates, now)?;
        (self.identify)(end_entity).map_err(identity_error)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

// === impl CountyServerVerifier ===

/// Client side: the server's chain must verify against our anchors (server-auth purpose) and
/// its leaf must name `expected` — the county this connection is meant to reach. The server
/// name rustls passes in is a placeholder and is ignored.
#[derive(Debug)]
pub(crate) struct CountyServerVerifier {
    /// Anchors the server's chain must lead to.
    roots: Arc<RootCertStore>,
    /// The only county this client configuration will talk to.
    expected: County,
    /// The crypto provider's signature algorithms, for chains and handshake signatures alike.
    algorithms: WebPkiSupportedAlgorithms,
}

impl CountyServerVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        expected: County,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        Self {
            roots,
            expected,
            algorithms,
        }
    }
}

impl ServerCertVerifier for CountyServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let actual = county_from_certificate(end_entity).map_err(identity_error)?;
        if actual != self.expected {
            return Err(certificate_error(CountyMismatch {
                expected: self.expected,
                actual,
            }));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
