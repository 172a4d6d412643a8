//! Following the database's primary when the node was given several addresses: each step checks
//! that the primary in use still answers as one and, when it does not, moves the pool to the
//! primary among the addresses (see `crate::store::failover`, which also keeps the fence).

use std::time::Duration;

use super::Step;
use crate::node::Node;
use crate::store::StoreError;

/// How often the primary in use is checked: how soon after a promotion the node writes again.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// One check (and, when the primary went away, one search for the new one). An error means no
/// address may be used now; the work waits meanwhile, peers are told UNAVAILABLE and retry.
pub async fn run_once(node: &Node) -> Result<Step, StoreError> {
    node.store().follow_primary().await?;
    Ok(Step::Idle(CHECK_INTERVAL))
}
