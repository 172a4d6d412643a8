//! The webhook worker through its seams: driven by `run_once` against a scripted endpoint (the
//! next event only after a 2xx, a retry not before its delay), and the store's lease between
//! replicas sharing one database, with the bounded attempt log.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hancha::config::Limits;
use hancha::domain::event::EventType;
use hancha::domain::webhook::SigningSecret;
use hancha::node::Node;
use hancha::store::Store;
use hancha::store::events::EventFilter;
use hancha::store::webhooks::{ATTEMPTS_KEPT, AttemptRecord, NewWebhook};
use hancha::workers::webhooks::WebhookWorker;
use hancha::workers::webhooks::client::{PostOutcome, WebhookPoster, WebhookRequest};
use uuid::Uuid;

/// Two replicas share the database: the lease of an endpoint is one replica's until let go, and
/// the other can neither take it nor move its cursor meanwhile.
#[tokio::test]
async fn an_endpoint_taken_by_one_replica_is_not_taken_by_another() {
    let database = fresh_database().await;
    let store = Store::connect(database.url(), 4, Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let id = store
        .add_webhook(&NewWebhook {
            url: "http://127.0.0.1:9/hooks".into(),
            event_types: Vec::new(),
            township: None,
            created_by: "loopback".into(),
            secret: SigningSecret::generate().expose().to_string(),
            cursor: 0,
        })
        .await
        .unwrap();
    let (one, other) = (Uuid::new_v4(), Uuid::new_v4());
    let lease = Duration::from_secs(30);
    let taken = store
        .claim_due_webhook(one, lease, &[])
        .await
        .unwrap()
        .expect("due");
    assert_eq!((taken.endpoint.id, taken.secrets.len()), (id, 1));
    assert!(
        store
            .claim_due_webhook(other, lease, &[])
            .await
            .unwrap()
            .is_none()
    );
    let attempt = AttemptRecord {
        position: 5,
        result: "delivered",
        status: Some(200),
        error: None,
        elapsed: Duration::from_millis(3),
    };
    assert!(!store.webhook_delivered(id, other, &attempt, lease).await.unwrap());
    assert!(store.webhook_delivered(id, one, &attempt, lease).await.unwrap());
    assert!(
        !store.webhook_delivered(id, one, &attempt, lease).await.unwrap(),
        "the cursor never moves back nor twice over one event"
    );
    store.release_webhook(id, one).await.unwrap();
    let again = store
        .claim_due_webhook(other, lease, &[])
        .await
        .unwrap()
        .expect("free again");
    assert_eq!(again.endpoint.cursor, 5);
    // the attempt log keeps the latest attempts only
    for position in 6..6 + ATTEMPTS_KEPT + 10 {
        let attempt = AttemptRecord {
            position,
            ..attempt.clone()
        };
        assert!(store.webhook_delivered(id, other, &attempt, lease).await.unwrap());
    }
    let kept = store.webhook_attempts(id, 1000).await.unwrap();
    assert_eq!(kept.len() as i64, ATTEMPTS_KEPT);
    assert_eq!(kept[0].position, 5 + ATTEMPTS_KEPT + 10);
    store.close().await;
}

/// A county system answering from a script, through the worker's seam.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<std::collections::VecDeque<PostOutcome>>,
    sent: Mutex<Vec<String>>,
}

impl WebhookPoster for Scripted {
    fn post(&self, request: WebhookRequest) -> futures::future::BoxFuture<'_, PostOutcome> {
        let id = request
            .headers
            .iter()
            .find(|(name, _)| *name == "webhook-id")
            .map(|(_, value)| value.clone())
            .expect("a webhook-id");
        self.sent.lock().unwrap().push(id);
        let answer = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(PostOutcome::Accepted(200));
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn the_worker_sends_the_next_event_only_after_a_2xx_and_waits_before_a_retry() {
    let mut cluster = webhook_pair().await;
    answers_received(&cluster, 500, 3).await;
    let node = cluster.node(DINGCHENG);
    let filter = EventFilter {
        types: vec![EventType::AnswerReceived],
        township: None,
    };
    let events = eventually("three answers sealed", || async {
        node.seal_audit().await.unwrap();
        let page = node.store().events_after(0, &filter, 10).await.unwrap();
        (page.events.len() == 3).then_some(page.events)
    })
    .await;
    let ids: Vec<String> = events
        .iter()
        .map(|event| format!("evt_{DINGCHENG}_{}", event.position))
        .collect();
    // the node stops; a worker of our own, with a scripted endpoint, delivers from its database
    cluster.stop(DINGCHENG).await;
    let store = Store::connect(
        cluster.members[DINGCHENG].database.url(),
        4,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let id = store
        .add_webhook(&NewWebhook {
            url: "http://127.0.0.1:9/hooks".into(),
            event_types: vec!["answer.received".into()],
            township: None,
            created_by: "loopback".into(),
            secret: SigningSecret::generate().expose().to_string(),
            cursor: 0,
        })
        .await
        .unwrap();
    // a retry waits 150 to 300 ms: long enough to see it is not due at once
    let slower = Limits {
        webhook_retry_first: Duration::from_millis(300),
        webhook_retry_max: Duration::from_millis(300),
        ..webhook_limits()
    };
    let node = Arc::new(Node::new(
        DINGCHENG.parse().unwrap(),
        store.clone(),
        Vec::new(),
        slower,
    ));
    let endpoint = Arc::new(Scripted::default());
    let failed = |result: &'static str| PostOutcome::Failed {
        result,
        status: None,
        error: format!("scripted {result}"),
    };
    endpoint.answers.lock().unwrap().extend([
        failed("http_status"),
        PostOutcome::Accepted(200),
        failed("timeout"),
    ]);
    let worker = WebhookWorker::new(Arc::clone(&node), Arc::clone(&endpoint) as Arc<dyn WebhookPoster>);
    let (_running, stop) = tokio::sync::watch::channel(false);
    let sent = || endpoint.sent.lock().unwrap().clone();

    let round = worker.run_once(&stop).await.unwrap();
    assert_eq!((round.endpoints, round.delivered, round.failed), (1, 0, 1));
    assert_eq!(sent(), ids[..1]);
    // not due again before its delay
    assert_eq!(worker.run_once(&stop).await.unwrap().endpoints, 0);
    let state = store.list_webhooks().await.unwrap().remove(0);
    assert_eq!((state.attempts, state.cursor), (1, 0));
    assert!(state.failing_since.is_some() && state.next_attempt_at > chrono::Utc::now());

    tokio::time::sleep(Duration::from_millis(400)).await;
    let round = worker.run_once(&stop).await.unwrap();
    assert_eq!((round.delivered, round.failed), (1, 1));
    assert_eq!(sent(), [ids[0].clone(), ids[0].clone(), ids[1].clone()]);
    let state = store.list_webhooks().await.unwrap().remove(0);
    assert_eq!(
        state.cursor, events[0].position,
        "the cursor at the one delivered"
    );
    assert_eq!(state.attempts, 1, "attempts count the event after the cursor");

    tokio::time::sleep(Duration::from_millis(400)).await;
    let round = worker.run_once(&stop).await.unwrap();
    assert_eq!((round.delivered, round.failed), (2, 0));
    assert_eq!(
        sent(),
        [&ids[0], &ids[0], &ids[1], &ids[1], &ids[2]].map(String::clone)
    );
    let state = store.list_webhooks().await.unwrap().remove(0);
    assert_eq!(
        (state.cursor, state.delivered, state.attempts),
        (events[2].position, 3, 0)
    );
    assert!(state.failing_since.is_none());
    let attempts: Vec<String> = store
        .webhook_attempts(id, 10)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|attempt| attempt.result)
        .collect();
    assert_eq!(
        attempts,
        ["http_status", "delivered", "timeout", "delivered", "delivered"]
    );
    // caught up: taken, nothing sent
    let round = worker.run_once(&stop).await.unwrap();
    assert_eq!((round.endpoints, round.delivered), (1, 0));
    assert_eq!(sent().len(), 5);
    store.close().await;
}
