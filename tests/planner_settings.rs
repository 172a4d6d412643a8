//! The node's database sessions plan for data in memory (`random_page_cost` 1.1, README
//! "Configuration"), so that a batch's lookups by id go through the primary key while a table is
//! still small or not yet analysed; a database URL that names the setting keeps its own value,
//! and so does one that names its own `statement_timeout`.

mod common;

use std::time::Duration;

use common::*;
use hancha::store::{StatementTimeouts, Store};
use sqlx::{Connection, PgConnection};

async fn session_setting(store: &Store, name: &str) -> String {
    let mut connection = PgConnection::connect_with(&store.connect_options())
        .await
        .expect("connect as the node does");
    sqlx::query_scalar(&format!("SHOW {name}"))
        .fetch_one(&mut connection)
        .await
        .expect("SHOW")
}

#[tokio::test]
async fn the_nodes_sessions_plan_for_memory_unless_the_url_says_otherwise() {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 2, Duration::from_secs(30))
        .await
        .expect("connect to the fresh database");
    assert_eq!(session_setting(&store, "random_page_cost").await, "1.1");
    store.close().await;

    let separator = if database.url().contains('?') { '&' } else { '?' };
    let own = format!("{}{separator}options=-c%20random_page_cost%3D2", database.url());
    let store = Store::connect(&own, 2, Duration::from_secs(30))
        .await
        .expect("connect with the URL's own setting");
    assert_eq!(session_setting(&store, "random_page_cost").await, "2");
    store.close().await;

    let timeouts = StatementTimeouts {
        ordinary: Some(Duration::from_secs(60)),
        ..StatementTimeouts::default()
    };
    let store = Store::connect_with_timeouts(database.url(), 2, Duration::from_secs(30), timeouts)
        .await
        .expect("connect with limits.statement_timeout");
    assert_eq!(session_setting(&store, "statement_timeout").await, "1min");
    store.close().await;
    let own = format!("{}{separator}options=-c%20statement_timeout%3D2s", database.url());
    let store = Store::connect_with_timeouts(&own, 2, Duration::from_secs(30), timeouts)
        .await
        .expect("connect with the URL's own statement_timeout");
    assert_eq!(session_setting(&store, "statement_timeout").await, "2s");
    store.close().await;
}
