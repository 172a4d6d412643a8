//! The decoder: a remote stream of coded symbols against the local set, peeled into the
//! elements only one side holds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::Element;
use super::encoder::Encoder;
use super::mapping::next_index;
use super::symbol::CodedSymbol;

/// The remote stream contradicts itself: it cannot have come from an honest encoder of a set.
///
/// Peeling an honest stream empties one distinct coded symbol per recovered element, so it never
/// recovers more elements than symbols were received; a stream that makes it do so (a corrupted
/// or forged one) is refused here, which also bounds the work any stream can cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("remote coded symbols are inconsistent: {recovered} elements recovered from {symbols} symbols")]
pub struct InconsistentStream {
    /// Elements recovered when the contradiction was found.
    pub recovered: usize,
    /// Remote symbols received by then.
    pub symbols: usize,
}

/// Which side holds a recovered element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// In the remote set only: it counts +1 in the difference symbols.
    Remote,
    /// In the local set only: it counts −1.
    Local,
}

impl Side {
    fn direction(self) -> i64 {
        match self {
            Side::Remote => 1,
            Side::Local => -1,
        }
    }
}

/// A recovered element, kept so it can be peeled from symbols that arrive after its recovery.
#[derive(Debug, Clone)]
struct Recovered {
    element: Element,
    checksum: u64,
    side: Side,
}

/// Reconciles the local set with a remote set from a prefix of the remote [`Encoder`]'s stream.
///
/// Feed remote symbols in stream order with [`Decoder::add_remote`] until
/// [`Decoder::is_decoded`]; then [`Decoder::remote_only`] and [`Decoder::local_only`] are the
/// two halves of the symmetric difference. The local stream is produced in lockstep, one symbol
/// per remote symbol, so memory is the local elements plus O(symbols received).
#[derive(Debug)]
pub struct Decoder {
    /// The local set's stream, advanced one symbol per remote symbol.
    local: Encoder,
    /// Local symbols produced ahead of the remote ones ([`Decoder::prepare`]), next first.
    ahead: VecDeque<CodedSymbol>,
    /// For each received index: remote − local − every element recovered so far.
    difference: Vec<CodedSymbol>,
    /// Indices whose difference symbol may have become pure since last looked at.
    maybe_pure: Vec<usize>,
    /// Recovered elements, in order of recovery.
    recovered: Vec<Recovered>,
    /// For each recovered element (by position in `recovered`): the first index it maps to that
    /// has not been received yet, earliest first.
    upcoming: BinaryHeap<Reverse<(u64, usize)>>,
    /// Elements only the remote set holds, in order of recovery.
    remote_only: Vec<Element>,
    /// Elements only the local set holds, in order of recovery.
    local_only: Vec<Element>,
    /// Set once the stream has proved inconsistent; every later call fails.
    inconsistent: Option<InconsistentStream>,
}

impl Decoder {
    /// A decoder for the local set `local`, which must be distinct (see [`Encoder::new`]).
    pub fn new(local: impl IntoIterator<Item = Element>) -> Self {
        Self::with_local_encoder(Encoder::new(local))
    }

    pub(crate) fn with_local_encoder(local: Encoder) -> Self {
        Self {
            local,
            ahead: VecDeque::new(),
            difference: Vec::new(),
            maybe_pure: Vec::new(),
            recovered: Vec::new(),
            upcoming: BinaryHeap::new(),
            remote_only: Vec::new(),
            local_only: Vec::new(),
            inconsistent: None,
        }
    }

    /// Takes the remote stream's next symbol (they must arrive in order, starting at index 0)
    /// and peels everything that has become recoverable.
    ///
    /// # Errors
    ///
    /// [`InconsistentStream`] if the remote symbols could not have come from one set; the
    /// decoder then refuses all further symbols.
    pub fn add_remote(&mut self, remote: CodedSymbol) -> Result<(), InconsistentStream> {
        if let Some(error) = &self.inconsistent {
            return Err(error.clone());
        }
        let index = self.difference.len() as u64;
        let local = self
            .ahead
            .pop_front()
            .unwrap_or_else(|| self.local.produce_next());
        let mut symbol = remote.subtract(&local);
        while let Some(&Reverse((due, position))) = self.upcoming.peek() {
            if due != index {
                break;
            }
            self.upcoming.pop();
            let recovered = &self.recovered[position];
            symbol.apply(
                &recovered.element,
                recovered.checksum,
                -recovered.side.direction(),
            );
            let after = next_index(recovered.checksum, index);
            self.upcoming.push(Reverse((after, position)));
        }
        self.difference.push(symbol);
        self.maybe_pure.push(index as usize);
        self.peel()
    }

    /// Produces the local symbols for the next `count` remote ones now, so that the work can
    /// overlap with the remote side producing them (symbol 0 alone touches every element).
    /// Changes no result.
    pub fn prepare(&mut self, count: usize) {
        while self.ahead.len() < count {
            self.ahead.push_back(self.local.produce_next());
        }
    }

    /// Whether the whole difference has been recovered: coded symbol 0, to which every element
    /// maps, is empty once everything recovered is peeled from it. With identical sets that is
    /// the case after the first symbol.
    pub fn is_decoded(&self) -> bool {
        self.inconsistent.is_none() && self.difference.first().is_some_and(CodedSymbol::is_empty)
    }

    /// Elements in the remote set but not the local one, in order of recovery (complete once
    /// [`Decoder::is_decoded`]).
    pub fn remote_only(&self) -> &[Element] {
        &self.remote_only
    }

    /// Elements in the local set but not the remote one, in order of recovery (complete once
    /// [`Decoder::is_decoded`]).
    pub fn local_only(&self) -> &[Element] {
        &self.local_only
    }

    /// How many remote symbols have been added: the communication cost so far.
    pub fn symbols_used(&self) -> usize {
        self.difference.len()
    }

    /// Recovers the element of every pure symbol, removes it from every received symbol it maps
    /// to, and repeats for the symbols that this leaves pure.
    fn peel(&mut self) -> Result<(), InconsistentStream> {
        while let Some(index) = self.maybe_pure.pop() {
            let symbol = &self.difference[index];
            let Some(direction) = symbol.pure_direction() else {
                continue;
            };
            let element = symbol.sum;
            let element_checksum = symbol.checksum;
            if self.recovered.len() >= self.difference.len() {
                let error = InconsistentStream {
                    recovered: self.recovered.len() + 1,
                    symbols: self.difference.len(),
                };
                self.inconsistent = Some(error.clone());
                return Err(error);
            }
            let side = if direction == 1 {
                self.remote_only.push(element);
                Side::Remote
            } else {
                self.local_only.push(element);
                Side::Local
            };

            let received = self.difference.len() as u64;
            let mut mapped = 0u64;
            while mapped < received {
                let target = &mut self.difference[mapped as usize];
                target.apply(&element, element_checksum, -direction);
                if target.count == 1 || target.count == -1 {
                    self.maybe_pure.push(mapped as usize);
                }
                mapped = next_index(element_checksum, mapped);
            }
            self.upcoming.push(Reverse((mapped, self.recovered.len())));
            self.recovered.push(Recovered {
                element,
                checksum: element_checksum,
                side,
            });
        }
        Ok(())
    }
}
