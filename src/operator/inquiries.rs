//! Operator calls about inquiries: ask one, sweep many, list what is pending, show one, answer.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::access::{Caller, no_inquiry};
use super::{failed_precondition, internal, invalid, not_found, one_line};
use crate::domain::division::CountyCode;
use crate::domain::message::{Direction, FieldViolation, InquiryState, Subject};
use crate::domain::policy::Rejection;
use crate::domain::vocabulary::{AnswerOutcome, InquiryKind, Priority, StatusField, StatusValues};
use crate::exchange::convert::timestamp_to_wire;
use crate::node::{AnswerError, InquiryDraft, ManualAnswer, Node, SendError};
use crate::proto::operator as pb;
use crate::status::status_of;
use crate::store::queries::{InquiryRecord, PendingFilter};
use tonic::Status;

/// How long a sweep key may be (the CLI's is `<county>:<kind>:<SHA-256>`, 98 characters).
const MAX_SWEEP_KEY_CHARS: usize = 128;

/// Default and maximum length of a pending list.
const DEFAULT_LIMIT: i64 = 1_000;
const MAX_LIMIT: i64 = 100_000;

/// The most inquiries SweepStatus lists (oldest first): a listing of this many, each about 250
/// bytes encoded, stays within the default 4 MiB message limit (`limits.max_message_bytes`).
/// The console takes no sweep file of more rows to send than this; larger sweeps are for
/// `hancha sweep`, which follows them by their counts.
pub const MAX_SWEEP_LISTED: usize = 10_000;

/// Asks, and audits who asked (the inquiry by id) before the answer reaches the caller.
pub(super) async fn ask(
    node: &Node,
    caller: &Caller,
    request: pb::AskRequest,
) -> Result<pb::AskResponse, Status> {
    let peer = county(&request.to_county, "to_county")?;
    let kind = inquiry_kind(&request.kind)?;
    let subject = subject(&request.resident_id, &request.certificate_number, "")?;
    let kind_name = kind.as_str().to_string();
    let priority = if request.urgent {
        Priority::Urgent
    } else {
        Priority::Normal
    };
    let draft = InquiryDraft {
        kind,
        priority,
        subject,
        message_id: None,
    };
    let wait = Duration::from_millis(u64::from(request.wait_ms)).min(node.limits().max_wait());
    let outcome = node
        .ask_for(peer, draft, wait, caller.principal.township())
        .await
        .map_err(send_error)?;
    let access = crate::store::audit::OperatorAccess {
        message_id: Some(outcome.message_id),
        peer_county: Some(peer.to_string()),
        kind: Some(kind_name),
        ..caller.access("asked")
    };
    caller.audit(node, access).await?;
    Ok(pb::AskResponse {
        message_id: outcome.message_id.to_string(),
        state: outcome.state.as_str().to_string(),
        due_at: outcome.due_at.map(timestamp_to_wire),
        outcome: outcome
            .confirmation
            .as_ref()
            .map(|c| c.outcome.as_str().to_string())
            .unwrap_or_default(),
        fields: outcome
            .confirmation
            .map(|c| fields_to_map(&c.fields))
            .unwrap_or_default(),
        reject_reason: outcome.note.unwrap_or_default(),
    })
}

pub(super) async fn sweep(
    node: &Node,
    caller: &Caller,
    request: pb::SweepRequest,
) -> Result<pb::SweepResponse, Status> {
    let peer = county(&request.to_county, "to_county")?;
    let kind = inquiry_kind(&request.kind)?;
    one_line("sweep_key", &request.sweep_key, MAX_SWEEP_KEY_CHARS)?;
    let already = node
        .store()
        .sweep_inquiries(&request.sweep_key, peer, kind)
        .await
        .map_err(internal)?;
    let mut results = Vec::with_capacity(request.items.len());
    let mut drafts = Vec::new();
    let mut draft_lines = Vec::new();
    let mut seen_in_request: HashMap<String, u32> = HashMap::new();
    for item in &request.items {
        let mut violations = Vec::new();
        let parsed = Subject::parse(
            &item.resident_id,
            &item.certificate_number,
            "subject",
            &mut violations,
        );
        let result = match parsed {
            None => pb::SweepItemResult {
                line: item.line,
                error: crate::csv_input::sweep::subject_refusal(&violations),
                ..Default::default()
            },
            Some(subject) => {
                let id = subject.resident_id.as_str().to_string();
                if let Some(existing) = already.get(&id) {
                    pb::SweepItemResult {
                        line: item.line,
                        message_id: existing.to_string(),
                        duplicate: true,
                        ..Default::default()
                    }
                } else if let Some(first_line) = seen_in_request.get(&id) {
                    pb::SweepItemResult {
                        line: item.line,
                        error: crate::domain::person_row::repeated_reason(*first_line),
                        ..Default::default()
                    }
                } else {
                    seen_in_request.insert(id, item.line);
                    let message_id = Uuid::now_v7();
                    let priority = if item.urgent {
                        Priority::Urgent
                    } else {
                        Priority::Normal
                    };
                    drafts.push(InquiryDraft {
                        kind,
                        priority,
                        subject,
                        message_id: Some(message_id),
                    });
                    draft_lines.push(results.len());
                    pb::SweepItemResult {
                        line: item.line,
                        message_id: message_id.to_string(),
                        ..Default::default()
                    }
                }
            }
        };
        results.push(result);
    }
    let (_, inserted) = node
        .send_sweep(peer, drafts, &request.sweep_key)
        .await
        .map_err(send_error)?;
    // A concurrent run of the same sweep may have queued some subjects first: report those as
    // duplicates with the id that won.
    if inserted.len() < draft_lines.len() {
        let now_known = node
            .store()
            .sweep_inquiries(&request.sweep_key, peer, kind)
            .await
            .map_err(internal)?;
        let inserted: std::collections::HashSet<String> = inserted.iter().map(Uuid::to_string).collect();
        for index in draft_lines {
            let item = &request.items[index];
            if !inserted.contains(&results[index].message_id) {
                let id = crate::domain::resident_id::ResidentId::parse(&item.resident_id).ok();
                if let Some(existing) = id.and_then(|id| now_known.get(id.as_str()).copied()) {
                    results[index].message_id = existing.to_string();
                }
                results[index].duplicate = true;
            }
        }
    }
    let accepted = results
        .iter()
        .filter(|r| !r.duplicate && r.error.is_empty())
        .count() as u32;
    let duplicates = results.iter().filter(|r| r.duplicate).count() as u32;
    let rejected = results.iter().filter(|r| !r.error.is_empty()).count() as u32;
    let access = crate::store::audit::OperatorAccess {
        peer_county: Some(peer.to_string()),
        kind: Some(kind.as_str().to_string()),
        reason: Some(format!(
            "{accepted} inquiries queued, {duplicates} already sent, {rejected} rows refused"
        )),
        ..caller.access("swept")
    };
    caller.audit(node, access).await?;
    Ok(pb::SweepResponse {
        results,
        accepted,
        duplicates,
        rejected,
    })
}

/// How far a sweep has come; with `list_inquiries`, its inquiries too (masked ID numbers),
/// audited with their count.
pub(super) async fn sweep_status(
    node: &Node,
    caller: &Caller,
    request: pb::SweepStatusRequest,
) -> Result<pb::SweepStatusResponse, Status> {
    one_line("sweep_key", &request.sweep_key, MAX_SWEEP_KEY_CHARS)?;
    let mut listed = Vec::new();
    if request.list_inquiries {
        let records = node
            .store()
            .sweep_records(&request.sweep_key, MAX_SWEEP_LISTED as i64)
            .await
            .map_err(internal)?;
        let access = crate::store::audit::OperatorAccess {
            reason: Some(format!("{} inquiries of a sweep listed", records.len())),
            ..caller.access("listed")
        };
        caller.audit(node, access).await?;
        let now = Utc::now();
        listed = records.iter().map(|r| summary(r, now)).collect();
    }
    let counts = node
        .store()
        .sweep_counts(&request.sweep_key)
        .await
        .map_err(internal)?;
    let mut status = pb::SweepStatusResponse {
        inquiries: listed,
        ..Default::default()
    };
    for (state, outcome, count) in counts {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        match state {
            InquiryState::Queued => status.queued += count,
            InquiryState::Pending => status.pending += count,
            InquiryState::Answered => status.answered += count,
            InquiryState::Rejected => status.rejected += count,
        }
        match outcome {
            Some(AnswerOutcome::Found) => status.found += count,
            Some(AnswerOutcome::NotFound) => status.not_found += count,
            Some(AnswerOutcome::Ambiguous) => status.ambiguous += count,
            Some(AnswerOutcome::Refused) => status.refused += count,
            None => {}
        }
    }
    Ok(status)
}

/// The pending list, narrowed to the caller's township; audited with its count (the entries
/// carry masked ID numbers only).
pub(super) async fn list_pending(
    node: &Node,
    caller: &Caller,
    request: pb::ListPendingRequest,
) -> Result<pb::ListPendingResponse, Status> {
    let requested = (!request.township.is_empty())
        .then(|| {
            crate::domain::division::TownshipCode::parse(&request.township)
                .map_err(|e| invalid("township", e.to_string()))
        })
        .transpose()?;
    let township = caller.narrowed(node, requested).await?;
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        n => i64::from(n).min(MAX_LIMIT),
    };
    if request.notices {
        return super::notices::list_pending(node, caller, &request, limit).await;
    }
    let kind = (!request.kind.is_empty())
        .then(|| inquiry_kind(&request.kind))
        .transpose()?;
    let filter = PendingFilter {
        outbound: request.outbound,
        overdue_only: request.overdue_only,
        township,
        kind,
        limit,
    };
    let now = Utc::now();
    let records = node
        .store()
        .pending_inquiries(&filter, now)
        .await
        .map_err(internal)?;
    let access = crate::store::audit::OperatorAccess {
        reason: Some(format!(
            "{} {} inquiries listed",
            records.len(),
            if filter.outbound { "outbound" } else { "inbound" }
        )),
        ..caller.access("listed")
    };
    caller.audit(node, access).await?;
    Ok(pb::ListPendingResponse {
        inquiries: records.iter().map(|r| summary(r, now)).collect(),
        notices: Vec::new(),
    })
}

/// One inquiry with its subject's ID number and answer: only within the caller's scope (another
/// township's inquiry is "not found"), and audited before anything is returned.
pub(super) async fn show(
    node: &Node,
    caller: &Caller,
    request: pb::ShowInquiryRequest,
) -> Result<pb::ShowInquiryResponse, Status> {
    let id = message_id(&request.message_id)?;
    let store = node.store();
    let record = store
        .inquiry(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(no_inquiry(id)))?;
    if !caller.scope.covers(record.township) {
        return Err(caller.not_yours(node, id).await);
    }
    let access = crate::store::audit::OperatorAccess {
        message_id: Some(id),
        peer_county: Some(record.peer_county.to_string()),
        kind: Some(record.kind.as_str().to_string()),
        ..caller.access("read")
    };
    caller.audit(node, access).await?;
    let subject = store.inquiry_subject(id).await.map_err(internal)?;
    let confirmation = store.confirmation_for(id).await.map_err(internal)?;
    let presented = match (&record.direction, &subject) {
        (Direction::Inbound, Some(subject)) => {
            node.certificate_presented_here(subject).await.map_err(internal)?
        }
        _ => confirmation.as_ref().and_then(|c| c.fields.certificate_presented),
    };
    let deliveries = store.inquiry_history(id).await.map_err(internal)?;
    let answerable_fields = answerable_fields(node, &record);
    Ok(pb::ShowInquiryResponse {
        answerable_fields,
        inquiry: Some(summary(&record, Utc::now())),
        subject_resident_id: subject
            .as_ref()
            .map(|s| s.resident_id.as_str().to_owned())
            .unwrap_or_default(),
        subject_certificate_number: subject.and_then(|s| s.certificate_number).unwrap_or_default(),
        certificate_presented: presented.map(|p| p.as_str().to_owned()).unwrap_or_default(),
        answer_fields: confirmation.map(|c| fields_to_map(&c.fields)).unwrap_or_default(),
        history: deliveries
            .history
            .into_iter()
            .map(|h| pb::HistoryEntry {
                at: Some(timestamp_to_wire(h.at)),
                what: h.what,
                detail: h.detail,
            })
            .collect(),
        delivery_attempts: u32::try_from(deliveries.attempts).unwrap_or(0),
        last_delivery_error: deliveries.last_error.unwrap_or_default(),
        next_attempt_at: deliveries.next_attempt_at.map(timestamp_to_wire),
    })
}

/// The fields an answer by hand to `record` may carry, as its agreement allows them in that
/// direction ([`crate::domain::agreement::Direction::answer_fields`], the set
/// [`Node::answer_by_hand`] checks against): only for an inquiry we received that is pending.
fn answerable_fields(node: &Node, record: &InquiryRecord) -> Vec<pb::AnswerableField> {
    if record.direction != Direction::Inbound || record.state != InquiryState::Pending {
        return Vec::new();
    }
    let book = node.agreements();
    let Some(direction) = book
        .by_ref(&record.agreement())
        .and_then(|agreement| agreement.direction(record.peer_county, node.county()))
    else {
        return Vec::new();
    };
    direction
        .answer_fields()
        .iter()
        .map(|&field| {
            let value_type = field.value_type();
            pb::AnswerableField {
                name: field.as_str().to_owned(),
                label_zh: field.label_zh().to_owned(),
                value_type: value_type.as_str().to_owned(),
                allowed_values: value_type
                    .allowed_values()
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect(),
                format: field.value_format(),
            }
        })
        .collect()
}

/// Answers by hand an inquiry within the caller's scope (another township's is "not found"),
/// audited with the inquiry's and the confirmation's ids.
pub(super) async fn answer(
    node: &Node,
    caller: &Caller,
    request: pb::AnswerRequest,
) -> Result<pb::AnswerResponse, Status> {
    let id = message_id(&request.message_id)?;
    if let Some(record) = node.store().inquiry(id).await.map_err(internal)?
        && !caller.scope.covers(record.township)
    {
        return Err(caller.not_yours(node, id).await);
    }
    let outcome: AnswerOutcome = request
        .outcome
        .parse()
        .map_err(|e: crate::domain::vocabulary::UnknownName| invalid("outcome", e.to_string()))?;
    let mut fields = StatusValues::default();
    let mut violations = Vec::new();
    for (name, value) in &request.fields {
        match name.parse::<StatusField>() {
            Ok(field) => {
                if let Err(error) = fields.set(field, value) {
                    violations.push(FieldViolation::new(format!("fields.{name}"), error.to_string()));
                }
            }
            // a name that is not a field is not quoted, not even in the path (no-echo rule)
            Err(error) => violations.push(FieldViolation::new("fields", error.to_string())),
        }
    }
    if !violations.is_empty() {
        return Err(status_of(&Rejection::invalid(violations)));
    }
    // recorded before the answer is written: no change without its record, even if the
    // record of its outcome below cannot be written
    let requested = crate::store::audit::OperatorAccess {
        message_id: Some(id),
        reason: Some(format!("answer {} requested", outcome.as_str())),
        ..caller.access("requested")
    };
    caller.audit(node, requested).await?;
    let given = node
        .answer_by_hand(id, ManualAnswer { outcome, fields })
        .await
        .map_err(|error| match error {
            // worded exactly like an inquiry of another township (see `not_yours`)
            AnswerError::UnknownInquiry(_) => not_found(no_inquiry(id)),
            AnswerError::NotPending(_) | AnswerError::AgreementGone(_) => {
                failed_precondition(error.to_string())
            }
            AnswerError::FieldsNotAllowed(ref refusal) => {
                let violations = refusal
                    .refused
                    .iter()
                    .map(|field| FieldViolation::new(format!("fields.{field}"), error.to_string()))
                    .collect();
                let mut rejection = Rejection::invalid(violations);
                rejection.reason = error.to_string();
                status_of(&rejection)
            }
            AnswerError::Store(store) => internal(store),
        })?;
    let access = crate::store::audit::OperatorAccess {
        message_id: Some(id),
        reason: Some(format!(
            "{} with confirmation {}",
            outcome.as_str(),
            given.confirmation.message_id
        )),
        ..caller.access("answered")
    };
    caller.audit(node, access).await?;
    Ok(pb::AnswerResponse {
        confirmation_id: given.confirmation.message_id.to_string(),
    })
}

/// The operator's view of one inquiry.
pub(super) fn summary(record: &InquiryRecord, now: chrono::DateTime<Utc>) -> pb::InquirySummary {
    pb::InquirySummary {
        message_id: record.message_id.to_string(),
        direction: record.direction.to_string(),
        peer_county: record.peer_county.to_string(),
        kind: record.kind.to_string(),
        priority: record.priority.to_string(),
        state: record.state.to_string(),
        subject_masked: record.subject_masked.clone(),
        township: record.township.map(|t| t.to_string()).unwrap_or_default(),
        received_at: record.received_at.map(timestamp_to_wire),
        due_at: record.due_at.map(timestamp_to_wire),
        overdue: crate::domain::time::is_overdue(record.state == InquiryState::Pending, record.due_at, now),
        outcome: record.outcome.map(|o| o.to_string()).unwrap_or_default(),
        agreement_id: record.agreement_id.clone(),
    }
}

fn fields_to_map(values: &StatusValues) -> HashMap<String, String> {
    values
        .present_fields()
        .into_iter()
        .filter_map(|field| Some((field.as_str().to_string(), values.get_string(field)?)))
        .collect()
}

fn county(input: &str, field: &str) -> Result<CountyCode, Status> {
    CountyCode::parse(input).map_err(|e| invalid(field, e.to_string()))
}

fn inquiry_kind(input: &str) -> Result<InquiryKind, Status> {
    input
        .parse()
        .map_err(|e: crate::domain::vocabulary::UnknownName| invalid("kind", e.to_string()))
}

/// Withdraws one of our inquiries the peer holds back for a version mismatch, audited with
/// the change.
pub(super) async fn withdraw(
    node: &Node,
    caller: &Caller,
    request: pb::WithdrawRequest,
) -> Result<pb::WithdrawResponse, Status> {
    let id = message_id(&request.message_id)?;
    let record = node.store().inquiry(id).await.map_err(internal)?;
    let Some(record) = record.filter(|r| r.direction == Direction::Outbound) else {
        return Err(not_found(no_inquiry(id)));
    };
    let reason = format!(
        "withdrawn by {} while held for an agreement version",
        caller.principal.name()
    );
    let access = crate::store::audit::OperatorAccess {
        message_id: Some(id),
        peer_county: Some(record.peer_county.to_string()),
        reason: Some(reason.clone()),
        ..caller.access("withdrawn")
    };
    let withdrawn = node
        .store()
        .withdraw_held_inquiry(id, node.limits().lease, &reason, &access)
        .await
        .map_err(internal)?;
    match withdrawn {
        Some(_) => Ok(pb::WithdrawResponse {
            message_id: id.to_string(),
            reason,
        }),
        None => Err(failed_precondition(format!(
            "inquiry {id} is {}, not held for an agreement version: only a held inquiry is withdrawn",
            record.state.as_str()
        ))),
    }
}

fn message_id(input: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(input).map_err(|_| invalid("message_id", "must be a UUID"))
}

fn subject(resident_id: &str, certificate: &str, prefix: &str) -> Result<Subject, Status> {
    let mut violations = Vec::new();
    let prefix = if prefix.is_empty() { "subject" } else { prefix };
    match Subject::parse(resident_id, certificate, prefix, &mut violations) {
        Some(subject) => Ok(subject),
        None => Err(status_of(&Rejection::invalid(violations))),
    }
}

fn send_error(error: SendError) -> Status {
    match error {
        SendError::Refused(rejection) => status_of(&rejection),
        SendError::Store(store) => internal(store),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_full_sweep_listing_fits_in_the_default_message_limit() {
        let at = Some(pbjson_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 999_999_999,
        });
        let widest = pb::InquirySummary {
            message_id: "0193f2a4-7c1e-7b3d-9a4e-1f2e3d4c5b6a".into(),
            direction: "outbound".into(),
            peer_county: "431322".into(),
            kind: "certificate_verification".into(),
            priority: "urgent".into(),
            state: "answered".into(),
            subject_masked: "4313**********0042".into(),
            township: "431322101".into(),
            received_at: at,
            due_at: at,
            overdue: true,
            outcome: "not_found".into(),
            agreement_id: "a".repeat(64),
        };
        let listing = pb::SweepStatusResponse {
            queued: u32::MAX,
            pending: u32::MAX,
            answered: u32::MAX,
            rejected: u32::MAX,
            found: u32::MAX,
            not_found: u32::MAX,
            ambiguous: u32::MAX,
            refused: u32::MAX,
            inquiries: vec![widest; MAX_SWEEP_LISTED],
        };
        let limit = crate::config::Limits::default().max_message_bytes;
        assert!(listing.encoded_len() < limit, "{} bytes", listing.encoded_len());
    }
}
