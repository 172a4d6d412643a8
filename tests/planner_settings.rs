//! The node's database sessions plan for data in memory (`random_page_cost` 1.1, README
//! "Configuration"), so that a batch's lookups by id go through the primary key while a table is
//! still small or not yet analysed; a database URL that names the setting keeps its own value.

mod common;

use std::time::Duration;

use common::*;
use hancha::store::Store;
use sqlx::{Connection, PgConnection};

async fn session_setting(store: &Store) -> String {
    let mut connection = PgConnection::connect_with(&store.connect_options())
        .await
        .expect("connect as the node does");
    sqlx::query_scalar("SHOW random_page_cost")
        .fetch_one(&mut connection)
        .await
        .expect("SHOW random_page_cost")
}

#[tokio::test]
async fn the_nodes_sessions_plan_for_memory_unless_the_url_says_otherwise() {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 2, Duration::from_secs(30))
        .await
        .expect("connect to the fresh database");
    assert_eq!(session_setting(&store).await, "1.1");
    store.close().await;

    let separator = if database.url().contains('?') { '&' } else { '?' };
    let own = format!("{}{separator}options=-c%20random_page_cost%3D2", database.url());
    let store = Store::connect(&own, 2, Duration::from_secs(30))
        .await
        .expect("connect with the URL's own setting");
    assert_eq!(session_setting(&store).await, "2");
    store.close().await;
}
