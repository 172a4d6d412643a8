//! Operator calls about notices (信息通报) and their feedback (反馈): send one notice, answer
//! one with feedback, list what feedback is owed either way, show one notice with its feedback.
//! A batch of notices (a quarterly CSV) goes through [`notify`] once per row.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use uuid::Uuid;

use super::access::Caller;
use super::{internal, invalid, not_found};
use crate::domain::division::CountyCode;
use crate::domain::feedback::{FeedbackOutcome, parse_note};
use crate::domain::message::Subject;
use crate::domain::person::Flow;
use crate::domain::policy::Rejection;
use crate::domain::time::today_in_china;
use crate::domain::vocabulary::{NoticeKind, NoticeValues};
use crate::exchange::convert::timestamp_to_wire;
use crate::node::{FeedbackDraft, Node, NoticeDraft, SendError};
use crate::proto::operator as pb;
use crate::status::status_of;
use crate::store::notices_out::{NoticeRecord, PendingNotices};
use tonic::Status;

/// Sends one notice, audited with its id (never its subject) before the receipt reaches the
/// caller. An empty `to_county` is the county the person is registered in according to our
/// registry, for a person we hold as inflow (流入人口); anyone else needs the county named.
pub(super) async fn notify(
    node: &Node,
    caller: &Caller,
    request: pb::NotifyRequest,
) -> Result<pb::NotifyResponse, Status> {
    let named_peer = if request.to_county.is_empty() {
        None
    } else {
        Some(CountyCode::parse(&request.to_county).map_err(|e| invalid("to_county", e.to_string()))?)
    };
    let kind: NoticeKind = request
        .kind
        .parse()
        .map_err(|e: crate::domain::vocabulary::UnknownName| invalid("kind", e.to_string()))?;
    let mut violations = Vec::new();
    let subject = Subject::parse(&request.resident_id, "", "resident_id", &mut violations);
    let occurred_on = if request.occurred_on.is_empty() {
        Some(today_in_china())
    } else {
        NaiveDate::parse_from_str(&request.occurred_on, "%Y-%m-%d")
            .ok()
            .or_else(|| {
                violations.push(crate::domain::message::FieldViolation::new(
                    "occurred_on",
                    "must be a date YYYY-MM-DD",
                ));
                None
            })
    };
    if occurred_on.is_some_and(|date| date > today_in_china()) {
        violations.push(crate::domain::message::FieldViolation::new(
            "occurred_on",
            "must not be in the future",
        ));
    }
    let pairs = request
        .fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()));
    let fields = NoticeValues::parse(kind, pairs, "fields")
        .map_err(|found| violations.extend(found))
        .ok();
    let mut message_id = optional_id(&request.message_id, &mut violations);
    if !request.idempotency_key.is_empty() {
        if message_id.is_some() {
            violations.push(crate::domain::message::FieldViolation::new(
                "idempotency_key",
                "give message_id or idempotency_key, not both",
            ));
        } else if request.idempotency_key.len() > 256 {
            violations.push(crate::domain::message::FieldViolation::new(
                "idempotency_key",
                "at most 256 bytes",
            ));
        } else {
            message_id = Some(
                node.message_id_for(&request.idempotency_key)
                    .await
                    .map_err(internal)?,
            );
        }
    }
    let (Some(subject), Some(occurred_on), Some(fields)) = (subject, occurred_on, fields) else {
        return Err(status_of(&Rejection::invalid(violations)));
    };
    if !violations.is_empty() {
        return Err(status_of(&Rejection::invalid(violations)));
    }
    let peer = match named_peer {
        Some(peer) => peer,
        None => origin_of(node, &subject).await?,
    };
    let draft = NoticeDraft {
        kind,
        subject,
        occurred_on,
        fields,
        message_id,
    };
    let wait = Duration::from_millis(u64::from(request.wait_ms)).min(node.limits().max_wait());
    let outcome = node.notify(peer, draft, wait).await.map_err(send_error)?;
    let access = crate::store::audit::OperatorAccess {
        message_id: Some(outcome.message_id),
        peer_county: Some(peer.to_string()),
        kind: Some(kind.as_str().to_string()),
        ..caller.access("notified")
    };
    caller.audit(node, access).await?;
    Ok(pb::NotifyResponse {
        message_id: outcome.message_id.to_string(),
        state: outcome.state.to_string(),
        received_at: outcome.received_at.map(timestamp_to_wire),
        feedback_due_at: outcome.feedback_due_at.map(timestamp_to_wire),
        reject_reason: outcome.note.unwrap_or_default(),
        repeat: outcome.repeat,
    })
}

/// The county an inflow person of our registry is registered in: where a notice about them
/// goes when the caller names no county.
async fn origin_of(node: &Node, subject: &Subject) -> Result<CountyCode, Status> {
    let person = node
        .store()
        .person(&subject.resident_id)
        .await
        .map_err(internal)?;
    match person {
        Some(person) if person.flow == Flow::Inflow => Ok(person.registered_county),
        _ => Err(status_of(&Rejection::invalid(vec![
            crate::domain::message::FieldViolation::new(
                "to_county",
                "empty, and the person is not in this county's registry as inflow (流入人口): name the county to notify",
            ),
        ]))),
    }
}

/// Gives feedback to a notice a peer sent us, audited with both ids.
pub(super) async fn feedback(
    node: &Node,
    caller: &Caller,
    request: pb::FeedbackRequest,
) -> Result<pb::FeedbackResponse, Status> {
    let mut violations = Vec::new();
    let notice_id = Uuid::parse_str(&request.notice_id)
        .map_err(|_| {
            violations.push(crate::domain::message::FieldViolation::new(
                "notice_id",
                "must be a UUID",
            ))
        })
        .ok();
    let outcome = FeedbackOutcome::parse(&request.outcome)
        .map_err(|why| violations.push(crate::domain::message::FieldViolation::new("outcome", why)))
        .ok();
    let note = parse_note(&request.note, "note")
        .map_err(|v| violations.push(v))
        .ok();
    let message_id = optional_id(&request.message_id, &mut violations);
    let (Some(notice_id), Some(outcome), Some(note)) = (notice_id, outcome, note) else {
        return Err(status_of(&Rejection::invalid(violations)));
    };
    if !violations.is_empty() {
        return Err(status_of(&Rejection::invalid(violations)));
    }
    let draft = FeedbackDraft {
        notice_id,
        outcome,
        note,
        message_id,
    };
    let wait = Duration::from_millis(u64::from(request.wait_ms)).min(node.limits().max_wait());
    let sent = node.give_feedback(draft, wait).await.map_err(send_error)?;
    let access = crate::store::audit::OperatorAccess {
        message_id: Some(sent.message_id),
        kind: Some("feedback".into()),
        reason: Some(format!("{outcome} to notice {notice_id}")),
        ..caller.access("answered")
    };
    caller.audit(node, access).await?;
    Ok(pb::FeedbackResponse {
        message_id: sent.message_id.to_string(),
        state: sent.state.to_string(),
        received_at: sent.received_at.map(timestamp_to_wire),
        reject_reason: sent.note.unwrap_or_default(),
        repeat: sent.repeat,
    })
}

/// Notices owing feedback, by deadline: the feedback we owe, or (`outbound`) the feedback we
/// wait for. County-wide only (notices are not filed by township).
pub(super) async fn list_pending(
    node: &Node,
    caller: &Caller,
    request: &pb::ListPendingRequest,
    limit: i64,
) -> Result<pb::ListPendingResponse, Status> {
    if let Some(township) = caller.principal.township() {
        let rejection = Rejection::new(
            crate::domain::policy::RejectionCode::PermissionDenied,
            format!("notices are county-wide work; operator works for township {township}"),
        );
        return Err(caller.refuse(node, rejection, None).await);
    }
    let filter = PendingNotices {
        outbound: request.outbound,
        overdue_only: request.overdue_only,
        limit,
    };
    let now = Utc::now();
    let records = node
        .store()
        .pending_notices(filter, now)
        .await
        .map_err(internal)?;
    let access = crate::store::audit::OperatorAccess {
        reason: Some(format!(
            "{} {} notices owing feedback listed",
            records.len(),
            if filter.outbound { "outbound" } else { "inbound" }
        )),
        ..caller.access("listed")
    };
    caller.audit(node, access).await?;
    Ok(pb::ListPendingResponse {
        inquiries: Vec::new(),
        notices: records.iter().map(|r| summary(r, now)).collect(),
    })
}

/// One notice with its subject's ID number and its feedback, audited before it is returned.
pub(super) async fn show(
    node: &Node,
    caller: &Caller,
    request: pb::ShowNoticeRequest,
) -> Result<pb::ShowNoticeResponse, Status> {
    let id = Uuid::parse_str(&request.message_id).map_err(|_| invalid("message_id", "must be a UUID"))?;
    let store = node.store();
    let record = store
        .notice(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(format!("no notice or feedback {id}")))?;
    let access = crate::store::audit::OperatorAccess {
        message_id: Some(record.message_id),
        peer_county: Some(record.peer_county.clone()),
        kind: Some(record.kind.clone()),
        ..caller.access("read")
    };
    caller.audit(node, access).await?;
    let feedback = store.feedback_for(record.message_id).await.map_err(internal)?;
    let owed = match &feedback {
        Some(f) if f.direction == "outbound" && f.acknowledged_at.is_none() => Some(f.message_id),
        None if record.direction == "outbound" && record.acknowledged_at.is_none() => Some(record.message_id),
        _ => None,
    };
    let entry = match owed {
        Some(owed) => store.outbox_entry(owed).await.map_err(internal)?,
        None => None,
    };
    Ok(pb::ShowNoticeResponse {
        notice: Some(summary(&record, Utc::now())),
        subject_resident_id: record.subject_id.clone().unwrap_or_default(),
        fields: record.body.0.clone().into_iter().collect(),
        reject_reason: record.reject_reason.clone().unwrap_or_default(),
        feedback: feedback.map(|f| pb::FeedbackInfo {
            message_id: f.message_id.to_string(),
            direction: f.direction.clone(),
            outcome: f.outcome.clone(),
            note: f.note.clone().unwrap_or_default(),
            answered_at: Some(timestamp_to_wire(f.answered_at)),
            received_at: f.acknowledged_at.map(timestamp_to_wire),
            state: f.state().to_string(),
            reject_reason: f.reject_reason.clone().unwrap_or_default(),
        }),
        delivery_attempts: entry
            .as_ref()
            .map(|(attempts, _)| u32::try_from(*attempts).unwrap_or(0))
            .unwrap_or(0),
        last_delivery_error: entry.and_then(|(_, error)| error).unwrap_or_default(),
    })
}

/// The operator's view of one notice.
fn summary(record: &NoticeRecord, now: chrono::DateTime<Utc>) -> pb::NoticeSummary {
    pb::NoticeSummary {
        message_id: record.message_id.to_string(),
        direction: record.direction.clone(),
        peer_county: record.peer_county.clone(),
        kind: record.kind.clone(),
        state: record.state().to_string(),
        subject_masked: record.subject_masked.clone(),
        occurred_on: record.occurred_on.map(|d| d.to_string()).unwrap_or_default(),
        received_at: record.acknowledged_at.map(timestamp_to_wire),
        feedback_due_at: record.feedback_due_at.map(timestamp_to_wire),
        overdue: record.overdue(now),
        agreement_id: record.agreement_id.clone(),
        feedback_id: record.feedback_id.map(|id| id.to_string()).unwrap_or_default(),
        feedback_outcome: record.feedback_outcome.clone().unwrap_or_default(),
    }
}

/// An optional caller-chosen message id: a UUID v7 when given.
fn optional_id(input: &str, violations: &mut Vec<crate::domain::message::FieldViolation>) -> Option<Uuid> {
    if input.is_empty() {
        return None;
    }
    crate::domain::message::parse_message_id(input, "message_id", violations)
}

fn send_error(error: SendError) -> Status {
    match error {
        SendError::Refused(rejection) => status_of(&rejection),
        SendError::Store(store) => internal(store),
    }
}
