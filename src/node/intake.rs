//! The node behind the exchange edge: [`Intake`] implemented by delegating to the node's own
//! operations, so the edge reaches the node without naming it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Node;
use super::reconcile::{NodeSession, ReconcileError};
use crate::config::Limits;
use crate::domain::division::CountyCode;
use crate::domain::message::{Accepted, AgreementRef, Confirmation, Incoming, Inquiry, MessageType, Notice};
use crate::domain::peer_status::{ClockReading, NodeStatus};
use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::protocol::{PeerCommitted, Responded, RunBegin};
use crate::domain::riblt::Element;
use crate::exchange::intake::{Intake, Results, RunSession};
use crate::store::StoreError;
use crate::store::audit::AuditEntry;

impl Intake for Node {
    type Session = NodeSession;

    fn limits(&self) -> &Limits {
        Node::limits(self)
    }

    async fn receive_inquiries(&self, peer: CountyCode, batch: Vec<Incoming<Inquiry>>) -> Results<Accepted> {
        counted(
            self,
            MessageType::Inquiry,
            Node::receive_inquiries(self, peer, batch).await,
        )
    }

    async fn receive_confirmations(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Confirmation>>,
    ) -> Results<()> {
        counted(
            self,
            MessageType::Confirmation,
            Node::receive_confirmations(self, peer, batch).await,
        )
    }

    async fn receive_notices(&self, peer: CountyCode, batch: Vec<Incoming<Notice>>) -> Results<Accepted> {
        counted(
            self,
            MessageType::Notice,
            Node::receive_notices(self, peer, batch).await,
        )
    }

    async fn receive_feedback(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<crate::domain::feedback::Feedback>>,
    ) -> Results<Accepted> {
        counted(
            self,
            MessageType::Feedback,
            Node::receive_feedback(self, peer, batch).await,
        )
    }

    async fn receive_inquiries_answered_inline(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
    ) -> Results<(Accepted, Option<Confirmation>)> {
        counted(
            self,
            MessageType::Inquiry,
            Node::receive_inquiries_answered_inline(self, peer, batch).await,
        )
    }

    async fn receive_window_inquiry(
        &self,
        peer: CountyCode,
        incoming: Incoming<Inquiry>,
        wait: Duration,
    ) -> Result<Result<(Accepted, Option<Confirmation>), Rejection>, StoreError> {
        let reply = Node::receive_window_inquiry(self, peer, incoming, wait).await;
        if let Ok(verdict) = &reply {
            let metrics = self.metrics();
            metrics.inbound(
                MessageType::Inquiry,
                verdict.as_ref().map(|_| ()).map_err(|r| r.code),
            );
        }
        reply
    }

    async fn acknowledge_inline_answers(&self, peer: CountyCode, ids: &[Uuid]) -> Results<()> {
        Node::acknowledge_inline_answers(self, peer, ids).await
    }

    async fn exchange_status(
        &self,
        peer: CountyCode,
        theirs: NodeStatus,
        received: DateTime<Utc>,
        certificate_not_after: Option<i64>,
    ) -> Result<Result<NodeStatus, Rejection>, StoreError> {
        if self.agreements().with_peer(peer).next().is_none() {
            // a county we hold no agreement with learns nothing about us and changes nothing
            return Ok(Err(Rejection::new(
                RejectionCode::PermissionDenied,
                format!("no agreement between {} and {peer}", self.county()),
            )));
        }
        if let Some(not_after) = certificate_not_after {
            // every peer calls at least every status interval: its certificate's expiry stays
            // current, for the expiry alert
            self.metrics()
                .certificate_expiry("peer", peer.as_str(), not_after);
        }
        let clock = ClockReading::one_way(received, theirs.clock);
        self.record_peer_status(peer, &theirs, clock).await?;
        Ok(Ok(self.status_for(peer).await?))
    }

    async fn audit_refusal(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.store().append_audit(&entry).await
    }

    async fn open_reconcile(
        self: &Arc<Self>,
        peer: CountyCode,
        begin: RunBegin,
    ) -> Result<Result<NodeSession, Rejection>, StoreError> {
        match Node::open_reconcile(self, peer, begin).await {
            Ok(session) => Ok(Ok(session)),
            Err(ReconcileError::Refused(rejection)) => Ok(Err(rejection)),
            Err(busy @ ReconcileError::AlreadyRunning { .. }) => {
                Ok(Err(Rejection::new(RejectionCode::Aborted, busy.to_string())))
            }
            Err(ReconcileError::Store(error)) => Err(error),
        }
    }

    async fn audit_refused_reconcile(
        &self,
        peer: CountyCode,
        claimed: Option<&AgreementRef>,
        reason: String,
    ) -> Result<(), StoreError> {
        Node::audit_refused_reconcile(self, peer, claimed, reason).await
    }
}

/// Counts each message of a batch from a peer as accepted or refused, and passes the results on.
fn counted<R>(node: &Node, kind: MessageType, results: Results<R>) -> Results<R> {
    if let Ok(verdicts) = &results {
        for verdict in verdicts {
            node.metrics()
                .inbound(kind, verdict.as_ref().map(|_| ()).map_err(|r| r.code));
        }
    }
    results
}

impl RunSession for NodeSession {
    fn elements(&self) -> &[Element] {
        NodeSession::elements(self)
    }

    fn describe(&self, ours_only: &[Element]) -> DifferenceDetail {
        NodeSession::describe(self, ours_only)
    }

    async fn commit(self, responded: Responded) -> Result<PeerCommitted, StoreError> {
        NodeSession::commit(self, responded).await
    }

    async fn abandon(self, responded: Responded, reason: String) {
        NodeSession::abandon(self, responded, reason).await
    }
}
