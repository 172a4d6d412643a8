//! Operator calls about received notices and the registry they change: list them, apply or
//! dismiss one that waits for an operator, and read a registry entry's history.

use tonic::Status;
use uuid::Uuid;

use super::access::Caller;
use super::{failed_precondition, free_text, internal, invalid, not_found};
use crate::domain::division::TownshipCode;
use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::resident_id::ResidentId;
use crate::exchange::convert::timestamp_to_wire;
use crate::node::Node;
use crate::proto::operator as pb;
use crate::store::audit::OperatorAccess;
use crate::store::notice_effects::{EffectOutcome, NoticeFilter, ReceivedNoticeRecord};

/// Default and maximum length of a notice list.
const DEFAULT_LIMIT: i64 = 1_000;
const MAX_LIMIT: i64 = 100_000;

/// The longest dismissal reason accepted.
const MAX_REASON_CHARS: usize = 500;

/// Received notices, narrowed to the caller's township; audited with their count (the entries
/// carry masked ID numbers only).
pub(super) async fn list(
    node: &Node,
    caller: &Caller,
    request: pb::ListNoticesRequest,
) -> Result<pb::ListNoticesResponse, Status> {
    let requested = (!request.township.is_empty())
        .then(|| TownshipCode::parse(&request.township).map_err(|e| invalid("township", e.to_string())))
        .transpose()?;
    let township = caller.narrowed(node, requested).await?;
    let filter = NoticeFilter {
        pending_only: request.pending_only,
        township,
        limit: match request.limit {
            0 => DEFAULT_LIMIT,
            n => i64::from(n).min(MAX_LIMIT),
        },
    };
    let records = node.store().received_notices(&filter).await.map_err(internal)?;
    let access = OperatorAccess {
        reason: Some(format!(
            "{} received notices listed{}",
            records.len(),
            if filter.pending_only { " (pending)" } else { "" }
        )),
        ..caller.access("listed")
    };
    caller.audit(node, access).await?;
    Ok(pb::ListNoticesResponse {
        notices: records.iter().map(to_wire).collect(),
    })
}

/// Applies a pending received notice to the registry, audited before and after.
pub(super) async fn apply(
    node: &Node,
    caller: &Caller,
    request: pb::ApplyNoticeRequest,
) -> Result<pb::ApplyNoticeResponse, Status> {
    let id = message_id(&request.message_id)?;
    let record = visible_notice(node, caller, id).await?;
    let requested = OperatorAccess {
        message_id: Some(id),
        peer_county: Some(record.peer_county.clone()),
        kind: Some(record.kind.as_str().to_owned()),
        reason: Some("apply requested".into()),
        ..caller.access("requested")
    };
    caller.audit(node, requested).await?;
    let outcome = node
        .store()
        .apply_notice(id, node.county(), caller.principal.name())
        .await
        .map_err(internal)?;
    let changed = settled(id, outcome)?;
    let access = OperatorAccess {
        message_id: Some(id),
        peer_county: Some(record.peer_county),
        kind: Some(record.kind.as_str().to_owned()),
        reason: Some(if changed.is_empty() {
            "applied: the registry already held what it tells".to_owned()
        } else {
            format!("applied: {}", changed.join(", "))
        }),
        ..caller.access("applied")
    };
    caller.audit(node, access).await?;
    Ok(pb::ApplyNoticeResponse {
        notice: Some(current(node, id).await?),
    })
}

/// Records that a pending received notice is not applied, and why; audited.
pub(super) async fn dismiss(
    node: &Node,
    caller: &Caller,
    request: pb::DismissNoticeRequest,
) -> Result<pb::DismissNoticeResponse, Status> {
    let id = message_id(&request.message_id)?;
    let reason = free_text("reason", request.reason.trim(), MAX_REASON_CHARS)
        .map_err(|_| invalid("reason", format!("required: why the notice is not applied, 1 to {MAX_REASON_CHARS} characters, no control characters")))?;
    let record = visible_notice(node, caller, id).await?;
    let outcome = node
        .store()
        .dismiss_notice(id, caller.principal.name(), reason)
        .await
        .map_err(internal)?;
    settled(id, outcome)?;
    let access = OperatorAccess {
        message_id: Some(id),
        peer_county: Some(record.peer_county),
        kind: Some(record.kind.as_str().to_owned()),
        ..caller.access("dismissed")
    };
    caller.audit(node, access).await?;
    Ok(pb::DismissNoticeResponse {
        notice: Some(current(node, id).await?),
    })
}

/// The recorded changes of one registry entry within the caller's scope, audited as a read.
pub(super) async fn history(
    node: &Node,
    caller: &Caller,
    request: pb::RegistryHistoryRequest,
) -> Result<pb::RegistryHistoryResponse, Status> {
    let resident_id =
        ResidentId::parse(&request.resident_id).map_err(|error| invalid("resident_id", error.to_string()))?;
    let person = node.store().person(&resident_id).await.map_err(internal)?;
    let Some(person) = person.filter(|person| caller.scope.covers(person.status.township)) else {
        let rejection = Rejection::new(
            RejectionCode::NotFound,
            "no person with this ID number in the registry",
        );
        return Err(caller.refuse(node, rejection, None).await);
    };
    let changes = node
        .store()
        .registry_history(&person.resident_id)
        .await
        .map_err(internal)?;
    let access = OperatorAccess {
        reason: Some(format!("{} registry changes read", changes.len())),
        ..caller.access("read")
    };
    caller.audit(node, access).await?;
    Ok(pb::RegistryHistoryResponse {
        changes: changes
            .into_iter()
            .map(|change| pb::RegistryChange {
                changed_at: Some(timestamp_to_wire(change.changed_at)),
                field: change.field,
                old_value: change.old_value.unwrap_or_default(),
                new_value: change.new_value.unwrap_or_default(),
                source: change.source,
                message_id: change.message_id.map(|id| id.to_string()).unwrap_or_default(),
                changed_by: change.changed_by.unwrap_or_default(),
            })
            .collect(),
    })
}

/// A received notice the caller may act on: one of its township's people for a township
/// office (another's is "not found", worded as for a notice never received, and audited).
async fn visible_notice(node: &Node, caller: &Caller, id: Uuid) -> Result<ReceivedNoticeRecord, Status> {
    let record = node.store().received_notice(id).await.map_err(internal)?;
    match record {
        Some(record) if caller.scope.covers(record.township) => Ok(record),
        Some(_) => {
            let rejection = Rejection::new(RejectionCode::NotFound, no_notice(id));
            Err(caller.refuse(node, rejection, Some(id)).await)
        }
        None => Err(not_found(no_notice(id))),
    }
}

/// The columns changed, or the refusal for an apply or dismiss that changed nothing.
fn settled(id: Uuid, outcome: EffectOutcome) -> Result<Vec<String>, Status> {
    match outcome {
        EffectOutcome::Done { changed } => Ok(changed),
        EffectOutcome::AlreadySettled { state, at, by } => Err(failed_precondition(format!(
            "notice {id} was {} at {} by {}: nothing changed",
            state.as_str(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            by.as_deref().unwrap_or("the agreement, on receipt")
        ))),
        EffectOutcome::NotApplicable(reason) => Err(failed_precondition(format!(
            "notice {id} cannot be applied: {reason}; nothing changed (dismiss it with a reason, or \
             correct the registry and apply it again)"
        ))),
        EffectOutcome::Erased => Err(failed_precondition(format!(
            "notice {id} was erased at the end of the agreed retention period: it can only be dismissed"
        ))),
        EffectOutcome::Unknown => Err(not_found(no_notice(id))),
    }
}

async fn current(node: &Node, id: Uuid) -> Result<pb::ReceivedNotice, Status> {
    let record = node.store().received_notice(id).await.map_err(internal)?;
    record
        .map(|record| to_wire(&record))
        .ok_or_else(|| not_found(no_notice(id)))
}

/// The one wording for a notice the caller cannot see.
fn no_notice(id: Uuid) -> String {
    format!("no notice {id} was received")
}

fn message_id(input: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(input).map_err(|_| invalid("message_id", "must be a UUID"))
}

fn to_wire(record: &ReceivedNoticeRecord) -> pb::ReceivedNotice {
    pb::ReceivedNotice {
        message_id: record.message_id.to_string(),
        peer_county: record.peer_county.clone(),
        kind: record.kind.as_str().to_owned(),
        subject_masked: record.subject_masked.clone(),
        township: record.township.map(|t| t.to_string()).unwrap_or_default(),
        occurred_on: record.occurred_on.map(|d| d.to_string()).unwrap_or_default(),
        received_at: record.received_at.map(timestamp_to_wire),
        feedback_due_at: record.feedback_due_at.map(timestamp_to_wire),
        effect: record.effect.as_str().to_owned(),
        state: record.state.as_str().to_owned(),
        note: record.note.clone().unwrap_or_default(),
        changed: record.changed.clone(),
        decided_at: record.decided_at.map(timestamp_to_wire),
        decided_by: record.decided_by.clone().unwrap_or_default(),
    }
}
