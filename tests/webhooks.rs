//! Webhooks (README "Webhooks (推送)"): a county system's endpoint, served by the test on
//! loopback, receives every event it asked for exactly once and in order, signed so that the
//! Standard Webhooks check a receiver runs accepts it — through an endpoint that is down, then
//! failing, then well; through a secret rotation; through a restart of the node.

mod common;

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use common::*;
use hancha::proto::operator as pb;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;

/// How far a receiver lets a request's timestamp be from its own clock (the Standard Webhooks
/// libraries' default).
const TOLERANCE_SECONDS: i64 = 5 * 60;

/// What a receiver runs on each request, as the README documents it: the timestamp within five
/// minutes of now, and one of the `v1,` signatures the HMAC-SHA256 of `{id}.{timestamp}.{body}`
/// under the secret's bytes (base64 after `whsec_`). `Ok` with the id, to deduplicate by.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> Result<String, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or(format!("no {name}"))
    };
    let id = header("webhook-id")?;
    let timestamp: i64 = header("webhook-timestamp")?
        .parse()
        .map_err(|_| "timestamp not a number")?;
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err("timestamp too old or too new".into());
    }
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").ok_or("not a whsec_ secret")?)
        .map_err(|_| "secret not base64")?;
    for signature in header("webhook-signature")?.split(' ') {
        let Some(encoded) = signature.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = BASE64.decode(encoded) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        if mac.verify_slice(&given).is_ok() {
            return Ok(id.to_string());
        }
    }
    Err("no signature matches".into())
}

/// One request the endpoint received.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    /// Whether the endpoint answered 2xx.
    accepted: bool,
}

/// A county system's endpoint: records every request, answers with `status`, after `delay_ms`.
#[derive(Clone)]
struct Endpoint {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
}

impl Endpoint {
    fn new() -> Endpoint {
        Endpoint {
            received: Arc::default(),
            status: Arc::new(AtomicU16::new(204)),
            delay_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Serves on `listener` until the test ends.
    fn serve(&self, listener: TcpListener) {
        let router = axum::Router::new()
            .route("/hooks/hancha", axum::routing::post(hook))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }
}

async fn hook(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = endpoint.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = StatusCode::from_u16(endpoint.status.load(Ordering::SeqCst)).unwrap();
    endpoint.received.lock().unwrap().push(Received {
        headers,
        body,
        accepted: status.is_success(),
    });
    status
}

async fn add(cluster: &Cluster, url: &str, secret: Option<&str>) -> pb::AddWebhookResponse {
    cluster
        .operator(DINGCHENG)
        .await
        .add_webhook(pb::AddWebhookRequest {
            url: url.to_string(),
            event_types: vec!["answer.received".into()],
            township: String::new(),
            secret: secret.unwrap_or_default().to_string(),
        })
        .await
        .expect("webhook added")
        .into_inner()
}

async fn listed(cluster: &Cluster) -> pb::Webhook {
    let mut list = cluster
        .operator(DINGCHENG)
        .await
        .list_webhooks(pb::ListWebhooksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.webhooks.len(), 1);
    list.webhooks.remove(0)
}

/// Waits until `endpoint` accepted `how_many` requests.
async fn accepted(endpoint: &Endpoint, how_many: usize) -> Vec<Received> {
    eventually_within(
        &format!("{how_many} events accepted"),
        Duration::from_secs(60),
        || async {
            let accepted = endpoint.accepted();
            (accepted.len() >= how_many).then_some(accepted)
        },
    )
    .await
}

/// The events' ids as the endpoint accepted them, each checked with `secret`; panics on a
/// duplicate or an event out of order.
fn checked_in_order(accepted: &[Received], secret: &str) -> Vec<String> {
    let now = chrono::Utc::now().timestamp();
    let mut positions = Vec::new();
    for request in accepted {
        let id = verify(secret, &request.headers, &request.body, now).expect("signature verifies");
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["type"], "answer.received");
        assert_eq!(
            body["data"]["id"],
            id.as_str(),
            "the body names the id of the header"
        );
        assert_eq!(request.headers["content-type"], "application/json");
        let position: u64 = id.rsplit('_').next().unwrap().parse().unwrap();
        positions.push(position);
    }
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(positions, sorted, "each event once, in chain order");
    positions.iter().map(|p| format!("evt_{DINGCHENG}_{p}")).collect()
}

#[tokio::test]
async fn an_endpoint_down_then_failing_then_well_gets_every_event_once_in_order_signed() {
    let cluster = webhook_pair().await;
    // nothing listens on the endpoint's port yet
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let added = add(&cluster, &format!("http://{address}/hooks/hancha"), None).await;
    let secret = added.secret.clone();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(BASE64.decode(&secret["whsec_".len()..]).unwrap().len(), 32);

    answers_received(&cluster, 100, 4).await;
    let failing = eventually("delivery failing while nothing listens", || async {
        let webhook = listed(&cluster).await;
        (webhook.attempts >= 2).then_some(webhook)
    })
    .await;
    assert!(failing.failing_since.is_some(), "undeliverable since …");
    assert!(
        failing.last_error.contains("cannot connect"),
        "{}",
        failing.last_error
    );
    assert_eq!(failing.delivered, 0);
    assert!(failing.recent_attempts.iter().all(|a| a.result == "connect"));
    // the listing never shows the secret, only its fingerprint
    let shown = format!("{failing:?}");
    assert!(!shown.contains(&secret["whsec_".len()..]));
    assert!(failing.secrets[0].fingerprint.starts_with("sha256:"));

    // now it listens, but answers 500
    let endpoint = Endpoint::new();
    endpoint.status.store(500, Ordering::SeqCst);
    endpoint.serve(TcpListener::bind(address).await.expect("the port again"));
    eventually("the endpoint's 500s recorded", || async {
        let webhook = listed(&cluster).await;
        (webhook.last_status == 500 && endpoint.received().len() >= 2).then_some(())
    })
    .await;
    let refused = endpoint.received();
    let first_id = refused[0].headers["webhook-id"].clone();
    assert!(
        refused.iter().all(|r| r.headers["webhook-id"] == first_id),
        "the first event is tried again, and nothing after it is sent before it is delivered"
    );
    assert!(listed(&cluster).await.last_error.contains("500"));

    // well again: the four events, once each, in order; then one more while it is well
    endpoint.status.store(200, Ordering::SeqCst);
    let delivered = accepted(&endpoint, 4).await;
    answers_received(&cluster, 200, 1).await;
    let delivered_all = accepted(&endpoint, 5).await;
    let ids_of = |requests: &[Received]| -> Vec<String> {
        requests
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids_of(&delivered), ids_of(&delivered_all[..4]));
    let ids = checked_in_order(&delivered_all, &secret);
    assert_eq!(ids.len(), 5);
    assert_eq!(
        first_id.to_str().unwrap(),
        ids[0],
        "the event retried is the first delivered"
    );

    let webhook = eventually("the endpoint shown as well", || async {
        let webhook = listed(&cluster).await;
        (webhook.delivered == 5).then_some(webhook)
    })
    .await;
    assert!(webhook.failing_since.is_none());
    assert_eq!((webhook.attempts, webhook.last_status), (0, 200));
    assert!(webhook.last_success_at.is_some());
    assert_eq!(webhook.recent_attempts[0].result, "delivered");

    let (_, metrics) = http_get(&cluster.metrics_url(DINGCHENG)).await;
    for expected in [
        "hancha_webhook_attempts_total{result=\"connect\"}",
        "hancha_webhook_attempts_total{result=\"http_status\"}",
        "hancha_webhook_attempts_total{result=\"delivered\"} 5",
        "hancha_webhooks_failing 0",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }
    assert!(metrics.contains(&format!(
        "hancha_webhook_backlog_positions{{endpoint=\"{}\"}}",
        webhook.id
    )));
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one() {
    let cluster = webhook_pair().await;
    let endpoint = Endpoint::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/hancha", listener.local_addr().unwrap());
    endpoint.serve(listener);
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let added = add(&cluster, &url, Some(old)).await;
    assert_eq!(added.secret, old, "the secret the receiver already holds");
    let id = added.webhook.unwrap().id;

    let mut operator = cluster.operator(DINGCHENG).await;
    let rotated = operator
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            id,
            overlap_seconds: 3600,
            secret: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let new = rotated.secret.clone();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(rotated.webhook.unwrap().secrets.len(), 2);

    answers_received(&cluster, 300, 1).await;
    let request = accepted(&endpoint, 1).await.remove(0);
    let now = chrono::Utc::now().timestamp();
    let signatures: Vec<&str> = request.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(signatures.len(), 2, "one signature per secret in force");
    // a receiver holding either secret accepts, each signature by its own secret
    for secret in [old, &new] {
        verify(secret, &request.headers, &request.body, now).expect("verifies");
    }
    for (signature, secret) in signatures.iter().zip([old, new.as_str()]) {
        let mut alone = request.headers.clone();
        alone.insert("webhook-signature", signature.parse().unwrap());
        verify(secret, &alone, &request.body, now).expect("its own secret");
    }

    // an altered body, or the same request replayed later than the tolerance, is refused
    let mut altered = request.body.to_vec();
    altered.extend_from_slice(b" ");
    assert!(verify(&new, &request.headers, &altered, now).is_err());
    let tampered = String::from_utf8(request.body.to_vec())
        .unwrap()
        .replace("answer.received", "notice.received");
    assert!(verify(&new, &request.headers, tampered.as_bytes(), now).is_err());
    assert!(
        verify(
            &new,
            &request.headers,
            &request.body,
            now + TOLERANCE_SECONDS + 60
        )
        .is_err()
    );
    assert!(
        verify(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &request.headers,
            &request.body,
            now
        )
        .is_err()
    );

    // a second rotation with an overlap of one second: once it has passed, only the newest signs
    let newest = operator
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            id,
            overlap_seconds: 1,
            secret: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    answers_received(&cluster, 310, 1).await;
    let request = accepted(&endpoint, 2).await.remove(1);
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        request.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    verify(&newest, &request.headers, &request.body, now).expect("the newest secret signs");
    assert!(verify(&new, &request.headers, &request.body, now).is_err());
    assert!(verify(old, &request.headers, &request.body, now).is_err());
}

#[tokio::test]
async fn a_node_restarted_mid_delivery_loses_nothing_and_keeps_the_order() {
    let mut cluster = webhook_pair().await;
    let endpoint = Endpoint::new();
    // a slow receiver, so that the node stops with events still to send
    endpoint.delay_ms.store(150, Ordering::SeqCst);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/hancha", listener.local_addr().unwrap());
    endpoint.serve(listener);
    let secret = add(&cluster, &url, None).await.secret;
    answers_received(&cluster, 400, 12).await;
    eventually("delivery under way", || async {
        (endpoint.accepted().len() >= 2).then_some(())
    })
    .await;
    cluster.stop(DINGCHENG).await;
    let before_restart = endpoint.accepted().len();
    assert!(
        before_restart < 12,
        "stopped mid-delivery ({before_restart} of 12 sent)"
    );
    // stopped at a step boundary: what was delivered is in the cursor, and the lease let go
    let database = sqlx::PgPool::connect(cluster.members[DINGCHENG].database.url())
        .await
        .unwrap();
    let (delivered, leased): (i64, bool) =
        sqlx::query_as("SELECT delivered, lease_owner IS NOT NULL FROM webhook_endpoints")
            .fetch_one(&database)
            .await
            .unwrap();
    database.close().await;
    assert_eq!(
        delivered, before_restart as i64,
        "every event accepted is recorded delivered"
    );
    assert!(!leased, "a stopped node holds no lease");
    cluster.restart(DINGCHENG).await;
    let delivered = accepted(&endpoint, 12).await;
    // settle: nothing more is sent
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(endpoint.received().len(), 12, "no event sent twice");
    assert_eq!(checked_in_order(&delivered, &secret).len(), 12);
    assert_eq!(listed(&cluster).await.delivered, 12);
}
