//! PostgreSQL's own CPU, as `hancha bench exchange` reads it: from the server processes that
//! serve a database's clients, when the server runs on this machine.

mod common;

use std::time::Duration;

use common::*;
use hancha::bench::cpu::{BackendsMark, is_postgres};
use hancha::store::Store;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn the_work_a_session_makes_postgres_do_is_read_from_its_server_process() {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 1, Duration::from_secs(30))
        .await
        .expect("connect to the fresh database");
    let mut session = PgConnection::connect(database.url()).await.expect("a session");
    let own: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut session)
        .await
        .expect("its server process");
    let backends = store.local_backends().await.expect("list the backends");
    if !database_on_this_machine() {
        assert_eq!(backends, None, "a server elsewhere has no processes to read here");
        return;
    }
    let backends = backends.expect("the server runs on this machine");
    let own = u32::try_from(own).expect("a pid");
    assert!(
        backends.contains(&own),
        "every client's backend is listed, the session's {own} among {backends:?}"
    );
    assert!(
        backends.iter().all(|&pid| is_postgres(pid)),
        "each is a PostgreSQL process: {backends:?}"
    );

    let before = BackendsMark::now(&backends);
    sqlx::query("SELECT count(*) FROM generate_series(1, 5000000)")
        .execute(&mut session)
        .await
        .expect("work for the server");
    let spent = BackendsMark::now(&backends).since(&before);
    assert!(spent >= 0.1, "the server's work was counted: {spent} s");
    store.close().await;
}
