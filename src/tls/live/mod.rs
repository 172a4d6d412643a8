//! The node's TLS material as it is *now*: certificate, key, trust anchors and certificate
//! revocation lists, read from files, replaced while the node runs (SIGHUP or a change of the
//! files), and consulted by every handshake.
//!
//! # How a reload takes effect
//!
//! [`LiveTls`] holds one [`TlsMaterial`] behind a lock. The rustls configurations it builds
//! ([`LiveTls::server_config`], [`LiveTls::operator_server_config`], [`LiveTls::client_config`])
//! never copy the material: their certificate resolvers and verifiers read the current material
//! at each handshake, so new handshakes use new material at once, with no restart and no new
//! listener. A reload that fails (a file missing or malformed, a key that does not fit the
//! certificate, a certificate for another county, a CRL that does not parse) keeps the old
//! material in force and says why ([`LiveTls::reload`]).
//!
//! Neither rustls nor tonic closes a connection whose handshake is over, so [`Connections`]
//! tracks every live connection with the certificate chain the other side presented; after a
//! reload the chains are checked against the new CRLs and the connections of revoked
//! certificates are closed ([`ReloadOutcome::Reloaded`] lists them).
//!
//! # Where things are
//!
//! - This module: the files ([`TlsSources`]), the material in force ([`TlsMaterial`]) and its
//!   holder ([`LiveTls`]), read once at start-up ([`LiveTls::load`]).
//! - `verifiers`: building the material from its files (identity, trust anchors, CRLs, the
//!   rustls verifiers), the checks those verifiers make, and the rustls configurations whose
//!   resolvers and verifiers read the material in force at each handshake.
//! - `reload`: reading the files again and swapping the material ([`LiveTls::reload`],
//!   [`ReloadOutcome`]).
//! - `connections`: the live connections, closed when the material in force revokes their
//!   certificate ([`Connections`]).
//! - `revocation`: the CRLs in force and how they are applied ([`Revocation`]).
//!
//! # Revocation policy (`tls.crls`)
//!
//! Chosen deliberately; the README's TLS section says the same:
//!
//! - **Depth: the whole chain.** Every certificate of the verified chain except the trust anchor
//!   itself is checked (rustls' default), so revoking an intermediate CA cuts off everything it
//!   issued.
//! - **Unknown status is allowed.** A certificate whose issuer has no CRL in `tls.crls` is not
//!   checked (rustls' `allow_unknown_revocation_status`). Adding one CA's CRL must not cut off
//!   the peers of every other CA; list the CRL of every issuing CA whose revocations matter.
//!   With no `tls.crls` at all nothing is checked for revocation.
//! - **Expiry: `nextUpdate` plus `tls.crl_grace`, enforced by hancha.** rustls can only enforce
//!   `nextUpdate` exactly or ignore it; hancha tells rustls to ignore it and enforces it itself
//!   with a grace period (default `0s`: refused from the moment the CRL is past `nextUpdate`).
//!   Past the grace, a certificate issued by that CRL's issuer is refused at the handshake
//!   (`ExpiredRevocationList`) until a fresh CRL is loaded; certificates of other CAs are not
//!   affected, and connections already open stay open (they were checked when made).
//! - Two CRLs from the same issuer: the one issued last (`thisUpdate`) is used.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls::CertificateError;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::credentials::{LoadError, NodeIdentity, TrustAnchors};
use super::identity::{County, county_from_certificate};

/// The files the material is read from (the node's `[tls]` section and `operator.trust_anchors`).
#[derive(Clone, Debug)]
pub struct TlsSources {
    /// This node's certificate chain, PEM, leaf first.
    pub certificate: PathBuf,
    /// Its private key, PEM. Only the path is ever shown.
    pub private_key: PathBuf,
    /// CAs that peers' certificates must chain to, PEM.
    pub trust_anchors: PathBuf,
    /// Certificate revocation lists, each file PEM (one or more `X509 CRL` blocks) or DER (one).
    pub crls: Vec<PathBuf>,
    /// The operator CA, when the operator API takes operator certificates.
    pub operator_trust_anchors: Option<PathBuf>,
    /// How long after its `nextUpdate` a CRL is still used (see the module documentation).
    pub crl_grace: Duration,
}

impl TlsSources {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [&self.certificate, &self.private_key, &self.trust_anchors]
            .into_iter()
            .chain(&self.crls)
            .chain(&self.operator_trust_anchors)
            .map(PathBuf::as_path)
    }
}

/// Why TLS material could not be loaded (at start-up, or on a reload, which then keeps the old).
/// The texts name files and causes, never key material.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The certificate, key or trust anchors are unusable.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The certificate is for another county than the node's.
    #[error("the certificate names county {actual} but the configuration says {expected}")]
    WrongCounty {
        /// The configured county.
        expected: County,
        /// The county the certificate names.
        actual: County,
    },
    /// A CRL file is not a CRL.
    #[error("{path}: not a certificate revocation list: {reason}")]
    Crl {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the anchors or CRLs for a verifier.
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
}

/// What one CRL in force says, for metrics, logs and the grace check.
#[derive(Clone, Debug)]
pub struct CrlSummary {
    /// The issuer's common name (or its whole name when it has none).
    pub issuer: String,
    /// The issuer's name as encoded, to match certificates' issuers.
    issuer_raw: Vec<u8>,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds; `None` when the CRL has none (it then never goes stale).
    pub next_update: Option<i64>,
    /// How many certificates it revokes.
    pub revoked: usize,
}

/// TLS material in force: what was read from the files at one moment, with the verifiers built
/// from it.
pub struct TlsMaterial {
    /// Our certificate and key.
    identity: NodeIdentity,
    /// The CAs peers' certificates chain to; signatures by counties are checked against them
    /// too (agreement versions, audit checkpoints).
    anchors: TrustAnchors,
    /// The same, ready for rustls to sign with.
    certified_key: Arc<CertifiedKey>,
    /// CRLs in force (one per issuer) and their grace: the revocation policy, also carried by
    /// `anchors` for signatures.
    revocation: Revocation,
    /// Verifies peers' client certificates (chain, key purpose, revocation).
    peer_clients: Arc<dyn ClientCertVerifier>,
    /// Verifies operators' client certificates, when the operator API takes them.
    operator_clients: Option<Arc<dyn ClientCertVerifier>>,
    /// Verifies peers' server certificates (chain, key purpose, revocation; the name is ignored).
    servers: Arc<WebPkiServerVerifier>,
    /// Hash of every file's content, to tell a change from a touch.
    fingerprint: [u8; 32],
    /// When it was read.
    loaded_at: DateTime<Utc>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("identity", &self.identity)
            .field("crls", &self.revocation.crls())
            .field("loaded_at", &self.loaded_at)
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Our certificate and the county it names.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The trust anchors in force for peers' certificates and counties' signatures, carrying
    /// the CRLs in force ([`TrustAnchors::revocation`]) for the signatures.
    pub fn trust_anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// The CRLs in force.
    pub fn crls(&self) -> &[CrlSummary] {
        self.revocation.crls()
    }

    /// When the files were read.
    pub fn loaded_at(&self) -> DateTime<Utc> {
        self.loaded_at
    }

    /// The CRLs more than `crl_grace` past their `nextUpdate` at `now` (Unix seconds).
    pub fn stale_crls(&self, now: i64) -> Vec<&CrlSummary> {
        self.revocation.stale_crls(now)
    }
}

/// The node's TLS material in force, its files, and its live connections.
pub struct LiveTls {
    /// Where the material is read from.
    sources: TlsSources,
    /// The county the certificate must name.
    county: County,
    /// The material in force.
    current: RwLock<Arc<TlsMaterial>>,
    /// The last failed reload, until one succeeds.
    failure: Mutex<Option<ReloadFailure>>,
    /// Connections made with certificates verified against some material.
    connections: Arc<Connections>,
}

impl fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTls")
            .field("sources", &self.sources)
            .field("county", &self.county)
            .finish_non_exhaustive()
    }
}

impl LiveTls {
    /// Reads the material for the first time; the node does not start without it.
    pub fn load(sources: TlsSources, county: County) -> Result<Arc<LiveTls>, MaterialError> {
        let material = Arc::new(TlsMaterial::read(&sources, county)?);
        let connections = Arc::new(Connections::default());
        connections.close_revoked(&material, UnixTime::now());
        Ok(Arc::new(LiveTls {
            sources,
            county,
            current: RwLock::new(material),
            failure: Mutex::new(None),
            connections,
        }))
    }

    /// The material in force.
    pub fn current(&self) -> Arc<TlsMaterial> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The last reload that failed, while no later one succeeded.
    pub fn last_failure(&self) -> Option<ReloadFailure> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The live connections.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }
}

mod connections;
mod reload;
mod revocation;
mod verifiers;

pub use connections::{ClosedConnection, Connections, Role, TrackedTcp};
pub use reload::{ReloadFailure, ReloadOutcome};
pub use revocation::Revocation;

#[cfg(test)]
mod tests;
