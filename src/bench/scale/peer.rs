//! The scale benchmark's test peer: many counties answered by one set of tasks in the benchmark
//! process, without a database of their own, so that P peers measure the node under test rather
//! than P PostgreSQL pools on two cores.
//!
//! Each county has its own listener on 127.0.0.1 with its own certificate from the run's CA, and
//! its own agreement with the node (signed by both). It answers as a node does:
//!
//! - `PeerStatus`: it holds the agreement's version (so that the node sends under it);
//! - `SubmitInquiries`: one receipt per inquiry, in order; the answer (half `found` with fields,
//!   half `not_found`, by the subject) is delivered back later through the node's
//!   `DeliverConfirmations`, over a mutual-TLS channel presenting that county's certificate, in
//!   batches, retried until the node acknowledges it;
//! - `SubmitInquiry` (a clerk's single inquiry): the receipt with the answer inline;
//!   `AcknowledgeConfirmations`: one receipt per id.
//!
//! It keeps its own tally (inquiries received once and again, answers acknowledged by the node)
//! so that the benchmark can check both sides' bookkeeping.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::message::{Confirmation, Inquiry};
use crate::domain::vocabulary::{AnswerOutcome, CertificateStatus, MaritalStatus, StatusValues};
use crate::exchange::convert::{confirmation_to_wire, inquiry_from_wire, timestamp_to_wire};
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_client::ExchangeClient;
use crate::proto::exchange::exchange_server::{Exchange, ExchangeServer};
use crate::tls::{County, NodeIdentity, TrustAnchors, client_config, connect, server_config, tls_incoming};

/// Answers per `DeliverConfirmations` call, as a node's batch.
const ANSWER_BATCH: usize = 500;

/// How long a county waits before delivering again after a failed call.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// What one county saw and did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Distinct inquiries received (sweep and single).
    pub received: AtomicU64,
    /// Inquiries received again (a resend after a lost receipt): accepted, not answered twice.
    pub repeated: AtomicU64,
    /// Answers the node acknowledged through `DeliverConfirmations`.
    pub delivered: AtomicU64,
    /// Answers given inline to single inquiries.
    pub inline: AtomicU64,
    /// Answers the node refused.
    pub refused: AtomicU64,
    /// Ids of the inquiries received.
    seen: Mutex<HashSet<Uuid>>,
}

/// The counties, running.
pub struct TestPeers {
    /// Each county with its listener's address and its tally, in order.
    pub counties: Vec<(CountyCode, SocketAddr, Arc<Tally>)>,
    /// Flipped to stop every task.
    stop: watch::Sender<bool>,
    /// Servers and delivery tasks.
    tasks: JoinSet<()>,
}

/// What a county needs to reach the node under test.
pub struct NodeAddress {
    /// The node's county (its server certificate must name it).
    pub county: CountyCode,
    /// Its peer listener.
    pub address: SocketAddr,
}

impl TestPeers {
    /// Starts one listener per `(county, identity, agreement)`, each answering the node at
    /// `node` under its agreement.
    pub async fn start(
        counties: Vec<(CountyCode, NodeIdentity, Agreement)>,
        anchors: &TrustAnchors,
        node: NodeAddress,
    ) -> anyhow::Result<TestPeers> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut running = Vec::with_capacity(counties.len());
        let max_message_bytes = crate::config::Limits::default().max_message_bytes;
        for (county, identity, agreement) in counties {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let tally = Arc::new(Tally::default());
            let (answers, queued) = mpsc::unbounded_channel();
            let service = CountyPeer {
                agreement: Arc::new(agreement),
                tally: Arc::clone(&tally),
                answers,
            };
            let incoming = tls_incoming(listener, server_config(&identity, anchors)?);
            let mut server_stopped = stopped.clone();
            tasks.spawn(async move {
                let _ = Server::builder()
                    .add_service(
                        ExchangeServer::new(service)
                            .max_decoding_message_size(max_message_bytes)
                            .max_encoding_message_size(max_message_bytes),
                    )
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = server_stopped.wait_for(|stop| *stop).await;
                    })
                    .await;
            });
            let config = client_config(&identity, anchors, County::parse(node.county.as_str())?)?;
            let delivery = Delivery {
                node: node.address,
                config,
                channel: None,
                tally: Arc::clone(&tally),
            };
            tasks.spawn(delivery.run(queued, stopped.clone()));
            running.push((county, address, tally));
        }
        Ok(TestPeers {
            counties: running,
            stop,
            tasks,
        })
    }

    /// Sums of every county's tally: (received, repeated, delivered, inline, refused).
    pub fn totals(&self) -> (u64, u64, u64, u64, u64) {
        let mut totals = (0, 0, 0, 0, 0);
        for (_, _, tally) in &self.counties {
            totals.0 += tally.received.load(Ordering::Relaxed);
            totals.1 += tally.repeated.load(Ordering::Relaxed);
            totals.2 += tally.delivered.load(Ordering::Relaxed);
            totals.3 += tally.inline.load(Ordering::Relaxed);
            totals.4 += tally.refused.load(Ordering::Relaxed);
        }
        totals
    }

    /// Stops every listener and delivery task.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// One county's `Exchange` service.
#[derive(Clone)]
struct CountyPeer {
    /// Its agreement with the node.
    agreement: Arc<Agreement>,
    /// What it saw.
    tally: Arc<Tally>,
    /// Answers to deliver back.
    answers: mpsc::UnboundedSender<Confirmation>,
}

impl CountyPeer {
    /// Accepts one inquiry: the receipt, and the answer if this is its first arrival.
    fn accept(&self, wire: &pb::Inquiry) -> (pb::Receipt, Option<Confirmation>) {
        let inquiry = match inquiry_from_wire(wire, "inquiry") {
            Ok(inquiry) if inquiry.agreement.id == self.agreement.id() => inquiry,
            _ => {
                let receipt = pb::Receipt {
                    answer: None,
                    message_id: wire.message_id.clone(),
                    result: Some(pb::receipt::Result::Rejected(pb::Rejected {
                        code: tonic::Code::InvalidArgument as i32,
                        reason: "the test peer cannot read this inquiry".into(),
                        field_violations: Vec::new(),
                    })),
                };
                return (receipt, None);
            }
        };
        let first = self
            .tally
            .seen
            .lock()
            .expect("not poisoned")
            .insert(inquiry.message_id);
        let now = Utc::now();
        let receipt = pb::Receipt {
            answer: None,
            message_id: inquiry.message_id.to_string(),
            result: Some(pb::receipt::Result::Accepted(pb::Accepted {
                received_at: Some(timestamp_to_wire(now)),
                due_at: Some(timestamp_to_wire(now + chrono::Duration::days(30))),
            })),
        };
        if first {
            self.tally.received.fetch_add(1, Ordering::Relaxed);
            (receipt, Some(answer(&inquiry)))
        } else {
            self.tally.repeated.fetch_add(1, Ordering::Relaxed);
            (receipt, None)
        }
    }
}

/// The answer to `inquiry`: `found` with two fields when the subject's sequence number is
/// even, `not_found` otherwise.
fn answer(inquiry: &Inquiry) -> Confirmation {
    let id = inquiry.subject.resident_id.as_str().as_bytes();
    let found = id.get(16).is_some_and(|digit| digit % 2 == 0);
    let (outcome, fields) = if found {
        let fields = StatusValues {
            marital_status: Some(MaritalStatus::Married),
            certificate_status: Some(CertificateStatus::Valid),
            ..StatusValues::default()
        };
        (AnswerOutcome::Found, fields)
    } else {
        (AnswerOutcome::NotFound, StatusValues::default())
    };
    Confirmation {
        message_id: Uuid::now_v7(),
        inquiry_id: inquiry.message_id,
        agreement: inquiry.agreement.clone(),
        outcome,
        fields,
        answered_at: Utc::now(),
    }
}

type ResponseStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

fn not_here() -> Status {
    Status::unimplemented("the scale benchmark's test peer only answers inquiries")
}

#[tonic::async_trait]
impl Exchange for CountyPeer {
    type SubmitInquiriesStream = ResponseStream<pb::ReceiptBatch>;
    type DeliverConfirmationsStream = ResponseStream<pb::AckBatch>;
    type DeliverNoticesStream = ResponseStream<pb::AckBatch>;
    type DeliverFeedbackStream = ResponseStream<pb::AckBatch>;
    type ReconcileStream = ResponseStream<pb::ReconcileResponse>;

    async fn submit_inquiries(
        &self,
        request: Request<Streaming<pb::InquiryBatch>>,
    ) -> Result<Response<Self::SubmitInquiriesStream>, Status> {
        let mut incoming = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let peer = self.clone();
        tokio::spawn(async move {
            while let Ok(Some(batch)) = incoming.message().await {
                let mut receipts = Vec::with_capacity(batch.inquiries.len());
                for wire in &batch.inquiries {
                    let (receipt, answer) = peer.accept(wire);
                    receipts.push(receipt);
                    if let Some(answer) = answer {
                        let _ = peer.answers.send(answer);
                    }
                }
                if sender.send(Ok(pb::ReceiptBatch { receipts })).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn submit_inquiry(
        &self,
        request: Request<pb::SubmitInquiryRequest>,
    ) -> Result<Response<pb::SubmitInquiryResponse>, Status> {
        let request = request.into_inner();
        let wire = request.inquiry.unwrap_or_default();
        let (receipt, answer) = self.accept(&wire);
        let accepted = match receipt.result {
            Some(pb::receipt::Result::Accepted(accepted)) => accepted,
            _ => return Err(Status::invalid_argument("the test peer cannot read this inquiry")),
        };
        if answer.is_some() {
            self.tally.inline.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Response::new(pb::SubmitInquiryResponse {
            accepted: Some(accepted),
            confirmation: answer.as_ref().map(confirmation_to_wire),
        }))
    }

    async fn acknowledge_confirmations(
        &self,
        request: Request<pb::ConfirmationAcks>,
    ) -> Result<Response<pb::AckBatch>, Status> {
        let now = timestamp_to_wire(Utc::now());
        let receipts = request
            .into_inner()
            .message_ids
            .into_iter()
            .map(|message_id| pb::Receipt {
                answer: None,
                message_id,
                result: Some(pb::receipt::Result::Accepted(pb::Accepted {
                    received_at: Some(now),
                    due_at: None,
                })),
            })
            .collect();
        Ok(Response::new(pb::AckBatch { receipts }))
    }

    async fn peer_status(
        &self,
        _: Request<pb::PeerStatusRequest>,
    ) -> Result<Response<pb::PeerStatusResponse>, Status> {
        Ok(Response::new(pb::PeerStatusResponse {
            status: Some(pb::NodeStatus {
                agreement_versions: vec![pb::HeldVersion {
                    agreement_id: self.agreement.id().to_string(),
                    version: self.agreement.version(),
                    hash: self.agreement.canonical_hash().as_str().to_string(),
                }],
                software_version: env!("CARGO_PKG_VERSION").to_string(),
                clock: Some(timestamp_to_wire(Utc::now())),
                audit: None,
            }),
        }))
    }

    async fn deliver_confirmations(
        &self,
        _: Request<Streaming<pb::ConfirmationBatch>>,
    ) -> Result<Response<Self::DeliverConfirmationsStream>, Status> {
        Err(not_here())
    }

    async fn deliver_notices(
        &self,
        _: Request<Streaming<pb::NoticeBatch>>,
    ) -> Result<Response<Self::DeliverNoticesStream>, Status> {
        Err(not_here())
    }

    async fn deliver_feedback(
        &self,
        _: Request<Streaming<pb::FeedbackBatch>>,
    ) -> Result<Response<Self::DeliverFeedbackStream>, Status> {
        Err(not_here())
    }

    async fn reconcile(
        &self,
        _: Request<Streaming<pb::ReconcileRequest>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        Err(not_here())
    }
}

/// One county's deliveries of answers back to the node.
struct Delivery {
    /// The node's peer listener.
    node: SocketAddr,
    /// Mutual TLS as this county, expecting the node's county.
    config: Arc<rustls::ClientConfig>,
    /// Connected on first use, dropped after a failure.
    channel: Option<Channel>,
    /// Where acknowledgements are counted.
    tally: Arc<Tally>,
}

impl Delivery {
    /// Delivers answers in batches as they come, until stopped.
    async fn run(
        mut self,
        mut queued: mpsc::UnboundedReceiver<Confirmation>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut batch: Vec<Confirmation> = Vec::with_capacity(ANSWER_BATCH);
        loop {
            if batch.is_empty() {
                tokio::select! {
                    next = queued.recv() => match next {
                        Some(answer) => batch.push(answer),
                        None => return,
                    },
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
            while batch.len() < ANSWER_BATCH {
                match queued.try_recv() {
                    Ok(answer) => batch.push(answer),
                    Err(_) => break,
                }
            }
            match self.deliver(&batch).await {
                Ok(()) => batch.clear(),
                Err(_) => {
                    self.channel = None;
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                        _ = stopped.wait_for(|stop| *stop) => return,
                    }
                }
            }
        }
    }

    /// One `DeliverConfirmations` call with `batch`; `Err` when the call failed as a whole.
    async fn deliver(&mut self, batch: &[Confirmation]) -> anyhow::Result<()> {
        let channel = match &self.channel {
            Some(channel) => channel.clone(),
            None => {
                let channel = connect(&self.node.to_string(), Arc::clone(&self.config)).await?;
                self.channel.insert(channel).clone()
            }
        };
        let mut client = ExchangeClient::new(channel);
        let wire = pb::ConfirmationBatch {
            confirmations: batch.iter().map(confirmation_to_wire).collect(),
        };
        let mut replies = client
            .deliver_confirmations(tokio_stream::once(wire))
            .await?
            .into_inner();
        let reply = replies
            .message()
            .await?
            .ok_or_else(|| anyhow::anyhow!("no acknowledgements"))?;
        for receipt in reply.receipts {
            match receipt.result {
                Some(pb::receipt::Result::Accepted(_)) => {
                    self.tally.delivered.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.tally.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}
