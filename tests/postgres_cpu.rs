//! PostgreSQL's own CPU, as `hancha bench exchange` reads it: from the server processes that
//! serve a database's clients, found among this machine's processes by pid and start time.

mod common;

use std::time::Duration;

use common::*;
use hancha::bench::cpu::{BackendsMark, postgres_processes};
use hancha::store::Store;
use hancha::store::inspect::{Backend, connection_backend};
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn the_work_a_session_makes_postgres_do_is_read_from_its_server_process() {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 1, Duration::from_secs(30))
        .await
        .expect("connect to the fresh database");
    let mut session = PgConnection::connect(database.url()).await.expect("a session");
    let own = connection_backend(&mut session)
        .await
        .expect("the session's server process");
    let backends = store.database_backends().await.expect("list the backends");
    assert!(
        backends.contains(&own),
        "every client's backend is listed, the session's {own:?} among {backends:?}"
    );

    let pids = postgres_processes(&backends);
    // over a Unix socket (the suite's own cluster) the server is on this machine; elsewhere it
    // may not be, and then there is nothing here to read
    let over_a_socket = std::env::var("DATABASE_URL").is_ok_and(|url| url.contains("host=/"));
    let Some(pids) = pids else {
        assert!(
            !over_a_socket,
            "a server over a Unix socket runs here: {backends:?}"
        );
        return;
    };
    let pid = u32::try_from(own.pid).expect("a pid");
    assert!(
        pids.contains(&pid),
        "the session's process {pid} is among {pids:?}"
    );
    // a listed backend whose process is gone (a connection closed meanwhile) is left out
    let gone = Backend { pid: i32::MAX, ..own };
    assert_eq!(postgres_processes(&[own, gone]), Some(vec![pid]));

    let before = BackendsMark::now(&pids);
    sqlx::query("SELECT count(*) FROM generate_series(1, 5000000)")
        .execute(&mut session)
        .await
        .expect("work for the server");
    let spent = BackendsMark::now(&pids).since(&before);
    assert!(spent >= 0.1, "the server's work was counted: {spent} s");

    // a listed backend whose start does not match the process with its pid here is another
    // process (another machine's server, a pid given again): no figure at all
    let stranger = Backend {
        started_s: own.started_s - 3600.0,
        ..own
    };
    assert_eq!(postgres_processes(&[stranger]), None);
    store.close().await;
}
