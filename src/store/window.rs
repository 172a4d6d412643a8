//! Answers inline (a clerk at a window, waiting; a sweep whose asker takes answers in the
//! receipts): each side commits once where it can. The responder stores the inquiries and their
//! automatic answers in one transaction; the asker stores the peer's receipts and the inline
//! answers in one; an answer given inline stays owed in the responder's outbox until the asker
//! acknowledges it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::answers::{Answer, WaitingInquiry};
use super::inbound::{
    ConfirmationReceipt, InboundInquiry, InboundReceipt, InlineAnswers, ReceiptTimes, Written,
    accept_confirmations_locked_in, accept_inquiries_in, lock_outbound_inquiries_in,
};
use super::outbound::{
    ConfirmationRow, InquiryVerdict, confirmations_delivered, record_verdicts_in, record_verdicts_locked_in,
};
use super::registry::persons_by_id_in;
use super::{Store, StoreError, Work, audit_batch_in};
use crate::domain::division::CountyCode;
use crate::domain::message::Confirmation;
use crate::domain::person::Person;
use crate::domain::resident_id::ResidentId;

/// How answers given inline are owed, and whether a clerk waits for them.
#[derive(Clone, Copy, Debug)]
pub struct InlineTerms {
    /// Until when each answer stays owed in the outbox (sent in full then unless acknowledged).
    pub owed_until: DateTime<Utc>,
    /// A clerk waits at a window: the transaction runs under the clerk's statement timeout.
    pub clerk_waits: bool,
}

impl Store {
    /// Stores a batch of inquiries from `peer` and, for each accepted one that `decide` answers
    /// from the registry, the answer too, in one transaction. The answers' outbox entries come
    /// due at `owed_until`: they go back inline now, and are sent in full only if the asker has
    /// not acknowledged them by then. A repeated inquiry returns its first receipt and the
    /// answer it got, if any. One result per inquiry, in order.
    pub async fn accept_and_answer_inquiries<F>(
        &self,
        peer: CountyCode,
        day: NaiveDate,
        batch: &[InboundInquiry<'_>],
        now: DateTime<Utc>,
        terms: InlineTerms,
        decide: F,
    ) -> Result<Vec<(InboundReceipt, Option<Confirmation>)>, StoreError>
    where
        F: Fn(&WaitingInquiry, Option<&Person>) -> Option<Answer>,
    {
        let owed_until = terms.owed_until;
        let mut tx = self.pool().begin().await?;
        if terms.clerk_waits {
            self.limit(&mut tx, Work::Clerk).await?;
        }
        // Each inquiry's answer is decided before it is stored, from the registry entries of
        // the batch's subjects: an inquiry answered now is written once, answered.
        let subjects: Vec<String> = batch
            .iter()
            .map(|item| item.inquiry.subject.resident_id.as_str().to_string())
            .collect();
        let registered: HashMap<ResidentId, Person> = persons_by_id_in(&mut tx, &subjects)
            .await?
            .into_iter()
            .map(|person| (person.resident_id.clone(), person))
            .collect();
        let mut decided: HashMap<Uuid, Answer> = HashMap::new();
        for item in batch {
            let inquiry = item.inquiry;
            let waiting = WaitingInquiry {
                message_id: inquiry.message_id,
                peer_county: peer,
                agreement: inquiry.agreement.clone(),
                kind: inquiry.kind,
                subject: inquiry.subject.clone(),
            };
            if let Some(answer) = decide(&waiting, registered.get(&inquiry.subject.resident_id)) {
                decided.insert(inquiry.message_id, answer);
            }
        }
        let inline = InlineAnswers {
            answers: decided,
            owed_until,
        };
        let (receipts, mut answers) =
            accept_inquiries_in(&mut tx, peer, day, batch, now, Written::Answered(&inline)).await?;
        // The answers just written go back as written; only a repeat's answer is read back.
        let repeated: Vec<Uuid> = batch
            .iter()
            .zip(&receipts)
            .filter(|(item, receipt)| {
                matches!(receipt, InboundReceipt::Duplicate { .. })
                    && !answers.contains_key(&item.inquiry.message_id)
            })
            .map(|(item, _)| item.inquiry.message_id)
            .collect();
        if !repeated.is_empty() {
            for confirmation in confirmations_in(&mut tx, &repeated, peer).await? {
                answers.insert(confirmation.inquiry_id, confirmation);
            }
        }
        tx.commit().await?;
        Ok(batch
            .iter()
            .zip(receipts)
            .map(|(item, receipt)| {
                let answer = match receipt {
                    InboundReceipt::Accepted { .. } | InboundReceipt::Duplicate { .. } => {
                        answers.get(&item.inquiry.message_id).cloned()
                    }
                    InboundReceipt::OverDailyCap { .. } | InboundReceipt::IdTaken => None,
                };
                (receipt, answer)
            })
            .collect())
    }

    /// The asker acknowledges answers it received inline: each that is an answer of ours to an
    /// inquiry of `peer`'s is marked delivered and leaves the outbox. Returns, per id, whether
    /// it was one.
    pub async fn acknowledge_inline_answers(
        &self,
        peer: CountyCode,
        ids: &[Uuid],
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let known: Vec<Uuid> = sqlx::query_scalar(
            // The ids are looked up by primary key alone (materialized, so that the peer's
            // condition cannot lead a generic plan through every confirmation to the peer).
            "WITH asked AS MATERIALIZED (
                 SELECT message_id, direction, peer_county FROM confirmations WHERE message_id = ANY($1)
             )
             UPDATE confirmations c SET delivered_at = coalesce(c.delivered_at, now())
             FROM asked
             WHERE c.message_id = asked.message_id AND asked.direction = 'outbound' AND asked.peer_county = $2
             RETURNING c.message_id",
        )
        .bind(ids)
        .bind(peer.as_str())
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM outbox WHERE message_id = ANY($1) AND message_type = 'confirmation'")
            .bind(&known)
            .execute(&mut *tx)
            .await?;
        let audit = confirmations_delivered(
            peer,
            &known,
            Some("acknowledged by the asker after the inline answer"),
        );
        audit_batch_in(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(ids.iter().map(|id| known.contains(id)).collect())
    }

    /// The asker records the peer's receipts for its inquiries and the answers the peer gave
    /// inline, in one transaction (under the clerk's statement timeout when `clerk_waits`). One
    /// receipt per answer, in order.
    pub async fn record_inline_answers(
        &self,
        peer: CountyCode,
        verdicts: &[InquiryVerdict],
        confirmations: &[Confirmation],
        clerk_waits: bool,
    ) -> Result<Vec<ConfirmationReceipt>, StoreError> {
        let mut tx = self.pool().begin().await?;
        if clerk_waits {
            self.limit(&mut tx, Work::Clerk).await?;
        }
        if confirmations.is_empty() {
            record_verdicts_in(&mut tx, peer, verdicts).await?;
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // Every inquiry concerned is locked first, in key order, as each intake of receipts
        // and answers locks them; an answered inquiry then takes its receipt and its answer in
        // one row update.
        let mut ids: Vec<Uuid> = verdicts.iter().map(InquiryVerdict::message_id).collect();
        ids.extend(confirmations.iter().map(|c| c.inquiry_id));
        let states = lock_outbound_inquiries_in(&mut tx, peer, &ids).await?;
        let times: ReceiptTimes = verdicts
            .iter()
            .filter_map(|verdict| match verdict {
                InquiryVerdict::Accepted {
                    message_id,
                    received_at,
                    due_at,
                } => Some((*message_id, (*received_at, *due_at))),
                InquiryVerdict::Rejected { .. } => None,
            })
            .collect();
        let receipts = accept_confirmations_locked_in(&mut tx, peer, confirmations, states, &times).await?;
        let answered: HashSet<Uuid> = confirmations
            .iter()
            .zip(&receipts)
            .filter(|(_, receipt)| **receipt == ConfirmationReceipt::Accepted)
            .map(|(confirmation, _)| confirmation.inquiry_id)
            .collect();
        record_verdicts_locked_in(&mut tx, peer, verdicts, &answered).await?;
        tx.commit().await?;
        Ok(receipts)
    }
}

/// Our answers to inquiries `inquiry_ids` from `peer`, read inside the transaction that
/// stores their repeats.
async fn confirmations_in(
    tx: &mut sqlx::PgConnection,
    inquiry_ids: &[Uuid],
    peer: CountyCode,
) -> Result<Vec<Confirmation>, StoreError> {
    let rows: Vec<ConfirmationRow> = sqlx::query_as(
        "SELECT message_id, inquiry_id, agreement_id, agreement_hash, outcome, fields, created_at
         FROM confirmations WHERE inquiry_id = ANY($1) AND direction = 'outbound' AND peer_county = $2",
    )
    .bind(inquiry_ids)
    .bind(peer.as_str())
    .fetch_all(&mut *tx)
    .await?;
    rows.into_iter().map(ConfirmationRow::into_domain).collect()
}
