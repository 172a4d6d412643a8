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
    link: &mut impl ReconcileLink,
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
    let decoded = send_symbols(link, elements, &mut run, &mut progress).await?;
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

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};

    use uuid::Uuid;

    use super::*;
    use crate::domain::division::CountyCode;
    use crate::domain::reconcile::{MessageRef, MessageType};
    use crate::domain::riblt::{CodedSymbol, Decoder};

    /// A peer held in memory: decodes what the caller sends against its own set, as the
    /// exchange edge does, and answers in the protocol's order.
    struct InMemoryPeer {
        /// The peer's set.
        set: Vec<Element>,
        /// Decodes the caller's symbols against `set`.
        decoder: Decoder,
        /// Elements received when the caller sends them all.
        received: Vec<Element>,
        /// What the peer holds of the difference.
        detail: DifferenceDetail,
        /// What the caller named of it.
        their_detail: Option<DifferenceDetail>,
        /// Answers not yet taken by the caller.
        replies: VecDeque<PeerStep>,
    }

    impl InMemoryPeer {
        fn new(set: Vec<Element>, detail: DifferenceDetail) -> InMemoryPeer {
            InMemoryPeer {
                decoder: Decoder::new(set.clone()),
                replies: VecDeque::from([PeerStep::Ready {
                    set_size: set.len() as u64,
                }]),
                set,
                received: Vec::new(),
                detail,
                their_detail: None,
            }
        }

        fn decoded(&self, caller_only: Vec<Element>, responder_only: u64) -> PeerStep {
            PeerStep::Decoded(Decoded {
                caller_only,
                responder_only,
                detail: self.detail.clone(),
            })
        }
    }

    impl ReconcileLink for InMemoryPeer {
        async fn send(&mut self, step: CallerStep<'_>) -> Result<(), LinkError> {
            let reply = match step {
                CallerStep::Symbols { symbols, .. } => {
                    let mut rest = symbols.as_slice();
                    while !rest.is_empty() && !self.decoder.is_decoded() {
                        let (symbol, tail) = CodedSymbol::decode_prefix(rest)
                            .map_err(|error| LinkError::Protocol(error.to_string()))?;
                        rest = tail;
                        self.decoder
                            .add_remote(symbol)
                            .map_err(|error| LinkError::Protocol(error.to_string()))?;
                    }
                    if self.decoder.is_decoded() {
                        let caller_only = self.decoder.remote_only().to_vec();
                        self.decoded(caller_only, self.decoder.local_only().len() as u64)
                    } else {
                        PeerStep::More {
                            symbols_received: self.decoder.symbols_used() as u64,
                        }
                    }
                }
                CallerStep::Elements { elements, last, .. } => {
                    self.received.extend_from_slice(elements);
                    if !last {
                        return Ok(());
                    }
                    let theirs: HashSet<&Element> = self.received.iter().collect();
                    let ours: HashSet<&Element> = self.set.iter().collect();
                    let caller_only = theirs.difference(&ours).map(|e| **e).collect();
                    self.decoded(caller_only, ours.difference(&theirs).count() as u64)
                }
                CallerStep::Detail(detail) => {
                    self.their_detail = Some(detail.clone());
                    PeerStep::Committed(PeerCommitted {
                        repaired: 1,
                        reported: 2,
                        inquiries_opened: 3,
                    })
                }
            };
            self.replies.push_back(reply);
            Ok(())
        }

        async fn receive(&mut self) -> Result<PeerStep, LinkError> {
            self.replies.pop_front().ok_or(LinkError::Closed)
        }

        fn bytes_sent(&self) -> u64 {
            0
        }

        fn bytes_received(&self) -> u64 {
            0
        }
    }

    fn element(seed: u32) -> Element {
        let mut element = [0u8; 32];
        element[..4].copy_from_slice(&seed.to_le_bytes());
        element[31] = 0xa5;
        element
    }

    fn sorted(mut elements: Vec<Element>) -> Vec<Element> {
        elements.sort_unstable();
        elements
    }

    fn a_message() -> MessageRef {
        MessageRef {
            message_type: MessageType::Inquiry,
            message_id: Uuid::now_v7(),
            author: "430703".parse::<CountyCode>().expect("a county"),
        }
    }

    /// Runs the caller over `ours` against a peer holding `theirs`; returns the run, the peer,
    /// and the progress reported.
    async fn run_against(
        ours: &[Element],
        theirs: Vec<Element>,
    ) -> (
        Result<Initiated, LinkError>,
        Vec<Progress>,
        DifferenceDetail,
        DifferenceDetail,
    ) {
        let peer_detail = DifferenceDetail {
            messages: vec![a_message()],
            person_tags: Vec::new(),
        };
        let our_detail = DifferenceDetail {
            messages: Vec::new(),
            person_tags: vec![[7; 32]],
        };
        let mut peer = InMemoryPeer::new(theirs, peer_detail.clone());
        let mut steps = Vec::new();
        let run = initiate(&mut peer, ours, |_| our_detail.clone(), |step| steps.push(step)).await;
        let named = peer.their_detail.take().unwrap_or_default();
        (run, steps, peer_detail, named)
    }

    #[tokio::test]
    async fn finds_both_sides_of_the_difference_and_trades_what_each_holds_of_it() {
        let shared: Vec<Element> = (0..2_000).map(element).collect();
        let ours_only: Vec<Element> = (10_000..10_003).map(element).collect();
        let theirs_only: Vec<Element> = (20_000..20_002).map(element).collect();
        let ours = [shared.clone(), ours_only.clone()].concat();
        let theirs = [shared, theirs_only].concat();

        let (run, steps, peer_detail, named) = run_against(&ours, theirs).await;

        let run = run.expect("the run completes");
        assert_eq!(sorted(run.ours_only), sorted(ours_only));
        assert_eq!(run.theirs_only_count, 2);
        assert_eq!(run.peer_set_size, 2_002);
        assert_eq!(run.their_detail, peer_detail);
        assert_eq!(named.person_tags, vec![[7; 32]], "the peer was told ours");
        assert_eq!(
            run.peer_committed,
            PeerCommitted {
                repaired: 1,
                reported: 2,
                inquiries_opened: 3,
            }
        );
        assert!(!run.fell_back);
        assert!(run.symbols > 0 && run.symbols < 100, "{} symbols", run.symbols);
        assert_eq!(steps.first(), Some(&Progress::Ready { peer_set_size: 2_002 }));
        assert_eq!(steps.last(), Some(&Progress::Decoded { differences: 5 }));
    }

    #[tokio::test]
    async fn sends_every_element_when_the_sets_have_nothing_in_common() {
        // Large enough that symbols would cost more than the elements before they decode.
        let ours: Vec<Element> = (0..8_000).map(element).collect();
        let theirs: Vec<Element> = (100_000..108_000).map(element).collect();

        let (run, steps, _, _) = run_against(&ours, theirs).await;

        let run = run.expect("the run completes");
        assert!(run.fell_back);
        assert!(steps.contains(&Progress::FallingBack), "{steps:?}");
        assert_eq!(sorted(run.ours_only), sorted(ours));
        assert_eq!(run.theirs_only_count, 8_000);
    }

    #[tokio::test]
    async fn a_peer_that_answers_out_of_order_breaks_the_run() {
        let mut peer = InMemoryPeer::new(Vec::new(), DifferenceDetail::default());
        peer.replies = VecDeque::from([PeerStep::More { symbols_received: 0 }]);

        let run = initiate(&mut peer, &[element(1)], |_| DifferenceDetail::default(), |_| {}).await;

        assert!(
            matches!(&run, Err(LinkError::Protocol(what)) if what == "expected ready"),
            "{run:?}"
        );
    }

    #[tokio::test]
    async fn a_peer_that_goes_silent_closes_the_run() {
        let mut peer = InMemoryPeer::new(Vec::new(), DifferenceDetail::default());
        peer.replies.clear();

        let run = initiate(&mut peer, &[element(1)], |_| DifferenceDetail::default(), |_| {}).await;

        assert!(matches!(run, Err(LinkError::Closed)), "{run:?}");
    }
}
