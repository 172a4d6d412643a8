//! Sending our own inquiries: checked against the agreement here first (the sender refuses
//! locally what the agreement does not allow), then written with their outbox entries in one
//! transaction for the delivery worker — or, for a clerk waiting at a window, sent at once.

use std::time::Duration;

use chrono::Utc;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use super::Node;
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Confirmation, Inquiry, Subject};
use crate::domain::policy::Rejection;
use crate::domain::vocabulary::{InquiryKind, MessageKind, Priority};
use crate::exchange::convert::{confirmation_from_wire, inquiry_to_wire, timestamp_from_wire};
use crate::proto::exchange as pb;
use crate::store::StoreError;
use crate::store::outbound::InquiryVerdict;
use crate::store::queries::InquiryRecord;

/// An inquiry before it is given an id and an agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InquiryDraft {
    /// What to ask.
    pub kind: InquiryKind,
    /// Urgent for key subjects.
    pub priority: Priority,
    /// About whom.
    pub subject: Subject,
    /// A caller-chosen id (UUID v7), so that resubmitting the same draft adds nothing; a new
    /// one is generated when absent.
    pub message_id: Option<Uuid>,
}

/// Why our inquiries could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The agreement with that peer does not allow it.
    #[error("{}", .0.reason)]
    Refused(Rejection),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of an inquiry sent while the caller waited.
#[derive(Clone, Debug)]
pub struct AskOutcome {
    /// The inquiry as stored now (state `answered`, `pending`, `queued` or `rejected`).
    pub inquiry: InquiryRecord,
    /// The answer, when it arrived within the wait.
    pub confirmation: Option<Confirmation>,
}

impl Node {
    /// Queues inquiries to `peer` for delivery. All are refused if the agreement does not allow
    /// any one of them; nothing is written then. Returns the inquiries as built (ids and
    /// agreement filled in) and how many were new.
    #[instrument(skip_all, fields(peer = %peer, count = drafts.len()))]
    pub async fn send_inquiries(
        &self,
        peer: CountyCode,
        drafts: Vec<InquiryDraft>,
    ) -> Result<(Vec<Inquiry>, u64), SendError> {
        let (inquiries, inserted) = self.queue(peer, drafts, None, Duration::ZERO).await?;
        self.wake_delivery();
        Ok((inquiries, inserted.len() as u64))
    }

    /// Queues a sweep: like [`Node::send_inquiries`], but a subject already asked under the same
    /// `sweep_key` is skipped, so re-running a sweep file adds nothing. Returns the inquiries
    /// built and the ids that were new.
    pub async fn send_sweep(
        &self,
        peer: CountyCode,
        drafts: Vec<InquiryDraft>,
        sweep_key: &str,
    ) -> Result<(Vec<Inquiry>, Vec<Uuid>), SendError> {
        let queued = self.queue(peer, drafts, Some(sweep_key), Duration::ZERO).await?;
        self.wake_delivery();
        Ok(queued)
    }

    async fn queue(
        &self,
        peer: CountyCode,
        drafts: Vec<InquiryDraft>,
        sweep_key: Option<&str>,
        hold: Duration,
    ) -> Result<(Vec<Inquiry>, Vec<Uuid>), SendError> {
        let now = Utc::now();
        let book = self.agreements();
        let mut inquiries = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let (agreement, _) = book
                .check_outbound(peer, MessageKind::Inquiry(draft.kind), now)
                .map_err(SendError::Refused)?;
            inquiries.push(Inquiry {
                message_id: draft.message_id.unwrap_or_else(Uuid::now_v7),
                agreement: AgreementRef {
                    id: agreement.id().to_string(),
                    hash: agreement.canonical_hash().as_str().to_string(),
                },
                kind: draft.kind,
                priority: draft.priority,
                subject: draft.subject,
            });
        }
        let inserted = self
            .store
            .queue_outbound_inquiries(peer, &inquiries, sweep_key, hold)
            .await?;
        info!(new = inserted.len(), "inquiries queued");
        Ok((inquiries, inserted))
    }

    /// Sends one inquiry now and waits up to `wait` for the answer (a clerk at a window). The
    /// inquiry is stored with its outbox entry first, so if the peer cannot be reached it is
    /// delivered later by the worker; nothing is lost either way.
    #[instrument(skip_all, fields(peer = %peer))]
    pub async fn ask(
        &self,
        peer: CountyCode,
        draft: InquiryDraft,
        wait: Duration,
    ) -> Result<AskOutcome, SendError> {
        let client = self.peer_client(peer);
        // While we send it ourselves, the delivery worker leaves the inquiry alone (sending it
        // twice at once only makes the peer answer a duplicate).
        let call_timeout = wait + Duration::from_secs(5);
        let hold = if client.is_some() {
            call_timeout
        } else {
            Duration::ZERO
        };
        let (mut inquiries, _) = self.queue(peer, vec![draft], None, hold).await?;
        let inquiry = inquiries.pop().expect("one inquiry queued");
        let id = inquiry.message_id;
        match client {
            Some(mut client) => {
                let mut request = tonic::Request::new(pb::SubmitInquiryRequest {
                    inquiry: Some(inquiry_to_wire(&inquiry)),
                    wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
                });
                request.set_timeout(call_timeout);
                match client.submit_inquiry(request).await {
                    Ok(response) => self.record_inline(peer, id, response.into_inner()).await?,
                    Err(status) if is_permanent(&status) => {
                        let reason = format!("{}: {}", status.code().description(), status.message());
                        let verdict = InquiryVerdict::Rejected {
                            message_id: id,
                            reason,
                        };
                        self.store.record_inquiry_verdicts(peer, &[verdict]).await?;
                    }
                    Err(status) => {
                        warn!(%status, "peer not reachable now; the inquiry waits in the outbox");
                        let reason = format!("{}: {}", status.code().description(), status.message());
                        self.store.reschedule_outbox(&[id], &reason, Utc::now()).await?;
                        self.wake_delivery();
                    }
                }
            }
            None => self.wake_delivery(),
        }
        let record = self.store.inquiry(id).await?.ok_or(StoreError::NotFound)?;
        let confirmation = self.store.confirmation_for(id).await?;
        Ok(AskOutcome {
            inquiry: record,
            confirmation,
        })
    }

    async fn record_inline(
        &self,
        peer: CountyCode,
        id: Uuid,
        response: pb::SubmitInquiryResponse,
    ) -> Result<(), SendError> {
        let accepted = response.accepted.unwrap_or_default();
        let verdict = InquiryVerdict::Accepted {
            message_id: id,
            received_at: accepted
                .received_at
                .as_ref()
                .and_then(timestamp_from_wire)
                .unwrap_or_else(Utc::now),
            due_at: accepted.due_at.as_ref().and_then(timestamp_from_wire),
        };
        self.store.record_inquiry_verdicts(peer, &[verdict]).await?;
        if let Some(wire) = response.confirmation {
            let confirmation = confirmation_from_wire(&wire, "confirmation")
                .map_err(|violations| (wire.message_id.parse().ok(), violations));
            let results = self.receive_confirmations(peer, vec![confirmation]).await?;
            if let Some(Err(rejection)) = results.first() {
                warn!(reason = %rejection.reason, "inline answer refused; the peer will deliver it again");
            }
        }
        Ok(())
    }
}

/// Whether a refusal from the peer is final (retrying the same message cannot help).
fn is_permanent(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::InvalidArgument
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::ResourceExhausted
            | Code::AlreadyExists
            | Code::NotFound
    )
}
