//! The auto-answer worker: answers received inquiries from the registry when the agreement
//! allows it. Safe to run in several replicas (rows are claimed with `SKIP LOCKED`).

use std::sync::Arc;

use super::Step;
use crate::node::Node;
use crate::store::StoreError;

/// Inquiries answered per step (one transaction).
pub const BATCH: i64 = 500;

/// One step: answers up to [`BATCH`] waiting inquiries.
pub async fn run_once(node: &Arc<Node>) -> Result<Step, StoreError> {
    let answered = node.auto_answer_step(BATCH, None).await?;
    Ok(if answered.is_empty() {
        Step::Idle(node.limits().poll_interval)
    } else {
        Step::Worked
    })
}
