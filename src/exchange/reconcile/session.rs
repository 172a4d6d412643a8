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
use crate::exchange::intake::{Intake, RunSession};
use crate::proto::exchange as pb;
use crate::status::{code_name, internal, status_of};

/// Opens our side of the run `begin` starts (or the refusal the stream's first message already
/// is): a `begin` that cannot be read is refused here, the rest is the node's to check. Every
/// refusal is audited on the node.
pub async fn open<N: Intake>(
    node: &Arc<N>,
    peer: CountyCode,
    begin: Result<pb::ReconcileBegin, Status>,
) -> Result<Session<N::Session>, Status> {
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
            return match node.open_reconcile(peer, begin).await.map_err(internal)? {
                Ok(session) => Ok(Session(session)),
                Err(rejection) => Err(status_of(&rejection)),
            };
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
pub fn begin_from_wire(begin: &pb::ReconcileBegin) -> Result<RunBegin, Rejection> {
    let malformed = |reason: String| Rejection::new(RejectionCode::InvalidArgument, reason);
    let run_id = Uuid::from_str(&begin.run_id).map_err(|_| malformed("begin.run_id: not a UUID".into()))?;
    if begin.set_size > MAX_SET_SIZE {
        return Err(malformed(format!(
            "begin.set_size: exceeds the largest set a county holds ({MAX_SET_SIZE})"
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

/// The node's side of a run, as the protocol drives it.
pub struct Session<S>(S);

// === impl ResponderSession for Session ===

#[tonic::async_trait]
impl<S: RunSession> ResponderSession for Session<S> {
    fn elements(&self) -> &[Element] {
        self.0.elements()
    }

    fn describe(&self, ours_only: &[Element]) -> DifferenceDetail {
        self.0.describe(ours_only)
    }

    async fn commit(self, responded: Responded) -> Result<pb::ReconcileCommitted, Status> {
        let committed = self.0.commit(responded).await.map_err(internal)?;
        Ok(pb::ReconcileCommitted {
            repaired: committed.repaired,
            reported: committed.reported,
            inquiries_opened: committed.inquiries_opened,
        })
    }

    async fn abandon(self, responded: Responded, reason: String) {
        self.0.abandon(responded, reason).await;
    }
}
