//! The circuit to each peer ([`Circuit`]): opened when a call finds the peer unreachable, by
//! the delivery worker and the clerk's path alike; closed by the first call that reaches it,
//! which makes everything the outage held back due again at once.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{Node, next_attempt};
use crate::domain::delivery::Circuit;
use crate::domain::division::CountyCode;
use crate::store::StoreError;

/// A peer's circuit, and the latest time the outage put the peer's outbox back to.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerCircuit {
    /// Open or closed.
    pub(crate) circuit: Circuit,
    /// The latest next attempt given to the peer's entries during this outage: what closing
    /// the circuit makes due again.
    pub(crate) deferred_until: Option<DateTime<Utc>>,
}

impl Node {
    /// The circuit to `peer` as it stands (closed for a peer never found unreachable).
    pub fn circuit(&self, peer: CountyCode) -> Circuit {
        self.circuits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .map(|c| c.circuit.clone())
            .unwrap_or_default()
    }

    /// When the peer is next tried (probed) should a call find it unreachable now: its backoff,
    /// taken for the calls in a row that failed, this one counted, `limits.probe_max` at most.
    pub fn peer_retry_at(&self, peer: CountyCode) -> DateTime<Utc> {
        let failures = self.circuit(peer).next_failure();
        let now = Utc::now();
        let backoff = next_attempt(
            now,
            i32::try_from(failures).unwrap_or(i32::MAX),
            self.limits.retry_initial,
            self.limits.retry_max,
        );
        let probe_max = chrono::Duration::from_std(self.limits.probe_max).unwrap_or(chrono::Duration::MAX);
        backoff.min(now + probe_max)
    }

    /// A call found `peer` unreachable: the circuit opens (or stays open) with the next probe
    /// at `probe_at`. `deferred_until` is set when the peer's entries were put back to it.
    pub(crate) fn trip_circuit(
        &self,
        peer: CountyCode,
        reason: &str,
        probe_at: DateTime<Utc>,
        deferred_until: Option<DateTime<Utc>>,
    ) {
        let opened = {
            let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
            let entry = circuits.entry(peer).or_default();
            let was_open = entry.circuit.is_open();
            entry.circuit = std::mem::take(&mut entry.circuit).tripped(Utc::now(), probe_at, reason);
            entry.deferred_until = entry.deferred_until.max(deferred_until);
            !was_open
        };
        if opened {
            self.metrics.peer_circuit(peer, true);
            warn!(peer = %peer, reason, probe_at = %probe_at, "peer unreachable: circuit open, probing on its backoff");
        }
    }

    /// A call reached `peer`: if its circuit was open it closes, and every entry the outage
    /// held back is due at once, in the order written. Returns whether it was open.
    pub(crate) async fn peer_reached(&self, peer: CountyCode) -> Result<bool, StoreError> {
        let closed = {
            let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
            match circuits.get(&peer) {
                Some(entry) if entry.circuit.is_open() => circuits.remove(&peer),
                _ => None,
            }
        };
        let Some(closed) = closed else {
            return Ok(false);
        };
        self.metrics.peer_circuit(peer, false);
        let released = match closed.deferred_until {
            Some(until) => self.store.release_peer_outbox(peer, until).await?,
            None => 0,
        };
        let since = match closed.circuit {
            Circuit::Open { since, .. } => Some(since),
            Circuit::Closed => None,
        };
        info!(peer = %peer, released, ?since, "peer reached again: circuit closed, its backlog is due");
        self.wake_delivery();
        Ok(true)
    }
}
