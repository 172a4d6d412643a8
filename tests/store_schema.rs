//! The schema: migrations apply to an empty database, are idempotent, and the audit log is
//! append-only.

use hancha::store::audit::AuditEntry;
use hancha::store::{MIGRATOR, Store};
use sqlx::PgPool;

async fn table_names(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn schema_fingerprint(pool: &PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_to_an_empty_database_and_a_second_run_changes_nothing(pool: PgPool) {
    assert!(
        table_names(&pool).await.is_empty(),
        "the test database starts empty"
    );
    let store = Store::from_pool(pool.clone());
    store.migrate().await.unwrap();
    let tables = table_names(&pool).await;
    for expected in [
        "agreements",
        "audit_log",
        "confirmations",
        "inquiries",
        "notices",
        "outbox",
        "persons",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "missing table {expected}: {tables:?}"
        );
    }
    let before = schema_fingerprint(&pool).await;
    let applied_before: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();

    store.migrate().await.unwrap();

    assert_eq!(schema_fingerprint(&pool).await, before);
    let applied_after: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied_after, applied_before);
    assert_eq!(applied_after as usize, MIGRATOR.iter().count());
}

#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn audit_log_accepts_appends_and_refuses_updates_deletes_and_truncation(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let entry = AuditEntry {
        peer_county: Some("431322".into()),
        direction: "inbound".into(),
        message_id: Some(uuid::Uuid::now_v7()),
        kind: Some("certificate_verification".into()),
        agreement_id: Some("430703-431322".into()),
        agreement_hash: Some("ab".repeat(32)),
        outcome: "rejected".into(),
        reason: Some("kind not allowed".into()),
    };
    store.append_audit(&entry).await.unwrap();
    let records = store.recent_audit(10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].entry, entry);

    for statement in [
        "UPDATE audit_log SET outcome = 'accepted'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.expect_err(statement);
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
    assert_eq!(store.recent_audit(10).await.unwrap()[0].entry.outcome, "rejected");
}

#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn registry_refuses_a_malformed_resident_id_at_the_database_too(pool: PgPool) {
    let error = sqlx::query(
        "INSERT INTO persons (resident_id, name, sex, birth_date, flow, registered_county, residence_county)
         VALUES ('12345', '张三', 'female', '1990-01-01', 'inflow', '431322', '430703')",
    )
    .execute(&pool)
    .await
    .expect_err("a five-character ID must not be stored");
    assert!(error.to_string().contains("persons_resident_id_check"), "{error}");
}

#[sqlx::test(migrator = "hancha::store::MIGRATOR")]
async fn every_column_is_classified_personal_or_not_in_the_one_list(pool: PgPool) {
    use hancha::store::personal::{PERSONAL_COLUMNS, is_not_personal, is_personal};
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let unclassified: Vec<String> = columns
        .iter()
        .filter(|(table, column)| !is_personal(table, column) && !is_not_personal(table, column))
        .map(|(table, column)| format!("{table}.{column}"))
        .collect();
    assert!(
        unclassified.is_empty(),
        "list these in store/personal.rs, as personal or not: {unclassified:?}"
    );
    let both: Vec<String> = columns
        .iter()
        .filter(|(table, column)| is_personal(table, column) && is_not_personal(table, column))
        .map(|(table, column)| format!("{table}.{column}"))
        .collect();
    assert!(both.is_empty(), "listed as both: {both:?}");
    for listed in PERSONAL_COLUMNS {
        assert!(
            columns
                .iter()
                .any(|(table, column)| table == listed.table && column == listed.column),
            "{}.{} is listed as personal but is not in the schema",
            listed.table,
            listed.column
        );
    }
}

/// A chain sealed before migration 0015 (one row per position) is carried into blocks: the
/// upgraded node verifies it intact, finds the same heads and leaves, and a position the old
/// table had lost is still named as missing.
#[sqlx::test(migrations = false)]
async fn a_chain_stored_per_position_before_0015_is_carried_into_blocks_and_verifies(pool: PgPool) {
    use hancha::domain::audit_chain::{AuditFields, ChainHash};
    use hancha::domain::division::CountyCode;

    for migration in hancha::store::MIGRATOR.iter().filter(|m| m.version < 15) {
        sqlx::raw_sql(&migration.sql).execute(&pool).await.unwrap();
    }
    let store = Store::from_pool(pool.clone());
    let records = 7_000;
    let entries: Vec<AuditEntry> = (0..records)
        .map(|n| AuditEntry {
            direction: "local".into(),
            outcome: "read".into(),
            reason: Some(format!("record {n}")),
            ..AuditEntry::default()
        })
        .collect();
    for chunk in entries.chunks(2_500) {
        store.append_audit_batch(chunk).await.unwrap();
    }
    // the chain as the sealer stored it then: position, id, encoding 1, leaf, head
    type Row = (i64, chrono::DateTime<chrono::Utc>, String, String, Option<String>);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT id, at, direction, outcome, reason FROM audit_log ORDER BY written_by, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), records);
    let mut heads = vec![ChainHash::GENESIS];
    let mut leaves = Vec::new();
    for (position, (id, at, direction, outcome, reason)) in rows.iter().cloned().enumerate() {
        let leaf = AuditFields {
            id,
            at_micros: AuditFields::micros(at),
            direction,
            outcome,
            reason,
            ..AuditFields::default()
        }
        .leaf_v1();
        heads.push(heads.last().unwrap().then(&leaf));
        leaves.push(leaf);
        sqlx::query(
            "INSERT INTO audit_chain (position, audit_id, encoding, leaf, head) VALUES ($1, $2, 1, $3, $4)",
        )
        .bind(position as i64 + 1)
        .bind(id)
        .bind(leaf.0.to_vec())
        .bind(heads[position + 1].0.to_vec())
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE sequencer_cursors SET next_position = $1,
             last_xid = (SELECT max(written_by) FROM audit_log), last_id = (SELECT max(id) FROM audit_log)
         WHERE stream = 'audit_log'",
    )
    .bind(records as i64 + 1)
    .execute(&pool)
    .await
    .unwrap();

    let blocks_sql = &hancha::store::MIGRATOR
        .iter()
        .find(|m| m.version == 15)
        .expect("migration 0015")
        .sql;
    let mut upgraded = pool.begin().await.unwrap();
    sqlx::raw_sql(blocks_sql).execute(&mut *upgraded).await.unwrap();
    let blocks: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_chain")
        .fetch_one(&mut *upgraded)
        .await
        .unwrap();
    assert_eq!(blocks, 3, "7,000 positions in blocks of at most 3,000");
    upgraded.commit().await.unwrap();

    let county = CountyCode::parse("430703").unwrap();
    let report = hancha::node::audit::verify_chain(&store, county, None, false)
        .await
        .unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.rows_checked, records as u64);
    assert_eq!(report.sealed_position, records as u64);
    for position in [1, 2_999, 3_000, 3_001, 4_500, 7_000] {
        assert_eq!(
            store.audit_head_at(position as u64).await.unwrap(),
            Some(heads[position]),
            "head at {position}"
        );
    }
    assert_eq!(
        store.audit_leaves(2_990, 3_010).await.unwrap(),
        leaves[2_990..3_010]
    );

    // the same upgrade of a chain that had lost a position, and of one whose stored head was
    // edited inside what becomes a block: each is kept for verification to name
    for (lost, edited, position, problem) in [
        (Some(4_000), None, 4_000, "missing"),
        (None, Some(1_500), 1_500, "does not follow"),
    ] {
        sqlx::raw_sql("DROP TABLE audit_chain CASCADE")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE audit_chain (position bigint PRIMARY KEY, audit_id bigint NOT NULL,
                 encoding smallint NOT NULL, leaf bytea NOT NULL, head bytea NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (index, leaf) in leaves.iter().enumerate() {
            let at = index + 1;
            if Some(at) == lost {
                continue;
            }
            let head = if Some(at) == edited {
                vec![9; 32]
            } else {
                heads[at].0.to_vec()
            };
            sqlx::query("INSERT INTO audit_chain VALUES ($1, $2, 1, $3, $4)")
                .bind(at as i64)
                .bind(rows[index].0)
                .bind(leaf.0.to_vec())
                .bind(head)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::raw_sql(blocks_sql).execute(&pool).await.unwrap();
        let report = hancha::node::audit::verify_chain(&store, county, None, false)
            .await
            .unwrap();
        let broken = report.first_broken.expect("the place is named");
        assert_eq!(broken.position, Some(position), "{broken}");
        assert!(broken.problem.contains(problem), "{broken}");
    }
}

/// Migration 0022 (fewer index entries per message) carries the messages stored before it
/// unchanged; the deadlines worker still finds the overdue inquiries of both directions without
/// the index of its own it had; and an answer marked delivered stays on its page (a heap-only
/// update: no index entry written), where before it moved to a new one.
#[sqlx::test(migrations = false)]
async fn messages_stored_before_0022_are_carried_and_delivery_marks_stay_on_their_pages(pool: PgPool) {
    use hancha::domain::division::CountyCode;

    for migration in hancha::store::MIGRATOR.iter().filter(|m| m.version < 22) {
        sqlx::raw_sql(&migration.sql).execute(&pool).await.unwrap();
    }
    // 300 inquiries each way: a third answered long ago, a third pending and overdue, a third
    // queued past their deadline (outbound: never overdue, the peer has not accepted them) or
    // pending with time left (inbound); an answer for each answered one, undelivered
    sqlx::query(
        "INSERT INTO inquiries (message_id, direction, peer_county, agreement_id, agreement_hash, kind, priority,
                                subject_id, state, created_at, received_at, due_at, answered_at, outcome)
         SELECT gen_random_uuid(), d, '431322', 'a', repeat('0', 64),
                CASE WHEN g % 2 = 0 THEN 'outflow_status' ELSE 'certificate_verification' END,
                'normal', lpad(g::text, 17, '0') || '1',
                CASE g % 3 WHEN 0 THEN 'answered' WHEN 1 THEN 'pending'
                           ELSE CASE d WHEN 'outbound' THEN 'queued' ELSE 'pending' END END,
                now() - interval '40 days', now() - interval '40 days',
                CASE WHEN g % 3 = 1 OR (g % 3 = 2 AND d = 'outbound') THEN now() - interval '10 days'
                     ELSE now() + interval '10 days' END,
                CASE g % 3 WHEN 0 THEN now() - interval '39 days' END,
                CASE g % 3 WHEN 0 THEN 'found' END
         FROM generate_series(1, 300) g, unnest(ARRAY['inbound', 'outbound']) d",
    )
    .execute(&pool)
    .await
    .unwrap();
    let answer = |direction: &'static str| {
        format!(
            "INSERT INTO confirmations (message_id, inquiry_id, direction, peer_county, agreement_id, agreement_hash,
                                        outcome, fields, answered_by)
             SELECT gen_random_uuid(), message_id, '{direction}', peer_county, agreement_id, agreement_hash, outcome,
                    '{{\"name\": \"测试人员\", \"certificate_status\": \"valid\"}}', 'automatic'
             FROM inquiries WHERE state = 'answered' AND direction = 'inbound' AND message_id NOT IN
                  (SELECT inquiry_id FROM confirmations)
             RETURNING message_id"
        )
    };
    let old_answers: Vec<uuid::Uuid> = sqlx::query_scalar(&answer("outbound"))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(old_answers.len(), 100);
    let contents = "SELECT (SELECT md5(string_agg(i::text, ',' ORDER BY message_id)) FROM inquiries i),
                           (SELECT md5(string_agg(c::text, ',' ORDER BY message_id)) FROM confirmations c)";
    let before: (String, String) = sqlx::query_as(contents).fetch_one(&pool).await.unwrap();

    for migration in hancha::store::MIGRATOR.iter().filter(|m| m.version >= 22) {
        sqlx::raw_sql(&migration.sql).execute(&pool).await.unwrap();
    }
    let after: (String, String) = sqlx::query_as(contents).fetch_one(&pool).await.unwrap();
    assert_eq!(after, before, "the messages are carried unchanged");
    let gone: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE indexname IN
             ('inquiries_peer_received', 'inquiries_pending_due')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(gone.is_empty(), "{gone:?}");

    // the overdue pending inquiries of both directions (100 each), not the queued ones
    let store = Store::from_pool(pool.clone());
    assert_eq!(store.flag_overdue(chrono::Utc::now()).await.unwrap(), 200);
    let flagged: Vec<(String, i64)> = sqlx::query_as(
        "SELECT direction, count(*) FROM inquiries WHERE overdue_at IS NOT NULL
          GROUP BY direction ORDER BY direction",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        flagged,
        [("inbound".to_string(), 100), ("outbound".to_string(), 100)]
    );
    assert_eq!(store.flag_overdue(chrono::Utc::now()).await.unwrap(), 0);

    // answers written since: marked delivered, each stays on its page
    sqlx::query("UPDATE inquiries SET state = 'answered', outcome = 'not_found' WHERE direction = 'inbound'")
        .execute(&pool)
        .await
        .unwrap();
    let new_answers: Vec<uuid::Uuid> = sqlx::query_scalar(&answer("outbound"))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(new_answers.len(), 200);
    let pages = |ids: Vec<uuid::Uuid>| {
        let pool = pool.clone();
        async move {
            let pages: Vec<(uuid::Uuid, String)> = sqlx::query_as(
                "SELECT message_id, split_part(trim(both '()' from ctid::text), ',', 1)
                   FROM confirmations WHERE message_id = ANY($1) ORDER BY message_id",
            )
            .bind(&ids)
            .fetch_all(&pool)
            .await
            .unwrap();
            pages
        }
    };
    let written = pages(new_answers.clone()).await;
    let peer = CountyCode::parse("431322").unwrap();
    store
        .record_confirmations_delivered(peer, &new_answers)
        .await
        .unwrap();
    let delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM confirmations WHERE message_id = ANY($1) AND delivered_at IS NOT NULL",
    )
    .bind(&new_answers)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(delivered, 200);
    assert_eq!(
        pages(new_answers).await,
        written,
        "a delivery mark moved an answer to another page"
    );
}
