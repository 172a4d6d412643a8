//! One bad peer harms no one, and a peer that comes back gets its backlog at full speed: the
//! circuit per peer (`hancha_peer_circuit_open`), bounded connect and call timeouts, a worker
//! per peer. Real nodes over real mutual TLS; the bad peers are small servers that behave
//! badly on purpose (`common::bad_peers`). Times are compared with the same run without the
//! trouble, as generous ratios.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hancha::config::Limits;
use hancha::domain::division::CountyCode;
use hancha::node::{InquiryDraft, Node};

/// 武陵区: configured at a black hole.
const WULING: &str = "430702";
/// 安乡县: configured at a server that answers every call `UNAVAILABLE`.
const ANXIANG: &str = "430721";

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).expect("a county code")
}

fn sweep(registered: &str, numbers: std::ops::Range<u32>) -> Vec<InquiryDraft> {
    pair::outflow_drafts(registered, numbers)
}

/// Outbound inquiries to `peer` the peer has (no longer queued here).
async fn delivered_to(node: &Node, peer: &str) -> i64 {
    count(
        node,
        &format!(
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND peer_county = '{peer}' AND state <> 'queued'"
        ),
    )
    .await
}

/// Queues `how_many` inquiries from 鼎城区 to `peer` and returns how long until the peer had
/// them all.
async fn time_to_deliver(node: &Node, peer: &str, numbers: std::ops::Range<u32>) -> Duration {
    let before = delivered_to(node, peer).await;
    let expected = before + i64::from(numbers.end - numbers.start);
    let started = Instant::now();
    node.send_inquiries(county(peer), sweep(peer, numbers))
        .await
        .expect("queued");
    eventually_within("every inquiry delivered", Duration::from_secs(120), || async {
        (delivered_to(node, peer).await == expected).then_some(())
    })
    .await;
    started.elapsed()
}

fn limits() -> Limits {
    Limits {
        retry_initial: Duration::from_millis(200),
        retry_max: Duration::from_secs(60),
        probe_max: Duration::from_secs(1),
        poll_interval: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(10),
        batch_size: 100,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_an_unavailable_and_a_distant_peer_do_not_delay_deliveries_to_a_healthy_one() {
    let mut cluster = Cluster::start_with(
        &[DINGCHENG, SHAODONG, XINHUA],
        &[
            open_agreement(DINGCHENG, SHAODONG),
            open_agreement(DINGCHENG, XINHUA),
            open_agreement(DINGCHENG, WULING),
            open_agreement(DINGCHENG, ANXIANG),
        ],
        limits(),
    )
    .await;
    // warm up the connection, then the same run without trouble: the yardstick
    let asker = cluster.node(DINGCHENG).clone();
    time_to_deliver(&asker, SHAODONG, 0..50).await;
    let alone = time_to_deliver(&asker, SHAODONG, 100..700).await;

    // 鼎城区 again, now also with a black-holed peer, one answering UNAVAILABLE, and 新化县
    // two seconds away (a round trip of 2 s)
    let black_hole = black_hole().await;
    let unavailable = unavailable_peer(&cluster.pki, ANXIANG).await;
    let distant = distant(cluster.address(XINHUA), Duration::from_secs(1)).await;
    cluster.stop(DINGCHENG).await;
    {
        let peers = &mut cluster.members.get_mut(DINGCHENG).unwrap().config.peers;
        peers.insert(WULING.into(), black_hole.to_string());
        peers.insert(ANXIANG.into(), unavailable.to_string());
        peers.insert(XINHUA.into(), distant.to_string());
    }
    cluster.restart(DINGCHENG).await;
    let asker = cluster.node(DINGCHENG).clone();
    for peer in [WULING, ANXIANG, XINHUA] {
        asker
            .send_inquiries(county(peer), sweep(peer, 0..300))
            .await
            .expect("queued");
    }
    let metrics = cluster.metrics_url(DINGCHENG);
    for peer in [WULING, ANXIANG] {
        eventually("the bad peer's circuit is open", || async {
            circuit_open_in_metrics(&metrics, peer).await.then_some(())
        })
        .await;
    }
    time_to_deliver(&asker, SHAODONG, 1000..1050).await;
    let with_trouble = time_to_deliver(&asker, SHAODONG, 1100..1700).await;

    let ratio = with_trouble.as_secs_f64() / alone.max(Duration::from_millis(500)).as_secs_f64();
    eprintln!("600 inquiries to 邵东市: {alone:?} alone, {with_trouble:?} beside the bad peers");
    assert!(
        ratio < 3.0,
        "600 inquiries to 邵东市 took {with_trouble:?} beside the bad peers, {alone:?} without them"
    );
    // the bad peers were tried all along (their circuits open), and the distant one was not
    // taken for a bad one: it gets its inquiries, two seconds away
    for peer in [WULING, ANXIANG] {
        assert!(
            circuit_open_in_metrics(&metrics, peer).await,
            "{peer}: circuit open"
        );
        assert_eq!(delivered_to(&asker, peer).await, 0, "{peer}: nothing delivered");
    }
    eventually_within("新化县 has its inquiries", Duration::from_secs(60), || async {
        (delivered_to(&asker, XINHUA).await == 300).then_some(())
    })
    .await;
    assert!(!circuit_open_in_metrics(&metrics, XINHUA).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_the_backlog_flows_within_a_probe_and_drains_at_the_normal_rate() {
    const BACKLOG: u32 = 2_000;
    let mut cluster = Cluster::start_with(
        &[DINGCHENG, XINHUA],
        &[open_agreement(DINGCHENG, XINHUA)],
        limits(),
    )
    .await;
    let asker = cluster.node(DINGCHENG).clone();
    let metrics = cluster.metrics_url(DINGCHENG);
    time_to_deliver(&asker, XINHUA, 0..50).await;
    let normal = time_to_deliver(&asker, XINHUA, 100..100 + BACKLOG).await;
    let delivered_before = delivered_to(&asker, XINHUA).await;

    cluster.stop(XINHUA).await;
    asker
        .send_inquiries(county(XINHUA), sweep(XINHUA, 5_000..5_000 + BACKLOG))
        .await
        .expect("queued");
    eventually("the circuit to 新化县 opens", || async {
        circuit_open_in_metrics(&metrics, XINHUA).await.then_some(())
    })
    .await;
    // an outage long enough for several probes to fail
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(delivered_to(&asker, XINHUA).await, delivered_before);
    let (_, scrape) = http_get(&metrics).await;
    assert!(
        scrape.lines().any(|line| line.starts_with(&format!(
            "hancha_peer_probes_total{{peer=\"{XINHUA}\",result=\"unreachable\"}}"
        )) && !line.ends_with(" 0")),
        "failed probes are counted"
    );

    cluster.restart(XINHUA).await;
    let back = Instant::now();
    let target = delivered_before + i64::from(BACKLOG);
    let first = eventually_within("a first delivery", Duration::from_secs(60), || async {
        (delivered_to(&asker, XINHUA).await > delivered_before).then(|| back.elapsed())
    })
    .await;
    eventually_within("the backlog is delivered", Duration::from_secs(120), || async {
        (delivered_to(&asker, XINHUA).await == target).then_some(())
    })
    .await;
    let drained = back.elapsed();
    // the probe interval is at most `probe_max` (1 s): the first delivery comes within a few
    // of them, not after a backoff grown during the outage (`retry_max` is a minute)
    assert!(
        first < Duration::from_secs(5),
        "the first delivery came {first:?} after 新化县 was back"
    );
    let normal_rate = f64::from(BACKLOG) / normal.as_secs_f64();
    let recovery_rate = f64::from(BACKLOG) / (drained - first).max(Duration::from_millis(1)).as_secs_f64();
    eprintln!(
        "first delivery {first:?} after the peer was back; {recovery_rate:.0}/s after the outage, {normal_rate:.0}/s normally"
    );
    assert!(
        recovery_rate >= 0.5 * normal_rate,
        "the backlog drained at {recovery_rate:.0}/s after the outage, {normal_rate:.0}/s normally"
    );
    eventually("the circuit to 新化县 closes", || async {
        (!circuit_open_in_metrics(&metrics, XINHUA).await).then_some(())
    })
    .await;
    let (_, scrape) = http_get(&metrics).await;
    let opened = format!("hancha_peer_circuit_opened_total{{peer=\"{XINHUA}\"}} ");
    assert!(
        scrape
            .lines()
            .any(|line| line.starts_with(&opened) && !line.ends_with(" 0")),
        "the outage is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_a_peer_is_opened_on_use_and_closed_once_idle() {
    let limits = Limits {
        connection_idle: Duration::from_secs(3),
        ..limits()
    };
    let cluster =
        Cluster::start_with(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)], limits).await;
    let asker = cluster.node(DINGCHENG).clone();
    let port = cluster.address(XINHUA).port();
    time_to_deliver(&asker, XINHUA, 0..20).await;
    assert!(connections_to_port(port) >= 1, "connected to deliver");
    eventually("the idle connection to 新化县 is closed", || async {
        (connections_to_port(port) == 0).then_some(())
    })
    .await;
    // the next delivery opens a new one
    time_to_deliver(&asker, XINHUA, 100..120).await;
    assert_eq!(delivered_to(&asker, XINHUA).await, 40);
}
