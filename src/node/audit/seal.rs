//! Sealing committed audit records into the chain and signing checkpoints: the sealer
//! worker's step.

use chrono::{SubsecRound, Utc};
use tracing::warn;

use super::{CHECKPOINT_EVERY, CHECKPOINT_INTERVAL, SEAL_BATCH, sign};
use crate::domain::audit_chain::{ChainPoint, Checkpoint, Signed};
use crate::node::Node;
use crate::store::StoreError;
use crate::store::audit_chain::{CheckpointMark, Sealing};
use crate::tls::CountyKey;
use crate::tls::signing::AUDIT_CHECKPOINT_PURPOSE;

/// What one sealing step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Records sealed.
    pub sealed: usize,
    /// Where the chain stands.
    pub head: Option<ChainPoint>,
    /// The checkpoint signed in this step, if one was.
    pub checkpoint: Option<ChainPoint>,
    /// Another replica was sealing.
    pub busy: bool,
}

impl Node {
    /// Seals every committed audit record not yet sealed, in batches, signing a checkpoint
    /// whenever one is due (see [`CHECKPOINT_EVERY`], [`CHECKPOINT_INTERVAL`]), stored in the
    /// batch's own transaction.
    pub async fn seal_audit(&self) -> Result<SealReport, StoreError> {
        let mut report = SealReport::default();
        let mut checkpoint = |end: ChainPoint, last: Option<CheckpointMark>| {
            let key = self.county_key.as_ref()?;
            checkpoint_due(last, end, false).then(|| self.signed_checkpoint(key, end))?
        };
        loop {
            match self.store().seal_audit(SEAL_BATCH, &mut checkpoint).await? {
                Sealing::Busy => {
                    report.busy = true;
                    return Ok(report);
                }
                Sealing::Sealed {
                    records,
                    head,
                    checkpoint,
                } => {
                    report.sealed += records;
                    report.head = head;
                    if let Some(head) = head.filter(|_| records > 0) {
                        self.sealed.send_replace(head.position as i64);
                    }
                    if checkpoint.is_some() {
                        report.checkpoint = checkpoint;
                    }
                    if (records as i64) < SEAL_BATCH {
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Signs a checkpoint at the end of the chain when one is due, or whenever the chain grew
    /// past the last one if `force`. Returns it; `None` when none was due or this node has no
    /// signer.
    pub async fn checkpoint_audit(&self, force: bool) -> Result<Option<ChainPoint>, StoreError> {
        let Some(key) = &self.county_key else {
            return Ok(None);
        };
        let Some(end) = self.store().audit_chain_end().await? else {
            return Ok(None);
        };
        let last = self
            .store()
            .audit_checkpoint(None)
            .await?
            .map(|last| CheckpointMark {
                position: last.body.point.position,
                signed_at: last.body.signed_at,
            });
        if !checkpoint_due(last, end, force) {
            return Ok(None);
        }
        let Some(signed) = self.signed_checkpoint(key, end) else {
            return Ok(None);
        };
        self.store().add_audit_checkpoint(&signed).await?;
        Ok(Some(end))
    }

    /// A checkpoint at `point` of our chain signed with `key`; `None` when signing failed
    /// (logged).
    pub(super) fn signed_checkpoint(&self, key: &CountyKey, point: ChainPoint) -> Option<Signed<Checkpoint>> {
        let checkpoint = Checkpoint {
            county: self.county().as_str().to_string(),
            point,
            signed_at: Utc::now().trunc_subsecs(0),
        };
        match sign(
            key,
            AUDIT_CHECKPOINT_PURPOSE,
            &checkpoint.county,
            &checkpoint.signed_bytes(),
            checkpoint.signed_at,
        ) {
            Ok(signature) => Some(Signed {
                body: checkpoint,
                signature,
            }),
            Err(error) => {
                warn!(%error, position = point.position, "audit checkpoint not signed");
                None
            }
        }
    }
}

/// Whether a checkpoint at `end` is due, the newest being `last`: always for the first, never
/// when the chain has not grown past the last, and otherwise after [`CHECKPOINT_EVERY`]
/// records or [`CHECKPOINT_INTERVAL`] (or at once if `force`).
fn checkpoint_due(last: Option<CheckpointMark>, end: ChainPoint, force: bool) -> bool {
    match last {
        None => true,
        Some(last) if last.position >= end.position => false,
        Some(last) => {
            force
                || end.position - last.position >= CHECKPOINT_EVERY
                || Utc::now() - last.signed_at
                    >= chrono::Duration::from_std(CHECKPOINT_INTERVAL).unwrap_or_default()
        }
    }
}
