//! The retention worker: erases the personal data of exchanges older than their agreement's
//! `retention_days` (PIPL Art. 19, 47), a batch per agreement and step. What is erased, and
//! how, is [`crate::store::retention`]'s; safe in any number of replicas.
//!
//! Every agreement under which personal data is still kept is erased under, not only those in
//! force: an agreement whose stored versions are left out of the agreements in force (not
//! signed by every party while signatures are required, no longer parsing, or removed) keeps
//! the period of its newest stored version that parses; when none does, the longest period of
//! the agreements in force, or [`FALLBACK_RETENTION_DAYS`] when there is none, with a warning.
//! An agreement whose reconciliation key is not configured here is erased under all the same:
//! its messages get no keyed tag and drop out of reconciliation.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::Step;
use crate::domain::agreement::Agreement;
use crate::domain::reconcile::ReconcileKey;
use crate::node::Node;
use crate::store::StoreError;
use crate::store::agreements::StoredAgreement;
use crate::store::retention::{Erased, MessageTagger, RetentionRule};

/// The retention period, in days, for an agreement not in force of which no stored version
/// parses, when no agreement is in force either: the longest period agreements are written with
/// here (three years).
pub const FALLBACK_RETENTION_DAYS: u32 = 1095;

/// Rows of each kind one step erases per agreement, at most: a transaction stays short.
pub const BATCH: i64 = 500;

/// How long the worker idles once nothing is left to erase: a retention period is counted in
/// days, so an hour late is well within it.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// One step at `now`: for every agreement under which personal data is kept (its newest
/// version in force, else as the module documentation says), erases at most [`BATCH`] rows of
/// each kind past its retention period. Works again at once while a batch came back full.
pub async fn run_once(node: &Arc<Node>, now: DateTime<Utc>) -> Result<Step, StoreError> {
    let book = node.agreements();
    let mut periods: Vec<(String, u32)> = book
        .current_versions()
        .map(|agreement| (agreement.id().to_string(), u32::from(agreement.retention_days())))
        .collect();
    let kept = node.store().agreements_with_kept_data().await?;
    if kept.iter().any(|id| periods.iter().all(|(known, _)| known != id)) {
        let stored = node.store().agreements().await?;
        let longest = periods.iter().map(|(_, days)| *days).max();
        for id in kept {
            if periods.iter().any(|(known, _)| *known == id) {
                continue;
            }
            let days = match stored_period(&stored, &id) {
                Some(days) => days,
                None => {
                    let days = longest.unwrap_or(FALLBACK_RETENTION_DAYS);
                    warn!(
                        agreement = %id,
                        retention_days = days,
                        "personal data kept under an agreement of which no stored version parses; erased after the fallback period"
                    );
                    days
                }
            };
            periods.push((id, days));
        }
    }
    let mut more = false;
    for (id, retention_days) in &periods {
        let key: Option<&ReconcileKey> = node.reconcile_settings().key(id);
        let tag = key.map(|key| move |digest: &[u8; 32]| key.message_tag(digest));
        let rule = RetentionRule {
            agreement_id: id,
            retention_days: *retention_days,
            tag: tag.as_ref().map(|tag| tag as &MessageTagger<'_>),
        };
        let erased = node.store().erase_expired(&rule, now, BATCH).await?;
        if erased.is_empty() {
            continue;
        }
        node.metrics().erased(&erased);
        info!(
            agreement = %id,
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

/// The period of the newest stored version of agreement `id` that parses, whether or not it
/// is in force; `None` when none does.
fn stored_period(stored: &[StoredAgreement], id: &str) -> Option<u32> {
    let mut versions: Vec<&StoredAgreement> = stored
        .iter()
        .filter(|version| version.agreement_id == id)
        .collect();
    versions.sort_by_key(|version| std::cmp::Reverse(version.version));
    versions.into_iter().find_map(|version| {
        Agreement::parse(&version.source_text)
            .ok()
            .map(|agreement| u32::from(agreement.retention_days()))
    })
}

/// Whether a batch came back full (more may be waiting).
fn full(erased: &Erased) -> bool {
    let batch = BATCH as u64;
    erased.inquiries >= batch || erased.notices >= batch || erased.differences >= batch
}
