//! The hot paths use the indexes meant for them once the tables are large and analysed: the
//! planner's own choice on 30,000 persons (written through the registry import's COPY) and
//! 30,000 inquiries and notices of two years' history, with statistics from `ANALYZE` and no
//! planner setting forced. Each plan must name its index; where the index serves an ORDER BY,
//! the plan must not sort. The outbox lease, whose statistics lag by nature, is checked on its
//! own, under the settings its transaction runs with (`LEASE_SETTINGS`). (The registry's lookups by certificate number do not exist: a registry
//! is looked up by ID only; see `answer_from_registry`.)

use chrono::{NaiveDate, Utc};
use hancha::domain::division::CountyCode;
use hancha::domain::person::{Flow, Person};
use hancha::domain::report::ReportPeriod;
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{CertificateStatus, MaritalStatus, StatusValues};
use hancha::store::Store;
use sqlx::PgPool;

const PERSONS: u32 = 30_000;

fn person(here: CountyCode, origin: CountyCode, index: u32) -> Person {
    let birth =
        NaiveDate::from_ymd_opt(1975 + (index / 336) as i32 % 30, 1 + index % 12, 1 + index % 28).unwrap();
    let resident_id = ResidentId::synthetic(origin, birth, index % 1_000).unwrap();
    Person {
        resident_id,
        name: if index % 7 == 0 {
            "名\t带\\制表符".into()
        } else {
            "测试人员".into()
        },
        flow: Flow::Inflow,
        registered_county: origin,
        residence_county: here,
        status: StatusValues {
            marital_status: Some(MaritalStatus::Married),
            certificate_number: Some(format!("C-{index:08}")),
            certificate_valid_until: NaiveDate::from_ymd_opt(2030, 5, 31),
            certificate_status: Some(CertificateStatus::Valid),
            children_count: Some((index % 3) as u8),
            ..StatusValues::default()
        },
    }
}

#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn hot_paths_use_their_indexes_on_analysed_tables(pool: PgPool) {
    let store = Store::from_pool(pool);
    let here = CountyCode::parse("430703").unwrap();
    let origin = CountyCode::parse("431322").unwrap();
    let mut persons: Vec<Person> = (0..PERSONS).map(|index| person(here, origin, index)).collect();
    persons.sort_by(|a, b| a.resident_id.as_str().cmp(b.resident_id.as_str()));
    persons.dedup_by(|a, b| a.resident_id == b.resident_id);
    // through the import's COPY; a name with a tab and a backslash comes back as written
    let written = store.upsert_persons(&persons).await.unwrap();
    assert_eq!(written, persons.len() as u64);
    let odd = persons.iter().find(|p| p.name.contains('\t')).unwrap();
    assert_eq!(
        store.person(&odd.resident_id).await.unwrap().unwrap().name,
        odd.name
    );
    // a second import of the same rows replaces, never duplicates
    assert_eq!(store.upsert_persons(&persons[..1_000]).await.unwrap(), 1_000);

    store.fill_for_plans("431322", 30_000).await.unwrap();
    let ids: Vec<String> = persons[..20]
        .iter()
        .map(|p| p.resident_id.as_str().to_string())
        .collect();
    let period = ReportPeriod::current_quarter(Utc::now().date_naive());
    let plans = store.hot_path_plans(&ids, Utc::now(), &period).await.unwrap();
    let plan = |name: &str| {
        plans
            .iter()
            .find(|plan| plan.name == name)
            .unwrap_or_else(|| panic!("no plan for {name}"))
            .plan
            .clone()
    };

    let lookup = plan("answer lookup by resident ID");
    assert!(lookup.contains("persons_pkey"), "{lookup}");

    for (name, index) in [
        ("work queue, inbound", "inquiries_inbound_pending_due"),
        ("work queue, outbound", "inquiries_outbound_open_due"),
    ] {
        let queue = plan(name);
        assert!(queue.contains(index), "{name}:\n{queue}");
        assert!(
            !queue.contains("Sort"),
            "{name} sorts instead of reading in order:\n{queue}"
        );
    }

    // pending inquiries of both directions, through the two work-queue indexes (no index of
    // its own: every pending inquiry already has its entry in one of them)
    let overdue = plan("deadlines: overdue scan");
    for index in ["inquiries_inbound_pending_due", "inquiries_outbound_open_due"] {
        assert!(overdue.contains(index), "{overdue}");
    }
    assert!(!overdue.contains("Seq Scan"), "{overdue}");

    // one peer's inquiries: the closed ones by peer, the open ones from the work queue's
    // indexes, never every inquiry of every peer
    for name in [
        "reconciliation: a peer's messages",
        "reconciliation: inquiries asked before",
    ] {
        let peer = plan(name);
        assert!(peer.contains("inquiries_peer_closed"), "{name}:\n{peer}");
        assert!(!peer.contains("Seq Scan on inquiries"), "{name}:\n{peer}");
    }
    let messages = plan("reconciliation: a peer's messages");
    for index in ["inquiries_inbound_pending_due", "inquiries_outbound_open_due"] {
        assert!(messages.contains(index), "{messages}");
    }

    let report = plan("indicator report");
    for index in [
        "inquiries_outbound_answered",
        "inquiries_inbound_received",
        "notices_outbound_occurred",
    ] {
        assert!(
            report.contains(index),
            "the report does not use {index}:\n{report}"
        );
    }
    // every person is counted: one pass over the registry, not one per indicator, and each
    // person's facts from a hashed set (not a lookup per person, which at millions of persons
    // is millions of index scans)
    assert_eq!(
        report.matches("Seq Scan on public.persons").count(),
        1,
        "{report}"
    );
    assert!(report.contains("hashed SubPlan"), "{report}");
    for per_person in ["(SubPlan", "alternatives:"] {
        assert!(
            !report.contains(per_person),
            "a subquery may run once per person:\n{report}"
        );
    }
}

/// The delivery worker's lease reads the due entries in the due index's order and stops at its
/// limit, even when the statistics were taken while the outbox was empty and a sweep then queued
/// thousands at once (the planner, on its own, would read them all and sort them for each
/// lease); and it leases the oldest due first.
#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn a_lease_reads_the_oldest_due_entries_in_index_order_when_statistics_lag(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let peer = CountyCode::parse("431322").unwrap();
    sqlx::query("VACUUM ANALYZE outbox").execute(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO outbox (message_id, message_type, peer_county, next_attempt_at)
         SELECT gen_random_uuid(), CASE WHEN g % 10 = 0 THEN 'confirmation' ELSE 'inquiry' END, $1,
                now() - interval '1 hour' + g * interval '1 millisecond'
         FROM generate_series(1, 20000) g",
    )
    .bind(peer.as_str())
    .execute(&pool)
    .await
    .unwrap();

    let plan = store.lease_plan(peer.as_str(), "inquiry", 500).await.unwrap();
    let scan = plan
        .lines()
        .find(|line| line.contains("Scan") && line.contains("outbox_1"))
        .unwrap_or_else(|| panic!("no scan of the due entries:\n{plan}"));
    assert!(scan.contains("Index Scan using outbox_due"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");
    // the leased rows are updated through the primary key, not found again by a scan
    assert!(!plan.contains("Seq Scan"), "{plan}");
    // it read as many inquiries as it leased, not 20,000 ("rows=500" before PostgreSQL 18,
    // "rows=500.00" from 18 on)
    let read: f64 = scan
        .split("actual rows=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|rows| rows.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {scan}"));
    assert_eq!(read, 500.0, "{plan}");

    let oldest: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT message_id FROM outbox WHERE message_type = 'inquiry' ORDER BY next_attempt_at LIMIT 500",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut leased: Vec<uuid::Uuid> = store
        .lease_outbox(
            peer,
            hancha::domain::message::MessageType::Inquiry,
            500,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|lease| lease.message_id)
        .collect();
    let mut expected = oldest;
    leased.sort();
    expected.sort();
    assert_eq!(leased, expected, "the lease takes the oldest due entries");
}
