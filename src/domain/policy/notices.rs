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

#[cfg(test)]
mod tests {
    use super::*;

    const DINGCHENG: &str = "430703";
    const SHAODONG: &str = "430582";

    fn county(code: &str) -> CountyCode {
        CountyCode::parse(code).unwrap()
    }

    /// 鼎城区's book with 邵东市: every notice kind and field from 鼎城区, none the other way.
    fn book_of(me: &str) -> AgreementBook {
        let text = include_str!("../../../examples/agreements/430703-430582.toml");
        AgreementBook::new(county(me), [Agreement::parse(text).expect("example parses")])
    }

    fn values(kind: NoticeKind, pairs: &[(&str, &str)]) -> NoticeValues {
        NoticeValues::parse(kind, pairs.iter().copied(), "fields").unwrap()
    }

    fn in_force() -> DateTime<Utc> {
        "2026-10-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_notice_the_direction_allows_names_the_agreement_to_send_it_under() {
        let fields = values(
            NoticeKind::Birth,
            &[("child_sex", "female"), ("birth_order", "2")],
        );
        let reference = book_of(DINGCHENG)
            .check_notice_outbound(county(SHAODONG), NoticeKind::Birth, &fields, in_force())
            .expect("allowed");
        assert_eq!(reference.id, "430703-430582");
    }

    #[test]
    fn a_kind_the_direction_does_not_allow_is_refused_before_anything_is_stored() {
        let fields = values(NoticeKind::MovedOn, &[("new_county", "430703")]);
        let refusal = book_of(SHAODONG)
            .check_notice_outbound(county(DINGCHENG), NoticeKind::MovedOn, &fields, in_force())
            .expect_err("no notices from 邵东市");
        assert_eq!(refusal.code, RejectionCode::PermissionDenied);
        assert!(refusal.reason.contains("moved_on"), "{}", refusal.reason);
    }

    #[test]
    fn only_a_birth_owes_feedback() {
        let book = book_of(SHAODONG);
        let reference = AgreementRef {
            id: "430703-430582".into(),
            hash: book
                .with_peer(county(DINGCHENG))
                .next()
                .unwrap()
                .canonical_hash()
                .as_str()
                .into(),
        };
        let sender = county(DINGCHENG);
        let receiver = county(SHAODONG);
        assert_eq!(
            book.check_feedback_owed(&reference, sender, receiver, NoticeKind::Birth),
            Ok(())
        );
        let refusal = book
            .check_feedback_owed(&reference, sender, receiver, NoticeKind::ContraceptionCheck)
            .expect_err("a check result owes no feedback");
        assert_eq!(refusal.code, RejectionCode::FailedPrecondition);
    }
}
