//! Replicas under load: three replicas of 鼎城区's node (`hancha serve` processes, each in a
//! process group of its own) share one database behind one address, a TCP load balancer of the
//! test's own ([`Balancer`]); mutual TLS runs end to end, every replica presenting 鼎城区's
//! certificate. 新化县 (in this process) knows 鼎城区 only by the balancer's address.
//!
//! Both counties sweep each other at once, and a clerk at 新化县's windows keeps asking single
//! inquiries through the balancer. In the middle of both sweeps the replica holding 新化县's
//! connection is killed with SIGKILL (its whole process group): inquiries it was receiving must
//! be resent to another replica and recognised there, the outbox batches it had leased must be
//! taken over by the two survivors once the lease runs out, and the clerk must keep being
//! answered. Counted in both databases, every inquiry of both sweeps and of the clerk is
//! answered exactly once.
//!
//! The clerk's calls that were on the killed replica's connection (in flight between the kill
//! and the balancer closing that connection, counted and printed) are the most that could fail;
//! the asking node sends such a call again on a new connection, so none does, and the test
//! asserts that every call was answered inline. Without the resend those calls come back
//! "queued" (the deferred path).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures::future::BoxFuture;
use hancha::config::Limits;
use hancha::domain::agreement::Agreement;
use hancha::domain::delivery::{CallFailure, PeerVerdict};
use hancha::domain::division::CountyCode;
use hancha::domain::message::{Confirmation, Inquiry, InquiryState, Subject};
use hancha::domain::peer_status::NodeStatus;
use hancha::domain::person::Person;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::{InquiryDraft, Node};
use hancha::peer::{InlineReply, PeerLink, Verdicts};
use hancha::store::Store;
use uuid::Uuid;

/// Inquiries in each county's sweep.
const SWEEP: u32 = 3_000;

/// Messages per delivery batch: small, so that a sweep passes in many batches and a replica
/// dies with some of them on the wire.
const SWEEP_BATCH: usize = 50;

/// Clerks asking at once at 新化县's windows, one inquiry after another each.
const CLERKS: u32 = 2;

/// Where the clerks' subjects start, past the sweeps' (so no subject is asked twice).
const CLERK_SUBJECTS: u32 = 100_000;

/// How long a clerk waits for an answer inline.
const CLERK_WAIT: Duration = Duration::from_secs(5);

/// Answered single inquiries the clerks must have had after the kill before they stop.
const CLERK_CALLS_AFTER_KILL: usize = 20;

/// How long the whole exchange may take before the test fails.
const SWEEP_PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_sweep_behind_a_balancer_loses_and_doubles_nothing_and_the_clerk_keeps_being_answered()
 {
    let agreement = open_agreement(DINGCHENG, XINHUA);
    let limits = sweep_limits();
    let replica_addresses = distinct_free_addresses(3);
    let balancer = Balancer::start(&replica_addresses).await;
    let cluster = Cluster::start_with_outside(
        &[XINHUA],
        std::slice::from_ref(&agreement),
        limits.clone(),
        &[(DINGCHENG, balancer.address())],
    )
    .await;
    let xinhua = cluster.node(XINHUA).clone();
    let mut first = NodeProcess::prepare(
        &cluster,
        DINGCHENG,
        replica_addresses[0],
        std::slice::from_ref(&agreement),
        &[(XINHUA, cluster.address(XINHUA))],
        &limits,
    )
    .await;
    first.in_own_process_group();
    let second = first.replica("replica-2", replica_addresses[1]);
    let third = first.replica("replica-3", replica_addresses[2]);
    let mut replicas = vec![first, second, third];
    let dingcheng = replicas[0].store.clone();

    // Half of each sweep is in the other side's registry (found), half not (not found); every
    // clerk's subject is found.
    dingcheng
        .upsert_persons(&registry(
            DINGCHENG,
            XINHUA,
            every_other(SWEEP).chain(clerk_subjects()),
        ))
        .await
        .unwrap();
    xinhua
        .store()
        .upsert_persons(&registry(XINHUA, DINGCHENG, every_other(SWEEP)))
        .await
        .unwrap();
    for replica in &mut replicas {
        replica.start().await;
    }

    // The clerks start before the sweeps and ask until told to stop.
    let stop_clerks = Arc::new(AtomicBool::new(false));
    let next_subject = Arc::new(AtomicU32::new(CLERK_SUBJECTS));
    let calls: Calls = Arc::default();
    let on_the_wire: OnTheWire = Arc::default();
    let clerks: Vec<_> = (0..CLERKS)
        .map(|_| {
            tokio::spawn(clerk(
                xinhua.clone(),
                Arc::clone(&next_subject),
                Arc::clone(&calls),
                Arc::clone(&on_the_wire),
                Arc::clone(&stop_clerks),
            ))
        })
        .collect();

    let started = Instant::now();
    // 鼎城区's sweep is queued in its database, as any replica's operator API would.
    let queuing = Node::new(
        county(DINGCHENG),
        dingcheng.clone(),
        vec![Agreement::parse(&agreement).expect("test agreement parses")],
        limits.clone(),
    );
    let (dingcheng_sweep, _) = queuing
        .send_inquiries(county(XINHUA), sweep(XINHUA, 0..SWEEP))
        .await
        .unwrap();
    let (xinhua_sweep, _) = xinhua
        .send_inquiries(county(DINGCHENG), sweep(DINGCHENG, 0..SWEEP))
        .await
        .unwrap();

    let dingcheng_asked = ids(&dingcheng_sweep);
    let xinhua_asked = ids(&xinhua_sweep);
    mid_sweep(&dingcheng, &dingcheng_asked, xinhua.store(), &xinhua_asked).await;
    // 新化县 holds one connection to 鼎城区 (its channel carries the sweep, its answers' receipts
    // and the clerks' calls): the replica at its other end is the one to kill. So that it dies
    // with work on that connection, every inquiry from 新化县 is held up at 鼎城区 first (each
    // must take 新化县's daily-cap row, which the test locks): the kill comes once a clerk's call
    // has waited a second there (well inside the clerk's statement timeout, 5 s), and the
    // batches of the sweep are stuck beside it.
    let mut hold = database(&dingcheng).await.begin().await.unwrap();
    let today = hancha::node::china_date(chrono::Utc::now());
    sqlx::query(&format!(
        "INSERT INTO daily_volume (peer_county, day, inquiries) VALUES ('{XINHUA}', $1, 0)
         ON CONFLICT (peer_county, day) DO NOTHING"
    ))
    .bind(today)
    .execute(&mut *hold)
    .await
    .unwrap();
    sqlx::query(&format!(
        "SELECT 1 FROM daily_volume WHERE peer_county = '{XINHUA}' AND day = $1 FOR UPDATE"
    ))
    .bind(today)
    .execute(&mut *hold)
    .await
    .unwrap();
    let held_since = Instant::now();
    let victim = eventually(
        "a clerk's call waits at the replica 新化县 is connected to",
        || async {
            let connected = balancer.open_connections().iter().position(|&open| open > 0);
            let waiting = on_the_wire
                .lock()
                .unwrap()
                .values()
                .any(|&started| started.max(held_since).elapsed() > Duration::from_secs(1));
            connected.filter(|_| waiting)
        },
    )
    .await;
    let killed_at = Instant::now();
    replicas[victim].kill_process_group();
    eprintln!(
        "killed replica {} at {:?}: {} and {} of {SWEEP} answered",
        victim + 1,
        started.elapsed(),
        answered(&dingcheng, &dingcheng_asked).await,
        answered(xinhua.store(), &xinhua_asked).await,
    );
    // Nothing is hidden from the survivors for longer than one lease: the batches the killed
    // replica was sending come due when their lease runs out (answers given inline, never tried
    // yet, wait for the asker's acknowledgement instead, by design).
    let hidden = count_in(
        &dingcheng,
        &format!(
            "SELECT count(*) FROM outbox WHERE attempts > 0
             AND next_attempt_at > now() + interval '{} seconds'",
            (limits.lease + Duration::from_secs(5)).as_secs()
        ),
    )
    .await;
    assert_eq!(
        hidden, 0,
        "outbox entries the killed replica left hidden past its lease"
    );
    let connection_closed_at = eventually(
        "the balancer sees the killed replica's connection close",
        || async { balancer.last_closed(victim).filter(|&closed| closed >= killed_at) },
    )
    .await;
    hold.rollback().await.unwrap();

    eventually_within("both sweeps answered", SWEEP_PATIENCE, || async {
        let done = answered(&dingcheng, &dingcheng_asked).await == i64::from(SWEEP)
            && answered(xinhua.store(), &xinhua_asked).await == i64::from(SWEEP);
        done.then_some(())
    })
    .await;
    eprintln!("both sweeps answered at {:?}", started.elapsed());
    eventually_within(
        "the clerks were answered after the kill",
        SWEEP_PATIENCE,
        || async {
            let after = calls
                .lock()
                .unwrap()
                .iter()
                .filter(|call| call.answered && call.started > connection_closed_at)
                .count();
            (after >= CLERK_CALLS_AFTER_KILL).then_some(())
        },
    )
    .await;
    stop_clerks.store(true, Ordering::SeqCst);
    for clerk in clerks {
        clerk.await.expect("the clerk ran");
    }
    let calls = std::mem::take(&mut *calls.lock().unwrap());

    // The clerk's path: only calls cut off with the killed replica's connection (in flight
    // between the kill and the balancer closing it) could fail; the node sends such a call again
    // on a new connection, to a live replica, so every call is answered inline.
    let on_killed_connection = |call: &Call| call.started < connection_closed_at && call.ended > killed_at;
    let exposed = calls.iter().filter(|call| on_killed_connection(call)).count();
    let failed: Vec<&Call> = calls.iter().filter(|call| !call.answered).collect();
    eprintln!(
        "clerk: {} calls, {} not answered inline, {exposed} on the killed replica's connection; \
         kill to connection closed {:?}; connections per replica {:?}",
        calls.len(),
        failed.len(),
        connection_closed_at - killed_at,
        balancer.forwarded(),
    );
    assert!(
        exposed > 0,
        "a clerk's call was on the killed replica's connection"
    );
    for call in &failed {
        eprintln!(
            "not answered inline, started {:?} after the kill, on its connection: {}: {}",
            call.started.checked_duration_since(killed_at),
            on_killed_connection(call),
            call.note
        );
    }
    assert!(
        failed.is_empty(),
        "{} of the clerk's calls were not answered inline ({exposed} were on the killed replica's connection)",
        failed.len()
    );
    let survivors_took_connections = balancer
        .forwarded()
        .iter()
        .enumerate()
        .any(|(index, &forwarded)| index != victim && forwarded > 0);
    assert!(
        survivors_took_connections,
        "新化县 reconnected to a surviving replica"
    );

    // Exactly once, both ways, counted in both databases: the clerk's inquiries are 新化县's too.
    let dingcheng_side = Side {
        county: DINGCHENG,
        store: &dingcheng,
    };
    let xinhua_side = Side {
        county: XINHUA,
        store: xinhua.store(),
    };
    let mut from_xinhua = xinhua_asked.clone();
    from_xinhua.extend(calls.iter().filter_map(|call| call.message_id));
    assert_outboxes_drain_within(&[&dingcheng, xinhua.store()], SWEEP_PATIENCE).await;
    assert_each_inquiry_answered_exactly_once(dingcheng_side, xinhua_side, &dingcheng_asked).await;
    assert_each_inquiry_answered_exactly_once(xinhua_side, dingcheng_side, &from_xinhua).await;
    eprintln!("exactly once both ways at {:?}", started.elapsed());
}

/// One single inquiry a clerk asked and what became of it.
#[derive(Debug)]
struct Call {
    /// `None` when the node refused to queue it.
    message_id: Option<Uuid>,
    started: Instant,
    ended: Instant,
    /// Answered inline (the clerk saw the answer at the window).
    answered: bool,
    /// Why not, when not.
    note: String,
}

/// Every clerk's calls so far.
type Calls = Arc<std::sync::Mutex<Vec<Call>>>;

/// The clerks' calls in progress: when each started, by subject.
type OnTheWire = Arc<std::sync::Mutex<std::collections::HashMap<u32, Instant>>>;

/// A clerk at 新化县: asks 鼎城区 about one person after another, waiting for each answer inline,
/// until `stop`, adding each call to `calls`; `on_the_wire` holds the one in progress.
async fn clerk(
    xinhua: Arc<Node>,
    next_subject: Arc<AtomicU32>,
    calls: Calls,
    on_the_wire: OnTheWire,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let n = next_subject.fetch_add(1, Ordering::SeqCst);
        let draft = sweep(DINGCHENG, n..n + 1).pop().expect("one draft");
        let started = Instant::now();
        on_the_wire.lock().unwrap().insert(n, started);
        let outcome = xinhua.ask(county(DINGCHENG), draft, CLERK_WAIT).await;
        let ended = Instant::now();
        on_the_wire.lock().unwrap().remove(&n);
        let call = match outcome {
            Ok(outcome) => Call {
                message_id: Some(outcome.message_id),
                started,
                ended,
                answered: outcome.state == InquiryState::Answered && outcome.confirmation.is_some(),
                note: format!("{:?}: {}", outcome.state, outcome.note.unwrap_or_default()),
            },
            Err(error) => Call {
                message_id: None,
                started,
                ended,
                answered: false,
                note: format!("refused by 新化县's node: {error}"),
            },
        };
        calls.lock().unwrap().push(call);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until both sweeps are under way and neither is done: 鼎城区's replicas have received
/// a few batches of 新化县's sweep (`xinhua_asked`), and 鼎城区 holds some answers to its own
/// (`dingcheng_asked`).
async fn mid_sweep(dingcheng: &Store, dingcheng_asked: &[Uuid], xinhua: &Store, xinhua_asked: &[Uuid]) {
    let deadline = Instant::now() + SWEEP_PATIENCE;
    let size = i64::from(SWEEP);
    loop {
        let received = count_in(
            dingcheng,
            &format!(
                "SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND peer_county = '{XINHUA}'"
            ),
        )
        .await;
        let answers = answered(dingcheng, dingcheng_asked).await;
        let answers_at_xinhua = answered(xinhua, xinhua_asked).await;
        assert!(
            answers < size && answers_at_xinhua < size,
            "a sweep was over before a replica could be killed in its middle"
        );
        if received >= 4 * SWEEP_BATCH as i64 && answers >= 2 * SWEEP_BATCH as i64 {
            return;
        }
        assert!(Instant::now() < deadline, "the sweeps did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many of our inquiries `asked` are answered, in `store`.
async fn answered(store: &Store, asked: &[Uuid]) -> i64 {
    let pool = database(store).await;
    let answered = sqlx::query_scalar(
        "SELECT count(*) FROM inquiries WHERE message_id = ANY($1) AND direction = 'outbound'
         AND state = 'answered'",
    )
    .bind(asked)
    .fetch_one(&pool)
    .await
    .expect("count answered");
    pool.close().await;
    answered
}

/// Limits for the sweeps: fast retries, small batches, a two-second lease, so that what the
/// killed replica was sending is taken over two seconds after it went rather than ten, and a
/// three-second grace for inline answers, so that one whose acknowledgement was cut off with the
/// killed replica's connection comes again after three seconds rather than thirty.
fn sweep_limits() -> Limits {
    Limits {
        batch_size: SWEEP_BATCH,
        lease: Duration::from_secs(2),
        lease_renewal: Duration::from_millis(500),
        inline_answer_grace: Duration::from_secs(3),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    }
}

/// `n` free loopback addresses, all different.
fn distinct_free_addresses(n: usize) -> Vec<std::net::SocketAddr> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address"))
        .collect()
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

fn every_other(size: u32) -> impl Iterator<Item = u32> {
    (0..size).step_by(2)
}

/// Every subject a clerk may ask about.
fn clerk_subjects() -> std::ops::Range<u32> {
    CLERK_SUBJECTS..CLERK_SUBJECTS + 5_000
}

/// `origin`'s registry of its outflow persons `numbers` living in `destination`.
fn registry(origin: &str, destination: &str, numbers: impl Iterator<Item = u32>) -> Vec<Person> {
    numbers
        .map(|n| outflow_person(synthetic_id(origin, n), origin, destination))
        .collect()
}

fn ids(inquiries: &[hancha::domain::message::Inquiry]) -> Vec<Uuid> {
    inquiries.iter().map(|i| i.message_id).collect()
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

/// The clerk's side of a lost connection, against a fake peer: an inquiry whose connection is
/// cut under it goes again and is accepted; a peer that is down costs the clerk two short
/// pauses and three refused calls, not the whole wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerks_inquiry_cut_off_goes_again_and_a_peer_that_is_down_costs_the_clerk_little() {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 4, Duration::from_secs(30))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let node = Arc::new(
        Node::new(county(DINGCHENG), store, Vec::new(), sweep_limits())
            .with_agreement_signatures(test_signatures()),
    );
    node.install_agreement(&Agreement::parse(&open_agreement(DINGCHENG, XINHUA)).expect("agreement parses"))
        .await
        .expect("agreement installed");

    for (subject, (cuts, calls, state)) in (0..).zip([
        // one connection lost under the call: the second copy is accepted
        (1, 2, InquiryState::Pending),
        // down: three refused calls, then the inquiry waits in the outbox
        (u32::MAX, 3, InquiryState::Queued),
    ]) {
        let peer = Arc::new(CutConnections {
            cuts,
            calls: AtomicU32::new(0),
        });
        node.set_peer_link(county(XINHUA), peer.clone());
        let asked = Instant::now();
        let outcome = node
            .ask(
                county(XINHUA),
                sweep(XINHUA, subject..subject + 1).remove(0),
                CLERK_WAIT,
            )
            .await
            .expect("asked");
        let took = asked.elapsed();
        assert_eq!(outcome.state, state, "{cuts} cut: {:?}", outcome.note);
        assert_eq!(peer.calls.load(Ordering::SeqCst), calls, "{cuts} cut: calls");
        assert!(
            took < CLERK_WAIT / 2,
            "{cuts} cut: the clerk waited {took:?} of a {CLERK_WAIT:?} wait"
        );
    }
}

/// A peer whose first `cuts` single inquiries lose their connection; later ones are accepted.
#[derive(Debug)]
struct CutConnections {
    cuts: u32,
    calls: AtomicU32,
}

impl PeerLink for CutConnections {
    fn submit_inquiries<'a>(&'a self, _: &'a [Inquiry]) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async { Ok(Verdicts::new()) })
    }

    fn deliver_confirmations<'a>(
        &'a self,
        _: &'a [Confirmation],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async { Ok(Verdicts::new()) })
    }

    fn submit_inquiry<'a>(
        &'a self,
        _: &'a Inquiry,
        _: Duration,
    ) -> BoxFuture<'a, Result<InlineReply, CallFailure>> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.cuts {
                return Err(CallFailure::Unreachable(
                    "UNKNOWN: transport error: connection closed".into(),
                ));
            }
            Ok(InlineReply {
                verdict: PeerVerdict::Accepted {
                    received_at: Some(chrono::Utc::now()),
                    due_at: None,
                },
                confirmation: None,
            })
        })
    }

    fn acknowledge_confirmations<'a>(
        &'a self,
        _: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async { Ok(Verdicts::new()) })
    }

    fn peer_status<'a>(&'a self, _: &'a NodeStatus) -> BoxFuture<'a, Result<NodeStatus, CallFailure>> {
        Box::pin(async { Err(CallFailure::Unreachable("not asked here".into())) })
    }
}
