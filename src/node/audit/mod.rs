//! The audit chain at work: sealing committed records and signing checkpoints (the sealer
//! worker's step), what we show each peer of our chain and what we make of what it shows us
//! (through the peer-status exchange), checking the whole chain (`hancha audit verify`), and
//! resuming after a restore (`hancha audit resume`): [`seal`], [`peers`], [`verify`] and
//! [`resume`], sharing the signing and checking of what they sign (here).
//!
//! # Signatures
//!
//! Checkpoints and resume statements are signed and checked like all evidence a county signs,
//! with `crate::tls::signing` (purposes
//! [`AUDIT_CHECKPOINT_PURPOSE`](crate::tls::signing::AUDIT_CHECKPOINT_PURPOSE) and
//! [`AUDIT_RESUME_PURPOSE`](crate::tls::signing::AUDIT_RESUME_PURPOSE)): the node signs with the county key in force (after a certificate
//! rotation, new checkpoints carry the new certificate), and checks against the trust anchors
//! in force. What is checked when:
//!
//! - a peer's checkpoint and resume statement, once, when they arrive: the certificate chains
//!   to our anchors and is valid now, and it names the peer that sent them over mutual TLS (the
//!   county the body claims must be the same). A refused checkpoint is not held (it witnesses
//!   nothing), and the refusal is logged and audited; one held stays held when the peer's
//!   certificate later expires or is rotated, as an agreement signature checked at apply does;
//! - our own newest checkpoint, by `hancha audit verify`: against the anchors in force, at the
//!   time it was signed (the certificate must have been valid then), so a rotation or expiry
//!   since does not break the chain; it must name this node's county.
//!
//! Sealing runs after commit, off the intake path: intake only inserts its audit rows (with the
//! id of the writing transaction), and the sealer gives them positions later, in commit order
//! ([`crate::store::sequencer`]). Replicas may all run the sealer; one seals at a time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::audit_chain::{MAX_EXTENSION_LEAVES, Signature};
use crate::domain::division::CountyCode;
use crate::tls::signing::{self, Algorithm, SignError, certificates_from_der};
use crate::tls::{County, CountyKey, TrustAnchors};

mod peers;
mod resume;
mod seal;
mod verify;

pub use resume::{ResumeError, resume_chain};
pub use seal::SealReport;
pub use verify::verify_chain;

/// Records sealed per transaction, at most: under load the sealer runs batch after batch beside
/// intake, so fewer, larger transactions leave intake more of the machine.
pub const SEAL_BATCH: i64 = 3000;

/// A checkpoint at least every this many records (checked after each batch of [`SEAL_BATCH`],
/// so checkpoints are never more than 999 + 3000 positions apart, within
/// [`MAX_EXTENSION_LEAVES`]).
pub const CHECKPOINT_EVERY: u64 = 1000;

// a peer can always be shown a proof from the checkpoint it holds to the next one
const _: () = assert!(CHECKPOINT_EVERY - 1 + SEAL_BATCH as u64 <= MAX_EXTENSION_LEAVES);

/// A checkpoint at least this often while records are written.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// A chain this long without a single checkpoint, on a node that signs them, lost its
/// checkpoints: one is signed at least every [`CHECKPOINT_EVERY`] records (checked after each
/// batch of [`SEAL_BATCH`]), so two intervals and a batch is well past any honest gap.
pub const CHECKPOINT_GAP_LIMIT: u64 = 2 * CHECKPOINT_EVERY + SEAL_BATCH as u64;

/// Signs `bytes` for `purpose` with `key` as `county` at `signed_at`, in the stored form. A key
/// of another county (which the live material never holds) signs nothing.
fn sign(
    key: &CountyKey,
    purpose: &str,
    county: &str,
    bytes: &[u8],
    signed_at: DateTime<Utc>,
) -> Result<Signature, SignError> {
    let signature = key.sign_at(purpose, bytes, signed_at)?;
    if signature.signer.as_str() != county {
        return Err(SignError::Key(format!(
            "the certificate in force is {}'s, not {county}'s",
            signature.signer
        )));
    }
    Ok(Signature {
        scheme: signature.algorithm.as_str().to_owned(),
        bytes: signature.value.clone(),
        certificate: signature.certificates_der(),
    })
}

/// Checks `signature` over a body (the county it claims, when it was signed, its signed bytes)
/// for `purpose`, with `crate::tls::signing::verify` against `anchors` at instant `at`; and
/// that the verified certificate names `expected` (the peer as its TLS certificate names it,
/// or this node). The claimed county must agree with the certificate, never replace it.
fn check_signature(
    anchors: Option<&TrustAnchors>,
    expected: CountyCode,
    purpose: &str,
    (county, signed_at, bytes): (&str, DateTime<Utc>, &[u8]),
    signature: &Signature,
    at: DateTime<Utc>,
) -> Result<(), String> {
    let Some(anchors) = anchors else {
        return Err("this node has no trust anchors to check signatures with".to_owned());
    };
    let signer = County::parse(county).map_err(|error| error.to_string())?;
    let algorithm = Algorithm::parse(&signature.scheme)
        .ok_or_else(|| format!("unknown signature algorithm {:?}", signature.scheme))?;
    let certificates = certificates_from_der(&signature.certificate)
        .ok_or_else(|| "the certificate is not DER".to_owned())?;
    let signature = signing::Signature {
        signer,
        signed_at,
        algorithm,
        certificates,
        value: signature.bytes.clone(),
    };
    let verified =
        signing::verify(&signature, purpose, bytes, anchors, at).map_err(|error| error.to_string())?;
    if verified.county.as_str() != expected.as_str() {
        return Err(format!("it is signed by {}, not by {expected}", verified.county));
    }
    Ok(())
}
