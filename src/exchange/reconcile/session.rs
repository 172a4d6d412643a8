//! Our node's side of a run a peer started: the caller's `begin` read from the wire, the node's
//! refusals turned into statuses, and the node's session driven by [`respond`](super::respond).

use std::str::FromStr;
use std::sync::Arc;

use tonic::Status;
use uuid::Uuid;

use super::{Responded, ResponderSession, set_from_wire};
use crate::domain::division::CountyCode;
use crate::domain::message::AgreementRef;
use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::pacing::MAX_SET_SIZE;
use crate::domain::reconcile::protocol::RunBegin;
use crate::domain::riblt::Element;
use crate::exchange::status::{code_name, internal, status_of};
use crate::node::Node;
use crate::node::reconcile::{NodeSession, ReconcileError};
use crate::proto::exchange as pb;

/// Opens our side of the run `begin` starts (or the refusal the stream's first message already
/// is): a `begin` that cannot be read is refused here, the rest is the node's to check. Every
/// refusal is audited on the node.
pub async fn open(
    node: &Arc<Node>,
    peer: CountyCode,
    begin: Result<pb::ReconcileBegin, Status>,
) -> Result<NodeSession, Status> {
    let claimed = begin
        .as_ref()
        .ok()
        .and_then(|begin| begin.agreement.as_ref())
        .map(|agreement| AgreementRef {
            id: agreement.id.clone(),
            hash: agreement.hash.clone(),
        });
    let read = begin.and_then(|begin| begin_from_wire(&begin).map_err(|rejection| status_of(&rejection)));
    let refused = match read {
        Ok(begin) => {
            return node.open_reconcile(peer, begin).await.map_err(status_of_refusal);
        }
        Err(status) => status,
    };
    let reason = format!("{}: {}", code_name(refused.code()), refused.message());
    node.audit_refused_reconcile(peer, claimed.as_ref(), reason)
        .await
        .map_err(internal)?;
    Err(refused)
}

/// A `begin` as the node reads it; the refusal names the first malformed field.
fn begin_from_wire(begin: &pb::ReconcileBegin) -> Result<RunBegin, Rejection> {
    let malformed = |reason: String| Rejection::new(RejectionCode::InvalidArgument, reason);
    let run_id = Uuid::from_str(&begin.run_id).map_err(|_| malformed("begin.run_id: not a UUID".into()))?;
    if begin.set_size > MAX_SET_SIZE {
        return Err(malformed(format!(
            "begin.set_size: {} exceeds the largest set a county holds ({MAX_SET_SIZE})",
            begin.set_size
        )));
    }
    let set = set_from_wire(begin.set)
        .ok_or_else(|| malformed("begin.set: must be messages or shared_people".into()))?;
    let agreement = begin
        .agreement
        .as_ref()
        .ok_or_else(|| malformed("begin.agreement: required".into()))?;
    Ok(RunBegin {
        run_id,
        agreement: AgreementRef {
            id: agreement.id.clone(),
            hash: agreement.hash.clone(),
        },
        set,
        set_size: begin.set_size,
    })
}

/// What the peer is told when the node refuses its run.
fn status_of_refusal(error: ReconcileError) -> Status {
    match error {
        ReconcileError::Refused(rejection) => status_of(&rejection),
        ReconcileError::AlreadyRunning { .. } => Status::aborted(error.to_string()),
        ReconcileError::Store(error) => internal(error),
    }
}

// === impl ResponderSession for NodeSession ===

#[tonic::async_trait]
impl ResponderSession for NodeSession {
    fn elements(&self) -> &[Element] {
        NodeSession::elements(self)
    }

    fn describe(&self, ours_only: &[Element]) -> DifferenceDetail {
        NodeSession::describe(self, ours_only)
    }

    async fn commit(self, responded: Responded) -> Result<pb::ReconcileCommitted, Status> {
        let committed = NodeSession::commit(self, responded).await.map_err(internal)?;
        Ok(pb::ReconcileCommitted {
            repaired: committed.repaired,
            reported: committed.reported,
        })
    }

    async fn abandon(self, responded: Responded, reason: String) {
        NodeSession::abandon(self, responded, reason).await;
    }
}
