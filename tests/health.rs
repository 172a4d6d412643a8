//! Health that tells the truth: a node whose database goes away reports NOT_SERVING on both its
//! ports within seconds and SERVING again when the database is back, losing nothing; a graceful
//! stop reports NOT_SERVING from its first moment.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hancha::devdb::{Durability, ThrowawayPostgres, create_database};
use hancha::domain::vocabulary::InquiryKind;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// What `service` on `channel` reports now; `Unknown` when it did not answer (so that a port
/// that went away never passes for one that says NOT_SERVING).
async fn status(channel: Channel, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: service.to_string(),
    };
    match tokio::time::timeout(Duration::from_secs(2), client.check(request)).await {
        Ok(Ok(response)) => response.into_inner().status(),
        _ => ServingStatus::Unknown,
    }
}

async fn operator_channel(cluster: &Cluster, county: &str) -> Channel {
    Channel::from_shared(format!("http://{}", cluster.operator_address(county)))
        .unwrap()
        .connect()
        .await
        .expect("connect to the operator port")
}

/// Both ports' overall and service status, as a probe sees them.
async fn both_ports(cluster: &Cluster) -> [ServingStatus; 4] {
    let peer = cluster.channel(XINHUA, DINGCHENG).await;
    let operator = operator_channel(cluster, DINGCHENG).await;
    [
        status(peer.clone(), "").await,
        status(peer, "hancha.exchange.v1.Exchange").await,
        status(operator.clone(), "").await,
        status(operator, "hancha.operator.v1.Operator").await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_turns_both_ports_not_serving_and_nothing_is_lost() {
    let agreement = open_agreement(DINGCHENG, XINHUA);
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    // 鼎城区 moves onto a PostgreSQL of its own, which the test stops and starts
    let private = ThrowawayPostgres::start(Durability::Relaxed).expect("a private PostgreSQL");
    let database = create_database(private.url(), "health").await.expect("database");
    cluster.stop(DINGCHENG).await;
    cluster.members.get_mut(DINGCHENG).unwrap().config.database_url = database.url.clone();
    cluster.restart(DINGCHENG).await;
    assert_eq!(both_ports(&cluster).await, [ServingStatus::Serving; 4]);

    let probe = |path: &str| {
        format!(
            "http://{}/{path}",
            cluster.members[DINGCHENG].running.as_ref().unwrap().metrics_addr
        )
    };
    assert!(http_get(&probe("readyz")).await.0.contains("200"));
    // liveness shows what protects the node's commits: here one server, synchronous_commit off
    let healthz = http_get(&probe("healthz")).await.1;
    assert!(
        healthz.starts_with("ok\n")
            && healthz.contains("database: durability single (synchronous_commit = off")
            && healthz.contains("even a crash of the primary alone can lose the last commits"),
        "{healthz}"
    );

    private.stop_now().expect("PostgreSQL stopped");
    let stopped = Instant::now();
    let not_serving = eventually("both ports NOT_SERVING", || async {
        // when the probe began, not when it ended: its own calls take time on a busy machine
        let probed_at = stopped.elapsed();
        (both_ports(&cluster).await == [ServingStatus::NotServing; 4]).then_some(probed_at)
    })
    .await;
    // the plain-HTTP probes say the same: not ready, but alive
    let (status, body) = http_get(&probe("readyz")).await;
    assert!(
        status.contains("503") && body.contains("database"),
        "{status} {body}"
    );
    assert!(
        http_get(&probe("healthz")).await.0.contains("200"),
        "alive while the database is down"
    );
    assert!(
        not_serving <= Duration::from_secs(5),
        "NOT_SERVING after {not_serving:?}, more than 5 s"
    );
    // the node stays alive meanwhile: its ports answer, they only say it cannot work
    let mut client = HealthClient::new(operator_channel(&cluster, DINGCHENG).await);
    client
        .check(HealthCheckRequest::default())
        .await
        .expect("the operator port answers while the database is down");

    // 新化县 asks meanwhile: its inquiries wait and arrive once the database is back
    let drafts = inquiry_drafts(InquiryKind::OutflowStatus, XINHUA, 0..10);
    cluster
        .node(XINHUA)
        .send_inquiries(DINGCHENG.parse().unwrap(), drafts)
        .await
        .expect("queued");
    tokio::time::sleep(Duration::from_secs(1)).await;

    private.start_again().expect("PostgreSQL started again");
    eventually("SERVING again", || async {
        (both_ports(&cluster).await == [ServingStatus::Serving; 4]).then_some(())
    })
    .await;
    assert!(http_get(&probe("readyz")).await.0.contains("200"));
    eventually("新化县's inquiries answered, once each", || async {
        let answered = count(
            cluster.node(XINHUA),
            "SELECT count(*) FROM inquiries i WHERE i.state = 'answered'
             AND (SELECT count(*) FROM confirmations c WHERE c.inquiry_id = i.message_id) = 1",
        )
        .await;
        (answered == 10).then_some(())
    })
    .await;
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM inquiries").await,
        10
    );
    cluster.stop(DINGCHENG).await;
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_is_not_serving_from_its_first_moment() {
    let agreement = open_agreement(DINGCHENG, XINHUA);
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    let mut client = HealthClient::new(operator_channel(&cluster, DINGCHENG).await);
    let mut watch = client
        .watch(HealthCheckRequest::default())
        .await
        .expect("watching")
        .into_inner();
    let first = watch.message().await.expect("a status").expect("a status");
    assert_eq!(first.status(), ServingStatus::Serving);
    let running = cluster
        .members
        .get_mut(DINGCHENG)
        .unwrap()
        .running
        .take()
        .unwrap();
    let health = std::sync::Arc::clone(&running.health);
    let stopping = tokio::spawn(running.stop());
    let next = watch.message().await.expect("a status").expect("a status");
    assert_eq!(
        next.status(),
        ServingStatus::NotServing,
        "told before the port closes"
    );
    assert!(!health.is_ready());
    assert_eq!(health.why_not().as_deref(), Some("the node is stopping"));
    // a watch is a request in flight: the stop waits for it to end
    drop(watch);
    drop(client);
    stopping.await.unwrap();
}
