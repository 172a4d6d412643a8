//! The deadlines worker: flags pending inquiries past their reply deadline, on both sides (ours
//! to answer, and theirs), once each, with an audit record.

use std::sync::Arc;

use chrono::Utc;

use super::Step;
use crate::node::Node;
use crate::store::StoreError;

/// One step: flags what became overdue since the last step, then idles for
/// `limits.deadline_check_interval`.
pub async fn run_once(node: &Arc<Node>) -> Result<Step, StoreError> {
    node.store().flag_overdue(Utc::now()).await?;
    Ok(Step::Idle(node.limits().deadline_check_interval))
}
