//! The node's metrics: every name, label and help text in one place, and one thin recording
//! function per event, so that the node and its workers say *what happened* in one line and
//! never build a metric themselves.
//!
//! Counters and histograms are per process (each replica counts what it did). Figures that are
//! really database state — outbox depth and age, open inquiries, overdue, the last completed
//! reconciliation, peers' clocks — are read at scrape time ([`Metrics::observe_database`]) with
//! one cheap query each, so every replica of a county's node reports the same values for them.
//! Peer labels are county codes: bounded by the agreements a county signs. Latency histograms
//! carry no peer label, to keep the series few.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::domain::delivery::Outcome;
use crate::domain::division::CountyCode;
use crate::domain::message::MessageType;
use crate::domain::policy::RejectionCode;
use crate::store::monitoring::DatabaseFigures;

mod tls;

pub use tls::{TlsMetrics, handshake_refusal_reason};

/// Seconds, for the latency histograms: from a loopback round trip to a peer's call timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Seconds, for one reconciliation set: from a small county's to a big one's first night.
const RECONCILE_BUCKETS: &[f64] = &[0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0];

/// The workers a node runs, whose restart counters start at 0.
const WORKERS: &[&str] = &[
    "delivery",
    "peer_status",
    "auto_answer",
    "deadlines",
    "reconcile",
    "changes",
    "retention",
    "audit_sealer",
    "webhooks",
];

/// The result labels of `hancha_webhook_attempts_total`, as `webhook_attempts.result` records them.
pub const WEBHOOK_RESULTS: &[&str] = &[
    "delivered",
    "http_status",
    "redirect",
    "timeout",
    "connect",
    "tls",
    "other",
];

/// The refusals whose series start at 0 for every peer: those the delivery rule names.
const WATCHED_REFUSALS: &[RejectionCode] = &RejectionCode::MESSAGE_REFUSALS;

/// The outcome labels of `hancha_deliveries_total`, one per [`Outcome`].
const DELIVERY_OUTCOMES: &[&str] = &["delivered", "refused", "retry", "unreachable", "held"];

/// One node's metrics and the registry they are exposed from.
///
/// Each node owns its own registry (not the process-global default), so that the demo and the
/// tests, which run several county nodes in one process, scrape each node's own figures.
#[derive(Debug)]
pub struct Metrics {
    /// Everything below, for [`Metrics::render`].
    registry: Registry,
    /// Messages sent to a peer by what became of them (`hancha_deliveries_total{peer,outcome}`).
    deliveries: IntCounterVec,
    /// Attempts that failed and will be tried again (`retry` and `unreachable` outcomes).
    delivery_retries: IntCounterVec,
    /// A peer's refusals of our messages by the gRPC code it gave.
    peer_refusals: IntCounterVec,
    /// One call to a peer carrying messages (a batch, or the clerk's single inquiry).
    peer_round_trip: Histogram,
    /// The clerk's synchronous path: from the window's `ask` to the answer (or "deferred").
    clerk_path: Histogram,
    /// Messages a peer sent us that we stored, by kind.
    inbound_accepted: IntCounterVec,
    /// Messages a peer sent us that we refused, by kind and gRPC code.
    inbound_refused: IntCounterVec,
    /// Inquiries answered automatically from the registry.
    auto_answers: IntCounter,
    /// Messages whose personal data was erased at the end of the agreed retention period.
    erased_messages: IntCounterVec,
    /// Reconciliation sets this node started, by peer and outcome.
    reconcile_runs: IntCounterVec,
    /// Differences those runs found.
    reconcile_differences: IntCounterVec,
    /// Bytes those runs sent and received.
    reconcile_bytes: IntCounterVec,
    /// How long one set took.
    reconcile_seconds: Histogram,
    /// TLS handshakes refused on a listener, by a bounded reason.
    tls_refused: IntCounterVec,
    /// `notAfter` of our certificate and of each peer's last seen, in Unix seconds.
    certificate_expiry: GaugeVec,
    /// TLS material reloads and the connections they close.
    tls_material: tls::TlsMetrics,
    /// Workers restarted by their supervisor after a panic or an error it could not step over.
    worker_restarts: IntCounterVec,
    /// 1 while the node serves and is ready for work, 0 otherwise.
    ready: IntGauge,
    /// Messages waiting in the outbox per peer (database state).
    outbox_messages: IntGaugeVec,
    /// Age of the oldest message in the outbox per peer (database state).
    outbox_oldest_age: GaugeVec,
    /// Open inquiries by direction and state (database state).
    inquiries_open: IntGaugeVec,
    /// Inquiries past their deadline without an answer, by direction (database state).
    inquiries_overdue: IntGaugeVec,
    /// When a reconciliation with each peer last completed, either side starting it.
    reconcile_last_completed: GaugeVec,
    /// Each peer's clock minus ours, from the last status exchange.
    peer_clock_offset: GaugeVec,
    /// The audit chain's last sealed position (database state).
    audit_sealed_position: IntGauge,
    /// Committed audit records not yet sealed (database state).
    audit_unsealed: IntGauge,
    /// Age of the oldest of them (database state).
    audit_unsealed_oldest_age: prometheus::Gauge,
    /// 1 while a peer's audit chain is recorded as forked (database state).
    audit_peer_forked: IntGaugeVec,
    /// Forks of peers' audit chains this process detected.
    audit_peer_forks: IntCounterVec,
    /// Database connections of this process by state (`idle`, `in_use`).
    pool_connections: IntGaugeVec,
    /// Connections this process may open.
    pool_max: IntGauge,
    /// Webhook delivery attempts this process made, by result.
    webhook_attempts: IntCounterVec,
    /// Per webhook endpoint: chain positions past its cursor (database state).
    webhook_backlog: IntGaugeVec,
    /// Webhook endpoints whose delivery is failing (database state).
    webhooks_failing: IntGauge,
    /// The configured peers, whose outbox gauges read 0 rather than vanish when it is empty.
    peers: Mutex<BTreeSet<String>>,
}

impl Metrics {
    /// A fresh registry with every metric defined, `hancha_build_info` set and `hancha_ready` 0.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let metrics = Metrics {
            deliveries: counter_vec(
                &registry,
                "hancha_deliveries_total",
                "Messages sent to a peer, by what became of each attempt.",
                &["peer", "outcome"],
            ),
            delivery_retries: counter_vec(
                &registry,
                "hancha_delivery_retries_total",
                "Delivery attempts that failed and will be tried again.",
                &["peer"],
            ),
            peer_refusals: counter_vec(
                &registry,
                "hancha_peer_refusals_total",
                "Messages a peer refused, by the gRPC code it gave.",
                &["peer", "code"],
            ),
            peer_round_trip: histogram(
                &registry,
                "hancha_peer_round_trip_seconds",
                "One call carrying messages to a peer, until its reply.",
                LATENCY_BUCKETS,
            ),
            clerk_path: histogram(
                &registry,
                "hancha_clerk_ask_seconds",
                "The clerk's synchronous path: an ask at the window until its answer or deferral.",
                LATENCY_BUCKETS,
            ),
            inbound_accepted: counter_vec(
                &registry,
                "hancha_inbound_accepted_total",
                "Messages from peers stored by this node, by kind.",
                &["kind"],
            ),
            inbound_refused: counter_vec(
                &registry,
                "hancha_inbound_refused_total",
                "Messages from peers refused by this node, by kind and gRPC code.",
                &["kind", "code"],
            ),
            auto_answers: {
                let counter = IntCounter::new(
                    "hancha_auto_answers_total",
                    "Inquiries answered automatically from the registry.",
                )
                .expect("valid metric");
                registry
                    .register(Box::new(counter.clone()))
                    .expect("registered once");
                counter
            },
            erased_messages: counter_vec(
                &registry,
                "hancha_erased_messages_total",
                "Messages whose personal data was erased at the end of the agreed retention period, by type.",
                &["type"],
            ),
            reconcile_runs: counter_vec(
                &registry,
                "hancha_reconcile_runs_total",
                "Reconciliation sets this node started, by outcome.",
                &["peer", "outcome"],
            ),
            reconcile_differences: counter_vec(
                &registry,
                "hancha_reconcile_differences_total",
                "Differences found by reconciliation runs this node started.",
                &["peer"],
            ),
            reconcile_bytes: counter_vec(
                &registry,
                "hancha_reconcile_bytes_total",
                "Bytes exchanged by reconciliation runs this node started.",
                &["peer", "direction"],
            ),
            reconcile_seconds: histogram(
                &registry,
                "hancha_reconcile_duration_seconds",
                "How long one reconciliation set took, committed repairs included.",
                RECONCILE_BUCKETS,
            ),
            tls_refused: counter_vec(
                &registry,
                "hancha_tls_handshakes_refused_total",
                "TLS handshakes refused, by listener and reason.",
                &["listener", "reason"],
            ),
            certificate_expiry: gauge_vec(
                &registry,
                "hancha_certificate_expiry_timestamp_seconds",
                "notAfter of a certificate, in Unix seconds: this node's own and each peer's last seen.",
                &["certificate", "county"],
            ),
            tls_material: tls::TlsMetrics::register(&registry),
            worker_restarts: counter_vec(
                &registry,
                "hancha_worker_restarts_total",
                "Workers restarted by their supervisor.",
                &["worker"],
            ),
            ready: int_gauge(
                &registry,
                "hancha_ready",
                "1 while the node is ready for work, else 0.",
            ),
            outbox_messages: int_gauge_vec(
                &registry,
                "hancha_outbox_messages",
                "Messages waiting in the outbox for a peer.",
                &["peer"],
            ),
            outbox_oldest_age: gauge_vec(
                &registry,
                "hancha_outbox_oldest_age_seconds",
                "Age of the oldest message waiting in the outbox for a peer.",
                &["peer"],
            ),
            inquiries_open: int_gauge_vec(
                &registry,
                "hancha_inquiries_open",
                "Inquiries not yet answered, by direction and state (queued, pending).",
                &["direction", "state"],
            ),
            inquiries_overdue: int_gauge_vec(
                &registry,
                "hancha_inquiries_overdue",
                "Pending inquiries past their reply deadline, by direction.",
                &["direction"],
            ),
            reconcile_last_completed: gauge_vec(
                &registry,
                "hancha_reconcile_last_completed_timestamp_seconds",
                "When a reconciliation with a peer last completed, in Unix seconds.",
                &["peer"],
            ),
            peer_clock_offset: gauge_vec(
                &registry,
                "hancha_peer_clock_offset_seconds",
                "The peer's clock minus ours, from the last peer-status exchange.",
                &["peer"],
            ),
            audit_sealed_position: int_gauge(
                &registry,
                "hancha_audit_sealed_position",
                "The last position of the audit chain: audit records sealed so far.",
            ),
            audit_unsealed: int_gauge(
                &registry,
                "hancha_audit_unsealed_records",
                "Committed audit records not yet sealed into the chain.",
            ),
            audit_unsealed_oldest_age: {
                let gauge = prometheus::Gauge::new(
                    "hancha_audit_unsealed_oldest_age_seconds",
                    "Age of the oldest committed audit record not yet sealed (0 when none).",
                )
                .expect("a valid metric");
                registry
                    .register(Box::new(gauge.clone()))
                    .expect("registered once");
                gauge
            },
            audit_peer_forked: int_gauge_vec(
                &registry,
                "hancha_audit_peer_forked",
                "1 while a peer's audit history no longer extends the checkpoint it showed before.",
                &["peer"],
            ),
            audit_peer_forks: counter_vec(
                &registry,
                "hancha_audit_peer_forks_total",
                "Forks of a peer's audit chain detected by this process.",
                &["peer"],
            ),
            pool_connections: int_gauge_vec(
                &registry,
                "hancha_database_pool_connections",
                "Database connections this process holds, by state.",
                &["state"],
            ),
            pool_max: int_gauge(
                &registry,
                "hancha_database_pool_max_connections",
                "Database connections this process may open.",
            ),
            webhook_attempts: counter_vec(
                &registry,
                "hancha_webhook_attempts_total",
                "Webhook delivery attempts this process made, by result (delivered, or what failed).",
                &["result"],
            ),
            webhook_backlog: int_gauge_vec(
                &registry,
                "hancha_webhook_backlog_positions",
                "Audit chain positions past a webhook endpoint's cursor: at most the events it has yet to receive.",
                &["endpoint"],
            ),
            webhooks_failing: int_gauge(
                &registry,
                "hancha_webhooks_failing",
                "Webhook endpoints whose last delivery attempt failed.",
            ),
            peers: Mutex::default(),
            registry,
        };
        let build_info = int_gauge_vec(
            &metrics.registry,
            "hancha_build_info",
            "Always 1; the labels say which build is running.",
            &["version"],
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for direction in ["inbound", "outbound"] {
            metrics.inquiries_overdue.with_label_values(&[direction]).set(0);
        }
        for worker in WORKERS {
            metrics.worker_restarts.with_label_values(&[worker]);
        }
        for message_type in ["inquiry", "confirmation", "notice"] {
            metrics.erased_messages.with_label_values(&[message_type]);
        }
        for result in WEBHOOK_RESULTS {
            metrics.webhook_attempts.with_label_values(&[result]);
        }
        metrics
    }

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

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

// === registration helpers ===

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let metric = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn int_gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let metric =
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

#[cfg(test)]
mod tests;
