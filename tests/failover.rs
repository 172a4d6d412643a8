//! PostgreSQL failover under a node: its database is a private primary with a streaming standby
//! of its own, the node is given both addresses (`database_urls`), and the primary is killed
//! with SIGKILL in the middle of a sweep. With a synchronous standby, promoting it loses nothing
//! the node acknowledged, every inquiry is answered exactly once, and the old primary, started
//! again as a primary, is never written to (the timeline fence). With an asynchronous standby the
//! node says at start what a failover can lose, and the test shows it lost.
//!
//! 新化县 (the responder, the node on the pair) runs as a `hancha serve` process; 鼎城区 (the
//! asker) runs in-process on an ordinary test database.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hancha::config::Limits;
use hancha::domain::division::CountyCode;
use hancha::domain::message::Subject;
use hancha::domain::person::Person;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::InquiryDraft;
use hancha::store::Store;
use uuid::Uuid;

/// Inquiries in the sweep the primary is killed in the middle of.
const SWEEP: u32 = 3_000;

/// Messages per batch: small, so that the sweep passes in many steps and the kill lands in it.
const SWEEP_BATCH: usize = 100;

/// Inquiries sent while the only primary the node could reach is the fenced old one.
const WHILE_FENCED: u32 = 20;

/// How long the whole sweep may take, failover included, before the test fails.
const SWEEP_PATIENCE: Duration = Duration::from_secs(120);

/// The database of 新化县 on the pair.
const DATABASE: &str = "hancha_xinhua";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_with_a_synchronous_standby_loses_nothing_acknowledged() {
    let started = Instant::now();
    let pair = ReplicatedPostgres::start(Replication::Synchronous).await;
    let (cluster, mut xinhua) = xinhua_on(&pair).await;
    let dingcheng = cluster.node(DINGCHENG);
    let asker = dingcheng.store().clone();
    assert!(
        xinhua.log().contains("durability synchronous ("),
        "the node says at start that a synchronous standby protects what it acknowledges:\n{}",
        xinhua.log()
    );

    let (queued, new) = dingcheng
        .send_inquiries(county(XINHUA), sweep(0..SWEEP))
        .await
        .unwrap();
    assert_eq!(new, u64::from(SWEEP));
    let mut sent = ids(&queued);
    let accepted = mid_sweep(&xinhua.store).await;
    pair.kill(Server::A);
    eprintln!(
        "killed the primary at {:?} with {accepted} of {SWEEP} accepted",
        started.elapsed()
    );
    // no primary for a while: the node's work waits, the asker is told UNAVAILABLE and retries
    tokio::time::sleep(Duration::from_secs(1)).await;
    pair.promote(Server::B);
    let promoted = Store::connect(&pair.url(Server::B, DATABASE), 4, Duration::from_secs(10))
        .await
        .expect("connect to the promoted standby");
    xinhua.store = promoted.clone();

    // Everything the node acknowledged before the kill is on the promoted standby: each inquiry
    // the asker holds a receipt for (no longer `queued`), each confirmation the asker received.
    let acknowledged = ids_of(
        &asker,
        "SELECT message_id FROM inquiries WHERE direction = 'outbound' AND state <> 'queued'",
    )
    .await;
    let on_standby = ids_of(
        &promoted,
        "SELECT message_id FROM inquiries WHERE direction = 'inbound'",
    )
    .await;
    let missing: Vec<&Uuid> = acknowledged
        .iter()
        .filter(|id| on_standby.binary_search(id).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged inquiries missing after the failover",
        missing.len(),
        acknowledged.len()
    );
    let confirmations_received = ids_of(
        &asker,
        "SELECT message_id FROM confirmations WHERE direction = 'inbound'",
    )
    .await;
    let confirmations_kept = ids_of(
        &promoted,
        "SELECT message_id FROM confirmations WHERE direction = 'outbound'",
    )
    .await;
    assert!(
        confirmations_received
            .iter()
            .all(|id| confirmations_kept.binary_search(id).is_ok()),
        "every confirmation the asker received is on the promoted standby"
    );
    eprintln!(
        "promoted at {:?}: all {} acknowledged inquiries and {} received confirmations there",
        started.elapsed(),
        acknowledged.len(),
        confirmations_received.len()
    );
    eventually("the node moves to the promoted standby", || {
        let moved = xinhua.log().contains("database: moved to a new primary");
        async move { moved.then_some(()) }
    })
    .await;

    // The old primary comes back as a primary (on the old timeline). It is listed first, and it
    // is the only primary the node can reach while the promoted one is stopped: still never used.
    pair.start_again(Server::A);
    // as an operator might, unaware of the promotion: it takes writes without a standby
    pair.execute(Server::A, "ALTER SYSTEM SET synchronous_standby_names = ''")
        .await;
    pair.execute(Server::A, "SELECT pg_reload_conf()").await;
    let old_primary = Store::connect(&pair.url(Server::A, DATABASE), 2, Duration::from_secs(10))
        .await
        .expect("connect to the old primary");
    let before = written(&old_primary).await;
    eventually("the node refuses the old primary", || {
        let fenced = xinhua.log().contains("FENCED");
        async move { fenced.then_some(()) }
    })
    .await;
    pair.stop_now(Server::B);
    let (more, _) = dingcheng
        .send_inquiries(county(XINHUA), sweep(SWEEP..SWEEP + WHILE_FENCED))
        .await
        .unwrap();
    sent.extend(ids(&more));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        written(&old_primary).await,
        before,
        "nothing written to the old primary while it was the only one"
    );
    pair.start_again(Server::B);

    let total = i64::from(SWEEP + WHILE_FENCED);
    eventually_within(
        &format!("all {total} inquiries answered at the asker"),
        SWEEP_PATIENCE,
        || async { (answered(&asker).await == total).then_some(()) },
    )
    .await;
    eprintln!("all {total} answered at {:?}", started.elapsed());
    assert_exactly_once(&asker, &promoted, &sent).await;
    assert_eq!(
        written(&old_primary).await,
        before,
        "nothing ever written to the old primary after the failover"
    );
    old_primary.close().await;
    promoted.close().await;
}

/// With only an asynchronous standby the node warns at start what a failover can lose; the
/// standby falling behind (here: stopped) while the node acknowledges inquiries, and the primary
/// then lost, shows it: the promoted standby lacks every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asynchronous_standby_is_announced_at_start_and_a_failover_to_it_loses_what_it_lacked() {
    let pair = ReplicatedPostgres::start(Replication::Asynchronous).await;
    let (cluster, mut xinhua) = xinhua_on(&pair).await;
    let log = xinhua.log();
    assert!(
        log.contains("durability asynchronous (") && log.contains("a failover can lose"),
        "the node says at start what an asynchronous failover can lose:\n{log}"
    );
    let dingcheng = cluster.node(DINGCHENG);
    let asker = dingcheng.store().clone();

    pair.stop_now(Server::B);
    let size = 200;
    dingcheng
        .send_inquiries(county(XINHUA), sweep(0..size))
        .await
        .unwrap();
    eventually_within("the node acknowledges every inquiry", SWEEP_PATIENCE, || async {
        let acknowledged = count_in(
            &asker,
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state <> 'queued'",
        )
        .await;
        (acknowledged == i64::from(size)).then_some(())
    })
    .await;
    pair.kill(Server::A);
    pair.start_again(Server::B);
    pair.promote(Server::B);
    let promoted = Store::connect(&pair.url(Server::B, DATABASE), 2, Duration::from_secs(10))
        .await
        .expect("connect to the promoted standby");
    let kept = count_in(
        &promoted,
        "SELECT count(*) FROM inquiries WHERE direction = 'inbound'",
    )
    .await;
    eprintln!("the asynchronous failover kept {kept} of {size} acknowledged inquiries");
    assert_eq!(
        kept, 0,
        "what the standby had not received is lost, acknowledged or not"
    );
    xinhua.store = promoted;
}

/// 鼎城区 in-process on an ordinary test database, and 新化县 as a `hancha serve` process on the
/// pair, given the primary's address first and the standby's second, its registry holding every
/// other person of the sweep. The node is started.
async fn xinhua_on(pair: &ReplicatedPostgres) -> (Cluster, NodeProcess) {
    pair.create_database(DATABASE).await;
    let urls = [pair.url(Server::A, DATABASE), pair.url(Server::B, DATABASE)];
    let agreement = open_agreement(DINGCHENG, XINHUA);
    let limits = sweep_limits();
    let address = free_address();
    let cluster = Cluster::start_with_outside(
        &[DINGCHENG],
        std::slice::from_ref(&agreement),
        limits.clone(),
        &[(XINHUA, address)],
    )
    .await;
    let mut xinhua = NodeProcess::prepare_on(
        &cluster,
        XINHUA,
        address,
        std::slice::from_ref(&agreement),
        &[(DINGCHENG, cluster.address(DINGCHENG))],
        &limits,
        &urls,
        None,
    )
    .await;
    xinhua
        .store
        .upsert_persons(&registry_of_every_other(SWEEP + WHILE_FENCED))
        .await
        .unwrap();
    xinhua.start().await;
    (cluster, xinhua)
}

/// Waits until the responder has accepted a few batches, not all; returns how many it holds.
async fn mid_sweep(responder: &Store) -> i64 {
    let deadline = Instant::now() + SWEEP_PATIENCE;
    loop {
        let accepted = count_in(
            responder,
            "SELECT count(*) FROM inquiries WHERE direction = 'inbound'",
        )
        .await;
        assert!(
            accepted < i64::from(SWEEP),
            "the sweep ended before the primary could be killed"
        );
        if accepted >= 3 * SWEEP_BATCH as i64 {
            return accepted;
        }
        assert!(Instant::now() < deadline, "the sweep did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the node writes, counted: inquiries, confirmations, audit records, outbox entries.
async fn written(store: &Store) -> [i64; 4] {
    let mut counts = [0; 4];
    for (count, table) in counts
        .iter_mut()
        .zip(["inquiries", "confirmations", "audit_log", "outbox"])
    {
        *count = count_in(store, &format!("SELECT count(*) FROM {table}")).await;
    }
    counts
}

/// The sorted ids `sql` selects.
async fn ids_of(store: &Store, sql: &str) -> Vec<Uuid> {
    let database = common::database(store).await;
    let mut ids: Vec<Uuid> = sqlx::query_scalar(sql).fetch_all(&database).await.expect(sql);
    database.close().await;
    ids.sort();
    ids
}

/// Answered inquiries at the asker.
async fn answered(asker: &Store) -> i64 {
    count_in(
        asker,
        "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered'",
    )
    .await
}

/// Exactly the inquiries `sent` crossed from the asker to the responder, each received once,
/// answered once, and the one answer arrived once.
async fn assert_exactly_once(asker: &Store, responder: &Store, sent: &[Uuid]) {
    let mut sent = sent.to_vec();
    sent.sort();
    let asked = ids_of(
        asker,
        "SELECT message_id FROM inquiries WHERE direction = 'outbound'",
    )
    .await;
    assert_eq!(asked, sent, "the asker holds exactly the inquiries it sent");
    let received = ids_of(
        responder,
        "SELECT message_id FROM inquiries WHERE direction = 'inbound'",
    )
    .await;
    assert_eq!(received, sent, "the responder received each inquiry exactly once");
    assert_eq!(
        count_in(
            responder,
            "SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND state <> 'answered'"
        )
        .await,
        0,
        "the responder answered every inquiry"
    );
    let written = ids_of(
        responder,
        "SELECT message_id FROM confirmations WHERE direction = 'outbound'",
    )
    .await;
    let stored = ids_of(
        asker,
        "SELECT message_id FROM confirmations WHERE direction = 'inbound'",
    )
    .await;
    assert_eq!(written.len(), sent.len(), "one confirmation written per inquiry");
    assert_eq!(
        stored, written,
        "the asker holds exactly the responder's confirmations"
    );
    assert_eq!(
        count_in(
            responder,
            "SELECT coalesce(sum(inquiries), 0)::bigint FROM daily_volume"
        )
        .await,
        sent.len() as i64,
        "the daily cap counted each inquiry once"
    );
}

/// Fast retries, small batches and a short lease (as in the interrupted sweeps of
/// `exchange_durability`), so that work held up by the failover is due again within moments.
fn sweep_limits() -> Limits {
    Limits {
        batch_size: SWEEP_BATCH,
        lease: Duration::from_secs(2),
        lease_renewal: Duration::from_millis(500),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    }
}

/// Certificate verifications of the synthetic women `numbers` registered in 新化县.
fn sweep(numbers: std::ops::Range<u32>) -> Vec<InquiryDraft> {
    numbers
        .map(|n| InquiryDraft {
            kind: InquiryKind::CertificateVerification,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: synthetic_id(XINHUA, n),
                certificate_number: None,
            },
            message_id: None,
        })
        .collect()
}

/// Every even-numbered woman of the sweep, so half of the sweep is found.
fn registry_of_every_other(size: u32) -> Vec<Person> {
    (0..size)
        .step_by(2)
        .map(|n| outflow_person(synthetic_id(XINHUA, n), XINHUA, DINGCHENG))
        .collect()
}

fn ids(inquiries: &[hancha::domain::message::Inquiry]) -> Vec<Uuid> {
    inquiries.iter().map(|i| i.message_id).collect()
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}
