//! The calling side of a run: streams coded symbols until the peer has decoded the difference.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::{
    ReconcileError, add_detail_part, detail_parts, elements_from_bytes, elements_to_bytes, wire_bytes,
};
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::pacing::{ELEMENTS_PER_CHUNK, fall_back_to_elements, next_chunk};
use crate::domain::riblt::{Element, Encoder};
use crate::proto::exchange as pb;
use crate::proto::exchange::exchange_client::ExchangeClient;
use crate::proto::exchange::reconcile_request::Step as RequestStep;
use crate::proto::exchange::reconcile_response::Step as ResponseStep;

/// Where a run stands, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The peer accepted the run and holds `peer_set_size` elements.
    Ready {
        /// Elements in the peer's set.
        peer_set_size: u64,
    },
    /// `sent` coded symbols are on their way.
    Symbols {
        /// Coded symbols sent so far.
        sent: u64,
    },
    /// Symbols stopped paying: every element is being sent.
    FallingBack,
    /// The peer decoded a difference of `differences` elements.
    Decoded {
        /// Elements in the symmetric difference.
        differences: u64,
    },
}

/// A completed exchange, seen from the caller. The peer has committed its part.
#[derive(Debug, Default)]
pub struct Initiated {
    /// Elements in the peer's set.
    pub peer_set_size: u64,
    /// Coded symbols sent.
    pub symbols: u64,
    /// Whether every element was sent instead (the difference was too large for symbols).
    pub fell_back: bool,
    /// Elements only we hold.
    pub ours_only: Vec<Element>,
    /// Elements only the peer holds.
    pub theirs_only_count: u64,
    /// What the peer holds of the difference.
    pub their_detail: DifferenceDetail,
    /// The peer's part: repairs made and differences reported.
    pub peer_committed: pb::ReconcileCommitted,
    /// Bytes we sent, gRPC framing included.
    pub bytes_sent: u64,
    /// Bytes we received, gRPC framing included.
    pub bytes_received: u64,
}

/// The request stream and the byte count of what went into it.
struct Outgoing {
    sender: mpsc::Sender<pb::ReconcileRequest>,
    bytes: u64,
}

impl Outgoing {
    async fn send(&mut self, step: RequestStep) -> Result<(), ReconcileError> {
        let request = pb::ReconcileRequest { step: Some(step) };
        self.bytes += wire_bytes(&request);
        self.sender
            .send(request)
            .await
            .map_err(|_| ReconcileError::Closed)
    }
}

/// The response stream and the byte count of what came out of it.
struct Incoming {
    stream: Streaming<pb::ReconcileResponse>,
    bytes: u64,
}

impl Incoming {
    async fn next(&mut self) -> Result<ResponseStep, ReconcileError> {
        let response = self.stream.message().await?.ok_or(ReconcileError::Closed)?;
        self.bytes += wire_bytes(&response);
        response
            .step
            .ok_or_else(|| ReconcileError::Protocol("a response without a step".into()))
    }
}

/// Runs the caller's side of one set's reconciliation over `client`. `begin` names the run, the
/// agreement and the set (its `set_size` is filled in here); `describe` names the elements only
/// we hold, for the peer. Returns once the peer has committed its part; the caller then commits
/// its own.
pub async fn initiate(
    client: &mut ExchangeClient<Channel>,
    mut begin: pb::ReconcileBegin,
    elements: &[Element],
    describe: impl FnOnce(&[Element]) -> DifferenceDetail,
    progress: impl FnMut(Progress),
) -> Result<Initiated, ReconcileError> {
    begin.set_size = elements.len() as u64;
    open(client, begin)
        .await?
        .exchange(elements, describe, progress)
        .await
}

/// A run whose `begin` is sent: the peer reads its set while we read ours.
pub struct OpenRun {
    outgoing: Outgoing,
    incoming: Incoming,
}

/// Starts a run: sends `begin` (with `set_size` 0 when our set is still being read; the chunks
/// carry it then) without waiting for the peer's `ready`.
pub async fn open(
    client: &mut ExchangeClient<Channel>,
    begin: pb::ReconcileBegin,
) -> Result<OpenRun, ReconcileError> {
    let (sender, receiver) = mpsc::channel(4);
    let mut outgoing = Outgoing { sender, bytes: 0 };
    outgoing.send(RequestStep::Begin(begin)).await?;
    let stream = client
        .reconcile(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    Ok(OpenRun {
        outgoing,
        incoming: Incoming { stream, bytes: 0 },
    })
}

impl OpenRun {
    /// The rest of the run over our set `elements`: see [`initiate`].
    pub async fn exchange(
        self,
        elements: &[Element],
        describe: impl FnOnce(&[Element]) -> DifferenceDetail,
        mut progress: impl FnMut(Progress),
    ) -> Result<Initiated, ReconcileError> {
        let OpenRun {
            mut outgoing,
            mut incoming,
        } = self;
        let peer_set_size = match incoming.next().await? {
            ResponseStep::Ready(ready) => ready.set_size,
            _ => return Err(ReconcileError::Protocol("expected ready".into())),
        };
        progress(Progress::Ready { peer_set_size });

        let mut run = Initiated {
            peer_set_size,
            ..Initiated::default()
        };
        let mut decoded =
            send_symbols(&mut outgoing, &mut incoming, elements, &mut run, &mut progress).await?;

        // The peer's report of the difference, possibly in parts.
        let mut caller_only: Vec<Element> = Vec::new();
        loop {
            caller_only.extend(
                elements_from_bytes(&decoded.caller_only, "decoded.caller_only")
                    .map_err(ReconcileError::Protocol)?,
            );
            run.theirs_only_count = decoded.responder_only;
            if let Some(part) = decoded.detail.take() {
                add_detail_part(&mut run.their_detail, part).map_err(ReconcileError::Protocol)?;
            }
            if decoded.complete {
                break;
            }
            decoded = match incoming.next().await? {
                ResponseStep::Decoded(next) => next,
                _ => return Err(ReconcileError::Protocol("expected the rest of decoded".into())),
            };
        }
        progress(Progress::Decoded {
            differences: caller_only.len() as u64 + run.theirs_only_count,
        });

        for part in detail_parts(&describe(&caller_only)) {
            outgoing.send(RequestStep::Detail(part)).await?;
        }
        run.ours_only = caller_only;
        run.peer_committed = match incoming.next().await? {
            ResponseStep::Committed(committed) => committed,
            _ => return Err(ReconcileError::Protocol("expected committed".into())),
        };
        run.bytes_sent = outgoing.bytes;
        run.bytes_received = incoming.bytes;
        Ok(run)
    }
}

/// Streams coded symbols (or, past the break-even point, every element) until the peer says
/// decoded; returns the first part of its report.
async fn send_symbols(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    elements: &[Element],
    run: &mut Initiated,
    progress: &mut impl FnMut(Progress),
) -> Result<pb::ReconcileDecoded, ReconcileError> {
    // The coding runs on blocking threads: symbol 0 alone touches every element.
    let owned = elements.to_vec();
    let mut encoder = Some(blocking(move || Encoder::new(owned)).await?);
    let mut sent = 0usize;
    loop {
        let count = next_chunk(sent);
        if fall_back_to_elements(sent, count, elements.len()) {
            break;
        }
        let mut taken = encoder.take().ok_or(ReconcileError::Internal("encoder lost"))?;
        let (taken, bytes) = blocking(move || {
            let mut bytes = Vec::with_capacity(count * 42);
            for _ in 0..count {
                taken.produce_next().encode_into(&mut bytes);
            }
            (taken, bytes)
        })
        .await?;
        encoder = Some(taken);
        let chunk = pb::SymbolChunk {
            set_size: elements.len() as u64,
            first_index: sent as u64,
            count: count as u32,
            symbols: bytes,
        };
        outgoing.send(RequestStep::Symbols(chunk)).await?;
        sent += count;
        run.symbols = sent as u64;
        progress(Progress::Symbols { sent: sent as u64 });
        match incoming.next().await? {
            ResponseStep::More(_) => continue,
            ResponseStep::Decoded(decoded) => return Ok(decoded),
            _ => return Err(ReconcileError::Protocol("expected more or decoded".into())),
        }
    }
    run.fell_back = true;
    progress(Progress::FallingBack);
    let chunks: Vec<&[Element]> = if elements.is_empty() {
        vec![&[]]
    } else {
        elements.chunks(ELEMENTS_PER_CHUNK).collect()
    };
    let last = chunks.len() - 1;
    for (index, chunk) in chunks.into_iter().enumerate() {
        let step = RequestStep::Elements(pb::ElementChunk {
            set_size: elements.len() as u64,
            elements: elements_to_bytes(chunk),
            last: index == last,
        });
        outgoing.send(step).await?;
    }
    match incoming.next().await? {
        ResponseStep::Decoded(decoded) => Ok(decoded),
        _ => Err(ReconcileError::Protocol("expected decoded".into())),
    }
}

/// Runs CPU-bound coding off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ReconcileError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ReconcileError::Internal("the coding task failed"))
}
