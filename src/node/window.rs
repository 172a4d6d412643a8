//! The responder's half of answers inline: an inquiry sent while a clerk waits, or a batch whose
//! asker takes answers in the receipts, is stored and, when the registry settles it, answered in
//! the same commit, and the answer goes straight back. It stays owed in the outbox until the
//! asker acknowledges it, so a crash on either side loses nothing; once acknowledged, it is
//! never sent again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, instrument};
use uuid::Uuid;

use super::receive::{Inbound, Incoming, InquiryTerms, Stored, stored_inquiry};
use super::{Accepted, Node, china_date};
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Confirmation, Inquiry};
use crate::domain::policy::{AgreementBook, Rejection, RejectionCode};
use crate::store::StoreError;
use crate::store::inbound::InboundInquiry;
use crate::store::window::InlineTerms;

/// The receipt for an inquiry sent while a clerk waits, and its answer when it has one.
pub type WindowReply = Result<(Accepted, Option<Confirmation>), Rejection>;

/// An inquiry whose asker takes its answer inline (a clerk waiting, or a batch sent with
/// `answer_inline`): checked as any inquiry, stored with its automatic answer in one commit.
pub(super) struct AnsweredInline {
    /// The inquiry.
    inquiry: Inquiry,
    /// Whether a clerk waits for the answer (one inquiry at a window) rather than a batch.
    clerk_waits: bool,
}

impl Inbound for AnsweredInline {
    type Terms = InquiryTerms;
    type Receipt = (Accepted, Option<Confirmation>);

    const UNREADABLE_KIND: Option<&'static str> = <Inquiry as Inbound>::UNREADABLE_KIND;

    fn message_id(&self) -> Uuid {
        self.inquiry.message_id
    }

    fn audit_kind(&self) -> &'static str {
        Inbound::audit_kind(&self.inquiry)
    }

    fn agreement(&self) -> &AgreementRef {
        &self.inquiry.agreement
    }

    fn check(
        &self,
        book: &AgreementBook,
        peer: CountyCode,
        now: DateTime<Utc>,
    ) -> Result<InquiryTerms, Rejection> {
        self.inquiry.check(book, peer, now)
    }

    async fn store(
        node: &Node,
        peer: CountyCode,
        checked: &[(&AnsweredInline, InquiryTerms)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Stored<Self::Receipt>>, StoreError> {
        let batch: Vec<InboundInquiry<'_>> = checked
            .iter()
            .map(|&(inquiry, terms)| InboundInquiry {
                inquiry: &inquiry.inquiry,
                due_at: terms.due_at,
                daily_cap: terms.daily_cap,
            })
            .collect();
        let terms = InlineTerms {
            owed_until: Utc::now()
                + chrono::Duration::from_std(node.limits().inline_answer_grace)
                    .unwrap_or(chrono::Duration::MAX),
            clerk_waits: checked.iter().any(|(inquiry, _)| inquiry.clerk_waits),
        };
        let book = node.agreements();
        let decide = node.registry_answerer(&book, china_date(now));
        let stored = node
            .store()
            .accept_and_answer_inquiries(peer, china_date(now), &batch, now, terms, decide)
            .await?;
        let stored: Vec<Stored<Self::Receipt>> = stored
            .into_iter()
            .map(|(receipt, answer)| stored_inquiry(receipt).map(|accepted| (accepted, answer)))
            .collect();
        // Answers given now, not the stored ones a repeat carries back.
        let answered = stored
            .iter()
            .filter(|result| matches!(result, Stored::New((_, Some(_)))))
            .count();
        node.metrics().auto_answered(answered);
        Ok(stored)
    }
}

impl Node {
    /// Receives a batch of inquiries from `peer` whose asker takes the answers inline: each
    /// accepted inquiry the registry settles under an agreement allowing automatic answers is
    /// answered in the commit that stores it, and its answer returned with its receipt. The
    /// rest wait for an operator. One result per inquiry, in order.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub async fn receive_inquiries_answered_inline(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
    ) -> Result<Vec<WindowReply>, StoreError> {
        let batch = batch
            .into_iter()
            .map(|item| {
                item.map(|inquiry| AnsweredInline {
                    inquiry,
                    clerk_waits: false,
                })
            })
            .collect();
        let received = self.intake(peer, batch).await?;
        if received.new > 0 {
            info!(accepted = received.new, "inquiries accepted, answered inline");
        }
        Ok(received.results)
    }

    /// Receives one inquiry from `peer` whose clerk waits up to `wait`: with a wait, it is
    /// stored and answered from the registry in one commit when the agreement allows an
    /// automatic answer; one left for an operator returns at once without an answer. Without a
    /// wait, it takes the ordinary path (the auto-answer worker answers it).
    #[instrument(skip_all, fields(peer = %peer))]
    pub async fn receive_window_inquiry(
        &self,
        peer: CountyCode,
        incoming: Incoming<Inquiry>,
        wait: Duration,
    ) -> Result<WindowReply, StoreError> {
        let mut results = if wait.is_zero() {
            self.receive_inquiries(peer, vec![incoming])
                .await?
                .into_iter()
                .map(|result| result.map(|accepted| (accepted, None)))
                .collect()
        } else {
            let batch = vec![incoming.map(|inquiry| AnsweredInline {
                inquiry,
                clerk_waits: true,
            })];
            self.intake(peer, batch).await?.results
        };
        results
            .pop()
            .ok_or_else(|| StoreError::Corrupt("no receipt for the inquiry".into()))
    }

    /// The asker stored these answers, which it received inline: they need not be sent again.
    /// One result per id, in order: `NOT_FOUND` for an id that is not an answer we owe `peer`.
    #[instrument(skip_all, fields(peer = %peer, count = ids.len()))]
    pub async fn acknowledge_inline_answers(
        &self,
        peer: CountyCode,
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
