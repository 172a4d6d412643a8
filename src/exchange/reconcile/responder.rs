//! The called side of a run: decodes the difference from the caller's symbols, names its part,
//! and commits its repairs once the caller has named its own.

use std::collections::HashSet;
use std::future::Future;

use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::{Responded, add_detail_part, detail_parts, elements_from_bytes, elements_to_bytes, wire_bytes};
use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::pacing::{FIRST_CHUNK, MAX_CHUNK, MAX_SET_SIZE, symbol_limit};
use crate::domain::riblt::{CodedSymbol, Decoder, Element};
use crate::proto::exchange as pb;
use crate::proto::exchange::reconcile_request::Step as RequestStep;
use crate::proto::exchange::reconcile_response::Step as ResponseStep;
use crate::status::{code_name, internal, status_of};

/// Elements of the caller's set per `decoded` part (one megabyte).
const CALLER_ONLY_PER_PART: usize = 32_768;

/// One run's set on the called side, and what it does at the end.
#[tonic::async_trait]
pub trait ResponderSession: Send + 'static {
    /// The elements of our set.
    fn elements(&self) -> &[Element];

    /// Names the elements only we hold, for the caller.
    fn describe(&self, ours_only: &[Element]) -> DifferenceDetail;

    /// Commits our part of the repairs and the run record; returns what goes back to the
    /// caller. Called only once the whole difference is known on both sides.
    async fn commit(self, responded: Responded) -> Result<pb::ReconcileCommitted, Status>;

    /// The run broke off before commit (`reason` names no person): record it, change nothing.
    async fn abandon(self, responded: Responded, reason: String);
}

/// Serves one `Reconcile` stream: `open` checks the caller's `begin` (agreement, set) and loads
/// our set; the rest is the protocol. Responses go to `responses`.
pub async fn respond<S, Open, Opening>(
    mut requests: Streaming<pb::ReconcileRequest>,
    responses: mpsc::Sender<Result<pb::ReconcileResponse, Status>>,
    open: Open,
) where
    S: ResponderSession,
    Open: FnOnce(Result<pb::ReconcileBegin, Status>) -> Opening,
    Opening: Future<Output = Result<S, Status>>,
{
    let mut link = Link {
        requests: &mut requests,
        responses: &responses,
        responded: Responded::default(),
    };
    // `open` sees a first message that is not `begin` too, so that it can audit the refusal.
    let begin = match link.next().await {
        Ok(RequestStep::Begin(begin)) => Ok(begin),
        Ok(_) => Err(invalid("begin: the first message of a run must be begin")),
        Err(status) => Err(status),
    };
    link.responded.caller_set_size = begin.as_ref().map_or(0, |begin| begin.set_size);
    let session = match open(begin).await {
        Ok(session) => session,
        Err(status) => {
            link.fail(status).await;
            return;
        }
    };
    match link.run(&session).await {
        Ok(()) => {
            let responded = std::mem::take(&mut link.responded);
            match session.commit(responded).await {
                Ok(committed) => {
                    let _ = link.send(ResponseStep::Committed(committed)).await;
                }
                Err(status) => link.fail(status).await,
            }
        }
        Err(status) => {
            let reason = format!("{}: {}", code_name(status.code()), status.message());
            let responded = std::mem::take(&mut link.responded);
            link.fail(status).await;
            session.abandon(responded, reason).await;
        }
    }
}

/// The two halves of the stream and what has been learnt so far.
struct Link<'a> {
    requests: &'a mut Streaming<pb::ReconcileRequest>,
    responses: &'a mpsc::Sender<Result<pb::ReconcileResponse, Status>>,
    responded: Responded,
}

impl Link<'_> {
    async fn next(&mut self) -> Result<RequestStep, Status> {
        let request = self
            .requests
            .message()
            .await?
            .ok_or_else(|| cancelled("the caller closed the stream before the run completed"))?;
        self.responded.bytes_received += wire_bytes(&request);
        request
            .step
            .ok_or_else(|| invalid("step: a request without a step"))
    }

    async fn send(&mut self, step: ResponseStep) -> Result<(), Status> {
        let response = pb::ReconcileResponse { step: Some(step) };
        self.responded.bytes_sent += wire_bytes(&response);
        self.responses
            .send(Ok(response))
            .await
            .map_err(|_| cancelled("the caller went away"))
    }

    async fn fail(&mut self, status: Status) {
        let _ = self.responses.send(Err(status)).await;
    }

    /// Everything between `begin` and commit.
    async fn run(&mut self, session: &impl ResponderSession) -> Result<(), Status> {
        let elements = session.elements();
        self.send(ResponseStep::Ready(pb::ReconcileReady {
            set_size: elements.len() as u64,
        }))
        .await?;
        let (caller_only, ours_only) = self.decode(elements).await?;
        self.responded.theirs_only_count = caller_only.len() as u64;

        // Our report: the caller's elements (so it can name them) and our detail, in parts.
        let detail = session.describe(&ours_only);
        let mut detail_parts = detail_parts(&detail).into_iter().peekable();
        let mut caller_parts = caller_only.chunks(CALLER_ONLY_PER_PART).peekable();
        loop {
            let caller_part = caller_parts.next().unwrap_or(&[]);
            let detail_part = detail_parts.next();
            let complete = caller_parts.peek().is_none() && detail_parts.peek().is_none();
            self.send(ResponseStep::Decoded(pb::ReconcileDecoded {
                symbols_used: self.responded.symbols,
                caller_only: elements_to_bytes(caller_part),
                detail: detail_part,
                complete,
                responder_only: ours_only.len() as u64,
            }))
            .await?;
            if complete {
                break;
            }
        }
        self.responded.ours_only = ours_only;

        loop {
            match self.next().await? {
                RequestStep::Detail(part) => {
                    let last = add_detail_part(&mut self.responded.their_detail, part).map_err(invalid)?;
                    if last {
                        return Ok(());
                    }
                }
                _ => return Err(invalid("step: expected detail after decoded")),
            }
        }
    }

    /// The caller's set size, from `begin` or, when `begin` announced 0 (the caller was still
    /// reading its set), from the first chunk; it bounds what the caller may send.
    fn learn_set_size(&mut self, announced: u64) -> Result<(), Status> {
        if self.responded.caller_set_size == 0 {
            if announced > MAX_SET_SIZE {
                return Err(invalid(format!(
                    "set_size: exceeds the largest set a county holds ({MAX_SET_SIZE})"
                )));
            }
            self.responded.caller_set_size = announced;
        }
        Ok(())
    }

    /// Takes symbols (or every element) until the difference is known; returns (caller only,
    /// ours only). The coding runs on blocking threads: symbol 0 alone touches every element,
    /// and our first local symbols are produced while the caller produces its first chunk.
    async fn decode(&mut self, elements: &[Element]) -> Result<(Vec<Element>, Vec<Element>), Status> {
        let local = elements.to_vec();
        let mut decoder = Some(
            blocking(move || {
                let mut decoder = Decoder::new(local);
                decoder.prepare(FIRST_CHUNK);
                decoder
            })
            .await?,
        );
        let mut received: Vec<Element> = Vec::new();
        loop {
            match self.next().await? {
                RequestStep::Symbols(chunk) => {
                    self.learn_set_size(chunk.set_size)?;
                    if chunk.first_index != self.responded.symbols {
                        return Err(invalid(format!(
                            "symbols.first_index: expected {}, found {}",
                            self.responded.symbols, chunk.first_index
                        )));
                    }
                    if chunk.count == 0 || chunk.count as usize > MAX_CHUNK {
                        return Err(invalid(format!(
                            "symbols.count: must be 1 to {MAX_CHUNK}, found {}",
                            chunk.count
                        )));
                    }
                    let mut taken = decoder.take().ok_or_else(|| internal("decoder lost"))?;
                    let (taken, added) = blocking(move || {
                        let added = add_chunk(&mut taken, &chunk);
                        (taken, added)
                    })
                    .await?;
                    let (added, decoded) = added?;
                    self.responded.symbols += added;
                    if decoded {
                        return Ok((taken.remote_only().to_vec(), taken.local_only().to_vec()));
                    }
                    decoder = Some(taken);
                    let limit =
                        symbol_limit(usize::try_from(self.responded.caller_set_size).unwrap_or(usize::MAX));
                    if self.responded.symbols as usize > limit {
                        return Err(exhausted(format!(
                            "symbols: more than {limit} symbols for a set of {}",
                            self.responded.caller_set_size
                        )));
                    }
                    self.send(ResponseStep::More(pb::SymbolsNeeded {
                        symbols_received: self.responded.symbols,
                    }))
                    .await?;
                }
                RequestStep::Elements(chunk) => {
                    self.learn_set_size(chunk.set_size)?;
                    self.responded.fell_back = true;
                    decoder = None;
                    received
                        .extend(elements_from_bytes(&chunk.elements, "elements.elements").map_err(invalid)?);
                    if received.len() as u64 > self.responded.caller_set_size {
                        return Err(invalid(
                            "elements: more elements than the caller's set_size announced",
                        ));
                    }
                    if chunk.last {
                        let theirs = std::mem::take(&mut received);
                        let ours = elements.to_vec();
                        return blocking(move || difference(&theirs, &ours)).await;
                    }
                }
                _ => return Err(invalid("step: expected symbols or elements")),
            }
        }
    }
}

/// Adds a chunk's symbols until decoded; returns (symbols added, decoded).
fn add_chunk(decoder: &mut Decoder, chunk: &pb::SymbolChunk) -> Result<(u64, bool), Status> {
    let mut rest = chunk.symbols.as_slice();
    for added in 1..=u64::from(chunk.count) {
        let (symbol, tail) =
            CodedSymbol::decode_prefix(rest).map_err(|error| invalid(format!("symbols.symbols: {error}")))?;
        rest = tail;
        decoder
            .add_remote(symbol)
            .map_err(|error| invalid(format!("symbols: {error}")))?;
        if decoder.is_decoded() {
            return Ok((added, true));
        }
    }
    Ok((u64::from(chunk.count), false))
}

/// Runs CPU-bound coding off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| internal("reconciliation coding failed"))
}

/// (in `theirs` only, in `ours` only), each without duplicates.
fn difference(theirs: &[Element], ours: &[Element]) -> (Vec<Element>, Vec<Element>) {
    let their_set: HashSet<&Element> = theirs.iter().collect();
    let our_set: HashSet<&Element> = ours.iter().collect();
    let mut theirs_only: Vec<Element> = their_set
        .iter()
        .filter(|e| !our_set.contains(*e))
        .map(|e| **e)
        .collect();
    let mut ours_only: Vec<Element> = our_set
        .iter()
        .filter(|e| !their_set.contains(*e))
        .map(|e| **e)
        .collect();
    theirs_only.sort_unstable();
    ours_only.sort_unstable();
    (theirs_only, ours_only)
}

/// A malformed step of the caller's stream.
fn invalid(reason: impl Into<String>) -> Status {
    status_of(&Rejection::new(RejectionCode::InvalidArgument, reason))
}

/// The caller went away mid-run.
fn cancelled(reason: impl Into<String>) -> Status {
    status_of(&Rejection::new(RejectionCode::Cancelled, reason))
}

/// The caller sent more than a run may take.
fn exhausted(reason: impl Into<String>) -> Status {
    status_of(&Rejection::new(RejectionCode::ResourceExhausted, reason))
}
