//! The county key and trust anchors that evidence is signed and checked with, as they are in
//! force: fixed for a command that runs once (or a test), or read from the live TLS material
//! for a running node, so that after a certificate rotation new signatures are made with the
//! new certificate and signatures are checked against the anchors of the latest reload.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::credentials::{NodeIdentity, TrustAnchors};
use super::identity::County;
use super::live::LiveTls;
use super::signing::{SignError, Signature, sign_at};

/// The key that signs this county's evidence (agreement versions, audit checkpoints, resume
/// statements): the node's TLS key.
#[derive(Clone)]
pub enum CountyKey {
    /// A certificate and key read once.
    Fixed(Arc<NodeIdentity>),
    /// Whatever the node's TLS material holds at the moment of signing.
    Live(Arc<LiveTls>),
}

impl CountyKey {
    /// The county the key signs for (the certificate names it; a reload cannot change it).
    pub fn county(&self) -> County {
        match self {
            CountyKey::Fixed(identity) => identity.county(),
            CountyKey::Live(live) => live.current().identity().county(),
        }
    }

    /// Signs `bytes` for `purpose` with the key in force, stating `signed_at` (whole seconds).
    pub fn sign_at(
        &self,
        purpose: &str,
        bytes: &[u8],
        signed_at: DateTime<Utc>,
    ) -> Result<Signature, SignError> {
        match self {
            CountyKey::Fixed(identity) => sign_at(identity, purpose, bytes, signed_at),
            CountyKey::Live(live) => sign_at(live.current().identity(), purpose, bytes, signed_at),
        }
    }
}

impl From<NodeIdentity> for CountyKey {
    fn from(identity: NodeIdentity) -> CountyKey {
        CountyKey::Fixed(Arc::new(identity))
    }
}

impl fmt::Debug for CountyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CountyKey::Fixed(identity) => f.debug_tuple("Fixed").field(&identity.county()).finish(),
            CountyKey::Live(_) => f.write_str("Live"),
        }
    }
}

/// The CAs a county's signature must chain to: this node's TLS trust anchors, carrying the CRLs
/// in force with them (`tls.crls`, see [`TrustAnchors::revocation`]), so that every signature
/// checked against them is checked for revocation with the handshakes' policy.
#[derive(Clone)]
pub enum AnchorsInForce {
    /// Anchors read once.
    Fixed(TrustAnchors),
    /// The anchors of the node's TLS material at the moment of checking.
    Live(Arc<LiveTls>),
}

impl AnchorsInForce {
    /// The anchors now, with the CRLs now (cheap: `Arc`s).
    pub fn current(&self) -> TrustAnchors {
        match self {
            AnchorsInForce::Fixed(anchors) => anchors.clone(),
            AnchorsInForce::Live(live) => live.current().trust_anchors().clone(),
        }
    }
}

impl From<TrustAnchors> for AnchorsInForce {
    fn from(anchors: TrustAnchors) -> AnchorsInForce {
        AnchorsInForce::Fixed(anchors)
    }
}

impl fmt::Debug for AnchorsInForce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorsInForce::Fixed(_) => f.write_str("Fixed"),
            AnchorsInForce::Live(_) => f.write_str("Live"),
        }
    }
}
