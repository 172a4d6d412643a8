//! Notices and their feedback survive kill -9 of either node in the middle of a batch: every
//! notice is received once, acknowledged once, answered once, and the answer arrives once. And
//! what one side loses anyway (a notice, a feedback) is repaired by reconciliation, once.
//!
//! The interrupted node runs as a real `hancha serve` process so that killing it is a real
//! crash (its connections drop mid-stream, its open transactions roll back); the other side runs
//! in-process. Notices and feedback go through the same outbox and delivery worker as inquiries
//! (see `exchange_durability.rs`, whose pattern this follows).

mod common;

use std::time::{Duration, Instant};

use common::pair::{reconcile, set};
use common::*;
use hancha::config::Limits;
use hancha::domain::agreement::Agreement;
use hancha::domain::division::CountyCode;
use hancha::domain::feedback::FeedbackOutcome;
use hancha::domain::message::Subject;
use hancha::domain::vocabulary::{NoticeKind, NoticeValues};
use hancha::node::{FeedbackDraft, Node, NoticeDraft};
use hancha::proto::operator as pb;
use hancha::store::Store;
use uuid::Uuid;

/// Birth notices in the batch a node is killed in the middle of.
const NOTICES: u32 = 400;

/// Messages per delivery batch: small, so that the batch passes in many steps.
const BATCH: usize = 10;

const PATIENCE_HERE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Killed {
    /// 鼎城区, which sends the notices and receives the feedback.
    Sender,
    /// 新化县, which receives the notices and sends the feedback.
    Receiver,
}

#[tokio::test]
async fn reconciliation_repairs_a_lost_notice_and_lost_feedback_each_once() {
    let cluster = every_notice_pair().await;
    let birth = notify(&cluster, notify_request("birth", 21, &[("child_sex", "female")]))
        .await
        .unwrap();
    let moved = notify(
        &cluster,
        notify_request("moved_on", 22, &[("new_county", "430582")]),
    )
    .await
    .unwrap();
    let mut xinhua = cluster.operator(XINHUA).await;
    let given = xinhua
        .feedback(pb::FeedbackRequest {
            notice_id: birth.message_id.clone(),
            outcome: "registered".into(),
            wait_ms: 10_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(given.state, "delivered");

    // 新化县 loses the departure notice; 鼎城区 loses the feedback
    let moved_id: uuid::Uuid = moved.message_id.parse().unwrap();
    let feedback_id: uuid::Uuid = given.message_id.parse().unwrap();
    // the notice is lost with what it did here (it waits for an operator: nothing applied)
    let xinhua_database = database(cluster.node(XINHUA).store()).await;
    for table in ["notice_effects", "notices"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE message_id = $1"))
            .bind(moved_id)
            .execute(&xinhua_database)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM feedback WHERE message_id = $1")
        .bind(feedback_id)
        .execute(&database(cluster.node(DINGCHENG).store()).await)
        .await
        .unwrap();

    let summaries = reconcile(cluster.node(DINGCHENG), XINHUA).await;
    let messages = set(&summaries, "messages");
    assert_eq!(messages.record.differences, 2, "{:?}", messages.record);
    assert_eq!(messages.committed.repaired, 1, "鼎城区 re-delivers its notice");
    assert_eq!(messages.peer_repaired, 1, "新化县 re-delivers its feedback");

    eventually("the lost notice and feedback are back", || async {
        let notice = count(
            cluster.node(XINHUA),
            &format!("SELECT count(*) FROM notices WHERE message_id = '{moved_id}'"),
        )
        .await;
        let feedback = count(
            cluster.node(DINGCHENG),
            &format!("SELECT count(*) FROM feedback WHERE message_id = '{feedback_id}'"),
        )
        .await;
        (notice == 1 && feedback == 1).then_some(())
    })
    .await;
    for county in [DINGCHENG, XINHUA] {
        assert_eq!(
            count(cluster.node(county), "SELECT count(*) FROM notices").await,
            2,
            "{county}"
        );
        assert_eq!(
            count(cluster.node(county), "SELECT count(*) FROM feedback").await,
            1,
            "{county}"
        );
    }
    let again = reconcile(cluster.node(DINGCHENG), XINHUA).await;
    assert_eq!(
        set(&again, "messages").record.differences,
        0,
        "nothing differs any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_and_feedback_arrive_exactly_once_when_the_sender_is_killed_mid_batch() {
    interrupted(Killed::Sender).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_and_feedback_arrive_exactly_once_when_the_receiver_is_killed_mid_batch() {
    interrupted(Killed::Receiver).await;
}

async fn interrupted(killed: Killed) {
    let terms = Terms::every_notice();
    let agreement = agreement_toml(DINGCHENG, XINHUA, 1, ("2026-01-01", "2030-12-31"), &terms, &terms);
    let limits = Limits {
        batch_size: BATCH,
        lease: Duration::from_secs(2),
        lease_renewal: Duration::from_millis(500),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    let (in_process, as_process) = match killed {
        Killed::Sender => (XINHUA, DINGCHENG),
        Killed::Receiver => (DINGCHENG, XINHUA),
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
    // The process's work is queued through a node on its own database (what its operator API
    // calls), the in-process side's through its running node.
    let beside_process = Node::new(
        county(as_process),
        process.store.clone(),
        vec![Agreement::parse(&agreement).expect("test agreement parses")],
        limits.clone(),
    );
    let (sender, receiver): (&Node, &Node) = match killed {
        Killed::Sender => (&beside_process, cluster.node(XINHUA)),
        Killed::Receiver => (cluster.node(DINGCHENG), &beside_process),
    };
    let (sender_store, receiver_store) = (sender.store().clone(), receiver.store().clone());
    let started = Instant::now();

    // notices: queued while the process is down (so that none can arrive before all are
    // queued, however slowly the queueing goes), then the process started and killed while
    // they arrive
    let mut sent = Vec::new();
    for n in 0..NOTICES {
        let outcome = sender
            .notify(county(XINHUA), birth(n), Duration::ZERO)
            .await
            .expect("notice queued");
        sent.push(outcome.message_id);
    }
    process.start().await;
    let inbound_notices = "SELECT count(*) FROM notices WHERE direction = 'inbound'";
    reached("notices arriving", &receiver_store, inbound_notices).await;
    process.kill();
    eprintln!(
        "killed the {killed:?} while notices arrived at {:?}",
        started.elapsed()
    );
    process.start().await;
    eventually_within(
        "every notice acknowledged at the sender",
        PATIENCE_HERE,
        || async {
            let acknowledged = count_in(
                &sender_store,
                "SELECT count(*) FROM notices WHERE direction = 'outbound' AND acknowledged_at IS NOT NULL",
            )
            .await;
            (acknowledged == i64::from(NOTICES)).then_some(())
        },
    )
    .await;

    // feedback to every notice: given while the process is down, then the process started
    // and killed while it arrives
    process.kill();
    for &notice_id in &sent {
        let draft = FeedbackDraft {
            notice_id,
            outcome: FeedbackOutcome::Registered,
            note: Some("已登记".into()),
            message_id: None,
        };
        receiver
            .give_feedback(draft, Duration::ZERO)
            .await
            .expect("feedback queued");
    }
    process.start().await;
    let inbound_feedback = "SELECT count(*) FROM feedback WHERE direction = 'inbound'";
    reached("feedback arriving", &sender_store, inbound_feedback).await;
    process.kill();
    eprintln!(
        "killed the {killed:?} while feedback arrived at {:?}",
        started.elapsed()
    );
    process.start().await;
    eventually_within("every feedback received at the sender", PATIENCE_HERE, || async {
        (count_in(&sender_store, inbound_feedback).await == i64::from(NOTICES)).then_some(())
    })
    .await;
    for store in [&sender_store, &receiver_store] {
        eventually_within("the outbox drains", PATIENCE_HERE, || async {
            (count_in(store, "SELECT count(*) FROM outbox").await == 0).then_some(())
        })
        .await;
    }
    assert_exactly_once(&sender_store, &receiver_store, &sent).await;
    eprintln!("all done at {:?}", started.elapsed());
}

/// A birth notice about woman `n` registered in 新化县.
fn birth(n: u32) -> NoticeDraft {
    NoticeDraft {
        kind: NoticeKind::Birth,
        subject: Subject {
            resident_id: synthetic_id(XINHUA, n),
            certificate_number: None,
        },
        occurred_on: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        fields: NoticeValues::parse(
            NoticeKind::Birth,
            [("child_sex", "female"), ("birth_order", "1")],
            "fields",
        )
        .unwrap(),
        message_id: None,
    }
}

/// Waits until at least one batch, and not everything, counted by `sql` is in `store`.
async fn reached(what: &str, store: &Store, sql: &str) {
    let deadline = Instant::now() + PATIENCE_HERE;
    loop {
        let progress = count_in(store, sql).await;
        assert!(
            progress < i64::from(NOTICES),
            "{what}: everything passed before it could be interrupted"
        );
        if progress >= BATCH as i64 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: did not start in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Each notice `sent` is held once on each side, acknowledged, answered once, and its answer
/// held once on each side; one acceptance audited per message.
async fn assert_exactly_once(sender: &Store, receiver: &Store, sent: &[Uuid]) {
    let expected = sent.len() as i64;
    let sent_list = sent
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    for (store, direction) in [(sender, "outbound"), (receiver, "inbound")] {
        assert_eq!(
            count_in(
                store,
                &format!("SELECT count(*) FROM notices WHERE direction = '{direction}' AND message_id IN ({sent_list})")
            )
            .await,
            expected,
            "{direction} notices"
        );
        assert_eq!(count_in(store, "SELECT count(*) FROM notices").await, expected);
        assert_eq!(count_in(store, "SELECT count(*) FROM feedback").await, expected);
        assert_eq!(
            count_in(
                store,
                &format!("SELECT count(DISTINCT notice_id) FROM feedback WHERE notice_id IN ({sent_list})")
            )
            .await,
            expected,
            "one answer per notice"
        );
    }
    assert_eq!(
        count_in(
            receiver,
            "SELECT count(*) FROM audit_log WHERE direction = 'inbound' AND outcome = 'accepted' AND kind = 'birth'"
        )
        .await,
        expected,
        "one acceptance audited per notice"
    );
    assert_eq!(
        count_in(
            sender,
            "SELECT count(*) FROM audit_log WHERE direction = 'inbound' AND outcome = 'accepted' AND kind = 'feedback'"
        )
        .await,
        expected,
        "one acceptance audited per feedback"
    );
    assert_eq!(
        count_in(
            sender,
            "SELECT count(*) FROM feedback f JOIN notices n ON n.message_id = f.notice_id
              WHERE f.direction = 'inbound' AND n.direction = 'outbound'"
        )
        .await,
        expected,
        "every answer is linked to its notice"
    );
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}
