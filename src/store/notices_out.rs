//! Notices we send: written with their outbox entries in one transaction (idempotent on the
//! author's id), loaded for the delivery worker, and given the peer's receipt or refusal.
//! Read back, with their feedback, for the operator ([`NoticeRecord`]).

use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::audit::AuditEntry;
use super::outbound::corrupt;
use super::outbox::enqueue_in;
use super::{Store, StoreError, audit_batch_in, parsed};
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Direction, MessageType, Notice, Subject};
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{NoticeKind, NoticeValues};

/// What became of a notice handed to [`Store::queue_outbound_notice`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueuedNotice {
    /// Stored now, with its outbox entry.
    New,
    /// Stored before with the same content: nothing written.
    Repeat,
    /// The id is taken by another message (other content, another peer, or not ours).
    IdTaken,
}

/// One notice as stored, either direction, with its feedback's outline.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NoticeRecord {
    /// Its id.
    pub message_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The other county.
    pub peer_county: String,
    /// The agreement it travels under.
    pub agreement_id: String,
    /// That agreement's hash.
    pub agreement_hash: String,
    /// Its kind.
    pub kind: String,
    /// The ID number it is about (absent once erased).
    pub subject_id: Option<String>,
    /// `4313**********0042`, or `[erased]`.
    pub subject_masked: String,
    /// When it happened.
    pub occurred_on: Option<NaiveDate>,
    /// Its fields.
    pub body: sqlx::types::Json<BTreeMap<String, String>>,
    /// When we wrote (outbound) or received (inbound) it.
    pub created_at: DateTime<Utc>,
    /// When the receiver received it.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The receiver's feedback deadline, for kinds owing feedback.
    pub feedback_due_at: Option<DateTime<Utc>>,
    /// Why the peer refused it (outbound).
    pub reject_reason: Option<String>,
    /// Its feedback's id, once given.
    pub feedback_id: Option<Uuid>,
    /// Its feedback's outcome.
    pub feedback_outcome: Option<String>,
}

impl NoticeRecord {
    /// Which way it travels.
    pub fn direction(&self) -> Result<Direction, StoreError> {
        parsed(&self.direction)
    }

    /// `answered` (feedback given), `rejected`, `delivered` (the receiver holds it) or
    /// `queued` (not yet received).
    pub fn state(&self) -> &'static str {
        if self.feedback_id.is_some() {
            "answered"
        } else if self.reject_reason.is_some() {
            "rejected"
        } else if self.acknowledged_at.is_some() {
            "delivered"
        } else {
            "queued"
        }
    }

    /// Whether feedback is owed and its deadline has passed: the inquiries' rule
    /// ([`crate::domain::time::is_overdue`]), applied to feedback.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        crate::domain::time::is_overdue(self.feedback_id.is_none(), self.feedback_due_at, now)
    }
}

/// The columns of [`NoticeRecord`], over `notices n LEFT JOIN feedback f`.
pub(crate) const NOTICE_COLUMNS: &str =
    "n.message_id, n.direction, n.peer_county, n.agreement_id, n.agreement_hash,
    n.kind, n.subject_id,
    coalesce(left(n.subject_id, 4) || '**********' || right(n.subject_id, 4), '[erased]') AS subject_masked,
    n.occurred_on, n.body, n.created_at, n.acknowledged_at, n.feedback_due_at, n.reject_reason,
    f.message_id AS feedback_id, f.outcome AS feedback_outcome";

/// A peer's receipt of one of our notices: the notice, when the peer received it, and its
/// feedback deadline (for kinds owing feedback).
pub type NoticeReceived = (Uuid, DateTime<Utc>, Option<DateTime<Utc>>);

/// Which notices owing feedback to list.
#[derive(Clone, Copy, Debug)]
pub struct PendingNotices {
    /// Ours (the feedback we wait for) rather than the peers' (the feedback we owe).
    pub outbound: bool,
    /// Only those past their feedback deadline.
    pub overdue_only: bool,
    /// At most this many.
    pub limit: i64,
}

/// A notice row as the delivery worker reads it.
#[derive(sqlx::FromRow)]
struct OutboundNoticeRow {
    message_id: Uuid,
    agreement_id: String,
    agreement_hash: String,
    kind: String,
    subject_id: Option<String>,
    occurred_on: Option<NaiveDate>,
    body: sqlx::types::Json<BTreeMap<String, String>>,
}

impl OutboundNoticeRow {
    fn into_notice(self) -> Result<Notice, StoreError> {
        let kind: NoticeKind = parsed(&self.kind)?;
        let subject_id = self
            .subject_id
            .ok_or_else(|| corrupt("an erased notice is not sent"))?;
        let resident_id: ResidentId = parsed(&subject_id)?;
        let fields = NoticeValues::parse(
            kind,
            self.body
                .0
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            "body",
        )
        .map_err(|_| corrupt("stored notice fields"))?;
        Ok(Notice {
            message_id: self.message_id,
            agreement: AgreementRef {
                id: self.agreement_id,
                hash: self.agreement_hash,
            },
            kind,
            subject: Subject {
                resident_id,
                certificate_number: None,
            },
            occurred_on: self.occurred_on,
            fields,
        })
    }
}

impl Store {
    /// The node's own key for message ids derived from a caller's idempotency key (migration
    /// 0014): never sent anywhere, never logged.
    pub async fn message_id_key(&self) -> Result<Vec<u8>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM node_secrets WHERE name = 'message_ids'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Stores a notice to `peer` with its outbox entry, audited as queued. A repeat of the same
    /// id with the same content writes nothing; with other content it is [`QueuedNotice::IdTaken`].
    pub async fn queue_outbound_notice(
        &self,
        peer: CountyCode,
        notice: &Notice,
    ) -> Result<QueuedNotice, StoreError> {
        let mut tx = self.pool().begin().await?;
        let body = sqlx::types::Json(&notice.fields);
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO notices (message_id, direction, peer_county, agreement_id, agreement_hash, kind, subject_id,
                                  occurred_on, body)
             VALUES ($1, 'outbound', $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        )
        .bind(notice.message_id)
        .bind(peer.as_str())
        .bind(&notice.agreement.id)
        .bind(&notice.agreement.hash)
        .bind(notice.kind.as_str())
        .bind(notice.subject.resident_id.as_str())
        .bind(notice.occurred_on)
        .bind(body)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            // The same notice again (its agreement may have moved on since: the id, peer and
            // content decide, not the version it was first sent under).
            let same: Option<bool> = sqlx::query_scalar(
                "SELECT direction = 'outbound' AND peer_county = $2 AND kind = $3 AND subject_id = $4
                        AND occurred_on IS NOT DISTINCT FROM $5 AND body = $6::jsonb
                   FROM notices WHERE message_id = $1",
            )
            .bind(notice.message_id)
            .bind(peer.as_str())
            .bind(notice.kind.as_str())
            .bind(notice.subject.resident_id.as_str())
            .bind(notice.occurred_on)
            .bind(body)
            .fetch_optional(&mut *tx)
            .await?;
            return Ok(match same {
                Some(true) => QueuedNotice::Repeat,
                _ => QueuedNotice::IdTaken,
            });
        }
        enqueue_in(
            &mut tx,
            &[notice.message_id],
            MessageType::Notice,
            peer,
            std::time::Duration::ZERO,
        )
        .await?;
        let entry = AuditEntry {
            peer_county: Some(peer.to_string()),
            direction: "outbound".into(),
            message_id: Some(notice.message_id),
            kind: Some(notice.kind.as_str().into()),
            agreement_id: Some(notice.agreement.id.clone()),
            agreement_hash: Some(notice.agreement.hash.clone()),
            outcome: "queued".into(),
            reason: None,
        };
        audit_batch_in(&mut tx, std::slice::from_ref(&entry)).await?;
        tx.commit().await?;
        Ok(QueuedNotice::New)
    }

    /// Loads our notices for sending (erased ones are never sent again).
    pub async fn outbound_notices(&self, ids: &[Uuid]) -> Result<Vec<Notice>, StoreError> {
        let rows: Vec<OutboundNoticeRow> = sqlx::query_as(
            "SELECT message_id, agreement_id, agreement_hash, kind, subject_id, occurred_on, body
               FROM notices WHERE message_id = ANY($1) AND direction = 'outbound' AND erased_at IS NULL
              ORDER BY message_id",
        )
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(OutboundNoticeRow::into_notice).collect()
    }

    /// Records the peer's receipts (when it received each notice, its feedback deadline) and
    /// refusals, and removes those notices from the outbox, audited. A later receipt (a notice
    /// delivered again after reconciliation found the peer without it) replaces the earlier.
    pub async fn record_notice_verdicts(
        &self,
        peer: CountyCode,
        accepted: &[NoticeReceived],
        refused: &[(Uuid, String)],
    ) -> Result<(), StoreError> {
        if accepted.is_empty() && refused.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        let ids: Vec<Uuid> = accepted.iter().map(|a| a.0).collect();
        let received: Vec<DateTime<Utc>> = accepted.iter().map(|a| a.1).collect();
        let due: Vec<Option<DateTime<Utc>>> = accepted.iter().map(|a| a.2).collect();
        sqlx::query(
            "UPDATE notices n SET acknowledged_at = t.received_at, feedback_due_at = t.due_at, reject_reason = NULL
               FROM UNNEST($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS t(id, received_at, due_at)
              WHERE n.message_id = t.id AND n.direction = 'outbound' AND n.peer_county = $4",
        )
        .bind(&ids)
        .bind(&received)
        .bind(&due)
        .bind(peer.as_str())
        .execute(&mut *tx)
        .await?;
        for (id, reason) in refused {
            sqlx::query(
                "UPDATE notices SET reject_reason = $2
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
        let audit: Vec<AuditEntry> = ids
            .iter()
            .map(|id| (*id, "delivered", None))
            .chain(
                refused
                    .iter()
                    .map(|(id, reason)| (*id, "rejected_by_peer", Some(reason.clone()))),
            )
            .map(|(id, outcome, reason)| AuditEntry {
                peer_county: Some(peer.to_string()),
                direction: "outbound".into(),
                message_id: Some(id),
                kind: Some("notice".into()),
                outcome: outcome.into(),
                reason,
                ..AuditEntry::default()
            })
            .collect();
        audit_batch_in(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One notice, either direction, by its id or its feedback's id.
    pub async fn notice(&self, id: Uuid) -> Result<Option<NoticeRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices n LEFT JOIN feedback f ON f.notice_id = n.message_id
              WHERE n.message_id = $1 OR f.message_id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Notices owing feedback that has not come: received ones whose feedback we owe, or
    /// (`outbound`) ours whose feedback we wait for; by feedback deadline, overdue first.
    pub async fn pending_notices(
        &self,
        filter: PendingNotices,
        now: DateTime<Utc>,
    ) -> Result<Vec<NoticeRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices n LEFT JOIN feedback f ON f.notice_id = n.message_id
              WHERE n.direction = $1 AND n.feedback_due_at IS NOT NULL AND f.message_id IS NULL
                AND (NOT $2 OR n.feedback_due_at < $3)
              ORDER BY n.feedback_due_at, n.message_id
              LIMIT $4"
        ))
        .bind(if filter.outbound { "outbound" } else { "inbound" })
        .bind(filter.overdue_only)
        .bind(now)
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Delivery attempts and the last error of a message still in the outbox.
    pub async fn outbox_entry(&self, id: Uuid) -> Result<Option<(i32, Option<String>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE message_id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }
}
