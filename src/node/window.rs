//! The responder's half of the clerk's path: an inquiry sent while a clerk waits is stored and,
//! when the registry settles it, answered in the same commit, and the answer goes straight back.
//! It stays owed in the outbox until the asker acknowledges it, so a crash on either side loses
//! nothing; once acknowledged, it is never sent again.

use std::time::Duration;

use chrono::Utc;
use tracing::instrument;
use uuid::Uuid;

use super::receive::{Inbound, Incoming, now_as_stored, stored_inquiry};
use super::{Accepted, Node, china_date};
use crate::domain::message::{Confirmation, Inquiry};
use crate::domain::policy::{Rejection, RejectionCode};
use crate::store::StoreError;
use crate::store::inbound::InboundInquiry;

/// The receipt for an inquiry sent while a clerk waits, and its answer when it has one.
pub type WindowReply = Result<(Accepted, Option<Confirmation>), Rejection>;

impl Node {
    /// Receives one inquiry from `peer` whose clerk waits up to `wait`: with a wait, it is
    /// stored and answered from the registry in one commit when the agreement allows an
    /// automatic answer; one left for an operator returns at once without an answer. Without a
    /// wait, it takes the ordinary path (the auto-answer worker answers it).
    #[instrument(skip_all, fields(peer = %peer))]
    pub async fn receive_window_inquiry(
        &self,
        peer: crate::domain::division::CountyCode,
        incoming: Incoming<Inquiry>,
        wait: Duration,
    ) -> Result<WindowReply, StoreError> {
        let now = now_as_stored();
        let book = self.agreements();
        let checked = match &incoming {
            Ok(inquiry) if !wait.is_zero() => inquiry.check(&book, peer, now).ok(),
            _ => None,
        };
        let (Ok(inquiry), Some(terms)) = (&incoming, checked) else {
            // Refusals (audited there) and inquiries nobody waits for take the ordinary intake.
            let mut results = self.receive_inquiries(peer, vec![incoming]).await?;
            let result = results
                .pop()
                .ok_or_else(|| StoreError::Corrupt("no receipt for the inquiry".into()))?;
            return Ok(result.map(|accepted| (accepted, None)));
        };
        let item = InboundInquiry {
            inquiry,
            due_at: terms.due_at,
            daily_cap: terms.daily_cap,
        };
        let owed_until = Utc::now()
            + chrono::Duration::from_std(self.limits().inline_answer_grace).unwrap_or(chrono::Duration::MAX);
        let decide = self.registry_answerer(&book, china_date(now));
        let (receipt, confirmation) = self
            .store()
            .accept_and_answer_inquiry(peer, china_date(now), &item, now, owed_until, decide)
            .await?;
        Ok(stored_inquiry(receipt)
            .into_result()
            .map(|accepted| (accepted, confirmation)))
    }

    /// The asker stored these answers, which it received inline: they need not be sent again.
    /// One result per id, in order: `NOT_FOUND` for an id that is not an answer we owe `peer`.
    #[instrument(skip_all, fields(peer = %peer, count = ids.len()))]
    pub async fn acknowledge_inline_answers(
        &self,
        peer: crate::domain::division::CountyCode,
        ids: &[Uuid],
    ) -> Result<Vec<Result<(), Rejection>>, StoreError> {
        let known = self.store().acknowledge_inline_answers(peer, ids).await?;
        Ok(known
            .into_iter()
            .map(|known| {
                if known {
                    Ok(())
                } else {
                    Err(Rejection::new(
                        RejectionCode::NotFound,
                        "no answer of ours to your inquiries has this id",
                    ))
                }
            })
            .collect())
    }
}
