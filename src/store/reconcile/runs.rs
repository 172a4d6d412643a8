//! A run's end: its repairs and record committed in one transaction, interrupted runs
//! recorded, and the reports read back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::message::Inquiry;
use crate::domain::reconcile::{MessagePlan, MessageRepair, MessageType, PersonAction, PersonPlan};
use crate::store::audit::AuditEntry;
use crate::store::outbound::{enqueue_in, queue_inquiries_in};
use crate::store::{Store, StoreError, audit_batch_in};

/// A run's record on this side.
#[derive(Clone, Debug, Default)]
pub struct RunRecord {
    /// Chosen by the caller; the same on both sides.
    pub run_id: Uuid,
    /// Which set.
    pub set_name: &'static str,
    /// The peer.
    pub peer_county: String,
    /// The agreement and its version.
    pub agreement_id: String,
    /// Its canonical hash.
    pub agreement_hash: String,
    /// `initiator` or `responder`.
    pub role: &'static str,
    /// When the run began.
    pub started_at: DateTime<Utc>,
    /// Elements on each side.
    pub local_size: u64,
    /// Elements on the peer's side.
    pub peer_size: u64,
    /// Elements in the symmetric difference.
    pub differences: u64,
    /// Coded symbols exchanged.
    pub symbols: u64,
    /// Whether every element was sent instead.
    pub fell_back: bool,
    /// Bytes this side sent.
    pub bytes_sent: u64,
    /// Bytes this side received.
    pub bytes_received: u64,
}

/// What a committed run did on this side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Messages queued for re-delivery.
    pub repaired: u32,
    /// Differences reported for an operator.
    pub reported: u32,
    /// Outflow inquiries opened.
    pub inquiries_opened: u32,
}

/// One past run, for `hancha reconcile reports`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRow {
    pub run_id: Uuid,
    pub set_name: String,
    pub peer_county: String,
    pub agreement_id: String,
    pub role: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: String,
    pub error: Option<String>,
    pub local_size: i64,
    pub peer_size: i64,
    pub differences: i32,
    pub repaired: i32,
    pub reported: i32,
    pub inquiries_opened: i32,
    pub symbols: i64,
    pub fell_back: bool,
    pub bytes_sent: i64,
    pub bytes_received: i64,
}

/// One person-level difference, for the township offices' CSV.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PersonDifferenceRow {
    pub run_id: Uuid,
    pub finished_at: DateTime<Utc>,
    pub peer_county: String,
    pub township: Option<String>,
    pub resident_id: Option<String>,
    pub flow: Option<String>,
    pub difference: String,
    pub action: String,
    pub inquiry_id: Option<Uuid>,
}

impl Store {
    /// Commits this side of a completed run in one transaction: re-deliveries queued, outflow
    /// inquiries opened (`inquiries`, one per plan marked `InquiryOpened`, in plan order), the
    /// run and every difference recorded, one audit entry. Nothing is written if any part fails.
    pub async fn commit_reconcile_run(
        &self,
        record: &RunRecord,
        messages: &[MessagePlan],
        people: &[PersonPlan],
        inquiries: &[Inquiry],
    ) -> Result<Committed, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut committed = Committed::default();
        for message_type in [
            MessageType::Inquiry,
            MessageType::Confirmation,
            MessageType::Notice,
        ] {
            let ids: Vec<Uuid> = messages
                .iter()
                .filter(|plan| {
                    plan.repair == MessageRepair::Redeliver && plan.message.message_type == message_type
                })
                .map(|plan| plan.message.message_id)
                .collect();
            // A message still waiting in the outbox (in flight) is not counted as repaired.
            let queued = enqueue_in(&mut tx, &ids, message_type, &record.peer_county, Duration::ZERO).await?;
            committed.repaired += queued as u32;
        }
        let opened =
            queue_inquiries_in(&mut tx, &record.peer_county, inquiries, None, Duration::ZERO).await?;
        committed.inquiries_opened = opened.len() as u32;
        committed.reported = messages
            .iter()
            .filter(|plan| plan.repair == MessageRepair::Report)
            .count() as u32
            + people
                .iter()
                .filter(|plan| plan.action != PersonAction::InquiryOpened)
                .count() as u32;

        insert_run_in(&mut tx, record, "completed", None, committed).await?;
        let mut inquiry_ids = inquiries.iter().map(|inquiry| inquiry.message_id);
        let mut rows = DifferenceRows::default();
        for plan in messages {
            rows.push_message(plan);
        }
        for plan in people {
            let inquiry_id = (plan.action == PersonAction::InquiryOpened)
                .then(|| inquiry_ids.next())
                .flatten();
            rows.push_person(plan, inquiry_id);
        }
        rows.insert_in(&mut tx, record).await?;
        let reason = format!(
            "{} differences, {} re-delivered, {} inquiries opened, {} reported",
            record.differences, committed.repaired, committed.inquiries_opened, committed.reported
        );
        let entry = run_audit(record, "reconciled", &reason);
        audit_batch_in(&mut tx, std::slice::from_ref(&entry)).await?;
        tx.commit().await?;
        Ok(committed)
    }

    /// Records a run that broke off, with an audit entry: nothing else is written.
    pub async fn record_interrupted_run(&self, record: &RunRecord, error: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        insert_run_in(&mut tx, record, "interrupted", Some(error), Committed::default()).await?;
        let entry = run_audit(record, "interrupted", error);
        audit_batch_in(&mut tx, std::slice::from_ref(&entry)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Past runs, newest first, optionally with one peer only.
    pub async fn reconcile_runs(&self, peer: Option<&str>, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT run_id, set_name, peer_county, agreement_id, role, started_at, finished_at, outcome, error,
                    local_size, peer_size, differences, repaired, reported, inquiries_opened, symbols, fell_back,
                    bytes_sent, bytes_received
               FROM reconcile_runs
              WHERE $1::text IS NULL OR peer_county = $1
              ORDER BY started_at DESC, set_name
              LIMIT $2",
        )
        .bind(peer)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// When the last run with `peer` (either role) that completed both sets finished.
    pub async fn last_completed_reconcile(&self, peer: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT max(finished_at) FROM (
                 SELECT max(finished_at) AS finished_at FROM reconcile_runs
                  WHERE peer_county = $1 AND outcome = 'completed'
                  GROUP BY run_id, role HAVING count(*) = 2
             ) AS both_sets",
        )
        .bind(peer)
        .fetch_one(self.pool())
        .await?)
    }

    /// Person-level differences of completed runs, newest run first, for the township offices.
    pub async fn person_differences(
        &self,
        peer: Option<&str>,
    ) -> Result<Vec<PersonDifferenceRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT d.run_id, r.finished_at, r.peer_county, d.township, d.resident_id, d.flow, d.difference, d.action,
                    d.inquiry_id
               FROM reconcile_differences d
               JOIN reconcile_runs r USING (run_id, set_name, role)
              WHERE d.set_name = 'shared_people' AND ($1::text IS NULL OR r.peer_county = $1)
              ORDER BY r.finished_at DESC, d.township NULLS LAST, d.resident_id NULLS LAST",
        )
        .bind(peer)
        .fetch_all(self.pool())
        .await?)
    }
}

/// The audit entry of a run's end on this side (`reason` names no person).
fn run_audit(record: &RunRecord, outcome: &str, reason: &str) -> AuditEntry {
    AuditEntry {
        peer_county: Some(record.peer_county.clone()),
        direction: "local".into(),
        kind: Some(format!("reconcile_{}", record.set_name)),
        agreement_id: Some(record.agreement_id.clone()),
        agreement_hash: Some(record.agreement_hash.clone()),
        outcome: outcome.into(),
        reason: Some(format!("run {} as {}: {reason}", record.run_id, record.role)),
        ..AuditEntry::default()
    }
}

async fn insert_run_in(
    connection: &mut sqlx::PgConnection,
    record: &RunRecord,
    outcome: &str,
    error: Option<&str>,
    committed: Committed,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO reconcile_runs (run_id, set_name, peer_county, agreement_id, agreement_hash, role, started_at,
                                     outcome, error, local_size, peer_size, differences, repaired, reported,
                                     inquiries_opened, symbols, fell_back, bytes_sent, bytes_received)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(record.run_id)
    .bind(record.set_name)
    .bind(&record.peer_county)
    .bind(&record.agreement_id)
    .bind(&record.agreement_hash)
    .bind(record.role)
    .bind(record.started_at)
    .bind(outcome)
    .bind(error)
    .bind(record.local_size as i64)
    .bind(record.peer_size as i64)
    .bind(record.differences as i32)
    .bind(committed.repaired as i32)
    .bind(committed.reported as i32)
    .bind(committed.inquiries_opened as i32)
    .bind(record.symbols as i64)
    .bind(record.fell_back)
    .bind(record.bytes_sent as i64)
    .bind(record.bytes_received as i64)
    .execute(connection)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}

/// Difference rows as columns, for one UNNEST insert.
#[derive(Default)]
struct DifferenceRows {
    difference: Vec<&'static str>,
    action: Vec<&'static str>,
    message_type: Vec<Option<&'static str>>,
    message_id: Vec<Option<Uuid>>,
    author_county: Vec<Option<String>>,
    resident_id: Vec<Option<String>>,
    flow: Vec<Option<&'static str>>,
    township: Vec<Option<String>>,
    person_tag: Vec<Option<Vec<u8>>>,
    inquiry_id: Vec<Option<Uuid>>,
}

impl DifferenceRows {
    fn push_message(&mut self, plan: &MessagePlan) {
        self.difference.push(plan.difference.as_str());
        self.action.push(plan.repair.as_str());
        self.message_type.push(Some(plan.message.message_type.as_str()));
        self.message_id.push(Some(plan.message.message_id));
        self.author_county.push(Some(plan.message.author.to_string()));
        self.resident_id.push(None);
        self.flow.push(None);
        self.township.push(None);
        self.person_tag.push(None);
        self.inquiry_id.push(None);
    }

    fn push_person(&mut self, plan: &PersonPlan, inquiry_id: Option<Uuid>) {
        self.difference.push(plan.difference.as_str());
        self.action.push(plan.action.as_str());
        self.message_type.push(None);
        self.message_id.push(None);
        self.author_county.push(None);
        let person = plan.person.as_ref();
        self.resident_id
            .push(person.map(|p| p.resident_id.as_str().to_string()));
        self.flow.push(person.map(|p| p.flow.as_str()));
        self.township
            .push(person.and_then(|p| p.township).map(|t| t.to_string()));
        self.person_tag.push(Some(plan.tag.to_vec()));
        self.inquiry_id.push(inquiry_id);
    }

    async fn insert_in(
        self,
        connection: &mut sqlx::PgConnection,
        record: &RunRecord,
    ) -> Result<(), StoreError> {
        if self.difference.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO reconcile_differences (run_id, set_name, role, difference, action, message_type, message_id,
                                                author_county, resident_id, flow, township, person_tag, inquiry_id)
             SELECT $1, $2, $3, * FROM UNNEST($4::text[], $5::text[], $6::text[], $7::uuid[], $8::text[], $9::text[],
                                              $10::text[], $11::text[], $12::bytea[], $13::uuid[])",
        )
        .bind(record.run_id)
        .bind(record.set_name)
        .bind(record.role)
        .bind(self.difference)
        .bind(self.action)
        .bind(self.message_type)
        .bind(self.message_id)
        .bind(self.author_county)
        .bind(self.resident_id)
        .bind(self.flow)
        .bind(self.township)
        .bind(self.person_tag)
        .bind(self.inquiry_id)
        .execute(connection)
        .await?;
        Ok(())
    }
}
