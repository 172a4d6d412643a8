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
