//! The test harness cleans up after itself: every database a test creates on the server at
//! `DATABASE_URL` (a developer's own server, possibly) is dropped when the test is done with it.

mod common;

use common::*;

#[tokio::test]
async fn a_clusters_databases_are_dropped_with_it() {
    let cluster = Cluster::start(&[DINGCHENG, SHAODONG], &[open_agreement(DINGCHENG, SHAODONG)]).await;
    let names: Vec<String> = cluster
        .members
        .values()
        .map(|member| member.database.name().to_string())
        .collect();
    for name in &names {
        assert!(name.starts_with(TEST_DATABASE_PREFIX), "{name}");
        assert!(
            database_exists(name).await,
            "{name} exists while the cluster runs"
        );
    }

    drop(cluster);

    for name in &names {
        assert!(!database_exists(name).await, "{name} is gone after the cluster");
    }
}

#[tokio::test]
async fn a_node_processs_database_is_dropped_with_it() {
    let cluster = Cluster::start(&[DINGCHENG], &[open_agreement(DINGCHENG, SHAODONG)]).await;
    let process = NodeProcess::prepare(
        &cluster,
        SHAODONG,
        free_address(),
        &[open_agreement(DINGCHENG, SHAODONG)],
        &[(DINGCHENG, cluster.address(DINGCHENG))],
        &hancha::config::Limits::default(),
    )
    .await;
    let name = process.database_name().to_string();
    assert!(
        database_exists(&name).await,
        "{name} exists while the node process is held"
    );

    drop(process);

    assert!(
        !database_exists(&name).await,
        "{name} is gone after the node process"
    );
}

#[tokio::test]
async fn a_fresh_database_is_dropped_with_its_guard_even_while_in_use() {
    let database = fresh_database().await;
    let name = database.name().to_string();
    let store = hancha::store::Store::connect(database.url(), 2, std::time::Duration::from_secs(30))
        .await
        .expect("connect to the fresh database");
    store.migrate().await.expect("migrate the fresh database");

    drop(database);

    assert!(
        !database_exists(&name).await,
        "{name} is gone although a pool still held it"
    );
}
