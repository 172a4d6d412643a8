//! Supervised workers: every background worker runs under [`supervise`], which restarts it with
//! backoff when it panics or stops before shutdown, logs why, counts the restart, and keeps
//! each worker's state on one board ([`Workers`]) that readiness reads. A worker never
//! disappears silently.
//!
//! A step that fails (its `run_once` returned an error) is retried by the worker's own loop
//! ([`crate::workers::run_loop`]); the supervisor handles what the loop cannot: a panic, or a
//! loop that ended while the node is still running.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info};

use crate::metrics::Metrics;

pub use crate::config::WORKER_STABLE_AFTER as STABLE_AFTER;
use crate::config::{WORKER_FIRST_RESTART as FIRST_RESTART, WORKER_MAX_RESTART as MAX_RESTART};

/// One worker's state.
#[derive(Clone, Debug)]
pub struct WorkerState {
    /// Restarts since the node started.
    pub restarts: u64,
    /// Whether it is running now (false while it waits to be restarted).
    pub running: bool,
    /// When it last started.
    pub started_at: Instant,
    /// When the current streak of failures began; `None` while well.
    pub failing_since: Option<Instant>,
    /// Why it last failed.
    pub last_failure: Option<String>,
}

impl WorkerState {
    /// Whether it has been failing (down, or restarted and not yet stable) for longer than
    /// `limit` at `now`.
    fn failing_longer_than(&self, limit: Duration, now: Instant) -> bool {
        let Some(since) = self.failing_since else {
            return false;
        };
        let stable = self.running && now.duration_since(self.started_at) >= STABLE_AFTER;
        !stable && now.duration_since(since) > limit
    }
}

/// The state of every supervised worker, by name.
#[derive(Debug, Default)]
pub struct Workers {
    states: Mutex<BTreeMap<String, WorkerState>>,
}

impl Workers {
    /// An empty board.
    pub fn new() -> Arc<Workers> {
        Arc::new(Workers::default())
    }

    /// Every worker's state, by name.
    pub fn snapshot(&self) -> BTreeMap<String, WorkerState> {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The workers that have been failing for longer than `limit`: the node is not ready for
    /// what they serve.
    pub fn failing_longer_than(&self, limit: Duration) -> Vec<String> {
        let now = Instant::now();
        self.snapshot()
            .into_iter()
            .filter(|(_, state)| state.failing_longer_than(limit, now))
            .map(|(name, _)| name)
            .collect()
    }

    fn started(&self, name: &str) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let state = states.entry(name.to_string()).or_insert(WorkerState {
            restarts: 0,
            running: false,
            started_at: now,
            failing_since: None,
            last_failure: None,
        });
        state.running = true;
        state.started_at = now;
    }

    /// Records a failure.
    fn failed(&self, name: &str, why: &str) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let Some(state) = states.get_mut(name) else {
            return;
        };
        let new_streak =
            state.failing_since.is_none() || now.duration_since(state.started_at) >= STABLE_AFTER;
        if new_streak {
            state.failing_since = Some(now);
        }
        state.running = false;
        state.restarts += 1;
        state.last_failure = Some(why.to_string());
    }
}

/// Runs the worker that `start` makes, under supervision, until `shutdown` turns true: when it
/// panics, or ends while the node still runs, it is logged with its cause, counted, and
/// started again after a backoff (1 s doubling to 30 s while it keeps failing).
pub fn supervise<F, Fut>(
    tasks: &mut JoinSet<()>,
    workers: &Arc<Workers>,
    metrics: &Arc<Metrics>,
    name: impl Into<String>,
    mut shutdown: watch::Receiver<bool>,
    start: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = name.into();
    let workers = Arc::clone(workers);
    let metrics = Arc::clone(metrics);
    // the kind of worker (`delivery`, not `delivery:431322`): a bounded label
    let kind = name.split(':').next().unwrap_or_default().to_string();
    tasks.spawn(async move {
        let mut in_a_row: u32 = 0;
        loop {
            workers.started(&name);
            let ran_from = Instant::now();
            // owned here: when the supervisor is dropped or aborted, so is its worker
            let mut running = JoinSet::new();
            running.spawn(start());
            let outcome = running.join_next().await;
            if *shutdown.borrow() {
                return;
            }
            let why = match outcome {
                None | Some(Ok(())) => "the worker stopped while the node runs".to_string(),
                Some(Err(join)) if join.is_panic() => {
                    format!("panicked: {}", panic_message(join.into_panic()))
                }
                Some(Err(join)) => format!("was cancelled: {join}"),
            };
            workers.failed(&name, &why);
            in_a_row = if ran_from.elapsed() >= STABLE_AFTER {
                1
            } else {
                in_a_row.saturating_add(1)
            };
            let wait = FIRST_RESTART
                .saturating_mul(1 << in_a_row.saturating_sub(1).min(5))
                .min(MAX_RESTART);
            metrics.worker_restarted(&kind);
            error!(worker = %name, cause = %why, restart_in = ?wait, "worker failed; restarting it");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // stopping, or the node that would say stop is gone
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            info!(worker = %name, "worker restarted");
        }
    });
}

/// The text a panic carried, when it was a string.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

/// What every supervised worker of one node shares: the board, the metrics and the shutdown
/// signal, so that starting one names only the worker.
#[derive(Debug)]
pub struct Supervisor {
    /// Where each worker's state is kept.
    pub workers: Arc<Workers>,
    /// Where restarts are counted.
    pub metrics: Arc<Metrics>,
    /// Turns true when the node stops.
    pub shutdown: watch::Receiver<bool>,
}

impl Supervisor {
    /// [`supervise`]s the worker `start` makes (given the shutdown signal), under `name`.
    pub fn run<F, Fut>(&self, tasks: &mut JoinSet<()>, name: impl Into<String>, start: F)
    where
        F: Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.shutdown.clone();
        supervise(
            tasks,
            &self.workers,
            &self.metrics,
            name,
            self.shutdown.clone(),
            move || start(stop.clone()),
        );
    }
}
