//! The agreement's decisions on notices and their feedback: which fields a notice may carry in
//! a direction, and whether a notice owes feedback. Sender and receiver both decide with these.

use chrono::{DateTime, Utc};

use super::{AgreementBook, Rejection, RejectionCode};
use crate::domain::agreement::{Agreement, Direction};
use crate::domain::division::CountyCode;
use crate::domain::message::AgreementRef;
use crate::domain::vocabulary::{MessageKind, NoticeField, NoticeKind, NoticeValues};

/// A notice of `kind` in `direction` (of `agreement`) may carry only the fields that direction
/// lists for the kind (`notice_fields`). The refusal names every field not allowed and the ones
/// that are, never a value.
pub fn check_notice_fields(
    agreement: &Agreement,
    direction: &Direction,
    kind: NoticeKind,
    fields: &NoticeValues,
) -> Result<(), Rejection> {
    let refused: Vec<NoticeField> = fields
        .fields()
        .filter(|&field| !direction.may_carry(field))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let allowed: Vec<&str> = direction.notice_fields(kind).map(NoticeField::as_str).collect();
    let mut rejection = Rejection::new(
        RejectionCode::PermissionDenied,
        format!(
            "agreement {} lets a {kind} notice carry only: {} (not: {})",
            agreement.id(),
            if allowed.is_empty() {
                "no fields".to_string()
            } else {
                allowed.join(", ")
            },
            refused.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        ),
    );
    rejection.violations = refused
        .iter()
        .map(|field| {
            crate::domain::message::FieldViolation::new(
                format!("fields.{field}"),
                "not allowed by the agreement in this direction",
            )
        })
        .collect();
    Err(rejection)
}

impl AgreementBook {
    /// Sender side: may we send `peer` a notice of `kind` carrying `fields` now? Returns the
    /// agreement to name.
    pub fn check_notice_outbound(
        &self,
        peer: CountyCode,
        kind: NoticeKind,
        fields: &NoticeValues,
        at: DateTime<Utc>,
    ) -> Result<AgreementRef, Rejection> {
        let (agreement, direction) = self.check_outbound(peer, MessageKind::Notice(kind), at)?;
        check_notice_fields(agreement, direction, kind, fields)?;
        Ok(AgreementRef {
            id: agreement.id().to_string(),
            hash: agreement.canonical_hash().as_str().to_string(),
        })
    }

    /// Whether a notice of `kind` sent by `sender` to `receiver` under `reference` owes
    /// feedback: its kind needs it and the direction sets a feedback deadline. The refusal
    /// says which of the two fails.
    pub fn check_feedback_owed(
        &self,
        reference: &AgreementRef,
        sender: CountyCode,
        receiver: CountyCode,
        kind: NoticeKind,
    ) -> Result<(), Rejection> {
        if !kind.requires_feedback() {
            return Err(Rejection::new(
                RejectionCode::FailedPrecondition,
                format!("a {kind} notice owes no feedback (only birth notices do)"),
            ));
        }
        let agreement = self.pinned(reference)?;
        let days = agreement
            .direction(sender, receiver)
            .and_then(|direction| direction.notice_days());
        match days {
            Some(days) if days.feedback > 0 => Ok(()),
            _ => Err(Rejection::new(
                RejectionCode::FailedPrecondition,
                format!(
                    "agreement {} sets no feedback deadline for notices from {sender} to {receiver}",
                    agreement.id()
                ),
            )),
        }
    }
}
