//! Signing with the county key (the node's TLS key), for the audit chain's checkpoints and
//! resume statements, and checking such a signature against the certificate sent with it.
//!
//! Every signature covers a domain-separation prefix followed by the message, so a signature
//! made for one purpose can never be presented for another. The signature travels with the
//! signer's certificate (DER); checking it means: the certificate names the county expected,
//! and its key made the signature. Whether that certificate chains to our CA is already known
//! for a peer (the same county's certificate authenticated the connection); the CLI prints the
//! county the certificate names.
//!
//! This is a small stand-in with the shape of the general county-key signing module (sign and
//! verify with a prefix); the audit chain moves to that module when it is in.

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::sign::SigningKey;

use super::credentials::NodeIdentity;
use super::identity::county_from_certificate;
use crate::domain::audit_chain::Signature;

/// Why a signature could not be made or does not hold.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The node's key is of a kind we do not sign with.
    #[error("the county key cannot sign: {0}")]
    Key(String),
    /// The certificate sent with a signature does not parse or names no county.
    #[error("the signer's certificate: {0}")]
    Certificate(String),
    /// The certificate names another county.
    #[error("signed by county {actual}, not {expected}")]
    WrongCounty {
        /// Whose signature was expected.
        expected: String,
        /// Whose certificate came with it.
        actual: String,
    },
    /// The signature does not verify.
    #[error("the signature does not verify")]
    Invalid,
}

/// The schemes we sign with, in order of preference (the development and production keys are
/// ECDSA P-256).
const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
];

/// Signs with this node's county key.
pub struct CountySigner {
    /// The key, as rustls holds it for TLS.
    key: Arc<dyn SigningKey>,
    /// DER of the leaf certificate, sent with every signature.
    certificate: Vec<u8>,
    /// The county the certificate names.
    county: String,
}

impl std::fmt::Debug for CountySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountySigner")
            .field("county", &self.county)
            .finish_non_exhaustive()
    }
}

impl CountySigner {
    /// A signer with `identity`'s key and certificate.
    pub fn new(identity: &NodeIdentity) -> Result<CountySigner, SigningError> {
        let key = rustls::crypto::ring::sign::any_supported_type(&identity.private_key())
            .map_err(|error| SigningError::Key(error.to_string()))?;
        let certificate = identity
            .cert_chain()
            .first()
            .map(|der| der.to_vec())
            .ok_or_else(|| SigningError::Certificate("no certificate".into()))?;
        Ok(CountySigner {
            key,
            certificate,
            county: identity.county().as_str().to_string(),
        })
    }

    /// The county this signer signs for.
    pub fn county(&self) -> &str {
        &self.county
    }

    /// Signs `prefix || message`.
    pub fn sign(&self, prefix: &[u8], message: &[u8]) -> Result<Signature, SigningError> {
        let signer = self
            .key
            .choose_scheme(SCHEMES)
            .ok_or_else(|| SigningError::Key(format!("{:?} keys are not supported", self.key.algorithm())))?;
        let bytes = signer
            .sign(&[prefix, message].concat())
            .map_err(|error| SigningError::Key(error.to_string()))?;
        Ok(Signature {
            scheme: format!("{:?}", signer.scheme()),
            bytes,
            certificate: self.certificate.clone(),
        })
    }
}

/// Checks that `signature` over `prefix || message` was made by the key of a certificate
/// naming `county`.
pub fn verify(
    prefix: &[u8],
    message: &[u8],
    signature: &Signature,
    county: &str,
) -> Result<(), SigningError> {
    let named = county_from_certificate(&signature.certificate)
        .map_err(|error| SigningError::Certificate(error.to_string()))?;
    if named.as_str() != county {
        return Err(SigningError::WrongCounty {
            expected: county.to_string(),
            actual: named.as_str().to_string(),
        });
    }
    let (_, certificate) = x509_parser::parse_x509_certificate(&signature.certificate)
        .map_err(|error| SigningError::Certificate(error.to_string()))?;
    let public_key = certificate.public_key().subject_public_key.data.as_ref();
    let provider = rustls::crypto::ring::default_provider();
    let algorithms = provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| format!("{scheme:?}") == signature.scheme)
        .map(|(_, algorithms)| *algorithms)
        .ok_or(SigningError::Invalid)?;
    let signed = [prefix, message].concat();
    algorithms
        .iter()
        .any(|algorithm| {
            algorithm
                .verify_signature(public_key, &signed, &signature.bytes)
                .is_ok()
        })
        .then_some(())
        .ok_or(SigningError::Invalid)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::tls::dev::TestPki;

    fn identity(county: &str) -> NodeIdentity {
        let pki = TestPki::new().unwrap();
        let now = Utc::now();
        let (cert, key) = pki
            .issue_county(county, now - Duration::hours(1), now + Duration::days(1))
            .unwrap();
        NodeIdentity::from_pem(&cert, &key).unwrap()
    }

    #[test]
    fn a_signature_verifies_only_with_its_prefix_message_and_county() {
        let signer = CountySigner::new(&identity("430703")).unwrap();
        let signature = signer.sign(b"purpose a\n", b"message").unwrap();
        verify(b"purpose a\n", b"message", &signature, "430703").unwrap();
        assert!(matches!(
            verify(b"purpose b\n", b"message", &signature, "430703"),
            Err(SigningError::Invalid)
        ));
        assert!(matches!(
            verify(b"purpose a\n", b"massage", &signature, "430703"),
            Err(SigningError::Invalid)
        ));
        assert!(matches!(
            verify(b"purpose a\n", b"message", &signature, "430582"),
            Err(SigningError::WrongCounty { .. })
        ));
    }
}
