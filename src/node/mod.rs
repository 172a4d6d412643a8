//! The node: what one county's gateway does with messages, independent of how they arrived.
//!
//! [`Node`] holds the county's store, its agreements and its limits, and offers the operations
//! the gRPC edges and the workers call: receiving inquiries and confirmations from a peer,
//! queueing our own inquiries, answering automatically or by hand, reconciling with a peer
//! ([`reconcile`]). [`serve`] wires a node to its listener and workers.

mod agreements;
mod answer;
pub mod audit;
mod circuit;
mod deliver;
pub mod events;
mod feedback;
mod intake;
mod notify;
mod receive;
pub mod reconcile;
mod send;
mod signatures;
mod status;
mod window;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

pub use agreements::{InstallError, Installed, agreements_in_store, install_admitted, stored_agreement};
pub use answer::{AnswerError, ManualAnswer};
pub use deliver::{Attempt, DeliveryReport, next_attempt};
pub use feedback::{FeedbackDraft, FeedbackOutcomeSent};
pub use notify::{NoticeDraft, NoticeOutcome};
pub use receive::{Accepted, Incoming};
pub use send::{AskOutcome, InquiryDraft, SendError};
pub use signatures::{
    AgreementSignatures, SignAgreementError, SignatureReport, sign_agreement, signature_table,
    strip_signatures,
};
pub use status::SOFTWARE_VERSION;

use crate::config::Limits;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::policy::AgreementBook;
/// The calendar day in China, which daily caps and reports count in.
pub use crate::domain::time::china_date;
use crate::metrics::Metrics;
use crate::peer::PeerLink;
use crate::store::Store;
use reconcile::ReconcileSettings;

/// One county's gateway.
#[derive(Debug)]
pub struct Node {
    /// The county this node speaks for (from its configuration, matching its certificate).
    me: CountyCode,
    /// The county's database.
    store: Store,
    /// The agreements in force; replaced whole when an agreement is installed.
    book: RwLock<Arc<AgreementBook>>,
    /// Limits and timings.
    limits: Limits,
    /// Wakes the auto-answer worker when inquiries arrive.
    pub(crate) auto_answer_wake: Notify,
    /// One wake-up per delivery worker, rung when something is queued for a peer.
    delivery_wakers: Wakers,
    /// One wake-up per peer-status worker, rung when the versions we hold change (or a peer
    /// held a message for a version mismatch), so the peer hears of it at once.
    status_wakers: Wakers,
    /// The peers, for calls made while someone waits (the synchronous path) and for
    /// reconciliation runs; the delivery workers hold the same links.
    peer_links: RwLock<HashMap<CountyCode, Arc<dyn PeerLink>>>,
    /// Reconciliation secrets, schedules and the per-run inquiry cap.
    reconcile: ReconcileSettings,
    /// This node's metrics (its own registry: the demo runs several nodes in one process).
    metrics: Arc<Metrics>,
    /// Held while the agreements are read from the store and put in force, so that an older
    /// read never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
    /// Whether versions must be signed by every party, and the anchors signatures chain to.
    signatures: AgreementSignatures,
    /// The county key audit checkpoints are signed with, as in force when signing (a running
    /// node's live TLS material); `None` in nodes built without one (the chain is still
    /// sealed, but not checkpointed).
    county_key: Option<crate::tls::CountyKey>,
    /// The last refusal of each peer's audit checkpoint that was audited, so that the same
    /// checkpoint shown at every exchange is audited once.
    audit_refusals: std::sync::Mutex<HashMap<CountyCode, String>>,
    /// The audit chain's head, sent by this replica's sealer each time it seals: event readers
    /// wait on it.
    sealed: tokio::sync::watch::Sender<i64>,
    /// Set when the node stops: open event streams end.
    streams_stop: tokio::sync::watch::Sender<bool>,
    /// The circuit to each peer that was found unreachable (absent: closed).
    circuits: std::sync::Mutex<HashMap<CountyCode, circuit::PeerCircuit>>,
}

impl Node {
    /// A node for `me` over `store`, holding `agreements` (those `me` is not party to are
    /// ignored).
    pub fn new(me: CountyCode, store: Store, agreements: Vec<Agreement>, limits: Limits) -> Node {
        Node {
            me,
            store,
            book: RwLock::new(Arc::new(AgreementBook::new(me, agreements))),
            limits,
            auto_answer_wake: Notify::new(),
            delivery_wakers: Wakers::default(),
            status_wakers: Wakers::default(),
            peer_links: RwLock::new(HashMap::new()),
            reconcile: ReconcileSettings::default(),
            metrics: Arc::new(Metrics::new()),
            reloading: tokio::sync::Mutex::new(()),
            signatures: AgreementSignatures::default(),
            county_key: None,
            audit_refusals: std::sync::Mutex::new(HashMap::new()),
            sealed: tokio::sync::watch::Sender::new(0),
            streams_stop: tokio::sync::watch::Sender::new(false),
            circuits: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// This node's metrics, for the scrape and for the places that record events.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The same node, reconciling as `settings` say.
    pub fn with_reconcile(mut self, settings: ReconcileSettings) -> Node {
        self.reconcile = settings;
        self
    }

    /// The same node, treating agreement signatures as `signatures` says (by default they are
    /// required and, without anchors, nothing verifies).
    pub fn with_agreement_signatures(mut self, signatures: AgreementSignatures) -> Node {
        self.signatures = signatures;
        self
    }

    /// How this node treats agreement signatures.
    pub fn agreement_signatures(&self) -> &AgreementSignatures {
        &self.signatures
    }

    /// The same node, signing audit checkpoints with `key`.
    pub fn with_county_key(mut self, key: crate::tls::CountyKey) -> Node {
        self.county_key = Some(key);
        self
    }

    /// Reconciliation settings in force.
    pub fn reconcile_settings(&self) -> &ReconcileSettings {
        &self.reconcile
    }

    /// The county this node speaks for.
    pub fn county(&self) -> CountyCode {
        self.me
    }

    /// The county's database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Limits and timings in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Registers the link used to reach `peer`.
    pub fn set_peer_link(&self, peer: CountyCode, link: Arc<dyn PeerLink>) {
        self.peer_links
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, link);
    }

    /// The link to `peer`, if one is configured.
    pub fn peer_link(&self, peer: CountyCode) -> Option<Arc<dyn PeerLink>> {
        self.peer_links
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .cloned()
    }

    /// Registers a delivery worker's wake-up.
    pub fn delivery_waker(&self) -> Arc<Notify> {
        self.delivery_wakers.register()
    }

    /// Wakes every delivery worker: something was queued.
    pub(crate) fn wake_delivery(&self) {
        self.delivery_wakers.wake_all();
    }

    /// Registers a peer-status worker's wake-up.
    pub fn status_waker(&self) -> Arc<Notify> {
        self.status_wakers.register()
    }

    /// Wakes every peer-status worker: the versions we hold changed, or a peer held a message.
    pub(crate) fn wake_status(&self) {
        self.status_wakers.wake_all();
    }

    /// The agreements in force now.
    pub fn agreements(&self) -> Arc<AgreementBook> {
        Arc::clone(&self.book.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Replaces the book with `change` of it, under the lock, so that two changes never lose
    /// one another.
    fn update_book(&self, change: impl FnOnce(&AgreementBook) -> AgreementBook) {
        let mut book = self.book.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *book = Arc::new(change(&book));
    }
}

/// Wake-ups of one kind of worker, one per worker. `notify_one` stores a permit, so a wake-up
/// that arrives while a worker is busy is not lost.
#[derive(Debug, Default)]
struct Wakers(std::sync::Mutex<Vec<Arc<Notify>>>);

impl Wakers {
    fn register(&self) -> Arc<Notify> {
        let waker = Arc::new(Notify::new());
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&waker));
        waker
    }

    fn wake_all(&self) {
        for waker in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            waker.notify_one();
        }
    }
}
