//! The `Exchange` gRPC service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::{Instrument, info_span, warn};
use uuid::Uuid;

use super::convert::{
    confirmation_from_wire, confirmation_to_wire, inquiry_from_wire, status_from_wire, status_to_wire,
    timestamp_to_wire,
};
use super::intake::Intake;
use super::reconcile;
use crate::domain::division::CountyCode;
use crate::domain::message::{Accepted, Incoming};
use crate::domain::message::{Confirmation, FieldViolation, Inquiry};
use crate::domain::policy::{Rejection, RejectionCode};
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_server::Exchange;
use crate::status::{internal, rejected_of, status_of};
use crate::store::StoreError;
use crate::store::audit::AuditEntry;
use crate::tls::{certificate_not_after, peer_county};

/// Serves peers on behalf of one node.
#[derive(Debug)]
pub struct ExchangeService<N> {
    /// The node that owns the messages.
    node: Arc<N>,
}

impl<N> Clone for ExchangeService<N> {
    fn clone(&self) -> Self {
        ExchangeService {
            node: Arc::clone(&self.node),
        }
    }
}

impl<N: Intake> ExchangeService<N> {
    /// A service for `node`.
    pub fn new(node: Arc<N>) -> ExchangeService<N> {
        ExchangeService { node }
    }

    /// The verified peer county, or `UNAUTHENTICATED`.
    fn peer<T>(&self, request: &Request<T>) -> Result<CountyCode, Status> {
        let county = peer_county(request)?;
        CountyCode::parse(county.as_str()).map_err(|_| {
            status_of(&Rejection::new(
                RejectionCode::Unauthenticated,
                "client certificate names no known county",
            ))
        })
    }

    /// Refuses an oversized batch as a whole, with an audit record.
    async fn refuse_batch(&self, peer: CountyCode, kind: &str, size: usize) -> Status {
        let limit = self.node.limits().max_batch_messages;
        let rejection = Rejection::new(
            RejectionCode::ResourceExhausted,
            format!("batch of {size} messages exceeds the limit of {limit}"),
        );
        let entry = AuditEntry::inbound_rejected(Some(peer), rejection.audit_reason()).kind(Some(kind));
        if let Err(error) = self.node.audit_refusal(entry).await {
            return internal(error);
        }
        status_of(&rejection)
    }

    /// A request stream that broke: the status goes back to the peer, so that it never takes a
    /// refused batch for an empty one. A message over the size limit (tonic's decoder refuses it
    /// as `OUT_OF_RANGE`) is a refusal like any other and is audited; other breaks (the peer went
    /// away, a garbled frame) are only logged.
    async fn broken_stream(&self, peer: CountyCode, kind: &str, status: Status) -> Status {
        warn!(%status, kind, "incoming stream broke");
        if status.code() != Code::OutOfRange {
            return status;
        }
        // tonic's text names sizes only: "decoded message length too large: found …".
        let reason = format!("OUT_OF_RANGE: {}", status.message());
        let entry = AuditEntry::inbound_rejected(Some(peer), reason).kind(Some(kind));
        if let Err(error) = self.node.audit_refusal(entry).await {
            return internal(error);
        }
        status
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub(super) fn accepted_of(accepted: &Accepted) -> pb::Accepted {
    pb::Accepted {
        received_at: Some(timestamp_to_wire(accepted.received_at)),
        due_at: accepted.due_at.map(timestamp_to_wire),
    }
}

#[tonic::async_trait]
impl<N: Intake> Exchange for ExchangeService<N> {
    type SubmitInquiriesStream = BoxStream<pb::ReceiptBatch>;
    type DeliverConfirmationsStream = BoxStream<pb::AckBatch>;
    type DeliverNoticesStream = BoxStream<pb::AckBatch>;
    type DeliverFeedbackStream = BoxStream<pb::AckBatch>;
    type ReconcileStream = BoxStream<pb::ReconcileResponse>;

    async fn submit_inquiries(
        &self,
        request: Request<Streaming<pb::InquiryBatch>>,
    ) -> Result<Response<Self::SubmitInquiriesStream>, Status> {
        self.serve_batches(request)
    }

    async fn reconcile(
        &self,
        request: Request<Streaming<pb::ReconcileRequest>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let peer = self.peer(&request)?;
        let incoming = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let node = Arc::clone(&self.node);
        let span = info_span!("reconcile", peer = %peer);
        tokio::spawn(
            reconcile::respond(incoming, sender, move |begin| async move {
                reconcile::open(&node, peer, begin).await
            })
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn submit_inquiry(
        &self,
        request: Request<pb::SubmitInquiryRequest>,
    ) -> Result<Response<pb::SubmitInquiryResponse>, Status> {
        let peer = self.peer(&request)?;
        let request = request.into_inner();
        let wait = Duration::from_millis(u64::from(request.wait_ms)).min(self.node.limits().max_wait());
        let wire = request.inquiry.unwrap_or_default();
        if let Ok(id) = uuid::Uuid::parse_str(&wire.message_id) {
            // only a well-formed id and an agreement id we hold are worth a log field
            let agreement = wire
                .agreement
                .as_ref()
                .map(|a| a.id.as_str())
                .filter(|id| !crate::domain::privacy::holds_id_number(id));
            crate::rpc_trace::record_message(&id, agreement);
        }
        let converted = inquiry_from_wire(&wire, "inquiry").map_err(|v| (wire.message_id.parse().ok(), v));
        let (accepted, confirmation) = self
            .node
            .receive_window_inquiry(peer, converted, wait)
            .await
            .map_err(internal)?
            .map_err(|rejection| status_of(&rejection))?;
        Ok(Response::new(pb::SubmitInquiryResponse {
            accepted: Some(accepted_of(&accepted)),
            confirmation: confirmation.as_ref().map(confirmation_to_wire),
        }))
    }

    async fn acknowledge_confirmations(
        &self,
        request: Request<pb::ConfirmationAcks>,
    ) -> Result<Response<pb::AckBatch>, Status> {
        let peer = self.peer(&request)?;
        let ids = request.into_inner().message_ids;
        if ids.len() > self.node.limits().max_batch_messages {
            return Err(self.refuse_batch(peer, "confirmation_acks", ids.len()).await);
        }
        let parsed: Vec<Option<Uuid>> = ids.iter().map(|id| Uuid::parse_str(id).ok()).collect();
        let known: Vec<Uuid> = parsed.iter().flatten().copied().collect();
        let mut results = self
            .node
            .acknowledge_inline_answers(peer, &known)
            .await
            .map_err(internal)?
            .into_iter();
        let receipts = ids
            .into_iter()
            .zip(parsed)
            .enumerate()
            .map(|(index, (id, parsed))| {
                let result = match parsed {
                    Some(_) => results.next().unwrap_or(Ok(())),
                    None => Err(Rejection::invalid(vec![FieldViolation::new(
                        format!("message_ids[{index}]"),
                        "must be a UUID",
                    )])),
                };
                pb::Receipt {
                    answer: None,
                    message_id: if parsed.is_some() { id } else { String::new() },
                    result: Some(match result {
                        Ok(()) => pb::receipt::Result::Accepted(pb::Accepted::default()),
                        Err(rejection) => pb::receipt::Result::Rejected(rejected_of(&rejection)),
                    }),
                }
            })
            .collect();
        Ok(Response::new(pb::AckBatch { receipts }))
    }

    async fn deliver_confirmations(
        &self,
        request: Request<Streaming<pb::ConfirmationBatch>>,
    ) -> Result<Response<Self::DeliverConfirmationsStream>, Status> {
        self.serve_batches(request)
    }

    async fn deliver_notices(
        &self,
        request: Request<Streaming<pb::NoticeBatch>>,
    ) -> Result<Response<Self::DeliverNoticesStream>, Status> {
        self.serve_batches(request)
    }

    async fn deliver_feedback(
        &self,
        request: Request<Streaming<pb::FeedbackBatch>>,
    ) -> Result<Response<Self::DeliverFeedbackStream>, Status> {
        self.serve_batches(request)
    }

    async fn peer_status(
        &self,
        request: Request<pb::PeerStatusRequest>,
    ) -> Result<Response<pb::PeerStatusResponse>, Status> {
        let peer = self.peer(&request)?;
        let received = chrono::Utc::now();
        let not_after = request
            .peer_certs()
            .and_then(|chain| chain.first().and_then(|leaf| certificate_not_after(leaf)));
        let exchanged = match status_from_wire(request.get_ref().status.as_ref(), "status") {
            Ok(theirs) => self
                .node
                .exchange_status(peer, theirs, received, not_after)
                .await
                .map_err(internal)?,
            Err(violations) => Err(Rejection::invalid(violations)),
        };
        match exchanged {
            Ok(ours) => Ok(Response::new(pb::PeerStatusResponse {
                status: Some(status_to_wire(&ours)),
            })),
            Err(rejection) => {
                let entry = AuditEntry::inbound_rejected(Some(peer), rejection.audit_reason())
                    .kind(Some("peer_status"));
                self.node.audit_refusal(entry).await.map_err(internal)?;
                Err(status_of(&rejection))
            }
        }
    }
}

// === the one batch-stream handler ===

/// A batch a peer streams to us: its messages on the wire, how each one converts, which of the
/// node's intakes takes them, and the reply that carries their receipts.
pub(super) trait InboundBatch: Send + 'static {
    /// One message on the wire.
    type Wire: Send + Sync;
    /// The message in domain terms.
    type Message: Send;
    /// What the node returns for an accepted message.
    type Receipt: Send;
    /// The reply to one batch.
    type Reply: Send + 'static;

    /// How the audit names a refused batch of this type.
    const KIND: &'static str;
    /// The batch's repeated field, as field violations name it (`inquiries[3].subject`).
    const FIELD: &'static str;

    /// The messages in the batch.
    fn messages(&self) -> &[Self::Wire];

    /// The id the peer gave a message, echoed in its receipt whatever it is.
    fn message_id(wire: &Self::Wire) -> &str;

    /// Wire → domain, with field violations named under `path`.
    fn from_wire(wire: &Self::Wire, path: &str) -> Result<Self::Message, Vec<FieldViolation>>;

    /// Hands the converted batch to the node's intake for this type (and for what the batch
    /// asks of it).
    fn receive(
        &self,
        node: &impl Intake,
        peer: CountyCode,
        batch: Vec<Incoming<Self::Message>>,
    ) -> impl Future<Output = Result<Vec<Result<Self::Receipt, Rejection>>, StoreError>> + Send;

    /// The `Accepted` part of an accepted message's receipt.
    fn accepted(receipt: &Self::Receipt) -> pb::Accepted;

    /// The answer an accepted message's receipt carries, if any.
    fn answer(receipt: &Self::Receipt) -> Option<pb::StatusConfirmation> {
        let _ = receipt;
        None
    }

    /// The reply carrying one receipt per message, in order.
    fn reply(receipts: Vec<pb::Receipt>) -> Self::Reply;
}

impl<N: Intake> ExchangeService<N> {
    /// The one batch-stream handler. For each batch the peer sends: a stream that broke goes
    /// back as its status; an oversized batch is refused as a whole; otherwise every message is
    /// converted and handed to the node, and the reply carries one receipt per message, in
    /// order. The stream ends at the first status sent back.
    fn serve_batches<B: InboundBatch>(
        &self,
        request: Request<Streaming<B>>,
    ) -> Result<Response<BoxStream<B::Reply>>, Status> {
        let peer = self.peer(&request)?;
        let mut incoming = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let service = self.clone();
        let span = info_span!("receive_batches", peer = %peer, kind = B::KIND);
        tokio::spawn(
            async move {
                loop {
                    let batch = match incoming.message().await {
                        Ok(Some(batch)) => batch,
                        Ok(None) => break,
                        Err(status) => {
                            let status = service.broken_stream(peer, B::KIND, status).await;
                            let _ = sender.send(Err(status)).await;
                            break;
                        }
                    };
                    let messages = batch.messages();
                    if messages.len() > service.node.limits().max_batch_messages {
                        let status = service.refuse_batch(peer, B::KIND, messages.len()).await;
                        let _ = sender.send(Err(status)).await;
                        break;
                    }
                    let converted = messages
                        .iter()
                        .enumerate()
                        .map(|(index, wire)| {
                            B::from_wire(wire, &format!("{}[{index}]", B::FIELD))
                                .map_err(|violations| (B::message_id(wire).parse().ok(), violations))
                        })
                        .collect();
                    let reply = match batch.receive(&*service.node, peer, converted).await {
                        Ok(results) => Ok(B::reply(
                            messages
                                .iter()
                                .zip(&results)
                                .map(|(wire, result)| receipt_of::<B>(B::message_id(wire), result))
                                .collect(),
                        )),
                        Err(error) => Err(internal(error)),
                    };
                    let failed = reply.is_err();
                    if sender.send(reply).await.is_err() || failed {
                        break;
                    }
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// The receipt for one message of a batch, in the batch's order. It names the message by its id
/// only when that id is a UUID: an id that failed validation is not echoed (it could be anything,
/// a person's ID number included), and the receipt's position says which message it answers.
fn receipt_of<B: InboundBatch>(message_id: &str, result: &Result<B::Receipt, Rejection>) -> pb::Receipt {
    let named = uuid::Uuid::parse_str(message_id).is_ok();
    pb::Receipt {
        message_id: if named {
            message_id.to_string()
        } else {
            String::new()
        },
        result: Some(match result {
            Ok(receipt) => pb::receipt::Result::Accepted(B::accepted(receipt)),
            Err(rejection) => pb::receipt::Result::Rejected(rejected_of(rejection)),
        }),
        answer: result.as_ref().ok().and_then(B::answer),
    }
}

impl InboundBatch for pb::InquiryBatch {
    type Wire = pb::Inquiry;
    type Message = Inquiry;
    type Receipt = (Accepted, Option<Confirmation>);
    type Reply = pb::ReceiptBatch;

    const KIND: &'static str = "inquiry_batch";
    const FIELD: &'static str = "inquiries";

    fn messages(&self) -> &[pb::Inquiry] {
        &self.inquiries
    }

    fn message_id(wire: &pb::Inquiry) -> &str {
        &wire.message_id
    }

    fn from_wire(wire: &pb::Inquiry, path: &str) -> Result<Inquiry, Vec<FieldViolation>> {
        inquiry_from_wire(wire, path)
    }

    async fn receive(
        &self,
        node: &impl Intake,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
    ) -> Result<Vec<Result<Self::Receipt, Rejection>>, StoreError> {
        if self.answer_inline {
            return node.receive_inquiries_answered_inline(peer, batch).await;
        }
        Ok(node
            .receive_inquiries(peer, batch)
            .await?
            .into_iter()
            .map(|result| result.map(|accepted| (accepted, None)))
            .collect())
    }

    fn accepted((accepted, _): &Self::Receipt) -> pb::Accepted {
        accepted_of(accepted)
    }

    fn answer((_, answer): &Self::Receipt) -> Option<pb::StatusConfirmation> {
        answer.as_ref().map(confirmation_to_wire)
    }

    fn reply(receipts: Vec<pb::Receipt>) -> pb::ReceiptBatch {
        pb::ReceiptBatch { receipts }
    }
}

impl InboundBatch for pb::ConfirmationBatch {
    type Wire = pb::StatusConfirmation;
    type Message = Confirmation;
    type Receipt = ();
    type Reply = pb::AckBatch;

    const KIND: &'static str = "confirmation_batch";
    const FIELD: &'static str = "confirmations";

    fn messages(&self) -> &[pb::StatusConfirmation] {
        &self.confirmations
    }

    fn message_id(wire: &pb::StatusConfirmation) -> &str {
        &wire.message_id
    }

    fn from_wire(wire: &pb::StatusConfirmation, path: &str) -> Result<Confirmation, Vec<FieldViolation>> {
        confirmation_from_wire(wire, path)
    }

    async fn receive(
        &self,
        node: &impl Intake,
        peer: CountyCode,
        batch: Vec<Incoming<Confirmation>>,
    ) -> Result<Vec<Result<(), Rejection>>, StoreError> {
        node.receive_confirmations(peer, batch).await
    }

    fn accepted((): &()) -> pb::Accepted {
        pb::Accepted::default()
    }

    fn reply(receipts: Vec<pb::Receipt>) -> pb::AckBatch {
        pb::AckBatch { receipts }
    }
}
