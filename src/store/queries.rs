//! Reading messages back: one inquiry with its answer, for operators, the synchronous path and
//! tests.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::outbound::ConfirmationRow;
use super::{Store, StoreError, parsed};
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::message::{AgreementRef, Confirmation, Direction, InquiryState, Subject};
use crate::domain::vocabulary::{AnswerOutcome, InquiryKind, Priority};

/// One inquiry as stored, in either direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InquiryRecord {
    /// Author-chosen id.
    pub message_id: Uuid,
    /// Outbound (we asked) or inbound (we were asked).
    pub direction: Direction,
    /// The other county.
    pub peer_county: CountyCode,
    /// Agreement id.
    pub agreement_id: String,
    /// Agreement hash.
    pub agreement_hash: String,
    /// Inquiry kind.
    pub kind: InquiryKind,
    /// Priority.
    pub priority: Priority,
    /// Queued, pending, answered or rejected.
    pub state: InquiryState,
    /// When it was written here.
    pub created_at: DateTime<Utc>,
    /// When the responder accepted it.
    pub received_at: Option<DateTime<Utc>>,
    /// Reply deadline.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// The answer's outcome.
    pub outcome: Option<AnswerOutcome>,
    /// Why the responder refused it.
    pub reject_reason: Option<String>,
    /// When it was first seen past due.
    pub overdue_at: Option<DateTime<Utc>>,
    /// The subject's ID number with its middle masked, safe to show in lists and logs.
    pub subject_masked: String,
    /// The township office the inquiry belongs to: the one that asked it at its window, or else
    /// the township responsible for the subject in our registry, if we know the person.
    pub township: Option<TownshipCode>,
}

/// [`InquiryRecord`] as the database returns it, before its names and codes are parsed.
#[derive(sqlx::FromRow)]
struct InquiryRecordRow {
    message_id: Uuid,
    direction: String,
    peer_county: String,
    agreement_id: String,
    agreement_hash: String,
    kind: String,
    priority: String,
    state: String,
    created_at: DateTime<Utc>,
    received_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    answered_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
    reject_reason: Option<String>,
    overdue_at: Option<DateTime<Utc>>,
    subject_masked: String,
    township: Option<String>,
}

impl TryFrom<InquiryRecordRow> for InquiryRecord {
    type Error = StoreError;

    fn try_from(row: InquiryRecordRow) -> Result<Self, Self::Error> {
        Ok(InquiryRecord {
            message_id: row.message_id,
            direction: parsed(&row.direction)?,
            peer_county: parsed(&row.peer_county)?,
            agreement_id: row.agreement_id,
            agreement_hash: row.agreement_hash,
            kind: parsed(&row.kind)?,
            priority: parsed(&row.priority)?,
            state: parsed(&row.state)?,
            created_at: row.created_at,
            received_at: row.received_at,
            due_at: row.due_at,
            answered_at: row.answered_at,
            outcome: row.outcome.as_deref().map(parsed).transpose()?,
            reject_reason: row.reject_reason,
            overdue_at: row.overdue_at,
            subject_masked: row.subject_masked,
            township: row.township.as_deref().map(parsed).transpose()?,
        })
    }
}

impl InquiryRecord {
    /// The agreement it travels under.
    pub fn agreement(&self) -> AgreementRef {
        AgreementRef {
            id: self.agreement_id.clone(),
            hash: self.agreement_hash.clone(),
        }
    }
}

/// The columns of [`InquiryRecord`], over `inquiries i LEFT JOIN persons p`.
const INQUIRY_COLUMNS: &str =
    "i.message_id, i.direction, i.peer_county, i.agreement_id, i.agreement_hash, i.kind,
    i.priority, i.state, i.created_at, i.received_at, i.due_at, i.answered_at, i.outcome, i.reject_reason,
    i.overdue_at, coalesce(left(i.subject_id, 4) || '**********' || right(i.subject_id, 4), '[erased]')
        AS subject_masked,
    COALESCE(i.asked_by_township, p.township) AS township";

/// The work queue's query ([`Store::pending_inquiries`]): $1 outbound, $2 overdue only, $3
/// township, $4 kind, $5 limit, $6 now.
///
/// Overdue first, then by deadline, is the deadline's own order (every overdue deadline is
/// earlier than every other), so that the queue is read in index order
/// (`inquiries_inbound_pending_due`, `inquiries_outbound_open_due`) and stops at the limit
/// instead of sorting every waiting inquiry. Each direction has its own text, so that the
/// planner sees which partial index applies whatever the parameters.
pub(super) fn pending_sql(outbound: bool) -> String {
    let which = if outbound {
        "$1 AND i.direction = 'outbound' AND i.state IN ('queued', 'pending')"
    } else {
        "NOT $1 AND i.direction = 'inbound' AND i.state = 'pending'"
    };
    format!(
        "SELECT {INQUIRY_COLUMNS} FROM inquiries i LEFT JOIN persons p ON p.resident_id = i.subject_id
         WHERE {which}
           AND (NOT $2 OR i.due_at < $6)
           AND ($3::text IS NULL OR COALESCE(i.asked_by_township, p.township) = $3)
           AND ($4::text IS NULL OR i.kind = $4)
         ORDER BY i.due_at ASC NULLS LAST, i.created_at
         LIMIT $5"
    )
}

/// The deadlines worker's query ([`Store::flag_overdue`]): $1 now.
/// Both directions are named (all there are) so that the planner reads the two deadline-ordered
/// work-queue indexes, one per direction, together.
pub(super) const FLAG_OVERDUE_SQL: &str = "UPDATE inquiries SET overdue_at = $1
             WHERE state = 'pending' AND (direction = 'inbound' OR direction = 'outbound')
               AND due_at < $1 AND overdue_at IS NULL
             RETURNING message_id, direction, peer_county, kind";

/// What happened to an inquiry and its answer, and where its delivery stands.
#[derive(Clone, Debug)]
pub struct InquiryHistory {
    /// Every record, oldest first: received, answered, delivered, each failed attempt.
    pub history: Vec<HistoryEntry>,
    /// Delivery attempts so far of what is still owed (inquiry or answer).
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due, while something is still owed.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Which inquiries a pending list shows.
#[derive(Clone, Debug, Default)]
pub struct PendingFilter {
    /// What we wait for from others, instead of what others wait for from us.
    pub outbound: bool,
    /// Only those past their deadline.
    pub overdue_only: bool,
    /// Only subjects of this township (from our registry).
    pub township: Option<TownshipCode>,
    /// Only this inquiry kind.
    pub kind: Option<InquiryKind>,
    /// At most this many.
    pub limit: i64,
}

/// An audit record as the history reads it: when, outcome, reason, direction.
type AuditLine = (DateTime<Utc>, String, Option<String>, Option<String>);

/// One step in a message's life, from the audit log and the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened (`accepted`, `answered`, `delivered`, `rejected`, `overdue`, ...).
    pub what: String,
    /// Details: the other message involved, or the reason.
    pub detail: String,
}

impl Store {
    /// Inquiries waiting for an answer, overdue first, then by deadline.
    pub async fn pending_inquiries(
        &self,
        filter: &PendingFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<InquiryRecord>, StoreError> {
        let rows: Vec<InquiryRecordRow> = sqlx::query_as(&pending_sql(filter.outbound))
            .bind(filter.outbound)
            .bind(filter.overdue_only)
            .bind(filter.township.as_ref().map(TownshipCode::as_str))
            .bind(filter.kind.map(InquiryKind::as_str))
            .bind(filter.limit)
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(InquiryRecord::try_from).collect()
    }

    /// A sweep's inquiries, oldest first, at most `limit`.
    pub async fn sweep_records(&self, sweep_key: &str, limit: i64) -> Result<Vec<InquiryRecord>, StoreError> {
        let rows: Vec<InquiryRecordRow> = sqlx::query_as(&format!(
            "SELECT {INQUIRY_COLUMNS} FROM inquiries i LEFT JOIN persons p ON p.resident_id = i.subject_id
             WHERE i.sweep_key = $1
             ORDER BY i.created_at, i.message_id
             LIMIT $2"
        ))
        .bind(sweep_key)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(InquiryRecord::try_from).collect()
    }

    /// The subject as the inquiry names it (the full ID number and the certificate number
    /// shown, if any), for this node's own operator; `None` once erased at the end of the
    /// agreed retention period.
    pub async fn inquiry_subject(&self, message_id: Uuid) -> Result<Option<Subject>, StoreError> {
        let subject: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT subject_id, subject_certificate FROM inquiries
                 WHERE message_id = $1 AND subject_id IS NOT NULL",
        )
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        subject
            .map(|(id, certificate_number)| {
                Ok(Subject {
                    resident_id: parsed(&id)?,
                    certificate_number,
                })
            })
            .transpose()
    }

    /// What happened to an inquiry and its answer (not who looked at it: operator access
    /// records are left out), oldest first, and its delivery attempts so
    /// far with the last error (inquiry or answer still in the outbox).
    pub async fn inquiry_history(&self, message_id: Uuid) -> Result<InquiryHistory, StoreError> {
        let rows: Vec<AuditLine> = sqlx::query_as(
            "SELECT a.at, a.outcome, a.reason, a.direction FROM audit_log a
             WHERE (a.message_id = $1
                    OR a.message_id IN (SELECT message_id FROM confirmations WHERE inquiry_id = $1))
               AND a.principal IS NULL
             ORDER BY a.id",
        )
        .bind(message_id)
        .fetch_all(self.pool())
        .await?;
        let history = rows
            .into_iter()
            .map(|(at, what, reason, direction)| HistoryEntry {
                at,
                what,
                detail: [direction, reason]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": "),
            })
            .collect();
        let outbox: Option<(i32, Option<String>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT attempts, last_error, next_attempt_at FROM outbox
             WHERE message_id = $1 OR message_id IN (SELECT message_id FROM confirmations WHERE inquiry_id = $1)
             LIMIT 1",
        )
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match outbox {
            Some((attempts, last_error, next_attempt_at)) => InquiryHistory {
                history,
                attempts,
                last_error,
                next_attempt_at: Some(next_attempt_at),
            },
            None => InquiryHistory {
                history,
                attempts: 0,
                last_error: None,
                next_attempt_at: None,
            },
        })
    }

    /// One inquiry by id.
    pub async fn inquiry(&self, message_id: Uuid) -> Result<Option<InquiryRecord>, StoreError> {
        let row: Option<InquiryRecordRow> = sqlx::query_as(&format!(
            "SELECT {INQUIRY_COLUMNS} FROM inquiries i LEFT JOIN persons p ON p.resident_id = i.subject_id
             WHERE i.message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(InquiryRecord::try_from).transpose()
    }

    /// The confirmation for an inquiry, in either direction.
    pub async fn confirmation_for(&self, inquiry_id: Uuid) -> Result<Option<Confirmation>, StoreError> {
        let row: Option<ConfirmationRow> = sqlx::query_as(
            "SELECT message_id, inquiry_id, agreement_id, agreement_hash, outcome, fields, created_at
             FROM confirmations WHERE inquiry_id = $1",
        )
        .bind(inquiry_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(ConfirmationRow::into_domain).transpose()
    }

    /// Counts of inquiries by direction and state, for summaries and tests.
    pub async fn inquiry_counts(&self) -> Result<Vec<(Direction, InquiryState, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT direction, state, count(*) FROM inquiries GROUP BY direction, state ORDER BY direction, state",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(direction, state, count)| Ok((parsed(&direction)?, parsed(&state)?, count)))
            .collect()
    }

    /// A sweep's inquiries counted by state and by outcome.
    pub async fn sweep_counts(
        &self,
        sweep_key: &str,
    ) -> Result<Vec<(InquiryState, Option<AnswerOutcome>, i64)>, StoreError> {
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT state, outcome, count(*) FROM inquiries WHERE sweep_key = $1 GROUP BY state, outcome",
        )
        .bind(sweep_key)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(state, outcome, count)| {
                Ok((
                    parsed(&state)?,
                    outcome.as_deref().map(parsed).transpose()?,
                    count,
                ))
            })
            .collect()
    }

    /// Outbox entries still waiting, per peer.
    pub async fn outbox_depth(&self) -> Result<Vec<(CountyCode, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT peer_county, count(*) FROM outbox GROUP BY peer_county ORDER BY peer_county",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(peer, count)| Ok((parsed(&peer)?, count)))
            .collect()
    }

    /// Marks pending inquiries past their deadline as overdue (once), with an audit record
    /// each. Returns how many were newly flagged.
    pub async fn flag_overdue(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let flagged: Vec<(Uuid, String, String, String)> = sqlx::query_as(FLAG_OVERDUE_SQL)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let audit: Vec<super::audit::AuditEntry> = flagged
            .iter()
            .map(|(id, direction, peer, kind)| super::audit::AuditEntry {
                peer_county: Some(peer.clone()),
                direction: direction.clone(),
                message_id: Some(*id),
                kind: Some(kind.clone()),
                outcome: "overdue".into(),
                reason: Some(
                    if direction == "inbound" {
                        "our answer is overdue"
                    } else {
                        "the peer's answer is overdue"
                    }
                    .into(),
                ),
                ..Default::default()
            })
            .collect();
        super::audit_batch_in(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(flagged.len() as u64)
    }
}
