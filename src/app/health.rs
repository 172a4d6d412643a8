//! Health that tells the truth, on the peer port and on the operator port: the gRPC health
//! service (`""` and the listener's own service) turns NOT_SERVING within seconds when the
//! database cannot be reached or a worker has been failing for longer than
//! `limits.worker_down_limit`, at once from the first moment of a graceful stop, and SERVING
//! again when the cause is gone. Liveness is separate: the process answers at all (a node whose
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

/// How long the database may take to answer the readiness check.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One listener's health service: its reporter and the service names it reports for.
#[derive(Clone, Debug)]
pub struct Reported {
    /// The listener's health reporter.
    pub reporter: HealthReporter,
    /// Its services besides `""`.
    pub services: Vec<&'static str>,
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
        })
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
        self.set(Err("the node is stopping".into())).await;
    }

    /// Checks once and reports the result where it changed.
    pub async fn check(&self, node: &Node, workers: &Workers) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let verdict = readiness(node, workers).await;
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        self.set(verdict).await;
    }

    async fn set(&self, verdict: Result<(), String>) {
        let ready = verdict.is_ok();
        let was = self.ready.swap(ready, Ordering::SeqCst);
        let why = verdict.err();
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
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for listener in &self.listeners {
            listener.reporter.set_service_status("", status).await;
            for service in &listener.services {
                listener.reporter.set_service_status(*service, status).await;
            }
        }
    }
}

/// Whether the node can take work now: its database answers within a few seconds, and no
/// worker has been failing for longer than the configured limit.
async fn readiness(node: &Node, workers: &Workers) -> Result<(), String> {
    match tokio::time::timeout(DATABASE_CHECK_TIMEOUT, node.store().ping()).await {
        Err(_) => {
            return Err(format!(
                "the database did not answer within {DATABASE_CHECK_TIMEOUT:?}"
            ));
        }
        Ok(Err(error)) => return Err(format!("the database cannot be reached: {error}")),
        Ok(Ok(())) => {}
    }
    let failing = workers.failing_longer_than(node.limits().worker_down_limit);
    if !failing.is_empty() {
        return Err(format!(
            "workers failing for longer than {:?}: {}",
            node.limits().worker_down_limit,
            failing.join(", ")
        ));
    }
    Ok(())
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
            _ = shutdown.changed() => {}
        }
    }
}
