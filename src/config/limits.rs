//! The `[limits]` of a node's configuration: every count and timing a node runs by, with
//! production defaults. Durations are written the human way (`"500ms"`, `"5s"`, `"5m"`); the
//! millisecond keys and variables of earlier versions are read with a deprecation warning.

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use crate::tls::ChannelTimings;

/// First wait before a supervisor restarts a worker that failed; doubles per failure in a row.
pub const WORKER_FIRST_RESTART: Duration = Duration::from_secs(1);
/// Longest wait between a worker's restarts.
pub const WORKER_MAX_RESTART: Duration = Duration::from_secs(30);
/// A worker that ran this long since its last restart is well again: its next failure starts a
/// new streak.
pub const WORKER_STABLE_AFTER: Duration = Duration::from_secs(30);

/// Tunables with production defaults. Durations are written the human way (`"500ms"`, `"5s"`,
/// `"5m"`, `"1h 30m"`); the `*_ms` integer keys of earlier versions are still read, with a
/// deprecation warning (see [`NodeConfig::warnings`](super::NodeConfig::warnings)).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Upper bound on how long a single inquiry may wait for an inline answer.
    #[serde(with = "human_duration")]
    pub max_wait: Duration,
    /// Inquiries, confirmations or notices per batch sent to a peer.
    pub batch_size: usize,
    /// Largest batch accepted from a peer, in messages.
    pub max_batch_messages: usize,
    /// Largest gRPC message accepted from a peer, in bytes.
    pub max_message_bytes: usize,
    /// First retry delay after a failed delivery; doubles per attempt, with jitter.
    #[serde(with = "human_duration")]
    pub retry_initial: Duration,
    /// Longest retry delay.
    #[serde(with = "human_duration")]
    pub retry_max: Duration,
    /// Longest wait between probes of a peer whose circuit is open (the peer could not be
    /// reached): once it is back, its backlog waits at most about this long. The probes start
    /// at `retry_initial` and double up to this.
    #[serde(with = "human_duration")]
    pub probe_max: Duration,
    /// How often idle workers look for work even without a wake-up.
    #[serde(with = "human_duration")]
    pub poll_interval: Duration,
    /// How long an outbox entry being delivered stays invisible to other replicas (and to this
    /// node after a restart) without being renewed. Short, so that the batch a crashed node was
    /// sending is retried seconds after it comes back rather than a minute later.
    #[serde(with = "human_duration")]
    pub lease: Duration,
    /// How often the lease on a batch still on the wire is renewed: well inside `lease`, so one
    /// slow renewal does not let another replica send the batch a second time.
    #[serde(with = "human_duration")]
    pub lease_renewal: Duration,
    /// How long a connection to a peer may go unused before it is closed (the next call opens
    /// a new one), so that a node with many agreements keeps connections only to the peers it
    /// talks to.
    #[serde(with = "human_duration")]
    pub connection_idle: Duration,
    /// How long one delivery batch may take on the wire before the attempt counts as failed.
    #[serde(with = "human_duration")]
    pub call_timeout: Duration,
    /// Batches a delivery worker keeps on the wire at once, each its own call with its own
    /// receipts, so that both databases commit several batches with one flush.
    pub in_flight: usize,
    /// How much longer than its wait a clerk's inline inquiry may take on the wire: the peer's
    /// commit and the trip back, so a slow answer still arrives instead of timing out.
    #[serde(with = "human_duration")]
    pub call_margin: Duration,
    /// How long an answer given inline to a clerk's inquiry stays owed in our outbox before it
    /// is sent again in full, unless the asker acknowledges it first (it normally does within
    /// milliseconds; this covers an asker that crashed before storing it).
    #[serde(with = "human_duration")]
    pub inline_answer_grace: Duration,
    /// How often the reconciliation scheduler looks at its schedules.
    #[serde(with = "human_duration")]
    pub reconcile_tick: Duration,
    /// First retry after a reconciliation run broke off; doubles per failure.
    #[serde(with = "human_duration")]
    pub reconcile_first_retry: Duration,
    /// Longest wait between reconciliation retries.
    #[serde(with = "human_duration")]
    pub reconcile_max_retry: Duration,
    /// How often reply deadlines are checked; they are whole days, so a minute is plenty.
    #[serde(with = "human_duration")]
    pub deadline_check_interval: Duration,
    /// How long a client may take to complete the TLS handshake before we hang up: long enough
    /// for a slow link between county data centres, short enough that idle sockets do not pile up.
    #[serde(with = "human_duration")]
    pub handshake_timeout: Duration,
    /// How long this node waits for TCP + TLS to a peer before giving up on this attempt.
    #[serde(with = "human_duration")]
    pub connect_timeout: Duration,
    /// HTTP/2 keep-alive pings to peers, so a peer that vanished without closing is noticed.
    #[serde(with = "human_duration")]
    pub keep_alive_interval: Duration,
    /// How long a keep-alive ping may go unanswered before the connection is dropped.
    #[serde(with = "human_duration")]
    pub keep_alive_timeout: Duration,
    /// How long a task waits for a free database connection before it fails.
    #[serde(with = "human_duration")]
    pub database_acquire_timeout: Duration,
    /// Person lookups (ask, show an inquiry, the differences export) one operator principal may
    /// make per `lookup_window`; beyond that it is refused with `RESOURCE_EXHAUSTED` and audited,
    /// so that nobody walks the registry one lookup at a time.
    pub lookups_per_principal: u32,
    /// The window `lookups_per_principal` counts over (lookups come back evenly across it).
    #[serde(with = "human_duration")]
    pub lookup_window: Duration,
    /// How often this node tells each peer which agreement versions it holds and learns theirs
    /// (also at once after an operator applies or retires a version).
    #[serde(with = "human_duration")]
    pub peer_status_interval: Duration,
    /// How far a peer's clock may differ from ours before the node warns: deadlines, validity
    /// periods and message-id ordering all depend on the two clocks agreeing.
    #[serde(with = "human_duration")]
    pub clock_skew_warning: Duration,
    /// A peer whose newest audit checkpoints come without the leaves that prove them is treated
    /// as forked after this many status exchanges in a row ...
    pub audit_unproven_exchanges: u32,
    /// ... or once it has stayed unproven this long, whichever comes first.
    #[serde(with = "human_duration")]
    pub audit_unproven_after: Duration,
    /// How often readiness is checked (the database answers, workers are well).
    #[serde(with = "human_duration")]
    pub health_check_interval: Duration,
    /// How long a worker may keep failing (restarted by its supervisor and failing again)
    /// before the node reports itself not ready.
    #[serde(with = "human_duration")]
    pub worker_down_limit: Duration,
    /// How often a replica checks whether another replica changed the agreements, besides
    /// being told at once (`NOTIFY`), in case an announcement was missed.
    #[serde(with = "human_duration")]
    pub change_check_interval: Duration,
    /// How long one database statement may run (PostgreSQL's `statement_timeout`), for work
    /// not named below.
    #[serde(with = "human_duration")]
    pub statement_timeout: Duration,
    /// The same on the clerk's path, where someone waits at a window: a stuck statement fails
    /// fast rather than keep the clerk waiting.
    #[serde(with = "human_duration")]
    pub statement_timeout_clerk: Duration,
    /// The same for bulk work: registry imports and reconciliation reads.
    #[serde(with = "human_duration")]
    pub statement_timeout_bulk: Duration,
    /// How long one call on the peer or operator listener may take before the node answers
    /// `CANCELLED` (a stream's messages are not limited by it, only its start).
    #[serde(with = "human_duration")]
    pub rpc_timeout: Duration,
    /// Calls one connection may have in progress at once on the peer or operator listener;
    /// more wait their turn.
    pub rpc_concurrency_per_connection: usize,
    /// First wait before a webhook endpoint that failed is tried again; doubles per failed
    /// attempt, with jitter.
    #[serde(with = "human_duration")]
    pub webhook_retry_first: Duration,
    /// Longest wait between attempts at a failing webhook endpoint.
    #[serde(with = "human_duration")]
    pub webhook_retry_max: Duration,
    /// How long connecting to a webhook endpoint (TCP and TLS) may take.
    #[serde(with = "human_duration")]
    pub webhook_connect_timeout: Duration,
    /// How long one webhook request may take in all, connecting included.
    #[serde(with = "human_duration")]
    pub webhook_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let channel = ChannelTimings::default();
        Limits {
            max_wait: Duration::from_secs(5),
            batch_size: 500,
            max_batch_messages: 2_000,
            max_message_bytes: 4 * 1024 * 1024,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(5 * 60),
            probe_max: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(10),
            lease_renewal: Duration::from_secs(3),
            connection_idle: Duration::from_secs(30),
            call_timeout: Duration::from_secs(60),
            in_flight: 4,
            call_margin: Duration::from_secs(5),
            inline_answer_grace: Duration::from_secs(30),
            reconcile_tick: Duration::from_secs(30),
            reconcile_first_retry: Duration::from_secs(60),
            reconcile_max_retry: Duration::from_secs(60 * 60),
            deadline_check_interval: Duration::from_secs(60),
            handshake_timeout: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
            connect_timeout: channel.connect_timeout,
            keep_alive_interval: channel.keep_alive_interval,
            keep_alive_timeout: channel.keep_alive_timeout,
            database_acquire_timeout: Duration::from_secs(30),
            lookups_per_principal: 120,
            lookup_window: Duration::from_secs(60),
            peer_status_interval: Duration::from_secs(60),
            clock_skew_warning: Duration::from_secs(5),
            audit_unproven_exchanges: 3,
            audit_unproven_after: Duration::from_secs(10 * 60),
            health_check_interval: Duration::from_secs(1),
            worker_down_limit: Duration::from_secs(60),
            change_check_interval: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            statement_timeout_clerk: Duration::from_secs(5),
            statement_timeout_bulk: Duration::from_secs(30 * 60),
            rpc_timeout: Duration::from_secs(5 * 60),
            rpc_concurrency_per_connection: 64,
            webhook_retry_first: Duration::from_secs(1),
            webhook_retry_max: Duration::from_secs(10 * 60),
            webhook_connect_timeout: Duration::from_secs(5),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// How long statements of each kind may run.
    pub fn statement_timeouts(&self) -> crate::store::StatementTimeouts {
        crate::store::StatementTimeouts {
            ordinary: Some(self.statement_timeout),
            clerk: Some(self.statement_timeout_clerk),
            bulk: Some(self.statement_timeout_bulk),
        }
    }

    /// The wait cap.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// The timings of a channel to a peer.
    pub fn channel_timings(&self) -> ChannelTimings {
        ChannelTimings {
            connect_timeout: self.connect_timeout,
            keep_alive_interval: self.keep_alive_interval,
            keep_alive_timeout: self.keep_alive_timeout,
        }
    }

    /// Checks the limits against each other; the error names the key to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.batch_size == 0 || self.batch_size > self.max_batch_messages {
            bail!("limits.batch_size must be between 1 and limits.max_batch_messages");
        }
        for (key, count) in [
            ("max_batch_messages", self.max_batch_messages),
            ("max_message_bytes", self.max_message_bytes),
            ("in_flight", self.in_flight),
            ("lookups_per_principal", self.lookups_per_principal as usize),
            (
                "rpc_concurrency_per_connection",
                self.rpc_concurrency_per_connection,
            ),
        ] {
            if count == 0 {
                bail!("limits.{key} must be at least 1");
            }
        }
        for (key, duration) in [
            ("retry_initial", self.retry_initial),
            ("poll_interval", self.poll_interval),
            ("lease", self.lease),
            ("lease_renewal", self.lease_renewal),
            ("call_timeout", self.call_timeout),
            ("call_margin", self.call_margin),
            ("inline_answer_grace", self.inline_answer_grace),
            ("reconcile_tick", self.reconcile_tick),
            ("reconcile_first_retry", self.reconcile_first_retry),
            ("deadline_check_interval", self.deadline_check_interval),
            ("handshake_timeout", self.handshake_timeout),
            ("connect_timeout", self.connect_timeout),
            ("keep_alive_interval", self.keep_alive_interval),
            ("keep_alive_timeout", self.keep_alive_timeout),
            ("database_acquire_timeout", self.database_acquire_timeout),
            ("lookup_window", self.lookup_window),
            ("peer_status_interval", self.peer_status_interval),
            ("clock_skew_warning", self.clock_skew_warning),
            ("audit_unproven_after", self.audit_unproven_after),
            ("health_check_interval", self.health_check_interval),
            ("worker_down_limit", self.worker_down_limit),
            ("change_check_interval", self.change_check_interval),
            ("statement_timeout", self.statement_timeout),
            ("statement_timeout_clerk", self.statement_timeout_clerk),
            ("statement_timeout_bulk", self.statement_timeout_bulk),
            ("rpc_timeout", self.rpc_timeout),
            ("webhook_retry_first", self.webhook_retry_first),
            ("webhook_connect_timeout", self.webhook_connect_timeout),
            ("webhook_timeout", self.webhook_timeout),
        ] {
            if duration.is_zero() {
                bail!("limits.{key} must be longer than zero");
            }
        }
        if self.audit_unproven_exchanges == 0 {
            bail!("limits.audit_unproven_exchanges must be at least 1");
        }
        if self.lease_renewal >= self.lease {
            bail!(
                "limits.lease_renewal ({}) must be shorter than limits.lease ({}), or another replica may send a batch still on the wire",
                humantime::format_duration(self.lease_renewal),
                humantime::format_duration(self.lease)
            );
        }
        let restarted_and_stable = WORKER_STABLE_AFTER + WORKER_MAX_RESTART;
        if self.worker_down_limit < restarted_and_stable {
            bail!(
                "limits.worker_down_limit ({}) must be at least {}: a worker the supervisor restarts once \
                 must not make the node unready",
                humantime::format_duration(self.worker_down_limit),
                humantime::format_duration(restarted_and_stable)
            );
        }
        if self.retry_max < self.retry_initial {
            bail!(
                "limits.retry_max ({}) must not be shorter than limits.retry_initial ({})",
                humantime::format_duration(self.retry_max),
                humantime::format_duration(self.retry_initial)
            );
        }
        if self.webhook_retry_max < self.webhook_retry_first {
            bail!(
                "limits.webhook_retry_max ({}) must not be shorter than limits.webhook_retry_first ({})",
                humantime::format_duration(self.webhook_retry_max),
                humantime::format_duration(self.webhook_retry_first)
            );
        }
        if self.webhook_timeout < self.webhook_connect_timeout {
            bail!(
                "limits.webhook_timeout ({}) must not be shorter than limits.webhook_connect_timeout ({})",
                humantime::format_duration(self.webhook_timeout),
                humantime::format_duration(self.webhook_connect_timeout)
            );
        }
        if self.reconcile_max_retry < self.reconcile_first_retry {
            bail!(
                "limits.reconcile_max_retry ({}) must not be shorter than limits.reconcile_first_retry ({})",
                humantime::format_duration(self.reconcile_max_retry),
                humantime::format_duration(self.reconcile_first_retry)
            );
        }
        Ok(())
    }
}

/// The `[limits]` keys written as durations.
pub(super) const DURATION_KEYS: &[&str] = &[
    "max_wait",
    "retry_initial",
    "retry_max",
    "poll_interval",
    "lease",
    "lease_renewal",
    "call_timeout",
    "call_margin",
    "reconcile_tick",
    "reconcile_first_retry",
    "reconcile_max_retry",
    "deadline_check_interval",
    "handshake_timeout",
    "connect_timeout",
    "keep_alive_interval",
    "keep_alive_timeout",
    "database_acquire_timeout",
    "lookup_window",
    "peer_status_interval",
    "clock_skew_warning",
    "audit_unproven_after",
    "health_check_interval",
    "worker_down_limit",
    "change_check_interval",
    "statement_timeout",
    "statement_timeout_clerk",
    "statement_timeout_bulk",
    "rpc_timeout",
    "webhook_retry_first",
    "webhook_retry_max",
    "webhook_connect_timeout",
    "webhook_timeout",
];

/// Deprecated `[limits]` keys in milliseconds, with the duration key that replaces each.
const DEPRECATED_MILLISECOND_KEYS: &[(&str, &str)] = &[
    ("max_wait_ms", "max_wait"),
    ("retry_initial_ms", "retry_initial"),
    ("retry_max_ms", "retry_max"),
    ("poll_interval_ms", "poll_interval"),
];

/// Deprecated environment variables in milliseconds, with the variable that replaces each.
pub(super) const DEPRECATED_MILLISECOND_VARIABLES: &[(&str, &str)] = &[
    ("HANCHA_MAX_WAIT_MS", "HANCHA_MAX_WAIT"),
    ("HANCHA_RETRY_INITIAL_MS", "HANCHA_RETRY_INITIAL"),
    ("HANCHA_RETRY_MAX_MS", "HANCHA_RETRY_MAX"),
    ("HANCHA_POLL_INTERVAL_MS", "HANCHA_POLL_INTERVAL"),
];

/// Serde for a duration written the human way (`"500ms"`, `"5m"`).
pub(super) mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Rewrites the deprecated `[limits]` keys in milliseconds (`max_wait_ms = 5000`) as the
/// duration keys that replace them (`max_wait = "5s"`), with a warning for each.
pub(super) fn translate_deprecated_limits(
    document: &mut toml::Table,
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let Some(limits) = document.get_mut("limits").and_then(toml::Value::as_table_mut) else {
        return Ok(());
    };
    for (old, new) in DEPRECATED_MILLISECOND_KEYS {
        let Some(value) = limits.remove(*old) else {
            continue;
        };
        if limits.contains_key(*new) {
            bail!("limits.{old} and limits.{new} are both set: keep only limits.{new}");
        }
        let milliseconds = value
            .as_integer()
            .and_then(|number| u64::try_from(number).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("limits.{old}: expected a whole number of milliseconds, got {value}")
            })?;
        let duration = humantime::format_duration(Duration::from_millis(milliseconds)).to_string();
        warnings.push(format!(
            "limits.{old} is deprecated: write limits.{new} = \"{duration}\" instead"
        ));
        limits.insert(new.to_string(), toml::Value::String(duration));
    }
    Ok(())
}

/// A deprecated variable's whole milliseconds as a human duration (`1500` → `1s 500ms`).
pub(super) fn parse_milliseconds(value: &str) -> anyhow::Result<String> {
    let milliseconds: u64 = value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("expected a whole number of milliseconds, got {value:?}"))?;
    Ok(humantime::format_duration(Duration::from_millis(milliseconds)).to_string())
}

/// Checks every duration in `[limits]` before deserializing, so that a bad one is reported with
/// its key and an example of what is expected.
pub(super) fn check_durations(document: &toml::Table) -> anyhow::Result<()> {
    let Some(limits) = document.get("limits").and_then(toml::Value::as_table) else {
        return Ok(());
    };
    for key in DURATION_KEYS {
        let Some(value) = limits.get(*key) else {
            continue;
        };
        let Some(text) = value.as_str() else {
            bail!(
                "limits.{key}: expected a duration with its unit in quotes, such as \"500ms\", \"5s\" or \"5m\", got {value}"
            );
        };
        if let Err(error) = humantime::parse_duration(text) {
            bail!(
                "limits.{key}: {text:?} is not a duration ({error}); write e.g. \"500ms\", \"5s\" or \"5m\""
            );
        }
    }
    Ok(())
}
