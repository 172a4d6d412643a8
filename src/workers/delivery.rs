//! The delivery worker: one per peer county, draining that peer's outbox in batches over mutual
//! TLS. Failures are retried with exponential backoff and jitter per entry; because each peer has
//! its own worker and channel, an unreachable peer never slows deliveries to the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tonic::transport::Channel;
use tracing::{debug, instrument, warn};
use uuid::Uuid;

use super::Step;
use crate::domain::division::CountyCode;
use crate::exchange::convert::{confirmation_to_wire, inquiry_to_wire, timestamp_from_wire};
use crate::node::Node;
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_client::ExchangeClient;
use crate::store::outbound::{InquiryVerdict, Lease, MessageType};
use crate::store::{Store, StoreError};

/// How long a leased entry stays invisible to other replicas (and to this node after a restart)
/// without being renewed. Short, so that the batch a crashed node was sending is retried seconds
/// after it comes back rather than a minute later; a send that takes longer keeps its lease by
/// renewing it every [`LEASE_RENEWAL`].
const LEASE: Duration = Duration::from_secs(10);

/// How often the lease on a batch still on the wire is renewed: well inside [`LEASE`], so one
/// slow renewal does not let another replica send the batch a second time.
const LEASE_RENEWAL: Duration = Duration::from_secs(3);

/// How long one batch may take on the wire before the attempt counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Batches a worker keeps on the wire at once, each its own call with its own receipts. While
/// the peer stores one batch, we record the receipts of another and the next is on its way, and
/// both databases commit several batches with one flush (group commit). Each batch is leased,
/// sent and recorded on its own, exactly as if it were the only one.
pub const IN_FLIGHT: usize = 4;

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages the peer accepted (or had already accepted).
    pub delivered: usize,
    /// Messages the peer refused for good.
    pub refused: usize,
    /// Messages that could not be sent this time and wait for a retry.
    pub deferred: usize,
}

/// Delivers one node's outbox to one peer.
#[derive(Clone, Debug)]
pub struct DeliveryWorker {
    /// The sending node.
    node: Arc<Node>,
    /// The peer this worker serves.
    peer: CountyCode,
    /// A mutual-TLS channel to the peer that checks the server is that county.
    client: ExchangeClient<Channel>,
}

impl DeliveryWorker {
    /// A worker for `peer` over `channel`.
    pub fn new(node: Arc<Node>, peer: CountyCode, channel: Channel) -> DeliveryWorker {
        let client = ExchangeClient::new(channel)
            .max_decoding_message_size(node.limits().max_message_bytes)
            .max_encoding_message_size(node.limits().max_message_bytes);
        DeliveryWorker { node, peer, client }
    }

    /// The peer this worker delivers to.
    pub fn peer(&self) -> CountyCode {
        self.peer
    }

    /// One step: a batch of inquiries and a batch of confirmations, if due.
    #[instrument(skip_all, fields(peer = %self.peer))]
    pub async fn run_once(&mut self) -> Result<DeliveryReport, StoreError> {
        let mut report = self.deliver_inquiries().await?;
        let confirmations = self.deliver_confirmations().await?;
        report.delivered += confirmations.delivered;
        report.refused += confirmations.refused;
        report.deferred += confirmations.deferred;
        Ok(report)
    }

    /// [`run_once`](Self::run_once) as a loop step: repeat while there is work, otherwise sleep
    /// until the next entry is due.
    pub async fn step(&mut self) -> Result<Step, StoreError> {
        let report = self.run_once().await?;
        if report.delivered + report.refused > 0 {
            return Ok(Step::Worked);
        }
        let poll = Duration::from_millis(self.node.limits().poll_interval_ms);
        let next = self.node.store().next_outbox_attempt(self.peer).await?;
        let until_next = next
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(poll)
            .clamp(Duration::from_millis(10), poll);
        Ok(Step::Idle(until_next))
    }

    async fn deliver_inquiries(&self) -> Result<DeliveryReport, StoreError> {
        let leases = self.lease(MessageType::Inquiry).await?;
        let batches = leases
            .chunks(self.node.limits().batch_size)
            .map(|batch| self.deliver_inquiry_batch(batch));
        Ok(sum(futures::future::try_join_all(batches).await?))
    }

    async fn deliver_inquiry_batch(&self, leases: &[Lease]) -> Result<DeliveryReport, StoreError> {
        let store = self.node.store();
        let ids: Vec<Uuid> = leases.iter().map(|l| l.message_id).collect();
        let inquiries = store.outbound_inquiries(&ids).await?;
        let batch = pb::InquiryBatch {
            inquiries: inquiries.iter().map(inquiry_to_wire).collect(),
        };
        let mut request = tonic::Request::new(tokio_stream::iter([batch]));
        request.set_timeout(CALL_TIMEOUT);
        let mut client = self.client.clone();
        let reply = renewing_lease(store, &ids, async move {
            client
                .submit_inquiries(request)
                .await?
                .into_inner()
                .message()
                .await
        })
        .await;
        let receipts = match reply {
            Ok(Some(reply)) => reply.receipts,
            Ok(None) => {
                return self
                    .defer(leases, "peer closed the stream without receipts")
                    .await;
            }
            Err(status) => return self.defer(leases, &describe(&status)).await,
        };
        let by_id: HashMap<&str, &pb::Receipt> =
            receipts.iter().map(|r| (r.message_id.as_str(), r)).collect();
        let mut verdicts = Vec::new();
        let mut missing = Vec::new();
        for lease in leases {
            let key = lease.message_id.to_string();
            match by_id.get(key.as_str()).and_then(|r| r.result.as_ref()) {
                Some(pb::receipt::Result::Accepted(accepted)) => verdicts.push(InquiryVerdict::Accepted {
                    message_id: lease.message_id,
                    received_at: accepted
                        .received_at
                        .as_ref()
                        .and_then(timestamp_from_wire)
                        .unwrap_or_else(Utc::now),
                    due_at: accepted.due_at.as_ref().and_then(timestamp_from_wire),
                }),
                Some(pb::receipt::Result::Rejected(rejected)) => verdicts.push(InquiryVerdict::Rejected {
                    message_id: lease.message_id,
                    reason: format!(
                        "{}: {}",
                        tonic::Code::from(rejected.code).description(),
                        rejected.reason
                    ),
                }),
                None => missing.push(lease.clone()),
            }
        }
        store.record_inquiry_verdicts(self.peer, &verdicts).await?;
        let refused = verdicts
            .iter()
            .filter(|v| matches!(v, InquiryVerdict::Rejected { .. }))
            .count();
        let mut report = DeliveryReport {
            delivered: verdicts.len() - refused,
            refused,
            deferred: 0,
        };
        if !missing.is_empty() {
            report.deferred += self
                .defer(&missing, "no receipt in the peer's reply")
                .await?
                .deferred;
        }
        debug!(?report, "inquiries delivered");
        Ok(report)
    }

    async fn deliver_confirmations(&self) -> Result<DeliveryReport, StoreError> {
        let leases = self.lease(MessageType::Confirmation).await?;
        let batches = leases
            .chunks(self.node.limits().batch_size)
            .map(|batch| self.deliver_confirmation_batch(batch));
        Ok(sum(futures::future::try_join_all(batches).await?))
    }

    async fn deliver_confirmation_batch(&self, leases: &[Lease]) -> Result<DeliveryReport, StoreError> {
        let store = self.node.store();
        let ids: Vec<Uuid> = leases.iter().map(|l| l.message_id).collect();
        let confirmations = store.outbound_confirmations(&ids).await?;
        let batch = pb::ConfirmationBatch {
            confirmations: confirmations.iter().map(confirmation_to_wire).collect(),
        };
        let mut request = tonic::Request::new(tokio_stream::iter([batch]));
        request.set_timeout(CALL_TIMEOUT);
        let mut client = self.client.clone();
        let reply = renewing_lease(store, &ids, async move {
            client
                .deliver_confirmations(request)
                .await?
                .into_inner()
                .message()
                .await
        })
        .await;
        let receipts = match reply {
            Ok(Some(reply)) => reply.receipts,
            Ok(None) => {
                return self
                    .defer(leases, "peer closed the stream without receipts")
                    .await;
            }
            Err(status) => return self.defer(leases, &describe(&status)).await,
        };
        let by_id: HashMap<&str, &pb::Receipt> =
            receipts.iter().map(|r| (r.message_id.as_str(), r)).collect();
        let (mut delivered, mut refused, mut missing) = (Vec::new(), Vec::new(), Vec::new());
        for lease in leases {
            let key = lease.message_id.to_string();
            match by_id.get(key.as_str()).and_then(|r| r.result.as_ref()) {
                Some(pb::receipt::Result::Accepted(_)) => delivered.push(lease.message_id),
                Some(pb::receipt::Result::Rejected(rejected)) => refused.push((
                    lease.message_id,
                    format!(
                        "{}: {}",
                        tonic::Code::from(rejected.code).description(),
                        rejected.reason
                    ),
                )),
                None => missing.push(lease.clone()),
            }
        }
        store
            .record_confirmations_delivered(self.peer, &delivered)
            .await?;
        store
            .record_refused_deliveries(self.peer, "confirmation", &refused)
            .await?;
        let mut report = DeliveryReport {
            delivered: delivered.len(),
            refused: refused.len(),
            deferred: 0,
        };
        if !missing.is_empty() {
            report.deferred += self
                .defer(&missing, "no receipt in the peer's reply")
                .await?
                .deferred;
        }
        Ok(report)
    }

    /// Leases up to [`IN_FLIGHT`] batches' worth of due entries of one type.
    async fn lease(&self, message_type: MessageType) -> Result<Vec<Lease>, StoreError> {
        let limit = (self.node.limits().batch_size * IN_FLIGHT) as i64;
        self.node
            .store()
            .lease_outbox(self.peer, message_type, limit, LEASE)
            .await
    }

    /// Puts entries back for a later attempt, each after its own backoff.
    async fn defer(&self, leases: &[Lease], error: &str) -> Result<DeliveryReport, StoreError> {
        warn!(peer = %self.peer, count = leases.len(), error, "delivery failed, will retry");
        let limits = self.node.limits();
        let now = Utc::now();
        let mut by_attempts: HashMap<i32, Vec<Uuid>> = HashMap::new();
        for lease in leases {
            by_attempts
                .entry(lease.attempts)
                .or_default()
                .push(lease.message_id);
        }
        for (attempts, ids) in by_attempts {
            let at = next_attempt(now, attempts, limits.retry_initial_ms, limits.retry_max_ms);
            self.node.store().reschedule_outbox(&ids, error, at).await?;
        }
        Ok(DeliveryReport {
            deferred: leases.len(),
            ..DeliveryReport::default()
        })
    }
}

/// The reports of batches sent together, added up.
fn sum(reports: Vec<DeliveryReport>) -> DeliveryReport {
    reports
        .into_iter()
        .fold(DeliveryReport::default(), |total, report| DeliveryReport {
            delivered: total.delivered + report.delivered,
            refused: total.refused + report.refused,
            deferred: total.deferred + report.deferred,
        })
}

/// Runs `call` (a batch on the wire) while renewing the lease on the batch's outbox entries, so
/// that however long the peer takes, no other replica sends the batch meanwhile; if this node
/// dies, renewals stop and the entries come back after one [`LEASE`]. A failed renewal is only
/// logged: at worst another replica sends the batch too, which the peer answers as a duplicate.
async fn renewing_lease<T>(store: &Store, ids: &[Uuid], call: impl Future<Output = T>) -> T {
    let mut renewal = tokio::time::interval_at(tokio::time::Instant::now() + LEASE_RENEWAL, LEASE_RENEWAL);
    renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut call = std::pin::pin!(call);
    loop {
        tokio::select! {
            result = &mut call => return result,
            _ = renewal.tick() => {
                if let Err(error) = store.renew_outbox_lease(ids, LEASE).await {
                    warn!(%error, count = ids.len(), "renewing the delivery lease failed");
                }
            }
        }
    }
}

/// Exponential backoff with jitter: the n-th failed attempt waits between half and all of
/// `initial · 2^(n-1)`, capped at `max`.
pub fn next_attempt(now: DateTime<Utc>, attempts: i32, initial_ms: u64, max_ms: u64) -> DateTime<Utc> {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(30);
    let ceiling = initial_ms.saturating_mul(1u64 << exponent).min(max_ms).max(1);
    let delay = rand::rng().random_range(ceiling / 2..=ceiling);
    now + chrono::Duration::milliseconds(i64::try_from(delay).unwrap_or(i64::MAX))
}

fn describe(status: &tonic::Status) -> String {
    use std::error::Error;
    let mut text = format!("{}: {}", status.code().description(), status.message());
    let mut source = status.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let now = Utc::now();
        for attempts in 1..=12 {
            let waited = (next_attempt(now, attempts, 500, 60_000) - now).num_milliseconds() as u64;
            let ceiling = (500u64 << (attempts - 1)).min(60_000);
            assert!(
                waited >= ceiling / 2 && waited <= ceiling,
                "attempt {attempts}: {waited} ms"
            );
        }
    }
}
