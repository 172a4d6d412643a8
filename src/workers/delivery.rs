//! The delivery worker: one per peer county, draining that peer's outbox in batches through the
//! peer's [`PeerLink`]. What becomes of each message is decided by the one outcome rule
//! ([`Outcome`]) and recorded by the node. A peer that cannot be reached is a condition of the
//! peer, not of its messages: its circuit ([`Circuit`]) opens, and while it is open the worker
//! sends nothing but one small probe (a status exchange) on the peer's backoff schedule; the
//! first probe that reaches the peer closes the circuit and the whole backlog flows at once.
//! Because each peer has its own worker and link, one peer never slows the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, instrument, warn};
use uuid::Uuid;

use super::Step;
use crate::domain::delivery::{CallFailure, Circuit, Outcome, PeerVerdict};
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, MessageType};
use crate::domain::peer_status::ClockReading;
use crate::metrics::Metrics;
use crate::node::{Attempt, DeliveryReport, Node};
use crate::peer::PeerLink;
use crate::store::outbox::Lease;
use crate::store::{Store, StoreError};

/// Delivers one node's outbox to one peer.
#[derive(Debug)]
pub struct DeliveryWorker {
    /// The sending node.
    node: Arc<Node>,
    /// The peer this worker serves.
    peer: CountyCode,
    /// How the peer is reached (the same link the clerk's path uses).
    link: Arc<dyn PeerLink>,
    /// Batches put on the wire at once: `limits.in_flight`, halved each time a round found the
    /// peer unreachable (down to one), doubled back with each round the peer took. On a link
    /// that keeps breaking, what is lost with the receipts (and sent again) is one batch per
    /// break, not all of them; after one outage the backlog starts at half speed for a round.
    window: AtomicUsize,
}

impl DeliveryWorker {
    /// A worker for `peer` over `link`.
    pub fn new(node: Arc<Node>, peer: CountyCode, link: Arc<dyn PeerLink>) -> DeliveryWorker {
        let window = AtomicUsize::new(node.limits().in_flight.max(1));
        DeliveryWorker {
            node,
            peer,
            link,
            window,
        }
    }

    /// The peer this worker delivers to.
    pub fn peer(&self) -> CountyCode {
        self.peer
    }

    /// One step: the due inquiries, confirmations, notices and feedback, in that order, a few
    /// batches of each on the wire at once.
    #[instrument(skip_all, fields(peer = %self.peer))]
    ///
    /// While the peer's circuit is open nothing is leased: when its probe is due, one status
    /// exchange goes out, and only if it reaches the peer does the round go on (with the whole
    /// backlog due again).
    pub async fn run_once(&self) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        if let Some(wait) = self.node.circuit(self.peer).probe_in(Utc::now())
            && (!wait.is_zero() || !self.probe().await?)
        {
            return Ok(report);
        }
        for message_type in [
            MessageType::Inquiry,
            MessageType::Confirmation,
            MessageType::Notice,
            MessageType::Feedback,
        ] {
            report = report.plus(self.deliver(message_type).await?);
            if report.found_peer_unreachable() {
                // Everything for the peer waits for its backoff now; trying the other types
                // too would only wait for the same connection to fail again.
                break;
            }
        }
        Ok(report)
    }

    /// [`run_once`](Self::run_once) as a loop step: repeat while messages were settled,
    /// otherwise sleep until the next entry is due.
    pub async fn step(&self) -> Result<Step, StoreError> {
        let report = self.run_once().await?;
        if report.settled_any() {
            return Ok(Step::Worked);
        }
        if self.link.close_if_idle() {
            debug!(peer = %self.peer, "connection closed after being idle");
        }
        let poll = self.node.limits().poll_interval;
        if let Some(wait) = self.node.circuit(self.peer).probe_in(Utc::now()) {
            // open: nothing is due until the probe
            return Ok(Step::Idle(wait.clamp(Duration::from_millis(10), poll)));
        }
        let next = self.node.store().next_outbox_attempt(self.peer).await?;
        let until_next = next
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(poll)
            .clamp(Duration::from_millis(10), poll);
        Ok(Step::Idle(until_next))
    }

    /// Leases the due entries of one type and sends them in batches at once.
    async fn deliver(&self, message_type: MessageType) -> Result<DeliveryReport, StoreError> {
        let limits = self.node.limits();
        let window = self
            .window
            .load(Ordering::Relaxed)
            .clamp(1, limits.in_flight.max(1));
        let limit = (limits.batch_size * window) as i64;
        let leases = self
            .node
            .store()
            .lease_outbox(self.peer, message_type, limit, limits.lease)
            .await?;
        // Should the peer be unreachable, everything for it waits this long and its circuit
        // is probed then: the peer's own backoff, growing with each call that found it
        // unreachable.
        let peer_retry_at = self.node.peer_retry_at(self.peer);
        let batches = leases
            .chunks(limits.batch_size)
            .map(|batch| self.deliver_batch(message_type, batch, peer_retry_at));
        let report = futures::future::try_join_all(batches)
            .await?
            .into_iter()
            .fold(DeliveryReport::default(), DeliveryReport::plus);
        if report.found_peer_unreachable() {
            self.window.store((window / 2).max(1), Ordering::Relaxed);
        } else if !leases.is_empty() {
            let wider = (window * 2).min(limits.in_flight.max(1));
            self.window.store(wider, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// The open circuit's probe, one small call: the oldest message due for the peer alone (an
    /// attempt like any other, in the message's history), or a status exchange when none is
    /// due. Reaching the peer (whatever it answers) closes the circuit and makes the backlog
    /// due; otherwise the next probe waits for the peer's backoff.
    async fn probe(&self) -> Result<bool, StoreError> {
        let lease = self.node.limits().lease;
        for message_type in [
            MessageType::Inquiry,
            MessageType::Confirmation,
            MessageType::Notice,
            MessageType::Feedback,
        ] {
            let leases = self
                .node
                .store()
                .lease_outbox(self.peer, message_type, 1, lease)
                .await?;
            if !leases.is_empty() {
                let peer_retry_at = self.node.peer_retry_at(self.peer);
                let report = self.deliver_batch(message_type, &leases, peer_retry_at).await?;
                let reached = !report.found_peer_unreachable();
                self.node.metrics().peer_probe(self.peer, reached);
                return Ok(reached);
            }
        }
        let ours = self.node.status_for(self.peer).await?;
        let sent = Utc::now();
        let result = self.link.peer_status(&ours).await;
        let reached = Circuit::reached_by(&result);
        self.node.metrics().peer_probe(self.peer, reached);
        match result {
            Ok(theirs) => {
                let clock = ClockReading::round_trip(sent, Utc::now(), theirs.clock);
                self.node.record_peer_status(self.peer, &theirs, clock).await?;
            }
            Err(CallFailure::Unreachable(reason)) => {
                let probe_at = self.node.peer_retry_at(self.peer);
                self.node.trip_circuit(self.peer, &reason, probe_at, None);
                return Ok(false);
            }
            Err(CallFailure::Failed(_)) => {}
        }
        self.node.peer_reached(self.peer).await?;
        Ok(true)
    }

    /// Sends one batch, keeping its lease while it is on the wire, and records the outcomes.
    async fn deliver_batch(
        &self,
        message_type: MessageType,
        leases: &[Lease],
        peer_retry_at: DateTime<Utc>,
    ) -> Result<DeliveryReport, StoreError> {
        let store = self.node.store();
        let ids: Vec<Uuid> = leases.iter().map(|l| l.message_id).collect();
        let lease = self.node.limits().lease;
        let renewal = self.node.limits().lease_renewal;
        let mut named: HashMap<Uuid, AgreementRef> = HashMap::new();
        let mut answers = Vec::new();
        let reply = match message_type {
            MessageType::Inquiry => {
                let inquiries = store.outbound_inquiries(&ids).await?;
                let inquiries = self.node.under_shared_version(self.peer, inquiries).await?;
                named.extend(inquiries.iter().map(|i| (i.message_id, i.agreement.clone())));
                // The peer answers what its registry settles in the commit that accepts the
                // batch, and the answers come back with the receipts.
                renewing_lease(
                    store,
                    self.node.metrics(),
                    &ids,
                    lease,
                    renewal,
                    self.link.submit_inquiries_answered_inline(&inquiries),
                )
                .await
                .map(|reply| {
                    answers = reply.answers;
                    reply.verdicts
                })
            }
            MessageType::Confirmation => {
                let confirmations = store.outbound_confirmations(&ids).await?;
                named.extend(confirmations.iter().map(|c| (c.message_id, c.agreement.clone())));
                renewing_lease(
                    store,
                    self.node.metrics(),
                    &ids,
                    lease,
                    renewal,
                    self.link.deliver_confirmations(&confirmations),
                )
                .await
            }
            MessageType::Notice => {
                let notices = store.outbound_notices(&ids).await?;
                named.extend(notices.iter().map(|n| (n.message_id, n.agreement.clone())));
                renewing_lease(
                    store,
                    self.node.metrics(),
                    &ids,
                    lease,
                    renewal,
                    self.link.deliver_notices(&notices),
                )
                .await
            }
            MessageType::Feedback => {
                let feedback = store.outbound_feedback(&ids).await?;
                named.extend(feedback.iter().map(|f| (f.message_id, f.agreement.clone())));
                renewing_lease(
                    store,
                    self.node.metrics(),
                    &ids,
                    lease,
                    renewal,
                    self.link.deliver_feedback(&feedback),
                )
                .await
            }
        };
        let mut attempts = outcomes(leases, &reply);
        for attempt in &mut attempts {
            if let Outcome::Held { .. } = attempt.outcome
                && let Some(waiting_for) = self.waiting_for(named.get(&attempt.message_id))
            {
                attempt.outcome = attempt.outcome.clone().held_for(waiting_for);
            }
        }
        let recorded = self
            .node
            .record_attempts(self.peer, message_type, &attempts, answers, peer_retry_at)
            .await?;
        if !recorded.answers_stored.is_empty() {
            // Off the batch's path: if this is lost, the peer delivers the answers after its
            // grace period and our intake takes them as duplicates.
            let link = Arc::clone(&self.link);
            let ids = recorded.answers_stored;
            tokio::spawn(async move {
                if let Err(failure) = link.acknowledge_confirmations(&ids).await {
                    debug!(
                        error = %failure.describe(),
                        count = ids.len(),
                        "acknowledging answers given inline failed; the peer will send them again"
                    );
                }
            });
        }
        Ok(recorded.report)
    }

    /// What a message held for a version mismatch waits for: the peer to hold the version it
    /// names.
    fn waiting_for(&self, reference: Option<&AgreementRef>) -> Option<String> {
        let book = self.node.agreements();
        let agreement = book.by_ref(reference?)?;
        Some(format!(
            "{} to hold agreement {} version {} ({})",
            self.peer,
            agreement.id(),
            agreement.version(),
            agreement.canonical_hash().short()
        ))
    }
}

/// The outcome of each leased message after a call: its verdict when the peer gave one, the
/// call's failure otherwise.
fn outcomes(leases: &[Lease], reply: &Result<HashMap<Uuid, PeerVerdict>, CallFailure>) -> Vec<Attempt> {
    let missing = CallFailure::Failed("no receipt in the peer's reply".into());
    leases
        .iter()
        .map(|lease| {
            let outcome = match reply {
                Ok(verdicts) => match verdicts.get(&lease.message_id) {
                    Some(verdict) => Outcome::of_verdict(verdict),
                    None => Outcome::of_failure(&missing),
                },
                Err(failure) => Outcome::of_failure(failure),
            };
            Attempt {
                message_id: lease.message_id,
                attempts: lease.attempts,
                outcome,
            }
        })
        .collect()
}

/// Runs `call` (a batch on the wire) while renewing the lease on the batch's outbox entries, so
/// that however long the peer takes, no other replica sends the batch meanwhile; if this node
/// dies, renewals stop and the entries come back after one lease. A failed renewal is only
/// logged: at worst another replica sends the batch too, which the peer answers as a duplicate.
/// The call's round trip goes to `metrics`.
async fn renewing_lease<T>(
    store: &Store,
    metrics: &Metrics,
    ids: &[Uuid],
    lease: Duration,
    renewal: Duration,
    call: impl Future<Output = T>,
) -> T {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + renewal, renewal);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut call = std::pin::pin!(call);
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            result = &mut call => {
                metrics.peer_round_trip(started.elapsed());
                return result;
            }
            _ = ticks.tick() => {
                if let Err(error) = store.renew_outbox_lease(ids, lease).await {
                    warn!(%error, count = ids.len(), "renewing the delivery lease failed");
                }
            }
        }
    }
}
