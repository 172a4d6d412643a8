//! Health that tells the truth, on the peer port and on the operator port: the gRPC health
//! service (`""` and the listener's own service) turns NOT_SERVING within seconds when the
//! database cannot be reached, at once from the first moment of a graceful stop, and SERVING
//! again when the cause is gone. A worker failing for longer than `limits.worker_down_limit`
//! makes the operator port (and `/readyz`) NOT_SERVING, not the peer port: the workers do this
//! county's own work, and peers can still hand us theirs. Liveness is separate: the process answers at all (a node whose
//! database is down stays alive, or a service manager would restart it in a loop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

use super::supervise::Workers;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::store::failover::DurabilityMode;

/// How long the database may take to answer the readiness check.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One listener's health service: its reporter and the service names it reports for.
#[derive(Clone, Debug)]
pub struct Reported {
    /// The listener's health reporter.
    pub reporter: HealthReporter,
    /// Its services besides `""`.
    pub services: Vec<&'static str>,
    /// Whether it serves peers (the exchange), which a failing worker does not stop: the
    /// workers do this county's own work (delivering what it asks and answers, deadlines), and
    /// peers can still hand us theirs.
    pub serves_peers: bool,
}

/// Why the node is not ready, and how much of it that stops.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NotReady {
    /// For people.
    why: String,
    /// Whether nothing can work (the database, a stop), or only this county's own work (a
    /// worker failing too long).
    everything: bool,
}

/// Whether the node is ready, and why not, as every health surface reports it.
#[derive(Debug)]
pub struct Health {
    /// The listeners' health services.
    listeners: Vec<Reported>,
    /// Ready to take work (database reachable, workers well, not stopping).
    ready: AtomicBool,
    /// A graceful stop has begun: never ready again.
    stopping: AtomicBool,
    /// Why not ready, for logs and probes.
    why_not: Mutex<Option<String>>,
    /// Where `hancha_ready` is reported.
    metrics: Arc<Metrics>,
    /// Held while a verdict is reported, so that two never interleave and none follows a stop.
    reporting: tokio::sync::Mutex<()>,
    /// Readiness checks in a row whose database ping timed out (rather than failed): one slow
    /// ping under load does not make the node unready, two do.
    slow_pings: std::sync::atomic::AtomicU32,
    /// Things an operator should see that do not make the node unready (a TLS reload that
    /// failed while the previous material still works), by topic.
    warnings: Mutex<std::collections::BTreeMap<&'static str, String>>,
    /// The database in use and its durability (synchronous standby, asynchronous, none), as
    /// last read: shown by `/healthz`.
    database: Mutex<Option<String>>,
}

impl Health {
    /// Health reported on `listeners`, ready to begin with (the node has just reached its
    /// database and started its workers).
    pub fn new(listeners: Vec<Reported>, metrics: Arc<Metrics>) -> Arc<Health> {
        metrics.set_ready(true);
        Arc::new(Health {
            listeners,
            ready: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            why_not: Mutex::new(None),
            metrics,
            reporting: tokio::sync::Mutex::new(()),
            slow_pings: std::sync::atomic::AtomicU32::new(0),
            warnings: Mutex::new(std::collections::BTreeMap::new()),
            database: Mutex::new(None),
        })
    }

    /// Sets (or with `None` clears) the warning on `topic`, shown by `/healthz` and `/readyz`
    /// without changing readiness.
    pub fn warn(&self, topic: &'static str, warning: Option<String>) {
        let mut warnings = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        match warning {
            Some(warning) => warnings.insert(topic, warning),
            None => warnings.remove(topic),
        };
    }

    /// The warnings in force, one line each (`topic: text`).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(topic, text)| format!("{topic}: {text}"))
            .collect()
    }

    /// The database line of `/healthz`: the primary in use (with several addresses) and the
    /// durability of its commits.
    pub fn database(&self) -> Option<String> {
        self.database.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the database's durability again (a standby may have come or gone, the node may
    /// have moved to another primary); logs a change, as a warning unless commits wait for a
    /// synchronous standby. Unchanged when the database does not answer.
    pub async fn read_database(&self, node: &Node) {
        let Ok(Ok(durability)) =
            tokio::time::timeout(DATABASE_CHECK_TIMEOUT, node.store().durability()).await
        else {
            return;
        };
        let line = match node.store().primary_in_use() {
            Some((address, timeline)) => format!(
                "primary {address}, timeline {timeline}; durability {}",
                durability.describe()
            ),
            None => format!("durability {}", durability.describe()),
        };
        let mut database = self.database.lock().unwrap_or_else(|p| p.into_inner());
        if database.as_deref() == Some(line.as_str()) {
            return;
        }
        if durability.mode() == DurabilityMode::Synchronous {
            info!(durability = durability.mode().as_str(), "database: {line}");
        } else {
            warn!(durability = durability.mode().as_str(), "database: {line}");
        }
        *database = Some(line);
    }

    /// Whether the node is ready to take work.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Why the node is not ready; `None` when it is.
    pub fn why_not(&self) -> Option<String> {
        self.why_not.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A graceful stop begins: NOT_SERVING everywhere at once, for good.
    pub async fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.set(Err(NotReady {
            why: "the node is stopping".into(),
            everything: true,
        }))
        .await;
    }

    /// Checks once and reports the result where it changed.
    pub async fn check(&self, node: &Node, workers: &Workers) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let verdict = self.readiness(node, workers).await;
        if verdict.is_ok() {
            self.read_database(node).await;
        }
        self.set(verdict).await;
    }

    /// Whether the node can take work now: its database answers within a few seconds (two
    /// timeouts in a row count, one does not), and no worker has been failing for longer than
    /// the configured limit (which stops this county's own work, not the peers').
    async fn readiness(&self, node: &Node, workers: &Workers) -> Result<(), NotReady> {
        let everything = |why: String| NotReady {
            why,
            everything: true,
        };
        match tokio::time::timeout(DATABASE_CHECK_TIMEOUT, node.store().ping()).await {
            Err(_) => {
                if self.slow_pings.fetch_add(1, Ordering::SeqCst) >= 1 {
                    return Err(everything(format!(
                        "the database did not answer within {DATABASE_CHECK_TIMEOUT:?}, twice in a row"
                    )));
                }
            }
            Ok(Err(error)) => {
                self.slow_pings.store(0, Ordering::SeqCst);
                return Err(everything(format!("the database cannot be reached: {error}")));
            }
            Ok(Ok(())) => self.slow_pings.store(0, Ordering::SeqCst),
        }
        let failing = workers.failing_longer_than(node.limits().worker_down_limit);
        if !failing.is_empty() {
            return Err(NotReady {
                why: format!(
                    "workers failing for longer than {:?}: {}",
                    node.limits().worker_down_limit,
                    failing.join(", ")
                ),
                everything: false,
            });
        }
        Ok(())
    }

    async fn set(&self, verdict: Result<(), NotReady>) {
        let _one_at_a_time = self.reporting.lock().await;
        if verdict.is_ok() && self.stopping.load(Ordering::SeqCst) {
            // a check that began before the stop: the stop has the last word
            return;
        }
        let ready = verdict.is_ok();
        let was = self.ready.swap(ready, Ordering::SeqCst);
        let not_ready = verdict.err();
        let why = not_ready.as_ref().map(|n| n.why.clone());
        let changed = {
            let mut why_not = self.why_not.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *why_not != why;
            *why_not = why.clone();
            changed
        };
        if was == ready && !changed {
            return;
        }
        self.metrics.set_ready(ready);
        match &why {
            None => info!("ready: serving again"),
            Some(why) if self.stopping.load(Ordering::SeqCst) => info!(why = %why, "not ready"),
            Some(why) => warn!(why = %why, "not ready"),
        }
        for listener in &self.listeners {
            let serving = match &not_ready {
                None => true,
                Some(not_ready) => !not_ready.everything && listener.serves_peers,
            };
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            listener.reporter.set_service_status("", status).await;
            for service in &listener.services {
                listener.reporter.set_service_status(*service, status).await;
            }
        }
    }
}

/// Checks readiness every `limits.health_check_interval` until shutdown.
pub async fn watch(
    health: Arc<Health>,
    node: Arc<Node>,
    workers: Arc<Workers>,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval = node.limits().health_check_interval;
    while !*shutdown.borrow() {
        health.check(&node, &workers).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
