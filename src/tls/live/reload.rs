//! Reloading: reading the files again, putting the new material in force when it is usable and
//! differs from what is in force, keeping the old material when it is not usable, and closing
//! the connections whose certificates the new CRLs revoke.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls::pki_types::UnixTime;
use sha2::{Digest, Sha256};

use super::{ClosedConnection, LiveTls, TlsMaterial};

/// What a reload did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The files are as they were: nothing to do.
    Unchanged,
    /// New material is in force; these connections were closed because the new CRLs revoke the
    /// certificate they were made with.
    Reloaded {
        /// The connections closed.
        closed: Vec<ClosedConnection>,
    },
    /// The files could not be used; the old material stays in force.
    Failed {
        /// Why, for logs and health (names files and causes, never key material).
        why: String,
    },
    /// The files are still the ones a previous attempt failed on (a file watch does not retry
    /// them; a SIGHUP does).
    StillFailing,
}

/// The last reload that failed while the old material stayed in force.
#[derive(Clone, Debug)]
pub struct ReloadFailure {
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub why: String,
    /// The content that failed, so that a file watch does not try it again and again.
    fingerprint: Option<[u8; 32]>,
}

impl LiveTls {
    /// Reads the files again. Unchanged files are left alone; files a previous attempt failed on
    /// are tried again only when `force` (SIGHUP), not by the file watch. New material takes
    /// effect for the next handshake, and connections whose certificates the new CRLs revoke
    /// are closed. Blocking file I/O of a few kilobytes.
    pub fn reload(&self, force: bool) -> ReloadOutcome {
        let material = match TlsMaterial::read(&self.sources, self.county) {
            Ok(material) => material,
            Err(error) => {
                let why = error.to_string();
                let fingerprint = self.fingerprint_of_files();
                let mut failure = self
                    .failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !force
                    && let Some(previous) = failure.as_ref()
                    && previous.fingerprint.is_some()
                    && previous.fingerprint == fingerprint
                {
                    return ReloadOutcome::StillFailing;
                }
                *failure = Some(ReloadFailure {
                    at: Utc::now(),
                    why: why.clone(),
                    fingerprint,
                });
                return ReloadOutcome::Failed { why };
            }
        };
        if !force && material.fingerprint == self.current().fingerprint {
            return ReloadOutcome::Unchanged;
        }
        let material = Arc::new(material);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&material);
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let closed = self.connections.close_revoked(&material, UnixTime::now());
        ReloadOutcome::Reloaded { closed }
    }

    /// A hash of the files as they are (for a failed read: what there is to read of them).
    fn fingerprint_of_files(&self) -> Option<[u8; 32]> {
        let mut hasher = Sha256::new();
        for path in self.sources.paths() {
            let bytes = std::fs::read(path).unwrap_or_default();
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(&bytes);
        }
        Some(hasher.finalize().into())
    }
}
