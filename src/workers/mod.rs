//! Background workers. Each is one testable step (`run_once`) inside a trivial loop that sleeps,
//! wakes on notify, and stops on shutdown at a step boundary: delivery, auto-answer, deadlines,
//! the reconciliation scheduler, retention, webhooks, and following the database's primary.

pub mod audit_sealer;
pub mod auto_answer;
pub mod changes;
pub mod database;
pub mod deadlines;
pub mod delivery;
pub mod peer_status;
pub mod reconcile;
pub mod retention;
pub mod webhooks;

use std::future::Future;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::warn;

/// Whether a step found work; a step that did work is repeated at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Something was done: there may be more.
    Worked,
    /// Nothing to do until woken or until the given delay passes.
    Idle(Duration),
}

/// Runs `step` until `shutdown` turns true. Between idle steps waits for `wake`, the step's
/// delay, or shutdown; after a failed step waits `retry` (the error is logged).
pub async fn run_loop<F, Fut, E>(
    name: &'static str,
    mut shutdown: watch::Receiver<bool>,
    wake: &Notify,
    retry: Duration,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Step, E>>,
    E: std::fmt::Display,
{
    while !*shutdown.borrow() {
        let pause = match step().await {
            Ok(Step::Worked) => continue,
            Ok(Step::Idle(delay)) => delay,
            Err(error) => {
                warn!(worker = name, %error, "worker step failed");
                retry
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
            changed = shutdown.changed() => {
                // the node that would say stop is gone: stop
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
