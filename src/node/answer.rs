//! Answering inquiries we received: automatically from the registry when the agreement allows it
//! and the registry settles it, or by an operator. Either way only the fields the agreement lets
//! the asker see leave this node.

use chrono::{NaiveDate, Utc};

use tracing::{info, instrument};
use uuid::Uuid;

use super::Node;
use crate::domain::message::{Direction, InquiryState, Subject};
use crate::domain::person::{Person, answer_from_registry, certificate_presented};
use crate::domain::policy::{AgreementBook, FieldsNotAllowed, check_answer_fields};
use crate::domain::resident_id::today_in_china;
use crate::domain::vocabulary::{AnswerOutcome, CertificatePresented, StatusField, StatusValues};
use crate::store::StoreError;
use crate::store::answers::{Answer, GivenAnswer, WaitingInquiry};

/// An operator's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualAnswer {
    /// Found, not found, ambiguous or refused.
    pub outcome: AnswerOutcome,
    /// The values to send; each must be a field the agreement allows.
    pub fields: StatusValues,
}

/// Why an operator's answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No inquiry with that id was received.
    #[error("no inquiry {0} was received")]
    UnknownInquiry(Uuid),
    /// It is already answered (or was never answerable).
    #[error("{0}")]
    NotPending(String),
    /// The answer carries fields the agreement does not let the asker see.
    #[error(transparent)]
    FieldsNotAllowed(FieldsNotAllowed),
    /// The agreement the inquiry came under is no longer held.
    #[error("agreement {0} is no longer held by this node")]
    AgreementGone(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl Node {
    /// One step of the auto-answer worker: answers up to `limit` waiting inquiries (only `only`,
    /// when given) from the registry. Inquiries whose agreement does not allow automatic answers
    /// stay pending for an operator.
    #[instrument(skip_all, fields(limit, only = ?only))]
    pub async fn auto_answer_step(
        &self,
        limit: i64,
        only: Option<Uuid>,
    ) -> Result<Vec<GivenAnswer>, StoreError> {
        let book = self.agreements();
        let decide = self.registry_answerer(&book, today_in_china());
        let answered = self.store.auto_answer(limit, only, Utc::now(), decide).await?;
        if !answered.is_empty() {
            info!(answered = answered.len(), "inquiries answered automatically");
            self.metrics.auto_answered(answered.len());
            self.wake_delivery();
        }
        Ok(answered)
    }

    /// How the registry answers an inquiry on `today`: `Some(answer)` when the agreement allows
    /// automatic answers in that direction (only its fields go back), `None` to leave it for an
    /// operator. The same decision for the auto-answer worker and the clerk's path.
    pub(super) fn registry_answerer<'a>(
        &self,
        book: &'a AgreementBook,
        today: NaiveDate,
    ) -> impl Fn(&WaitingInquiry, Option<&Person>) -> Option<Answer> + 'a {
        let me = self.me;
        move |inquiry, registered| {
            let agreement = book.by_ref(&inquiry.agreement)?;
            let asker = inquiry.peer_county;
            let direction = agreement.direction(asker, me)?;
            if !direction.automatic_answers() {
                return None;
            }
            let answer = answer_from_registry(
                inquiry.kind,
                asker,
                &inquiry.subject,
                registered,
                direction.answer_fields(),
                today,
            );
            Some(Answer {
                outcome: answer.outcome,
                fields: answer.fields,
            })
        }
    }

    /// Whether the certificate number `subject` shows is the one our registry holds for the
    /// person its ID names; `None` when the registry does not hold that person. What an operator
    /// answering by hand is shown, and what the answer says when the operator does not.
    pub async fn certificate_presented_here(
        &self,
        subject: &Subject,
    ) -> Result<Option<CertificatePresented>, StoreError> {
        let registered = self.store.person(&subject.resident_id).await?;
        Ok(registered.map(|person| {
            certificate_presented(
                subject.certificate_number.as_deref(),
                person.status.certificate_number.as_deref(),
            )
        }))
    }

    /// Answers a pending inquiry by hand (the operator API and tests call this). Refuses fields
    /// outside the agreement, naming the allowed ones. A `found` answer says whether the
    /// certificate shown is this person's wherever the agreement lets it: as the operator set
    /// it, or else compared with the certificate number the operator gives, or else with the
    /// registry's.
    #[instrument(skip_all, fields(inquiry = %inquiry_id))]
    pub async fn answer_by_hand(
        &self,
        inquiry_id: Uuid,
        answer: ManualAnswer,
    ) -> Result<GivenAnswer, AnswerError> {
        let inquiry = self
            .store
            .inquiry(inquiry_id)
            .await
            .map_err(AnswerError::Store)?
            .filter(|inquiry| inquiry.direction == Direction::Inbound)
            .ok_or(AnswerError::UnknownInquiry(inquiry_id))?;
        if inquiry.state != InquiryState::Pending {
            return Err(AnswerError::NotPending(format!(
                "inquiry {inquiry_id} is {}, not pending",
                inquiry.state
            )));
        }
        let book = self.agreements();
        let agreement = book
            .by_ref(&inquiry.agreement())
            .ok_or_else(|| AnswerError::AgreementGone(inquiry.agreement_id.clone()))?;
        let asker = inquiry.peer_county;
        check_answer_fields(agreement, asker, self.me, &answer.fields)
            .map_err(AnswerError::FieldsNotAllowed)?;
        let mut fields = answer.fields;
        let may_say_presented = agreement.direction(asker, self.me).is_some_and(|direction| {
            direction
                .answer_fields()
                .contains(&StatusField::CertificatePresented)
        });
        if answer.outcome == AnswerOutcome::Found
            && may_say_presented
            && fields.certificate_presented.is_none()
        {
            let subject = self
                .store
                .inquiry_subject(inquiry_id)
                .await
                .map_err(AnswerError::Store)?
                .ok_or(AnswerError::UnknownInquiry(inquiry_id))?;
            fields.certificate_presented = match &fields.certificate_number {
                Some(issued) => Some(certificate_presented(
                    subject.certificate_number.as_deref(),
                    Some(issued),
                )),
                None => self
                    .certificate_presented_here(&subject)
                    .await
                    .map_err(AnswerError::Store)?,
            };
        }
        let given = self
            .store
            .answer_by_operator(
                inquiry_id,
                Answer {
                    outcome: answer.outcome,
                    fields,
                },
                Utc::now(),
            )
            .await
            .map_err(|error| match error {
                StoreError::NotFound => AnswerError::UnknownInquiry(inquiry_id),
                StoreError::Conflict(message) => AnswerError::NotPending(message),
                other => AnswerError::Store(other),
            })?;
        self.wake_delivery();
        Ok(given)
    }
}
