//! The audit sealer: gives committed audit records their chain positions, in commit order, and
//! signs checkpoints ([`Node::seal_audit`]). Every replica runs one; one seals at a time (the
//! others find the sequencer busy and wait for their next turn). Sealing runs after commit, so
//! intake never waits for it.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, instrument};

use super::Step;
use crate::node::Node;
use crate::node::audit::SealReport;
use crate::store::StoreError;

/// How often the sealer looks for records to seal when it found none.
pub const SEAL_INTERVAL: Duration = Duration::from_secs(1);

/// One sealing step.
#[instrument(skip_all)]
pub async fn run_once(node: &Arc<Node>) -> Result<SealReport, StoreError> {
    let report = node.seal_audit().await?;
    if report.sealed > 0 {
        debug!(
            sealed = report.sealed,
            position = report.head.map(|head| head.position),
            "audit records sealed"
        );
    }
    Ok(report)
}

/// [`run_once`] as a loop step: at once again after a full batch, otherwise after
/// [`SEAL_INTERVAL`].
pub async fn step(node: &Arc<Node>) -> Result<Step, StoreError> {
    let report = run_once(node).await?;
    Ok(if report.sealed as i64 >= crate::node::audit::SEAL_BATCH {
        Step::Worked
    } else {
        Step::Idle(SEAL_INTERVAL)
    })
}
