//! The delivery worker through `run_once` with a fake peer: each verdict a peer can give, and a
//! peer that cannot be reached, lead to the one outcome the rule names, recorded on a real
//! database.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use hancha::config::Limits;
use hancha::domain::agreement::Agreement;
use hancha::domain::delivery::{CallFailure, PeerVerdict};
use hancha::domain::division::CountyCode;
use hancha::domain::message::{Confirmation, Inquiry, Subject};
use hancha::domain::peer_status::NodeStatus;
use hancha::domain::policy::RejectionCode;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::{DeliveryReport, InquiryDraft, Node};
use hancha::peer::{InlineReply, PeerLink, Verdicts};
use hancha::store::Store;
use hancha::workers::delivery::DeliveryWorker;
use uuid::Uuid;

use common::{
    DINGCHENG, TestDatabase, XINHUA, count, fresh_database, open_agreement, synthetic_id, test_signatures,
};

/// A peer that answers from a script: the n-th call to `submit_inquiries` gets the n-th reply;
/// a verdict is given for every inquiry of the batch by its position.
#[derive(Debug, Default)]
struct ScriptedPeer {
    /// Per call: a failure, or one verdict per inquiry position (by id order of the batch).
    replies: Mutex<Vec<Result<Vec<PeerVerdict>, CallFailure>>>,
    /// How many inquiries each call carried.
    calls: Mutex<Vec<usize>>,
}

impl PeerLink for ScriptedPeer {
    fn submit_inquiries<'a>(
        &'a self,
        inquiries: &'a [Inquiry],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(inquiries.len());
            let reply = self.replies.lock().unwrap().remove(0);
            reply.map(|verdicts| {
                let mut ids: Vec<Uuid> = inquiries.iter().map(|i| i.message_id).collect();
                ids.sort();
                ids.into_iter().zip(verdicts).collect::<HashMap<_, _>>()
            })
        })
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
        Box::pin(async {
            Err(CallFailure::Unreachable(
                "a scripted peer takes batches only".into(),
            ))
        })
    }

    fn acknowledge_confirmations<'a>(
        &'a self,
        _: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async { Ok(Verdicts::new()) })
    }

    fn peer_status<'a>(&'a self, _: &'a NodeStatus) -> BoxFuture<'a, Result<NodeStatus, CallFailure>> {
        Box::pin(async {
            Err(CallFailure::Unreachable(
                "a scripted peer takes batches only".into(),
            ))
        })
    }
}

/// The node and its queued inquiries, and the node's database (dropped when the test drops it).
async fn node_with_queued_inquiries(count: u32, batch_size: usize) -> (Arc<Node>, Vec<Uuid>, TestDatabase) {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 4, Duration::from_secs(30))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let limits = Limits {
        retry_initial: Duration::from_secs(60),
        retry_max: Duration::from_secs(600),
        batch_size,
        in_flight: 1,
        ..Limits::default()
    };
    let me = CountyCode::parse(DINGCHENG).unwrap();
    let node =
        Arc::new(Node::new(me, store, Vec::new(), limits).with_agreement_signatures(test_signatures()));
    node.install_agreement(&Agreement::parse(&open_agreement(DINGCHENG, XINHUA)).expect("agreement parses"))
        .await
        .expect("agreement installed");
    let drafts = (0..count)
        .map(|n| InquiryDraft {
            kind: InquiryKind::OutflowStatus,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: synthetic_id(XINHUA, n),
                certificate_number: None,
            },
            message_id: None,
        })
        .collect();
    let (inquiries, _) = node
        .send_inquiries(CountyCode::parse(XINHUA).unwrap(), drafts)
        .await
        .expect("queued");
    let mut ids: Vec<Uuid> = inquiries.iter().map(|i| i.message_id).collect();
    ids.sort();
    (node, ids, database)
}

/// 鼎城区's delivery worker for 新化县, reaching it through `peer`.
fn worker_to_xinhua(node: &Arc<Node>, peer: &Arc<ScriptedPeer>) -> DeliveryWorker {
    DeliveryWorker::new(
        Arc::clone(node),
        CountyCode::parse(XINHUA).expect("a county code"),
        Arc::clone(peer) as Arc<dyn PeerLink>,
    )
}

fn refused(code: RejectionCode) -> PeerVerdict {
    PeerVerdict::Refused {
        code: Some(code),
        reason: format!("{}: scripted", code.as_str()),
    }
}

async fn state_of(node: &Node, id: Uuid) -> i64 {
    count(
        node,
        &format!("SELECT count(*) FROM inquiries WHERE message_id = '{id}' AND state = 'queued'"),
    )
    .await
}

#[tokio::test]
async fn each_verdict_leads_to_its_outcome() {
    let (node, ids, _database) = node_with_queued_inquiries(5, 500).await;
    let peer = Arc::new(ScriptedPeer::default());
    peer.replies.lock().unwrap().push(Ok(vec![
        PeerVerdict::Accepted {
            received_at: None,
            due_at: None,
        },
        refused(RejectionCode::PermissionDenied),
        refused(RejectionCode::FailedPrecondition),
        refused(RejectionCode::ResourceExhausted),
    ]));
    let worker = worker_to_xinhua(&node, &peer);

    let report = worker.run_once().await.expect("one step");

    assert_eq!(
        report,
        DeliveryReport {
            delivered: 1,
            refused: 1,
            deferred: 2, // the daily cap, and the fifth inquiry the peer said nothing about
            unreachable: 0,
            held: 1,
        }
    );
    assert_eq!(*peer.calls.lock().unwrap(), vec![5]);
    let pending = format!(
        "SELECT count(*) FROM inquiries WHERE message_id = '{}' AND state = 'pending'",
        ids[0]
    );
    assert_eq!(count(&node, &pending).await, 1, "accepted: pending at the peer");
    let rejected = format!(
        "SELECT count(*) FROM inquiries WHERE message_id = '{}' AND state = 'rejected' AND reject_reason LIKE 'PERMISSION_DENIED%'",
        ids[1]
    );
    assert_eq!(count(&node, &rejected).await, 1, "not allowed: refused for good");
    for (id, error) in [
        (
            ids[2],
            "held: waiting for 431322 to hold agreement 430703-431322 version 1",
        ),
        (ids[3], "RESOURCE_EXHAUSTED"),
    ] {
        assert_eq!(state_of(&node, id).await, 1, "{error}: still queued");
        let waiting = format!(
            "SELECT count(*) FROM outbox WHERE message_id = '{id}' AND last_error LIKE '{error}%' AND next_attempt_at > now()"
        );
        assert_eq!(count(&node, &waiting).await, 1, "{error}: waits in the outbox");
    }
    let left = count(&node, "SELECT count(*) FROM outbox").await;
    assert_eq!(left, 3, "held, over the cap, and unanswered stay in the outbox");
}

#[tokio::test]
async fn an_unreachable_peer_defers_everything_and_refuses_nothing() {
    // One inquiry per batch and one batch on the wire: the first call carries one inquiry, yet
    // all three must wait for the peer's backoff.
    let (node, ids, _database) = node_with_queued_inquiries(3, 1).await;
    let peer = Arc::new(ScriptedPeer::default());
    peer.replies.lock().unwrap().push(Err(CallFailure::Unreachable(
        "UNAVAILABLE: connection refused".into(),
    )));
    let worker = worker_to_xinhua(&node, &peer);

    let report = worker.run_once().await.expect("one step");

    assert_eq!(
        report,
        DeliveryReport {
            unreachable: 1,
            ..DeliveryReport::default()
        }
    );
    for id in &ids {
        assert_eq!(state_of(&node, *id).await, 1, "still queued");
    }
    let backed_off = count(
        &node,
        "SELECT count(*) FROM outbox WHERE last_error LIKE 'UNAVAILABLE%' AND next_attempt_at > now() + interval '20 seconds'",
    )
    .await;
    assert_eq!(backed_off, 3, "every message waits for the peer's backoff");
    // Nothing is due now, so the next step sends nothing.
    let report = worker.run_once().await.expect("second step");
    assert_eq!(report, DeliveryReport::default());
    assert_eq!(
        *peer.calls.lock().unwrap(),
        vec![1],
        "the dead peer was tried once"
    );
}

#[tokio::test]
async fn an_id_number_a_peer_sends_back_is_not_kept() {
    // A peer that echoes the person's resident ID in its refusal, and then in a failed call:
    // neither the inquiry's refusal reason nor the outbox's last error may keep it.
    let (node, ids, _database) = node_with_queued_inquiries(2, 500).await;
    let echoed = synthetic_id(XINHUA, 0).as_str().to_string();
    let peer = Arc::new(ScriptedPeer::default());
    peer.replies.lock().unwrap().push(Ok(vec![
        PeerVerdict::Refused {
            code: Some(RejectionCode::PermissionDenied),
            reason: format!("PERMISSION_DENIED: {echoed} is not ours"),
        },
        PeerVerdict::Refused {
            code: None,
            reason: format!("INTERNAL: looking up {echoed} failed"),
        },
    ]));
    let worker = worker_to_xinhua(&node, &peer);

    worker.run_once().await.expect("one step");

    let refused = format!(
        "SELECT count(*) FROM inquiries WHERE message_id = '{}' AND state = 'rejected' AND reject_reason LIKE '%is not ours'",
        ids[0]
    );
    assert_eq!(count(&node, &refused).await, 1, "refused, with the peer's words");
    let retried = format!(
        "SELECT count(*) FROM outbox WHERE message_id = '{}' AND last_error LIKE 'INTERNAL: looking up % failed'",
        ids[1]
    );
    assert_eq!(count(&node, &retried).await, 1, "waits, with the peer's words");
    let kept = format!(
        "SELECT (SELECT count(*) FROM inquiries WHERE reject_reason LIKE '%{echoed}%')
              + (SELECT count(*) FROM outbox WHERE last_error LIKE '%{echoed}%')
              + (SELECT count(*) FROM audit_log WHERE reason LIKE '%{echoed}%')"
    );
    assert_eq!(
        count(&node, &kept).await,
        0,
        "the echoed ID number is kept nowhere"
    );
}
