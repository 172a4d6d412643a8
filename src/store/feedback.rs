//! Feedback (反馈) to notices, both directions: ours written with its outbox entry against a
//! notice we received (one answer per notice), loaded for the delivery worker and given the
//! peer's receipt; the peers' stored once against a notice we sent them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::AuditEntry;
use super::outbox::enqueue_in;
use super::{Store, StoreError, audit_batch_in, parsed};
use crate::domain::division::CountyCode;
use crate::domain::feedback::{Feedback, FeedbackOutcome};
use crate::domain::message::{AgreementRef, MessageType};

/// What became of our feedback handed to [`Store::queue_outbound_feedback`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueuedFeedback {
    /// Stored now, with its outbox entry.
    New,
    /// This feedback was stored before with the same content: nothing written.
    Repeat,
    /// The notice was answered before, by the feedback named.
    AlreadyAnswered(Uuid),
    /// The id is taken by another message.
    IdTaken,
}

/// What became of one feedback message a peer sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedbackReceipt {
    /// Stored now.
    Accepted(DateTime<Utc>),
    /// Stored before: the first receipt again.
    Duplicate(DateTime<Utc>),
    /// It answers no notice we sent that peer (under that agreement).
    UnknownNotice,
    /// The notice has other feedback already.
    AlreadyAnswered,
    /// The id belongs to another message.
    IdTaken,
}

/// One feedback message as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FeedbackRecord {
    /// Its id.
    pub message_id: Uuid,
    /// The notice answered.
    pub notice_id: Uuid,
    /// `outbound` (we gave it) or `inbound`.
    pub direction: String,
    /// The other county.
    pub peer_county: String,
    /// The notice's agreement.
    pub agreement_id: String,
    /// That agreement's hash.
    pub agreement_hash: String,
    /// What the origin did.
    pub outcome: String,
    /// The note.
    pub note: Option<String>,
    /// When it was given.
    pub answered_at: DateTime<Utc>,
    /// When the notice's sender received it.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Why the notice's sender refused it.
    pub reject_reason: Option<String>,
}

impl FeedbackRecord {
    /// `delivered`, `rejected` or `queued`, like a notice.
    pub fn state(&self) -> &'static str {
        if self.reject_reason.is_some() {
            "rejected"
        } else if self.acknowledged_at.is_some() {
            "delivered"
        } else {
            "queued"
        }
    }

    fn into_domain(self) -> Result<Feedback, StoreError> {
        Ok(Feedback {
            message_id: self.message_id,
            notice_id: self.notice_id,
            agreement: AgreementRef {
                id: self.agreement_id,
                hash: self.agreement_hash,
            },
            outcome: FeedbackOutcome::parse(&self.outcome).map_err(StoreError::Corrupt)?,
            note: self.note,
            answered_at: self.answered_at,
        })
    }
}

const FEEDBACK_COLUMNS: &str =
    "message_id, notice_id, direction, peer_county, agreement_id, agreement_hash, outcome,
    note, answered_at, acknowledged_at, reject_reason";

fn audit(peer: CountyCode, direction: &str, id: Uuid, outcome: &str, reason: Option<String>) -> AuditEntry {
    AuditEntry {
        peer_county: Some(peer.to_string()),
        direction: direction.into(),
        message_id: Some(id),
        kind: Some("feedback".into()),
        outcome: outcome.into(),
        reason,
        ..AuditEntry::default()
    }
}

impl Store {
    /// Stores our feedback to a notice `peer` sent us, with its outbox entry, audited. One
    /// answer per notice: the notice row is locked while it is checked.
    pub async fn queue_outbound_feedback(
        &self,
        peer: CountyCode,
        feedback: &Feedback,
    ) -> Result<QueuedFeedback, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT 1 FROM notices WHERE message_id = $1 FOR UPDATE")
            .bind(feedback.notice_id)
            .execute(&mut *tx)
            .await?;
        let existing: Option<(Uuid, bool)> = sqlx::query_as(
            "SELECT message_id, (message_id = $2 AND direction = 'outbound' AND outcome = $3
                                 AND note IS NOT DISTINCT FROM $4)
               FROM feedback WHERE notice_id = $1",
        )
        .bind(feedback.notice_id)
        .bind(feedback.message_id)
        .bind(feedback.outcome.as_str())
        .bind(&feedback.note)
        .fetch_optional(&mut *tx)
        .await?;
        match existing {
            Some((_, true)) => return Ok(QueuedFeedback::Repeat),
            Some((id, false)) if id != feedback.message_id => return Ok(QueuedFeedback::AlreadyAnswered(id)),
            Some(_) => return Ok(QueuedFeedback::IdTaken),
            None => {}
        }
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO feedback (message_id, notice_id, direction, peer_county, agreement_id, agreement_hash, outcome,
                                   note, answered_at)
             VALUES ($1, $2, 'outbound', $3, $4, $5, $6, $7, $8)
             ON CONFLICT DO NOTHING RETURNING message_id",
        )
        .bind(feedback.message_id)
        .bind(feedback.notice_id)
        .bind(peer.as_str())
        .bind(&feedback.agreement.id)
        .bind(&feedback.agreement.hash)
        .bind(feedback.outcome.as_str())
        .bind(&feedback.note)
        .bind(feedback.answered_at)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            return Ok(QueuedFeedback::IdTaken);
        }
        enqueue_in(
            &mut tx,
            &[feedback.message_id],
            MessageType::Feedback,
            peer,
            std::time::Duration::ZERO,
        )
        .await?;
        let entry = AuditEntry {
            agreement_id: Some(feedback.agreement.id.clone()),
            agreement_hash: Some(feedback.agreement.hash.clone()),
            reason: Some(format!("{} to notice {}", feedback.outcome, feedback.notice_id)),
            ..audit(peer, "outbound", feedback.message_id, "queued", None)
        };
        audit_batch_in(&mut tx, std::slice::from_ref(&entry)).await?;
        tx.commit().await?;
        Ok(QueuedFeedback::New)
    }

    /// Loads our feedback for sending.
    pub async fn outbound_feedback(&self, ids: &[Uuid]) -> Result<Vec<Feedback>, StoreError> {
        let rows: Vec<FeedbackRecord> = sqlx::query_as(&format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedback
              WHERE message_id = ANY($1) AND direction = 'outbound' AND erased_at IS NULL ORDER BY message_id"
        ))
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(FeedbackRecord::into_domain).collect()
    }

    /// The feedback to a notice, either direction.
    pub async fn feedback_for(&self, notice_id: Uuid) -> Result<Option<FeedbackRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE notice_id = $1"
        ))
        .bind(notice_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// One feedback message by its id.
    pub async fn feedback(&self, id: Uuid) -> Result<Option<FeedbackRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE message_id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records the peer's receipts and refusals of our feedback and removes it from the outbox,
    /// audited.
    pub async fn record_feedback_verdicts(
        &self,
        peer: CountyCode,
        accepted: &[(Uuid, DateTime<Utc>)],
        refused: &[(Uuid, String)],
    ) -> Result<(), StoreError> {
        if accepted.is_empty() && refused.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        let ids: Vec<Uuid> = accepted.iter().map(|a| a.0).collect();
        let received: Vec<DateTime<Utc>> = accepted.iter().map(|a| a.1).collect();
        sqlx::query(
            "UPDATE feedback f SET acknowledged_at = t.received_at, reject_reason = NULL
               FROM UNNEST($1::uuid[], $2::timestamptz[]) AS t(id, received_at)
              WHERE f.message_id = t.id AND f.direction = 'outbound' AND f.peer_county = $3",
        )
        .bind(&ids)
        .bind(&received)
        .bind(peer.as_str())
        .execute(&mut *tx)
        .await?;
        for (id, reason) in refused {
            sqlx::query(
                "UPDATE feedback SET reject_reason = $2
                  WHERE message_id = $1 AND direction = 'outbound' AND peer_county = $3 AND acknowledged_at IS NULL",
            )
            .bind(id)
            .bind(reason)
            .bind(peer.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let done: Vec<Uuid> = ids.iter().copied().chain(refused.iter().map(|r| r.0)).collect();
        sqlx::query("DELETE FROM outbox WHERE message_id = ANY($1)")
            .bind(&done)
            .execute(&mut *tx)
            .await?;
        let entries: Vec<AuditEntry> =
            ids.iter()
                .map(|id| audit(peer, "outbound", *id, "delivered", None))
                .chain(refused.iter().map(|(id, reason)| {
                    audit(peer, "outbound", *id, "rejected_by_peer", Some(reason.clone()))
                }))
                .collect();
        audit_batch_in(&mut tx, &entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores feedback from `peer` to notices we sent it; a repeated id gets its first receipt.
    pub async fn accept_inbound_feedback(
        &self,
        peer: CountyCode,
        batch: &[&Feedback],
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedbackReceipt>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut receipts = Vec::with_capacity(batch.len());
        let mut entries = Vec::new();
        for feedback in batch {
            // a repeat is the same feedback again: same sender, notice, outcome and note
            let repeat: Option<(bool, Option<DateTime<Utc>>)> = sqlx::query_as(
                "SELECT direction = 'inbound' AND peer_county = $2 AND notice_id = $3 AND outcome = $4
                        AND note IS NOT DISTINCT FROM $5,
                        acknowledged_at
                   FROM feedback WHERE message_id = $1",
            )
            .bind(feedback.message_id)
            .bind(peer.as_str())
            .bind(feedback.notice_id)
            .bind(feedback.outcome.as_str())
            .bind(&feedback.note)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((same, received_at)) = repeat {
                receipts.push(if same {
                    FeedbackReceipt::Duplicate(received_at.unwrap_or(now))
                } else {
                    FeedbackReceipt::IdTaken
                });
                continue;
            }
            let ours: Option<bool> = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM feedback WHERE notice_id = $1)
                   FROM notices WHERE message_id = $1 AND direction = 'outbound' AND peer_county = $2
                    AND agreement_id = $3
                  FOR UPDATE",
            )
            .bind(feedback.notice_id)
            .bind(peer.as_str())
            .bind(&feedback.agreement.id)
            .fetch_optional(&mut *tx)
            .await?;
            match ours {
                None => {
                    receipts.push(FeedbackReceipt::UnknownNotice);
                    continue;
                }
                Some(true) => {
                    receipts.push(FeedbackReceipt::AlreadyAnswered);
                    continue;
                }
                Some(false) => {}
            }
            sqlx::query(
                "INSERT INTO feedback (message_id, notice_id, direction, peer_county, agreement_id, agreement_hash,
                                       outcome, note, answered_at, acknowledged_at)
                 VALUES ($1, $2, 'inbound', $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(feedback.message_id)
            .bind(feedback.notice_id)
            .bind(peer.as_str())
            .bind(&feedback.agreement.id)
            .bind(&feedback.agreement.hash)
            .bind(feedback.outcome.as_str())
            .bind(&feedback.note)
            .bind(feedback.answered_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            entries.push(AuditEntry {
                agreement_id: Some(feedback.agreement.id.clone()),
                agreement_hash: Some(feedback.agreement.hash.clone()),
                ..audit(peer, "inbound", feedback.message_id, "accepted", None)
            });
            receipts.push(FeedbackReceipt::Accepted(now));
        }
        audit_batch_in(&mut tx, &entries).await?;
        tx.commit().await?;
        Ok(receipts)
    }
}

/// A stored direction name, checked.
pub fn direction_of(record: &FeedbackRecord) -> Result<crate::domain::message::Direction, StoreError> {
    parsed(&record.direction)
}
