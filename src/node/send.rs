//! Sending our own inquiries: checked against the agreement here first (the sender refuses
//! locally what the agreement does not allow), then written with their outbox entries in one
//! transaction for the delivery worker — or, for a clerk waiting at a window, sent at once.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{debug, info, instrument};
use uuid::Uuid;

use super::Node;
use super::deliver::Attempt;
use crate::domain::delivery::{CallFailure, Outcome};
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::message::{AgreementRef, Confirmation, Inquiry, InquiryState, MessageType, Subject};
use crate::domain::policy::Rejection;
use crate::domain::vocabulary::{InquiryKind, MessageKind, Priority};
use crate::store::StoreError;
use crate::store::outbound::InquiryVerdict;

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
    /// The inquiry's id.
    pub message_id: Uuid,
    /// Where it stands now: `Answered`, `Pending` (the peer holds it), `Queued` (it waits in
    /// our outbox: peer unreachable, or held) or `Rejected`.
    pub state: InquiryState,
    /// The peer's reply deadline, once the peer accepted it.
    pub due_at: Option<DateTime<Utc>>,
    /// The answer, when it arrived within the wait.
    pub confirmation: Option<Confirmation>,
    /// Why the peer refused it, or why it still waits in the outbox.
    pub note: Option<String>,
}

/// How many times a clerk's inquiry goes again when the connection was lost under it.
const WINDOW_RESENDS: u32 = 2;

/// The pause before it goes again: the channel learns its connection is gone within
/// milliseconds, and a copy sent before then would go down the dead connection too.
const WINDOW_RESEND_PAUSE: Duration = Duration::from_millis(100);

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
        let (inquiries, inserted) = self.queue(peer, drafts, None, None, Duration::ZERO).await?;
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
        let queued = self
            .queue(peer, drafts, Some(sweep_key), None, Duration::ZERO)
            .await?;
        self.wake_delivery();
        Ok(queued)
    }

    async fn queue(
        &self,
        peer: CountyCode,
        drafts: Vec<InquiryDraft>,
        sweep_key: Option<&str>,
        office: Option<TownshipCode>,
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
            .queue_outbound_inquiries(peer, &inquiries, sweep_key, office, hold)
            .await?;
        info!(new = inserted.len(), "inquiries queued");
        Ok((inquiries, inserted))
    }

    /// Sends one inquiry now and waits up to `wait` for the answer (a clerk at a window). The
    /// inquiry is stored with its outbox entry first, so if the peer cannot be reached it is
    /// delivered later by the worker; nothing is lost either way. After the call, the receipt
    /// and the inline answer are stored in one commit, and the peer is told (off the clerk's
    /// path) that the answer need not come again.
    #[instrument(skip_all, fields(peer = %peer))]
    pub async fn ask(
        &self,
        peer: CountyCode,
        draft: InquiryDraft,
        wait: Duration,
    ) -> Result<AskOutcome, SendError> {
        self.ask_for(peer, draft, wait, None).await
    }

    /// [`Node::ask`] on behalf of the township office `office` (a clerk at its window), which
    /// the inquiry then belongs to: that office finds it again, other offices do not.
    pub async fn ask_for(
        &self,
        peer: CountyCode,
        draft: InquiryDraft,
        wait: Duration,
        office: Option<TownshipCode>,
    ) -> Result<AskOutcome, SendError> {
        let started = Instant::now();
        let outcome = self.ask_at_window(peer, draft, wait, office).await;
        self.metrics.clerk_ask(started.elapsed());
        outcome
    }

    /// [`Node::ask_for`], untimed.
    async fn ask_at_window(
        &self,
        peer: CountyCode,
        draft: InquiryDraft,
        wait: Duration,
        office: Option<TownshipCode>,
    ) -> Result<AskOutcome, SendError> {
        let link = self.peer_link(peer);
        // While we send it ourselves, the delivery worker leaves the inquiry alone (sending it
        // twice at once only makes the peer answer a duplicate).
        // The hold outlasts the call's own timeout (the same wait and margin, started a little
        // later) by one more margin.
        // A peer whose circuit is open is not called while the clerk waits: the inquiry is
        // queued at once and goes out when a probe finds the peer again.
        let circuit_open = self.circuit(peer).is_open();
        let link = link.filter(|_| !circuit_open);
        let hold = match link {
            Some(_) => wait + self.limits.call_margin * 2,
            None => Duration::ZERO,
        };
        let (mut inquiries, new) = self.queue(peer, vec![draft], None, office, hold).await?;
        let inquiry = inquiries
            .pop()
            .ok_or_else(|| StoreError::Corrupt("the inquiry just queued is missing".into()))?;
        let id = inquiry.message_id;
        if !new.contains(&id) {
            // A caller-chosen id already stored: this is a repeat (or a clash), never sent a
            // second time from here; the inquiry as stored says where it stands.
            return self.stored_outcome(id).await;
        }
        let queued = |note: Option<String>| AskOutcome {
            message_id: id,
            state: InquiryState::Queued,
            due_at: None,
            confirmation: None,
            note,
        };
        let Some(link) = link else {
            self.wake_delivery();
            if circuit_open {
                return Ok(queued(Some(format!(
                    "{peer} cannot be reached at the moment; delivered as soon as it can"
                ))));
            }
            return Ok(queued(Some(format!(
                "no address is configured for {peer}; delivered when it is"
            ))));
        };
        let on_the_wire = Instant::now();
        let mut reply = link.submit_inquiry(&inquiry, wait).await;
        // A connection lost under the call (one of the peer's replicas behind its load balancer
        // died, a link was reset) says nothing about the inquiry: while the clerk's wait lasts
        // it goes again, over a new connection, which the balancer hands to a live replica.
        // The peer knows it by its id: if the first copy was stored, it returns that receipt
        // and answer. A short pause first lets the channel see its connection gone; a peer
        // that is down costs the clerk a few refused connections, and one that does not answer
        // has used up the wait already.
        let mut resends = 0;
        while let Err(failure @ CallFailure::Unreachable(_)) = &reply
            && resends < WINDOW_RESENDS
            && let Some(left) = wait.checked_sub(on_the_wire.elapsed() + WINDOW_RESEND_PAUSE)
            && !left.is_zero()
        {
            resends += 1;
            info!(cause = %failure.describe(), resends, "the clerk's inquiry goes again on a new connection");
            tokio::time::sleep(WINDOW_RESEND_PAUSE).await;
            reply = link.submit_inquiry(&inquiry, left).await;
        }
        self.metrics.peer_round_trip(on_the_wire.elapsed());
        let reply = match reply {
            Ok(reply) => reply,
            Err(failure) => {
                let outcome = Outcome::of_failure(&failure);
                self.record_one(peer, id, outcome).await?;
                self.wake_delivery();
                return Ok(queued(Some(failure.describe().to_string())));
            }
        };
        let (received_at, due_at) = match Outcome::of_verdict(&reply.verdict) {
            delivered @ Outcome::Delivered { received_at, due_at } => {
                self.metrics.deliveries(peer, [&delivered]);
                (received_at.unwrap_or_else(Utc::now), due_at)
            }
            outcome => {
                let state = match outcome {
                    Outcome::Final(_) => InquiryState::Rejected,
                    _ => InquiryState::Queued,
                };
                let note = outcome.why_not_delivered();
                self.record_one(peer, id, outcome).await?;
                return Ok(AskOutcome {
                    state,
                    ..queued(note)
                });
            }
        };
        let verdict = InquiryVerdict::Accepted {
            message_id: id,
            received_at,
            due_at,
        };
        let had_answer = reply.confirmation.is_some();
        let pending = AskOutcome {
            state: InquiryState::Pending,
            due_at,
            ..queued(None)
        };
        let answered = self
            .record_receipts_and_answers(peer, &[verdict], reply.confirmation.into_iter().collect(), true)
            .await?;
        let Some(confirmation) = answered.into_iter().next() else {
            if had_answer {
                // The answer was refused (and audited), or our intake did not take it (already
                // answered otherwise, or not ours): the clerk sees what is stored, and the peer
                // is not told it was.
                return self.stored_outcome(id).await;
            }
            return Ok(pending);
        };
        // Off the clerk's path: if this is lost, the peer sends the answer again after its
        // grace period and our intake takes it as a duplicate.
        let ack = confirmation.message_id;
        tokio::spawn(async move {
            if let Err(failure) = link.acknowledge_confirmations(&[ack]).await {
                debug!(
                    error = %failure.describe(),
                    "acknowledging an inline answer failed; the peer will send it again"
                );
            }
        });
        Ok(AskOutcome {
            state: InquiryState::Answered,
            confirmation: Some(confirmation),
            ..pending
        })
    }

    /// Where an inquiry we sent stands, as stored, with its answer if it has one.
    async fn stored_outcome(&self, id: Uuid) -> Result<AskOutcome, SendError> {
        let record = self.store.inquiry(id).await?.ok_or(StoreError::NotFound)?;
        let confirmation = self.store.confirmation_for(id).await?;
        Ok(AskOutcome {
            message_id: id,
            state: record.state,
            due_at: record.due_at,
            confirmation,
            note: record.reject_reason,
        })
    }

    /// Records the outcome of the one inquiry the clerk's path sent.
    async fn record_one(&self, peer: CountyCode, id: Uuid, outcome: Outcome) -> Result<(), StoreError> {
        let attempt = Attempt {
            message_id: id,
            attempts: 1,
            outcome,
        };
        let retry_at = self.peer_retry_at(peer);
        self.record_attempts(peer, MessageType::Inquiry, &[attempt], Vec::new(), retry_at)
            .await?;
        Ok(())
    }
}
