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

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::domain::policy::RejectionCode;

mod record;
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
    /// 1 while the circuit to a peer is open (the peer could not be reached; only probes go out).
    peer_circuit_open: IntGaugeVec,
    /// Times the circuit to a peer opened.
    peer_circuit_opened: IntCounterVec,
    /// Probes sent to a peer whose circuit was open, by result (`reached`, `unreachable`).
    peer_probes: IntCounterVec,
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
            peer_circuit_open: int_gauge_vec(
                &registry,
                "hancha_peer_circuit_open",
                "1 while the circuit to a peer is open: it could not be reached, and only a probe on its backoff schedule goes out.",
                &["peer"],
            ),
            peer_circuit_opened: counter_vec(
                &registry,
                "hancha_peer_circuit_opened_total",
                "Times the circuit to a peer opened (an outage began).",
                &["peer"],
            ),
            peer_probes: counter_vec(
                &registry,
                "hancha_peer_probes_total",
                "Probes of a peer whose circuit was open, by result.",
                &["peer", "result"],
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
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
