//! Feedback (反馈) to notices: ours, given by an operator to a notice a peer sent us that owes
//! it, sent through the outbox like every message; and the peers', received through the one
//! intake against the notices we sent them.

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use tracing::{info, instrument};
use uuid::Uuid;

use super::notify::RECEIPT_POLL;
use super::receive::{Inbound, Stored, id_taken};
use super::{Node, SendError};
use crate::domain::division::CountyCode;
use crate::domain::feedback::{Feedback, FeedbackOutcome};
use crate::domain::message::{AgreementRef, Direction, Incoming};
use crate::domain::policy::{AgreementBook, Rejection, RejectionCode};
use crate::domain::vocabulary::NoticeKind;
use crate::store::StoreError;
use crate::store::feedback::{FeedbackReceipt, FeedbackRecord, QueuedFeedback};

pub use crate::domain::message::Accepted;

/// Feedback before it is given an id and an agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackDraft {
    /// The notice answered (one a peer sent us).
    pub notice_id: Uuid,
    /// What we did.
    pub outcome: FeedbackOutcome,
    /// A short note ([`crate::domain::feedback::parse_note`]).
    pub note: Option<String>,
    /// A caller-chosen id (UUID v7), for idempotent resends.
    pub message_id: Option<Uuid>,
}

/// Where our feedback stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackOutcomeSent {
    /// Its id.
    pub message_id: Uuid,
    /// `delivered`, `queued` or `rejected`.
    pub state: &'static str,
    /// When the notice's sender received it.
    pub received_at: Option<DateTime<Utc>>,
    /// Why it was refused.
    pub note: Option<String>,
    /// The id was stored before: this is its first result.
    pub repeat: bool,
}

impl Node {
    /// Gives feedback to a notice a peer sent us. Refused with nothing stored when the notice
    /// is not one we received (`NOT_FOUND`), does not owe feedback (`FAILED_PRECONDITION`), or
    /// was answered by other feedback (`ALREADY_EXISTS`); a repeat of the same feedback id
    /// returns the first result. Waits up to `wait` for the peer's receipt.
    #[instrument(skip_all, fields(notice = %draft.notice_id))]
    pub async fn give_feedback(
        &self,
        draft: FeedbackDraft,
        wait: Duration,
    ) -> Result<FeedbackOutcomeSent, SendError> {
        let notice_id = draft.notice_id;
        let not_ours = || {
            SendError::Refused(Rejection::new(
                RejectionCode::NotFound,
                format!(
                    "no notice {notice_id} received from a peer: feedback answers a notice a peer sent us"
                ),
            ))
        };
        let notice = self
            .store
            .notice(notice_id)
            .await?
            .filter(|record| record.message_id == notice_id)
            .ok_or_else(not_ours)?;
        if notice.direction()? != Direction::Inbound {
            return Err(not_ours());
        }
        let peer: CountyCode = crate::store::parsed(&notice.peer_county)?;
        let kind: NoticeKind = crate::store::parsed(&notice.kind)?;
        let agreement = AgreementRef {
            id: notice.agreement_id.clone(),
            hash: notice.agreement_hash.clone(),
        };
        self.agreements()
            .check_feedback_owed(&agreement, peer, self.county(), kind)
            .map_err(SendError::Refused)?;
        let feedback = Feedback {
            message_id: draft.message_id.unwrap_or_else(Uuid::now_v7),
            notice_id,
            agreement,
            outcome: draft.outcome,
            note: draft.note,
            answered_at: Utc::now().trunc_subsecs(6),
        };
        let id = feedback.message_id;
        let repeat = match self.store.queue_outbound_feedback(peer, &feedback).await? {
            QueuedFeedback::New => {
                info!(message_id = %id, "feedback queued");
                self.wake_delivery();
                false
            }
            QueuedFeedback::Repeat => true,
            QueuedFeedback::AlreadyAnswered(first) => {
                return Err(SendError::Refused(Rejection::new(
                    RejectionCode::AlreadyExists,
                    format!("notice {notice_id} was answered already, by feedback {first}"),
                )));
            }
            QueuedFeedback::IdTaken => {
                return Err(SendError::Refused(Rejection::new(
                    RejectionCode::AlreadyExists,
                    format!("message id {id} is already used by another message"),
                )));
            }
        };
        let record = self.await_feedback_receipt(id, wait).await?;
        Ok(FeedbackOutcomeSent {
            message_id: id,
            state: record.state(),
            received_at: record.acknowledged_at,
            note: record.reject_reason,
            repeat,
        })
    }

    async fn await_feedback_receipt(&self, id: Uuid, wait: Duration) -> Result<FeedbackRecord, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            let record = self.store.feedback(id).await?.ok_or(StoreError::NotFound)?;
            if record.state() != "queued" || Instant::now() >= deadline {
                return Ok(record);
            }
            tokio::time::sleep(RECEIPT_POLL).await;
        }
    }

    /// Receives feedback `peer` gives to notices we sent it.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub async fn receive_feedback(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Feedback>>,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        Ok(self.intake(peer, batch).await?.results)
    }
}

// === impl Inbound for Feedback ===

impl Inbound for Feedback {
    type Terms = ();
    type Receipt = Accepted;

    const UNREADABLE_KIND: Option<&'static str> = Some("feedback");

    fn message_id(&self) -> Uuid {
        self.message_id
    }

    fn audit_kind(&self) -> &'static str {
        "feedback"
    }

    fn agreement(&self) -> &AgreementRef {
        &self.agreement
    }

    /// Feedback travels under its notice's agreement, from the notice's receiver (the caller)
    /// to us: the version must be one we hold, the caller a party, and the agreement must let
    /// us send it notices. That the notice is ours to the caller is the store's check.
    fn check(&self, book: &AgreementBook, peer: CountyCode, _now: DateTime<Utc>) -> Result<(), Rejection> {
        let agreement = book.pinned(&self.agreement)?;
        if !agreement.is_party(peer) || agreement.direction(book.me(), peer).is_none() {
            return Err(Rejection::new(
                RejectionCode::PermissionDenied,
                format!(
                    "agreement {} allows no notices from {} to {peer}, so no feedback to them",
                    agreement.id(),
                    book.me()
                ),
            ));
        }
        Ok(())
    }

    async fn store(
        node: &Node,
        peer: CountyCode,
        checked: &[(&Feedback, ())],
        now: DateTime<Utc>,
    ) -> Result<Vec<Stored<Accepted>>, StoreError> {
        let batch: Vec<&Feedback> = checked.iter().map(|(feedback, ())| *feedback).collect();
        let receipts = node.store().accept_inbound_feedback(peer, &batch, now).await?;
        Ok(receipts
            .into_iter()
            .zip(batch)
            .map(|(receipt, feedback)| match receipt {
                FeedbackReceipt::Accepted(received_at) => Stored::New(Accepted {
                    received_at,
                    due_at: None,
                }),
                FeedbackReceipt::Duplicate(received_at) => Stored::Repeat(Accepted {
                    received_at,
                    due_at: None,
                }),
                FeedbackReceipt::UnknownNotice => Stored::Refused(Rejection::new(
                    RejectionCode::NotFound,
                    format!(
                        "no notice {} was sent to {peer} under agreement {}",
                        feedback.notice_id, feedback.agreement.id
                    ),
                )),
                FeedbackReceipt::AlreadyAnswered => Stored::Refused(Rejection::new(
                    RejectionCode::AlreadyExists,
                    format!("notice {} has feedback already", feedback.notice_id),
                )),
                FeedbackReceipt::IdTaken => Stored::Refused(id_taken()),
            })
            .collect())
    }
}
