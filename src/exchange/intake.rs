//! The node as the exchange edge sees it: what the edge hands a peer's messages to, in domain
//! terms. The node implements [`Intake`]; the edge never names the node, so the layers point one
//! way (the edge converts and maps refusals, the node decides and stores).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::Limits;
use crate::domain::division::CountyCode;
use crate::domain::feedback::Feedback;
use crate::domain::message::{Accepted, AgreementRef, Confirmation, Incoming, Inquiry, Notice};
use crate::domain::peer_status::NodeStatus;
use crate::domain::policy::Rejection;
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::protocol::{PeerCommitted, Responded, RunBegin};
use crate::domain::riblt::Element;
use crate::store::StoreError;
use crate::store::audit::AuditEntry;

/// One result per message of a batch, in order.
pub type Results<R> = Result<Vec<Result<R, Rejection>>, StoreError>;

/// What the exchange edge needs from the node behind it.
pub trait Intake: Send + Sync + 'static {
    /// Our side of a reconciliation run a peer started.
    type Session: RunSession;

    /// Limits and timings in force.
    fn limits(&self) -> &Limits;

    /// A batch of inquiries from `peer`.
    fn receive_inquiries(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
    ) -> impl Future<Output = Results<Accepted>> + Send;

    /// A batch of answers to inquiries we sent `peer`.
    fn receive_confirmations(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Confirmation>>,
    ) -> impl Future<Output = Results<()>> + Send;

    /// A batch of notices from `peer`.
    fn receive_notices(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Notice>>,
    ) -> impl Future<Output = Results<Accepted>> + Send;

    /// A batch of feedback to notices we sent `peer`.
    fn receive_feedback(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Feedback>>,
    ) -> impl Future<Output = Results<Accepted>> + Send;

    /// A batch of inquiries from `peer` whose asker takes the answers inline: each result is
    /// the receipt and, when the node answered it in the same commit, the answer.
    fn receive_inquiries_answered_inline(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
    ) -> impl Future<Output = Results<(Accepted, Option<Confirmation>)>> + Send;

    /// One inquiry whose clerk waits up to `wait`: its receipt, and its answer when the node
    /// gave one within the wait.
    fn receive_window_inquiry(
        &self,
        peer: CountyCode,
        incoming: Incoming<Inquiry>,
        wait: Duration,
    ) -> impl Future<Output = Result<Result<(Accepted, Option<Confirmation>), Rejection>, StoreError>> + Send;

    /// `peer` stored the answers with these ids, which it received inline.
    fn acknowledge_inline_answers(
        &self,
        peer: CountyCode,
        ids: &[Uuid],
    ) -> impl Future<Output = Results<()>> + Send;

    /// `peer` told us its status, which arrived at `received` over a connection whose client
    /// certificate is valid until `certificate_not_after` (Unix seconds, when it could be
    /// read): recorded, and ours returned; or refused (a county we hold no agreement with).
    fn exchange_status(
        &self,
        peer: CountyCode,
        theirs: NodeStatus,
        received: DateTime<Utc>,
        certificate_not_after: Option<i64>,
    ) -> impl Future<Output = Result<Result<NodeStatus, Rejection>, StoreError>> + Send;

    /// Records a refusal of a whole call (an oversized batch, a stream over the size limit).
    fn audit_refusal(&self, entry: AuditEntry) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Checks a peer's `begin` and prepares our side of its run, or refuses it (audited).
    fn open_reconcile(
        self: &std::sync::Arc<Self>,
        peer: CountyCode,
        begin: RunBegin,
    ) -> impl Future<Output = Result<Result<Self::Session, Rejection>, StoreError>> + Send;

    /// Records a run refused before the node could read its `begin`.
    fn audit_refused_reconcile(
        &self,
        peer: CountyCode,
        claimed: Option<&AgreementRef>,
        reason: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Our side of one reconciliation run a peer started.
pub trait RunSession: Send + Sync + 'static {
    /// The elements of our set.
    fn elements(&self) -> &[Element];

    /// Names the elements only we hold, for the caller.
    fn describe(&self, ours_only: &[Element]) -> DifferenceDetail;

    /// Commits our part of the repairs and the run record; returns what the caller is told.
    fn commit(self, responded: Responded) -> impl Future<Output = Result<PeerCommitted, StoreError>> + Send;

    /// The run broke off before commit (`reason` names no person): records it, changes nothing.
    fn abandon(self, responded: Responded, reason: String) -> impl Future<Output = ()> + Send;
}
