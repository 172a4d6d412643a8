//! The daily cap (每日限额) on a peer's inquiries stays exact while the day's counter is taken
//! only at the end of each intake transaction: batches from one county racing at the cap accept
//! exactly the cap between them, and a batch whose count moved under it decides again on the
//! count it finds, never on the one it read.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use hancha::domain::division::CountyCode;
use hancha::domain::message::{AgreementRef, Inquiry, Subject};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::store::Store;
use hancha::store::inbound::{InboundInquiry, InboundReceipt};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const PEER: &str = "430703";
const CAP: u32 = 1_000;

fn peer() -> CountyCode {
    CountyCode::parse(PEER).unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
}

/// `count` inquiries from 鼎城区, about residents numbered from `first`.
fn inquiries(first: u32, count: u32) -> Vec<Inquiry> {
    let address = CountyCode::parse("431322").unwrap();
    (first..first + count)
        .map(|n| Inquiry {
            message_id: uuid::Uuid::now_v7(),
            agreement: AgreementRef {
                id: format!("{PEER}-431322"),
                hash: "a".repeat(64),
            },
            kind: InquiryKind::CertificateVerification,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: ResidentId::synthetic(
                    address,
                    NaiveDate::from_ymd_opt(1970 + (n / 999) as i32 % 40, 1 + n % 12, 1 + n % 28).unwrap(),
                    n % 999,
                )
                .unwrap(),
                certificate_number: None,
            },
        })
        .collect()
}

async fn accept(store: &Store, batch: &[Inquiry], now: DateTime<Utc>) -> Vec<InboundReceipt> {
    let inbound: Vec<InboundInquiry<'_>> = batch
        .iter()
        .map(|inquiry| InboundInquiry {
            inquiry,
            due_at: now + chrono::Duration::days(30),
            daily_cap: CAP,
        })
        .collect();
    store
        .accept_inbound_inquiries(peer(), day(), &inbound, now)
        .await
        .expect("batch stored")
}

/// (accepted, refused for the cap) among `receipts`; anything else fails the test.
fn tally(receipts: &[InboundReceipt]) -> (usize, usize) {
    let mut tally = (0, 0);
    for receipt in receipts {
        match receipt {
            InboundReceipt::Accepted { .. } => tally.0 += 1,
            InboundReceipt::OverDailyCap { cap } => {
                assert_eq!(*cap, CAP);
                tally.1 += 1;
            }
            other => panic!("unexpected receipt {other:?}"),
        }
    }
    tally
}

/// What the database holds for the peer: the day's counter, inbound inquiries, accepted and
/// cap-refused audit records.
async fn stored(pool: &PgPool) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT coalesce(sum(inquiries), 0)::bigint FROM daily_volume WHERE peer_county = $1),
                (SELECT count(*) FROM inquiries WHERE peer_county = $1 AND direction = 'inbound'),
                (SELECT count(*) FROM audit_log WHERE peer_county = $1 AND outcome = 'accepted'),
                (SELECT count(*) FROM audit_log WHERE peer_county = $1 AND outcome = 'rejected'
                                                  AND reason LIKE 'RESOURCE_EXHAUSTED: daily cap of 1000 %')",
    )
    .bind(PEER)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Each accepted receipt has its row, and no refused one has.
async fn assert_rows_match(pool: &PgPool, batch: &[Inquiry], receipts: &[InboundReceipt]) {
    let ids: Vec<uuid::Uuid> = batch.iter().map(|inquiry| inquiry.message_id).collect();
    let present: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT message_id FROM inquiries WHERE message_id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await
            .unwrap();
    for (inquiry, receipt) in batch.iter().zip(receipts) {
        assert_eq!(
            present.contains(&inquiry.message_id),
            matches!(receipt, InboundReceipt::Accepted { .. }),
            "{receipt:?}"
        );
    }
}

#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn concurrent_batches_from_one_peer_accept_exactly_the_cap(pool: PgPool) {
    const BATCHES: u32 = 8;
    const SIZE: u32 = 200;
    // One connection per batch, all of them in flight at once.
    let wide = PgPoolOptions::new()
        .max_connections(BATCHES)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let store = Store::from_pool(wide.clone());
    // A first batch so that the race starts near the cap, not at zero.
    let opening = inquiries(0, 300);
    let receipts = accept(&store, &opening, Utc::now()).await;
    assert_eq!(tally(&receipts), (300, 0));

    let batches: Vec<Vec<Inquiry>> = (0..BATCHES).map(|b| inquiries(1_000 + b * SIZE, SIZE)).collect();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(BATCHES as usize));
    let mut racing = Vec::new();
    for batch in batches.clone() {
        let store = store.clone();
        let start = start.clone();
        racing.push(tokio::spawn(async move {
            start.wait().await;
            accept(&store, &batch, Utc::now()).await
        }));
    }
    let mut accepted = 300;
    let mut refused = 0;
    for (batch, task) in batches.iter().zip(racing) {
        let receipts = task.await.unwrap();
        let (a, r) = tally(&receipts);
        accepted += a;
        refused += r;
        assert_rows_match(&wide, batch, &receipts).await;
    }

    assert_eq!(accepted, CAP as usize, "exactly the cap accepted");
    assert_eq!(
        refused,
        (300 + BATCHES * SIZE - CAP) as usize,
        "the rest refused for the cap"
    );
    let (counter, rows, audit_accepted, audit_refused) = stored(&wide).await;
    assert_eq!(counter, i64::from(CAP), "the counter is the inquiries accepted");
    assert_eq!(rows, i64::from(CAP));
    assert_eq!(audit_accepted, i64::from(CAP));
    assert_eq!(audit_refused, refused as i64);
}

/// Another batch's count lands between this batch's read and its taking the counter: a count
/// that refuses nothing more keeps the batch's decisions; one that does sends the batch back to
/// decide again with the counter locked, and nothing of its first attempt remains.
#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn a_batch_whose_count_moved_under_it_decides_on_the_count_it_finds(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let first = inquiries(0, 100);
    assert_eq!(tally(&accept(&store, &first, Utc::now()).await), (100, 0));

    // 1. 50 more counted under a batch of 200 at 100: still under the cap, the batch stands.
    let (receipts, waited_with_rows_written) = accept_while_counter_held(&pool, &store, 200, 50).await;
    assert!(
        waited_with_rows_written,
        "the batch wrote its rows before taking the counter"
    );
    assert_eq!(tally(&receipts), (200, 0));
    assert_eq!(stored(&pool).await, (350, 300, 300, 0));

    // 2. The batch reads 350 and would accept all 200; 610 land under it (960): it must accept
    // 40 and refuse 160, as a batch that locked the counter first would.
    let (receipts, _) = accept_while_counter_held(&pool, &store, 200, 610).await;
    assert_eq!(tally(&receipts), (40, 160));
    assert!(
        receipts[..40]
            .iter()
            .all(|r| matches!(r, InboundReceipt::Accepted { .. })),
        "the first in the batch are the ones accepted"
    );
    // The counter: 350 + 610 (counted by the other transaction, which wrote no rows) + 40.
    assert_eq!(stored(&pool).await, (1_000, 340, 340, 160));
}

/// Sends a fresh batch of `size` while another transaction holds the day's counter with
/// `counted_meanwhile` added; lets that transaction commit once the batch waits for the
/// counter. Returns the batch's receipts, and whether it had written its inquiries when it
/// started waiting.
async fn accept_while_counter_held(
    pool: &PgPool,
    store: &Store,
    size: u32,
    counted_meanwhile: i32,
) -> (Vec<InboundReceipt>, bool) {
    let mut other = pool.begin().await.unwrap();
    sqlx::query("UPDATE daily_volume SET inquiries = inquiries + $3 WHERE peer_county = $1 AND day = $2")
        .bind(PEER)
        .bind(day())
        .bind(counted_meanwhile)
        .execute(&mut *other)
        .await
        .unwrap();
    let batch = inquiries(10_000 + counted_meanwhile as u32 * 7, size);
    let task = {
        let store = store.clone();
        let batch = batch.clone();
        tokio::spawn(async move { accept(&store, &batch, Utc::now()).await })
    };
    let mut waited_with_rows_written = None;
    for _ in 0..200 {
        // The batch's backend, waiting for a lock on the counter's row.
        let waiting: Option<(i32, bool)> = sqlx::query_as(
            "SELECT a.pid,
                    EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'inquiries'::regclass
                                                       AND l.mode = 'RowExclusiveLock')
             FROM pg_stat_activity a
             WHERE a.wait_event_type = 'Lock' AND a.query LIKE '%INSERT INTO daily_volume%'",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some((_, written)) = waiting {
            waited_with_rows_written = Some(written);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited_with_rows_written = waited_with_rows_written.expect("the batch waits for the counter");
    other.commit().await.unwrap();
    let receipts = task.await.unwrap();
    assert_rows_match(pool, &batch, &receipts).await;
    (receipts, waited_with_rows_written)
}

#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn a_second_copy_in_one_batch_gets_what_the_first_got(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let now = Utc::now();
    // The cap is one short of reached: the first of two new inquiries is accepted, the second
    // refused; each comes twice in the batch.
    let receipts = accept(&store, &inquiries(0, CAP - 1), now).await;
    assert_eq!(tally(&receipts), ((CAP - 1) as usize, 0));
    let pair = inquiries(5_000, 2);
    let batch = vec![pair[0].clone(), pair[1].clone(), pair[0].clone(), pair[1].clone()];
    let receipts = accept(&store, &batch, now).await;

    assert!(
        matches!(receipts[0], InboundReceipt::Accepted { .. }),
        "{receipts:?}"
    );
    assert!(
        matches!(receipts[1], InboundReceipt::OverDailyCap { .. }),
        "{receipts:?}"
    );
    assert!(
        matches!(receipts[2], InboundReceipt::Duplicate { .. }),
        "the first copy was accepted: {receipts:?}"
    );
    assert!(
        matches!(receipts[3], InboundReceipt::OverDailyCap { .. }),
        "the first copy was refused, so is the second (never a receipt for an inquiry not stored): {receipts:?}"
    );
    let (counted, rows, accepted, refused) = stored(&pool).await;
    assert_eq!(
        (counted, rows, accepted, refused),
        (i64::from(CAP), i64::from(CAP), i64::from(CAP), 1)
    );
}
