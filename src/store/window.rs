//! The clerk's path (a clerk at a window, waiting): each side commits once where it can. The
//! responder stores the inquiry and its automatic answer in one transaction; the asker stores
//! the peer's receipt and the inline answer in one; an answer given inline stays owed in the
//! responder's outbox until the asker acknowledges it.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::answers::{Answer, WaitingInquiry, auto_answer_in};
use super::inbound::{
    ConfirmationReceipt, InboundInquiry, InboundReceipt, accept_confirmations_in, accept_inquiries_in,
};
use super::outbound::{ConfirmationRow, InquiryVerdict, confirmations_delivered, record_verdicts_in};
use super::{Store, StoreError, Work, audit_batch_in};
use crate::domain::division::CountyCode;
use crate::domain::message::Confirmation;
use crate::domain::person::Person;

impl Store {
    /// Stores one inquiry from `peer` and, when `decide` answers it from the registry, the
    /// answer too, in one transaction. The answer's outbox entry comes due at `owed_until`: it
    /// goes back inline now, and is sent in full only if the asker has not acknowledged it by
    /// then. A repeated inquiry returns its first receipt and the answer it got, if any.
    pub async fn accept_and_answer_inquiry<F>(
        &self,
        peer: CountyCode,
        day: NaiveDate,
        inquiry: &InboundInquiry<'_>,
        now: DateTime<Utc>,
        owed_until: DateTime<Utc>,
        decide: F,
    ) -> Result<(InboundReceipt, Option<Confirmation>), StoreError>
    where
        F: Fn(&WaitingInquiry, Option<&Person>) -> Option<Answer>,
    {
        let id = inquiry.inquiry.message_id;
        let mut tx = self.pool().begin().await?;
        self.limit(&mut tx, Work::Clerk).await?;
        let receipt = accept_inquiries_in(&mut tx, peer, day, std::slice::from_ref(inquiry), now)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("no receipt for the inquiry just stored".into()))?;
        let confirmation = match receipt {
            // The answer just written goes back as written; nothing is read back.
            InboundReceipt::Accepted { .. } => {
                auto_answer_in(&mut tx, 1, Some(id), now, Some(owed_until), decide)
                    .await?
                    .pop()
                    .map(|given| given.confirmation)
            }
            InboundReceipt::Duplicate { .. } => confirmation_in(&mut tx, id, peer).await?,
            InboundReceipt::OverDailyCap { .. } | InboundReceipt::IdTaken => None,
        };
        tx.commit().await?;
        Ok((receipt, confirmation))
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

    /// The asker records the peer's receipt for its inquiry and, when the peer answered inline,
    /// the answer, in one transaction.
    pub async fn record_inline_answer(
        &self,
        peer: CountyCode,
        verdict: &InquiryVerdict,
        confirmation: Option<&Confirmation>,
    ) -> Result<Option<ConfirmationReceipt>, StoreError> {
        let mut tx = self.pool().begin().await?;
        self.limit(&mut tx, Work::Clerk).await?;
        record_verdicts_in(&mut tx, peer, std::slice::from_ref(verdict)).await?;
        let receipt = match confirmation {
            Some(confirmation) => accept_confirmations_in(&mut tx, peer, std::slice::from_ref(confirmation))
                .await?
                .pop(),
            None => None,
        };
        tx.commit().await?;
        Ok(receipt)
    }
}

/// The answer to inquiry `inquiry_id` from `peer`, read inside the transaction that wrote it.
async fn confirmation_in(
    tx: &mut sqlx::PgConnection,
    inquiry_id: Uuid,
    peer: CountyCode,
) -> Result<Option<Confirmation>, StoreError> {
    let row: Option<ConfirmationRow> = sqlx::query_as(
        "SELECT message_id, inquiry_id, agreement_id, agreement_hash, outcome, fields, created_at
         FROM confirmations WHERE inquiry_id = $1 AND direction = 'outbound' AND peer_county = $2",
    )
    .bind(inquiry_id)
    .bind(peer.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    row.map(ConfirmationRow::into_domain).transpose()
}
