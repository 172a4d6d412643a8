//! The agreement's reconciliation secret, and the keyed digests made with it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ReconcileSet;
use crate::domain::resident_id::ResidentId;
use crate::domain::riblt::Element;

/// Shortest secret accepted: 32 bytes (64 hex characters or 32+ characters of text), the
/// strength of the HMAC-SHA256 key it becomes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a configured secret was refused (never quoting it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Too short to be a key.
    #[error("the reconciliation secret must be at least {MIN_SECRET_BYTES} bytes long, found {0}")]
    TooShort(usize),
}

/// The secret both counties of an agreement hold for reconciliation. Elements and tags are
/// HMAC-SHA256 under it: without the secret a sketch reveals nothing about the ID numbers in it.
#[derive(Clone)]
pub struct ReconcileKey {
    /// The keyed state, prepared once: each element then costs two SHA-256 compressions.
    mac: Hmac<Sha256>,
}

impl ReconcileKey {
    /// A key from the configured secret (its bytes as written).
    pub fn new(secret: &[u8]) -> Result<ReconcileKey, SecretError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort(secret.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        Ok(ReconcileKey { mac })
    }

    /// The set element for a stored content digest (of a message or a shared person).
    pub fn element(&self, set: ReconcileSet, digest: &[u8; 32]) -> Element {
        let mut mac = self.mac.clone();
        mac.update(set.label());
        mac.update(digest);
        mac.finalize().into_bytes().into()
    }

    /// The keyed tag of a message's content (from its content digest, see migration 0008): made
    /// once while the content is there, kept when the message's personal data is erased, and
    /// the same on both sides, so that it stands for the message in the messages set.
    pub fn message_tag(&self, content_digest: &[u8; 32]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(b"hancha/reconcile/message-tag/v1");
        mac.update(content_digest);
        mac.finalize().into_bytes().into()
    }

    /// The tag that names a person across the two sides without the ID number: equal tags on
    /// both sides mean the same person, known differently.
    pub fn person_tag(&self, resident_id: &ResidentId) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(b"hancha/reconcile/person-tag/v1");
        mac.update(resident_id.as_str().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for ReconcileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReconcileKey(<redacted>)")
    }
}
