//! The peer client: the one seam through which this node calls a peer county. Domain messages
//! go in, the peer's verdicts come back as domain values ([`PeerVerdict`], [`CallFailure`]);
//! the wire, timeouts and status codes stay here. The clerk's path and the delivery worker
//! both call a peer through [`PeerLink`], so a test can put a fake peer in its place.

pub mod reconcile;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::delivery::{CallFailure, PeerVerdict};
use crate::domain::feedback::Feedback;
use crate::domain::message::{Confirmation, FieldViolation, Inquiry, Notice};
use crate::domain::peer_status::NodeStatus;
use crate::exchange::convert::{
    confirmation_from_wire, confirmation_to_wire, feedback_to_wire, inquiry_to_wire, notice_to_wire,
    status_from_wire, status_to_wire, timestamp_from_wire,
};
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_client::ExchangeClient;

/// An answer that came back inline with an inquiry: valid, or its field violations (with the
/// confirmation's id when it could be read), for the receiving intake to audit.
pub type InlineConfirmation = Result<Confirmation, (Option<Uuid>, Vec<FieldViolation>)>;

/// The peer's reply to one inquiry sent while a clerk waits.
#[derive(Clone, Debug)]
pub struct InlineReply {
    /// Accepted (with the peer's deadline) or refused.
    pub verdict: PeerVerdict,
    /// The answer, when the peer answered within the wait.
    pub confirmation: Option<InlineConfirmation>,
}

/// Verdicts keyed by message id; a message the peer said nothing about is absent.
pub type Verdicts = HashMap<Uuid, PeerVerdict>;

/// The peer's reply to a batch of inquiries sent with answers inline.
#[derive(Clone, Debug, Default)]
pub struct AnsweredBatch {
    /// One verdict per inquiry the peer said something about.
    pub verdicts: Verdicts,
    /// The answers the peer gave in the receipts (each the answer to the inquiry whose receipt
    /// carried it), for the intake to check and store.
    pub answers: Vec<InlineConfirmation>,
}

/// A connection to one peer county, as the node uses it.
pub trait PeerLink: Send + Sync + fmt::Debug {
    /// Sends a batch of inquiries (one call of a sweep's stream); one verdict per inquiry.
    fn submit_inquiries<'a>(
        &'a self,
        inquiries: &'a [Inquiry],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>>;

    /// Sends a batch of inquiries and lets the peer answer them in its receipts. A link that
    /// cannot carry answers inline sends the batch as [`submit_inquiries`](Self::submit_inquiries)
    /// does (the answers come later, delivered).
    fn submit_inquiries_answered_inline<'a>(
        &'a self,
        inquiries: &'a [Inquiry],
    ) -> BoxFuture<'a, Result<AnsweredBatch, CallFailure>> {
        Box::pin(async move {
            Ok(AnsweredBatch {
                verdicts: self.submit_inquiries(inquiries).await?,
                answers: Vec::new(),
            })
        })
    }

    /// Sends a batch of our answers to the peer's inquiries.
    fn deliver_confirmations<'a>(
        &'a self,
        confirmations: &'a [Confirmation],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>>;

    /// Sends one inquiry and lets the peer answer it within `wait`.
    fn submit_inquiry<'a>(
        &'a self,
        inquiry: &'a Inquiry,
        wait: Duration,
    ) -> BoxFuture<'a, Result<InlineReply, CallFailure>>;

    /// Tells the peer we stored the answers it gave inline, so it need not send them again.
    fn acknowledge_confirmations<'a>(
        &'a self,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>>;

    /// Sends a batch of our notices.
    fn deliver_notices<'a>(&'a self, notices: &'a [Notice]) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        let _ = notices;
        Box::pin(async {
            Err(CallFailure::Failed(
                "this peer link does not carry notices".into(),
            ))
        })
    }

    /// Sends a batch of our feedback to the peer's notices.
    fn deliver_feedback<'a>(
        &'a self,
        feedback: &'a [Feedback],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        let _ = feedback;
        Box::pin(async {
            Err(CallFailure::Failed(
                "this peer link does not carry feedback".into(),
            ))
        })
    }

    /// Tells the peer our status and returns its own.
    fn peer_status<'a>(&'a self, ours: &'a NodeStatus) -> BoxFuture<'a, Result<NodeStatus, CallFailure>>;

    /// The gRPC client underneath, for reconciliation's stream; `None` for a fake peer.
    fn exchange_client(&self) -> Option<ExchangeClient<Channel>> {
        None
    }

    /// Closes the connection if no call has used it for the link's idle time; the next call
    /// opens a new one. Whether it closed one.
    fn close_if_idle(&self) -> bool {
        false
    }
}

/// Timings of calls to a peer.
#[derive(Clone, Copy, Debug)]
pub struct CallTimings {
    /// How long one batch may take on the wire.
    pub batch_call: Duration,
    /// Added to the clerk's wait for the whole call (connecting, both commits).
    pub sync_margin: Duration,
}

/// A peer reached over a mutual-TLS gRPC channel that checks the server is that county.
///
/// Built with [`PeerClient::closing_when_idle`], the channel is made on first use and dropped
/// (closing its connection) once no call has used it for a while; the next call makes a new
/// one, so a node with hundreds of agreements holds connections only to the peers it talks to.
#[derive(Clone)]
pub struct PeerClient {
    /// The channel, or how to make one.
    connection: Arc<Connection>,
    /// Largest message either way.
    max_message_bytes: usize,
    /// Timeouts for each kind of call.
    timings: CallTimings,
}

/// How a channel to a peer is made, kept and dropped.
type Reopen = Box<dyn Fn() -> Channel + Send + Sync>;

/// The channel to one peer and what is known of its use.
struct Connection {
    /// Makes a new channel; `None` for a fixed channel that is never closed.
    reopen: Option<Reopen>,
    /// How long unused before the channel is dropped.
    idle_after: Duration,
    /// The channel in use, if any.
    state: std::sync::Mutex<ConnectionState>,
}

struct ConnectionState {
    channel: Option<Channel>,
    /// Calls on the wire now.
    in_use: usize,
    /// When the last call ended (or the channel was made).
    last_used: Instant,
}

/// Counts a call as in use until dropped.
struct InUse(Arc<Connection>);

impl Drop for InUse {
    fn drop(&mut self) {
        let mut state = self
            .0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.in_use = state.in_use.saturating_sub(1);
        state.last_used = Instant::now();
    }
}

impl fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerClient")
            .field("timings", &self.timings)
            .field("idle_after", &self.connection.idle_after)
            .finish()
    }
}

impl PeerClient {
    /// A client over `channel`, refusing messages larger than `max_message_bytes` either way.
    /// The channel is kept for the client's life.
    pub fn new(channel: Channel, max_message_bytes: usize, timings: CallTimings) -> PeerClient {
        PeerClient {
            connection: Arc::new(Connection {
                reopen: None,
                idle_after: Duration::MAX,
                state: std::sync::Mutex::new(ConnectionState {
                    channel: Some(channel),
                    in_use: 0,
                    last_used: Instant::now(),
                }),
            }),
            max_message_bytes,
            timings,
        }
    }

    /// A client whose channel `reopen` makes on first use (a lazy channel connects on its first
    /// call) and which [`close_if_idle`](PeerLink::close_if_idle) drops once unused for
    /// `idle_after`.
    pub fn closing_when_idle(
        reopen: impl Fn() -> Channel + Send + Sync + 'static,
        idle_after: Duration,
        max_message_bytes: usize,
        timings: CallTimings,
    ) -> PeerClient {
        PeerClient {
            connection: Arc::new(Connection {
                reopen: Some(Box::new(reopen)),
                idle_after,
                state: std::sync::Mutex::new(ConnectionState {
                    channel: None,
                    in_use: 0,
                    last_used: Instant::now(),
                }),
            }),
            max_message_bytes,
            timings,
        }
    }

    /// The generated client over the channel (made now if there is none), counted in use
    /// until the returned guard drops.
    fn client(&self) -> (ExchangeClient<Channel>, InUse) {
        let channel = {
            let mut state = self
                .connection
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.in_use += 1;
            state.last_used = Instant::now();
            match (&state.channel, &self.connection.reopen) {
                (Some(channel), _) => channel.clone(),
                (None, Some(reopen)) => {
                    let channel = reopen();
                    state.channel = Some(channel.clone());
                    channel
                }
                (None, None) => unreachable!("a fixed channel is never dropped"),
            }
        };
        let client = ExchangeClient::new(channel)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes);
        (client, InUse(Arc::clone(&self.connection)))
    }
}

impl PeerLink for PeerClient {
    fn submit_inquiries<'a>(
        &'a self,
        inquiries: &'a [Inquiry],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async move {
            let receipts = self.submit_inquiry_batch(inquiries, false).await;
            batch_verdicts(receipts)
        })
    }

    fn submit_inquiries_answered_inline<'a>(
        &'a self,
        inquiries: &'a [Inquiry],
    ) -> BoxFuture<'a, Result<AnsweredBatch, CallFailure>> {
        Box::pin(async move {
            let receipts = self.submit_inquiry_batch(inquiries, true).await;
            let answers = match &receipts {
                Ok(Some(receipts)) => receipts.iter().filter_map(inline_answer_of).collect(),
                _ => Vec::new(),
            };
            Ok(AnsweredBatch {
                verdicts: batch_verdicts(receipts)?,
                answers,
            })
        })
    }

    fn deliver_confirmations<'a>(
        &'a self,
        confirmations: &'a [Confirmation],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async move {
            let batch = pb::ConfirmationBatch {
                confirmations: confirmations.iter().map(confirmation_to_wire).collect(),
            };
            let (mut client, _in_use) = self.client();
            let reply = async {
                let mut replies = client
                    .deliver_confirmations(self.batch_request(batch))
                    .await?
                    .into_inner();
                Ok(replies.message().await?.map(|reply| reply.receipts))
            };
            batch_verdicts(self.bounded(reply).await)
        })
    }

    fn deliver_notices<'a>(&'a self, notices: &'a [Notice]) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async move {
            let batch = pb::NoticeBatch {
                notices: notices.iter().map(notice_to_wire).collect(),
            };
            let (mut client, _in_use) = self.client();
            let reply = async {
                let mut replies = client
                    .deliver_notices(self.batch_request(batch))
                    .await?
                    .into_inner();
                Ok(replies.message().await?.map(|reply| reply.receipts))
            };
            batch_verdicts(self.bounded(reply).await)
        })
    }

    fn deliver_feedback<'a>(
        &'a self,
        feedback: &'a [Feedback],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async move {
            let batch = pb::FeedbackBatch {
                feedback: feedback.iter().map(feedback_to_wire).collect(),
            };
            let (mut client, _in_use) = self.client();
            let reply = async {
                let mut replies = client
                    .deliver_feedback(self.batch_request(batch))
                    .await?
                    .into_inner();
                Ok(replies.message().await?.map(|reply| reply.receipts))
            };
            batch_verdicts(self.bounded(reply).await)
        })
    }

    fn submit_inquiry<'a>(
        &'a self,
        inquiry: &'a Inquiry,
        wait: Duration,
    ) -> BoxFuture<'a, Result<InlineReply, CallFailure>> {
        Box::pin(async move {
            let mut request = tonic::Request::new(pb::SubmitInquiryRequest {
                inquiry: Some(inquiry_to_wire(inquiry)),
                wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
            });
            request.set_timeout(wait + self.timings.sync_margin);
            let (mut client, _in_use) = self.client();
            match client.submit_inquiry(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    let accepted = response.accepted.unwrap_or_default();
                    Ok(InlineReply {
                        verdict: accepted_of(&accepted),
                        confirmation: response.confirmation.map(|wire| {
                            confirmation_from_wire(&wire, "confirmation")
                                .map_err(|violations| (wire.message_id.parse().ok(), violations))
                        }),
                    })
                }
                // For a single message the status is the peer's verdict on it, when it is one
                // of the refusal classes; anything else says nothing about the message.
                Err(status) => match crate::status::refusal_of(status.code()) {
                    Some(code) => Ok(InlineReply {
                        verdict: PeerVerdict::Refused {
                            code: Some(code),
                            reason: describe(&status),
                        },
                        confirmation: None,
                    }),
                    None => Err(failure_of(&status)),
                },
            }
        })
    }

    fn acknowledge_confirmations<'a>(
        &'a self,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async move {
            let mut request = tonic::Request::new(pb::ConfirmationAcks {
                message_ids: ids.iter().map(Uuid::to_string).collect(),
            });
            request.set_timeout(self.timings.batch_call);
            let (mut client, _in_use) = self.client();
            match self.bounded(client.acknowledge_confirmations(request)).await {
                Ok(reply) => Ok(verdicts_of(reply.into_inner().receipts)),
                Err(status) => Err(failure_of(&status)),
            }
        })
    }

    fn peer_status<'a>(&'a self, ours: &'a NodeStatus) -> BoxFuture<'a, Result<NodeStatus, CallFailure>> {
        Box::pin(async move {
            let mut request = tonic::Request::new(pb::PeerStatusRequest {
                status: Some(status_to_wire(ours)),
            });
            request.set_timeout(self.timings.batch_call);
            let (mut client, _in_use) = self.client();
            let reply = self
                .bounded(client.peer_status(request))
                .await
                .map_err(|status| failure_of(&status))?
                .into_inner();
            status_from_wire(reply.status.as_ref(), "status").map_err(|violations| {
                let named: Vec<String> = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect();
                CallFailure::Failed(format!("the peer's status is malformed: {}", named.join("; ")))
            })
        })
    }

    fn exchange_client(&self) -> Option<ExchangeClient<Channel>> {
        // the caller's stream keeps its own handle on the channel for as long as it runs
        Some(self.client().0)
    }

    fn close_if_idle(&self) -> bool {
        if self.connection.reopen.is_none() {
            return false;
        }
        let mut state = self
            .connection
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.channel.is_some()
            && state.in_use == 0
            && state.last_used.elapsed() >= self.connection.idle_after
        {
            // the last handle: its connection closes (a stream still running keeps its own)
            state.channel = None;
            return true;
        }
        false
    }
}

impl PeerClient {
    /// `call` bounded by the batch call timeout as a whole, connecting included: a request's
    /// own deadline only starts once a connection is up, and a peer that accepts TCP and never
    /// finishes the handshake must cost no more than a peer that answers slowly.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        let limit = self.timings.batch_call;
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(crate::status::no_answer(limit)),
        }
    }

    /// Sends one batch of inquiries (`answer_inline`: the peer may answer in the receipts) and
    /// returns the receipts of its one reply.
    async fn submit_inquiry_batch(
        &self,
        inquiries: &[Inquiry],
        answer_inline: bool,
    ) -> Result<Option<Vec<pb::Receipt>>, tonic::Status> {
        let batch = pb::InquiryBatch {
            inquiries: inquiries.iter().map(inquiry_to_wire).collect(),
            answer_inline,
        };
        let (mut client, _in_use) = self.client();
        let reply = async {
            let mut replies = client
                .submit_inquiries(self.batch_request(batch))
                .await?
                .into_inner();
            Ok(replies.message().await?.map(|reply| reply.receipts))
        };
        self.bounded(reply).await
    }

    /// One batch as a request stream, bounded by the batch call timeout.
    fn batch_request<B>(&self, batch: B) -> tonic::Request<tokio_stream::Iter<std::array::IntoIter<B, 1>>> {
        let mut request = tonic::Request::new(tokio_stream::iter([batch]));
        request.set_timeout(self.timings.batch_call);
        request
    }
}

/// The verdicts of a batch call: the receipts of its one reply, or why there are none.
fn batch_verdicts(reply: Result<Option<Vec<pb::Receipt>>, tonic::Status>) -> Result<Verdicts, CallFailure> {
    match reply {
        Ok(Some(receipts)) => Ok(verdicts_of(receipts)),
        Ok(None) => Err(CallFailure::Failed(
            "peer closed the stream without receipts".into(),
        )),
        Err(status) => Err(failure_of(&status)),
    }
}

/// The receipts of a reply, keyed by message id; receipts with an unreadable id or no result
/// are left out (their messages count as unanswered).
fn verdicts_of(receipts: Vec<pb::Receipt>) -> Verdicts {
    receipts
        .into_iter()
        .filter_map(|receipt| {
            let id = Uuid::parse_str(&receipt.message_id).ok()?;
            let verdict = match receipt.result? {
                pb::receipt::Result::Accepted(accepted) => accepted_of(&accepted),
                pb::receipt::Result::Rejected(rejected) => {
                    let code = tonic::Code::from(rejected.code);
                    PeerVerdict::Refused {
                        code: crate::status::refusal_of(code),
                        reason: format!("{}: {}", crate::status::code_name(code), rejected.reason),
                    }
                }
            };
            Some((id, verdict))
        })
        .collect()
}

/// The answer an accepted inquiry's receipt carries, when it is the answer to that inquiry: read,
/// or its field violations (with its id when readable) for the intake to audit.
fn inline_answer_of(receipt: &pb::Receipt) -> Option<InlineConfirmation> {
    let wire = receipt.answer.as_ref()?;
    let accepted = matches!(receipt.result, Some(pb::receipt::Result::Accepted(_)));
    if !accepted || wire.inquiry_id != receipt.message_id {
        // not the answer to the inquiry this receipt is for: left owed, the peer delivers it
        return None;
    }
    Some(
        confirmation_from_wire(wire, "answer")
            .map_err(|violations| (wire.message_id.parse().ok(), violations)),
    )
}

fn accepted_of(accepted: &pb::Accepted) -> PeerVerdict {
    PeerVerdict::Accepted {
        received_at: accepted.received_at.as_ref().and_then(timestamp_from_wire),
        due_at: accepted.due_at.as_ref().and_then(timestamp_from_wire),
    }
}

/// A failed call: a peer that cannot be reached or did not answer in time is a condition of
/// the peer; anything else is a failure of this call.
fn failure_of(status: &tonic::Status) -> CallFailure {
    use tonic::Code;
    let text = describe(status);
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => CallFailure::Unreachable(text),
        Code::Unknown if std::error::Error::source(status).is_some() => CallFailure::Unreachable(text),
        _ => CallFailure::Failed(text),
    }
}

/// `CODE: message: cause: cause…`, for the outbox's last error and the log.
fn describe(status: &tonic::Status) -> String {
    use std::error::Error;
    let mut text = format!(
        "{}: {}",
        crate::status::code_name(status.code()),
        status.message()
    );
    let mut source = status.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
