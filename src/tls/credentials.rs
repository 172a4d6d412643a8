//! This node's own credentials (certificate chain, private key, county) and the CAs it trusts,
//! loaded from PEM files or PEM text.
//!
//! Loading checks everything that can be checked without a peer — the certificate names one
//! county, the key fits the certificate — so that a misconfigured node fails at start-up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::identity::{County, IdentityError, county_from_certificate};
use super::live::Revocation;

/// Why certificates, keys or trust anchors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, permissions, …).
    #[error("cannot read {path}")]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The PEM text is malformed.
    #[error("invalid PEM in {origin}")]
    Pem {
        /// Which file (or "PEM text") held it.
        origin: String,
        /// The parser's complaint.
        #[source]
        source: pem::Error,
    },
    /// No `CERTIFICATE` block where at least one was expected.
    #[error("no certificate in {origin}")]
    NoCertificate {
        /// Which file (or "PEM text") was empty of certificates.
        origin: String,
    },
    /// No private key block where one was expected.
    #[error("no private key in {origin}")]
    NoPrivateKey {
        /// Which file (or "PEM text") was empty of keys.
        origin: String,
    },
    /// The node's own certificate does not name exactly one county.
    #[error("node certificate does not identify a county")]
    Identity(#[from] IdentityError),
    /// The key does not belong to the certificate, or is of an unsupported kind.
    #[error("private key does not fit the certificate")]
    KeyMismatch(#[source] rustls::Error),
    /// A trust anchor was rejected (e.g. not a CA certificate rustls can use).
    #[error("invalid trust anchor in {origin}")]
    TrustAnchor {
        /// Which file (or "PEM text") held it.
        origin: String,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
}

/// This node's credentials: the certificate chain it presents, its private key, and the county
/// the certificate names.
///
/// Loading checks up front that the certificate names one county and that the key fits it, so
/// a misconfigured node fails at start-up rather than at its first handshake.
pub struct NodeIdentity {
    /// Leaf first, then any intermediates, as sent in the TLS `Certificate` message.
    cert_chain: Vec<CertificateDer<'static>>,
    /// Never printed: `Debug` is implemented by hand without it.
    private_key: PrivateKeyDer<'static>,
    /// Read from the leaf certificate once, so callers need not parse it again.
    county: County,
}

impl NodeIdentity {
    /// Loads a certificate chain (leaf first) and its private key from two PEM files.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, LoadError> {
        let cert_pem = read_file(cert_path)?;
        let key_pem = read_file(key_path)?;
        Self::parse_pem(
            &cert_pem,
            &cert_path.display().to_string(),
            &key_pem,
            &key_path.display().to_string(),
        )
    }

    /// Same as [`NodeIdentity::from_pem_files`] for PEM text already in memory (tests mint
    /// certificates at run time and never touch the disk).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, LoadError> {
        Self::parse_pem(cert_pem, "PEM text", key_pem, "PEM text")
    }

    /// Same as [`NodeIdentity::from_pem`], naming the files the text came from in errors.
    pub(crate) fn from_pem_named(
        cert_pem: &str,
        cert_origin: &str,
        key_pem: &str,
        key_origin: &str,
    ) -> Result<Self, LoadError> {
        Self::parse_pem(cert_pem, cert_origin, key_pem, key_origin)
    }

    fn parse_pem(
        cert_pem: &str,
        cert_origin: &str,
        key_pem: &str,
        key_origin: &str,
    ) -> Result<Self, LoadError> {
        let cert_chain = parse_certificates(cert_pem, cert_origin)?;
        let private_key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| match source {
                pem::Error::NoItemsFound => LoadError::NoPrivateKey {
                    origin: key_origin.to_owned(),
                },
                source => LoadError::Pem {
                    origin: key_origin.to_owned(),
                    source,
                },
            })?;
        let county = county_from_certificate(&cert_chain[0])?;
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(cert_chain.clone(), private_key.clone_key(), &provider)
            .map_err(LoadError::KeyMismatch)?;
        Ok(Self {
            cert_chain,
            private_key,
            county,
        })
    }

    /// The county this node speaks for, as its own certificate states.
    pub fn county(&self) -> County {
        self.county
    }

    /// The chain to present to peers, leaf first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.cert_chain
    }

    /// A fresh copy of the private key for a rustls configuration. Crate-private so that the key
    /// cannot wander off into the rest of the program.
    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        self.private_key.clone_key()
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("county", &self.county)
            .field("cert_chain_len", &self.cert_chain.len())
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// The CA certificates a node trusts to vouch for peers: one or more, from configuration.
///
/// Cheap to clone (an `Arc`), because every server and client configuration shares it.
#[derive(Clone)]
pub struct TrustAnchors {
    /// Shared with the rustls verifiers built from it.
    roots: Arc<RootCertStore>,
    /// The CRLs in force with these anchors (none unless attached with
    /// [`TrustAnchors::with_revocation`]): counties' signatures are checked against them.
    revocation: Revocation,
}

impl TrustAnchors {
    /// Loads every `CERTIFICATE` block of a PEM file as a trust anchor (at least one required).
    pub fn from_pem_file(path: &Path) -> Result<Self, LoadError> {
        let pem = read_file(path)?;
        Self::parse_pem(&pem, &path.display().to_string())
    }

    /// Same as [`TrustAnchors::from_pem_file`] for PEM text already in memory.
    pub fn from_pem(pem: &str) -> Result<Self, LoadError> {
        Self::parse_pem(pem, "PEM text")
    }

    /// Same as [`TrustAnchors::from_pem`], naming the file the text came from in errors.
    pub(crate) fn from_pem_named(pem: &str, origin: &str) -> Result<Self, LoadError> {
        Self::parse_pem(pem, origin)
    }

    fn parse_pem(pem: &str, origin: &str) -> Result<Self, LoadError> {
        let mut roots = RootCertStore::empty();
        for certificate in parse_certificates(pem, origin)? {
            roots.add(certificate).map_err(|source| LoadError::TrustAnchor {
                origin: origin.to_owned(),
                source,
            })?;
        }
        Ok(Self {
            roots: Arc::new(roots),
            revocation: Revocation::default(),
        })
    }

    /// How many anchors are trusted (for start-up logs).
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Never true for anchors loaded here (at least one is required); the companion of `len`.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The same anchors with the CRLs in force (`tls.crls`), so that a signature checked against
    /// them is refused when a CRL revokes a certificate of its chain.
    pub fn with_revocation(mut self, revocation: Revocation) -> Self {
        self.revocation = revocation;
        self
    }

    /// The CRLs in force with these anchors.
    pub fn revocation(&self) -> &Revocation {
        &self.revocation
    }

    /// The store the rustls verifiers use.
    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        Arc::clone(&self.roots)
    }
}

impl fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("len", &self.roots.len())
            .field("crls", &self.revocation.crls().len())
            .finish()
    }
}

fn read_file(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse_certificates(pem: &str, origin: &str) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| LoadError::Pem {
            origin: origin.to_owned(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(LoadError::NoCertificate {
            origin: origin.to_owned(),
        });
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identity_debug_never_shows_the_key() {
        let pki = crate::tls::dev::TestPki::new().unwrap();
        let identity = pki.county_identity("430703").unwrap();
        assert_eq!(
            format!("{identity:?}"),
            r#"NodeIdentity { county: County(430703), cert_chain_len: 1, private_key: "[redacted]" }"#
        );
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let pki = crate::tls::dev::TestPki::new().unwrap();
        let now = chrono::Utc::now();
        let later = now + chrono::Duration::days(1);
        let (cert_pem, _) = pki.issue_county("430703", now, later).unwrap();
        let (_, other_key_pem) = pki.issue_county("430703", now, later).unwrap();
        assert!(matches!(
            NodeIdentity::from_pem(&cert_pem, &other_key_pem),
            Err(LoadError::KeyMismatch(_))
        ));
    }
}
