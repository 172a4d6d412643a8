//! Runs a peer starts: check the agreement and the lock, load our set, and commit our part
//! once the difference is known.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::Status;
use tracing::{info, warn};
use uuid::Uuid;

use super::snapshot::Snapshot;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::message::AgreementRef;
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::reconcile::pacing::MAX_SET_SIZE;
use crate::domain::riblt::Element;
use crate::exchange::reconcile::{Responded, ResponderSession, set_from_wire};
use crate::exchange::status::{code_name, internal, status_of};
use crate::node::Node;
use crate::proto::exchange as pb;
use crate::store::audit::AuditEntry;
use crate::store::reconcile::{ReconcileLock, RunRecord};

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
        begin: Result<pb::ReconcileBegin, Status>,
    ) -> Result<NodeSession, Status> {
        let checked = match &begin {
            Ok(begin) => self.check_begin(peer, begin).await,
            Err(status) => Err(status.clone()),
        };
        let begin = begin.unwrap_or_default();
        match checked {
            Ok(session) => Ok(session),
            Err(status) => {
                let entry = AuditEntry {
                    peer_county: Some(peer.to_string()),
                    direction: "inbound".into(),
                    kind: Some("reconcile".into()),
                    agreement_id: begin.agreement.as_ref().map(|a| a.id.clone()),
                    agreement_hash: begin.agreement.as_ref().map(|a| a.hash.clone()),
                    outcome: "rejected".into(),
                    reason: Some(format!("{}: {}", code_name(status.code()), status.message())),
                    ..AuditEntry::default()
                };
                if let Err(error) = self.store().append_audit(&entry).await {
                    return Err(internal(error));
                }
                Err(status)
            }
        }
    }

    async fn check_begin(
        self: &Arc<Self>,
        peer: CountyCode,
        begin: &pb::ReconcileBegin,
    ) -> Result<NodeSession, Status> {
        let started_at: DateTime<Utc> = Utc::now();
        let run_id = Uuid::from_str(&begin.run_id)
            .map_err(|_| Status::invalid_argument("begin.run_id: not a UUID"))?;
        if begin.set_size > MAX_SET_SIZE {
            return Err(Status::invalid_argument(format!(
                "begin.set_size: {} exceeds the largest set a county holds ({MAX_SET_SIZE})",
                begin.set_size
            )));
        }
        let set = set_from_wire(begin.set)
            .ok_or_else(|| Status::invalid_argument("begin.set: must be messages or shared_people"))?;
        let wire = begin
            .agreement
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("begin.agreement: required"))?;
        let reference = AgreementRef {
            id: wire.id.clone(),
            hash: wire.hash.clone(),
        };
        let book = self.agreements();
        let agreement = Arc::clone(
            book.pinned(&reference)
                .map_err(|rejection| status_of(&rejection))?,
        );
        if agreement
            .peer_of(self.county())
            .is_none_or(|party| party.current() != peer.current())
        {
            return Err(Status::permission_denied(format!(
                "agreement {} is not between {} and {peer}",
                agreement.id(),
                self.county()
            )));
        }
        agreement
            .in_force(Utc::now())
            .map_err(|denial| Status::permission_denied(format!("agreement {}: {denial}", agreement.id())))?;
        let key = self
            .reconcile_settings()
            .key(agreement.id())
            .cloned()
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "{} has no reconciliation secret configured for agreement {}",
                    self.county(),
                    agreement.id()
                ))
            })?;
        let lock = self
            .store()
            .try_lock_reconcile(peer)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                Status::aborted(format!(
                    "a reconciliation between {} and {peer} is already running; retry later",
                    self.county()
                ))
            })?;
        let snapshot = Snapshot::load(self.store(), self.county(), peer, &agreement, &key, set)
            .await
            .map_err(internal)?;
        info!(peer = %peer, set = %set, run = %run_id, size = snapshot.elements.len(), "reconciliation requested");
        let record = RunRecord {
            run_id,
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

#[tonic::async_trait]
impl ResponderSession for NodeSession {
    fn elements(&self) -> &[Element] {
        &self.snapshot.elements
    }

    fn describe(&self, ours_only: &[Element]) -> DifferenceDetail {
        self.snapshot.describe(ours_only)
    }

    async fn commit(self, responded: Responded) -> Result<pb::ReconcileCommitted, Status> {
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
        let (record, committed) = result.map_err(internal)?;
        info!(
            peer = %record.peer_county, set = record.set_name, run = %record.run_id,
            differences = record.differences, repaired = committed.repaired, reported = committed.reported,
            "reconciliation committed"
        );
        Ok(pb::ReconcileCommitted {
            repaired: committed.repaired + committed.inquiries_opened,
            reported: committed.reported,
        })
    }

    async fn abandon(self, responded: Responded, reason: String) {
        let record = self.record_of(&responded);
        warn!(peer = %record.peer_county, set = record.set_name, run = %record.run_id, %reason, "reconciliation interrupted");
        if let Err(error) = self.node.store().record_interrupted_run(&record, &reason).await {
            warn!(%error, "could not record the interrupted run");
        }
        self.lock.release().await;
    }
}
