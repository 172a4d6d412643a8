//! Runs a peer starts: check the agreement and the lock, load our set, and commit our part
//! once the difference is known.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::snapshot::Snapshot;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::message::AgreementRef;
use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::protocol::{PeerCommitted, Responded, RunBegin};
use crate::domain::riblt::Element;
use crate::node::Node;
use crate::store::StoreError;
use crate::store::audit::AuditEntry;
use crate::store::reconcile::{ReconcileLock, RunRecord};

/// Why our side of a run a peer started did not open. The edge tells the peer (see
/// [`ReconcileError::audit_reason`] for what the audit log keeps of it).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The run is refused: the agreement it names (not held, another version, not between the
    /// two counties, not in force) or our configuration (no secret for the agreement).
    #[error("{}", .0.reason)]
    Refused(Rejection),
    /// Another run between the two counties holds the lock, here or on another replica.
    #[error("a reconciliation between {me} and {peer} is already running; retry later")]
    AlreadyRunning {
        /// This county.
        me: CountyCode,
        /// The caller.
        peer: CountyCode,
    },
    /// The database failed: logged, and the peer is told only that we failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReconcileError {
    /// `CODE: reason`, as the audit log records the refusal: what the peer is told, after its
    /// status code (a database failure is not described).
    pub fn audit_reason(&self) -> String {
        match self {
            ReconcileError::Refused(rejection) => rejection.audit_reason(),
            ReconcileError::AlreadyRunning { .. } => format!("ABORTED: {self}"),
            ReconcileError::Store(_) => "INTERNAL: the database failed; nothing was changed".into(),
        }
    }
}

/// A run a peer started, on our side.
pub struct NodeSession {
    node: Arc<Node>,
    agreement: Arc<Agreement>,
    snapshot: Snapshot,
    record: RunRecord,
    /// Held until the run ends, so no other run with this peer overlaps it.
    lock: ReconcileLock,
}

impl Node {
    /// Checks a peer's `begin` and prepares our side of its run: the agreement must be one we
    /// hold in the same version, with a reconciliation secret; no other run with this peer may be
    /// in progress (on any replica). Refusals are audited.
    pub async fn open_reconcile(
        self: &Arc<Self>,
        peer: CountyCode,
        begin: RunBegin,
    ) -> Result<NodeSession, ReconcileError> {
        match self.check_begin(peer, &begin).await {
            Ok(session) => Ok(session),
            Err(refused) => {
                self.audit_refused_reconcile(peer, Some(&begin.agreement), refused.audit_reason())
                    .await?;
                Err(refused)
            }
        }
    }

    /// Audits a run refused before its `begin` could be read (the edge refused the first
    /// message); `claimed` is the agreement it named, if any, `reason` is `CODE: reason` as the
    /// peer was told.
    pub async fn audit_refused_reconcile(
        &self,
        peer: CountyCode,
        claimed: Option<&AgreementRef>,
        reason: String,
    ) -> Result<(), StoreError> {
        let mut entry = AuditEntry::inbound_rejected(Some(peer), reason).kind(Some("reconcile"));
        if let Some(agreement) = claimed {
            entry = entry.under(agreement);
        }
        self.store().append_audit(&entry).await
    }

    async fn check_begin(
        self: &Arc<Self>,
        peer: CountyCode,
        begin: &RunBegin,
    ) -> Result<NodeSession, ReconcileError> {
        let started_at: DateTime<Utc> = Utc::now();
        let refused = |code, reason: String| ReconcileError::Refused(Rejection::new(code, reason));
        let book = self.agreements();
        let agreement = Arc::clone(
            book.pinned_not_retired(&begin.agreement)
                .map_err(ReconcileError::Refused)?,
        );
        if agreement
            .peer_of(self.county())
            .is_none_or(|party| party.current() != peer.current())
        {
            return Err(refused(
                RejectionCode::PermissionDenied,
                format!(
                    "agreement {} is not between {} and {peer}",
                    agreement.id(),
                    self.county()
                ),
            ));
        }
        agreement.in_force(Utc::now()).map_err(|denial| {
            refused(
                RejectionCode::PermissionDenied,
                format!("agreement {}: {denial}", agreement.id()),
            )
        })?;
        let key = self
            .reconcile_settings()
            .key(agreement.id())
            .cloned()
            .ok_or_else(|| {
                refused(
                    RejectionCode::FailedPrecondition,
                    format!(
                        "{} has no reconciliation secret configured for agreement {}",
                        self.county(),
                        agreement.id()
                    ),
                )
            })?;
        let lock = self
            .store()
            .try_lock_reconcile(peer)
            .await?
            .ok_or(ReconcileError::AlreadyRunning {
                me: self.county(),
                peer,
            })?;
        let set = begin.set;
        let snapshot = Snapshot::load(self.store(), self.county(), peer, &agreement, &key, set).await?;
        info!(peer = %peer, set = %set, run = %begin.run_id, size = snapshot.elements.len(), "reconciliation requested");
        let record = RunRecord {
            run_id: begin.run_id,
            set_name: set.as_str(),
            peer_county: peer,
            agreement_id: agreement.id().to_string(),
            agreement_hash: agreement.canonical_hash().as_str().to_string(),
            role: "responder",
            started_at,
            local_size: snapshot.elements.len() as u64,
            peer_size: begin.set_size,
            ..RunRecord::unfinished()
        };
        Ok(NodeSession {
            node: Arc::clone(self),
            agreement,
            snapshot,
            record,
            lock,
        })
    }
}

impl NodeSession {
    /// The elements of our set.
    pub fn elements(&self) -> &[Element] {
        &self.snapshot.elements
    }

    /// Names the elements only we hold, for the caller.
    pub fn describe(&self, ours_only: &[Element]) -> DifferenceDetail {
        self.snapshot.describe(ours_only)
    }

    /// Commits our part of the repairs and the run record, once the whole difference is known
    /// on both sides; returns what the caller is told we did.
    pub async fn commit(self, responded: Responded) -> Result<PeerCommitted, StoreError> {
        let record = self.record_of(&responded);
        let result = self
            .node
            .commit_reconcile(
                &self.agreement,
                &self.snapshot,
                record,
                &responded.ours_only,
                &responded.their_detail,
            )
            .await;
        self.lock.release().await;
        let (record, committed) = result?;
        info!(
            peer = %record.peer_county, set = record.set_name, run = %record.run_id,
            differences = record.differences, repaired = committed.repaired, reported = committed.reported,
            "reconciliation committed"
        );
        Ok(PeerCommitted {
            repaired: committed.repaired,
            reported: committed.reported,
            inquiries_opened: committed.inquiries_opened,
        })
    }

    /// The run broke off before commit (`reason` names no person): records it, changes
    /// nothing.
    pub async fn abandon(self, responded: Responded, reason: String) {
        let record = self.record_of(&responded);
        warn!(peer = %record.peer_county, set = record.set_name, run = %record.run_id, %reason, "reconciliation interrupted");
        if let Err(error) = self.node.store().record_interrupted_run(&record, &reason).await {
            warn!(%error, "could not record the interrupted run");
        }
        self.lock.release().await;
    }

    fn record_of(&self, responded: &Responded) -> RunRecord {
        RunRecord {
            symbols: responded.symbols,
            fell_back: responded.fell_back,
            bytes_sent: responded.bytes_sent,
            bytes_received: responded.bytes_received,
            peer_size: responded.caller_set_size,
            differences: responded.ours_only.len() as u64 + responded.theirs_only_count,
            ..self.record.clone()
        }
    }
}
