//! The deadlines worker: flags pending inquiries past their reply deadline, on both sides (ours
//! to answer, and theirs), once each, with an audit record.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Step;
use crate::node::Node;
use crate::store::StoreError;

/// How often deadlines are checked; they are whole days, so a minute is plenty.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// One step: flags what became overdue since the last step.
pub async fn run_once(node: &Arc<Node>) -> Result<Step, StoreError> {
    node.store().flag_overdue(Utc::now()).await?;
    Ok(Step::Idle(INTERVAL))
}
