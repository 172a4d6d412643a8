//! A run's end: its repairs and record committed in one transaction, interrupted runs
//! recorded, and the reports read back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::division::CountyCode;
use crate::domain::division::TownshipCode;
use crate::domain::message::Inquiry;
use crate::domain::person::Flow;
use crate::domain::reconcile::{MessagePlan, MessageRepair, MessageType, PersonAction, PersonPlan};
use crate::domain::reconcile::{PersonDifference, ReconcileSet};
use crate::domain::resident_id::ResidentId;
use crate::store::audit::AuditEntry;
use crate::store::outbound::queue_inquiries_in;
use crate::store::outbox::enqueue_in;
use crate::store::{Store, StoreError, audit_batch_in, parsed};

/// A run's record on this side.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// Chosen by the caller; the same on both sides.
    pub run_id: Uuid,
    /// Which set.
    pub set_name: &'static str,
    /// The peer.
    pub peer_county: CountyCode,
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

impl RunRecord {
    /// The counters of a run that has exchanged nothing yet, for `..RunRecord::unfinished()`
    /// after the fields that name the run.
    pub fn unfinished() -> RunRecord {
        RunRecord {
            run_id: Uuid::nil(),
            set_name: "",
            peer_county: CountyCode::parse("110101").expect("110101 is in the embedded county list"),
            agreement_id: String::new(),
            agreement_hash: String::new(),
            role: "",
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            local_size: 0,
            peer_size: 0,
            differences: 0,
            symbols: 0,
            fell_back: false,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }
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
#[derive(Clone, Debug)]
pub struct RunRow {
    /// Chosen by the initiator; the same on both sides.
    pub run_id: Uuid,
    /// Which set.
    pub set_name: ReconcileSet,
    /// The peer.
    pub peer_county: CountyCode,
    /// The agreement compared under.
    pub agreement_id: String,
    /// `initiator` or `responder`.
    pub role: String,
    /// When the run began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// `completed` or `interrupted`.
    pub outcome: String,
    /// Why an interrupted run broke off.
    pub error: Option<String>,
    /// Elements on this side.
    pub local_size: i64,
    /// Elements on the peer's side.
    pub peer_size: i64,
    /// Elements in the symmetric difference.
    pub differences: i32,
    /// Messages queued for re-delivery.
    pub repaired: i32,
    /// Differences reported for an operator.
    pub reported: i32,
    /// Outflow inquiries opened.
    pub inquiries_opened: i32,
    /// Coded symbols exchanged.
    pub symbols: i64,
    /// Whether every element was sent instead.
    pub fell_back: bool,
    /// Bytes this side sent.
    pub bytes_sent: i64,
    /// Bytes this side received.
    pub bytes_received: i64,
}

/// [`RunRow`] as the database returns it, before its names and codes are parsed.
#[derive(sqlx::FromRow)]
struct StoredRun {
    run_id: Uuid,
    set_name: String,
    peer_county: String,
    agreement_id: String,
    role: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    outcome: String,
    error: Option<String>,
    local_size: i64,
    peer_size: i64,
    differences: i32,
    repaired: i32,
    reported: i32,
    inquiries_opened: i32,
    symbols: i64,
    fell_back: bool,
    bytes_sent: i64,
    bytes_received: i64,
}

impl TryFrom<StoredRun> for RunRow {
    type Error = StoreError;

    fn try_from(row: StoredRun) -> Result<Self, Self::Error> {
        Ok(RunRow {
            run_id: row.run_id,
            set_name: parsed(&row.set_name)?,
            peer_county: parsed(&row.peer_county)?,
            agreement_id: row.agreement_id,
            role: row.role,
            started_at: row.started_at,
            finished_at: row.finished_at,
            outcome: row.outcome,
            error: row.error,
            local_size: row.local_size,
            peer_size: row.peer_size,
            differences: row.differences,
            repaired: row.repaired,
            reported: row.reported,
            inquiries_opened: row.inquiries_opened,
            symbols: row.symbols,
            fell_back: row.fell_back,
            bytes_sent: row.bytes_sent,
            bytes_received: row.bytes_received,
        })
    }
}

/// One person-level difference, for the township offices' CSV.
#[derive(Clone, Debug)]
pub struct PersonDifferenceRow {
    /// The run that found it.
    pub run_id: Uuid,
    /// When that run ended.
    pub finished_at: DateTime<Utc>,
    /// The peer compared with.
    pub peer_county: CountyCode,
    /// The township responsible for the person, when we know the person.
    pub township: Option<TownshipCode>,
    /// The person, when we know them (a person only the peer knows is a tag to us).
    pub resident_id: Option<ResidentId>,
    /// Inflow or outflow, when we know the person.
    pub flow: Option<Flow>,
    /// How the two sides differ.
    pub difference: PersonDifference,
    /// What this side did about it.
    pub action: PersonAction,
    /// The outflow inquiry opened, if one was.
    pub inquiry_id: Option<Uuid>,
}

/// [`PersonDifferenceRow`] as the database returns it, before its names and codes are parsed.
#[derive(sqlx::FromRow)]
struct StoredPersonDifference {
    run_id: Uuid,
    finished_at: DateTime<Utc>,
    peer_county: String,
    township: Option<String>,
    resident_id: Option<String>,
    flow: Option<String>,
    difference: String,
    action: String,
    inquiry_id: Option<Uuid>,
}

impl TryFrom<StoredPersonDifference> for PersonDifferenceRow {
    type Error = StoreError;

    fn try_from(row: StoredPersonDifference) -> Result<Self, Self::Error> {
        Ok(PersonDifferenceRow {
            run_id: row.run_id,
            finished_at: row.finished_at,
            peer_county: parsed(&row.peer_county)?,
            township: row.township.as_deref().map(parsed).transpose()?,
            resident_id: row.resident_id.as_deref().map(parsed).transpose()?,
            flow: row.flow.as_deref().map(parsed).transpose()?,
            difference: parsed(&row.difference)?,
            action: parsed(&row.action)?,
            inquiry_id: row.inquiry_id,
        })
    }
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
            MessageType::Feedback,
        ] {
            let ids: Vec<Uuid> = messages
                .iter()
                .filter(|plan| {
                    plan.repair == MessageRepair::Redeliver && plan.message.message_type == message_type
                })
                .map(|plan| plan.message.message_id)
                .collect();
            // A message still waiting in the outbox (in flight) is not counted as repaired.
            let queued = enqueue_in(&mut tx, &ids, message_type, record.peer_county, Duration::ZERO).await?;
            committed.repaired += queued as u32;
        }
        let opened =
            queue_inquiries_in(&mut tx, record.peer_county, inquiries, None, None, Duration::ZERO).await?;
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
    pub async fn reconcile_runs(
        &self,
        peer: Option<CountyCode>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows: Vec<StoredRun> = sqlx::query_as(
            "SELECT run_id, set_name, peer_county, agreement_id, role, started_at, finished_at, outcome, error,
                    local_size, peer_size, differences, repaired, reported, inquiries_opened, symbols, fell_back,
                    bytes_sent, bytes_received
               FROM reconcile_runs
              WHERE $1::text IS NULL OR peer_county = $1
              ORDER BY started_at DESC, set_name
              LIMIT $2",
        )
        .bind(peer.as_ref().map(CountyCode::as_str))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(RunRow::try_from).collect()
    }

    /// When the last run with `peer` (either role) that completed both sets finished.
    pub async fn last_completed_reconcile(
        &self,
        peer: CountyCode,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT max(finished_at) FROM (
                 SELECT max(finished_at) AS finished_at FROM reconcile_runs
                  WHERE peer_county = $1 AND outcome = 'completed'
                  GROUP BY run_id, role HAVING count(*) = 2
             ) AS both_sets",
        )
        .bind(peer.as_str())
        .fetch_one(self.pool())
        .await?)
    }

    /// Person-level differences of completed runs, newest run first, for the township offices.
    pub async fn person_differences(
        &self,
        peer: Option<CountyCode>,
    ) -> Result<Vec<PersonDifferenceRow>, StoreError> {
        let rows: Vec<StoredPersonDifference> = sqlx::query_as(
            "SELECT d.run_id, r.finished_at, r.peer_county, d.township, d.resident_id, d.flow, d.difference, d.action,
                    d.inquiry_id
               FROM reconcile_differences d
               JOIN reconcile_runs r USING (run_id, set_name, role)
              WHERE d.set_name = 'shared_people' AND ($1::text IS NULL OR r.peer_county = $1)
              ORDER BY r.finished_at DESC, d.township NULLS LAST, d.resident_id NULLS LAST",
        )
        .bind(peer.as_ref().map(CountyCode::as_str))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(PersonDifferenceRow::try_from).collect()
    }
}

/// The audit entry of a run's end on this side (`reason` names no person).
fn run_audit(record: &RunRecord, outcome: &str, reason: &str) -> AuditEntry {
    AuditEntry {
        peer_county: Some(record.peer_county.to_string()),
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
    .bind(record.peer_county.as_str())
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
