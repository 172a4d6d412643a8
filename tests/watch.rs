//! The event stream (`Watch`) over real nodes on real PostgreSQL: a county system watching
//! while answers arrive gets each once, in commit order, with a cursor; reconnecting with the
//! last cursor gives exactly what it missed, also across a node restart; inquiries arriving
//! are events of the township they concern, and a township office sees its own only; events
//! never carry a person's data.

mod common;

use std::time::Duration;

use common::pair::pair;
use common::*;
use hancha::proto::operator as pb;
use hancha::proto::operator::operator_client::OperatorClient;
use tonic::Code;
use tonic::Streaming;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use uuid::Uuid;

/// Asks 邵东市 about `numbers` from 鼎城区 (answered by 邵东市's registry); the inquiries' ids.
async fn ask(cluster: &Cluster, numbers: std::ops::Range<u32>) -> Vec<Uuid> {
    let drafts = common::pair::outflow_drafts(DINGCHENG, numbers.map(|n| 900 + n));
    let (queued, _) = cluster
        .node(DINGCHENG)
        .send_inquiries(SHAODONG.parse().unwrap(), drafts)
        .await
        .expect("inquiries queued");
    queued.into_iter().map(|inquiry| inquiry.message_id).collect()
}

async fn watch(client: &mut OperatorClient<Channel>, request: pb::WatchRequest) -> Streaming<pb::Event> {
    client
        .watch(request)
        .await
        .expect("the stream opens")
        .into_inner()
}

fn answers_after(after: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        after,
        types: vec!["answer.received".into()],
        ..Default::default()
    }
}

/// The next `n` events, each within a generous wait (the sealer runs every second).
async fn next_events(stream: &mut Streaming<pb::Event>, n: usize) -> Vec<pb::Event> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .unwrap_or_else(|_| panic!("event {} of {n} came within 30 s", events.len() + 1))
            .expect("the stream goes on")
            .expect("the stream is open");
        if !event.r#type.is_empty() {
            events.push(event);
        }
    }
    events
}

/// Nothing more arrives for a few sealing rounds.
async fn nothing_more(stream: &mut Streaming<pb::Event>) {
    let quiet = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match stream.message().await {
                // progress (no type) is not an event
                Ok(Some(event)) if event.r#type.is_empty() => continue,
                other => return other,
            }
        }
    })
    .await;
    if let Ok(extra) = quiet {
        panic!("no further event expected, got {extra:?}");
    }
}

fn refers_to(events: &[pb::Event]) -> Vec<Uuid> {
    events
        .iter()
        .map(|event| event.refers_to.parse().unwrap())
        .collect()
}

fn assert_increasing(events: &[pb::Event]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].cursor < pair[1].cursor,
            "cursors in commit order: {pair:?}"
        );
    }
}

#[tokio::test]
async fn a_watcher_gets_each_answer_once_in_order_and_resumes_from_its_cursor_across_a_restart() {
    let mut cluster = pair().await;
    let mut client = cluster.operator(DINGCHENG).await;
    let mut stream = watch(&mut client, answers_after(0)).await;

    let first = ask(&cluster, 0..5).await;
    let events = next_events(&mut stream, 5).await;
    assert_increasing(&events);
    let mut got = refers_to(&events);
    got.sort();
    let mut asked = first.clone();
    asked.sort();
    assert_eq!(got, asked, "one answer.received per inquiry answered");
    for event in &events {
        assert_eq!(event.r#type, "answer.received");
        assert_eq!(event.peer_county, SHAODONG);
        assert_eq!(event.direction, "inbound");
        assert_eq!(event.kind, "outflow_status");
        assert_eq!(event.id, format!("evt_{DINGCHENG}_{}", event.cursor));
        let text = format!("{event:?}");
        for n in 0..5 {
            let id = synthetic_id(DINGCHENG, 900 + n);
            assert!(!text.contains(id.as_str()), "no ID number in an event: {text}");
        }
    }
    nothing_more(&mut stream).await;
    let cursor = events.last().unwrap().cursor;
    drop(stream);

    // answers arrive while nobody watches; the watcher comes back with its cursor
    let second = ask(&cluster, 5..8).await;
    let mut stream = watch(&mut client, answers_after(cursor)).await;
    let missed = next_events(&mut stream, 3).await;
    assert!(missed.iter().all(|event| event.cursor > cursor));
    let mut got = refers_to(&missed);
    got.sort();
    let mut asked = second.clone();
    asked.sort();
    assert_eq!(got, asked, "exactly the missed answers");
    nothing_more(&mut stream).await;
    let cursor = missed.last().unwrap().cursor;

    // the node restarts: the stream breaks off; the watcher reconnects with its cursor
    cluster.stop(DINGCHENG).await;
    let broken = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("the stream ends when the node stops");
    assert!(
        !matches!(broken, Ok(Some(_))),
        "no event after the node stopped: {broken:?}"
    );
    cluster.restart(DINGCHENG).await;
    let third = ask(&cluster, 8..10).await;
    let mut client = cluster.operator(DINGCHENG).await;
    let mut stream = watch(&mut client, answers_after(cursor)).await;
    let after_restart = next_events(&mut stream, 2).await;
    let mut got = refers_to(&after_restart);
    got.sort();
    let mut asked = third;
    asked.sort();
    assert_eq!(got, asked, "after the restart, exactly the new answers");
    nothing_more(&mut stream).await;

    // from the start again: all ten, once each, in the same order as first seen
    let mut stream = watch(&mut client, answers_after(0)).await;
    let all = next_events(&mut stream, 10).await;
    assert_increasing(&all);
    let seen: Vec<i64> = events
        .iter()
        .chain(&missed)
        .chain(&after_restart)
        .map(|event| event.cursor)
        .collect();
    assert_eq!(all.iter().map(|event| event.cursor).collect::<Vec<_>>(), seen);
    nothing_more(&mut stream).await;

    // from now on: nothing of the past
    let mut stream = watch(
        &mut client,
        pb::WatchRequest {
            from_now: true,
            ..answers_after(0)
        },
    )
    .await;
    nothing_more(&mut stream).await;
    let fourth = ask(&cluster, 10..11).await;
    let new = next_events(&mut stream, 1).await;
    assert_eq!(refers_to(&new), fourth);
}

#[tokio::test]
async fn inquiries_arriving_are_events_of_their_township_and_a_township_office_sees_its_own_only() {
    let offices = TownshipOffices::start().await;
    let county = offices.county_operator("head-office");
    let mut client = offices.client(&county).await;
    let received = pb::WatchRequest {
        types: vec!["inquiry.received".into()],
        ..Default::default()
    };
    let mut stream = watch(&mut client, received.clone()).await;
    let events = next_events(&mut stream, 2).await;
    let mut by_inquiry: Vec<(String, String)> = events
        .iter()
        .map(|event| (event.message_id.clone(), event.township.clone()))
        .collect();
    by_inquiry.sort();
    let mut expected = vec![
        (offices.inquiry_a.to_string(), offices.township_a.to_string()),
        (offices.inquiry_b.to_string(), offices.township_b.to_string()),
    ];
    expected.sort();
    assert_eq!(by_inquiry, expected);
    assert!(
        events
            .iter()
            .all(|event| event.peer_county == XINHUA && event.direction == "inbound")
    );

    // a township office: its own township's inquiry only, even when it asks for no township
    let clerk = offices.township_operator("clerk-a", &[offices.township_a.as_str()]);
    let mut clerk_client = offices.client(&clerk).await;
    let mut own = watch(&mut clerk_client, received.clone()).await;
    let seen = next_events(&mut own, 1).await;
    assert_eq!(seen[0].message_id, offices.inquiry_a.to_string());
    nothing_more(&mut own).await;

    // another township's events are refused, not silently empty
    let refused = clerk_client
        .watch(pb::WatchRequest {
            township: offices.township_b.to_string(),
            ..received.clone()
        })
        .await
        .expect_err("another township");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // reconciliation runs are the county office's
    let refused = clerk_client
        .watch(pb::WatchRequest {
            types: vec!["reconcile.finished".into()],
            ..Default::default()
        })
        .await
        .expect_err("county-wide events");
    assert_eq!(refused.code(), Code::InvalidArgument);

    // an unknown type is named as the field at fault, and the value is not echoed
    let id = synthetic_id(XINHUA, 77);
    let refused = client
        .watch(pb::WatchRequest {
            types: vec![id.as_str().into()],
            ..Default::default()
        })
        .await
        .expect_err("unknown type");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(!refused.message().contains(id.as_str()), "{}", refused.message());
    let violations = refused
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations;
    assert!(
        violations.iter().any(|violation| violation.field == "types"),
        "{violations:?}"
    );

    // the start of each stream is audited under its principal
    let log = offices.access_log().await;
    assert!(
        log.iter().any(|access| access.action == "watch"
            && access.principal == "clerk-a"
            && access.outcome == "started"),
        "{log:?}"
    );
    assert!(log.iter().any(|access| access.action == "watch"
        && access.principal == "clerk-a"
        && access.outcome == "refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_one_replica_resumes_on_another_with_the_same_events() {
    let cluster = pair().await;
    // a second replica of 鼎城区 on the same database
    let replica = cluster.start_replica(DINGCHENG).await;
    let mut on_replica = OperatorClient::connect(format!("http://{}", replica.operator_addr))
        .await
        .unwrap();
    let mut on_first = cluster.operator(DINGCHENG).await;

    let asked = ask(&cluster, 0..6).await;
    let mut first = watch(&mut on_first, answers_after(0)).await;
    let seen_first = next_events(&mut first, 3).await;
    let cursor = seen_first.last().unwrap().cursor;
    // the rest, from the other replica, after the cursor the first one gave
    let mut second = watch(&mut on_replica, answers_after(cursor)).await;
    let seen_second = next_events(&mut second, 3).await;
    nothing_more(&mut second).await;
    let mut got = refers_to(&seen_first);
    got.extend(refers_to(&seen_second));
    got.sort();
    let mut expected = asked;
    expected.sort();
    assert_eq!(got, expected, "each answer once, across the two replicas");
    // both replicas read the same events at the same cursors
    let mut whole = watch(&mut on_replica, answers_after(0)).await;
    let all = next_events(&mut whole, 6).await;
    assert_eq!(
        all,
        seen_first.iter().chain(&seen_second).cloned().collect::<Vec<_>>()
    );
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hancha_watch_prints_events_with_cursors_and_resumes_with_after() {
    let cluster = pair().await;
    let asked = ask(&cluster, 0..3).await;
    let watch_cli = |args: &[&str]| {
        let mut command = common::cli::operator_cli(&cluster, DINGCHENG);
        command.arg("watch").args(args).timeout(Duration::from_secs(60));
        command
    };
    let output = common::cli::output_of(watch_cli(&[
        "--types",
        "answer.received",
        "--count",
        "3",
        "--json",
    ]))
    .await;
    assert!(output.status.success(), "{}", common::cli::lossy(&output.stderr));
    let lines: Vec<serde_json::Value> = common::cli::lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let mut answered: Vec<String> = lines
        .iter()
        .map(|line| line["data"]["refersTo"].as_str().unwrap().to_string())
        .collect();
    answered.sort();
    let mut expected: Vec<String> = asked.iter().map(Uuid::to_string).collect();
    expected.sort();
    assert_eq!(answered, expected);
    assert!(lines.iter().all(|line| line["type"] == "answer.received"));
    let cursor = lines[2]["data"]["cursor"].as_str().unwrap().to_string();

    // resuming after the last cursor: the next answer, in the table form
    let next = ask(&cluster, 3..4).await;
    let output = common::cli::output_of(watch_cli(&[
        "--types",
        "answer.received",
        "--after",
        &cursor,
        "--count",
        "1",
    ]))
    .await;
    assert!(output.status.success(), "{}", common::cli::lossy(&output.stderr));
    let text = common::cli::lossy(&output.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("answer.received") && text.contains("邵东市"),
        "{text}"
    );
    assert!(
        !text.contains(&asked[0].to_string()),
        "nothing before the cursor again: {text}"
    );
    let confirmation: String = text
        .split_whitespace()
        .find(|word| word.len() == 36)
        .unwrap()
        .to_string();
    let pool = common::database(cluster.node(DINGCHENG).store()).await;
    let answers: Uuid =
        sqlx::query_scalar("SELECT inquiry_id FROM confirmations WHERE message_id = $1::uuid")
            .bind(&confirmation)
            .fetch_one(&pool)
            .await
            .expect("the line names the confirmation received");
    assert_eq!(
        answers, next[0],
        "the confirmation answers the inquiry asked after the cursor"
    );

    // a type that does not exist: refused with the field, exit 1
    let output = common::cli::output_of(watch_cli(&["--types", "answers"])).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        common::cli::lossy(&output.stderr).contains("types"),
        "{}",
        common::cli::lossy(&output.stderr)
    );
}
