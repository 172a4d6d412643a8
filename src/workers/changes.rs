//! Changes reach every replica: several node processes of one county share one database, and
//! an agreement applied or retired through one of them (or what a peer said it holds) must take
//! effect on all within seconds. Each replica listens for the store's announcement (`NOTIFY`)
//! and reads the agreements again; a periodic check of their fingerprint catches an
//! announcement missed while the listening connection was down. (Registry imports need nothing
//! here: answers read the registry from the database each time.)

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use tokio::sync::watch;
use tracing::{debug, warn};

use crate::node::Node;
use crate::store::StoreError;

/// Follows the agreements' changes until `shutdown` turns true. A database error is logged
/// and tried again after `limits.change_check_interval`: the worker outlives an outage of the
/// database rather than be restarted by its supervisor for it.
pub async fn run(node: Arc<Node>, mut shutdown: watch::Receiver<bool>) {
    let interval = node.limits().change_check_interval;
    let mut listener = None;
    let mut seen = None;
    while !*shutdown.borrow() {
        if listener.is_none() {
            match node.store().agreement_changes().await {
                Ok(connected) => listener = Some(connected),
                Err(error) => warn!(%error, "cannot listen for agreement changes; trying again"),
            }
        }
        let announced = tokio::select! {
            notification = next_announcement(&mut listener) => match notification {
                Ok(()) => true,
                Err(error) => {
                    // reconnected on the next recv; what was announced meanwhile is caught by
                    // the fingerprint below
                    warn!(%error, "listening for agreement changes failed; listening again");
                    false
                }
            },
            _ = tokio::time::sleep(interval) => false,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        if let Err(error) = follow(&node, announced, &mut seen).await {
            warn!(%error, "reading the agreements again failed; trying again");
            tokio::time::sleep(interval.min(Duration::from_secs(1))).await;
        }
    }
}

/// The next announcement on `listener`; never, while there is no listener.
async fn next_announcement(listener: &mut Option<PgListener>) -> Result<(), StoreError> {
    match listener {
        Some(listener) => listener.recv().await.map(|_| ()).map_err(StoreError::from),
        None => std::future::pending().await,
    }
}

/// Reads the agreements again when a change was announced or their fingerprint is not the one
/// `seen` last.
async fn follow(node: &Node, announced: bool, seen: &mut Option<String>) -> Result<(), StoreError> {
    let now = node.store().agreements_fingerprint().await?;
    if announced || seen.as_ref() != Some(&now) {
        debug!(
            announced,
            "the agreements changed on the database; reading them again"
        );
        node.refresh_agreements().await?;
        *seen = Some(now);
    }
    Ok(())
}
