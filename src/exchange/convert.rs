//! Wire ⇄ domain for the exchange API. Incoming messages are validated field by field; every
//! problem is reported as a [`FieldViolation`] naming the field's path, never its value.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::message::{
    AgreementRef, Confirmation, FieldViolation, Inquiry, Subject, parse_message_id,
};
use crate::domain::peer_status::{HeldVersion, NodeStatus};
use crate::domain::vocabulary::{AnswerOutcome, InquiryKind, Priority, StatusField, StatusValues};
use crate::proto::exchange as pb;

pub use super::notice_wire::{feedback_from_wire, feedback_to_wire, notice_from_wire, notice_to_wire};

/// Validates one inquiry from the wire; `path` prefixes field names (e.g. `inquiries[3]`).
pub fn inquiry_from_wire(wire: &pb::Inquiry, path: &str) -> Result<Inquiry, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let message_id = parse_message_id(&wire.message_id, &format!("{path}.message_id"), &mut violations);
    let agreement = agreement_from_wire(wire.agreement.as_ref(), path, &mut violations);
    let kind = match pb::InquiryKind::try_from(wire.kind) {
        Ok(pb::InquiryKind::CertificateVerification) => Some(InquiryKind::CertificateVerification),
        Ok(pb::InquiryKind::OutflowStatus) => Some(InquiryKind::OutflowStatus),
        Ok(pb::InquiryKind::Unspecified) => {
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
    let priority = match pb::Priority::try_from(wire.priority) {
        Ok(pb::Priority::Normal) | Ok(pb::Priority::Unspecified) => Some(Priority::Normal),
        Ok(pb::Priority::Urgent) => Some(Priority::Urgent),
        Err(_) => {
            violations.push(FieldViolation::new(
                format!("{path}.priority"),
                format!("unknown value {}", wire.priority),
            ));
            None
        }
    };
    let subject = subject_from_wire(wire.subject.as_ref(), &format!("{path}.subject"), &mut violations);
    match (message_id, agreement, kind, priority, subject) {
        (Some(message_id), Some(agreement), Some(kind), Some(priority), Some(subject))
            if violations.is_empty() =>
        {
            Ok(Inquiry {
                message_id,
                agreement,
                kind,
                priority,
                subject,
            })
        }
        _ => Err(violations),
    }
}

/// The wire form of one of our inquiries.
pub fn inquiry_to_wire(inquiry: &Inquiry) -> pb::Inquiry {
    pb::Inquiry {
        message_id: inquiry.message_id.to_string(),
        agreement: Some(agreement_to_wire(&inquiry.agreement)),
        kind: match inquiry.kind {
            InquiryKind::CertificateVerification => pb::InquiryKind::CertificateVerification,
            InquiryKind::OutflowStatus => pb::InquiryKind::OutflowStatus,
        } as i32,
        priority: match inquiry.priority {
            Priority::Normal => pb::Priority::Normal,
            Priority::Urgent => pb::Priority::Urgent,
        } as i32,
        subject: Some(pb::Subject {
            resident_id: inquiry.subject.resident_id.as_str().to_string(),
            certificate_number: inquiry.subject.certificate_number.clone().unwrap_or_default(),
        }),
    }
}

/// Validates one confirmation from the wire.
pub fn confirmation_from_wire(
    wire: &pb::StatusConfirmation,
    path: &str,
) -> Result<Confirmation, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let message_id = parse_message_id(&wire.message_id, &format!("{path}.message_id"), &mut violations);
    let inquiry_id = parse_message_id(&wire.inquiry_id, &format!("{path}.inquiry_id"), &mut violations);
    let agreement = agreement_from_wire(wire.agreement.as_ref(), path, &mut violations);
    let outcome = match pb::Outcome::try_from(wire.outcome) {
        Ok(pb::Outcome::Found) => Some(AnswerOutcome::Found),
        Ok(pb::Outcome::NotFound) => Some(AnswerOutcome::NotFound),
        Ok(pb::Outcome::Ambiguous) => Some(AnswerOutcome::Ambiguous),
        Ok(pb::Outcome::Refused) => Some(AnswerOutcome::Refused),
        Ok(pb::Outcome::Unspecified) => {
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
    let fields = fields_from_wire(&wire.fields, &format!("{path}.fields"), &mut violations);
    let answered_at = wire
        .answered_at
        .as_ref()
        .and_then(timestamp_from_wire)
        .unwrap_or_else(Utc::now);
    match (message_id, inquiry_id, agreement, outcome) {
        (Some(message_id), Some(inquiry_id), Some(agreement), Some(outcome)) if violations.is_empty() => {
            Ok(Confirmation {
                message_id,
                inquiry_id,
                agreement,
                outcome,
                fields,
                answered_at,
            })
        }
        _ => Err(violations),
    }
}

/// The wire form of one of our confirmations.
pub fn confirmation_to_wire(confirmation: &Confirmation) -> pb::StatusConfirmation {
    pb::StatusConfirmation {
        message_id: confirmation.message_id.to_string(),
        inquiry_id: confirmation.inquiry_id.to_string(),
        agreement: Some(agreement_to_wire(&confirmation.agreement)),
        outcome: match confirmation.outcome {
            AnswerOutcome::Found => pb::Outcome::Found,
            AnswerOutcome::NotFound => pb::Outcome::NotFound,
            AnswerOutcome::Ambiguous => pb::Outcome::Ambiguous,
            AnswerOutcome::Refused => pb::Outcome::Refused,
        } as i32,
        fields: fields_to_wire(&confirmation.fields),
        answered_at: Some(timestamp_to_wire(confirmation.answered_at)),
    }
}

pub(super) fn agreement_from_wire(
    wire: Option<&pb::AgreementRef>,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<AgreementRef> {
    match wire {
        Some(agreement) => AgreementRef::parse(
            &agreement.id,
            &agreement.hash,
            &format!("{path}.agreement"),
            violations,
        ),
        None => {
            violations.push(FieldViolation::new(format!("{path}.agreement"), "required"));
            None
        }
    }
}

/// The wire form of an agreement reference.
pub fn agreement_to_wire(agreement: &AgreementRef) -> pb::AgreementRef {
    pb::AgreementRef {
        id: agreement.id.clone(),
        hash: agreement.hash.clone(),
    }
}

pub(super) fn subject_from_wire(
    wire: Option<&pb::Subject>,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<Subject> {
    match wire {
        Some(subject) => Subject::parse(
            &subject.resident_id,
            &subject.certificate_number,
            path,
            violations,
        ),
        None => {
            violations.push(FieldViolation::new(path, "required"));
            None
        }
    }
}

fn fields_from_wire(
    wire: &HashMap<String, String>,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> StatusValues {
    let mut values = StatusValues::default();
    for (name, value) in wire {
        match name.parse::<StatusField>() {
            Ok(field) => {
                if let Err(error) = values.set(field, value) {
                    violations.push(FieldViolation::new(format!("{path}.{field}"), error.to_string()));
                }
            }
            Err(error) => violations.push(FieldViolation::new(path, error.to_string())),
        }
    }
    values
}

fn fields_to_wire(values: &StatusValues) -> HashMap<String, String> {
    values
        .present_fields()
        .into_iter()
        .filter_map(|field| Some((field.as_str().to_string(), values.get_string(field)?)))
        .collect()
}

/// A protobuf timestamp for an instant.
pub fn timestamp_to_wire(at: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// An instant from a protobuf timestamp, if it is in range.
pub fn timestamp_from_wire(at: &pbjson_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

/// The most agreement versions a peer's status may list: far more than two counties ever sign.
pub const MAX_STATUS_VERSIONS: usize = 1_000;

/// A node's status for the wire.
pub fn status_to_wire(status: &NodeStatus) -> pb::NodeStatus {
    pb::NodeStatus {
        agreement_versions: status
            .versions
            .iter()
            .map(|held| pb::HeldVersion {
                agreement_id: held.agreement_id.clone(),
                version: held.version,
                hash: held.hash.clone(),
            })
            .collect(),
        software_version: status.software_version.clone(),
        clock: Some(timestamp_to_wire(status.clock)),
        audit: Some(super::audit_wire::audit_to_wire(&status.audit)),
    }
}

/// A peer's status from the wire, every violation named under `path`. Ids and hashes are
/// checked for shape only: which of them name our agreements is the node's business.
pub fn status_from_wire(
    wire: Option<&pb::NodeStatus>,
    path: &str,
) -> Result<NodeStatus, Vec<FieldViolation>> {
    let Some(wire) = wire else {
        return Err(vec![FieldViolation::new(path, "is required")]);
    };
    let mut violations = Vec::new();
    if wire.agreement_versions.len() > MAX_STATUS_VERSIONS {
        violations.push(FieldViolation::new(
            format!("{path}.agreement_versions"),
            format!(
                "lists {} versions; at most {MAX_STATUS_VERSIONS}",
                wire.agreement_versions.len()
            ),
        ));
    }
    let mut versions = Vec::new();
    for (index, held) in wire
        .agreement_versions
        .iter()
        .enumerate()
        .take(MAX_STATUS_VERSIONS)
    {
        let at = format!("{path}.agreement_versions[{index}]");
        let id_ok = (1..=64).contains(&held.agreement_id.len())
            && held
                .agreement_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let hash_ok = held.hash.len() == 64
            && held
                .hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !id_ok {
            violations.push(FieldViolation::new(
                format!("{at}.agreement_id"),
                "must be 1–64 of A-Z a-z 0-9 . _ -",
            ));
        }
        if !hash_ok {
            violations.push(FieldViolation::new(
                format!("{at}.hash"),
                "must be 64 lowercase hex characters",
            ));
        }
        if held.version == 0 {
            violations.push(FieldViolation::new(format!("{at}.version"), "must be at least 1"));
        }
        if id_ok && hash_ok && held.version > 0 {
            versions.push(HeldVersion {
                agreement_id: held.agreement_id.clone(),
                version: held.version,
                hash: held.hash.clone(),
            });
        }
    }
    let software_ok = wire.software_version.len() <= 64
        && wire
            .software_version
            .chars()
            .all(|c| c.is_ascii_graphic() || c == ' ');
    if !software_ok {
        violations.push(FieldViolation::new(
            format!("{path}.software_version"),
            "must be at most 64 printable ASCII characters",
        ));
    }
    // a malformed audit part is dropped on its own (the node logs and audits it): the rest of
    // the status, agreement versions above all, must still get through
    let mut audit_violations = Vec::new();
    let audit = super::audit_wire::audit_from_wire(
        wire.audit.as_ref(),
        &format!("{path}.audit"),
        &mut audit_violations,
    );
    let audit_dropped = (!audit_violations.is_empty()).then(|| {
        audit_violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let clock = wire.clock.as_ref().and_then(timestamp_from_wire);
    if clock.is_none() {
        violations.push(FieldViolation::new(
            format!("{path}.clock"),
            "is required, a valid timestamp",
        ));
    }
    match clock {
        Some(clock) if violations.is_empty() => Ok(NodeStatus {
            versions,
            software_version: wire.software_version.clone(),
            clock,
            audit,
            audit_dropped,
        }),
        _ => Err(violations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit_chain::{AuditStatus, MAX_EXTENSION_LEAVES};

    #[test]
    fn an_oversized_audit_extension_drops_the_audit_part_only() {
        let wire = pb::NodeStatus {
            agreement_versions: vec![pb::HeldVersion {
                agreement_id: "hn-430703-430922".into(),
                version: 2,
                hash: "a".repeat(64),
            }],
            software_version: "1.0.0".into(),
            clock: Some(timestamp_to_wire(chrono::Utc::now())),
            audit: Some(pb::AuditChainStatus {
                checkpoint: None,
                extension: Some(pb::AuditExtension {
                    from_position: 1,
                    leaves: vec![vec![0; 32]; MAX_EXTENSION_LEAVES as usize + 1],
                }),
                resume: None,
                holds_yours: Some(pb::AuditChainPoint {
                    position: 3,
                    head: vec![1; 32],
                }),
            }),
        };
        let status = status_from_wire(Some(&wire), "status").expect("the status is taken");
        assert_eq!(status.versions.len(), 1, "the agreement versions get through");
        assert_eq!(status.versions[0].version, 2);
        assert_eq!(status.audit, AuditStatus::default(), "the audit part is dropped");
        let why = status.audit_dropped.expect("and said why");
        assert!(
            why.contains("status.audit.extension.leaves") && why.contains("at most 4096"),
            "{why}"
        );

        let mut fine = wire.clone();
        fine.audit.as_mut().unwrap().extension = None;
        let status = status_from_wire(Some(&fine), "status").unwrap();
        assert_eq!(status.audit_dropped, None);
        assert!(status.audit.holds_yours.is_some());
    }
}
