//! Signatures by a county's key over things other than a TLS handshake: agreement versions,
//! audit checkpoints and resume statements — the one signing path for all evidence. The key is the node's own TLS key; the certificate that travels with the
//! signature says which county signed, and a verifier checks it against its trust anchors.
//!
//! # What is signed
//!
//! The signed message is `purpose ‖ signed_at ‖ "\n" ‖ bytes`:
//!
//! - `purpose` is a domain-separation prefix, one line ending in `\n` (e.g.
//!   [`AGREEMENT_PURPOSE`] = `"hancha agreement v1\n"`, [`AUDIT_CHECKPOINT_PURPOSE`]). The same key
//!   signs TLS handshakes (whose signed content starts with 64 spaces) and every kind of
//!   document, so the prefix makes a signature over one kind unusable as a signature over any
//!   other, and a new version of a kind gets a new prefix;
//! - `signed_at` is the signing time as RFC 3339 in UTC, whole seconds (`2025-06-20T08:00:00Z`),
//!   so that the time shown with a signature is the time the signer vouched for;
//! - `bytes` is what is signed (for an agreement: its canonical hash as 64 hex digits).
//!
//! # What a verifier checks
//!
//! [`verify`] accepts a signature when, at the verification instant `at`:
//!
//! 1. the signer's certificate chains to the verifier's [`TrustAnchors`] (intermediates may
//!    travel with it), is valid at `at`, and allows client authentication if it lists key
//!    purposes (county certificates are used as TLS clients);
//! 2. `signed_at` lies within that certificate's validity, and is not later than `at` (plus
//!    [`CLOCK_TOLERANCE`] for the two clocks);
//! 3. the certificate names exactly one county (`urn:hancha:county:`), the county the signature
//!    states;
//! 4. the signature over the message above verifies with the certificate's public key.
//!
//! A certificate expires and is renewed with a new key, so a signature cannot be checked again
//! forever: callers verify once when they accept what was signed (an agreement version when it
//! is applied, a peer's audit checkpoint when it arrives) and record the outcome, which later
//! renewals do not change. A node checking evidence of its own that it keeps (`hancha audit
//! verify` on its newest checkpoint) verifies at the signing time instead: the certificate
//! must chain to the anchors in force and have been valid when it signed.
//!
//! The key and anchors a running node uses are those of its TLS material in force
//! ([`super::in_force`]), so a certificate rotation or a new CA takes effect for signing and
//! checking as it does for handshakes.
//!
//! Keys are whatever rustls' ring provider can sign with: ECDSA P-256 (the development
//! certificates) and P-384, Ed25519, RSA (PSS).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rustls::SignatureScheme;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, KeyUsage};

use super::credentials::{NodeIdentity, TrustAnchors};
use super::identity::{County, IdentityError, county_from_certificate};

/// The prefix of signatures over an agreement version's canonical hash.
pub const AGREEMENT_PURPOSE: &str = "hancha agreement v1\n";

/// The prefix of signatures over an audit checkpoint.
pub const AUDIT_CHECKPOINT_PURPOSE: &str = "hancha audit checkpoint v1\n";

/// The prefix of signatures over an audit resume statement (a chain rewound after a restore).
pub const AUDIT_RESUME_PURPOSE: &str = "hancha audit resume v1\n";

/// How far a signature's time may lie ahead of the verifier's clock: the two nodes' clocks
/// differ a little.
pub const CLOCK_TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

/// The signature algorithms offered when signing, in order of preference; the node's key
/// decides which one applies.
const SIGNING_SCHEMES: [SignatureScheme; 4] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
];

/// A signature algorithm, named in text as in [`Algorithm::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256, ASN.1 DER signature (the development keys).
    EcdsaP256Sha256,
    /// ECDSA over P-384 with SHA-384, ASN.1 DER signature.
    EcdsaP384Sha384,
    /// Ed25519.
    Ed25519,
    /// RSA-PSS with SHA-256 (keys of 2048 to 8192 bits).
    RsaPssSha256,
}

impl Algorithm {
    /// Every algorithm, for error messages.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::EcdsaP256Sha256,
        Algorithm::EcdsaP384Sha384,
        Algorithm::Ed25519,
        Algorithm::RsaPssSha256,
    ];

    /// Its name in signature files.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::RsaPssSha256 => "rsa-pss-sha256",
        }
    }

    /// The algorithm named `name` (see [`Algorithm::as_str`]).
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == name)
    }

    fn from_scheme(scheme: SignatureScheme) -> Option<Algorithm> {
        match scheme {
            SignatureScheme::ECDSA_NISTP256_SHA256 => Some(Algorithm::EcdsaP256Sha256),
            SignatureScheme::ECDSA_NISTP384_SHA384 => Some(Algorithm::EcdsaP384Sha384),
            SignatureScheme::ED25519 => Some(Algorithm::Ed25519),
            SignatureScheme::RSA_PSS_SHA256 => Some(Algorithm::RsaPssSha256),
            _ => None,
        }
    }

    fn verification(self) -> &'static dyn SignatureVerificationAlgorithm {
        match self {
            Algorithm::EcdsaP256Sha256 => webpki::ring::ECDSA_P256_SHA256,
            Algorithm::EcdsaP384Sha384 => webpki::ring::ECDSA_P384_SHA384,
            Algorithm::Ed25519 => webpki::ring::ED25519,
            Algorithm::RsaPssSha256 => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One county's signature, with everything a verifier needs: who says they signed, when, with
/// which algorithm, the certificate chain (leaf first, so a verifier that never saw it can
/// check it) and the signature itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The county the signature states; checked against the certificate by [`verify`].
    pub signer: County,
    /// When it was signed, whole seconds; part of the signed message.
    pub signed_at: DateTime<Utc>,
    /// How it was signed.
    pub algorithm: Algorithm,
    /// The signer's certificate, then any intermediates.
    pub certificates: Vec<CertificateDer<'static>>,
    /// The signature bytes.
    pub value: Vec<u8>,
}

/// Why a signature could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The purpose is not one line ending in `\n`.
    #[error(transparent)]
    Purpose(#[from] PurposeError),
    /// The key is of a kind rustls cannot sign with, or signing failed.
    #[error("the key cannot sign: {0}")]
    Key(String),
}

/// A domain-separation prefix that is not one non-empty line ending in `\n`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a signature purpose is one line of printable ASCII ending in a newline, like \"hancha agreement v1\\n\""
)]
pub struct PurposeError;

/// Why the text of a signature (as written in a file) is not a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFormatError {
    /// The county is not six digits.
    #[error("the signer is not a county code: {0}")]
    County(#[from] IdentityError),
    /// An algorithm this node does not know.
    #[error("unknown signature algorithm {name:?} (known: {})", Algorithm::ALL.map(Algorithm::as_str).join(", "))]
    Algorithm {
        /// The name given.
        name: String,
    },
    /// The certificate is not PEM (or holds none).
    #[error("the certificate is not a PEM certificate")]
    Certificate,
    /// The signature is not base64.
    #[error("the signature value is not base64")]
    Value,
}

/// Why a signature is refused; each says what is wrong in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The purpose is malformed (a bug in the caller).
    #[error(transparent)]
    Purpose(#[from] PurposeError),
    /// No certificate came with the signature.
    #[error("the signature carries no certificate")]
    NoCertificate,
    /// The certificate does not chain to this node's trust anchors, or not as a usable
    /// end-entity certificate (expired, not yet valid, wrong purpose, malformed).
    #[error("the signer's certificate is not trusted here: {reason}")]
    Untrusted {
        /// What the chain check found, in words.
        reason: String,
    },
    /// The signing time lies outside the certificate's validity.
    #[error(
        "signed at {signed_at}, outside the validity of the signer's certificate ({not_before} to {not_after})"
    )]
    SignedOutsideValidity {
        /// The stated signing time.
        signed_at: DateTime<Utc>,
        /// The certificate's first valid instant.
        not_before: DateTime<Utc>,
        /// The certificate's last valid instant.
        not_after: DateTime<Utc>,
    },
    /// The signing time is in the future.
    #[error("signed at {signed_at}, which is later than now ({now})")]
    SignedInFuture {
        /// The stated signing time.
        signed_at: DateTime<Utc>,
        /// The verifier's clock.
        now: DateTime<Utc>,
    },
    /// The certificate names no county (or several).
    #[error("the signer's certificate does not identify a county: {0}")]
    Identity(#[from] IdentityError),
    /// The certificate names another county than the signature states.
    #[error("the signature says it is by {stated}, but its certificate is {certified}'s")]
    CountyMismatch {
        /// The county written with the signature.
        stated: County,
        /// The county the certificate names.
        certified: County,
    },
    /// The signature does not match the message: what was signed differs from what is being
    /// checked (altered content, another version, another purpose, another time), or the
    /// signature bytes were altered.
    #[error(
        "the signature does not match: it was made over other content (altered, or another version) \
         or by another key"
    )]
    Mismatch,
}

/// What a verified signature establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The county that signed, from its verified certificate.
    pub county: County,
    /// The SHA-256 of the signer's certificate (DER), hex: which certificate vouched.
    pub fingerprint: String,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
}

// === impl Signature ===

impl Signature {
    /// Reads a signature from its text fields (as a signature file writes them): the county,
    /// the time, the algorithm name, the certificate chain as PEM, the value as base64.
    pub fn from_text(
        county: &str,
        signed_at: DateTime<Utc>,
        algorithm: &str,
        certificate_pem: &str,
        value_base64: &str,
    ) -> Result<Signature, SignatureFormatError> {
        let signer = County::parse(county)?;
        let algorithm = Algorithm::parse(algorithm).ok_or_else(|| SignatureFormatError::Algorithm {
            name: algorithm.to_owned(),
        })?;
        let certificates = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| SignatureFormatError::Certificate)?;
        if certificates.is_empty() {
            return Err(SignatureFormatError::Certificate);
        }
        let compact: String = value_base64.split_whitespace().collect();
        let value = BASE64
            .decode(compact.as_bytes())
            .map_err(|_| SignatureFormatError::Value)?;
        Ok(Signature {
            signer,
            signed_at: whole_seconds(signed_at),
            algorithm,
            certificates,
            value,
        })
    }

    /// The certificate chain as PEM, leaf first.
    pub fn certificate_pem(&self) -> String {
        self.certificates.iter().map(|der| pem_certificate(der)).collect()
    }

    /// The signature bytes as base64.
    pub fn value_base64(&self) -> String {
        BASE64.encode(&self.value)
    }

    /// The SHA-256 of the signer's certificate (DER), hex; empty without a certificate.
    pub fn fingerprint(&self) -> String {
        self.certificates
            .first()
            .map(|leaf| hex::encode(Sha256::digest(leaf.as_ref())))
            .unwrap_or_default()
    }

    /// The signing time as written into the signed message and into signature files.
    pub fn signed_at_text(&self) -> String {
        rfc3339(self.signed_at)
    }

    /// The certificate chain as one byte string: each certificate's DER, leaf first,
    /// concatenated (DER says its own length, so [`certificates_from_der`] splits it again).
    /// How the audit chain stores and sends the chain in one field.
    pub fn certificates_der(&self) -> Vec<u8> {
        self.certificates
            .iter()
            .flat_map(|der| der.iter().copied())
            .collect()
    }
}

/// The certificates of [`Signature::certificates_der`], or `None` when the bytes are not a
/// sequence of whole DER certificates (at least one).
pub fn certificates_from_der(mut bytes: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let mut certificates = Vec::new();
    while !bytes.is_empty() {
        let length = der_sequence_length(bytes)?;
        let (certificate, rest) = bytes.split_at_checked(length)?;
        certificates.push(CertificateDer::from(certificate.to_vec()));
        bytes = rest;
    }
    (!certificates.is_empty()).then_some(certificates)
}

/// The whole length (header included) of the DER SEQUENCE that `bytes` starts with.
fn der_sequence_length(bytes: &[u8]) -> Option<usize> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if tag != 0x30 {
        return None;
    }
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let octets = usize::from(first & 0x7f);
    if octets == 0 || octets > 4 {
        return None;
    }
    let content = rest
        .get(..octets)?
        .iter()
        .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
    Some(2 + octets + content)
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("signer", &self.signer)
            .field("signed_at", &self.signed_at_text())
            .field("algorithm", &self.algorithm)
            .field("certificate", &self.fingerprint())
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// Signs `bytes` for `purpose` with the node's key, now.
pub fn sign(identity: &NodeIdentity, purpose: &str, bytes: &[u8]) -> Result<Signature, SignError> {
    sign_at(identity, purpose, bytes, Utc::now())
}

/// Signs `bytes` for `purpose` with the node's key, stating `signed_at` (rounded down to whole
/// seconds) as the signing time. For tests and tools that must state another time; a verifier
/// refuses times outside the certificate's validity or in its future.
pub fn sign_at(
    identity: &NodeIdentity,
    purpose: &str,
    bytes: &[u8],
    signed_at: DateTime<Utc>,
) -> Result<Signature, SignError> {
    check_purpose(purpose)?;
    let signed_at = whole_seconds(signed_at);
    let key = rustls::crypto::ring::sign::any_supported_type(&identity.private_key())
        .map_err(|error| SignError::Key(error.to_string()))?;
    let signer = key.choose_scheme(&SIGNING_SCHEMES).ok_or_else(|| {
        SignError::Key(format!(
            "no supported signature scheme for a {:?} key",
            key.algorithm()
        ))
    })?;
    let algorithm = Algorithm::from_scheme(signer.scheme())
        .ok_or_else(|| SignError::Key(format!("unexpected scheme {:?}", signer.scheme())))?;
    let value = signer
        .sign(&message(purpose, signed_at, bytes))
        .map_err(|error| SignError::Key(error.to_string()))?;
    Ok(Signature {
        signer: identity.county(),
        signed_at,
        algorithm,
        certificates: identity.cert_chain().to_vec(),
        value,
    })
}

/// Checks `signature` over `bytes` for `purpose` against `anchors` at instant `at` (see the
/// module documentation for every check). Returns the county that signed and its certificate.
pub fn verify(
    signature: &Signature,
    purpose: &str,
    bytes: &[u8],
    anchors: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    check_purpose(purpose)?;
    let Some((leaf, intermediates)) = signature.certificates.split_first() else {
        return Err(VerifyError::NoCertificate);
    };
    let untrusted = |error: webpki::Error| VerifyError::Untrusted {
        reason: describe_webpki(&error),
    };
    let certificate = EndEntityCert::try_from(leaf).map_err(untrusted)?;
    let roots = anchors.roots();
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at.timestamp()).unwrap_or(0),
    ));
    // revoked by a CRL in force (`tls.crls`, carried by the anchors): the handshakes' policy
    let revocation = anchors.revocation();
    revocation
        .with_options(|options| {
            certificate
                .verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    &roots.roots,
                    intermediates,
                    now,
                    KeyUsage::client_auth(),
                    options,
                    None,
                )
                .map(|_| ())
        })
        .map_err(untrusted)?;
    revocation
        .check_freshness(leaf, intermediates, now)
        .map_err(|_| VerifyError::Untrusted {
            reason: "the revocation list of its CA is out of date (past its nextUpdate and tls.crl_grace)"
                .to_owned(),
        })?;

    let (not_before, not_after) = validity(leaf)?;
    if signature.signed_at < not_before || signature.signed_at > not_after {
        return Err(VerifyError::SignedOutsideValidity {
            signed_at: signature.signed_at,
            not_before,
            not_after,
        });
    }
    if signature.signed_at > at + CLOCK_TOLERANCE {
        return Err(VerifyError::SignedInFuture {
            signed_at: signature.signed_at,
            now: whole_seconds(at),
        });
    }
    let certified = county_from_certificate(leaf)?;
    if certified != signature.signer {
        return Err(VerifyError::CountyMismatch {
            stated: signature.signer,
            certified,
        });
    }
    certificate
        .verify_signature(
            signature.algorithm.verification(),
            &message(purpose, signature.signed_at, bytes),
            &signature.value,
        )
        .map_err(|_| VerifyError::Mismatch)?;
    Ok(Verified {
        county: certified,
        fingerprint: signature.fingerprint(),
        signed_at: signature.signed_at,
    })
}

/// The message a signature covers: `purpose ‖ signed_at ‖ "\n" ‖ bytes`.
fn message(purpose: &str, signed_at: DateTime<Utc>, bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(purpose.len() + 21 + bytes.len());
    message.extend_from_slice(purpose.as_bytes());
    message.extend_from_slice(rfc3339(signed_at).as_bytes());
    message.push(b'\n');
    message.extend_from_slice(bytes);
    message
}

fn check_purpose(purpose: &str) -> Result<(), PurposeError> {
    let Some(line) = purpose.strip_suffix('\n') else {
        return Err(PurposeError);
    };
    if line.is_empty() || !line.bytes().all(|byte| (b' '..=b'~').contains(&byte)) {
        return Err(PurposeError);
    }
    Ok(())
}

fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(at.timestamp(), 0).single().unwrap_or(at)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The leaf's validity period (already parsed successfully by the chain check).
fn validity(leaf: &CertificateDer<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), VerifyError> {
    let unparseable = |reason: String| VerifyError::Identity(IdentityError::Unparseable(reason));
    let (_, certificate) =
        x509_parser::parse_x509_certificate(leaf).map_err(|error| unparseable(error.to_string()))?;
    let instant = |seconds: i64| {
        Utc.timestamp_opt(seconds, 0)
            .single()
            .ok_or_else(|| unparseable("validity out of range".to_owned()))
    };
    Ok((
        instant(certificate.validity().not_before.timestamp())?,
        instant(certificate.validity().not_after.timestamp())?,
    ))
}

/// WebPKI's verdicts, in words for operators.
fn describe_webpki(error: &webpki::Error) -> String {
    match error {
        // a CA of the same name that did not sign it shows as a bad signature on the chain
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            "it was not issued by a CA this node trusts".to_owned()
        }
        webpki::Error::CertExpired { .. } => "it has expired".to_owned(),
        webpki::Error::CertNotValidYet { .. } => "it is not valid yet".to_owned(),
        webpki::Error::CertNotValidForName(_) => "it is not valid for this use".to_owned(),
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            "it is not a county node certificate (no client-authentication purpose)".to_owned()
        }
        webpki::Error::CaUsedAsEndEntity => "it is a CA certificate, not a county's".to_owned(),
        webpki::Error::CertRevoked => {
            "it is revoked (listed in a certificate revocation list in force)".to_owned()
        }
        other => format!("{other:?}"),
    }
}

fn pem_certificate(der: &CertificateDer<'_>) -> String {
    let encoded = BASE64.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        // base64 output is ASCII
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests;
