//! Reconciliation runs between real nodes: a run interrupted halfway changes nothing and is
//! retried at the next schedule, a slot already served is skipped, and replicas of a node on one
//! database never run the same pair at once.

mod common;

use chrono::{Duration as TimeDelta, Utc};
use common::pair::*;
use common::*;
use hancha::domain::riblt::Encoder;
use hancha::domain::schedule::Schedule;
use hancha::node::reconcile::RunError;
use hancha::proto::exchange as pb;
use hancha::proto::exchange::reconcile_request::Step as RequestStep;
use hancha::proto::exchange::reconcile_response::Step as ResponseStep;
use hancha::workers::reconcile::ReconcileScheduler;
use tokio_stream::wrappers::ReceiverStream;

/// Runs the caller's side by hand up to the decoded difference, then goes away.
async fn abandon_after_decoding(cluster: &Cluster) {
    let mut client = cluster.client(DINGCHENG, SHAODONG).await;
    let node = cluster.node(DINGCHENG);
    let agreement = node
        .agreements()
        .current_with(SHAODONG.parse().unwrap(), Utc::now())
        .cloned()
        .unwrap();
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender
        .send(pb::ReconcileRequest {
            step: Some(RequestStep::Begin(pb::ReconcileBegin {
                run_id: uuid::Uuid::now_v7().to_string(),
                agreement: Some(pb::AgreementRef {
                    id: agreement.id().to_string(),
                    hash: agreement.canonical_hash().as_str().to_string(),
                }),
                set: pb::ReconcileSet::Messages as i32,
                set_size: 0,
            })),
        })
        .await
        .unwrap();
    let mut responses = client
        .reconcile(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        responses.message().await.unwrap().unwrap().step,
        Some(ResponseStep::Ready(_))
    ));
    // An empty set: every one of the peer's messages is a difference.
    let mut encoder = Encoder::new(std::iter::empty());
    let mut index = 0;
    loop {
        let mut bytes = Vec::new();
        for _ in 0..16 {
            encoder.produce_next().encode_into(&mut bytes);
        }
        sender
            .send(pb::ReconcileRequest {
                step: Some(RequestStep::Symbols(pb::SymbolChunk {
                    set_size: 0,
                    first_index: index,
                    count: 16,
                    symbols: bytes,
                })),
            })
            .await
            .unwrap();
        index += 16;
        match responses.message().await.unwrap().unwrap().step {
            Some(ResponseStep::More(_)) => continue,
            Some(ResponseStep::Decoded(_)) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(sender);
    drop(responses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_changes_nothing_and_is_retried_at_the_next_schedule() {
    let mut cluster = pair().await;
    exchange_answered_inquiries(&cluster, 4).await;
    let responder = cluster.node(SHAODONG).clone();
    // Everything delivered and acknowledged: the responder's outbox is empty.
    eventually("the responder's outbox drained", || async {
        (count(&responder, "SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;

    // The caller goes away after the difference is decoded, before naming its part: the
    // responder, which would re-deliver its four confirmations, changes nothing.
    abandon_after_decoding(&cluster).await;
    eventually("the responder records the interrupted run", || async {
        (count(
            &responder,
            "SELECT count(*) FROM reconcile_runs WHERE outcome = 'interrupted'",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
    assert_eq!(count(&responder, "SELECT count(*) FROM outbox").await, 0);
    assert_eq!(
        count(&responder, "SELECT count(*) FROM reconcile_differences").await,
        0
    );

    // The peer stops: the scheduled run breaks off, changes nothing, and is retried.
    let origin = cluster.node(DINGCHENG).clone();
    sqlx::query("DELETE FROM confirmations WHERE message_id = (SELECT message_id FROM confirmations ORDER BY message_id LIMIT 1)")
        .execute(&common::database(origin.store()).await)
        .await
        .unwrap();
    cluster.stop(SHAODONG).await;
    let agreement_id = format!("{DINGCHENG}-{SHAODONG}");
    let now = Utc::now();
    let mut scheduler = ReconcileScheduler::with_schedules(
        origin.clone(),
        vec![(agreement_id.clone(), Schedule::parse("* * * * *").unwrap())],
        now,
    );
    let slot = scheduler.slot(&agreement_id).unwrap();
    let (ran, _) = scheduler.run_once(slot.fire_at).await.unwrap();
    assert_eq!(ran.failed, std::slice::from_ref(&agreement_id));
    assert_eq!(
        count(
            &origin,
            "SELECT count(*) FROM reconcile_runs WHERE outcome = 'interrupted'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &origin,
            "SELECT count(*) FROM reconcile_runs WHERE outcome = 'completed'"
        )
        .await,
        0
    );
    let retry = scheduler.slot(&agreement_id).unwrap();
    assert!(
        retry.attempt_at > slot.fire_at && retry.failures == 1,
        "{retry:?}"
    );

    // Not yet due: nothing happens. Once due, with the peer back, the run completes.
    let (ran, _) = scheduler
        .run_once(retry.attempt_at - TimeDelta::seconds(1))
        .await
        .unwrap();
    assert!(ran.completed.is_empty() && ran.failed.is_empty());
    cluster.restart(SHAODONG).await;
    let (ran, _) = scheduler.run_once(retry.attempt_at).await.unwrap();
    assert_eq!(ran.completed, std::slice::from_ref(&agreement_id));
    let responder = cluster.node(SHAODONG);
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM reconcile_differences WHERE action = 'redelivered'"
        )
        .await,
        1
    );
    eventually("the deleted confirmation is back", || async {
        (count(&origin, "SELECT count(*) FROM confirmations").await == 4).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_run_the_same_pair_at_once() {
    let cluster = pair().await;
    shared_persons(&cluster, 0..5).await;
    let node = cluster.node(DINGCHENG);

    // Another replica on the same database holds the pair's lock: this one does not start.
    let other_replica = node.store().clone();
    let held = other_replica
        .try_lock_reconcile(SHAODONG.parse().unwrap())
        .await
        .unwrap()
        .expect("lock free");
    let refused = node.reconcile_with(SHAODONG.parse().unwrap(), |_| {}).await;
    assert!(matches!(refused, Err(RunError::AlreadyRunning(_))), "{refused:?}");
    // The peer refuses a run while its side of the pair is busy.
    let peer_lock = cluster
        .node(SHAODONG)
        .store()
        .try_lock_reconcile(DINGCHENG.parse().unwrap())
        .await
        .unwrap()
        .expect("lock free");
    held.release().await;
    let busy = node.reconcile_with(SHAODONG.parse().unwrap(), |_| {}).await;
    let message = busy.expect_err("the peer is busy").to_string();
    assert!(message.contains("already running"), "{message}");
    // A replica that dies holding the lock (its connection closes) does not block the pair.
    drop(peer_lock);
    let peer_store = cluster.node(SHAODONG).store().clone();
    eventually("the dead replica's lock is gone", || {
        let peer_store = peer_store.clone();
        async move {
            let lock = peer_store
                .try_lock_reconcile(DINGCHENG.parse().unwrap())
                .await
                .unwrap()?;
            lock.release().await;
            Some(())
        }
    })
    .await;

    // Two runs started together: they never overlap.
    let (first, second) = tokio::join!(
        node.reconcile_with(SHAODONG.parse().unwrap(), |_| {}),
        node.reconcile_with(SHAODONG.parse().unwrap(), |_| {}),
    );
    let outcomes = [&first, &second];
    assert!(
        outcomes.iter().any(|outcome| outcome.is_ok()),
        "{first:?} {second:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome.is_ok() || matches!(outcome, Err(RunError::AlreadyRunning(_)))),
        "{first:?} {second:?}"
    );
    let overlapping = count(
        node,
        "SELECT count(*) FROM reconcile_runs a JOIN reconcile_runs b
            ON a.run_id <> b.run_id AND a.peer_county = b.peer_county
           AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
    )
    .await;
    assert_eq!(overlapping, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_the_peer_already_served_is_skipped() {
    let cluster = pair().await;
    shared_persons(&cluster, 0..5).await;
    let agreement_id = format!("{DINGCHENG}-{SHAODONG}");
    let origin = cluster.node(DINGCHENG).clone();
    let started = Utc::now() - TimeDelta::minutes(10);
    let mut scheduler = ReconcileScheduler::with_schedules(
        origin.clone(),
        vec![(agreement_id.clone(), Schedule::parse("* * * * *").unwrap())],
        started,
    );

    // Shaodong starts the night's run first; both sides record it.
    reconcile(cluster.node(SHAODONG), DINGCHENG).await;
    let slot = scheduler.slot(&agreement_id).unwrap();
    let (ran, _) = scheduler.run_once(slot.fire_at).await.unwrap();
    assert_eq!(ran.skipped, std::slice::from_ref(&agreement_id));
    assert_eq!(
        count(
            &origin,
            "SELECT count(*) FROM reconcile_runs WHERE role = 'initiator'"
        )
        .await,
        0,
        "Dingcheng did not run the pair again"
    );
    let next = scheduler.slot(&agreement_id).unwrap();
    assert_eq!(next.fire_at, slot.fire_at + TimeDelta::minutes(1));
}

/// Runs `Reconcile` with `peer` through an operator API, as `hancha reconcile --with` does;
/// returns the stream's final status (OK when the run completed).
async fn reconcile_through_operator(address: std::net::SocketAddr, peer: &str) -> tonic::Status {
    use hancha::proto::operator as op;
    let mut client = op::operator_client::OperatorClient::connect(format!("http://{address}"))
        .await
        .expect("connect to the operator API");
    let mut stream = match client
        .reconcile(op::ReconcileRequest {
            with_county: peer.to_string(),
        })
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return status,
    };
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => return tonic::Status::ok(""),
            Err(status) => return status,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_running_replicas_on_one_database_take_turns() {
    let cluster = pair().await;
    shared_persons(&cluster, 0..3_000).await;
    // A second node of 鼎城区 on the same database, with its own listeners and workers.
    let mut replica_config = cluster.members[DINGCHENG].config.clone();
    replica_config.operator.listen = "127.0.0.1:0".parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    replica_config.listen = listener.local_addr().unwrap();
    let replica = hancha::app::start(&replica_config, listener)
        .await
        .expect("replica starts");

    for _round in 0..3 {
        let (here, there) = tokio::join!(
            reconcile_through_operator(cluster.operator_address(DINGCHENG), SHAODONG),
            reconcile_through_operator(replica.operator_addr, SHAODONG),
        );
        for status in [&here, &there] {
            assert!(
                status.code() == tonic::Code::Ok
                    || (status.code() == tonic::Code::Aborted
                        && status.message().contains("already running")),
                "{status:?}"
            );
        }
        assert!(
            here.code() == tonic::Code::Ok || there.code() == tonic::Code::Ok,
            "one of them ran: {here:?} {there:?}"
        );
    }
    let node = cluster.node(DINGCHENG);
    let overlapping = count(
        node,
        "SELECT count(*) FROM reconcile_runs a JOIN reconcile_runs b
            ON a.run_id <> b.run_id AND a.peer_county = b.peer_county AND a.role = b.role
           AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
    )
    .await;
    assert_eq!(overlapping, 0, "runs of the pair never overlapped");
    assert!(
        count(
            node,
            "SELECT count(DISTINCT run_id) FROM reconcile_runs WHERE role = 'initiator'"
        )
        .await
            >= 3
    );
    replica.stop().await;
}
