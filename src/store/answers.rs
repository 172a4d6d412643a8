//! Answering inquiries we received: automatically from the registry, or by an operator. Each
//! answer writes the confirmation, its outbox entry, the inquiry's new state and an audit record
//! in one transaction, and an answered inquiry can never be answered again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::AuditEntry;
use super::outbound::{InquiryRow, MessageType};
use super::registry::persons_by_id_in;
use super::{Store, StoreError, audit_batch_in, parsed};
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Confirmation, InquiryState, Subject};
use crate::domain::person::Person;
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{AnswerOutcome, InquiryKind, StatusValues};

/// An inbound inquiry waiting for the auto-answer worker.
#[derive(Clone, Debug)]
pub struct WaitingInquiry {
    /// The inquiry's id.
    pub message_id: Uuid,
    /// Who asked.
    pub peer_county: CountyCode,
    /// Under which agreement version.
    pub agreement: AgreementRef,
    /// What was asked.
    pub kind: InquiryKind,
    /// About whom.
    pub subject: Subject,
}

/// The answer to give, decided outside the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Found, not found, ambiguous or refused.
    pub outcome: AnswerOutcome,
    /// Already filtered to the agreement's fields for this direction.
    pub fields: StatusValues,
}

/// An answer that was committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenAnswer {
    /// To whom the confirmation goes.
    pub peer_county: CountyCode,
    /// The confirmation written: its id, the inquiry it answers, what it says, and when.
    pub confirmation: Confirmation,
}

/// The confirmation an answer writes, as [`AnswerBatch::write`] stores it at `now`.
fn confirmation_of(
    inquiry_id: Uuid,
    confirmation_id: Uuid,
    agreement: &AgreementRef,
    answer: &Answer,
    now: DateTime<Utc>,
) -> Confirmation {
    Confirmation {
        message_id: confirmation_id,
        inquiry_id,
        agreement: agreement.clone(),
        outcome: answer.outcome,
        fields: answer.fields.clone(),
        answered_at: now,
    }
}

impl Store {
    /// Claims up to `limit` inbound inquiries the auto-answer worker has not looked at (only
    /// `only`, when given), loads the registry entries for their subjects, and asks `decide` for
    /// each: `Some(answer)` answers it, `None` leaves it pending for an operator. Everything is
    /// one transaction; concurrent callers skip each other's rows.
    pub async fn auto_answer<F>(
        &self,
        limit: i64,
        only: Option<Uuid>,
        now: DateTime<Utc>,
        decide: F,
    ) -> Result<Vec<GivenAnswer>, StoreError>
    where
        F: Fn(&WaitingInquiry, Option<&Person>) -> Option<Answer>,
    {
        let mut tx = self.pool().begin().await?;
        let answered = auto_answer_in(&mut tx, limit, only, now, decide).await?;
        tx.commit().await?;
        Ok(answered)
    }
}

/// [`Store::auto_answer`] inside the caller's transaction.
pub(crate) async fn auto_answer_in<F>(
    tx: &mut sqlx::PgConnection,
    limit: i64,
    only: Option<Uuid>,
    now: DateTime<Utc>,
    decide: F,
) -> Result<Vec<GivenAnswer>, StoreError>
where
    F: Fn(&WaitingInquiry, Option<&Person>) -> Option<Answer>,
{
    let rows: Vec<InquiryRow> = sqlx::query_as(
            "SELECT message_id, peer_county, agreement_id, agreement_hash, kind, priority, subject_id, subject_certificate
             FROM inquiries
             WHERE direction = 'inbound' AND state = 'pending' AND NOT auto_checked
               AND ($2::uuid IS NULL OR message_id = $2)
             ORDER BY created_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .bind(only)
        .fetch_all(&mut *tx)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut waiting = Vec::with_capacity(rows.len());
    for row in rows {
        let peer_county = parsed(&row.peer_county)?;
        let inquiry = row.into_inquiry()?;
        waiting.push(WaitingInquiry {
            message_id: inquiry.message_id,
            peer_county,
            agreement: inquiry.agreement,
            kind: inquiry.kind,
            subject: inquiry.subject,
        });
    }
    let ids: Vec<String> = waiting
        .iter()
        .map(|w| w.subject.resident_id.as_str().to_string())
        .collect();
    let registered: HashMap<ResidentId, Person> = persons_by_id_in(&mut *tx, &ids)
        .await?
        .into_iter()
        .map(|person| (person.resident_id.clone(), person))
        .collect();

    let mut answered = Vec::new();
    let mut batch = AnswerBatch::default();
    for inquiry in &waiting {
        if let Some(answer) = decide(inquiry, registered.get(&inquiry.subject.resident_id)) {
            let confirmation = batch.answer(
                inquiry.message_id,
                inquiry.peer_county,
                &inquiry.agreement,
                inquiry.kind.as_str(),
                answer,
                now,
            );
            answered.push(GivenAnswer {
                peer_county: inquiry.peer_county,
                confirmation,
            });
        }
    }
    batch
        .write(
            &mut *tx,
            "automatic",
            now,
            InquiryRows::MarkAnswered { checked: true },
            None,
        )
        .await?;
    // The answered ones were marked checked as they were answered (one row version each,
    // not two); the rest stay pending for an operator.
    let answered_ids: std::collections::HashSet<Uuid> =
        answered.iter().map(|a| a.confirmation.inquiry_id).collect();
    let left_pending: Vec<Uuid> = waiting
        .iter()
        .map(|w| w.message_id)
        .filter(|id| !answered_ids.contains(id))
        .collect();
    if !left_pending.is_empty() {
        sqlx::query("UPDATE inquiries SET auto_checked = true WHERE message_id = ANY($1)")
            .bind(&left_pending)
            .execute(&mut *tx)
            .await?;
    }
    Ok(answered)
}

impl Store {
    /// Answers one inbound inquiry by hand. Fails with [`StoreError::NotFound`] for an unknown
    /// inquiry and [`StoreError::Conflict`] for one already answered.
    pub async fn answer_by_operator(
        &self,
        inquiry_id: Uuid,
        answer: Answer,
        now: DateTime<Utc>,
    ) -> Result<GivenAnswer, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row: Option<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT peer_county, agreement_id, agreement_hash, kind, state FROM inquiries
             WHERE message_id = $1 AND direction = 'inbound' FOR UPDATE",
        )
        .bind(inquiry_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((peer_county, agreement_id, hash, kind, state)) = row else {
            return Err(StoreError::NotFound);
        };
        let state: InquiryState = parsed(&state)?;
        if state != InquiryState::Pending {
            return Err(StoreError::Conflict(format!("inquiry is {state}, not pending")));
        }
        let peer_county: CountyCode = parsed(&peer_county)?;
        let mut batch = AnswerBatch::default();
        let agreement = AgreementRef {
            id: agreement_id,
            hash,
        };
        let confirmation = batch.answer(inquiry_id, peer_county, &agreement, &kind, answer, now);
        batch
            .write(
                &mut tx,
                "operator",
                now,
                InquiryRows::MarkAnswered { checked: false },
                None,
            )
            .await?;
        tx.commit().await?;
        Ok(GivenAnswer {
            peer_county,
            confirmation,
        })
    }
}

/// What writing answers does to the inquiries they answer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InquiryRows {
    /// Marks them answered (and, with `checked`, as seen by the auto-answer worker), in one
    /// row update.
    MarkAnswered {
        /// Whether the update also marks them as seen by the auto-answer worker.
        checked: bool,
    },
    /// Nothing: they were written answered by the statement that stored them, in the same
    /// transaction (one row version, not two).
    AlreadyAnswered,
}

/// Answers collected for one transaction, written with a few array statements.
#[derive(Default)]
pub(crate) struct AnswerBatch {
    confirmation_ids: Vec<Uuid>,
    inquiry_ids: Vec<Uuid>,
    peers: Vec<String>,
    agreement_ids: Vec<String>,
    agreement_hashes: Vec<String>,
    outcomes: Vec<&'static str>,
    fields: Vec<serde_json::Value>,
    audit: Vec<AuditEntry>,
}

impl AnswerBatch {
    /// Adds `answer` to one inbound inquiry under a new confirmation id, and returns the
    /// confirmation as [`write`](Self::write) stores it at `now`.
    pub(crate) fn answer(
        &mut self,
        inquiry_id: Uuid,
        peer_county: CountyCode,
        agreement: &AgreementRef,
        kind: &str,
        answer: Answer,
        now: DateTime<Utc>,
    ) -> Confirmation {
        let confirmation_id = Uuid::now_v7();
        let confirmation = confirmation_of(inquiry_id, confirmation_id, agreement, &answer, now);
        self.push(inquiry_id, peer_county, agreement, kind, confirmation_id, answer);
        confirmation
    }

    /// Adds the answer to one inbound inquiry, with its confirmation's id.
    pub(crate) fn push(
        &mut self,
        inquiry_id: Uuid,
        peer_county: CountyCode,
        agreement: &AgreementRef,
        kind: &str,
        confirmation_id: Uuid,
        answer: Answer,
    ) {
        self.confirmation_ids.push(confirmation_id);
        self.inquiry_ids.push(inquiry_id);
        self.peers.push(peer_county.as_str().to_string());
        self.agreement_ids.push(agreement.id.clone());
        self.agreement_hashes.push(agreement.hash.clone());
        self.outcomes.push(answer.outcome.as_str());
        self.fields
            .push(serde_json::to_value(&answer.fields).unwrap_or_default());
        self.audit.push(AuditEntry {
            peer_county: Some(peer_county.to_string()),
            direction: "outbound".into(),
            message_id: Some(inquiry_id),
            kind: Some(kind.to_string()),
            agreement_id: Some(agreement.id.clone()),
            agreement_hash: Some(agreement.hash.clone()),
            outcome: "answered".into(),
            reason: Some(format!(
                "{} (confirmation {confirmation_id})",
                answer.outcome.as_str()
            )),
        });
    }

    /// Writes the answers, with what they do to the inquiries' rows. The answers' outbox
    /// entries come due at `deliver_after` when given (an answer given inline stays owed until
    /// the asker says it stored it), otherwise at once.
    pub(crate) async fn write(
        self,
        connection: &mut sqlx::PgConnection,
        answered_by: &str,
        now: DateTime<Utc>,
        rows: InquiryRows,
        deliver_after: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        if self.confirmation_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO confirmations (message_id, inquiry_id, direction, peer_county, agreement_id, agreement_hash,
                                        outcome, fields, answered_by, created_at)
             SELECT id, inquiry_id, 'outbound', peer, agreement_id, agreement_hash, outcome, fields, $8, $9
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
                  AS t(id, inquiry_id, peer, agreement_id, agreement_hash, outcome, fields)",
        )
        .bind(&self.confirmation_ids)
        .bind(&self.inquiry_ids)
        .bind(&self.peers)
        .bind(&self.agreement_ids)
        .bind(&self.agreement_hashes)
        .bind(&self.outcomes)
        .bind(&self.fields)
        .bind(answered_by)
        .bind(now)
        .execute(&mut *connection)
        .await?;
        if let InquiryRows::MarkAnswered { checked } = rows {
            sqlx::query(
                "UPDATE inquiries i SET state = 'answered', outcome = t.outcome, answered_at = $3,
                        auto_checked = i.auto_checked OR $4
                 FROM UNNEST($1::uuid[], $2::text[]) AS t(id, outcome) WHERE i.message_id = t.id",
            )
            .bind(&self.inquiry_ids)
            .bind(&self.outcomes)
            .bind(now)
            .bind(checked)
            .execute(&mut *connection)
            .await?;
        }
        sqlx::query(
            "INSERT INTO outbox (message_id, message_type, peer_county, next_attempt_at)
             SELECT id, $3, peer, coalesce($4, now()) FROM UNNEST($1::uuid[], $2::text[]) AS t(id, peer)",
        )
        .bind(&self.confirmation_ids)
        .bind(&self.peers)
        .bind(MessageType::Confirmation.as_str())
        .bind(deliver_after)
        .execute(&mut *connection)
        .await?;
        audit_batch_in(connection, &self.audit).await
    }
}
