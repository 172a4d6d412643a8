//! The audit chain on the operator API: checking it whole (`hancha audit verify --node`) and
//! what each peer showed of its chain (`hancha audit peers --node`). The CLI's direct path
//! (against the database) turns the same domain values into the same messages through
//! [`report_to_wire`] and [`peers_to_wire`].

use tonic::Status;

use super::internal;
use crate::domain::audit_verify::VerifyReport;
use crate::node::Node;
use crate::proto::operator as pb;
use crate::store::audit_witness::PeerWitness;

pub(super) async fn verify(node: &Node) -> Result<pb::VerifyAuditResponse, Status> {
    let report = node.verify_audit_chain().await.map_err(internal)?;
    Ok(report_to_wire(&report))
}

pub(super) async fn peers(node: &Node) -> Result<pb::AuditPeersResponse, Status> {
    let peers = node.store().peer_witness(None).await.map_err(internal)?;
    Ok(peers_to_wire(&peers))
}

/// A verification report for the wire.
pub fn report_to_wire(report: &VerifyReport) -> pb::VerifyAuditResponse {
    pb::VerifyAuditResponse {
        rows_checked: report.rows_checked,
        intact: report.intact,
        first_broken: report.first_broken.as_ref().map(|broken| pb::AuditBreak {
            position: broken.position,
            audit_id: broken.audit_id,
            problem: broken.problem.clone(),
        }),
        sealed_position: report.sealed_position,
        pending: report.pending,
        last_checkpoint: report
            .last_checkpoint
            .as_ref()
            .map(|checkpoint| pb::AuditCheckpointSummary {
                position: checkpoint.position,
                head: checkpoint.head.clone(),
                signed_at: checkpoint.signed_at.clone(),
                signature_valid: checkpoint.signature_valid,
            }),
    }
}

/// What the peers showed, for the wire.
pub fn peers_to_wire(peers: &[PeerWitness]) -> pb::AuditPeersResponse {
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| at.map(|at| at.to_rfc3339()).unwrap_or_default();
    pb::AuditPeersResponse {
        peers: peers
            .iter()
            .map(|peer| pb::AuditPeer {
                county: peer.peer.clone(),
                held_position: peer.held.as_ref().map(|held| held.body.point.position),
                held_head: peer
                    .held
                    .as_ref()
                    .map(|held| held.body.point.head.hex())
                    .unwrap_or_default(),
                held_signed_at: time(peer.held.as_ref().map(|held| held.body.signed_at)),
                received_at: time(peer.received_at),
                resumed_at: time(peer.resumed_at),
                fork_at: time(peer.fork.as_ref().map(|(at, _)| *at)),
                fork_detail: peer
                    .fork
                    .as_ref()
                    .map(|(_, detail)| detail.clone())
                    .unwrap_or_default(),
                holds_our_position: peer.holds_ours.map(|point| point.position),
            })
            .collect(),
    }
}
