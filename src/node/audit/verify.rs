//! Checking the whole chain against the records, as `hancha audit verify` does.

use super::{CHECKPOINT_EVERY, CHECKPOINT_GAP_LIMIT, check_signature};
use crate::domain::audit_chain::{ChainHash, ChainPoint};
use crate::domain::audit_verify::{Break, CheckpointSummary, VerifyReport, check_entry};
use crate::domain::division::CountyCode;
use crate::node::Node;
use crate::store::{Store, StoreError};
use crate::tls::TrustAnchors;
use crate::tls::signing::AUDIT_CHECKPOINT_PURPOSE;

/// Chain positions read per page when verifying.
const VERIFY_PAGE: u64 = 5000;

/// Checks the whole chain against the records: every position in order, every checkpoint
/// against the chain, the newest checkpoint's signature, and that no record sits in the sealed
/// part of the log outside the chain.
///
/// The newest checkpoint's signature is checked against `anchors` at the time it was signed
/// (its certificate may have been rotated or have expired since), and must be `county`'s.
///
/// `signs` says the node signs checkpoints (it has the county key): then a chain whose first
/// [`CHECKPOINT_GAP_LIMIT`] positions have no checkpoint is broken (they were removed).
pub async fn verify_chain(
    store: &Store,
    county: CountyCode,
    anchors: Option<&TrustAnchors>,
    signs: bool,
) -> Result<VerifyReport, StoreError> {
    let mut previous = ChainPoint {
        position: 0,
        head: ChainHash::GENESIS,
    };
    let mut rows_checked = 0;
    let mut first_broken = None;
    // every checkpoint must hold the head the records give at its position; they are read
    // before the chain's end, as each is stored with or after the positions it covers, so one
    // signed while we verify is never taken for one past the end
    let checkpoints = store.audit_checkpoint_heads().await?;
    let mut checkpoints = checkpoints.iter().peekable();
    let end = store.audit_chain_end().await?.map_or(0, |end| end.position);
    let mut off_chain = None;
    let mut from = 0;
    'pages: while from < end {
        let to = (from + VERIFY_PAGE).min(end);
        let page = store.audit_chain_page(from, to).await?;
        if page.is_empty() {
            // a stretch with no position at all: on to the next block, whose first position
            // then names the gap (a hand-made block far ahead is not walked to page by page)
            from = store
                .audit_chain_block_after(to)
                .await?
                .map_or(end, |first| first - 1);
            continue;
        }
        for entry in page {
            match check_entry(previous, &entry) {
                Ok(reached) => {
                    previous = reached;
                    rows_checked += 1;
                    while let Some(checkpoint) = checkpoints.next_if(|k| k.position <= reached.position) {
                        if off_chain.is_none() && *checkpoint != reached {
                            off_chain = Some(checkpoint.position);
                        }
                    }
                }
                Err(broken) => {
                    first_broken = Some(broken);
                    break 'pages;
                }
            }
        }
        from = to;
    }
    // a checkpoint past the chain's end: the chain was cut short
    let off_chain = off_chain.or(checkpoints.next().map(|checkpoint| checkpoint.position));
    let last = store.audit_checkpoint(None).await?;
    let signature_check = last.as_ref().map(|checkpoint| {
        let body = &checkpoint.body;
        check_signature(
            anchors,
            county,
            AUDIT_CHECKPOINT_PURPOSE,
            (&body.county, body.signed_at, &body.signed_bytes()),
            &checkpoint.signature,
            body.signed_at,
        )
    });
    let last_checkpoint = last.as_ref().map(|checkpoint| CheckpointSummary {
        position: checkpoint.body.point.position,
        head: checkpoint.body.point.head.hex(),
        signed_at: checkpoint.body.signed_at.to_rfc3339(),
        signature_valid: signature_check.as_ref().is_some_and(Result::is_ok),
    });
    // the first checkpoint is signed within the first batches sealed; a chain that goes longer
    // without one lost its checkpoints (the running node may have signed a new one since, at
    // its end, which must not hide that)
    let first_checkpoint = store
        .audit_checkpoint_after(0)
        .await?
        .map(|first| first.body.point.position);
    if first_broken.is_none() && signs {
        let problem = match first_checkpoint {
            None if previous.position > CHECKPOINT_GAP_LIMIT => Some(format!(
                "the chain has {} records and no signed checkpoint, though one is signed at least every {CHECKPOINT_EVERY}: the checkpoints were removed",
                previous.position
            )),
            Some(first) if first > CHECKPOINT_GAP_LIMIT => Some(format!(
                "positions 1 to {} have no signed checkpoint, though one is signed at least every {CHECKPOINT_EVERY}: the checkpoints were removed",
                first - 1
            )),
            _ => None,
        };
        if let Some(problem) = problem {
            first_broken = Some(Break {
                position: Some(CHECKPOINT_GAP_LIMIT),
                audit_id: None,
                problem,
            });
        }
    }
    if first_broken.is_none()
        && let Some(position) = off_chain
    {
        first_broken = Some(Break {
            position: Some(position),
            audit_id: None,
            problem:
                "a signed checkpoint does not match the chain here: the chain was rewritten or cut short"
                    .into(),
        });
    }
    if first_broken.is_none()
        && let Some(summary) = &last_checkpoint
        && let Some(Err(why)) = &signature_check
    {
        first_broken = Some(Break {
            position: Some(summary.position),
            audit_id: None,
            problem: format!("the newest checkpoint's signature does not verify: {why}"),
        });
    }
    if first_broken.is_none()
        && let Some(id) = store.audit_records_outside_chain(1).await?.first()
    {
        first_broken = Some(at_record(
            *id,
            "the record sits among sealed records but is not in the chain: it was put in behind the sealer",
        ));
    }
    if first_broken.is_none()
        && let Some(id) = store.audit_record_chained_twice().await?
    {
        first_broken = Some(at_record(
            id,
            "the record is bound at more than one chain position: the chain was edited by hand",
        ));
    }
    if first_broken.is_none()
        && let Some(id) = store.audit_record_from_the_future().await?
    {
        first_broken = Some(at_record(
            id,
            "the record claims a transaction that has not started: it was put in by hand, and the sealer would wait for it forever",
        ));
    }
    let (pending, _) = store.audit_unsealed().await?;
    Ok(VerifyReport {
        rows_checked,
        intact: first_broken.is_none(),
        first_broken,
        sealed_position: end,
        pending: pending.max(0) as u64,
        last_checkpoint,
    })
}

/// A break at a record rather than at a chain position.
fn at_record(audit_id: i64, problem: &str) -> Break {
    Break {
        position: None,
        audit_id: Some(audit_id),
        problem: problem.into(),
    }
}

impl Node {
    /// Checks the whole chain of this node's database (see [`verify_chain`]) against the trust
    /// anchors in force.
    pub async fn verify_audit_chain(&self) -> Result<VerifyReport, StoreError> {
        let anchors = self.signatures.anchors.as_ref().map(|anchors| anchors.current());
        verify_chain(
            self.store(),
            self.county(),
            anchors.as_ref(),
            self.county_key.is_some(),
        )
        .await
    }
}
