//! Supervised workers: a delivery worker that panics mid-batch is restarted by its supervisor,
//! logged and counted, and the node goes on delivering: every inquiry reaches the peer once.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use hancha::app::supervise::{Workers, supervise};
use hancha::config::Limits;
use hancha::domain::agreement::Agreement;
use hancha::domain::delivery::{CallFailure, PeerVerdict};
use hancha::domain::division::CountyCode;
use hancha::domain::message::{Confirmation, Inquiry};
use hancha::domain::peer_status::NodeStatus;
use hancha::domain::vocabulary::InquiryKind;
use hancha::node::Node;
use hancha::peer::{InlineReply, PeerLink, Verdicts};
use hancha::store::Store;
use hancha::workers::delivery::DeliveryWorker;
use hancha::workers::run_loop;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use common::{
    DINGCHENG, XINHUA, count, eventually, fresh_database, inquiry_drafts, open_agreement, test_signatures,
};

/// A peer whose first `panics` calls crash the caller (a bug in the worker's path, as far as
/// the worker can tell); afterwards it accepts everything and remembers what it received.
#[derive(Debug, Default)]
struct CrashingPeer {
    panics: AtomicU32,
    received: Mutex<Vec<Uuid>>,
}

impl PeerLink for CrashingPeer {
    fn submit_inquiries<'a>(
        &'a self,
        inquiries: &'a [Inquiry],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async move {
            if self
                .panics
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                panic!("the delivery path crashed mid-batch");
            }
            let mut received = self.received.lock().unwrap();
            Ok(inquiries
                .iter()
                .map(|inquiry| {
                    received.push(inquiry.message_id);
                    let verdict = PeerVerdict::Accepted {
                        received_at: None,
                        due_at: None,
                    };
                    (inquiry.message_id, verdict)
                })
                .collect())
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
        Box::pin(async { Err(CallFailure::Unreachable("batches only".into())) })
    }

    fn acknowledge_confirmations<'a>(
        &'a self,
        _: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Verdicts, CallFailure>> {
        Box::pin(async { Ok(Verdicts::new()) })
    }

    fn peer_status<'a>(&'a self, _: &'a NodeStatus) -> BoxFuture<'a, Result<NodeStatus, CallFailure>> {
        Box::pin(async { Err(CallFailure::Unreachable("batches only".into())) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_panics_is_restarted_and_the_node_keeps_delivering() {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 4, Duration::from_secs(30))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let limits = Limits {
        batch_size: 10,
        in_flight: 1,
        // the crashed batch's lease runs out soon, so it is sent again after the restart
        lease: Duration::from_millis(1_500),
        lease_renewal: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    let me = CountyCode::parse(DINGCHENG).unwrap();
    let node =
        Arc::new(Node::new(me, store, Vec::new(), limits).with_agreement_signatures(test_signatures()));
    node.install_agreement(&Agreement::parse(&open_agreement(DINGCHENG, XINHUA)).expect("agreement parses"))
        .await
        .expect("agreement installed");
    let peer = Arc::new(CrashingPeer {
        panics: AtomicU32::new(2),
        ..CrashingPeer::default()
    });
    let worker = Arc::new(DeliveryWorker::new(
        Arc::clone(&node),
        CountyCode::parse(XINHUA).unwrap(),
        Arc::clone(&peer) as Arc<dyn PeerLink>,
    ));

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let workers = Workers::new();
    let wake = Arc::new(Notify::new());
    let stop = shutdown_rx.clone();
    supervise(
        &mut tasks,
        &workers,
        node.metrics(),
        "delivery:431322",
        shutdown_rx,
        move || {
            let (worker, wake, stop) = (Arc::clone(&worker), Arc::clone(&wake), stop.clone());
            async move {
                run_loop("delivery", stop, &wake, Duration::from_millis(100), || {
                    worker.step()
                })
                .await
            }
        },
    );

    let drafts = inquiry_drafts(InquiryKind::OutflowStatus, XINHUA, 0..30);
    let (queued, _) = node
        .send_inquiries(CountyCode::parse(XINHUA).unwrap(), drafts)
        .await
        .expect("queued");

    eventually("every inquiry delivered despite two crashes", || async {
        (count(&node, "SELECT count(*) FROM inquiries WHERE state = 'pending'").await == 30).then_some(())
    })
    .await;
    assert_eq!(count(&node, "SELECT count(*) FROM outbox").await, 0);
    let received: HashSet<Uuid> = peer.received.lock().unwrap().iter().copied().collect();
    let sent: HashSet<Uuid> = queued.iter().map(|i| i.message_id).collect();
    assert_eq!(received, sent, "each inquiry reached the peer");

    let state = workers.snapshot()["delivery:431322"].clone();
    assert_eq!(state.restarts, 2, "{state:?}");
    assert!(state.running);
    assert!(
        state
            .last_failure
            .as_deref()
            .unwrap_or_default()
            .contains("the delivery path crashed mid-batch"),
        "the cause is kept: {state:?}"
    );
    assert!(
        workers.failing_longer_than(Duration::from_secs(60)).is_empty(),
        "a worker restarted by its supervisor does not make the node unready"
    );
    assert!(
        node.metrics()
            .render()
            .contains("hancha_worker_restarts_total{worker=\"delivery\"} 2"),
        "counted in the metrics"
    );
    let _ = shutdown.send(true);
    while tasks.join_next().await.is_some() {}
}
