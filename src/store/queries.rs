//! Reading messages back: one inquiry with its answer, for operators, the synchronous path and
//! tests.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::outbound::ConfirmationRow;
use super::{Store, StoreError};
use crate::domain::message::{AgreementRef, Confirmation};

/// One inquiry as stored, in either direction.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct InquiryRecord {
    /// Author-chosen id.
    pub message_id: Uuid,
    /// `outbound` (we asked) or `inbound` (we were asked).
    pub direction: String,
    /// The other county.
    pub peer_county: String,
    /// Agreement id.
    pub agreement_id: String,
    /// Agreement hash.
    pub agreement_hash: String,
    /// Inquiry kind.
    pub kind: String,
    /// Priority.
    pub priority: String,
    /// `queued`, `pending`, `answered` or `rejected`.
    pub state: String,
    /// When it was written here.
    pub created_at: DateTime<Utc>,
    /// When the responder accepted it.
    pub received_at: Option<DateTime<Utc>>,
    /// Reply deadline.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// The answer's outcome.
    pub outcome: Option<String>,
    /// Why the responder refused it.
    pub reject_reason: Option<String>,
    /// When it was first seen past due.
    pub overdue_at: Option<DateTime<Utc>>,
}

impl InquiryRecord {
    /// The agreement it travels under.
    pub fn agreement(&self) -> AgreementRef {
        AgreementRef {
            id: self.agreement_id.clone(),
            hash: self.agreement_hash.clone(),
        }
    }
}

impl Store {
    /// One inquiry by id.
    pub async fn inquiry(&self, message_id: Uuid) -> Result<Option<InquiryRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT message_id, direction, peer_county, agreement_id, agreement_hash, kind, priority, state,
                    created_at, received_at, due_at, answered_at, outcome, reject_reason, overdue_at
             FROM inquiries WHERE message_id = $1",
        )
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The confirmation for an inquiry, in either direction.
    pub async fn confirmation_for(&self, inquiry_id: Uuid) -> Result<Option<Confirmation>, StoreError> {
        let row: Option<ConfirmationRow> = sqlx::query_as(
            "SELECT message_id, inquiry_id, agreement_id, agreement_hash, outcome, fields, created_at
             FROM confirmations WHERE inquiry_id = $1",
        )
        .bind(inquiry_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(ConfirmationRow::into_domain).transpose()
    }

    /// Counts of inquiries by direction and state, for summaries and tests.
    pub async fn inquiry_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT direction, state, count(*) FROM inquiries GROUP BY direction, state ORDER BY direction, state",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Outbox entries still waiting, per peer.
    pub async fn outbox_depth(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT peer_county, count(*) FROM outbox GROUP BY peer_county ORDER BY peer_county",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Marks pending inquiries past their deadline as overdue (once), with an audit record
    /// each. Returns how many were newly flagged.
    pub async fn flag_overdue(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let flagged: Vec<(Uuid, String, String, String)> = sqlx::query_as(
            "UPDATE inquiries SET overdue_at = $1
             WHERE state = 'pending' AND due_at < $1 AND overdue_at IS NULL
             RETURNING message_id, direction, peer_county, kind",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let audit: Vec<super::audit::AuditEntry> = flagged
            .iter()
            .map(|(id, direction, peer, kind)| super::audit::AuditEntry {
                peer_county: Some(peer.clone()),
                direction: direction.clone(),
                message_id: Some(*id),
                kind: Some(kind.clone()),
                outcome: "overdue".into(),
                reason: Some(
                    if direction == "inbound" {
                        "our answer is overdue"
                    } else {
                        "the peer's answer is overdue"
                    }
                    .into(),
                ),
                ..Default::default()
            })
            .collect();
        super::audit_batch_in(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(flagged.len() as u64)
    }
}
