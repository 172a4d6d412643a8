//! The calling side of the protocol over a [`ReconcileLink`]: streams coded symbols until the
//! peer has decoded the difference, names our part of it, and waits for the peer's commit.

use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::pacing::{ELEMENTS_PER_CHUNK, fall_back_to_elements, next_chunk};
use crate::domain::reconcile::protocol::{CallerStep, Decoded, PeerCommitted, PeerStep};
use crate::domain::riblt::{Element, Encoder};
use crate::peer::reconcile::{LinkError, ReconcileLink};

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
    pub peer_committed: PeerCommitted,
    /// Bytes we sent, framing included.
    pub bytes_sent: u64,
    /// Bytes we received, framing included.
    pub bytes_received: u64,
}

/// Runs the caller's side of one set's reconciliation over `link`, whose `begin` is sent, for
/// our set `elements`; `describe` names the elements only we hold, for the peer. Returns once
/// the peer has committed its part; the caller then commits its own.
pub async fn initiate(
    mut link: impl ReconcileLink,
    elements: &[Element],
    describe: impl FnOnce(&[Element]) -> DifferenceDetail,
    mut progress: impl FnMut(Progress),
) -> Result<Initiated, LinkError> {
    let peer_set_size = match link.receive().await? {
        PeerStep::Ready { set_size } => set_size,
        _ => return Err(LinkError::Protocol("expected ready".into())),
    };
    progress(Progress::Ready { peer_set_size });

    let mut run = Initiated {
        peer_set_size,
        ..Initiated::default()
    };
    let decoded = send_symbols(&mut link, elements, &mut run, &mut progress).await?;
    run.theirs_only_count = decoded.responder_only;
    run.their_detail = decoded.detail;
    progress(Progress::Decoded {
        differences: decoded.caller_only.len() as u64 + run.theirs_only_count,
    });

    link.send(CallerStep::Detail(&describe(&decoded.caller_only)))
        .await?;
    run.ours_only = decoded.caller_only;
    run.peer_committed = match link.receive().await? {
        PeerStep::Committed(committed) => committed,
        _ => return Err(LinkError::Protocol("expected committed".into())),
    };
    run.bytes_sent = link.bytes_sent();
    run.bytes_received = link.bytes_received();
    Ok(run)
}

/// Streams coded symbols (or, past the break-even point, every element) until the peer says
/// decoded; returns its report.
async fn send_symbols(
    link: &mut impl ReconcileLink,
    elements: &[Element],
    run: &mut Initiated,
    progress: &mut impl FnMut(Progress),
) -> Result<Decoded, LinkError> {
    // The coding runs on blocking threads: symbol 0 alone touches every element.
    let owned = elements.to_vec();
    let mut encoder = Some(blocking(move || Encoder::new(owned)).await?);
    let mut sent = 0usize;
    loop {
        let count = next_chunk(sent);
        if fall_back_to_elements(sent, count, elements.len()) {
            break;
        }
        let mut taken = encoder.take().ok_or(LinkError::Internal("encoder lost"))?;
        let (taken, symbols) = blocking(move || {
            let mut bytes = Vec::with_capacity(count * 42);
            for _ in 0..count {
                taken.produce_next().encode_into(&mut bytes);
            }
            (taken, bytes)
        })
        .await?;
        encoder = Some(taken);
        let chunk = CallerStep::Symbols {
            set_size: elements.len() as u64,
            first_index: sent as u64,
            count: count as u32,
            symbols,
        };
        link.send(chunk).await?;
        sent += count;
        run.symbols = sent as u64;
        progress(Progress::Symbols { sent: sent as u64 });
        match link.receive().await? {
            PeerStep::More { .. } => continue,
            PeerStep::Decoded(decoded) => return Ok(decoded),
            _ => return Err(LinkError::Protocol("expected more or decoded".into())),
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
        let step = CallerStep::Elements {
            set_size: elements.len() as u64,
            elements: chunk,
            last: index == last,
        };
        link.send(step).await?;
    }
    match link.receive().await? {
        PeerStep::Decoded(decoded) => Ok(decoded),
        _ => Err(LinkError::Protocol("expected decoded".into())),
    }
}

/// Runs CPU-bound coding off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, LinkError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| LinkError::Internal("the coding task failed"))
}
