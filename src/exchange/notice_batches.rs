//! Notices and their feedback as batches a peer streams to us, for the one batch handler
//! ([`InboundBatch`]).

use super::convert::{feedback_from_wire, notice_from_wire};
use super::intake::Intake;
use super::server::{InboundBatch, accepted_of};
use crate::domain::division::CountyCode;
use crate::domain::feedback::Feedback;
use crate::domain::message::{Accepted, FieldViolation, Incoming, Notice};
use crate::domain::policy::Rejection;
use crate::proto::exchange as pb;
use crate::store::StoreError;

impl InboundBatch for pb::NoticeBatch {
    type Wire = pb::Notice;
    type Message = Notice;
    type Receipt = Accepted;
    type Reply = pb::AckBatch;

    const KIND: &'static str = "notice_batch";
    const FIELD: &'static str = "notices";

    fn messages(&self) -> &[pb::Notice] {
        &self.notices
    }

    fn message_id(wire: &pb::Notice) -> &str {
        &wire.message_id
    }

    fn from_wire(wire: &pb::Notice, path: &str) -> Result<Notice, Vec<FieldViolation>> {
        notice_from_wire(wire, path)
    }

    async fn receive(
        &self,
        node: &impl Intake,
        peer: CountyCode,
        batch: Vec<Incoming<Notice>>,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        node.receive_notices(peer, batch).await
    }

    fn accepted(receipt: &Accepted) -> pb::Accepted {
        accepted_of(receipt)
    }

    fn reply(receipts: Vec<pb::Receipt>) -> pb::AckBatch {
        pb::AckBatch { receipts }
    }
}

impl InboundBatch for pb::FeedbackBatch {
    type Wire = pb::NoticeFeedback;
    type Message = Feedback;
    type Receipt = Accepted;
    type Reply = pb::AckBatch;

    const KIND: &'static str = "feedback_batch";
    const FIELD: &'static str = "feedback";

    fn messages(&self) -> &[pb::NoticeFeedback] {
        &self.feedback
    }

    fn message_id(wire: &pb::NoticeFeedback) -> &str {
        &wire.message_id
    }

    fn from_wire(wire: &pb::NoticeFeedback, path: &str) -> Result<Feedback, Vec<FieldViolation>> {
        feedback_from_wire(wire, path)
    }

    async fn receive(
        &self,
        node: &impl Intake,
        peer: CountyCode,
        batch: Vec<Incoming<Feedback>>,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        node.receive_feedback(peer, batch).await
    }

    fn accepted(receipt: &Accepted) -> pb::Accepted {
        accepted_of(receipt)
    }

    fn reply(receipts: Vec<pb::Receipt>) -> pb::AckBatch {
        pb::AckBatch { receipts }
    }
}
