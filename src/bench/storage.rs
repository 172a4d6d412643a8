//! The storage limit: PostgreSQL alone writing the rows a sweep writes on both sides — inquiry,
//! confirmation, outbox and audit rows — into freshly migrated databases (the same schema and
//! indexes), in batches, with the same kind of `INSERT … SELECT FROM UNNEST` statements, with no
//! gRPC, no TLS and no node in between.
//!
//! Each side commits three times per batch, as the protocol requires of the nodes (a message is
//! durable before it is acknowledged): the asker queues its inquiries with their outbox entries,
//! records the receipts and deletes the entries, then stores the confirmations; the responder
//! stores the inquiries under the daily cap, answers them with their confirmations' outbox
//! entries, then records the deliveries and deletes the entries. The two sides run at once, one
//! connection each, as two nodes on one server do. What the nodes do besides writing — leasing
//! outbox entries, reading the registry, the wire — is what the ratio to this limit measures.
//!
//! The SQL lives here rather than in the store on purpose: it is the yardstick the store is
//! measured against, not a path the node takes.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::population::Population;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::message::Subject;
use crate::domain::person::answer_from_registry;
use crate::domain::resident_id::today_in_china;
use crate::domain::vocabulary::InquiryKind;
use crate::store::audit::AuditEntry;
use crate::store::audit_batch_in;
use crate::store::outbound::{MessageType, enqueue_in};

/// One batch as both sides write it.
struct Batch {
    /// The inquiries' ids.
    inquiries: Vec<Uuid>,
    /// Their subjects' ID numbers.
    subjects: Vec<String>,
    /// The confirmations' ids, one per inquiry.
    confirmations: Vec<Uuid>,
    /// Each answer's outcome.
    outcomes: Vec<&'static str>,
    /// Each answer's fields, as stored (JSON).
    fields: Vec<serde_json::Value>,
}

/// Everything both sides write the same way.
struct Terms<'a> {
    /// The asking county.
    asker: CountyCode,
    /// The answering county.
    responder: CountyCode,
    /// The agreement the messages name.
    agreement: &'a Agreement,
}

/// Writes the sweep's rows into the two databases (already migrated) and returns how long it
/// took, from the first statement until both sides committed their last batch.
pub async fn write_sweep(
    urls: (&str, &str),
    population: &Population,
    sweep: usize,
    batch_size: usize,
    asker: CountyCode,
    responder: CountyCode,
    agreement: &Agreement,
) -> anyhow::Result<Duration> {
    let terms = Terms {
        asker,
        responder,
        agreement,
    };
    let batches = build_batches(population, sweep, batch_size, &terms)?;
    let mut asker_db = PgConnection::connect(urls.0)
        .await
        .context("connecting (asker)")?;
    let mut responder_db = PgConnection::connect(urls.1)
        .await
        .context("connecting (responder)")?;
    let started = Instant::now();
    let (asked, answered) = tokio::join!(
        async {
            for batch in &batches {
                asker_side(&mut asker_db, &terms, batch).await?;
            }
            anyhow::Ok(())
        },
        async {
            for batch in &batches {
                responder_side(&mut responder_db, &terms, batch).await?;
            }
            anyhow::Ok(())
        }
    );
    let elapsed = started.elapsed();
    asked.context("writing the asker's rows")?;
    answered.context("writing the responder's rows")?;
    Ok(elapsed)
}

fn build_batches(
    population: &Population,
    sweep: usize,
    batch_size: usize,
    terms: &Terms<'_>,
) -> anyhow::Result<Vec<Batch>> {
    let direction = terms
        .agreement
        .direction(terms.asker, terms.responder)
        .context("the agreement has no direction for the sweep")?;
    let today = today_in_china();
    let mut batches = Vec::new();
    let mut start = 0;
    while start < sweep {
        let end = (start + batch_size).min(sweep);
        let mut batch = Batch {
            inquiries: Vec::with_capacity(end - start),
            subjects: Vec::with_capacity(end - start),
            confirmations: Vec::with_capacity(end - start),
            outcomes: Vec::with_capacity(end - start),
            fields: Vec::with_capacity(end - start),
        };
        for index in start..end {
            let subject = Subject {
                resident_id: population.sweep_subject(index),
                certificate_number: None,
            };
            let candidates: Vec<_> = population.sweep_person(index).into_iter().collect();
            let answer = answer_from_registry(
                InquiryKind::CertificateVerification,
                terms.asker,
                &subject,
                &candidates,
                direction.answer_fields(),
                today,
            );
            batch.inquiries.push(Uuid::now_v7());
            batch.subjects.push(subject.resident_id.as_str().to_string());
            batch.confirmations.push(Uuid::now_v7());
            batch.outcomes.push(answer.outcome.as_str());
            batch.fields.push(serde_json::to_value(&answer.fields)?);
        }
        batches.push(batch);
        start = end;
    }
    Ok(batches)
}

/// The asker's three transactions for one batch.
async fn asker_side(db: &mut PgConnection, terms: &Terms<'_>, batch: &Batch) -> anyhow::Result<()> {
    let peer = terms.responder.as_str();
    let (agreement_id, hash) = agreement_columns(terms, batch.inquiries.len());
    let now = Utc::now();

    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO inquiries (message_id, direction, peer_county, agreement_id, agreement_hash, kind, priority,
                                subject_id, subject_certificate, state)
         SELECT id, 'outbound', $2, agreement_id, agreement_hash, 'certificate_verification', 'normal',
                subject_id, NULL, 'queued'
         FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::text[]) AS t(id, agreement_id, agreement_hash, subject_id)",
    )
    .bind(&batch.inquiries)
    .bind(peer)
    .bind(&agreement_id)
    .bind(&hash)
    .bind(&batch.subjects)
    .execute(&mut *tx)
    .await?;
    enqueue_in(
        &mut tx,
        &batch.inquiries,
        MessageType::Inquiry,
        terms.responder,
        Duration::ZERO,
    )
    .await?;
    let queued = audit(
        terms,
        peer,
        "outbound",
        &batch.inquiries,
        "certificate_verification",
        "queued",
    );
    audit_batch_in(&mut tx, &queued).await?;
    tx.commit().await?;

    let mut tx = db.begin().await?;
    let due: Vec<DateTime<Utc>> = vec![now + chrono::Duration::days(30); batch.inquiries.len()];
    sqlx::query(
        "UPDATE inquiries i SET state = 'pending', received_at = $2, due_at = t.due_at
         FROM UNNEST($1::uuid[], $3::timestamptz[]) AS t(id, due_at) WHERE i.message_id = t.id",
    )
    .bind(&batch.inquiries)
    .bind(now)
    .bind(&due)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM outbox WHERE message_id = ANY($1)")
        .bind(&batch.inquiries)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO confirmations (message_id, inquiry_id, direction, peer_county, agreement_id, agreement_hash,
                                    outcome, fields, answered_by, created_at)
         SELECT id, inquiry_id, 'inbound', $3, agreement_id, agreement_hash, outcome, fields, 'automatic', $8
         FROM UNNEST($1::uuid[], $2::uuid[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
              AS t(id, inquiry_id, agreement_id, agreement_hash, outcome, fields)",
    )
    .bind(&batch.confirmations)
    .bind(&batch.inquiries)
    .bind(peer)
    .bind(&agreement_id)
    .bind(&hash)
    .bind(&batch.outcomes)
    .bind(&batch.fields)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE inquiries i SET state = 'answered', outcome = t.outcome, answered_at = $3
         FROM UNNEST($1::uuid[], $2::text[]) AS t(id, outcome) WHERE i.message_id = t.id",
    )
    .bind(&batch.inquiries)
    .bind(&batch.outcomes)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let accepted = audit(
        terms,
        peer,
        "inbound",
        &batch.confirmations,
        "confirmation",
        "accepted",
    );
    audit_batch_in(&mut tx, &accepted).await?;
    tx.commit().await?;
    Ok(())
}

/// The responder's three transactions for one batch.
async fn responder_side(db: &mut PgConnection, terms: &Terms<'_>, batch: &Batch) -> anyhow::Result<()> {
    let peer = terms.asker.as_str();
    let (agreement_id, hash) = agreement_columns(terms, batch.inquiries.len());
    let now = Utc::now();
    let count = i32::try_from(batch.inquiries.len())?;

    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO daily_volume (peer_county, day, inquiries) VALUES ($1, $2, $3)
         ON CONFLICT (peer_county, day) DO UPDATE SET inquiries = daily_volume.inquiries + excluded.inquiries",
    )
    .bind(peer)
    .bind(now.date_naive())
    .bind(count)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO inquiries (message_id, direction, peer_county, agreement_id, agreement_hash, kind, priority,
                                subject_id, subject_certificate, state, created_at, received_at, due_at)
         SELECT id, 'inbound', $2, agreement_id, agreement_hash, 'certificate_verification', 'normal', subject_id,
                NULL, 'pending', $3, $3, $3 + interval '30 days'
         FROM UNNEST($1::uuid[], $4::text[], $5::text[], $6::text[]) AS t(id, agreement_id, agreement_hash, subject_id)",
    )
    .bind(&batch.inquiries)
    .bind(peer)
    .bind(now)
    .bind(&agreement_id)
    .bind(&hash)
    .bind(&batch.subjects)
    .execute(&mut *tx)
    .await?;
    let accepted = audit(
        terms,
        peer,
        "inbound",
        &batch.inquiries,
        "certificate_verification",
        "accepted",
    );
    audit_batch_in(&mut tx, &accepted).await?;
    tx.commit().await?;

    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO confirmations (message_id, inquiry_id, direction, peer_county, agreement_id, agreement_hash,
                                    outcome, fields, answered_by, created_at)
         SELECT id, inquiry_id, 'outbound', $3, agreement_id, agreement_hash, outcome, fields, 'automatic', $8
         FROM UNNEST($1::uuid[], $2::uuid[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
              AS t(id, inquiry_id, agreement_id, agreement_hash, outcome, fields)",
    )
    .bind(&batch.confirmations)
    .bind(&batch.inquiries)
    .bind(peer)
    .bind(&agreement_id)
    .bind(&hash)
    .bind(&batch.outcomes)
    .bind(&batch.fields)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE inquiries i SET state = 'answered', outcome = t.outcome, answered_at = $3, auto_checked = true
         FROM UNNEST($1::uuid[], $2::text[]) AS t(id, outcome) WHERE i.message_id = t.id",
    )
    .bind(&batch.inquiries)
    .bind(&batch.outcomes)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    enqueue_in(
        &mut tx,
        &batch.confirmations,
        MessageType::Confirmation,
        terms.asker,
        Duration::ZERO,
    )
    .await?;
    let answered = audit(
        terms,
        peer,
        "outbound",
        &batch.inquiries,
        "certificate_verification",
        "answered",
    );
    audit_batch_in(&mut tx, &answered).await?;
    tx.commit().await?;

    let mut tx = db.begin().await?;
    sqlx::query("UPDATE confirmations SET delivered_at = now() WHERE message_id = ANY($1)")
        .bind(&batch.confirmations)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM outbox WHERE message_id = ANY($1)")
        .bind(&batch.confirmations)
        .execute(&mut *tx)
        .await?;
    let delivered = audit(
        terms,
        peer,
        "outbound",
        &batch.confirmations,
        "confirmation",
        "delivered",
    );
    audit_batch_in(&mut tx, &delivered).await?;
    tx.commit().await?;
    Ok(())
}

/// The agreement id and hash columns for `rows` rows.
fn agreement_columns(terms: &Terms<'_>, rows: usize) -> (Vec<String>, Vec<String>) {
    (
        vec![terms.agreement.id().to_string(); rows],
        vec![terms.agreement.canonical_hash().as_str().to_string(); rows],
    )
}

/// One audit record per message, as the nodes write them.
fn audit(
    terms: &Terms<'_>,
    peer: &str,
    direction: &str,
    ids: &[Uuid],
    kind: &str,
    outcome: &str,
) -> Vec<AuditEntry> {
    ids.iter()
        .map(|id| AuditEntry {
            peer_county: Some(peer.to_string()),
            direction: direction.into(),
            message_id: Some(*id),
            kind: Some(kind.into()),
            agreement_id: Some(terms.agreement.id().to_string()),
            agreement_hash: Some(terms.agreement.canonical_hash().as_str().to_string()),
            outcome: outcome.into(),
            reason: None,
        })
        .collect()
}
