//! Nothing is lost and nothing is doubled when nodes go away or lag: a peer that is down only
//! delays its own deliveries, a slow peer keeps its batch leased to one sender, the same message
//! arriving twice at once is acknowledged twice and stored once, and a node killed in the middle
//! of a sweep (SIGKILL, no chance to tidy up) or stopped gracefully answers every inquiry exactly
//! once after it comes back.
//!
//! In the sweeps the interrupted node runs as a real `hancha serve` process so that killing it
//! is a real crash: its connections drop mid-stream and its open transactions are rolled back by
//! PostgreSQL. The other side runs in-process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hancha::config::Limits;
use hancha::domain::agreement::Agreement;
use hancha::domain::division::CountyCode;
use hancha::domain::message::Subject;
use hancha::domain::person::Person;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::{InquiryDraft, Node};
use hancha::store::Store;
use uuid::Uuid;

/// The sweep a node is killed in the middle of: 100 batches of [`SWEEP_BATCH`].
const SWEEP: u32 = 10_000;

/// Messages per batch in the interrupted sweeps: small, so that a sweep passes in many steps
/// and stopping it after a given number of accepted inquiries lands in its middle.
const SWEEP_BATCH: usize = 100;

/// The sweep a node is stopped gracefully in the middle of.
const SMALL_SWEEP: u32 = 2_000;

/// How long a whole sweep, interruption and restart included, may take before the test fails.
const SWEEP_PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queue_while_a_peer_is_down_and_arrive_exactly_once_after_it_returns_without_delaying_a_third_county()
 {
    let mut cluster = Cluster::start(
        &[DINGCHENG, XINHUA, SHAODONG],
        &[
            open_agreement(DINGCHENG, XINHUA),
            open_agreement(DINGCHENG, SHAODONG),
        ],
    )
    .await;
    cluster.stop(XINHUA).await;
    let asker = cluster.node(DINGCHENG).clone();

    let started = Instant::now();
    let (to_xinhua, _) = asker
        .send_inquiries(county(XINHUA), sweep(XINHUA, 0..50))
        .await
        .unwrap();
    let (to_shaodong, _) = asker
        .send_inquiries(county(SHAODONG), sweep(SHAODONG, 0..50))
        .await
        .unwrap();

    eventually("the 50 inquiries to 邵东市 are answered", || async {
        let answered = count(
            &asker,
            "SELECT count(*) FROM inquiries WHERE peer_county = '430582' AND state = 'answered'",
        )
        .await;
        (answered == 50).then_some(())
    })
    .await;
    let shaodong_took = started.elapsed();
    assert!(
        shaodong_took < Duration::from_secs(5),
        "邵东市's answers took {shaodong_took:?} while 新化县 was down"
    );
    // Still down: every inquiry to 新化县 waits in the outbox, tried and failed, none lost.
    let failures: Vec<(i32, Option<String>)> = eventually("新化县's deliveries have failed once", || async {
        let rows: Vec<(i32, Option<String>)> = sqlx::query_as(
            "SELECT attempts, last_error FROM outbox WHERE peer_county = '431322' AND message_type = 'inquiry'",
        )
        .fetch_all(&common::database(asker.store()).await)
        .await
        .unwrap();
        rows.iter()
            .all(|(attempts, error)| *attempts > 0 && error.is_some())
            .then_some(rows)
    })
    .await;
    assert_eq!(
        failures.len(),
        50,
        "every inquiry to 新化县 is still in the outbox"
    );
    assert_eq!(
        count(
            &asker,
            "SELECT count(*) FROM inquiries WHERE peer_county = '431322' AND state = 'queued'"
        )
        .await,
        50
    );
    let shaodong = cluster.node(SHAODONG).clone();
    assert_eq!(
        count(
            &shaodong,
            "SELECT count(*) FROM inquiries WHERE direction = 'inbound'"
        )
        .await,
        50
    );

    cluster.restart(XINHUA).await;
    eventually(
        "the 50 inquiries to 新化县 are answered after it returns",
        || async {
            let answered = count(
                &asker,
                "SELECT count(*) FROM inquiries WHERE peer_county = '431322' AND state = 'answered'",
            )
            .await;
            (answered == 50).then_some(())
        },
    )
    .await;

    let xinhua = cluster.node(XINHUA).clone();
    assert_outboxes_drain(&[asker.store(), xinhua.store(), shaodong.store()]).await;
    assert_exactly_once(asker.store(), xinhua.store(), XINHUA, &ids(&to_xinhua)).await;
    assert_exactly_once(asker.store(), shaodong.store(), SHAODONG, &ids(&to_shaodong)).await;
}

/// A peer that takes longer than the delivery lease to answer a batch: the sender keeps the
/// batch leased the whole time (another replica would find nothing to send), and the batch
/// arrives once when the peer gets going again. The peer is held up by a lock on its daily-cap
/// row, which every inquiry batch from that county must take. The lease is two seconds, so the
/// batch outlives it (renewed every 250 ms) in a moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_held_up_by_a_slow_peer_stays_leased_to_its_sender_and_arrives_once() {
    let limits = Limits {
        lease: Duration::from_secs(2),
        lease_renewal: Duration::from_millis(250),
        ..quick_retries()
    };
    let cluster = Cluster::start_with(
        &[DINGCHENG, XINHUA],
        &[open_agreement(DINGCHENG, XINHUA)],
        limits.clone(),
    )
    .await;
    let asker = cluster.node(DINGCHENG).clone();
    let responder = cluster.node(XINHUA).clone();
    let mut hold = common::database(responder.store()).await.begin().await.unwrap();
    let today = hancha::node::china_date(chrono::Utc::now());
    sqlx::query(
        "INSERT INTO daily_volume (peer_county, day, inquiries) VALUES ('430703', $1, 0)
         ON CONFLICT (peer_county, day) DO NOTHING",
    )
    .bind(today)
    .execute(&mut *hold)
    .await
    .unwrap();
    sqlx::query("SELECT 1 FROM daily_volume WHERE peer_county = '430703' AND day = $1 FOR UPDATE")
        .bind(today)
        .execute(&mut *hold)
        .await
        .unwrap();

    let (sent, _) = asker
        .send_inquiries(county(XINHUA), sweep(XINHUA, 0..10))
        .await
        .unwrap();
    let first_lease_ends: chrono::DateTime<chrono::Utc> = eventually("the batch is on the wire", || async {
        let (leased, ends): (i64, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
            "SELECT count(*), max(next_attempt_at) FROM outbox WHERE attempts = 1 AND next_attempt_at > now()",
        )
        .fetch_one(&common::database(asker.store()).await)
        .await
        .unwrap();
        (leased == 10).then_some(ends).flatten()
    })
    .await;
    // Past the first lease, every entry is still leased: without renewal they would be due again.
    eventually("the batch outlives its first lease, still leased", || async {
        let (past_first_lease, still_leased): (bool, i64) = sqlx::query_as(
            "SELECT now() > $1, count(*) FILTER (WHERE next_attempt_at > now()) FROM outbox WHERE attempts = 1",
        )
        .bind(first_lease_ends)
        .fetch_one(&common::database(asker.store()).await)
        .await
        .unwrap();
        assert_eq!(still_leased, 10, "the lease on a batch still on the wire lapsed");
        past_first_lease.then_some(())
    })
    .await;
    let taken_by_another_replica = asker
        .store()
        .lease_outbox(
            county(XINHUA),
            hancha::store::outbound::MessageType::Inquiry,
            500,
            limits.lease,
        )
        .await
        .unwrap();
    assert!(
        taken_by_another_replica.is_empty(),
        "a batch still on the wire was leased again: {} entries",
        taken_by_another_replica.len()
    );
    assert_eq!(
        count(&asker, "SELECT count(*) FROM outbox WHERE attempts = 1").await,
        10,
        "the batch is still on its first attempt"
    );

    hold.rollback().await.unwrap();
    eventually("the held-up inquiries are answered", || async {
        let answered = count(
            &asker,
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered'",
        )
        .await;
        (answered == 10).then_some(())
    })
    .await;
    assert_outboxes_drain(&[asker.store(), responder.store()]).await;
    assert_exactly_once(asker.store(), responder.store(), XINHUA, &ids(&sent)).await;
}

/// A confirmation can reach the asker twice at the same moment: inline in the reply to a
/// clerk's synchronous inquiry, and from the responder's delivery worker, which sends every
/// confirmation it writes. Both copies are the same message: both must be acknowledged (one
/// stored, one a duplicate), never one refused as "already answered", which would make the
/// responder record its own confirmation as refused by the asker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_confirmation_arriving_twice_at_once_is_acknowledged_twice_and_stored_once() {
    // 鼎城区 alone: nothing but this test answers its inquiry to 新化县.
    let cluster = Cluster::start(&[DINGCHENG], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let asker = cluster.node(DINGCHENG).clone();
    let (sent, _) = asker
        .send_inquiries(county(XINHUA), sweep(XINHUA, 0..1))
        .await
        .unwrap();
    let confirmation = hancha::domain::message::Confirmation {
        message_id: Uuid::now_v7(),
        inquiry_id: sent[0].message_id,
        agreement: sent[0].agreement.clone(),
        outcome: hancha::domain::vocabulary::AnswerOutcome::NotFound,
        fields: Default::default(),
        answered_at: chrono::Utc::now(),
    };

    // Hold the inquiry row so that both copies are in the receiving transaction, past the
    // "seen this confirmation before?" check, before either commits.
    let mut hold = common::database(asker.store()).await.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM inquiries WHERE message_id = $1 FOR UPDATE")
        .bind(confirmation.inquiry_id)
        .execute(&mut *hold)
        .await
        .unwrap();
    let copies: Vec<_> = (0..2)
        .map(|_| {
            let (asker, confirmation) = (asker.clone(), confirmation.clone());
            tokio::spawn(async move {
                asker
                    .receive_confirmations(county(XINHUA), vec![Ok(confirmation)])
                    .await
                    .unwrap()
            })
        })
        .collect();
    eventually("both copies wait for the inquiry row", || async {
        let waiting = count(
            &asker,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        (waiting == 2).then_some(())
    })
    .await;
    hold.rollback().await.unwrap();

    for copy in copies {
        let receipts = copy.await.unwrap();
        assert!(
            matches!(receipts.as_slice(), [Ok(())]),
            "a copy of the confirmation was refused: {receipts:?}"
        );
    }
    assert_eq!(
        count(&asker, "SELECT count(*) FROM confirmations").await,
        1,
        "stored once"
    );
    assert_eq!(
        count(
            &asker,
            "SELECT count(*) FROM audit_log WHERE kind = 'confirmation' AND outcome = 'rejected'"
        )
        .await,
        0,
        "no refusal audited"
    );
}

/// The responder is the one to kill: it holds the most state in motion. It is killed twice:
/// once while inquiries are arriving (some it committed have no receipt at the asker yet, so the
/// asker must resend them and be told "duplicate"; an auto-answer transaction may be cut off and
/// must roll back whole), and once while its answers travel back (confirmations on the wire must
/// be resent, and not doubled). The next test kills the asker for the other side of the story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_batch_and_restarted_answers_every_inquiry_exactly_once() {
    interrupted_sweep(Role::Responder, Interruption::Kill, SWEEP).await;
}

/// Killing the asker: its outbox survives in its database, receipts and confirmations in
/// flight to it are lost with the process, and the responder keeps its confirmations until the
/// asker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asker_killed_mid_batch_and_restarted_gets_every_answer_exactly_once() {
    interrupted_sweep(Role::Asker, Interruption::Kill, SWEEP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_finishes_in_flight_work_and_loses_nothing() {
    interrupted_sweep(Role::Responder, Interruption::Terminate, SMALL_SWEEP).await;
}

/// Which side of the exchange runs as a process and is interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Asker,
    Responder,
}

/// How the process is interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interruption {
    /// SIGKILL: the process vanishes mid-whatever.
    Kill,
    /// SIGTERM: the node stops gracefully.
    Terminate,
}

/// When in the sweep the process is interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// The responder has accepted some of the inquiries, not all.
    InquiriesArriving,
    /// The asker has some of the answers, not all.
    AnswersArriving,
}

/// 鼎城区 sweeps `size` inquiries to 新化县 (half of the subjects are in 新化县's registry, so
/// answers are a mix of found and not found). The `interrupted` side runs as a `hancha serve`
/// process, which is interrupted while inquiries are arriving and again while answers are
/// arriving, each time started again on the same database. Every inquiry must end answered
/// exactly once.
async fn interrupted_sweep(interrupted: Role, how: Interruption, size: u32) {
    let agreement = open_agreement(DINGCHENG, XINHUA);
    let limits = sweep_limits();
    let (in_process, as_process) = match interrupted {
        Role::Asker => (XINHUA, DINGCHENG),
        Role::Responder => (DINGCHENG, XINHUA),
    };
    let process_address = free_address();
    let cluster = Cluster::start_with_outside(
        &[in_process],
        std::slice::from_ref(&agreement),
        limits.clone(),
        &[(as_process, process_address)],
    )
    .await;
    let mut process = NodeProcess::prepare(
        &cluster,
        as_process,
        process_address,
        std::slice::from_ref(&agreement),
        &[(in_process, cluster.address(in_process))],
        &limits,
    )
    .await;
    let (asker, responder) = match interrupted {
        Role::Asker => (process.store.clone(), cluster.node(XINHUA).store().clone()),
        Role::Responder => (cluster.node(DINGCHENG).store().clone(), process.store.clone()),
    };
    responder
        .upsert_persons(&registry_of_every_other(size))
        .await
        .unwrap();

    let started = Instant::now();
    let drafts = sweep(XINHUA, 0..size);
    let queued = match interrupted {
        Role::Responder => {
            process.start().await;
            let (queued, new) = cluster
                .node(DINGCHENG)
                .send_inquiries(county(XINHUA), drafts)
                .await
                .unwrap();
            assert_eq!(new, u64::from(size));
            queued
        }
        Role::Asker => {
            // The asker's outbox is filled before its process starts, through the same
            // `send_inquiries` its operator API uses; the process then delivers it.
            let queuing = Node::new(
                county(DINGCHENG),
                asker.clone(),
                vec![Agreement::parse(&agreement).expect("test agreement parses")],
                limits.clone(),
            );
            let (queued, new) = queuing.send_inquiries(county(XINHUA), drafts).await.unwrap();
            assert_eq!(new, u64::from(size));
            process.start().await;
            queued
        }
    };

    let mut answered_then = 0;
    for moment in [Moment::InquiriesArriving, Moment::AnswersArriving] {
        let accepted;
        (accepted, answered_then) = reached(moment, &asker, &responder, size, answered_then).await;
        // What the interrupted node was sending when it went must not stay hidden from its next
        // run for long: a killed node's in-flight batches come back after one short lease; a
        // gracefully stopped node finished them, or put them back for an ordinary retry.
        let hidden_longer_than = match how {
            Interruption::Kill => {
                process.kill();
                format!("{} seconds", (limits.lease + Duration::from_secs(5)).as_secs())
            }
            Interruption::Terminate => {
                let status = process.terminate().await;
                assert!(status.success(), "a graceful stop exits cleanly: {status}");
                "2 seconds".to_string()
            }
        };
        // An answer given inline is not on the wire: it stays owed until the asker acknowledges
        // it (never tried, no error), and the asker that lacks it gets it again inline when it
        // sends the inquiry again; those entries are not what this checks.
        let hidden = count_in(
            &process.store,
            &format!(
                "SELECT count(*) FROM outbox WHERE next_attempt_at > now() + interval '{hidden_longer_than}'
                   AND NOT (message_type = 'confirmation' AND attempts = 0 AND last_error IS NULL
                            AND next_attempt_at <= now() + interval '{} seconds')",
                limits.inline_answer_grace.as_secs()
            ),
        )
        .await;
        assert_eq!(
            hidden, 0,
            "outbox entries the {interrupted:?} left hidden for more than {hidden_longer_than} ({how:?})"
        );
        eprintln!(
            "{how:?} the {interrupted:?} at {:?} with {accepted} of {size} accepted and {answered_then} answered",
            started.elapsed()
        );
        process.start().await;
    }

    eventually_within(
        &format!("all {size} inquiries answered at the asker"),
        SWEEP_PATIENCE,
        || async { (answered(&asker).await == i64::from(size)).then_some(()) },
    )
    .await;
    eprintln!("all {size} answered at {:?}", started.elapsed());
    assert_outboxes_drain(&[&asker, &responder]).await;
    eprintln!("outboxes drained at {:?}", started.elapsed());
    assert_exactly_once(&asker, &responder, XINHUA, &ids(&queued)).await;
    assert_eq!(
        count_in(
            &asker,
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND outcome = 'found'"
        )
        .await,
        i64::from(size / 2),
        "the subjects in the registry are found, the others not"
    );
}

/// Waits for `moment` and returns (inquiries accepted by the responder, answers at the asker).
/// Inquiries count as arriving once a whole batch is in (so the interruption finds the next
/// ones on the wire); answers once more than `answered_before` are in, so that a node restarted
/// before is interrupted again only once it is at work. Polls fast: a batch passes in a moment.
async fn reached(
    moment: Moment,
    asker: &Store,
    responder: &Store,
    size: u32,
    answered_before: i64,
) -> (i64, i64) {
    let size = i64::from(size);
    let deadline = Instant::now() + SWEEP_PATIENCE;
    loop {
        let accepted = count_in(
            responder,
            "SELECT count(*) FROM inquiries WHERE direction = 'inbound'",
        )
        .await;
        let answered = answered(asker).await;
        let (progress, enough) = match moment {
            Moment::InquiriesArriving => (accepted, SWEEP_BATCH as i64),
            Moment::AnswersArriving => (answered, answered_before + 1),
        };
        assert!(
            progress < size,
            "the sweep went past {moment:?} before it could be interrupted"
        );
        if progress >= enough {
            return (accepted, answered);
        }
        assert!(
            Instant::now() < deadline,
            "the sweep did not reach {moment:?} in {SWEEP_PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Answered inquiries at the asker.
async fn answered(asker: &Store) -> i64 {
    count_in(
        asker,
        "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered'",
    )
    .await
}

/// Exactly the inquiries `sent` crossed from the asker to `responder`, each received once,
/// answered once, and the one answer arrived once.
async fn assert_exactly_once(asker: &Store, responder: &Store, responder_county: &str, sent: &[Uuid]) {
    let expected = sent.len() as i64;
    let mut sent = sent.to_vec();
    sent.sort();
    let peer = |sql: &str| sql.replace("$peer", &format!("'{responder_county}'"));

    let asked: Vec<Uuid> = sqlx::query_scalar(&peer(
        "SELECT message_id FROM inquiries WHERE direction = 'outbound' AND peer_county = $peer ORDER BY message_id",
    ))
    .fetch_all(&common::database(asker).await)
    .await
    .unwrap();
    assert_eq!(asked, sent, "the asker holds exactly the inquiries it sent");
    let received: Vec<Uuid> = sqlx::query_scalar(
        "SELECT message_id FROM inquiries WHERE direction = 'inbound' ORDER BY message_id",
    )
    .fetch_all(&common::database(responder).await)
    .await
    .unwrap();
    assert_eq!(received, sent, "the responder received each inquiry exactly once");

    let not_answered = |direction: &str| {
        format!("SELECT count(*) FROM inquiries WHERE direction = '{direction}' AND state <> 'answered'")
    };
    assert_eq!(
        count_in(
            asker,
            &peer(&format!("{} AND peer_county = $peer", not_answered("outbound")))
        )
        .await,
        0
    );
    assert_eq!(count_in(responder, &not_answered("inbound")).await, 0);

    // One confirmation per inquiry on each side (the UNIQUE index on inquiry_id guarantees it;
    // counted anyway), and they are the same confirmations: the ones the responder wrote.
    let confirmations = |direction: &str, peer: &str| {
        format!(
            "SELECT message_id, inquiry_id FROM confirmations WHERE direction = '{direction}' AND peer_county = '{peer}'
             ORDER BY message_id"
        )
    };
    let written: Vec<(Uuid, Uuid)> = sqlx::query_as(&confirmations("outbound", DINGCHENG))
        .fetch_all(&common::database(responder).await)
        .await
        .unwrap();
    let stored: Vec<(Uuid, Uuid)> = sqlx::query_as(&confirmations("inbound", responder_county))
        .fetch_all(&common::database(asker).await)
        .await
        .unwrap();
    assert_eq!(
        written.len() as i64,
        expected,
        "one confirmation written per inquiry"
    );
    assert_eq!(
        stored, written,
        "the asker holds exactly the responder's confirmations"
    );
    let mut answered: Vec<Uuid> = stored.iter().map(|(_, inquiry)| *inquiry).collect();
    answered.sort();
    answered.dedup();
    assert_eq!(answered, sent, "no inquiry has two confirmations, none has none");

    // Resent inquiries were recognised: accepted (and counted against the daily cap) once.
    assert_eq!(
        count_in(
            responder,
            "SELECT coalesce(sum(inquiries), 0)::bigint FROM daily_volume"
        )
        .await,
        expected,
        "the daily cap counted each inquiry once"
    );
    assert_eq!(
        count_in(
            responder,
            "SELECT count(*) FROM audit_log WHERE direction = 'inbound' AND outcome = 'accepted'
             AND kind <> 'confirmation'"
        )
        .await,
        expected,
        "one acceptance audited per inquiry"
    );
}

/// Every outbox empties (the last receipts may still be on their way when the answers are in),
/// and every confirmation a responder wrote is recorded as delivered.
async fn assert_outboxes_drain(stores: &[&Store]) {
    for (index, store) in stores.iter().enumerate() {
        eventually_within(&format!("outbox {index} is empty"), SWEEP_PATIENCE, || async {
            let left = count_in(store, "SELECT count(*) FROM outbox").await;
            (left == 0).then_some(())
        })
        .await;
        assert_eq!(
            count_in(
                store,
                "SELECT count(*) FROM confirmations WHERE direction = 'outbound' AND delivered_at IS NULL"
            )
            .await,
            0,
            "every confirmation is recorded as delivered"
        );
    }
}

/// Fast retries, so a peer that comes back is reached within half a second.
fn quick_retries() -> Limits {
    Limits {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    }
}

/// Limits for an interrupted sweep: fast retries, small batches (see [`SWEEP_BATCH`]), and a
/// two-second lease, so that what a killed node was sending is due again two seconds after it
/// went rather than ten.
fn sweep_limits() -> Limits {
    Limits {
        batch_size: SWEEP_BATCH,
        lease: Duration::from_secs(2),
        lease_renewal: Duration::from_millis(500),
        ..quick_retries()
    }
}

/// Certificate verifications of the synthetic women `numbers` registered in `registered`.
fn sweep(registered: &str, numbers: std::ops::Range<u32>) -> Vec<InquiryDraft> {
    numbers
        .map(|n| InquiryDraft {
            kind: InquiryKind::CertificateVerification,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: synthetic_id(registered, n),
                certificate_number: None,
            },
            message_id: None,
        })
        .collect()
}

/// 新化县's registry of its outflow persons living in 鼎城区: every even-numbered woman of the
/// sweep, so half of the sweep is found.
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
