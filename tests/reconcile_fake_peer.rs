//! A node's own run against a peer played in memory through the peer client's seam
//! ([`ReconcilePeer`]): the node commits what the peer's report implies, and nothing when the
//! peer breaks off before committing its part.

mod common;

use std::sync::{Arc, Mutex};

use common::pair::*;
use common::*;
use hancha::domain::reconcile::protocol::{CallerStep, Decoded, PeerCommitted, PeerStep, RunBegin};
use hancha::domain::reconcile::{DifferenceDetail, ReconcileSet};
use hancha::domain::riblt::{CodedSymbol, Decoder};
use hancha::node::reconcile::RunError;
use hancha::peer::reconcile::{LinkError, ReconcileLink, ReconcilePeer};

/// A peer that holds nothing of either set: every element the caller holds is the caller's
/// alone. It keeps what the caller named of the difference.
#[derive(Clone, Default)]
struct EmptyPeer {
    /// Whether it goes away instead of committing its part.
    breaks_off_before_commit: bool,
    /// What the caller named, per run opened.
    named: Arc<Mutex<Vec<(ReconcileSet, DifferenceDetail)>>>,
}

impl ReconcilePeer for EmptyPeer {
    type Link = EmptyLink;

    async fn open_reconcile(&mut self, begin: &RunBegin) -> Result<EmptyLink, LinkError> {
        Ok(EmptyLink {
            peer: self.clone(),
            set: begin.set,
            decoder: Decoder::new(std::iter::empty()),
            replies: vec![PeerStep::Ready { set_size: 0 }],
        })
    }
}

/// One run with the [`EmptyPeer`].
struct EmptyLink {
    peer: EmptyPeer,
    set: ReconcileSet,
    decoder: Decoder,
    /// Answers not yet taken, the next one last.
    replies: Vec<PeerStep>,
}

impl ReconcileLink for EmptyLink {
    async fn send(&mut self, step: CallerStep<'_>) -> Result<(), LinkError> {
        let reply = match step {
            CallerStep::Symbols { symbols, .. } => {
                let mut rest = symbols.as_slice();
                while !rest.is_empty() && !self.decoder.is_decoded() {
                    let (symbol, tail) = CodedSymbol::decode_prefix(rest).expect("a symbol");
                    rest = tail;
                    self.decoder.add_remote(symbol).expect("a consistent stream");
                }
                if self.decoder.is_decoded() {
                    PeerStep::Decoded(Decoded {
                        caller_only: self.decoder.remote_only().to_vec(),
                        responder_only: 0,
                        detail: DifferenceDetail::default(),
                    })
                } else {
                    PeerStep::More {
                        symbols_received: self.decoder.symbols_used() as u64,
                    }
                }
            }
            CallerStep::Elements { .. } => panic!("a few elements decode from symbols"),
            CallerStep::Detail(detail) => {
                self.peer.named.lock().unwrap().push((self.set, detail.clone()));
                if self.peer.breaks_off_before_commit {
                    return Ok(());
                }
                PeerStep::Committed(PeerCommitted {
                    repaired: 0,
                    reported: 3,
                    inquiries_opened: 0,
                })
            }
        };
        self.replies.insert(0, reply);
        Ok(())
    }

    async fn receive(&mut self) -> Result<PeerStep, LinkError> {
        self.replies.pop().ok_or(LinkError::Closed)
    }

    fn bytes_sent(&self) -> u64 {
        0
    }

    fn bytes_received(&self) -> u64 {
        0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_holds_nothing_gets_our_inquiries_again_and_our_report_of_its_answers() {
    let cluster = pair().await;
    exchange_answered_inquiries(&cluster, 4).await;
    let node = cluster.node(DINGCHENG);
    let peer = EmptyPeer::default();

    let summaries = node
        .reconcile_through(SHAODONG.parse().unwrap(), peer.clone(), |_| {})
        .await
        .expect("the run completes");

    let messages = set(&summaries, "messages");
    assert_eq!(messages.record.differences, 8, "four inquiries, four answers");
    assert_eq!(messages.committed.repaired, 4, "our inquiries, sent again");
    assert_eq!(messages.committed.reported, 4, "its answers, which it lost");
    assert_eq!(messages.peer_reported, 3, "as the peer said");
    let named = peer.named.lock().unwrap().clone();
    assert_eq!(
        named.iter().map(|(set, _)| *set).collect::<Vec<_>>(),
        ReconcileSet::ALL
    );
    assert_eq!(named[0].1.messages.len(), 8, "every message named to the peer");
    assert_eq!(
        count(
            node,
            "SELECT count(*) FROM reconcile_runs WHERE outcome = 'completed'"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_breaks_off_before_committing_leaves_nothing_repaired_here() {
    let cluster = pair().await;
    exchange_answered_inquiries(&cluster, 4).await;
    let node = cluster.node(DINGCHENG);
    let peer = EmptyPeer {
        breaks_off_before_commit: true,
        ..EmptyPeer::default()
    };

    let refused = node
        .reconcile_through(SHAODONG.parse().unwrap(), peer.clone(), |_| {})
        .await;

    assert!(
        matches!(
            &refused,
            Err(RunError::Exchange {
                set: ReconcileSet::Messages,
                source: LinkError::Closed
            })
        ),
        "{refused:?}"
    );
    assert_eq!(peer.named.lock().unwrap().len(), 1, "named, then the peer left");
    assert_eq!(
        count(
            node,
            "SELECT count(*) FROM reconcile_runs WHERE outcome = 'interrupted'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            node,
            "SELECT count(*) FROM reconcile_runs WHERE outcome = 'completed'"
        )
        .await,
        0
    );
    assert_eq!(count(node, "SELECT count(*) FROM reconcile_differences").await, 0);
}
