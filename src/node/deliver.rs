//! Recording what became of messages we sent: the one place where a delivery
//! [`Outcome`] turns into stored state, for the clerk's path and the delivery worker alike.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tracing::{debug, warn};
use uuid::Uuid;

use super::Node;
use crate::domain::delivery::Outcome;
use crate::domain::division::CountyCode;
use crate::domain::message::{Confirmation, MessageType};
use crate::peer::InlineConfirmation;
use crate::store::StoreError;
use crate::store::inbound::ConfirmationReceipt;
use crate::store::outbound::InquiryVerdict;
use crate::store::outbox::Failed;

/// One message sent and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The message.
    pub message_id: Uuid,
    /// Attempts so far, this one included; drives the message's own backoff.
    pub attempts: i32,
    /// What became of it.
    pub outcome: Outcome,
}

/// What a round of deliveries did, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The peer holds them.
    pub delivered: usize,
    /// Refused by the peer for good.
    pub refused: usize,
    /// To be tried again after their own backoff (this attempt failed).
    pub deferred: usize,
    /// Waiting for the peer, which could not be reached (with every other message due for it).
    pub unreachable: usize,
    /// Waiting on something named (an agreement version both sides hold).
    pub held: usize,
}

impl DeliveryReport {
    /// Two reports added up.
    pub fn plus(self, other: DeliveryReport) -> DeliveryReport {
        DeliveryReport {
            delivered: self.delivered + other.delivered,
            refused: self.refused + other.refused,
            deferred: self.deferred + other.deferred,
            unreachable: self.unreachable + other.unreachable,
            held: self.held + other.held,
        }
    }

    /// Whether the peer could not be reached.
    pub fn found_peer_unreachable(&self) -> bool {
        self.unreachable > 0
    }

    /// Whether anything was settled for good.
    pub fn settled_any(&self) -> bool {
        self.delivered + self.refused > 0
    }
}

/// What recording a round's outcomes came to.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// The outcomes, counted.
    pub report: DeliveryReport,
    /// The answers the peer gave inline that are stored now (new or repeated): the peer is
    /// told, so that it need not deliver them again.
    pub answers_stored: Vec<Uuid>,
}

impl Node {
    /// Records the peer's receipts for inquiries we sent (`verdicts`) and the answers it gave
    /// inline, in one commit. An answer the agreement does not allow takes the ordinary intake
    /// instead, which refuses and audits it (unacknowledged, the peer delivers it again after
    /// its grace period). Returns the answers now stored, new or repeated. `clerk_waits`: one
    /// inquiry a clerk waits for, under the clerk's statement timeout.
    pub(super) async fn record_receipts_and_answers(
        &self,
        peer: CountyCode,
        verdicts: &[InquiryVerdict],
        answers: Vec<InlineConfirmation>,
        clerk_waits: bool,
    ) -> Result<Vec<Confirmation>, StoreError> {
        let book = self.agreements();
        let (mut allowed, mut refused) = (Vec::new(), Vec::new());
        for answer in answers {
            match answer {
                Ok(confirmation)
                    if book
                        .check_confirmation(peer, &confirmation.agreement, &confirmation.fields)
                        .is_ok() =>
                {
                    allowed.push(confirmation);
                }
                other => refused.push(other),
            }
        }
        let receipts = self
            .store
            .record_inline_answers(peer, verdicts, &allowed, clerk_waits)
            .await?;
        if !refused.is_empty() {
            self.receive_confirmations(peer, refused).await?;
        }
        Ok(allowed
            .into_iter()
            .zip(receipts)
            .filter(|(_, receipt)| {
                matches!(
                    receipt,
                    ConfirmationReceipt::Accepted | ConfirmationReceipt::Duplicate
                )
            })
            .map(|(confirmation, _)| confirmation)
            .collect())
    }

    /// Records the outcomes of messages of one type sent to `peer`. When the peer could not be
    /// reached, every message due for it waits until `peer_retry_at` (one backoff for the peer,
    /// not one per message) and the peer's circuit opens, to be probed at that time; when the
    /// peer was reached, its circuit closes and what the outage held back is due at once; a failed attempt is tried again after the message's own backoff; a
    /// held message when the peer's status changes, or after a status interval at the latest.
    /// `answers` are what the peer answered inline to inquiries it accepted, stored with their
    /// receipts.
    pub async fn record_attempts(
        &self,
        peer: CountyCode,
        message_type: MessageType,
        attempts: &[Attempt],
        answers: Vec<InlineConfirmation>,
        peer_retry_at: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        self.metrics
            .deliveries(peer, attempts.iter().map(|attempt| &attempt.outcome));
        let now = Utc::now();
        let limits = self.limits();
        let mut report = DeliveryReport::default();
        let mut verdicts = Vec::new();
        let mut delivered = Vec::new();
        let mut refused = Vec::new();
        let mut later: HashMap<(DateTime<Utc>, String, Failed), Vec<Uuid>> = HashMap::new();
        let mut unreachable: Option<String> = None;
        let mut answers_stored = Vec::new();
        // One (jittered) time per attempt count, so that a batch retried for one reason is
        // rescheduled in one statement, not one per message.
        let mut retry_at: HashMap<i32, DateTime<Utc>> = HashMap::new();
        for attempt in attempts {
            let id = attempt.message_id;
            match &attempt.outcome {
                Outcome::Delivered { received_at, due_at } => {
                    report.delivered += 1;
                    verdicts.push(InquiryVerdict::Accepted {
                        message_id: id,
                        received_at: received_at.unwrap_or(now),
                        due_at: *due_at,
                    });
                    delivered.push(id);
                }
                Outcome::Final(reason) => {
                    report.refused += 1;
                    verdicts.push(InquiryVerdict::Rejected {
                        message_id: id,
                        reason: reason.clone(),
                    });
                    refused.push((id, reason.clone()));
                }
                Outcome::PeerUnreachable(error) => {
                    // These were leased (due only when their lease runs out): put them back at
                    // the peer's backoff; everything else due for the peer follows below.
                    report.unreachable += 1;
                    later
                        .entry((peer_retry_at, error.clone(), Failed::Attempt))
                        .or_default()
                        .push(id);
                    unreachable.get_or_insert_with(|| error.clone());
                }
                Outcome::Retry(error) => {
                    report.deferred += 1;
                    let at = *retry_at.entry(attempt.attempts).or_insert_with(|| {
                        next_attempt(now, attempt.attempts, limits.retry_initial, limits.retry_max)
                    });
                    later
                        .entry((at, error.clone(), Failed::Attempt))
                        .or_default()
                        .push(id);
                }
                Outcome::Held { .. } => {
                    report.held += 1;
                    // released at once when the peer's status changes; tried again after a
                    // status interval at the latest, should the release have come just before
                    // this refusal was recorded
                    let wait = limits.retry_max.min(limits.peer_status_interval);
                    let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                    later
                        .entry((
                            at,
                            attempt.outcome.why_not_delivered().unwrap_or_default(),
                            Failed::Held,
                        ))
                        .or_default()
                        .push(id);
                }
            }
        }
        match message_type {
            MessageType::Inquiry => {
                if !answers.is_empty() {
                    answers_stored = self
                        .record_receipts_and_answers(peer, &verdicts, answers, false)
                        .await?
                        .into_iter()
                        .map(|confirmation| confirmation.message_id)
                        .collect();
                } else if !verdicts.is_empty() {
                    self.store.record_inquiry_verdicts(peer, &verdicts).await?;
                }
            }
            MessageType::Confirmation => {
                if !delivered.is_empty() {
                    self.store
                        .record_confirmations_delivered(peer, &delivered)
                        .await?;
                }
                self.store
                    .record_refused_deliveries(peer, message_type.as_str(), &refused)
                    .await?;
            }
            MessageType::Notice => {
                let received = delivered_with_receipts(attempts, now);
                self.store
                    .record_notice_verdicts(peer, &received, &refused)
                    .await?;
            }
            MessageType::Feedback => {
                let received: Vec<(Uuid, DateTime<Utc>)> = delivered_with_receipts(attempts, now)
                    .into_iter()
                    .map(|(id, received_at, _)| (id, received_at))
                    .collect();
                self.store
                    .record_feedback_verdicts(peer, &received, &refused)
                    .await?;
            }
        }
        for ((at, error, failed), ids) in later {
            warn!(peer = %peer, count = ids.len(), error, "delivery not done, will retry");
            self.store
                .reschedule_outbox(peer, failed, &ids, &error, at)
                .await?;
        }
        if let Some(error) = unreachable {
            // the peer's condition, not the messages': its circuit opens, every message for it
            // waits for the probe (put back once, when the circuit opens, not at every probe),
            // and the first call that reaches the peer again makes them all due at once
            if !self.circuit(peer).is_open() {
                let waiting = self.store.defer_peer_outbox(peer, &error, peer_retry_at).await?;
                warn!(peer = %peer, waiting, error, retry_at = %peer_retry_at, "peer unreachable; its messages wait");
            }
            // whatever was put back to the probe time (all of them now, or the probe's message
            // later) is released when the circuit closes
            self.trip_circuit(peer, &error, peer_retry_at, Some(peer_retry_at));
        } else if !attempts.is_empty() {
            self.peer_reached(peer).await?;
        }
        if report.held > 0 {
            // what we knew the peer holds is out of date: ask it now (after the messages are
            // marked held, so that a release the answer brings finds them)
            self.wake_status();
        }
        debug!(?report, "deliveries recorded");
        Ok(Recorded {
            report,
            answers_stored,
        })
    }
}

/// The delivered messages among `attempts`, with the peer's receipt time (now, when the peer
/// did not say) and deadline.
fn delivered_with_receipts(
    attempts: &[Attempt],
    now: DateTime<Utc>,
) -> Vec<crate::store::notices_out::NoticeReceived> {
    attempts
        .iter()
        .filter_map(|attempt| match attempt.outcome {
            Outcome::Delivered { received_at, due_at } => {
                Some((attempt.message_id, received_at.unwrap_or(now), due_at))
            }
            _ => None,
        })
        .collect()
}

/// Exponential backoff with jitter: the n-th failed attempt waits between half and all of
/// `initial · 2^(n-1)`, capped at `max`.
pub fn next_attempt(now: DateTime<Utc>, attempts: i32, initial: Duration, max: Duration) -> DateTime<Utc> {
    let (initial_ms, max_ms) = (millis(initial), millis(max));
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(30);
    let ceiling = initial_ms.saturating_mul(1u64 << exponent).min(max_ms).max(1);
    let delay = rand::rng().random_range(ceiling / 2..=ceiling);
    now + chrono::Duration::milliseconds(i64::try_from(delay).unwrap_or(i64::MAX))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let now = Utc::now();
        for attempts in 1..=12 {
            let waited = (next_attempt(now, attempts, Duration::from_millis(500), Duration::from_secs(60))
                - now)
                .num_milliseconds() as u64;
            let ceiling = (500u64 << (attempts - 1)).min(60_000);
            assert!(
                waited >= ceiling / 2 && waited <= ceiling,
                "attempt {attempts}: {waited} ms"
            );
        }
    }
}
