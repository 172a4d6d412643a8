//! The county system's side: 新化县's own software registers a webhook before the sweep, and at
//! the end the demo shows what it was pushed (each answer once, in order, signed) against what
//! the event stream holds from cursor 0 — the two ways a county system hears of answers without
//! asking again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::cluster::Cluster;
use super::{XINHUA, thousands};
use crate::proto::operator as pb;

/// How long the step waits for the last webhooks to arrive.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the county system received: each request's id, timestamp, signatures and body.
type Received = Arc<Mutex<Vec<(String, String, String, Bytes)>>>;

/// 新化县's county system: an HTTP endpoint on loopback, registered for `answer.received`.
pub struct CountySystem {
    url: String,
    secret: String,
    received: Received,
}

async fn receive(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    received.lock().expect("not poisoned").push((
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        body,
    ));
    StatusCode::NO_CONTENT
}

/// Starts the endpoint and registers it with 新化县's node (before the sweep, so that the
/// sweep's answers are pushed to it as they arrive).
pub async fn connect_county_system(cluster: &Cluster) -> anyhow::Result<CountySystem> {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hancha/events", listener.local_addr()?);
    let router = axum::Router::new()
        .route("/hancha/events", axum::routing::post(receive))
        .with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let added = cluster
        .operator(XINHUA)
        .await?
        .add_webhook(pb::AddWebhookRequest {
            url: url.clone(),
            event_types: vec!["answer.received".into()],
            ..Default::default()
        })
        .await
        .context("registering 新化县's county system as a webhook")?
        .into_inner();
    Ok(CountySystem {
        url,
        secret: added.secret,
        received,
    })
}

/// Whether one delivery's signature holds under `secret`, as a county system checks it.
fn signed(secret: &str, (id, timestamp, signatures, body): &(String, String, String, Bytes)) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(key) = engine.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = engine.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .any(|candidate| candidate.strip_prefix("v1,") == Some(expected.as_str()))
}

/// ⑩ What 新化县's county system was pushed, checked against the event stream. `true` when
/// every answer reached it once, in the stream's order, signed.
pub async fn pushed(cluster: &Cluster, system: &CountySystem) -> anyhow::Result<bool> {
    println!("⑩ 推送 what 新化县's own system was told, without asking (webhooks and `hancha watch`)");
    // the stream from the first event: every answer 新化县 received, in commit order
    let mut client = cluster.operator(XINHUA).await?;
    let mut stream = client
        .watch(pb::WatchRequest {
            types: vec!["answer.received".into()],
            idle_seconds: 3,
            ..Default::default()
        })
        .await
        .context("opening 新化县's event stream")?
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.context("reading 新化县's event stream")?;
        if !event.r#type.is_empty() {
            events.push(event);
        }
    }
    let waiting = Instant::now();
    let deliveries = loop {
        let deliveries = system.received.lock().expect("not poisoned").clone();
        let ids: HashSet<&str> = deliveries.iter().map(|d| d.0.as_str()).collect();
        if ids.len() >= events.len() || waiting.elapsed() > PATIENCE {
            break deliveries;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // at least once: a county system drops a webhook-id it has seen
    let mut seen = HashSet::new();
    let first_copies: Vec<_> = deliveries.iter().filter(|d| seen.insert(d.0.clone())).collect();
    // what arrived is the stream's beginning, in its order; all of it arrived within the wait
    let in_order = first_copies
        .iter()
        .zip(&events)
        .all(|(delivery, event)| delivery.0 == event.id)
        && first_copies.len() <= events.len();
    let complete = first_copies.len() >= events.len();
    let all_signed = deliveries.iter().all(|delivery| signed(&system.secret, delivery));
    let last = events.last().map_or(0, |event| event.cursor);
    println!(
        "  webhook {}: {} answer.received pushed as they arrived ({} requests), {}, {}",
        system.url,
        thousands(first_copies.len() as u64),
        thousands(deliveries.len() as u64),
        match (in_order, complete) {
            (true, true) => "in commit order".to_string(),
            (true, false) => format!(
                "in commit order, but only {} of {} within {} s ✗",
                thousands(first_copies.len() as u64),
                thousands(events.len() as u64),
                PATIENCE.as_secs()
            ),
            (false, _) => "OUT OF ORDER ✗".to_string(),
        },
        if all_signed {
            "every signature verified (Standard Webhooks, HMAC-SHA256) ✓"
        } else {
            "a signature did NOT verify ✗"
        }
    );
    println!(
        "  event stream from cursor 0: the same {} events, the last at cursor {last}; a system resumes with `hancha watch --after {last}`",
        thousands(events.len() as u64)
    );
    Ok(in_order && complete && all_signed && !events.is_empty())
}
