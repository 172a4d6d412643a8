//! The benchmark's two counties on loopback: 新化县's in-process `Exchange` server, which
//! reconciles against an in-memory set and does nothing else, and 鼎城区's mutual-TLS client to
//! it; and the naive exchange, the protocol's fallback taken from the first message.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

use crate::bench::exchange::{ASKER, RESPONDER};
use crate::config::Limits;
use crate::domain::message::AgreementRef;
use crate::domain::reconcile::pacing::ELEMENTS_PER_CHUNK;
use crate::domain::reconcile::protocol::RunBegin;
use crate::domain::reconcile::{DifferenceDetail, ReconcileSet};
use crate::domain::riblt::Element;
use crate::exchange::reconcile::{self as protocol, Responded, ResponderSession};
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_client::ExchangeClient;
use crate::proto::exchange::exchange_server::{Exchange, ExchangeServer};
use crate::proto::exchange::reconcile_request::Step as RequestStep;
use crate::proto::exchange::reconcile_response::Step as ResponseStep;
use crate::tls::dev::TestPki;
use crate::tls::{County, TrustAnchors, client_config, connect, server_config, tls_incoming};

/// How long the peer may take to report its commit after the caller saw `committed`.
const COMMIT_PATIENCE: Duration = Duration::from_secs(10);

/// A run's `begin` as the node's side of the protocol sends it: the in-memory peer ignores the
/// agreement, the set is nominal.
pub fn run_begin() -> RunBegin {
    RunBegin {
        run_id: uuid::Uuid::new_v4(),
        agreement: AgreementRef {
            id: String::new(),
            hash: String::new(),
        },
        set: ReconcileSet::Messages,
        set_size: 0,
    }
}

/// A run's `begin` on the wire, for the naive exchange.
fn begin() -> pb::ReconcileBegin {
    pb::ReconcileBegin {
        run_id: uuid::Uuid::new_v4().to_string(),
        agreement: None,
        set: pb::ReconcileSet::Messages as i32,
        set_size: 0,
    }
}

// === impl Loopback ===

/// 新化县's in-process server on 127.0.0.1 with its own certificate, and 鼎城区's mutual-TLS
/// client to it.
pub struct Loopback {
    /// The caller's client, over a channel that has completed its handshake.
    pub client: ExchangeClient<Channel>,
    /// What the peer learnt in each run it committed, in order.
    commits: mpsc::UnboundedReceiver<Responded>,
    /// Stops the server.
    stop: oneshot::Sender<()>,
    /// The server.
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Loopback {
    /// Starts 新化县's server over `set` on a free port, with a certificate from `pki`, and
    /// connects 鼎城区's client to it (handshake done, so that no run pays for it).
    pub async fn start(pki: &TestPki, set: Arc<Vec<Element>>) -> anyhow::Result<Loopback> {
        let anchors = TrustAnchors::from_pem(&pki.ca_pem())?;
        let caller = pki.county_identity(ASKER)?;
        let peer = pki.county_identity(RESPONDER)?;
        let max_message_bytes = Limits::default().max_message_bytes;

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let incoming = tls_incoming(listener, server_config(&peer, &anchors)?);
        let (committed, commits) = mpsc::unbounded_channel();
        let service = ExchangeServer::new(InMemoryPeer { set, committed })
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                }),
        );

        let config = client_config(&caller, &anchors, County::parse(RESPONDER)?)?;
        let channel = connect(&address.to_string(), config).await?;
        let client = ExchangeClient::new(channel).max_decoding_message_size(max_message_bytes);
        Ok(Loopback {
            client,
            commits,
            stop,
            server,
        })
    }

    /// What the peer learnt in the run that just ended.
    pub async fn committed(&mut self) -> anyhow::Result<Responded> {
        match tokio::time::timeout(COMMIT_PATIENCE, self.commits.recv()).await {
            Ok(Some(responded)) => Ok(responded),
            _ => bail!("the peer reported no commit for a run the caller saw committed"),
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// The `Exchange` service of the benchmark's peer: reconciles against an in-memory set, and
/// nothing else.
struct InMemoryPeer {
    /// The peer's set.
    set: Arc<Vec<Element>>,
    /// Where each committed run's outcome goes, for the benchmark to check.
    committed: mpsc::UnboundedSender<Responded>,
}

type ResponseStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Exchange for InMemoryPeer {
    type SubmitInquiriesStream = ResponseStream<pb::ReceiptBatch>;
    type DeliverConfirmationsStream = ResponseStream<pb::AckBatch>;
    type DeliverNoticesStream = ResponseStream<pb::AckBatch>;
    type DeliverFeedbackStream = ResponseStream<pb::AckBatch>;
    type ReconcileStream = ResponseStream<pb::ReconcileResponse>;

    async fn reconcile(
        &self,
        request: Request<Streaming<pb::ReconcileRequest>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let (sender, receiver) = mpsc::channel(4);
        let session = InMemorySession {
            set: Arc::clone(&self.set),
            committed: self.committed.clone(),
        };
        tokio::spawn(protocol::respond(
            request.into_inner(),
            sender,
            move |_begin| async move { Ok(session) },
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn submit_inquiries(
        &self,
        _: Request<Streaming<pb::InquiryBatch>>,
    ) -> Result<Response<Self::SubmitInquiriesStream>, Status> {
        Err(only_reconciles())
    }

    async fn submit_inquiry(
        &self,
        _: Request<pb::SubmitInquiryRequest>,
    ) -> Result<Response<pb::SubmitInquiryResponse>, Status> {
        Err(only_reconciles())
    }

    async fn deliver_confirmations(
        &self,
        _: Request<Streaming<pb::ConfirmationBatch>>,
    ) -> Result<Response<Self::DeliverConfirmationsStream>, Status> {
        Err(only_reconciles())
    }

    async fn acknowledge_confirmations(
        &self,
        _: Request<pb::ConfirmationAcks>,
    ) -> Result<Response<pb::AckBatch>, Status> {
        Err(only_reconciles())
    }

    async fn deliver_notices(
        &self,
        _: Request<Streaming<pb::NoticeBatch>>,
    ) -> Result<Response<Self::DeliverNoticesStream>, Status> {
        Err(only_reconciles())
    }

    async fn deliver_feedback(
        &self,
        _: Request<Streaming<pb::FeedbackBatch>>,
    ) -> Result<Response<Self::DeliverFeedbackStream>, Status> {
        Err(only_reconciles())
    }

    async fn peer_status(
        &self,
        _: Request<pb::PeerStatusRequest>,
    ) -> Result<Response<pb::PeerStatusResponse>, Status> {
        Err(only_reconciles())
    }
}

fn only_reconciles() -> Status {
    Status::unimplemented("the benchmark's peer only reconciles")
}

/// One run on the in-memory peer: nothing to name, nothing to repair; commit hands what was
/// learnt to the benchmark.
struct InMemorySession {
    /// The peer's set.
    set: Arc<Vec<Element>>,
    /// Where the outcome goes at commit.
    committed: mpsc::UnboundedSender<Responded>,
}

#[tonic::async_trait]
impl ResponderSession for InMemorySession {
    fn elements(&self) -> &[Element] {
        &self.set
    }

    fn describe(&self, _ours_only: &[Element]) -> DifferenceDetail {
        DifferenceDetail::default()
    }

    async fn commit(self, responded: Responded) -> Result<pb::ReconcileCommitted, Status> {
        let _ = self.committed.send(responded);
        Ok(pb::ReconcileCommitted::default())
    }

    async fn abandon(self, _responded: Responded, _reason: String) {}
}

// === naive ===

/// What sending every element cost and found.
pub struct Naive {
    /// Bytes both ways, gRPC framing included, counted as the protocol counts them.
    pub bytes: u64,
    /// Elements only the caller holds, as the peer reported them.
    pub caller_only: Vec<Element>,
    /// How many elements only the peer holds.
    pub responder_only: u64,
}

/// The protocol's fallback path taken from the first message: `begin`, every element, the
/// peer's report, an empty detail, `committed`.
pub async fn send_every_element(
    client: &mut ExchangeClient<Channel>,
    elements: &[Element],
) -> anyhow::Result<Naive> {
    let (sender, receiver) = mpsc::channel(4);
    let mut sent = 0;
    let mut send = async |step: RequestStep| -> anyhow::Result<()> {
        let request = pb::ReconcileRequest { step: Some(step) };
        sent += protocol::wire_bytes(&request);
        sender.send(request).await.context("the peer closed the stream")
    };
    send(RequestStep::Begin(pb::ReconcileBegin {
        set_size: elements.len() as u64,
        ..begin()
    }))
    .await?;
    let mut responses = client
        .reconcile(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    let mut received = 0;
    let mut next = async || -> anyhow::Result<ResponseStep> {
        let response = responses.message().await?.context("the peer closed the stream")?;
        received += protocol::wire_bytes(&response);
        response.step.context("a response without a step")
    };

    let ResponseStep::Ready(_) = next().await? else {
        bail!("expected ready");
    };
    let chunks: Vec<&[Element]> = elements.chunks(ELEMENTS_PER_CHUNK).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        send(RequestStep::Elements(pb::ElementChunk {
            set_size: elements.len() as u64,
            elements: protocol::elements_to_bytes(chunk),
            last: index + 1 == chunks.len(),
        }))
        .await?;
    }
    let mut caller_only = Vec::new();
    let responder_only = loop {
        let ResponseStep::Decoded(decoded) = next().await? else {
            bail!("expected decoded");
        };
        caller_only.extend(
            protocol::elements_from_bytes(&decoded.caller_only, "decoded.caller_only")
                .map_err(anyhow::Error::msg)?,
        );
        if decoded.complete {
            break decoded.responder_only;
        }
    };
    send(RequestStep::Detail(pb::DifferenceDetail {
        complete: true,
        ..Default::default()
    }))
    .await?;
    let ResponseStep::Committed(_) = next().await? else {
        bail!("expected committed");
    };
    Ok(Naive {
        bytes: sent + received,
        caller_only,
        responder_only,
    })
}
