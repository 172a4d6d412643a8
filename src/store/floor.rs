//! The storage floor of `hancha bench exchange`: the least an audited exchange of inquiries can
//! durably write, written by PostgreSQL alone, so that the sweep can be compared with the limit
//! under it rather than with our own schema.
//!
//! What the floor writes, per inquiry, and why nothing less is durable and audited:
//!
//! - **the asker's message row**, with its delivery state, committed before the inquiry leaves
//!   (a crash after sending must not lose what was sent), with an audit row (`queued`);
//! - **the responder's message row with its answer**, committed before the responder
//!   acknowledges the inquiry (the acknowledgement promises the answer is kept), with an audit
//!   row for each message it accepted and wrote (`accepted`, `answered`);
//! - **the asker's update when the answer arrives**, committed before the asker acknowledges the
//!   answer (after which the responder stops sending it), with an audit row (`answer accepted`);
//! - **the responder's delivery mark**, committed when the asker's acknowledgement arrives (else
//!   the answer would be sent again forever), with an audit row (`delivered`).
//!
//! That is one message row per side, two updates, five audit rows, and two commits per batch
//! per side. The tables have only their primary keys; the audit rows are plain (the node's
//! audit chain, digests, indexes for the operator's queries, caps and leases are what the sweep
//! spends on top, and what the ratio to this floor measures). The tables live in their own
//! schema, `floor`, created by [`create`] in a database of the benchmark's own.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// One inquiry and its answer, as both sides of the floor write them.
#[derive(Clone, Debug)]
pub struct FloorMessage {
    /// The inquiry's id (the author's UUID).
    pub inquiry_id: Uuid,
    /// The answer's id.
    pub answer_id: Uuid,
    /// The agreement named.
    pub agreement_id: String,
    /// Its version's hash.
    pub agreement_hash: String,
    /// What is asked.
    pub kind: String,
    /// About whom.
    pub subject_id: String,
    /// The answer's outcome.
    pub outcome: String,
    /// The answer's fields, as JSON.
    pub fields: serde_json::Value,
}

/// Creates the floor's two tables in their own schema.
pub async fn create(connection: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    for statement in [
        "CREATE SCHEMA IF NOT EXISTS floor",
        "CREATE TABLE floor.messages (
             message_id      uuid PRIMARY KEY,
             peer_county     text NOT NULL,
             agreement_id    text NOT NULL,
             agreement_hash  text NOT NULL,
             kind            text NOT NULL,
             subject_id      text NOT NULL,
             state           text NOT NULL,
             created_at      timestamptz NOT NULL DEFAULT now(),
             due_at          timestamptz,
             answer_id       uuid,
             outcome         text,
             fields          jsonb,
             answered_at     timestamptz,
             delivered_at    timestamptz
         )",
        "CREATE TABLE floor.audit (
             id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             at           timestamptz NOT NULL DEFAULT now(),
             peer_county  text NOT NULL,
             direction    text NOT NULL,
             message_id   uuid NOT NULL,
             outcome      text NOT NULL
         )",
    ] {
        sqlx::query(statement).execute(&mut *connection).await?;
    }
    Ok(())
}

/// The asker, before its inquiries leave: their rows, queued, and one audit row each; committed.
pub async fn asker_queue(
    connection: &mut sqlx::PgConnection,
    peer: &str,
    batch: &[FloorMessage],
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
    sqlx::query(
        "WITH queued AS (
             INSERT INTO floor.messages (message_id, peer_county, agreement_id, agreement_hash, kind, subject_id, state)
             SELECT id, $2, agreement_id, agreement_hash, kind, subject_id, 'queued'
             FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
                  AS t(id, agreement_id, agreement_hash, kind, subject_id)
             RETURNING message_id)
         INSERT INTO floor.audit (peer_county, direction, message_id, outcome)
         SELECT $2, 'outbound', message_id, 'queued' FROM queued",
    )
    .bind(batch.iter().map(|m| m.inquiry_id).collect::<Vec<_>>())
    .bind(peer)
    .bind(batch.iter().map(|m| m.agreement_id.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.agreement_hash.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.subject_id.as_str()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The asker, when the answers arrive: each row answered, one audit row each; committed.
pub async fn asker_answered(
    connection: &mut sqlx::PgConnection,
    peer: &str,
    batch: &[FloorMessage],
    due_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
    sqlx::query(
        "WITH answered AS (
             UPDATE floor.messages m
             SET state = 'answered', due_at = $5, answer_id = t.answer_id, outcome = t.outcome,
                 fields = t.fields, answered_at = now()
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[]) AS t(id, answer_id, outcome, fields)
             WHERE m.message_id = t.id
             RETURNING t.answer_id)
         INSERT INTO floor.audit (peer_county, direction, message_id, outcome)
         SELECT $6, 'inbound', answer_id, 'accepted' FROM answered",
    )
    .bind(batch.iter().map(|m| m.inquiry_id).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.answer_id).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.outcome.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.fields.clone()).collect::<Vec<_>>())
    .bind(due_at)
    .bind(peer)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The responder, before acknowledging the inquiries: their rows with the answers, and an audit
/// row for each inquiry accepted and each answer written; committed.
pub async fn responder_answer(
    connection: &mut sqlx::PgConnection,
    peer: &str,
    batch: &[FloorMessage],
    due_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
    sqlx::query(
        "WITH stored AS (
             INSERT INTO floor.messages (message_id, peer_county, agreement_id, agreement_hash, kind, subject_id,
                                         state, due_at, answer_id, outcome, fields, answered_at)
             SELECT id, $2, agreement_id, agreement_hash, kind, subject_id, 'answered', $9, answer_id, outcome,
                    fields, now()
             FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::text[],
                         $10::jsonb[])
                  AS t(id, agreement_id, agreement_hash, kind, subject_id, answer_id, outcome, fields)
             RETURNING message_id, answer_id)
         INSERT INTO floor.audit (peer_county, direction, message_id, outcome)
         SELECT $2, 'inbound', message_id, 'accepted' FROM stored
         UNION ALL
         SELECT $2, 'outbound', answer_id, 'answered' FROM stored",
    )
    .bind(batch.iter().map(|m| m.inquiry_id).collect::<Vec<_>>())
    .bind(peer)
    .bind(batch.iter().map(|m| m.agreement_id.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.agreement_hash.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.subject_id.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.answer_id).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.outcome.as_str()).collect::<Vec<_>>())
    .bind(due_at)
    .bind(batch.iter().map(|m| m.fields.clone()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The responder, when the asker acknowledges the answers: each marked delivered, one audit row
/// each; committed.
pub async fn responder_delivered(
    connection: &mut sqlx::PgConnection,
    peer: &str,
    batch: &[FloorMessage],
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
    sqlx::query(
        "WITH delivered AS (
             UPDATE floor.messages SET delivered_at = now()
             WHERE message_id = ANY($1) AND delivered_at IS NULL
             RETURNING answer_id)
         INSERT INTO floor.audit (peer_county, direction, message_id, outcome)
         SELECT $2, 'outbound', answer_id, 'delivered' FROM delivered",
    )
    .bind(batch.iter().map(|m| m.inquiry_id).collect::<Vec<_>>())
    .bind(peer)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How many message rows and audit rows the floor holds, to check that it wrote everything.
pub async fn counts(connection: &mut sqlx::PgConnection) -> Result<(i64, i64), StoreError> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM floor.messages WHERE state = 'answered'), (SELECT count(*) FROM floor.audit)",
    )
    .fetch_one(connection)
    .await?)
}
