//! Reading what a peer's receipt and its audit log say about refused messages.

use hancha::node::Node;
use hancha::proto::exchange as pb;
use hancha::store::audit::AuditEntry;

/// The `Accepted` part of a receipt, or a panic naming what came instead.
pub fn accepted(receipt: &pb::Receipt) -> &pb::Accepted {
    match &receipt.result {
        Some(pb::receipt::Result::Accepted(accepted)) => accepted,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

/// The `Rejected` part of a receipt, or a panic naming what came instead.
pub fn rejected(receipt: &pb::Receipt) -> &pb::Rejected {
    match &receipt.result {
        Some(pb::receipt::Result::Rejected(rejected)) => rejected,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Every `rejected` audit record on `node`, oldest first.
pub async fn audited_rejections(node: &Node) -> Vec<AuditEntry> {
    let mut records: Vec<AuditEntry> = node
        .store()
        .recent_audit(1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.entry)
        .filter(|entry| entry.outcome == "rejected")
        .collect();
    records.reverse();
    records
}
