//! The reconciliation protocol's messages in domain terms: what the node sends and receives
//! during a run, whole (the edges split them into wire parts and put them back together).
//!
//! The order of the messages is described with the wire protocol (`exchange::reconcile`); the
//! node runs the caller's side over the peer client's link (`peer::reconcile`).

use uuid::Uuid;

use super::{DifferenceDetail, ReconcileSet};
use crate::domain::message::AgreementRef;
use crate::domain::riblt::Element;

/// A run's opening, read: which run, under which agreement, over which set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunBegin {
    /// The run's id, chosen by the caller; both sides record their part under it.
    pub run_id: Uuid,
    /// The agreement the run is under, in the version the caller holds.
    pub agreement: AgreementRef,
    /// Which set is compared.
    pub set: ReconcileSet,
    /// Elements in the caller's set; 0 while the caller is still reading it (its chunks carry
    /// the size then).
    pub set_size: u64,
}

/// What the caller sends after `begin`.
#[derive(Clone, Debug)]
pub enum CallerStep<'a> {
    /// Coded symbols `first_index..first_index + count`, encoded back to back.
    Symbols {
        /// Elements in the caller's set.
        set_size: u64,
        /// Index of the first symbol.
        first_index: u64,
        /// Symbols in `symbols`.
        count: u32,
        /// The symbols, in [`crate::domain::riblt::CodedSymbol`]'s encoding.
        symbols: Vec<u8>,
    },
    /// Part of the caller's whole set, sent instead of symbols when those would cost more.
    Elements {
        /// Elements in the caller's set.
        set_size: u64,
        /// This part.
        elements: &'a [Element],
        /// Whether it is the last part.
        last: bool,
    },
    /// What the caller holds of the difference.
    Detail(&'a DifferenceDetail),
}

/// What the peer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerStep {
    /// The peer accepted the run and holds `set_size` elements.
    Ready {
        /// Elements in the peer's set.
        set_size: u64,
    },
    /// Not decoded yet: more symbols, please.
    More {
        /// Symbols the peer has taken in so far.
        symbols_received: u64,
    },
    /// The peer decoded the difference.
    Decoded(Decoded),
    /// The peer committed its part.
    Committed(PeerCommitted),
}

/// The peer's report of a decoded difference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Elements only the caller holds, for it to name.
    pub caller_only: Vec<Element>,
    /// How many elements only the peer holds.
    pub responder_only: u64,
    /// What the peer holds of the difference.
    pub detail: DifferenceDetail,
}

/// What the peer did on its side at commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCommitted {
    /// Messages queued for re-delivery.
    pub repaired: u32,
    /// Differences reported for an operator.
    pub reported: u32,
    /// Outflow inquiries opened about persons.
    pub inquiries_opened: u32,
}

/// What the called side knows once the caller has named its part of the difference.
#[derive(Debug, Default)]
pub struct Responded {
    /// Elements in the caller's set, as it announced.
    pub caller_set_size: u64,
    /// Coded symbols received (0 when the caller sent every element).
    pub symbols: u64,
    /// Whether the caller sent every element instead of symbols.
    pub fell_back: bool,
    /// Elements only we hold.
    pub ours_only: Vec<Element>,
    /// Elements only the caller holds.
    pub theirs_only_count: u64,
    /// What the caller holds of the difference.
    pub their_detail: DifferenceDetail,
    /// Bytes received from the caller, framing included.
    pub bytes_received: u64,
    /// Bytes sent to the caller so far, framing included.
    pub bytes_sent: u64,
}
