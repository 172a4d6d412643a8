//! Confirmations (反馈) a peer sends for the inquiries we asked it, on their own or with the
//! receipts of a batch sent with answers inline: the inquiries locked in key order, each answer
//! stored once, the first answer standing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::division::CountyCode;
use crate::domain::message::Confirmation;
use crate::store::audit::AuditEntry;
use crate::store::{Store, StoreError, audit_batch_in};

/// What became of one inbound confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmationReceipt {
    /// Stored now; the inquiry is answered.
    Accepted,
    /// Stored before: nothing changed.
    Duplicate,
    /// We never sent that peer an inquiry with this id.
    UnknownInquiry,
    /// The inquiry already has a different answer; the first answer stands.
    AlreadyAnswered,
}

impl Store {
    /// Stores confirmations `peer` sent for inquiries we asked it, marking those inquiries
    /// answered. Idempotent on the confirmation's message id; the first answer always stands.
    ///
    /// The whole batch takes a fixed number of statements: the inquiries are locked first (in
    /// key order: the primary-key scan visits the id array sorted, so concurrent batches cannot
    /// deadlock; an `ORDER BY` here would make PostgreSQL 15 walk the whole index instead), and
    /// only then are existing confirmations looked up, so that a concurrent delivery of the same
    /// confirmation (the inline answer racing the peer's outbox) is seen as a duplicate once its
    /// transaction commits, never as a second answer.
    pub async fn accept_inbound_confirmations(
        &self,
        peer: CountyCode,
        confirmations: &[Confirmation],
    ) -> Result<Vec<ConfirmationReceipt>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let receipts = accept_confirmations_in(&mut tx, peer, confirmations).await?;
        tx.commit().await?;
        Ok(receipts)
    }
}

/// [`Store::accept_inbound_confirmations`] inside the caller's transaction.
async fn accept_confirmations_in(
    tx: &mut sqlx::PgConnection,
    peer: CountyCode,
    confirmations: &[Confirmation],
) -> Result<Vec<ConfirmationReceipt>, StoreError> {
    let inquiry_ids: Vec<Uuid> = confirmations.iter().map(|c| c.inquiry_id).collect();
    let states = lock_outbound_inquiries_in(tx, peer, &inquiry_ids).await?;
    accept_confirmations_locked_in(tx, peer, confirmations, states, &HashMap::new()).await
}

/// The states of our inquiries to `peer` among `ids`, locked in key order (the primary-key
/// scan visits the id array sorted), as every intake of receipts and answers locks them, so
/// that concurrent batches cannot deadlock. Ids that are not our inquiries to `peer` are left
/// out.
pub(crate) async fn lock_outbound_inquiries_in(
    tx: &mut sqlx::PgConnection,
    peer: CountyCode,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, String>, StoreError> {
    // Only the primary key in the condition: given `direction` and `peer_county` too, a
    // generic plan may walk every outbound inquiry of the peer filtering on the id array.
    let states: Vec<(Uuid, String, String, String)> = sqlx::query_as(
            "SELECT message_id, state, direction, peer_county FROM inquiries WHERE message_id = ANY($1) FOR UPDATE",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    Ok(states
        .into_iter()
        .filter(|(_, _, direction, owner)| direction == "outbound" && owner == peer.as_str())
        .map(|(id, state, _, _)| (id, state))
        .collect())
}

/// When the peer accepted an inquiry and its deadline there, from its receipt.
pub(crate) type ReceiptTimes = HashMap<Uuid, (DateTime<Utc>, Option<DateTime<Utc>>)>;

/// [`accept_confirmations_in`] once the inquiries are locked (`states`, from
/// [`lock_outbound_inquiries_in`]). An answered inquiry whose receipt is in `receipts` takes
/// the receipt's times in the same row update.
pub(crate) async fn accept_confirmations_locked_in(
    tx: &mut sqlx::PgConnection,
    peer: CountyCode,
    confirmations: &[Confirmation],
    mut states: HashMap<Uuid, String>,
    receipt_times: &ReceiptTimes,
) -> Result<Vec<ConfirmationReceipt>, StoreError> {
    let inquiry_ids: Vec<Uuid> = confirmations.iter().map(|c| c.inquiry_id).collect();
    let message_ids: Vec<Uuid> = confirmations.iter().map(|c| c.message_id).collect();
    let existing: Vec<Uuid> =
        sqlx::query_scalar("SELECT message_id FROM confirmations WHERE message_id = ANY($1)")
            .bind(&message_ids)
            .fetch_all(&mut *tx)
            .await?;
    let mut stored: HashSet<Uuid> = existing.into_iter().collect();
    // An inquiry marked answered whose confirmation is gone (restored from a backup, lost
    // by hand) takes its answer again: reconciliation re-delivers exactly that.
    let mut answered_with: HashSet<Uuid> =
        sqlx::query_scalar::<_, Uuid>("SELECT inquiry_id FROM confirmations WHERE inquiry_id = ANY($1)")
            .bind(&inquiry_ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();

    let mut receipts = Vec::with_capacity(confirmations.len());
    let mut audit = Vec::new();
    let mut accepted: Vec<&Confirmation> = Vec::new();
    for confirmation in confirmations {
        if stored.contains(&confirmation.message_id) {
            receipts.push(ConfirmationReceipt::Duplicate);
            continue;
        }
        let refused = match states.get(&confirmation.inquiry_id) {
            None => Some((ConfirmationReceipt::UnknownInquiry, "NOT_FOUND: no such inquiry")),
            Some(state) if state == "answered" && answered_with.contains(&confirmation.inquiry_id) => Some((
                ConfirmationReceipt::AlreadyAnswered,
                "ALREADY_EXISTS: inquiry already answered",
            )),
            Some(_) => None,
        };
        if let Some((receipt, reason)) = refused {
            receipts.push(receipt);
            audit.push(confirmation_audit(
                peer,
                confirmation,
                "rejected",
                Some(reason.into()),
            ));
            continue;
        }
        states.insert(confirmation.inquiry_id, "answered".into());
        answered_with.insert(confirmation.inquiry_id);
        stored.insert(confirmation.message_id);
        accepted.push(confirmation);
        receipts.push(ConfirmationReceipt::Accepted);
        audit.push(confirmation_audit(peer, confirmation, "accepted", None));
    }

    insert_inbound_confirmations_in(&mut *tx, peer, &accepted, receipt_times).await?;
    audit_batch_in(&mut *tx, &audit).await?;
    Ok(receipts)
}

/// Writes confirmations from `peer` that were accepted and marks their inquiries answered.
/// Nothing when `accepted` is empty.
pub(crate) async fn insert_inbound_confirmations_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    accepted: &[&Confirmation],
    receipts: &ReceiptTimes,
) -> Result<(), StoreError> {
    if accepted.is_empty() {
        return Ok(());
    }
    sqlx::query(
                "INSERT INTO confirmations (message_id, inquiry_id, direction, peer_county, agreement_id, agreement_hash,
                                            outcome, fields, answered_by, created_at)
                 SELECT id, inquiry_id, 'inbound', $3, agreement_id, agreement_hash, outcome, fields, 'automatic',
                        answered_at
                 FROM UNNEST($1::uuid[], $2::uuid[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                             $8::timestamptz[])
                      AS t(id, inquiry_id, agreement_id, agreement_hash, outcome, fields, answered_at)",
            )
            .bind(accepted.iter().map(|c| c.message_id).collect::<Vec<_>>())
            .bind(accepted.iter().map(|c| c.inquiry_id).collect::<Vec<_>>())
            .bind(peer.as_str())
            .bind(accepted.iter().map(|c| c.agreement.id.clone()).collect::<Vec<_>>())
            .bind(accepted.iter().map(|c| c.agreement.hash.clone()).collect::<Vec<_>>())
            .bind(accepted.iter().map(|c| c.outcome.as_str()).collect::<Vec<_>>())
            .bind(
                accepted
                    .iter()
                    .map(|c| sqlx::types::Json(&c.fields))
                    .collect::<Vec<_>>(),
            )
            .bind(accepted.iter().map(|c| c.answered_at).collect::<Vec<_>>())
            .execute(&mut *connection)
            .await?;
    let receipt = |c: &&Confirmation| receipts.get(&c.inquiry_id).copied();
    sqlx::query(
        "UPDATE inquiries i SET state = 'answered', outcome = t.outcome, answered_at = t.answered_at,
                        received_at = coalesce(i.received_at, t.received_at, t.answered_at),
                        due_at = coalesce(i.due_at, t.due_at)
                 FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])
                      AS t(id, outcome, answered_at, received_at, due_at)
                 WHERE i.message_id = t.id",
    )
    .bind(accepted.iter().map(|c| c.inquiry_id).collect::<Vec<_>>())
    .bind(accepted.iter().map(|c| c.outcome.as_str()).collect::<Vec<_>>())
    .bind(accepted.iter().map(|c| c.answered_at).collect::<Vec<_>>())
    .bind(
        accepted
            .iter()
            .map(|c| receipt(c).map(|(received_at, _)| received_at))
            .collect::<Vec<_>>(),
    )
    .bind(
        accepted
            .iter()
            .map(|c| receipt(c).and_then(|(_, due_at)| due_at))
            .collect::<Vec<_>>(),
    )
    .execute(&mut *connection)
    .await?;
    Ok(())
}

pub(crate) fn confirmation_audit(
    peer: CountyCode,
    confirmation: &Confirmation,
    outcome: &str,
    reason: Option<String>,
) -> AuditEntry {
    AuditEntry::inbound(Some(peer), outcome, reason)
        .message(Some(confirmation.message_id))
        .kind(Some("confirmation"))
        .under(&confirmation.agreement)
}
