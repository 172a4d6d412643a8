//! Reconciliation for operators: run one now with progress, list past runs, export the
//! person-level differences.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::Status;

use super::access::Caller;
use super::{internal, invalid};
use crate::domain::division::CountyCode;
use crate::domain::policy::{Rejection, RejectionCode};
use crate::exchange::convert::timestamp_to_wire;
use crate::node::Node;
use crate::node::reconcile::{Progress, RunError, RunProgress, SetSummary};
use crate::proto::operator as pb;
use crate::proto::operator::reconcile_progress::Step;
use crate::status::status_of;
use crate::store::reconcile::{PersonDifferenceRow, RunRow};

/// Runs both sets with the peer in a task of its own; progress and the summaries go to the
/// returned channel, an error as the stream's final status. Audited when it starts.
pub(super) async fn reconcile(
    node: &Arc<Node>,
    caller: &Caller,
    request: pb::ReconcileRequest,
) -> Result<mpsc::UnboundedReceiver<Result<pb::ReconcileProgress, Status>>, Status> {
    let peer =
        CountyCode::parse(&request.with_county).map_err(|error| invalid("with_county", error.to_string()))?;
    let access = crate::store::audit::OperatorAccess {
        peer_county: Some(peer.to_string()),
        ..caller.access("started")
    };
    caller.audit(node, access).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    let node = Arc::clone(node);
    tokio::spawn(async move {
        let progress = sender.clone();
        let result = node
            .reconcile_with(peer, move |step| {
                let _ = progress.send(Ok(progress_of(step)));
            })
            .await;
        match result {
            Ok(summaries) => {
                for summary in summaries {
                    let _ = sender.send(Ok(pb::ReconcileProgress {
                        set: summary.record.set_name.to_string(),
                        step: Some(Step::Done(run_of_summary(&summary))),
                    }));
                }
            }
            Err(error) => {
                let _ = sender.send(Err(status_of_run_error(&error)));
            }
        }
    });
    Ok(receiver)
}

fn progress_of(step: RunProgress) -> pb::ReconcileProgress {
    let (set, step) = match step {
        RunProgress::Loaded { set, size } => (set, Step::Loaded(size)),
        RunProgress::Exchange { set, progress } => (
            set,
            match progress {
                Progress::Ready { peer_set_size } => Step::PeerSize(peer_set_size),
                Progress::Symbols { sent } => Step::Symbols(sent),
                Progress::FallingBack => Step::FallingBack(true),
                Progress::Decoded { differences } => Step::Decoded(differences),
            },
        ),
    };
    pb::ReconcileProgress {
        set: set.as_str().to_string(),
        step: Some(step),
    }
}

fn status_of_run_error(error: &RunError) -> Status {
    let code = match error {
        RunError::NoAgreement { .. } | RunError::NotInForce(_) => RejectionCode::FailedPrecondition,
        RunError::NoSecret(_) | RunError::NoPeerAddress(_) => RejectionCode::FailedPrecondition,
        RunError::AlreadyRunning(_) => RejectionCode::Aborted,
        RunError::Exchange { .. } => RejectionCode::Unavailable,
        RunError::Store(error) => return internal(error),
    };
    status_of(&Rejection::new(code, error.to_string()))
}

fn run_of_summary(summary: &SetSummary) -> pb::ReconcileRun {
    let record = &summary.record;
    pb::ReconcileRun {
        run_id: record.run_id.to_string(),
        set: record.set_name.to_string(),
        peer_county: record.peer_county.to_string(),
        agreement_id: record.agreement_id.clone(),
        role: record.role.to_string(),
        started_at: Some(timestamp_to_wire(record.started_at)),
        finished_at: Some(timestamp_to_wire(chrono::Utc::now())),
        outcome: "completed".into(),
        error: String::new(),
        local_size: record.local_size,
        peer_size: record.peer_size,
        differences: record.differences as u32,
        repaired: summary.committed.repaired,
        reported: summary.committed.reported,
        inquiries_opened: summary.committed.inquiries_opened,
        symbols: record.symbols,
        fell_back: record.fell_back,
        bytes_sent: record.bytes_sent,
        bytes_received: record.bytes_received,
        seconds: summary.seconds,
        peer_repaired: summary.peer_repaired,
        peer_reported: summary.peer_reported,
        peer_inquiries_opened: summary.peer_inquiries_opened,
    }
}

fn run_of_row(row: RunRow) -> pb::ReconcileRun {
    pb::ReconcileRun {
        run_id: row.run_id.to_string(),
        seconds: (row.finished_at - row.started_at).num_milliseconds() as f64 / 1000.0,
        set: row.set_name.as_str().to_string(),
        peer_county: row.peer_county.to_string(),
        agreement_id: row.agreement_id,
        role: row.role,
        started_at: Some(timestamp_to_wire(row.started_at)),
        finished_at: Some(timestamp_to_wire(row.finished_at)),
        outcome: row.outcome,
        error: row.error.unwrap_or_default(),
        local_size: row.local_size as u64,
        peer_size: row.peer_size as u64,
        differences: row.differences as u32,
        repaired: row.repaired as u32,
        reported: row.reported as u32,
        inquiries_opened: row.inquiries_opened as u32,
        symbols: row.symbols as u64,
        fell_back: row.fell_back,
        bytes_sent: row.bytes_sent as u64,
        bytes_received: row.bytes_received as u64,
        peer_repaired: 0,
        peer_reported: 0,
        peer_inquiries_opened: 0,
    }
}

fn peer_filter(text: &str) -> Result<Option<CountyCode>, Status> {
    match text {
        "" => Ok(None),
        text => CountyCode::parse(text)
            .map(Some)
            .map_err(|error| invalid("with_county", error.to_string())),
    }
}

pub(super) async fn list_runs(
    node: &Node,
    request: pb::ListReconcileRunsRequest,
) -> Result<pb::ListReconcileRunsResponse, Status> {
    let peer = peer_filter(&request.with_county)?;
    let limit = if request.limit == 0 {
        50
    } else {
        i64::from(request.limit)
    };
    let rows = node.store().reconcile_runs(peer, limit).await.map_err(internal)?;
    Ok(pb::ListReconcileRunsResponse {
        runs: rows.into_iter().map(run_of_row).collect(),
    })
}

/// The person-level differences (with ID numbers, for the township offices that follow them
/// up): a township office gets its own township's only; audited with the count before anything
/// is returned.
pub(super) async fn list_differences(
    node: &Node,
    caller: &Caller,
    request: pb::ListReconcileDifferencesRequest,
) -> Result<pb::ListReconcileDifferencesResponse, Status> {
    let peer = peer_filter(&request.with_county)?;
    let rows: Vec<PersonDifferenceRow> = node
        .store()
        .person_differences(peer)
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|row| caller.scope.covers(row.township))
        .collect();
    let access = crate::store::audit::OperatorAccess {
        peer_county: peer.map(|county| county.to_string()),
        reason: Some(format!("{} person differences listed", rows.len())),
        ..caller.access("listed")
    };
    caller.audit(node, access).await?;
    Ok(pb::ListReconcileDifferencesResponse {
        differences: rows.into_iter().map(difference_of_row).collect(),
    })
}

fn difference_of_row(row: PersonDifferenceRow) -> pb::PersonDifference {
    pb::PersonDifference {
        run_id: row.run_id.to_string(),
        found_at: Some(timestamp_to_wire(row.finished_at)),
        peer_county: row.peer_county.to_string(),
        township: row.township.map(|t| t.to_string()).unwrap_or_default(),
        resident_id: row
            .resident_id
            .map(|id| id.as_str().to_string())
            .unwrap_or_default(),
        flow: row.flow.map(|f| f.as_str().to_string()).unwrap_or_default(),
        difference: row.difference.as_str().to_string(),
        action: row.action.as_str().to_string(),
        inquiry_id: row.inquiry_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}
