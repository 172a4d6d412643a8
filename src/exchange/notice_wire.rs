//! Wire ⇄ domain for notices and their feedback: validated field by field like every incoming
//! message, each problem a [`FieldViolation`] naming the field's path, never its value.

use chrono::{NaiveDate, Utc};

use super::convert::{
    agreement_from_wire, agreement_to_wire, subject_from_wire, timestamp_from_wire, timestamp_to_wire,
};
use crate::domain::feedback::{Feedback, FeedbackOutcome, parse_note};
use crate::domain::message::{FieldViolation, Notice, Subject, parse_message_id};
use crate::domain::vocabulary::{NoticeKind, NoticeValues};
use crate::proto::exchange as pb;

/// Validates one notice from the wire: its fields by the kind's field set
/// ([`NoticeValues::parse`]); which of them the agreement lets travel is the intake's check.
pub fn notice_from_wire(wire: &pb::Notice, path: &str) -> Result<Notice, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let message_id = parse_message_id(&wire.message_id, &format!("{path}.message_id"), &mut violations);
    let agreement = agreement_from_wire(wire.agreement.as_ref(), path, &mut violations);
    let kind = match pb::NoticeKind::try_from(wire.kind) {
        Ok(pb::NoticeKind::Birth) => Some(NoticeKind::Birth),
        Ok(pb::NoticeKind::Pregnancy) => Some(NoticeKind::Pregnancy),
        Ok(pb::NoticeKind::ContraceptionCheck) => Some(NoticeKind::ContraceptionCheck),
        Ok(pb::NoticeKind::MovedOn) => Some(NoticeKind::MovedOn),
        Ok(pb::NoticeKind::Unspecified) => {
            violations.push(FieldViolation::new(format!("{path}.kind"), "required"));
            None
        }
        Err(_) => {
            violations.push(FieldViolation::new(
                format!("{path}.kind"),
                format!("unknown value {}", wire.kind),
            ));
            None
        }
    };
    let subject = subject_from_wire(wire.subject.as_ref(), &format!("{path}.subject"), &mut violations);
    let occurred_on = if wire.occurred_on.is_empty() {
        None
    } else {
        let parsed = NaiveDate::parse_from_str(&wire.occurred_on, "%Y-%m-%d").ok();
        if parsed.is_none() {
            violations.push(FieldViolation::new(
                format!("{path}.occurred_on"),
                "must be a date YYYY-MM-DD",
            ));
        }
        parsed
    };
    let fields = match kind {
        Some(kind) => {
            let pairs = wire
                .fields
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()));
            match NoticeValues::parse(kind, pairs, &format!("{path}.fields")) {
                Ok(fields) => Some(fields),
                Err(found) => {
                    violations.extend(found);
                    None
                }
            }
        }
        None => None,
    };
    match (message_id, agreement, kind, subject, fields) {
        (Some(message_id), Some(agreement), Some(kind), Some(subject), Some(fields))
            if violations.is_empty() =>
        {
            Ok(Notice {
                message_id,
                agreement,
                kind,
                subject,
                occurred_on,
                fields,
            })
        }
        _ => Err(violations),
    }
}

/// The wire form of one of our notices.
pub fn notice_to_wire(notice: &Notice) -> pb::Notice {
    pb::Notice {
        message_id: notice.message_id.to_string(),
        agreement: Some(agreement_to_wire(&notice.agreement)),
        kind: match notice.kind {
            NoticeKind::Birth => pb::NoticeKind::Birth,
            NoticeKind::Pregnancy => pb::NoticeKind::Pregnancy,
            NoticeKind::ContraceptionCheck => pb::NoticeKind::ContraceptionCheck,
            NoticeKind::MovedOn => pb::NoticeKind::MovedOn,
        } as i32,
        subject: Some(subject_to_wire(&notice.subject)),
        occurred_on: notice.occurred_on.map(|d| d.to_string()).unwrap_or_default(),
        fields: notice
            .fields
            .pairs()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    }
}

fn subject_to_wire(subject: &Subject) -> pb::Subject {
    pb::Subject {
        resident_id: subject.resident_id.as_str().to_string(),
        certificate_number: subject.certificate_number.clone().unwrap_or_default(),
    }
}

/// Validates one feedback message from the wire.
pub fn feedback_from_wire(wire: &pb::NoticeFeedback, path: &str) -> Result<Feedback, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let message_id = parse_message_id(&wire.message_id, &format!("{path}.message_id"), &mut violations);
    let notice_id = match uuid::Uuid::parse_str(&wire.notice_id) {
        Ok(id) => Some(id),
        Err(_) => {
            violations.push(FieldViolation::new(format!("{path}.notice_id"), "must be a UUID"));
            None
        }
    };
    let agreement = agreement_from_wire(wire.agreement.as_ref(), path, &mut violations);
    let outcome = match pb::FeedbackOutcome::try_from(wire.outcome) {
        Ok(pb::FeedbackOutcome::Registered) => Some(FeedbackOutcome::Registered),
        Ok(pb::FeedbackOutcome::ChildCounted) => Some(FeedbackOutcome::ChildCounted),
        Ok(pb::FeedbackOutcome::TownshipFollowUp) => Some(FeedbackOutcome::TownshipFollowUp),
        Ok(pb::FeedbackOutcome::NotRegisteredHere) => Some(FeedbackOutcome::NotRegisteredHere),
        Ok(pb::FeedbackOutcome::Unspecified) => {
            violations.push(FieldViolation::new(format!("{path}.outcome"), "required"));
            None
        }
        Err(_) => {
            violations.push(FieldViolation::new(
                format!("{path}.outcome"),
                format!("unknown value {}", wire.outcome),
            ));
            None
        }
    };
    let note = match parse_note(&wire.note, &format!("{path}.note")) {
        Ok(note) => note,
        Err(violation) => {
            violations.push(violation);
            None
        }
    };
    let answered_at = wire
        .answered_at
        .as_ref()
        .and_then(timestamp_from_wire)
        .unwrap_or_else(Utc::now);
    match (message_id, notice_id, agreement, outcome) {
        (Some(message_id), Some(notice_id), Some(agreement), Some(outcome)) if violations.is_empty() => {
            Ok(Feedback {
                message_id,
                notice_id,
                agreement,
                outcome,
                note,
                answered_at,
            })
        }
        _ => Err(violations),
    }
}

/// The wire form of our feedback.
pub fn feedback_to_wire(feedback: &Feedback) -> pb::NoticeFeedback {
    pb::NoticeFeedback {
        message_id: feedback.message_id.to_string(),
        notice_id: feedback.notice_id.to_string(),
        agreement: Some(agreement_to_wire(&feedback.agreement)),
        outcome: match feedback.outcome {
            FeedbackOutcome::Registered => pb::FeedbackOutcome::Registered,
            FeedbackOutcome::ChildCounted => pb::FeedbackOutcome::ChildCounted,
            FeedbackOutcome::TownshipFollowUp => pb::FeedbackOutcome::TownshipFollowUp,
            FeedbackOutcome::NotRegisteredHere => pb::FeedbackOutcome::NotRegisteredHere,
        } as i32,
        note: feedback.note.clone().unwrap_or_default(),
        answered_at: Some(timestamp_to_wire(feedback.answered_at)),
    }
}
