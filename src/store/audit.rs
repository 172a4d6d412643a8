//! The append-only audit log: who sent what under which agreement, and what became of it.
//!
//! Records name messages by id; they never carry a resident ID number: every write passes the
//! no-echo rule of [`crate::domain::privacy`] (names that look like one are dropped, reasons
//! have them withheld). The table refuses UPDATE, DELETE and TRUNCATE (see the migration).
//! Operator actions are records too ([`OperatorAccess`]): who (the principal and its scope) did
//! what (the action, the message by id, or counts) and how it ended — again never a resident ID
//! number.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::division::CountyCode;
use crate::domain::message::AgreementRef;
use crate::domain::privacy::{holds_id_number, without_id_numbers};

/// One audit record as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditEntry {
    /// The peer county, when it was identified from its certificate.
    pub peer_county: Option<String>,
    /// `inbound`, `outbound` or `local` (an operator action).
    pub direction: String,
    /// The message concerned, if any.
    pub message_id: Option<Uuid>,
    /// Inquiry or notice kind, as named on the wire.
    pub kind: Option<String>,
    /// The agreement the message named.
    pub agreement_id: Option<String>,
    /// The agreement hash the message named.
    pub agreement_hash: Option<String>,
    /// What happened: `accepted`, `rejected`, `answered`, `delivered`, ...
    pub outcome: String,
    /// Why, for rejections; never a person's data.
    pub reason: Option<String>,
}

/// One audit record as read back, with its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// What was written.
    pub entry: AuditEntry,
}

impl AuditEntry {
    /// Something a peer sent refused on receipt: a message, a whole batch, a stream or a
    /// connection. `peer` is `None` when no certificate identified it; `reason` is the refusal
    /// as `CODE: why`, never a person's data. Name what was refused with [`AuditEntry::message`],
    /// [`AuditEntry::kind`] and [`AuditEntry::under`].
    pub fn inbound_rejected(peer: Option<CountyCode>, reason: impl Into<String>) -> AuditEntry {
        AuditEntry::inbound(peer, "rejected", Some(reason.into()))
    }

    /// What became of something a peer sent (`accepted`, `rejected`, ...), with the refusal as
    /// `CODE: why` when it was refused. Name the message with [`AuditEntry::message`],
    /// [`AuditEntry::kind`] and [`AuditEntry::under`].
    pub fn inbound(peer: Option<CountyCode>, outcome: &str, reason: Option<String>) -> AuditEntry {
        AuditEntry {
            peer_county: peer.map(|county| county.to_string()),
            direction: "inbound".into(),
            outcome: outcome.into(),
            reason,
            ..AuditEntry::default()
        }
    }

    /// The message concerned, when its id could be read.
    pub fn message(self, message_id: Option<Uuid>) -> AuditEntry {
        AuditEntry { message_id, ..self }
    }

    /// What was refused: a message kind as named on the wire, or a batch (`inquiry_batch`).
    pub fn kind(self, kind: Option<&str>) -> AuditEntry {
        AuditEntry {
            kind: kind.map(String::from),
            ..self
        }
    }

    /// The agreement version the refused message named.
    pub fn under(self, agreement: &AgreementRef) -> AuditEntry {
        AuditEntry {
            agreement_id: Some(agreement.id.clone()),
            agreement_hash: Some(agreement.hash.clone()),
            ..self
        }
    }
}

/// One operator action on the audit log: who did what, and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorAccess {
    /// The principal's name: the operator's from its certificate, or `loopback`.
    pub principal: String,
    /// Its scope: `county:<code>` or `township:<code>`.
    pub scope: String,
    /// The operator action (`show_inquiry`, `answer`, ...).
    pub action: String,
    /// The message concerned, if any.
    pub message_id: Option<Uuid>,
    /// The other county concerned, if any (the county asked, the county that asked).
    pub peer_county: Option<String>,
    /// Inquiry kind, for inquiries.
    pub kind: Option<String>,
    /// What happened: `read`, `listed`, `asked`, `answered`, `imported`, `refused`, ...
    pub outcome: String,
    /// Counts, or the refusal as `CODE: why`; never a person's data.
    pub reason: Option<String>,
}

/// An operator access record as read back, with its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAccessRecord {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// What was written.
    pub access: OperatorAccess,
}

impl Store {
    /// Appends one operator access record.
    pub async fn append_operator_access(&self, access: &OperatorAccess) -> Result<(), StoreError> {
        let mut connection = self.pool().acquire().await?;
        append_operator_access_in(&mut connection, access).await
    }

    /// The most recent operator access records, newest first.
    pub async fn recent_operator_access(&self, limit: i64) -> Result<Vec<OperatorAccessRecord>, StoreError> {
        let rows: Vec<OperatorAccessRow> = sqlx::query_as(
            "SELECT at, principal, principal_scope, action, message_id, peer_county, kind, outcome, reason
             FROM audit_log WHERE principal IS NOT NULL ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| OperatorAccessRecord {
                at: row.at,
                access: OperatorAccess {
                    principal: row.principal,
                    scope: row.principal_scope,
                    action: row.action.unwrap_or_default(),
                    message_id: row.message_id,
                    peer_county: row.peer_county,
                    kind: row.kind,
                    outcome: row.outcome,
                    reason: row.reason,
                },
            })
            .collect())
    }

    /// Appends one record, on its own.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut connection = self.pool().acquire().await?;
        append_audit_in(&mut connection, entry).await
    }

    /// Appends many records in one statement.
    pub async fn append_audit_batch(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let mut connection = self.pool().acquire().await?;
        audit_batch_in(&mut connection, entries).await
    }

    /// The most recent records, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, peer_county, direction, message_id, kind, agreement_id, agreement_hash, outcome, reason
             FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }
}

/// A name a record quotes from a message (kind, agreement id, hash), or nothing when it looks
/// like an ID number: a refused message may have put anything there (the no-echo rule,
/// [`crate::domain::privacy`]).
fn named(value: &Option<String>) -> Option<String> {
    value.clone().filter(|value| !holds_id_number(value))
}

/// A reason as recorded: anything that looks like an ID number withheld.
fn said(reason: &Option<String>) -> Option<String> {
    reason
        .as_deref()
        .map(|reason| without_id_numbers(reason).into_owned())
}

/// Appends one operator access record inside the caller's transaction, so it commits with the
/// change it describes.
pub async fn append_operator_access_in(
    connection: &mut sqlx::PgConnection,
    access: &OperatorAccess,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (direction, principal, principal_scope, action, message_id, peer_county, kind, outcome, reason)
         VALUES ('local', $1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&access.principal)
    .bind(&access.scope)
    .bind(&access.action)
    .bind(access.message_id)
    .bind(&access.peer_county)
    .bind(named(&access.kind))
    .bind(&access.outcome)
    .bind(said(&access.reason))
    .execute(connection)
    .await?;
    Ok(())
}

/// Appends one record inside the caller's transaction, so it commits with what it describes.
pub async fn append_audit_in(
    connection: &mut sqlx::PgConnection,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (peer_county, direction, message_id, kind, agreement_id, agreement_hash, outcome, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&entry.peer_county)
    .bind(&entry.direction)
    .bind(entry.message_id)
    .bind(named(&entry.kind))
    .bind(named(&entry.agreement_id))
    .bind(named(&entry.agreement_hash))
    .bind(&entry.outcome)
    .bind(said(&entry.reason))
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct OperatorAccessRow {
    at: DateTime<Utc>,
    principal: String,
    principal_scope: String,
    action: Option<String>,
    message_id: Option<Uuid>,
    peer_county: Option<String>,
    kind: Option<String>,
    outcome: String,
    reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: DateTime<Utc>,
    peer_county: Option<String>,
    direction: String,
    message_id: Option<Uuid>,
    kind: Option<String>,
    agreement_id: Option<String>,
    agreement_hash: Option<String>,
    outcome: String,
    reason: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        AuditRecord {
            at: row.at,
            entry: AuditEntry {
                peer_county: row.peer_county,
                direction: row.direction,
                message_id: row.message_id,
                kind: row.kind,
                agreement_id: row.agreement_id,
                agreement_hash: row.agreement_hash,
                outcome: row.outcome,
                reason: row.reason,
            },
        }
    }
}

/// Appends many records in one statement inside the caller's transaction.
pub async fn audit_batch_in(
    connection: &mut sqlx::PgConnection,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&AuditEntry) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO audit_log (peer_county, direction, message_id, kind, agreement_id, agreement_hash, outcome, reason)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])",
    )
    .bind(column(|e| e.peer_county.clone()))
    .bind(entries.iter().map(|e| e.direction.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.message_id).collect::<Vec<_>>())
    .bind(column(|e| named(&e.kind)))
    .bind(column(|e| named(&e.agreement_id)))
    .bind(column(|e| named(&e.agreement_hash)))
    .bind(entries.iter().map(|e| e.outcome.clone()).collect::<Vec<_>>())
    .bind(column(|e| said(&e.reason)))
    .execute(connection)
    .await?;
    Ok(())
}
