//! What a received notice did at the origin (`notice_effects`) and the registry's history
//! (`registry_history`, written by the `persons_history` trigger of migration 0012 from the
//! source each writing transaction names).
//!
//! A notice's effect is settled in the transaction that stores it: applied at once when the
//! agreement says `apply` and the registry can take it, or left pending for an operator. An
//! operator's apply or dismiss locks the pending row, so a notice is applied at most once.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::registry::{PERSON_COLUMNS, PersonRow};
use super::{Store, StoreError};
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::message::Notice;
use crate::domain::notice_effect::{NotApplicable, ReceivedNotice, fields_from_json, registry_update};
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{NoticeEffect, NoticeKind};

/// Where a received notice's effect stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectState {
    /// Waits for an operator.
    Pending,
    /// The registry took it.
    Applied,
    /// An operator looked at it and did not apply it.
    Dismissed,
}

impl EffectState {
    /// The name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            EffectState::Pending => "pending",
            EffectState::Applied => "applied",
            EffectState::Dismissed => "dismissed",
        }
    }

    fn parse(name: &str) -> Result<EffectState, StoreError> {
        match name {
            "pending" => Ok(EffectState::Pending),
            "applied" => Ok(EffectState::Applied),
            "dismissed" => Ok(EffectState::Dismissed),
            other => Err(StoreError::Corrupt(format!("notice effect state {other}"))),
        }
    }
}

/// What an operator's apply or dismiss came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EffectOutcome {
    /// Done now: the registry columns the notice changed (none for dismiss, or when the
    /// registry already held what it tells).
    Done {
        /// The columns changed, as the history names them.
        changed: Vec<String>,
    },
    /// Settled before: nothing changed now.
    AlreadySettled {
        /// Applied or dismissed.
        state: EffectState,
        /// When.
        at: DateTime<Utc>,
        /// By whom; `None` when applied at receipt.
        by: Option<String>,
    },
    /// The registry cannot take it (why, naming no person): it stays pending.
    NotApplicable(NotApplicable),
    /// Its content was erased at the end of the agreed retention period: it can only be
    /// dismissed.
    Erased,
    /// No notice with this id was received.
    Unknown,
}

/// One received notice as the operator's list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedNoticeRecord {
    /// The notice.
    pub message_id: Uuid,
    /// Who sent it.
    pub peer_county: String,
    /// What happened.
    pub kind: NoticeKind,
    /// The ID number with its middle masked, or `[erased]`.
    pub subject_masked: String,
    /// The person's township in our registry, when she is in it.
    pub township: Option<TownshipCode>,
    /// The day it happened, if the sender said.
    pub occurred_on: Option<NaiveDate>,
    /// When we received it.
    pub received_at: Option<DateTime<Utc>>,
    /// When our feedback is due, for kinds that need it.
    pub feedback_due_at: Option<DateTime<Utc>>,
    /// What the agreement said it does.
    pub effect: NoticeEffect,
    /// Where it stands.
    pub state: EffectState,
    /// Why it waits, or why it was dismissed.
    pub note: Option<String>,
    /// The registry columns it changed.
    pub changed: Vec<String>,
    /// When it was applied or dismissed.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who applied or dismissed it; `None` when applied at receipt.
    pub decided_by: Option<String>,
}

/// One change of a registry entry.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RegistryChange {
    /// When.
    pub changed_at: DateTime<Utc>,
    /// The column.
    pub field: String,
    /// Its value before, as text.
    pub old_value: Option<String>,
    /// Its value after, as text.
    pub new_value: Option<String>,
    /// `import`, `notice`, `operator` or `database`.
    pub source: String,
    /// The notice, when one made the change.
    pub message_id: Option<Uuid>,
    /// The operator, when one made the change.
    pub changed_by: Option<String>,
}

/// Which received notices a list shows.
#[derive(Clone, Debug, Default)]
pub struct NoticeFilter {
    /// Only those waiting for an operator (oldest first); otherwise all, newest first.
    pub pending_only: bool,
    /// Only persons of this township (from our registry).
    pub township: Option<TownshipCode>,
    /// At most this many.
    pub limit: i64,
}

/// Names the source of the registry changes the rest of the transaction makes, for the
/// history trigger.
pub(super) async fn name_change_source_in(
    connection: &mut PgConnection,
    source: &str,
    message_id: Option<Uuid>,
    by: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT set_config('hancha.change_source', $1, true),
                set_config('hancha.change_message_id', $2, true),
                set_config('hancha.change_by', $3, true)",
    )
    .bind(source)
    .bind(message_id.map(|id| id.to_string()).unwrap_or_default())
    .bind(by.unwrap_or_default())
    .execute(connection)
    .await?;
    Ok(())
}

/// Settles, in the transaction that stores it, what the newly received `notice` does in the
/// registry of county `here`: applied at once under [`NoticeEffect::Apply`] when the registry
/// can take it, pending otherwise.
pub(super) async fn settle_received_in(
    connection: &mut PgConnection,
    notice: &Notice,
    effect: NoticeEffect,
    (sender, here): (CountyCode, CountyCode),
) -> Result<(), StoreError> {
    let (state, note, changed) = match effect {
        NoticeEffect::Operator => (EffectState::Pending, None, Vec::new()),
        NoticeEffect::Apply => {
            let body =
                serde_json::to_value(&notice.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let received = ReceivedNotice {
                kind: notice.kind,
                occurred_on: notice.occurred_on,
                fields: fields_from_json(&body),
                applied_for: Some(sender),
            };
            let subject = notice.subject.resident_id.as_str();
            match apply_in(connection, notice.message_id, &received, subject, here, None).await? {
                Ok(changed) => (EffectState::Applied, None, changed),
                Err(reason) => (EffectState::Pending, Some(reason.to_string()), Vec::new()),
            }
        }
    };
    sqlx::query(
        "INSERT INTO notice_effects (message_id, effect, state, note, changed, decided_at)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 = 'pending' THEN NULL ELSE now() END)",
    )
    .bind(notice.message_id)
    .bind(effect.as_str())
    .bind(state.as_str())
    .bind(note)
    .bind(&changed)
    .execute(connection)
    .await?;
    Ok(())
}

/// Applies `notice` (id `message_id`) to the registry entry of `subject`, locked: the columns
/// changed, or why the registry cannot take it (then nothing is written).
async fn apply_in(
    connection: &mut PgConnection,
    message_id: Uuid,
    notice: &ReceivedNotice,
    subject: &str,
    here: CountyCode,
    by: Option<&str>,
) -> Result<Result<Vec<String>, NotApplicable>, StoreError> {
    let row: Option<PersonRow> = sqlx::query_as(&format!(
        "SELECT {PERSON_COLUMNS} FROM persons WHERE resident_id = $1 FOR UPDATE"
    ))
    .bind(subject)
    .fetch_optional(&mut *connection)
    .await?;
    let person = row.map(PersonRow::into_domain).transpose()?;
    let update = match registry_update(notice, person.as_ref(), here) {
        Ok(update) => update,
        Err(reason) => return Ok(Err(reason)),
    };
    if update.changed.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    name_change_source_in(connection, "notice", Some(message_id), by).await?;
    let status = &update.person.status;
    sqlx::query(
        "UPDATE persons SET children_count = $2, contraception_status = $3, contraception_date = $4,
                pregnant = $5, residence_county = $6, updated_at = now(),
                -- the reconciliation digest covers these fields: recomputed before the next run
                shared_digest = NULL
          WHERE resident_id = $1",
    )
    .bind(subject)
    .bind(status.children_count.map(i16::from))
    .bind(status.contraception_status.map(|s| s.as_str()))
    .bind(status.contraception_date)
    .bind(status.pregnant)
    .bind(update.person.residence_county.as_str())
    .execute(&mut *connection)
    .await?;
    Ok(Ok(update.changed.iter().map(|c| (*c).to_owned()).collect()))
}

/// A received notice and its effect, as apply and dismiss read them (locked).
#[derive(sqlx::FromRow)]
struct EffectRow {
    state: String,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
    kind: String,
    subject_id: Option<String>,
    occurred_on: Option<NaiveDate>,
    body: serde_json::Value,
}

impl Store {
    /// Applies a pending received notice to the registry of county `here` by operator `by`:
    /// the registry and the history change with the notice's state, in one transaction.
    pub async fn apply_notice(
        &self,
        message_id: Uuid,
        here: CountyCode,
        by: &str,
    ) -> Result<EffectOutcome, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = match lock_effect_in(&mut tx, message_id).await? {
            Ok(row) => row,
            Err(outcome) => return Ok(outcome),
        };
        let Some(subject) = row.subject_id else {
            return Ok(EffectOutcome::Erased);
        };
        let notice = ReceivedNotice {
            kind: row
                .kind
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
            occurred_on: row.occurred_on,
            fields: fields_from_json(&row.body),
            applied_for: None,
        };
        let changed = match apply_in(&mut tx, message_id, &notice, &subject, here, Some(by)).await? {
            Ok(changed) => changed,
            Err(reason) => return Ok(EffectOutcome::NotApplicable(reason)),
        };
        sqlx::query(
            "UPDATE notice_effects SET state = 'applied', changed = $2, decided_at = now(), decided_by = $3
              WHERE message_id = $1",
        )
        .bind(message_id)
        .bind(&changed)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(EffectOutcome::Done { changed })
    }

    /// Records that operator `by` looked at a pending received notice and did not apply it,
    /// and why; the registry does not change.
    pub async fn dismiss_notice(
        &self,
        message_id: Uuid,
        by: &str,
        reason: &str,
    ) -> Result<EffectOutcome, StoreError> {
        let mut tx = self.pool().begin().await?;
        if let Err(outcome) = lock_effect_in(&mut tx, message_id).await? {
            return Ok(outcome);
        }
        sqlx::query(
            "UPDATE notice_effects SET state = 'dismissed', note = $2, decided_at = now(), decided_by = $3
              WHERE message_id = $1",
        )
        .bind(message_id)
        .bind(reason)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(EffectOutcome::Done { changed: Vec::new() })
    }

    /// Received notices and their effects.
    pub async fn received_notices(
        &self,
        filter: &NoticeFilter,
    ) -> Result<Vec<ReceivedNoticeRecord>, StoreError> {
        let rows: Vec<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM}
              WHERE (NOT $1 OR e.state = 'pending') AND ($2::text IS NULL OR p.township = $2)
              ORDER BY CASE WHEN $1 THEN n.acknowledged_at END ASC,
                       CASE WHEN NOT $1 THEN n.acknowledged_at END DESC, n.message_id
              LIMIT $3"
        ))
        .bind(filter.pending_only)
        .bind(filter.township.as_ref().map(TownshipCode::as_str))
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(RecordRow::into_record).collect()
    }

    /// One received notice and its effect.
    pub async fn received_notice(
        &self,
        message_id: Uuid,
    ) -> Result<Option<ReceivedNoticeRecord>, StoreError> {
        let row: Option<RecordRow> = sqlx::query_as(&format!(
            "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE n.message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(RecordRow::into_record).transpose()
    }

    /// Every recorded change of one registry entry, oldest first.
    pub async fn registry_history(
        &self,
        resident_id: &ResidentId,
    ) -> Result<Vec<RegistryChange>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT changed_at, field, old_value, new_value, source, message_id, changed_by
               FROM registry_history WHERE resident_id = $1 ORDER BY id",
        )
        .bind(resident_id.as_str())
        .fetch_all(self.pool())
        .await?)
    }
}

/// Locks a received notice's effect row: the row when it is pending, or what to answer.
async fn lock_effect_in(
    connection: &mut PgConnection,
    message_id: Uuid,
) -> Result<Result<EffectRow, EffectOutcome>, StoreError> {
    let row: Option<EffectRow> = sqlx::query_as(
        "SELECT e.state, e.decided_at, e.decided_by, n.kind, n.subject_id, n.occurred_on, n.body
           FROM notice_effects e JOIN notices n USING (message_id)
          WHERE e.message_id = $1 FOR UPDATE OF e",
    )
    .bind(message_id)
    .fetch_optional(connection)
    .await?;
    let Some(row) = row else {
        return Ok(Err(EffectOutcome::Unknown));
    };
    let state = EffectState::parse(&row.state)?;
    if state != EffectState::Pending {
        return Ok(Err(EffectOutcome::AlreadySettled {
            state,
            at: row
                .decided_at
                .ok_or_else(|| StoreError::Corrupt("a settled notice without its time".into()))?,
            by: row.decided_by,
        }));
    }
    Ok(Ok(row))
}

const RECORD_COLUMNS: &str = "n.message_id, n.peer_county, n.kind,
    coalesce(left(n.subject_id, 4) || '**********' || right(n.subject_id, 4), '[erased]') AS subject_masked,
    p.township, n.occurred_on, n.acknowledged_at, n.feedback_due_at,
    e.effect, e.state, e.note, e.changed, e.decided_at, e.decided_by";

const RECORD_FROM: &str = "notice_effects e JOIN notices n USING (message_id)
    LEFT JOIN persons p ON p.resident_id = n.subject_id";

#[derive(sqlx::FromRow)]
struct RecordRow {
    message_id: Uuid,
    peer_county: String,
    kind: String,
    subject_masked: String,
    township: Option<String>,
    occurred_on: Option<NaiveDate>,
    acknowledged_at: Option<DateTime<Utc>>,
    feedback_due_at: Option<DateTime<Utc>>,
    effect: String,
    state: String,
    note: Option<String>,
    changed: Vec<String>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
}

impl RecordRow {
    fn into_record(self) -> Result<ReceivedNoticeRecord, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(what);
        Ok(ReceivedNoticeRecord {
            message_id: self.message_id,
            peer_county: self.peer_county,
            kind: self.kind.parse().map_err(|e| corrupt(format!("{e}")))?,
            subject_masked: self.subject_masked,
            township: self
                .township
                .map(|t| t.parse())
                .transpose()
                .map_err(|e| corrupt(format!("{e}")))?,
            occurred_on: self.occurred_on,
            received_at: self.acknowledged_at,
            feedback_due_at: self.feedback_due_at,
            effect: self.effect.parse().map_err(|e| corrupt(format!("{e}")))?,
            state: EffectState::parse(&self.state)?,
            note: self.note,
            changed: self.changed,
            decided_at: self.decided_at,
            decided_by: self.decided_by,
        })
    }
}
