//! Reconciliation between real nodes (对账): injected divergences are found and repaired or
//! reported, and identical sets report nothing. Interrupted runs, the schedule and replicas are
//! in `reconcile_runs.rs`.

mod common;

use common::pair::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_sets_report_nothing() {
    let cluster = pair().await;
    exchange_answered_inquiries(&cluster, 5).await;
    shared_persons(&cluster, 0..20).await;

    let summaries = reconcile(cluster.node(DINGCHENG), SHAODONG).await;
    let messages = set(&summaries, "messages");
    assert_eq!(messages.record.local_size, 10, "5 inquiries and 5 confirmations");
    assert_eq!(messages.record.peer_size, 10);
    assert_eq!(messages.record.differences, 0);
    let people = set(&summaries, "shared_people");
    assert_eq!((people.record.local_size, people.record.peer_size), (20, 20));
    assert_eq!(people.record.differences, 0);
    assert!(
        people.record.symbols <= 16,
        "identical sets settle in the first chunk"
    );
    for summary in &summaries {
        assert_eq!(
            summary.committed.repaired + summary.committed.reported + summary.committed.inquiries_opened,
            0
        );
    }
    // The peer learnt the caller's set size from its chunks (the caller was still reading its set
    // when it began) and recorded both sizes.
    let sizes: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT set_name, local_size, peer_size FROM reconcile_runs ORDER BY set_name")
            .fetch_all(&common::database(cluster.node(SHAODONG).store()).await)
            .await
            .unwrap();
    assert_eq!(
        sizes,
        [("messages".into(), 10, 10), ("shared_people".into(), 20, 20)]
    );
    for county in [DINGCHENG, SHAODONG] {
        let node = cluster.node(county);
        assert_eq!(
            count(
                node,
                "SELECT count(*) FROM reconcile_runs WHERE outcome = 'completed'"
            )
            .await,
            2
        );
        assert_eq!(count(node, "SELECT count(*) FROM reconcile_differences").await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_lost_by_the_asker_is_delivered_again() {
    let cluster = pair().await;
    exchange_answered_inquiries(&cluster, 6).await;
    let asker = cluster.node(DINGCHENG);
    let lost: uuid::Uuid =
        sqlx::query_scalar("SELECT inquiry_id FROM confirmations ORDER BY message_id LIMIT 1")
            .fetch_one(&common::database(asker.store()).await)
            .await
            .unwrap();
    sqlx::query("DELETE FROM confirmations WHERE inquiry_id = $1")
        .bind(lost)
        .execute(&common::database(asker.store()).await)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE inquiries SET state = 'pending', answered_at = NULL, outcome = NULL WHERE message_id = $1",
    )
    .bind(lost)
    .execute(&common::database(asker.store()).await)
    .await
    .unwrap();

    // The asker starts the run; the answering side wrote the confirmation and re-delivers it.
    let summaries = reconcile(asker, SHAODONG).await;
    let messages = set(&summaries, "messages");
    assert_eq!(messages.record.differences, 1);
    assert_eq!(
        messages.committed.repaired, 0,
        "the asker cannot re-deliver what it did not write"
    );
    assert_eq!(
        messages.peer_repaired, 1,
        "the answering county re-delivers its confirmation"
    );

    eventually("the lost confirmation is back", || async {
        let state: String = sqlx::query_scalar("SELECT state FROM inquiries WHERE message_id = $1")
            .bind(lost)
            .fetch_one(&common::database(asker.store()).await)
            .await
            .unwrap();
        (state == "answered").then_some(())
    })
    .await;
    let responder = cluster.node(SHAODONG);
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM reconcile_differences
              WHERE difference = 'missing_at_peer' AND action = 'redelivered' AND message_type = 'confirmation'"
        )
        .await,
        1
    );
    let again = reconcile(asker, SHAODONG).await;
    assert_eq!(
        set(&again, "messages").record.differences,
        0,
        "repaired: the sets agree now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_by_the_destination_says_the_peer_opened_an_inquiry_not_that_it_repaired() {
    let cluster = pair().await;
    shared_persons(&cluster, 0..10).await;
    let mut changed = inflow_person(synthetic_id(DINGCHENG, 4), DINGCHENG, SHAODONG);
    changed.status.children_count = Some(2);
    let destination = cluster.node(SHAODONG);
    destination.store().upsert_persons(&[changed]).await.unwrap();

    let summaries = reconcile(destination, DINGCHENG).await;
    let people = set(&summaries, "shared_people");
    assert_eq!(people.record.differences, 2);
    assert_eq!(people.peer_inquiries_opened, 1, "the origin asks, on its side");
    assert_eq!(people.peer_repaired, 0, "and re-delivers nothing");
    assert_eq!(
        people.committed.inquiries_opened, 0,
        "the destination asks nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_changed_on_one_side_is_reported_and_asked_about() {
    let cluster = pair().await;
    shared_persons(&cluster, 0..10).await;
    let mut changed = inflow_person(synthetic_id(DINGCHENG, 4), DINGCHENG, SHAODONG);
    changed.status.children_count = Some(2);
    cluster
        .node(SHAODONG)
        .store()
        .upsert_persons(&[changed.clone()])
        .await
        .unwrap();

    let origin = cluster.node(DINGCHENG);
    let summaries = reconcile(origin, SHAODONG).await;
    let people = set(&summaries, "shared_people");
    assert_eq!(people.record.differences, 2, "one person, two versions");
    assert_eq!(
        people.committed.inquiries_opened, 1,
        "the origin asks the destination"
    );

    let subject: String = sqlx::query_scalar(
        "SELECT subject_id FROM inquiries WHERE direction = 'outbound' AND kind = 'outflow_status'",
    )
    .fetch_one(&common::database(origin.store()).await)
    .await
    .unwrap();
    assert_eq!(subject, changed.resident_id.as_str());
    let destination = cluster.node(SHAODONG);
    let (difference, action, resident): (String, String, String) = sqlx::query_as(
        "SELECT difference, action, resident_id FROM reconcile_differences WHERE set_name = 'shared_people'",
    )
    .fetch_one(&common::database(destination.store()).await)
    .await
    .unwrap();
    assert_eq!((difference.as_str(), action.as_str()), ("differs", "reported"));
    assert_eq!(resident, changed.resident_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persons_known_to_one_side_are_reported_and_asked_about_within_the_cap() {
    let cluster = pair().await;
    shared_persons(&cluster, 0..10).await;
    // Five outflow persons Shaodong does not know, two inflow persons Dingcheng does not know.
    let unknown_to_destination: Vec<_> = (100..105)
        .map(|n| outflow_person(synthetic_id(DINGCHENG, n), DINGCHENG, SHAODONG))
        .collect();
    let unknown_to_origin: Vec<_> = (200..202)
        .map(|n| inflow_person(synthetic_id(DINGCHENG, n), DINGCHENG, SHAODONG))
        .collect();
    let origin = cluster.node(DINGCHENG);
    origin
        .store()
        .upsert_persons(&unknown_to_destination)
        .await
        .unwrap();
    cluster
        .node(SHAODONG)
        .store()
        .upsert_persons(&unknown_to_origin)
        .await
        .unwrap();

    let summaries = reconcile(origin, SHAODONG).await;
    let people = set(&summaries, "shared_people");
    assert_eq!(people.record.differences, 7);
    assert_eq!(people.committed.inquiries_opened as usize, RECONCILE_CAP);
    assert_eq!(
        count(
            origin,
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND kind = 'outflow_status'"
        )
        .await,
        RECONCILE_CAP as i64
    );
    let actions: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT difference, action, count(*) FROM reconcile_differences
          WHERE set_name = 'shared_people' GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&common::database(origin.store()).await)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            ("unknown_here".into(), "reported".into(), 2),
            ("unknown_to_peer".into(), "inquiry_opened".into(), 3),
            ("unknown_to_peer".into(), "over_cap".into(), 2),
        ]
    );

    // The township offices' export names the persons this side knows, and nobody else's ID.
    let output = assert_cmd::Command::cargo_bin("hancha")
        .unwrap()
        .args(["reconcile", "reports", "--csv", "--node"])
        .arg(cluster.operator_address(DINGCHENG).to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let csv = String::from_utf8(output.stdout).unwrap();
    assert!(
        csv.starts_with("found_at,peer_county,township,resident_id,flow,difference,action"),
        "{csv}"
    );
    for person in &unknown_to_destination {
        assert!(csv.contains(person.resident_id.as_str()), "{csv}");
    }
    for person in &unknown_to_origin {
        assert!(
            !csv.contains(person.resident_id.as_str()),
            "only the peer knows them: {csv}"
        );
    }
    assert_eq!(csv.lines().count(), 1 + 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_are_recomputed_only_for_persons_whose_compared_status_changed() {
    let cluster = pair().await;
    shared_persons(&cluster, 0..10).await;
    let origin = cluster.node(DINGCHENG);
    let stale = "SELECT count(*) FROM persons WHERE shared_digest IS NULL";
    assert_eq!(
        count(origin, stale).await,
        10,
        "nothing computed before the first run"
    );
    reconcile(origin, SHAODONG).await;
    assert_eq!(count(origin, stale).await, 0);

    // The registry is imported again whole: one person renamed, one with more children.
    let mut persons: Vec<_> = (0..10)
        .map(|n| outflow_person(synthetic_id(DINGCHENG, n), DINGCHENG, SHAODONG))
        .collect();
    persons[3].name = "改名".into();
    persons[4].status.children_count = Some(3);
    origin.store().upsert_persons(&persons).await.unwrap();
    let cleared: Vec<String> =
        sqlx::query_scalar("SELECT resident_id FROM persons WHERE shared_digest IS NULL")
            .fetch_all(&common::database(origin.store()).await)
            .await
            .unwrap();
    assert_eq!(
        cleared,
        [persons[4].resident_id.as_str()],
        "only a compared change clears a digest"
    );

    let again = reconcile(origin, SHAODONG).await;
    assert_eq!(
        set(&again, "shared_people").record.differences,
        2,
        "the person with more children"
    );
    assert_eq!(count(origin, stale).await, 0);
}
