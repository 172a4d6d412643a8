//! Reconciliation with a peer, as the caller: a run's stream opened to the peer
//! ([`ReconcilePeer`]) and the protocol's messages going through it ([`ReconcileLink`]). Over
//! gRPC, the messages are converted to and from the wire here, split into parts and put back
//! together, and counted in bytes as they cross.

use std::future::Future;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::domain::reconcile::protocol::{CallerStep, Decoded, PeerCommitted, PeerStep, RunBegin};
use crate::exchange::convert::agreement_to_wire;
use crate::exchange::reconcile::{
    add_detail_part, detail_parts, elements_from_bytes, elements_to_bytes, set_to_wire, wire_bytes,
};
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_client::ExchangeClient;
use crate::proto::exchange::reconcile_request::Step as RequestStep;
use crate::proto::exchange::reconcile_response::Step as ResponseStep;
use crate::status::code_name;

/// Why a run's exchange with the peer broke off. Nothing was committed on this side.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer refused or failed: its status, which names no person.
    #[error("peer answered {code}: {message}")]
    Refused {
        /// The status code's canonical name (`ABORTED`).
        code: &'static str,
        /// What the peer said.
        message: String,
    },
    /// The peer's messages broke the protocol.
    #[error("peer broke the reconciliation protocol: {0}")]
    Protocol(String),
    /// The stream ended before the run completed.
    #[error("the peer closed the stream before the run completed")]
    Closed,
    /// This side failed (a bug, logged).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<Status> for LinkError {
    fn from(status: Status) -> LinkError {
        LinkError::Refused {
            code: code_name(status.code()),
            message: status.message().to_string(),
        }
    }
}

/// One run's stream to the peer, its `begin` already sent.
pub trait ReconcileLink: Send {
    /// Sends the caller's next message.
    fn send(&mut self, step: CallerStep<'_>) -> impl Future<Output = Result<(), LinkError>> + Send;

    /// The peer's next message, whole.
    fn receive(&mut self) -> impl Future<Output = Result<PeerStep, LinkError>> + Send;

    /// Bytes sent so far, framing included.
    fn bytes_sent(&self) -> u64;

    /// Bytes received so far, framing included.
    fn bytes_received(&self) -> u64;
}

/// A peer a run can be opened with.
pub trait ReconcilePeer: Send {
    /// The run's stream.
    type Link: ReconcileLink;

    /// Sends `begin` and returns the stream without waiting for the peer's `ready`, so that the
    /// peer reads its set while we read ours.
    fn open_reconcile(
        &mut self,
        begin: &RunBegin,
    ) -> impl Future<Output = Result<Self::Link, LinkError>> + Send;
}

// === impl ReconcilePeer over gRPC ===

impl ReconcilePeer for ExchangeClient<Channel> {
    type Link = GrpcLink;

    async fn open_reconcile(&mut self, begin: &RunBegin) -> Result<GrpcLink, LinkError> {
        let (sender, receiver) = mpsc::channel(4);
        let begin = pb::ReconcileBegin {
            run_id: begin.run_id.to_string(),
            agreement: Some(agreement_to_wire(&begin.agreement)),
            set: set_to_wire(begin.set) as i32,
            set_size: begin.set_size,
        };
        let request = pb::ReconcileRequest {
            step: Some(RequestStep::Begin(begin)),
        };
        let bytes_sent = wire_bytes(&request);
        sender.send(request).await.map_err(|_| LinkError::Closed)?;
        let responses = self.reconcile(ReceiverStream::new(receiver)).await?.into_inner();
        Ok(GrpcLink {
            requests: sender,
            responses,
            bytes_sent,
            bytes_received: 0,
        })
    }
}

/// A run's gRPC stream, and the bytes that crossed it.
pub struct GrpcLink {
    /// Where our requests go.
    requests: mpsc::Sender<pb::ReconcileRequest>,
    /// The peer's responses.
    responses: Streaming<pb::ReconcileResponse>,
    /// Bytes of what went into `requests`, gRPC framing included.
    bytes_sent: u64,
    /// Bytes of what came out of `responses`, gRPC framing included.
    bytes_received: u64,
}

impl GrpcLink {
    async fn send_wire(&mut self, step: RequestStep) -> Result<(), LinkError> {
        let request = pb::ReconcileRequest { step: Some(step) };
        self.bytes_sent += wire_bytes(&request);
        self.requests.send(request).await.map_err(|_| LinkError::Closed)
    }

    async fn receive_wire(&mut self) -> Result<ResponseStep, LinkError> {
        let response = self.responses.message().await?.ok_or(LinkError::Closed)?;
        self.bytes_received += wire_bytes(&response);
        response
            .step
            .ok_or_else(|| LinkError::Protocol("a response without a step".into()))
    }

    /// The peer's report of the difference, from its first part to the one marked complete.
    async fn rest_of_decoded(&mut self, mut part: pb::ReconcileDecoded) -> Result<Decoded, LinkError> {
        let mut decoded = Decoded::default();
        loop {
            decoded.caller_only.extend(
                elements_from_bytes(&part.caller_only, "decoded.caller_only").map_err(LinkError::Protocol)?,
            );
            decoded.responder_only = part.responder_only;
            if let Some(detail) = part.detail.take() {
                add_detail_part(&mut decoded.detail, detail).map_err(LinkError::Protocol)?;
            }
            if part.complete {
                return Ok(decoded);
            }
            part = match self.receive_wire().await? {
                ResponseStep::Decoded(next) => next,
                _ => return Err(LinkError::Protocol("expected the rest of decoded".into())),
            };
        }
    }
}

impl ReconcileLink for GrpcLink {
    async fn send(&mut self, step: CallerStep<'_>) -> Result<(), LinkError> {
        match step {
            CallerStep::Symbols {
                set_size,
                first_index,
                count,
                symbols,
            } => {
                let chunk = pb::SymbolChunk {
                    set_size,
                    first_index,
                    count,
                    symbols,
                };
                self.send_wire(RequestStep::Symbols(chunk)).await
            }
            CallerStep::Elements {
                set_size,
                elements,
                last,
            } => {
                let chunk = pb::ElementChunk {
                    set_size,
                    elements: elements_to_bytes(elements),
                    last,
                };
                self.send_wire(RequestStep::Elements(chunk)).await
            }
            CallerStep::Detail(detail) => {
                for part in detail_parts(detail) {
                    self.send_wire(RequestStep::Detail(part)).await?;
                }
                Ok(())
            }
        }
    }

    async fn receive(&mut self) -> Result<PeerStep, LinkError> {
        Ok(match self.receive_wire().await? {
            ResponseStep::Ready(ready) => PeerStep::Ready {
                set_size: ready.set_size,
            },
            ResponseStep::More(more) => PeerStep::More {
                symbols_received: more.symbols_received,
            },
            ResponseStep::Decoded(first) => PeerStep::Decoded(self.rest_of_decoded(first).await?),
            ResponseStep::Committed(committed) => PeerStep::Committed(PeerCommitted {
                repaired: committed.repaired,
                reported: committed.reported,
                inquiries_opened: committed.inquiries_opened,
            }),
        })
    }

    fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    fn bytes_received(&self) -> u64 {
        self.bytes_received
    }
}
