//! Inquiries a peer asks us: each batch checked for repeats and the daily cap (每日限额), stored
//! with its audit records (and, when the asker takes them inline, its answers) in one
//! transaction before any receipt goes out.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::division::CountyCode;
use crate::domain::message::{Confirmation, Inquiry};
use crate::store::answers::{Answer, AnswerBatch, InquiryRows};
use crate::store::audit::AuditEntry;
use crate::store::{Store, StoreError, audit_batch_in};

/// An inquiry that passed validation and the agreement checks, ready to be stored.
#[derive(Clone, Debug)]
pub struct InboundInquiry<'a> {
    /// The inquiry as the peer sent it.
    pub inquiry: &'a Inquiry,
    /// Reply deadline computed from the agreement.
    pub due_at: DateTime<Utc>,
    /// The agreement's daily cap for this direction.
    pub daily_cap: u32,
}

/// An inquiry already stored under an id: id, owner county, direction, received, due.
type ExistingInquiry = (Uuid, String, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// How the accepted inquiries of a batch are written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Written<'a> {
    /// Pending, for the auto-answer worker.
    Pending,
    /// Those with an answer here answered with it, the answer written in the same transaction
    /// (one row version, not a pending one and then an answered one); the rest pending for an
    /// operator. All of them looked at: the auto-answer worker passes them by.
    Answered(&'a InlineAnswers),
}

/// The answers decided for a batch before it is stored, to be written with it and sent back
/// inline.
#[derive(Clone, Debug)]
pub(crate) struct InlineAnswers {
    /// The answer to each inquiry the registry settles, by inquiry id.
    pub(crate) answers: HashMap<Uuid, Answer>,
    /// Until when each answer stays owed (its outbox entry's due time), unless acknowledged.
    pub(crate) owed_until: DateTime<Utc>,
}

/// The answers written with a batch, by inquiry id, as they were written.
pub(crate) type GivenInline = HashMap<Uuid, Confirmation>;

/// What became of one inbound inquiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundReceipt {
    /// Stored now.
    Accepted {
        /// When we accepted it.
        received_at: DateTime<Utc>,
        /// Reply deadline.
        due_at: DateTime<Utc>,
    },
    /// Stored before: the first receipt again, nothing changed.
    Duplicate {
        /// When we first accepted it.
        received_at: DateTime<Utc>,
        /// Its deadline.
        due_at: DateTime<Utc>,
    },
    /// Refused: the peer already reached the agreement's daily cap.
    OverDailyCap {
        /// The cap that was reached.
        cap: u32,
    },
    /// The id is already used by another message (another peer's, or one of ours).
    IdTaken,
}

impl Store {
    /// Stores a batch of accepted inquiries from `peer`, enforcing the daily cap and idempotency,
    /// with one audit record per newly accepted or capped inquiry. `day` is the China Standard
    /// Time date the cap counts against.
    pub async fn accept_inbound_inquiries(
        &self,
        peer: CountyCode,
        day: NaiveDate,
        batch: &[InboundInquiry<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<InboundReceipt>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (receipts, _) = accept_inquiries_in(&mut tx, peer, day, batch, now, Written::Pending).await?;
        tx.commit().await?;
        Ok(receipts)
    }
}

/// [`Store::accept_inbound_inquiries`] inside the caller's transaction.
///
/// The daily cap is exact without holding the day's counter while the rows are written: the
/// batch is decided on the count as read (no lock), its rows and audit records are written
/// under a savepoint, and only then is the counter taken, raised by the inquiries accepted, in
/// one statement. The count it held before our increment is the count a batch taking the lock
/// first would have decided on; when the decisions on that count are the ones taken (the same
/// count, or a higher one that refuses nothing more), they stand. Otherwise the savepoint is
/// rolled back and the batch is decided again the old way, the counter locked first. Either
/// way the counter is held only from the end of the batch to the commit.
pub(crate) async fn accept_inquiries_in(
    tx: &mut sqlx::PgConnection,
    peer: CountyCode,
    day: NaiveDate,
    batch: &[InboundInquiry<'_>],
    now: DateTime<Utc>,
    written: Written<'_>,
) -> Result<(Vec<InboundReceipt>, GivenInline), StoreError> {
    let ids: Vec<Uuid> = batch.iter().map(|item| item.inquiry.message_id).collect();
    let existing = existing_inquiries_in(&mut *tx, &ids).await?;
    let read = daily_volume_in(&mut *tx, peer, day).await?;
    let decided = decide(peer, batch, &existing, read, now);
    if !decided.counted {
        // Nothing was decided on the count (repeats and taken ids only): no counter to take.
        let given = write_accepted_in(&mut *tx, peer, &decided, now, written).await?;
        return Ok((decided.receipts, given));
    }

    let mut optimistic = sqlx::Connection::begin(&mut *tx).await?;
    let given = write_accepted_in(&mut optimistic, peer, &decided, now, written).await?;
    let before = add_daily_volume_in(&mut optimistic, peer, day, decided.new_rows.len()).await?;
    if before == read || decide(peer, batch, &existing, before, now).receipts == decided.receipts {
        optimistic.commit().await?;
        return Ok((decided.receipts, given));
    }
    optimistic.rollback().await?;

    // The count moved under the batch and changes its decisions: decided again with the counter
    // locked first, on the ids as stored once the lock is held.
    let used = lock_daily_volume_in(&mut *tx, peer, day).await?;
    let existing = existing_inquiries_in(&mut *tx, &ids).await?;
    let decided = decide(peer, batch, &existing, used, now);
    let given = write_accepted_in(&mut *tx, peer, &decided, now, written).await?;
    add_daily_volume_in(&mut *tx, peer, day, decided.new_rows.len()).await?;
    Ok((decided.receipts, given))
}

/// Writes what a batch was decided to: its accepted inquiries, their audit records and, when
/// they are answered inline, their answers (owed until acknowledged). Returns the answers
/// written.
async fn write_accepted_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    decided: &Decided<'_, '_>,
    now: DateTime<Utc>,
    written: Written<'_>,
) -> Result<GivenInline, StoreError> {
    insert_inbound_inquiries_in(&mut *connection, peer, &decided.new_rows, now, written).await?;
    audit_batch_in(&mut *connection, &decided.audit).await?;
    let Written::Answered(inline) = written else {
        return Ok(GivenInline::new());
    };
    let mut batch = AnswerBatch::default();
    let mut given = GivenInline::new();
    for row in &decided.new_rows {
        let inquiry = row.inquiry;
        if let Some(answer) = inline.answers.get(&inquiry.message_id) {
            let confirmation = batch.answer(
                inquiry.message_id,
                peer,
                &inquiry.agreement,
                inquiry.kind.as_str(),
                answer.clone(),
                now,
            );
            given.insert(inquiry.message_id, confirmation);
        }
    }
    batch
        .write(
            &mut *connection,
            "automatic",
            now,
            InquiryRows::AlreadyAnswered,
            Some(inline.owed_until),
        )
        .await?;
    Ok(given)
}

/// The ids among `ids` already stored, with their owner, direction, receipt and deadline.
async fn existing_inquiries_in(
    connection: &mut sqlx::PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, ExistingInquiry>, StoreError> {
    let rows: Vec<ExistingInquiry> = sqlx::query_as(
        "SELECT message_id, peer_county, direction, received_at, due_at FROM inquiries WHERE message_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(|row| (row.0, row)).collect())
}

/// What a batch comes to, decided on a count of inquiries already accepted that day.
struct Decided<'b, 'a> {
    /// One receipt per inquiry of the batch, in order.
    receipts: Vec<InboundReceipt>,
    /// The inquiries to store.
    new_rows: Vec<&'b InboundInquiry<'a>>,
    /// The audit records to write.
    audit: Vec<AuditEntry>,
    /// Whether any decision looked at the count (an inquiry accepted or refused for the cap).
    counted: bool,
}

/// Decides each inquiry of `batch`: a repeat of one stored (or earlier in the batch), an id
/// taken by another message, refused for the cap (`used` already accepted today), or accepted.
fn decide<'b, 'a>(
    peer: CountyCode,
    batch: &'b [InboundInquiry<'a>],
    existing: &HashMap<Uuid, ExistingInquiry>,
    mut used: i64,
    now: DateTime<Utc>,
) -> Decided<'b, 'a> {
    let mut decided = Decided {
        receipts: Vec::with_capacity(batch.len()),
        new_rows: Vec::new(),
        audit: Vec::new(),
        counted: false,
    };
    // each id's position in the batch, the first time it is seen
    let mut seen_in_batch: HashMap<Uuid, usize> = HashMap::new();
    for item in batch {
        let id = item.inquiry.message_id;
        if let Some((_, owner, direction, received_at, due_at)) = existing.get(&id) {
            let receipt = match (
                owner == peer.as_str() && direction == "inbound",
                received_at,
                due_at,
            ) {
                (true, Some(received_at), Some(due_at)) => InboundReceipt::Duplicate {
                    received_at: *received_at,
                    due_at: *due_at,
                },
                _ => InboundReceipt::IdTaken,
            };
            if receipt == InboundReceipt::IdTaken {
                decided.audit.push(inquiry_audit(
                    peer,
                    item.inquiry,
                    "rejected",
                    Some("ALREADY_EXISTS: message id already used by another message".into()),
                ));
            }
            decided.receipts.push(receipt);
            continue;
        }
        if let Some(&first) = seen_in_batch.get(&id) {
            // A second copy in the same batch gets what the first got: a duplicate of it if it
            // was accepted, the same refusal if it was refused for the cap.
            let receipt = match &decided.receipts[first] {
                InboundReceipt::Accepted { received_at, due_at } => InboundReceipt::Duplicate {
                    received_at: *received_at,
                    due_at: *due_at,
                },
                other => other.clone(),
            };
            decided.receipts.push(receipt);
            continue;
        }
        seen_in_batch.insert(id, decided.receipts.len());
        decided.counted = true;
        if used >= i64::from(item.daily_cap) {
            decided
                .receipts
                .push(InboundReceipt::OverDailyCap { cap: item.daily_cap });
            decided.audit.push(inquiry_audit(
                peer,
                item.inquiry,
                "rejected",
                Some(format!(
                    "RESOURCE_EXHAUSTED: daily cap of {} inquiries reached",
                    item.daily_cap
                )),
            ));
            continue;
        }
        used += 1;
        decided.receipts.push(InboundReceipt::Accepted {
            received_at: now,
            due_at: item.due_at,
        });
        decided
            .audit
            .push(inquiry_audit(peer, item.inquiry, "accepted", None));
        decided.new_rows.push(item);
    }
    decided
}

/// The inquiries from `peer` counted on `day` so far, read without a lock (0 before the first).
async fn daily_volume_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    day: NaiveDate,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(inquiries), 0)::bigint FROM daily_volume WHERE peer_county = $1 AND day = $2",
    )
    .bind(peer.as_str())
    .bind(day)
    .fetch_one(connection)
    .await?)
}

/// Creates the day's row of `peer`'s volume if needed and locks it, in one statement, and
/// returns the inquiries counted so far: a batch locking it before it decides takes its turn
/// from here to its commit (the fallback of [`accept_inquiries_in`]).
async fn lock_daily_volume_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    day: NaiveDate,
) -> Result<i64, StoreError> {
    add_daily_volume_in(connection, peer, day, 0).await
}

/// Adds `accepted` inquiries to `peer`'s volume on `day` (creating the day's row if needed),
/// locking the row to the end of the transaction, in one statement; returns the count before
/// the addition, as of the moment the lock was taken.
pub(crate) async fn add_daily_volume_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    day: NaiveDate,
    accepted: usize,
) -> Result<i64, StoreError> {
    let accepted = i32::try_from(accepted).unwrap_or(i32::MAX);
    let after: i64 = sqlx::query_scalar(
        "INSERT INTO daily_volume (peer_county, day, inquiries) VALUES ($1, $2, $3)
         ON CONFLICT (peer_county, day) DO UPDATE SET inquiries = daily_volume.inquiries + EXCLUDED.inquiries
         RETURNING inquiries::bigint",
    )
    .bind(peer.as_str())
    .bind(day)
    .bind(accepted)
    .fetch_one(connection)
    .await?;
    Ok(after - i64::from(accepted))
}

/// Writes inquiries from `peer` that were accepted (pending, due at their deadline); the day's
/// volume is counted apart, by [`add_daily_volume_in`]. Nothing when `new_rows` is empty.
pub(crate) async fn insert_inbound_inquiries_in(
    connection: &mut sqlx::PgConnection,
    peer: CountyCode,
    new_rows: &[&InboundInquiry<'_>],
    now: DateTime<Utc>,
    written: Written<'_>,
) -> Result<(), StoreError> {
    if new_rows.is_empty() {
        return Ok(());
    }
    let (outcomes, looked_at): (Vec<Option<&str>>, bool) = match written {
        Written::Pending => (vec![None; new_rows.len()], false),
        Written::Answered(inline) => (
            new_rows
                .iter()
                .map(|r| {
                    inline
                        .answers
                        .get(&r.inquiry.message_id)
                        .map(|answer| answer.outcome.as_str())
                })
                .collect(),
            true,
        ),
    };
    sqlx::query(
                "INSERT INTO inquiries (message_id, direction, peer_county, agreement_id, agreement_hash, kind, priority,
                                        subject_id, subject_certificate, state, created_at, received_at, due_at,
                                        outcome, answered_at, auto_checked)
                 SELECT id, 'inbound', $2, agreement_id, agreement_hash, kind, priority, subject_id, certificate,
                        CASE WHEN outcome IS NULL THEN 'pending' ELSE 'answered' END, $3, $3, due_at,
                        outcome, CASE WHEN outcome IS NULL THEN NULL ELSE $3 END, $12
                 FROM UNNEST($1::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                             $10::timestamptz[], $11::text[])
                      AS t(id, agreement_id, agreement_hash, kind, priority, subject_id, certificate, due_at, outcome)",
            )
            .bind(new_rows.iter().map(|r| r.inquiry.message_id).collect::<Vec<_>>())
            .bind(peer.as_str())
            .bind(now)
            .bind(new_rows.iter().map(|r| r.inquiry.agreement.id.clone()).collect::<Vec<_>>())
            .bind(new_rows.iter().map(|r| r.inquiry.agreement.hash.clone()).collect::<Vec<_>>())
            .bind(new_rows.iter().map(|r| r.inquiry.kind.as_str()).collect::<Vec<_>>())
            .bind(new_rows.iter().map(|r| r.inquiry.priority.as_str()).collect::<Vec<_>>())
            .bind(new_rows.iter().map(|r| r.inquiry.subject.resident_id.as_str().to_string()).collect::<Vec<_>>())
            .bind(new_rows.iter().map(|r| r.inquiry.subject.certificate_number.clone()).collect::<Vec<_>>())
            .bind(new_rows.iter().map(|r| r.due_at).collect::<Vec<_>>())
            .bind(outcomes)
            .bind(looked_at)
            .execute(&mut *connection)
            .await?;
    Ok(())
}

pub(crate) fn inquiry_audit(
    peer: CountyCode,
    inquiry: &Inquiry,
    outcome: &str,
    reason: Option<String>,
) -> AuditEntry {
    AuditEntry::inbound(Some(peer), outcome, reason)
        .message(Some(inquiry.message_id))
        .kind(Some(inquiry.kind.as_str()))
        .under(&inquiry.agreement)
}
