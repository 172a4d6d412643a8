//! Our messages to peers: the inquiries we ask (queued with their outbox entries, in one
//! transaction, so nothing accepted locally can be lost before delivery), the answers we owe,
//! loading both for sending, and what the peer's receipts do to our records. The outbox itself
//! — leases, retries, held entries — is [`super::outbox`].

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::AuditEntry;
use super::{Store, StoreError, audit_batch_in};
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::message::{AgreementRef, Confirmation, Inquiry, Subject};
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::InquiryKind;

use super::outbox::enqueue_in;
/// Kinds of message the outbox carries; each goes through its own RPC.
pub use crate::domain::message::MessageType;

/// The peer's verdict on one of our inquiries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InquiryVerdict {
    /// Accepted, with the deadline the responder computed.
    Accepted {
        /// The inquiry.
        message_id: Uuid,
        /// When the peer accepted it.
        received_at: DateTime<Utc>,
        /// The peer's reply deadline.
        due_at: Option<DateTime<Utc>>,
    },
    /// Refused for good (policy or validation); retrying would not help.
    Rejected {
        /// The inquiry.
        message_id: Uuid,
        /// The peer's reason, e.g. `PERMISSION_DENIED: ...`.
        reason: String,
    },
}

impl InquiryVerdict {
    /// The inquiry the verdict is about.
    pub fn message_id(&self) -> Uuid {
        match self {
            InquiryVerdict::Accepted { message_id, .. } | InquiryVerdict::Rejected { message_id, .. } => {
                *message_id
            }
        }
    }
}

impl Store {
    /// Writes our inquiries to `peer` and their outbox entries in one transaction, with an audit
    /// record each. An id already present is skipped, and so is a subject already asked under
    /// the same `sweep_key`, so re-submitting the same inquiries or re-running the same sweep
    /// adds nothing. Returns the ids that were new.
    ///
    /// The delivery worker leaves the new entries alone for `hold` (zero: it may send them at
    /// once): the synchronous path sends its inquiry itself and only needs the worker if it
    /// cannot; should the node die meanwhile, the worker sends it once the hold has passed.
    pub async fn queue_outbound_inquiries(
        &self,
        peer: CountyCode,
        inquiries: &[Inquiry],
        sweep_key: Option<&str>,
        office: Option<TownshipCode>,
        hold: Duration,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = queue_inquiries_in(&mut tx, peer, inquiries, sweep_key, office, hold).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// The inquiries an earlier run of sweep `sweep_key` already queued, by subject ID number.
    pub async fn sweep_inquiries(
        &self,
        sweep_key: &str,
        peer: CountyCode,
        kind: InquiryKind,
    ) -> Result<std::collections::HashMap<String, Uuid>, StoreError> {
        let rows: Vec<(String, Uuid)> = sqlx::query_as(
            "SELECT subject_id, message_id FROM inquiries
             WHERE sweep_key = $1 AND peer_county = $2 AND kind = $3 AND direction = 'outbound'
               AND subject_id IS NOT NULL",
        )
        .bind(sweep_key)
        .bind(peer.as_str())
        .bind(kind.as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Moves our queued inquiries `ids` to `peer` to another version of their agreement
    /// (`reference`), with an audit record per inquiry, in one transaction; an inquiry the peer
    /// already accepted is left alone.
    pub async fn move_to_version(
        &self,
        peer: CountyCode,
        ids: &[Uuid],
        reference: &AgreementRef,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let moved: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE inquiries SET agreement_hash = $3
             WHERE message_id = ANY($1) AND direction = 'outbound' AND state = 'queued' AND agreement_id = $2
             RETURNING message_id",
        )
        .bind(ids)
        .bind(&reference.id)
        .bind(&reference.hash)
        .fetch_all(&mut *tx)
        .await?;
        let entries: Vec<AuditEntry> = moved
            .iter()
            .map(|&id| AuditEntry {
                peer_county: Some(peer.to_string()),
                direction: "outbound".into(),
                message_id: Some(id),
                agreement_id: Some(reference.id.clone()),
                agreement_hash: Some(reference.hash.clone()),
                outcome: "moved_to_version".into(),
                reason: Some("still queued: sent under the version both sides hold now".into()),
                ..AuditEntry::default()
            })
            .collect();
        audit_batch_in(&mut tx, &entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Loads our queued inquiries for sending.
    pub async fn outbound_inquiries(&self, ids: &[Uuid]) -> Result<Vec<Inquiry>, StoreError> {
        let rows: Vec<InquiryRow> = sqlx::query_as(
            "SELECT message_id, peer_county, agreement_id, agreement_hash, kind, priority, subject_id, subject_certificate
             FROM inquiries WHERE message_id = ANY($1) AND direction = 'outbound' ORDER BY message_id",
        )
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(InquiryRow::into_inquiry).collect()
    }

    /// Applies the peer's receipts to our inquiries and removes them from the outbox. Only a
    /// still-queued inquiry changes state: an answer that overtook its receipt stands.
    pub async fn record_inquiry_verdicts(
        &self,
        peer: CountyCode,
        verdicts: &[InquiryVerdict],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        record_verdicts_in(&mut tx, peer, verdicts).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// [`Store::record_inquiry_verdicts`] inside the caller's transaction.
pub(crate) async fn record_verdicts_in(
    tx: &mut sqlx::PgConnection,
    peer: CountyCode,
    verdicts: &[InquiryVerdict],
) -> Result<(), StoreError> {
    // The inquiries are locked first, in key order (the primary-key scan visits the id array
    // sorted), as the intake of their answers locks them: the answers may arrive from the peer
    // while its receipts are being recorded, and an UPDATE joined with UNNEST would lock the
    // rows in the join's order instead, which deadlocks against the answers' intake.
    let ids: Vec<Uuid> = verdicts.iter().map(InquiryVerdict::message_id).collect();
    sqlx::query("SELECT message_id FROM inquiries WHERE message_id = ANY($1) FOR UPDATE")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    record_verdicts_locked_in(tx, peer, verdicts, &HashSet::new()).await
}

/// [`record_verdicts_in`] once the inquiries are locked. The inquiries in `answered` took their
/// receipt with their answer, in the answer's row update: they only leave the outbox.
pub(crate) async fn record_verdicts_locked_in(
    tx: &mut sqlx::PgConnection,
    peer: CountyCode,
    verdicts: &[InquiryVerdict],
    answered: &HashSet<Uuid>,
) -> Result<(), StoreError> {
    let mut audit = Vec::new();
    let (mut accepted_ids, mut received, mut due) = (Vec::new(), Vec::new(), Vec::new());
    let mut done_ids = Vec::new();
    for verdict in verdicts {
        match verdict {
            InquiryVerdict::Accepted { message_id, .. } if answered.contains(message_id) => {
                done_ids.push(*message_id);
            }
            InquiryVerdict::Accepted {
                message_id,
                received_at,
                due_at,
            } => {
                accepted_ids.push(*message_id);
                received.push(*received_at);
                due.push(*due_at);
                done_ids.push(*message_id);
            }
            InquiryVerdict::Rejected { message_id, reason } => {
                sqlx::query(
                    "UPDATE inquiries SET state = 'rejected', reject_reason = $2
                         WHERE message_id = $1 AND state = 'queued' AND direction = 'outbound' AND peer_county = $3",
                )
                .bind(message_id)
                .bind(reason)
                .bind(peer.as_str())
                .execute(&mut *tx)
                .await?;
                done_ids.push(*message_id);
                audit.push(AuditEntry {
                    peer_county: Some(peer.to_string()),
                    direction: "outbound".into(),
                    message_id: Some(*message_id),
                    outcome: "rejected_by_peer".into(),
                    reason: Some(reason.clone()),
                    ..AuditEntry::default()
                });
            }
        }
    }
    if !accepted_ids.is_empty() {
        sqlx::query(
            "UPDATE inquiries i SET state = CASE WHEN i.state = 'queued' THEN 'pending' ELSE i.state END,
                    received_at = coalesce(i.received_at, t.received_at), due_at = coalesce(i.due_at, t.due_at)
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS t(id, received_at, due_at)
             WHERE i.message_id = t.id",
        )
        .bind(&accepted_ids)
        .bind(&received)
        .bind(&due)
        .execute(&mut *tx)
        .await?;
    }
    // The ids are ours to `peer` (leased from its outbox, or just queued for it): only the
    // primary key in the condition, since given the peer too a generic plan may walk every
    // outbound inquiry (or outbox entry) of the peer, filtering on the id array.
    sqlx::query("DELETE FROM outbox WHERE message_id = ANY($1)")
        .bind(&done_ids)
        .execute(&mut *tx)
        .await?;
    audit_batch_in(&mut *tx, &audit).await?;
    Ok(())
}

impl Store {
    /// Loads our confirmations for sending.
    pub async fn outbound_confirmations(&self, ids: &[Uuid]) -> Result<Vec<Confirmation>, StoreError> {
        let rows: Vec<ConfirmationRow> = sqlx::query_as(
            "SELECT message_id, inquiry_id, agreement_id, agreement_hash, outcome, fields, created_at
             FROM confirmations WHERE message_id = ANY($1) AND direction = 'outbound' ORDER BY message_id",
        )
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ConfirmationRow::into_domain).collect()
    }

    /// Marks confirmations the peer acknowledged as delivered and removes them from the outbox.
    pub async fn record_confirmations_delivered(
        &self,
        peer: CountyCode,
        ids: &[Uuid],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        record_confirmations_delivered_in(&mut tx, peer, ids).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The audit records of our confirmations the peer now holds; `how` says how we know, when it
/// is not the ordinary receipt.
pub(crate) fn confirmations_delivered(peer: CountyCode, ids: &[Uuid], how: Option<&str>) -> Vec<AuditEntry> {
    ids.iter()
        .map(|id| AuditEntry {
            peer_county: Some(peer.to_string()),
            direction: "outbound".into(),
            message_id: Some(*id),
            kind: Some("confirmation".into()),
            outcome: "delivered".into(),
            reason: how.map(String::from),
            ..AuditEntry::default()
        })
        .collect()
}

impl Store {
    /// Removes from the outbox messages the peer refused for good, with an audit record each,
    /// so they stop being retried; the refusal stays visible in the audit log.
    pub async fn record_refused_deliveries(
        &self,
        peer: CountyCode,
        kind: &str,
        refused: &[(Uuid, String)],
    ) -> Result<(), StoreError> {
        if refused.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM outbox WHERE message_id = ANY($1)")
            .bind(refused.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        let audit: Vec<AuditEntry> = refused
            .iter()
            .map(|(id, reason)| AuditEntry {
                peer_county: Some(peer.to_string()),
                direction: "outbound".into(),
                message_id: Some(*id),
                kind: Some(kind.to_string()),
                outcome: "rejected_by_peer".into(),
                reason: Some(reason.clone()),
                ..AuditEntry::default()
            })
            .collect();
        audit_batch_in(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// [`Store::record_confirmations_delivered`] inside the caller's transaction.
pub(crate) async fn record_confirmations_delivered_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE confirmations SET delivered_at = now() WHERE message_id = ANY($1) AND delivered_at IS NULL",
    )
    .bind(ids)
    .execute(&mut *connection)
    .await?;
    sqlx::query("DELETE FROM outbox WHERE message_id = ANY($1)")
        .bind(ids)
        .execute(&mut *connection)
        .await?;
    let audit = confirmations_delivered(peer, ids, None);
    audit_batch_in(connection, &audit).await?;
    Ok(())
}

/// [`Store::queue_outbound_inquiries`] inside the caller's transaction; returns the new ids.
/// `office` is the township office that asked, for its own inquiries at its window; `None`
/// for county-wide work.
pub(crate) async fn queue_inquiries_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    inquiries: &[Inquiry],
    sweep_key: Option<&str>,
    office: Option<TownshipCode>,
    hold: Duration,
) -> Result<Vec<Uuid>, StoreError> {
    if inquiries.is_empty() {
        return Ok(Vec::new());
    }
    let inserted: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO inquiries (message_id, direction, peer_county, agreement_id, agreement_hash, kind, priority,
                                    subject_id, subject_certificate, state, sweep_key, asked_by_township)
             SELECT id, 'outbound', $2, agreement_id, agreement_hash, kind, priority, subject_id, certificate, 'queued',
                    $9, $10
             FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
                  AS t(id, agreement_id, agreement_hash, kind, priority, subject_id, certificate)
             ON CONFLICT DO NOTHING
             RETURNING message_id",
        )
        .bind(inquiries.iter().map(|i| i.message_id).collect::<Vec<_>>())
        .bind(peer.as_str())
        .bind(inquiries.iter().map(|i| i.agreement.id.clone()).collect::<Vec<_>>())
        .bind(inquiries.iter().map(|i| i.agreement.hash.clone()).collect::<Vec<_>>())
        .bind(inquiries.iter().map(|i| i.kind.as_str()).collect::<Vec<_>>())
        .bind(inquiries.iter().map(|i| i.priority.as_str()).collect::<Vec<_>>())
        .bind(inquiries.iter().map(|i| i.subject.resident_id.as_str().to_string()).collect::<Vec<_>>())
        .bind(inquiries.iter().map(|i| i.subject.certificate_number.clone()).collect::<Vec<_>>())
        .bind(sweep_key)
        .bind(office.as_ref().map(TownshipCode::as_str))
        .fetch_all(&mut *connection)
        .await?;
    enqueue_in(connection, &inserted, MessageType::Inquiry, peer, hold).await?;
    let audit: Vec<AuditEntry> = inquiries
        .iter()
        .filter(|i| inserted.contains(&i.message_id))
        .map(|i| AuditEntry {
            peer_county: Some(peer.to_string()),
            direction: "outbound".into(),
            message_id: Some(i.message_id),
            kind: Some(i.kind.as_str().into()),
            agreement_id: Some(i.agreement.id.clone()),
            agreement_hash: Some(i.agreement.hash.clone()),
            outcome: "queued".into(),
            reason: None,
        })
        .collect();
    audit_batch_in(connection, &audit).await?;
    Ok(inserted)
}

/// The columns of an inquiry needed to rebuild it as a message.
#[derive(sqlx::FromRow)]
pub(crate) struct InquiryRow {
    pub(crate) message_id: Uuid,
    pub(crate) peer_county: String,
    agreement_id: String,
    agreement_hash: String,
    kind: String,
    priority: String,
    subject_id: String,
    subject_certificate: Option<String>,
}

impl InquiryRow {
    pub(crate) fn into_inquiry(self) -> Result<Inquiry, StoreError> {
        Ok(Inquiry {
            message_id: self.message_id,
            agreement: AgreementRef {
                id: self.agreement_id,
                hash: self.agreement_hash,
            },
            kind: self.kind.parse().map_err(corrupt)?,
            priority: self.priority.parse().map_err(corrupt)?,
            subject: Subject {
                resident_id: ResidentId::parse(&self.subject_id).map_err(corrupt)?,
                certificate_number: self.subject_certificate,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConfirmationRow {
    message_id: Uuid,
    inquiry_id: Uuid,
    agreement_id: String,
    agreement_hash: String,
    outcome: String,
    fields: sqlx::types::Json<crate::domain::vocabulary::StatusValues>,
    created_at: DateTime<Utc>,
}

impl ConfirmationRow {
    pub(crate) fn into_domain(self) -> Result<Confirmation, StoreError> {
        Ok(Confirmation {
            message_id: self.message_id,
            inquiry_id: self.inquiry_id,
            agreement: AgreementRef {
                id: self.agreement_id,
                hash: self.agreement_hash,
            },
            outcome: self.outcome.parse().map_err(corrupt)?,
            fields: self.fields.0,
            answered_at: self.created_at,
        })
    }
}

/// A stored value that no longer parses: the database was changed behind the node's back.
pub(crate) fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}
