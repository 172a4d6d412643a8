//! Changes reach every replica: several node processes of one county share one database, and
//! an agreement applied or retired through one of them (or what a peer said it holds) must take
//! effect on all within seconds. Each replica listens for the store's announcement (`NOTIFY`)
//! and reads the agreements again; a periodic check of their fingerprint catches an
//! announcement missed while the listening connection was down. (Registry imports need nothing
//! here: answers read the registry from the database each time.)

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{debug, warn};

use crate::node::Node;
use crate::store::StoreError;

/// Follows the agreements' changes until `shutdown` turns true.
pub async fn run(node: Arc<Node>, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
    let interval = node.limits().change_check_interval;
    let mut listener = node.store().agreement_changes().await?;
    let mut seen = node.store().agreements_fingerprint().await?;
    while !*shutdown.borrow() {
        let announced = tokio::select! {
            notification = listener.recv() => match notification {
                Ok(_) => true,
                Err(error) => {
                    // reconnected on the next recv; what was announced meanwhile is caught by
                    // the fingerprint below
                    warn!(%error, "listening for agreement changes failed; listening again");
                    tokio::time::sleep(interval.min(std::time::Duration::from_secs(1))).await;
                    false
                }
            },
            _ = tokio::time::sleep(interval) => false,
            _ = shutdown.changed() => return Ok(()),
        };
        let now = node.store().agreements_fingerprint().await?;
        if announced || now != seen {
            debug!(
                announced,
                "the agreements changed on the database; reading them again"
            );
            node.refresh_agreements().await?;
            seen = now;
        }
    }
    Ok(())
}
