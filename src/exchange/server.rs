//! The `Exchange` gRPC service.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::{Instrument, info_span, warn};
use uuid::Uuid;

use super::convert::{confirmation_from_wire, confirmation_to_wire, inquiry_from_wire, timestamp_to_wire};
use super::reconcile;
use super::status::{internal, rejected_of, status_of};
use crate::domain::division::CountyCode;
use crate::domain::message::FieldViolation;
use crate::domain::policy::{Rejection, RejectionCode};
use crate::node::{Accepted, Node};
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_server::Exchange;
use crate::store::audit::AuditEntry;
use crate::tls::peer_county;

/// Serves peers on behalf of one node.
#[derive(Clone, Debug)]
pub struct ExchangeService {
    /// The node that owns the messages.
    node: Arc<Node>,
}

impl ExchangeService {
    /// A service for `node`.
    pub fn new(node: Arc<Node>) -> ExchangeService {
        ExchangeService { node }
    }

    /// The verified peer county, or `UNAUTHENTICATED`.
    fn peer<T>(&self, request: &Request<T>) -> Result<CountyCode, Status> {
        let county = peer_county(request)?;
        CountyCode::parse(county.as_str())
            .map_err(|_| Status::unauthenticated("client certificate names no known county"))
    }

    /// Refuses an oversized batch as a whole, with an audit record.
    async fn refuse_batch(&self, peer: CountyCode, kind: &str, size: usize) -> Status {
        let limit = self.node.limits().max_batch_messages;
        let rejection = Rejection::new(
            RejectionCode::ResourceExhausted,
            format!("batch of {size} messages exceeds the limit of {limit}"),
        );
        let entry = AuditEntry {
            peer_county: Some(peer.to_string()),
            direction: "inbound".into(),
            kind: Some(kind.into()),
            outcome: "rejected".into(),
            reason: Some(rejection.audit_reason()),
            ..AuditEntry::default()
        };
        if let Err(error) = self.node.store().append_audit(&entry).await {
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
        let entry = AuditEntry {
            peer_county: Some(peer.to_string()),
            direction: "inbound".into(),
            kind: Some(kind.into()),
            outcome: "rejected".into(),
            // tonic's text names sizes only: "decoded message length too large: found …".
            reason: Some(format!("OUT_OF_RANGE: {}", status.message())),
            ..AuditEntry::default()
        };
        if let Err(error) = self.node.store().append_audit(&entry).await {
            return internal(error);
        }
        status
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn receipt_of(message_id: String, result: &Result<Accepted, Rejection>) -> pb::Receipt {
    pb::Receipt {
        message_id,
        result: Some(match result {
            Ok(accepted) => pb::receipt::Result::Accepted(accepted_of(accepted)),
            Err(rejection) => pb::receipt::Result::Rejected(rejected_of(rejection)),
        }),
    }
}

fn accepted_of(accepted: &Accepted) -> pb::Accepted {
    pb::Accepted {
        received_at: Some(timestamp_to_wire(accepted.received_at)),
        due_at: accepted.due_at.map(timestamp_to_wire),
    }
}

#[tonic::async_trait]
impl Exchange for ExchangeService {
    type SubmitInquiriesStream = BoxStream<pb::ReceiptBatch>;
    type DeliverConfirmationsStream = BoxStream<pb::AckBatch>;
    type DeliverNoticesStream = BoxStream<pb::AckBatch>;
    type ReconcileStream = BoxStream<pb::ReconcileResponse>;

    async fn submit_inquiries(
        &self,
        request: Request<Streaming<pb::InquiryBatch>>,
    ) -> Result<Response<Self::SubmitInquiriesStream>, Status> {
        let peer = self.peer(&request)?;
        let mut incoming = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let service = self.clone();
        let span = info_span!("submit_inquiries", peer = %peer);
        tokio::spawn(
            async move {
                loop {
                    let batch = match incoming.message().await {
                        Ok(Some(batch)) => batch,
                        Ok(None) => break,
                        Err(status) => {
                            let status = service.broken_stream(peer, "inquiry_batch", status).await;
                            let _ = sender.send(Err(status)).await;
                            break;
                        }
                    };
                    if batch.inquiries.len() > service.node.limits().max_batch_messages {
                        let status = service
                            .refuse_batch(peer, "inquiry_batch", batch.inquiries.len())
                            .await;
                        let _ = sender.send(Err(status)).await;
                        break;
                    }
                    let converted = batch
                        .inquiries
                        .iter()
                        .enumerate()
                        .map(|(index, wire)| {
                            inquiry_from_wire(wire, &format!("inquiries[{index}]"))
                                .map_err(|violations| (wire.message_id.parse().ok(), violations))
                        })
                        .collect();
                    let reply = match service.node.receive_inquiries(peer, converted).await {
                        Ok(results) => Ok(pb::ReceiptBatch {
                            receipts: batch
                                .inquiries
                                .iter()
                                .zip(&results)
                                .map(|(wire, result)| receipt_of(wire.message_id.clone(), result))
                                .collect(),
                        }),
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
        let peer = self.peer(&request)?;
        let mut incoming = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let service = self.clone();
        let span = info_span!("deliver_confirmations", peer = %peer);
        tokio::spawn(
            async move {
                loop {
                    let batch = match incoming.message().await {
                        Ok(Some(batch)) => batch,
                        Ok(None) => break,
                        Err(status) => {
                            let status = service.broken_stream(peer, "confirmation_batch", status).await;
                            let _ = sender.send(Err(status)).await;
                            break;
                        }
                    };
                    if batch.confirmations.len() > service.node.limits().max_batch_messages {
                        let status = service
                            .refuse_batch(peer, "confirmation_batch", batch.confirmations.len())
                            .await;
                        let _ = sender.send(Err(status)).await;
                        break;
                    }
                    let converted = batch
                        .confirmations
                        .iter()
                        .enumerate()
                        .map(|(index, wire)| {
                            confirmation_from_wire(wire, &format!("confirmations[{index}]"))
                                .map_err(|violations| (wire.message_id.parse().ok(), violations))
                        })
                        .collect();
                    let reply = match service.node.receive_confirmations(peer, converted).await {
                        Ok(results) => Ok(pb::AckBatch {
                            receipts: batch
                                .confirmations
                                .iter()
                                .zip(&results)
                                .map(|(wire, result)| pb::Receipt {
                                    message_id: wire.message_id.clone(),
                                    result: Some(match result {
                                        Ok(()) => pb::receipt::Result::Accepted(pb::Accepted::default()),
                                        Err(rejection) => {
                                            pb::receipt::Result::Rejected(rejected_of(rejection))
                                        }
                                    }),
                                })
                                .collect(),
                        }),
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

    async fn deliver_notices(
        &self,
        request: Request<Streaming<pb::NoticeBatch>>,
    ) -> Result<Response<Self::DeliverNoticesStream>, Status> {
        let peer = self.peer(&request)?;
        let mut incoming = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let batch = match incoming.message().await {
                    Ok(Some(batch)) => batch,
                    Ok(None) => break,
                    Err(status) => {
                        let status = service.broken_stream(peer, "notice_batch", status).await;
                        let _ = sender.send(Err(status)).await;
                        break;
                    }
                };
                if batch.notices.len() > service.node.limits().max_batch_messages {
                    let status = service
                        .refuse_batch(peer, "notice_batch", batch.notices.len())
                        .await;
                    let _ = sender.send(Err(status)).await;
                    break;
                }
                let converted = batch
                    .notices
                    .iter()
                    .enumerate()
                    .map(|(index, wire)| {
                        super::convert::notice_from_wire(wire, &format!("notices[{index}]"))
                            .map_err(|violations| (wire.message_id.parse().ok(), violations))
                    })
                    .collect();
                let reply = match service.node.receive_notices(peer, converted).await {
                    Ok(results) => Ok(pb::AckBatch {
                        receipts: batch
                            .notices
                            .iter()
                            .zip(&results)
                            .map(|(wire, result)| receipt_of(wire.message_id.clone(), result))
                            .collect(),
                    }),
                    Err(error) => Err(internal(error)),
                };
                let failed = reply.is_err();
                if sender.send(reply).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
