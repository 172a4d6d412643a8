//! Recording: one thin function per event the node and its workers report, and the figures
//! read from the database at scrape time ([`Metrics::observe_database`]); what each metric is
//! and how it is registered stay in the module above.

use std::time::Duration;

use prometheus::{Encoder, TextEncoder};

use super::{DELIVERY_OUTCOMES, Metrics, WATCHED_REFUSALS, tls};
use crate::domain::delivery::Outcome;
use crate::domain::division::CountyCode;
use crate::domain::message::MessageType;
use crate::domain::policy::RejectionCode;
use crate::store::monitoring::DatabaseFigures;

impl Metrics {
    /// Starts every per-peer series of `peer` at zero, so that rates and alerts see a peer
    /// from the start rather than from its first event.
    pub fn register_peer(&self, peer: CountyCode) {
        let peer = peer.as_str();
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(peer.to_string());
        for outcome in DELIVERY_OUTCOMES {
            self.deliveries.with_label_values(&[peer, outcome]);
        }
        self.delivery_retries.with_label_values(&[peer]);
        self.audit_peer_forks.with_label_values(&[peer]);
        self.peer_circuit_open.with_label_values(&[peer]).set(0);
        self.peer_circuit_opened.with_label_values(&[peer]);
        for result in ["reached", "unreachable"] {
            self.peer_probes.with_label_values(&[peer, result]);
        }
        for code in WATCHED_REFUSALS {
            self.peer_refusals.with_label_values(&[peer, code.as_str()]);
        }
    }

    /// What became of messages sent to `peer`, one outcome per message.
    pub fn deliveries<'a>(&self, peer: CountyCode, outcomes: impl IntoIterator<Item = &'a Outcome>) {
        let peer = peer.as_str();
        for outcome in outcomes {
            let label = match outcome {
                Outcome::Delivered { .. } => "delivered",
                Outcome::Final(_) => "refused",
                Outcome::Retry(_) => "retry",
                Outcome::PeerUnreachable(_) => "unreachable",
                Outcome::Held { .. } => "held",
            };
            self.deliveries.with_label_values(&[peer, label]).inc();
            if matches!(outcome, Outcome::Retry(_) | Outcome::PeerUnreachable(_)) {
                self.delivery_retries.with_label_values(&[peer]).inc();
            }
            if let Some(code) = refusal_code(outcome) {
                self.peer_refusals.with_label_values(&[peer, code]).inc();
            }
        }
    }

    /// The circuit to `peer` opened (`true`) or closed (`false`).
    pub fn peer_circuit(&self, peer: CountyCode, open: bool) {
        let peer = peer.as_str();
        self.peer_circuit_open
            .with_label_values(&[peer])
            .set(i64::from(open));
        if open {
            self.peer_circuit_opened.with_label_values(&[peer]).inc();
        }
    }

    /// A probe of `peer` reached it or not.
    pub fn peer_probe(&self, peer: CountyCode, reached: bool) {
        let result = if reached { "reached" } else { "unreachable" };
        self.peer_probes.with_label_values(&[peer.as_str(), result]).inc();
    }

    /// One call to a peer that carried messages took `elapsed`.
    pub fn peer_round_trip(&self, elapsed: Duration) {
        self.peer_round_trip.observe(elapsed.as_secs_f64());
    }

    /// The clerk's ask at the window took `elapsed` until its answer or deferral.
    pub fn clerk_ask(&self, elapsed: Duration) {
        self.clerk_path.observe(elapsed.as_secs_f64());
    }

    /// A peer's message of `kind` was stored (`Ok`) or refused with a code.
    pub fn inbound(&self, kind: MessageType, verdict: Result<(), RejectionCode>) {
        match verdict {
            Ok(()) => self.inbound_accepted.with_label_values(&[kind.as_str()]).inc(),
            Err(code) => self
                .inbound_refused
                .with_label_values(&[kind.as_str(), code.as_str()])
                .inc(),
        }
    }

    /// `count` inquiries were answered automatically.
    pub fn auto_answered(&self, count: usize) {
        self.auto_answers.inc_by(count as u64);
    }

    /// The retention worker erased `erased`.
    pub fn erased(&self, erased: &crate::store::retention::Erased) {
        for (message_type, count) in [
            ("inquiry", erased.inquiries),
            ("confirmation", erased.confirmations),
            ("notice", erased.notices),
            ("feedback", erased.feedback),
        ] {
            self.erased_messages
                .with_label_values(&[message_type])
                .inc_by(count);
        }
    }

    /// A reconciliation set this node started with `peer` completed.
    pub fn reconcile_completed(
        &self,
        peer: CountyCode,
        differences: u64,
        bytes_sent: u64,
        bytes_received: u64,
        elapsed: Duration,
    ) {
        let peer = peer.as_str();
        self.reconcile_runs.with_label_values(&[peer, "completed"]).inc();
        self.reconcile_differences
            .with_label_values(&[peer])
            .inc_by(differences);
        self.reconcile_bytes
            .with_label_values(&[peer, "sent"])
            .inc_by(bytes_sent);
        self.reconcile_bytes
            .with_label_values(&[peer, "received"])
            .inc_by(bytes_received);
        self.reconcile_seconds.observe(elapsed.as_secs_f64());
    }

    /// A reconciliation set this node started with `peer` broke off.
    pub fn reconcile_interrupted(&self, peer: CountyCode) {
        self.reconcile_runs
            .with_label_values(&[peer.as_str(), "interrupted"])
            .inc();
    }

    /// A TLS handshake on `listener` (`peer` or `operator`) was refused for `reason` (one of
    /// [`handshake_refusal_reason`]'s).
    pub fn tls_handshake_refused(&self, listener: &'static str, reason: &'static str) {
        self.tls_refused.with_label_values(&[listener, reason]).inc();
    }

    /// Our own certificate (`whose` = `own`) or a peer's (`peer`), naming `county`, is valid
    /// until `not_after` (Unix seconds).
    pub fn certificate_expiry(&self, whose: &'static str, county: &str, not_after: i64) {
        self.certificate_expiry
            .with_label_values(&[whose, county])
            .set(not_after as f64);
    }

    /// TLS material reloads and the connections they close.
    pub fn tls(&self) -> &tls::TlsMetrics {
        &self.tls_material
    }

    /// The supervisor restarted `worker` (`delivery`, `auto_answer`, `deadlines`, ...).
    pub fn worker_restarted(&self, worker: &str) {
        self.worker_restarts.with_label_values(&[worker]).inc();
    }

    /// Whether the node is ready for work (`hancha_ready`).
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// This process's database pool: connections held, idle among them, and the most allowed.
    pub fn observe_pool(&self, size: u32, idle: usize, max: u32) {
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        self.pool_connections
            .with_label_values(&["idle"])
            .set(idle.min(i64::from(size)));
        self.pool_connections
            .with_label_values(&["in_use"])
            .set((i64::from(size) - idle).max(0));
        self.pool_max.set(i64::from(max));
    }

    /// Replaces the database-derived gauges with `figures` (read at scrape time): peers or
    /// states no longer present disappear rather than keep their last value.
    pub fn observe_database(&self, figures: &DatabaseFigures) {
        self.outbox_messages.reset();
        self.outbox_oldest_age.reset();
        for peer in self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            self.outbox_messages.with_label_values(&[peer]).set(0);
            self.outbox_oldest_age.with_label_values(&[peer]).set(0.0);
        }
        for outbox in &figures.outbox {
            self.outbox_messages
                .with_label_values(&[&outbox.peer])
                .set(outbox.messages);
            self.outbox_oldest_age
                .with_label_values(&[&outbox.peer])
                .set(outbox.oldest_age_seconds.max(0.0));
        }
        self.inquiries_open.reset();
        for direction in ["inbound", "outbound"] {
            for state in ["queued", "pending"] {
                self.inquiries_open.with_label_values(&[direction, state]).set(0);
            }
        }
        for open in &figures.open_inquiries {
            self.inquiries_open
                .with_label_values(&[&open.direction, &open.state])
                .set(open.count);
        }
        for direction in ["inbound", "outbound"] {
            let overdue = figures
                .overdue
                .iter()
                .find(|(d, _)| d == direction)
                .map_or(0, |(_, count)| *count);
            self.inquiries_overdue
                .with_label_values(&[direction])
                .set(overdue);
        }
        self.reconcile_last_completed.reset();
        for (peer, at) in &figures.reconcile_last_completed {
            self.reconcile_last_completed.with_label_values(&[peer]).set(*at);
        }
        self.peer_clock_offset.reset();
        for (peer, offset_ms) in &figures.peer_clock_offsets_ms {
            self.peer_clock_offset
                .with_label_values(&[peer])
                .set(*offset_ms as f64 / 1000.0);
        }
        self.audit_sealed_position.set(figures.audit_sealed_position);
        self.audit_unsealed.set(figures.audit_unsealed);
        self.audit_unsealed_oldest_age
            .set(figures.audit_unsealed_oldest_seconds);
        self.audit_peer_forked.reset();
        for peer in self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            self.audit_peer_forked.with_label_values(&[peer]).set(0);
        }
        for peer in &figures.audit_forked_peers {
            self.audit_peer_forked.with_label_values(&[peer]).set(1);
        }
        self.webhook_backlog.reset();
        for endpoint in &figures.webhooks {
            self.webhook_backlog
                .with_label_values(&[&endpoint.endpoint])
                .set(endpoint.backlog);
        }
        self.webhooks_failing.set(
            figures
                .webhooks
                .iter()
                .filter(|endpoint| endpoint.failing)
                .count() as i64,
        );
    }

    /// A webhook delivery attempt ended with `result` (one of [`WEBHOOK_RESULTS`]).
    pub fn webhook_attempt(&self, result: &str) {
        self.webhook_attempts.with_label_values(&[result]).inc();
    }

    /// A peer's audit chain was found forked.
    pub fn audit_peer_fork(&self, peer: &str) {
        self.audit_peer_forks.with_label_values(&[peer]).inc();
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("the text encoder writes to memory");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// The gRPC code a peer gave when it refused a message, read from the `CODE: reason` it sent;
/// `None` for an outcome that was not a refusal (delivered, or a call that failed).
fn refusal_code(outcome: &Outcome) -> Option<&'static str> {
    let reason = match outcome {
        Outcome::Final(reason) | Outcome::Retry(reason) => reason,
        Outcome::Held { peer_said, .. } => peer_said,
        Outcome::Delivered { .. } | Outcome::PeerUnreachable(_) => return None,
    };
    let (code, _) = reason.split_once(':')?;
    crate::status::refusal_code_names().find(|known| *known == code.trim())
}
