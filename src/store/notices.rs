//! Notices (信息通报) received from peers: stored once, with what each does at the origin
//! ([`super::notice_effects`]), acknowledged after commit.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::AuditEntry;
use super::{Store, StoreError, audit_batch_in};
use crate::domain::division::CountyCode;
use crate::domain::message::Notice;
use crate::domain::vocabulary::NoticeEffect;

/// A notice that passed the agreement checks, with its feedback deadline.
#[derive(Clone, Debug)]
pub struct InboundNotice<'a> {
    /// The notice as sent.
    pub notice: &'a Notice,
    /// When feedback is due, for kinds that need it.
    pub feedback_due_at: Option<DateTime<Utc>>,
    /// What the agreement says it does in our registry.
    pub effect: NoticeEffect,
}

/// What became of one inbound notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeReceipt {
    /// Stored now.
    Accepted {
        /// When we received it.
        received_at: DateTime<Utc>,
        /// When feedback is due, for kinds that need it.
        feedback_due_at: Option<DateTime<Utc>>,
    },
    /// Stored before: the first receipt again, nothing changed.
    Duplicate {
        /// When we first received it.
        received_at: DateTime<Utc>,
        /// The feedback deadline set then.
        feedback_due_at: Option<DateTime<Utc>>,
    },
    /// The id belongs to another message.
    IdTaken,
}

impl Store {
    /// Stores notices from `peer` with their effect on the registry of county `here` (applied
    /// in the same transaction, or pending for an operator); a repeated id changes nothing and
    /// gets its first receipt.
    pub async fn accept_inbound_notices(
        &self,
        peer: CountyCode,
        here: CountyCode,
        notices: &[InboundNotice<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<NoticeReceipt>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut results = Vec::with_capacity(notices.len());
        let mut audit = Vec::new();
        for item in notices {
            let notice = item.notice;
            let inserted: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO notices (message_id, direction, peer_county, agreement_id, agreement_hash, kind, subject_id,
                                      occurred_on, body, created_at, acknowledged_at, feedback_due_at)
                 VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
                 ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            )
            .bind(notice.message_id)
            .bind(peer.as_str())
            .bind(&notice.agreement.id)
            .bind(&notice.agreement.hash)
            .bind(notice.kind.as_str())
            .bind(notice.subject.resident_id.as_str())
            .bind(notice.occurred_on)
            .bind(sqlx::types::Json(&notice.fields))
            .bind(now)
            .bind(item.feedback_due_at)
            .fetch_optional(&mut *tx)
            .await?;
            if inserted.is_some() {
                super::notice_effects::settle_received_in(&mut tx, notice, item.effect, (peer, here)).await?;
                audit.push(AuditEntry {
                    peer_county: Some(peer.to_string()),
                    direction: "inbound".into(),
                    message_id: Some(notice.message_id),
                    kind: Some(notice.kind.as_str().into()),
                    agreement_id: Some(notice.agreement.id.clone()),
                    agreement_hash: Some(notice.agreement.hash.clone()),
                    outcome: "accepted".into(),
                    reason: None,
                });
                results.push(NoticeReceipt::Accepted {
                    received_at: now,
                    feedback_due_at: item.feedback_due_at,
                });
                continue;
            }
            let first: Option<FirstNotice> = sqlx::query_as(
                "SELECT peer_county, direction, acknowledged_at, feedback_due_at FROM notices WHERE message_id = $1",
            )
            .bind(notice.message_id)
            .fetch_optional(&mut *tx)
            .await?;
            results.push(match first {
                Some(first) if first.peer_county == peer.as_str() && first.direction == "inbound" => {
                    NoticeReceipt::Duplicate {
                        received_at: first.acknowledged_at.unwrap_or(now),
                        feedback_due_at: first.feedback_due_at,
                    }
                }
                _ => NoticeReceipt::IdTaken,
            });
        }
        audit_batch_in(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(results)
    }
}

/// The notice already stored under a repeated id: whose it is, and its first receipt.
#[derive(sqlx::FromRow)]
struct FirstNotice {
    /// The county that sent it (or that we sent it to).
    peer_county: String,
    /// `inbound` or `outbound`: only an inbound notice from the same peer is a repeat.
    direction: String,
    /// When we first received it.
    acknowledged_at: Option<DateTime<Utc>>,
    /// The feedback deadline set then.
    feedback_due_at: Option<DateTime<Utc>>,
}
