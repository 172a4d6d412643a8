//! Receiving from a peer whose county was read from its verified certificate: every message is
//! checked against the agreement it names, stored (idempotently) with its audit record, and only
//! then acknowledged.

use chrono::{DateTime, SubsecRound, Utc};
use tracing::{info, instrument};

use super::{Node, china_date};
use crate::domain::division::CountyCode;
use crate::domain::message::{Confirmation, FieldViolation, Inquiry};
use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::vocabulary::MessageKind;
use crate::store::StoreError;
use crate::store::audit::AuditEntry;
use crate::store::inbound::{ConfirmationReceipt, InboundInquiry, InboundReceipt};

/// The receipt for an accepted inquiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// When we accepted it (the first time, for a repeat).
    pub received_at: DateTime<Utc>,
    /// Reply deadline under the agreement.
    pub due_at: Option<DateTime<Utc>>,
}

/// One message as it came off the wire: valid, or its field violations (with the message id
/// when it could be read, for the audit record).
pub type Incoming<T> = Result<T, (Option<uuid::Uuid>, Vec<FieldViolation>)>;

impl Node {
    /// Receives a batch of inquiries from `peer`: one receipt per inquiry, in order. Wakes the
    /// auto-answer worker when any is new.
    pub async fn receive_inquiries(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        self.receive_inquiries_waking(peer, batch, true).await
    }

    /// [`Node::receive_inquiries`], waking the auto-answer worker only if `wake`: the synchronous
    /// path answers its inquiry itself, and a worker woken at the same moment would only race it
    /// for the row.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub(crate) async fn receive_inquiries_waking(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
        wake: bool,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        let now = now_as_stored();
        let book = self.agreements();
        let mut results: Vec<Option<Result<Accepted, Rejection>>> = vec![None; batch.len()];
        let mut candidates = Vec::new();
        let mut audit = Vec::new();
        for (index, item) in batch.iter().enumerate() {
            let outcome = match item {
                Err((message_id, violations)) => {
                    Err((*message_id, None, None, Rejection::invalid(violations.clone())))
                }
                Ok(inquiry) => {
                    match book.check_inbound(
                        peer,
                        &inquiry.agreement,
                        MessageKind::Inquiry(inquiry.kind),
                        now,
                    ) {
                        Ok((_, direction)) => Ok(InboundInquiry {
                            inquiry,
                            due_at: direction.deadline(now, inquiry.priority),
                            daily_cap: direction.daily_cap(),
                        }),
                        Err(rejection) => Err((
                            Some(inquiry.message_id),
                            Some(inquiry.kind.as_str()),
                            Some(&inquiry.agreement),
                            rejection,
                        )),
                    }
                }
            };
            match outcome {
                Ok(candidate) => candidates.push((index, candidate)),
                Err((message_id, kind, agreement, rejection)) => {
                    audit.push(AuditEntry {
                        peer_county: Some(peer.to_string()),
                        direction: "inbound".into(),
                        message_id,
                        kind: kind.map(String::from),
                        agreement_id: agreement.map(|a| a.id.clone()),
                        agreement_hash: agreement.map(|a| a.hash.clone()),
                        outcome: "rejected".into(),
                        reason: Some(rejection.audit_reason()),
                    });
                    results[index] = Some(Err(rejection));
                }
            }
        }
        if !audit.is_empty() {
            self.store.append_audit_batch(&audit).await?;
        }
        let to_store: Vec<InboundInquiry<'_>> = candidates.iter().map(|(_, c)| c.clone()).collect();
        let receipts = if to_store.is_empty() {
            Vec::new()
        } else {
            self.store
                .accept_inbound_inquiries(peer, china_date(now), &to_store, now)
                .await?
        };
        let mut accepted = 0usize;
        for ((index, _), receipt) in candidates.iter().zip(receipts) {
            if matches!(receipt, InboundReceipt::Accepted { .. }) {
                accepted += 1;
            }
            results[*index] = Some(receipt_of_inquiry(receipt));
        }
        if accepted > 0 {
            info!(accepted, "inquiries accepted");
            if wake {
                self.auto_answer_wake.notify_one();
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every inquiry has a result"))
            .collect())
    }

    /// Receives confirmations `peer` sends for inquiries we asked it.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub async fn receive_confirmations(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Confirmation>>,
    ) -> Result<Vec<Result<(), Rejection>>, StoreError> {
        let book = self.agreements();
        let mut results: Vec<Option<Result<(), Rejection>>> = vec![None; batch.len()];
        let mut valid = Vec::new();
        let mut audit = Vec::new();
        for (index, item) in batch.into_iter().enumerate() {
            let checked = match item {
                Err((message_id, violations)) => Err((message_id, None, Rejection::invalid(violations))),
                Ok(confirmation) => match check_confirmation(&book, self.me, peer, &confirmation) {
                    Ok(()) => Ok(confirmation),
                    Err(rejection) => Err((
                        Some(confirmation.message_id),
                        Some(confirmation.agreement),
                        rejection,
                    )),
                },
            };
            match checked {
                Ok(confirmation) => valid.push((index, confirmation)),
                Err((message_id, agreement, rejection)) => {
                    audit.push(AuditEntry {
                        peer_county: Some(peer.to_string()),
                        direction: "inbound".into(),
                        message_id,
                        kind: Some("confirmation".into()),
                        agreement_id: agreement.as_ref().map(|a| a.id.clone()),
                        agreement_hash: agreement.as_ref().map(|a| a.hash.clone()),
                        outcome: "rejected".into(),
                        reason: Some(rejection.audit_reason()),
                    });
                    results[index] = Some(Err(rejection));
                }
            }
        }
        if !audit.is_empty() {
            self.store.append_audit_batch(&audit).await?;
        }
        let confirmations: Vec<Confirmation> = valid.iter().map(|(_, c)| c.clone()).collect();
        let receipts = if confirmations.is_empty() {
            Vec::new()
        } else {
            self.store
                .accept_inbound_confirmations(peer, &confirmations)
                .await?
        };
        for ((index, _), receipt) in valid.iter().zip(receipts) {
            results[*index] = Some(match receipt {
                ConfirmationReceipt::Accepted | ConfirmationReceipt::Duplicate => Ok(()),
                ConfirmationReceipt::UnknownInquiry => Err(Rejection::new(
                    RejectionCode::NotFound,
                    "no inquiry with this id was sent to you",
                )),
                ConfirmationReceipt::AlreadyAnswered => Err(Rejection::new(
                    RejectionCode::AlreadyExists,
                    "the inquiry already has an answer",
                )),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every confirmation has a result"))
            .collect())
    }
}

/// The receipt for an inquiry as the store took it.
pub(super) fn receipt_of_inquiry(receipt: InboundReceipt) -> Result<Accepted, Rejection> {
    match receipt {
        InboundReceipt::Accepted { received_at, due_at }
        | InboundReceipt::Duplicate { received_at, due_at } => Ok(Accepted {
            received_at,
            due_at: Some(due_at),
        }),
        InboundReceipt::OverDailyCap { cap } => Err(Rejection::new(
            RejectionCode::ResourceExhausted,
            format!("daily cap of {cap} inquiries under the agreement is reached"),
        )),
        InboundReceipt::IdTaken => Err(Rejection::new(
            RejectionCode::AlreadyExists,
            "message id already used by another message",
        )),
    }
}

/// Now, at the precision PostgreSQL keeps (microseconds): a repeated message gets its first
/// receipt read back from the database, which must equal the one sent the first time.
pub(super) fn now_as_stored() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A confirmation travels under the inquiry's agreement, from the responder (`peer`) to us, and
/// may carry only the fields that agreement lets us see.
pub(super) fn check_confirmation(
    book: &crate::domain::policy::AgreementBook,
    me: CountyCode,
    peer: CountyCode,
    confirmation: &Confirmation,
) -> Result<(), Rejection> {
    let agreement = book.pinned(&confirmation.agreement)?;
    if !agreement.is_party(peer) {
        return Err(Rejection::new(
            RejectionCode::PermissionDenied,
            format!("{peer} is not a party to agreement {}", agreement.id()),
        ));
    }
    let Some(direction) = agreement.direction(me, peer) else {
        return Err(Rejection::new(
            RejectionCode::PermissionDenied,
            format!(
                "agreement {} allows no inquiries from {me} to {peer}",
                agreement.id()
            ),
        ));
    };
    let extra: Vec<&str> = confirmation
        .fields
        .present_fields()
        .into_iter()
        .filter(|field| !direction.answer_fields().contains(field))
        .map(|field| field.as_str())
        .collect();
    if !extra.is_empty() {
        return Err(Rejection::new(
            RejectionCode::PermissionDenied,
            format!(
                "fields not allowed by agreement {}: {}",
                agreement.id(),
                extra.join(", ")
            ),
        ));
    }
    Ok(())
}

impl Node {
    /// Receives notices (信息通报) from `peer`; the receipt carries the feedback deadline for
    /// kinds that need feedback.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub async fn receive_notices(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<crate::domain::message::Notice>>,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        let now = now_as_stored();
        let book = self.agreements();
        let mut results: Vec<Option<Result<Accepted, Rejection>>> = vec![None; batch.len()];
        let mut valid = Vec::new();
        let mut audit = Vec::new();
        for (index, item) in batch.iter().enumerate() {
            let checked = match item {
                Err((message_id, violations)) => {
                    Err((*message_id, None, None, Rejection::invalid(violations.clone())))
                }
                Ok(notice) => {
                    match book.check_inbound(peer, &notice.agreement, MessageKind::Notice(notice.kind), now) {
                        Ok((_, direction)) => Ok(crate::store::notices::InboundNotice {
                            notice,
                            feedback_due_at: direction
                                .notice_deadlines(notice.kind, now)
                                .and_then(|d| d.feedback),
                        }),
                        Err(rejection) => Err((
                            Some(notice.message_id),
                            Some(notice.kind.as_str()),
                            Some(&notice.agreement),
                            rejection,
                        )),
                    }
                }
            };
            match checked {
                Ok(notice) => valid.push((index, notice)),
                Err((message_id, kind, agreement, rejection)) => {
                    audit.push(AuditEntry {
                        peer_county: Some(peer.to_string()),
                        direction: "inbound".into(),
                        message_id,
                        kind: kind.map(String::from),
                        agreement_id: agreement.map(|a| a.id.clone()),
                        agreement_hash: agreement.map(|a| a.hash.clone()),
                        outcome: "rejected".into(),
                        reason: Some(rejection.audit_reason()),
                    });
                    results[index] = Some(Err(rejection));
                }
            }
        }
        if !audit.is_empty() {
            self.store.append_audit_batch(&audit).await?;
        }
        let notices: Vec<crate::store::notices::InboundNotice<'_>> =
            valid.iter().map(|(_, n)| n.clone()).collect();
        let stored = if notices.is_empty() {
            Vec::new()
        } else {
            self.store.accept_inbound_notices(peer, &notices, now).await?
        };
        for ((index, notice), received) in valid.iter().zip(stored) {
            results[*index] = Some(match received {
                Some(received_at) => Ok(Accepted {
                    received_at,
                    due_at: notice.feedback_due_at,
                }),
                None => Err(Rejection::new(
                    RejectionCode::AlreadyExists,
                    "message id already used by another message",
                )),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every notice has a result"))
            .collect())
    }
}
