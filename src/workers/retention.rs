//! The retention worker: erases the personal data of exchanges older than their agreement's
//! `retention_days` (PIPL Art. 19, 47), a batch per agreement and step. What is erased, and
//! how, is [`crate::store::retention`]'s; safe in any number of replicas.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::info;

use super::Step;
use crate::domain::reconcile::ReconcileKey;
use crate::node::Node;
use crate::store::StoreError;
use crate::store::retention::{Erased, MessageTagger, RetentionRule};

/// Rows of each kind one step erases per agreement, at most: a transaction stays short.
pub const BATCH: i64 = 500;

/// How long the worker idles once nothing is left to erase: a retention period is counted in
/// days, so an hour late is well within it.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// One step at `now`: for the newest version of every agreement, erases at most [`BATCH`] rows
/// of each kind past its retention period. Works again at once while a batch came back full.
pub async fn run_once(node: &Arc<Node>, now: DateTime<Utc>) -> Result<Step, StoreError> {
    let book = node.agreements();
    let mut more = false;
    for agreement in book.current_versions() {
        let key: Option<&ReconcileKey> = node.reconcile_settings().key(agreement.id());
        let tag = key.map(|key| move |digest: &[u8; 32]| key.message_tag(digest));
        let rule = RetentionRule {
            agreement_id: agreement.id(),
            retention_days: u32::from(agreement.retention_days()),
            tag: tag.as_ref().map(|tag| tag as &MessageTagger<'_>),
        };
        let erased = node.store().erase_expired(&rule, now, BATCH).await?;
        if erased.is_empty() {
            continue;
        }
        node.metrics().erased(&erased);
        info!(
            agreement = agreement.id(),
            inquiries = erased.inquiries,
            confirmations = erased.confirmations,
            notices = erased.notices,
            differences = erased.differences,
            "erased personal data past the agreed retention period"
        );
        more |= full(&erased);
    }
    Ok(if more {
        Step::Worked
    } else {
        Step::Idle(CHECK_INTERVAL)
    })
}

/// Whether a batch came back full (more may be waiting).
fn full(erased: &Erased) -> bool {
    let batch = BATCH as u64;
    erased.inquiries >= batch || erased.notices >= batch || erased.differences >= batch
}
