//! Runs this node starts: both sets, one after the other, under the per-peer lock.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use super::caller::{Progress, initiate};
use super::snapshot::Snapshot;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::message::AgreementRef;
use crate::domain::reconcile::protocol::RunBegin;
use crate::domain::reconcile::{ReconcileKey, ReconcileSet};
use crate::node::Node;
use crate::peer::reconcile::{LinkError, ReconcilePeer};
use crate::store::StoreError;
use crate::store::reconcile::{Committed, RunRecord};

/// Where a run this node started stands, for `hancha reconcile --with`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunProgress {
    /// Our set is read: `size` elements.
    Loaded {
        /// Which set.
        set: ReconcileSet,
        /// Elements in it.
        size: u64,
    },
    /// The exchange with the peer moved on.
    Exchange {
        /// Which set.
        set: ReconcileSet,
        /// How far.
        progress: Progress,
    },
}

/// One set's completed run, seen from this side.
#[derive(Clone, Debug)]
pub struct SetSummary {
    /// What was recorded.
    pub record: RunRecord,
    /// What this side did.
    pub committed: Committed,
    /// Messages the peer queued for re-delivery on its side.
    pub peer_repaired: u32,
    /// Differences the peer reported.
    pub peer_reported: u32,
    /// Outflow inquiries the peer opened about persons.
    pub peer_inquiries_opened: u32,
    /// Wall time.
    pub seconds: f64,
}

/// Why a run could not start or did not complete. Nothing was changed on this side.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No agreement with the peer.
    #[error("no agreement between {me} and {peer}")]
    NoAgreement {
        /// This county.
        me: CountyCode,
        /// The peer asked for.
        peer: CountyCode,
    },
    /// The agreement with the peer is not in force (not yet, or no longer).
    #[error("{0}")]
    NotInForce(String),
    /// The agreement has no secret in this node's configuration.
    #[error(
        "agreement {0} has no reconciliation secret in this node's configuration (reconcile.agreements.\"{0}\".secret)"
    )]
    NoSecret(String),
    /// No address is configured for the peer.
    #[error("no address is configured for peer {0} ([peers] in the node configuration)")]
    NoPeerAddress(CountyCode),
    /// Another run with this peer holds the lock (here or on another replica).
    #[error("a reconciliation with {0} is already running on this node or another replica")]
    AlreadyRunning(CountyCode),
    /// The exchange with the peer broke off.
    #[error("{set} set: {source}")]
    Exchange {
        /// Which set.
        set: ReconcileSet,
        /// What happened.
        source: LinkError,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Node {
    /// Reconciles both sets with `peer` now, under the agreement in force with it. Returns a
    /// summary per set; on an error nothing was committed on this side for the set that failed
    /// (a set already completed stays committed), and the run is recorded as interrupted.
    #[instrument(skip_all, fields(peer = %peer))]
    pub async fn reconcile_with(
        self: &Arc<Self>,
        peer: CountyCode,
        progress: impl FnMut(RunProgress),
    ) -> Result<Vec<SetSummary>, RunError> {
        let (agreement, key) = self.reconcile_terms(peer)?;
        let client = self
            .peer_link(peer)
            .and_then(|link| link.exchange_client())
            .ok_or(RunError::NoPeerAddress(peer))?;
        self.reconcile_sets(peer, agreement, key, client, progress).await
    }

    /// [`reconcile_with`](Node::reconcile_with), through `client` instead of the client
    /// configured for `peer`.
    #[instrument(skip_all, fields(peer = %peer))]
    pub async fn reconcile_through(
        self: &Arc<Self>,
        peer: CountyCode,
        client: impl ReconcilePeer,
        progress: impl FnMut(RunProgress),
    ) -> Result<Vec<SetSummary>, RunError> {
        let (agreement, key) = self.reconcile_terms(peer)?;
        self.reconcile_sets(peer, agreement, key, client, progress).await
    }

    /// The agreement in force with `peer` and its key, or why there is none to run under.
    fn reconcile_terms(&self, peer: CountyCode) -> Result<(Arc<Agreement>, ReconcileKey), RunError> {
        let me = self.county();
        let book = self.agreements();
        let agreement = Arc::clone(
            book.current_with(peer, Utc::now())
                .ok_or(RunError::NoAgreement { me, peer })?,
        );
        agreement
            .in_force(Utc::now())
            .map_err(|denial| RunError::NotInForce(format!("agreement {}: {denial}", agreement.id())))?;
        if book.state_of(agreement.canonical_hash().as_str()).retired {
            return Err(RunError::NotInForce(
                crate::domain::policy::retired_and_nothing_else(&agreement, peer),
            ));
        }
        let key = self
            .reconcile_settings()
            .key(agreement.id())
            .cloned()
            .ok_or_else(|| RunError::NoSecret(agreement.id().to_string()))?;
        Ok((agreement, key))
    }

    /// Both sets, one after the other, under the per-peer lock.
    async fn reconcile_sets(
        self: &Arc<Self>,
        peer: CountyCode,
        agreement: Arc<Agreement>,
        key: ReconcileKey,
        mut client: impl ReconcilePeer,
        mut progress: impl FnMut(RunProgress),
    ) -> Result<Vec<SetSummary>, RunError> {
        let me = self.county();
        let lock = self
            .store()
            .try_lock_reconcile(peer)
            .await?
            .ok_or(RunError::AlreadyRunning(peer))?;
        let run_id = Uuid::now_v7();
        let reference = AgreementRef {
            id: agreement.id().to_string(),
            hash: agreement.canonical_hash().as_str().to_string(),
        };
        let mut summaries = Vec::new();
        let result: Result<(), RunError> = async {
            for set in ReconcileSet::ALL {
                let started = Instant::now();
                let started_at = Utc::now();
                // `begin` goes first, with our set's size to follow in the chunks: the peer reads
                // its set while we read ours.
                let begin = RunBegin {
                    run_id,
                    agreement: reference.clone(),
                    set,
                    set_size: 0,
                };
                let opened = client.open_reconcile(&begin).await;
                let snapshot = Snapshot::load(self.store(), me, peer, &agreement, &key, set).await?;
                progress(RunProgress::Loaded {
                    set,
                    size: snapshot.elements.len() as u64,
                });
                let mut record = RunRecord {
                    run_id,
                    set_name: set.as_str(),
                    peer_county: peer,
                    agreement_id: agreement.id().to_string(),
                    agreement_hash: agreement.canonical_hash().as_str().to_string(),
                    role: "initiator",
                    started_at,
                    local_size: snapshot.elements.len() as u64,
                    ..RunRecord::unfinished()
                };
                let exchanged = match opened {
                    Ok(mut link) => {
                        initiate(
                            &mut link,
                            &snapshot.elements,
                            |ours_only| snapshot.describe(ours_only),
                            |step| progress(RunProgress::Exchange { set, progress: step }),
                        )
                        .await
                    }
                    Err(source) => Err(source),
                };
                let exchanged = match exchanged {
                    Ok(exchanged) => exchanged,
                    Err(source) => {
                        let reason = source.to_string();
                        warn!(%set, run = %run_id, %reason, "reconciliation interrupted");
                        self.store().record_interrupted_run(&record, &reason).await?;
                        self.metrics().reconcile_interrupted(peer);
                        return Err(RunError::Exchange { set, source });
                    }
                };
                record.peer_size = exchanged.peer_set_size;
                record.symbols = exchanged.symbols;
                record.fell_back = exchanged.fell_back;
                record.bytes_sent = exchanged.bytes_sent;
                record.bytes_received = exchanged.bytes_received;
                record.differences = exchanged.ours_only.len() as u64 + exchanged.theirs_only_count;
                let (record, committed) = self
                    .commit_reconcile(
                        &agreement,
                        &snapshot,
                        record,
                        &exchanged.ours_only,
                        &exchanged.their_detail,
                    )
                    .await?;
                self.metrics().reconcile_completed(
                    peer,
                    record.differences,
                    record.bytes_sent,
                    record.bytes_received,
                    started.elapsed(),
                );
                info!(%set, run = %run_id, differences = record.differences, repaired = committed.repaired,
                      reported = committed.reported, "reconciliation committed");
                summaries.push(SetSummary {
                    record,
                    committed,
                    peer_repaired: exchanged.peer_committed.repaired,
                    peer_reported: exchanged.peer_committed.reported,
                    peer_inquiries_opened: exchanged.peer_committed.inquiries_opened,
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            Ok(())
        }
        .await;
        lock.release().await;
        result.map(|()| summaries)
    }
}
