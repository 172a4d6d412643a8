//! The webhook worker: pushes each event ([`crate::node::events`]) to every endpoint that
//! wants it, one event per request, in chain order, the next only after the endpoint answered
//! 2xx, and the endpoint's cursor moved in the database only then. An endpoint is delivered to by
//! one replica at a time (its lease, taken with `FOR UPDATE SKIP LOCKED`); endpoints are
//! delivered to side by side, so a dead one never holds up another. A failed attempt is tried
//! again after a doubling delay with jitter, for as long as it takes. A crash between the 2xx
//! and the cursor's move sends that event again: delivery is at least once, and receivers
//! deduplicate by `webhook-id`.

pub mod client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::watch;
use tracing::{debug, instrument, warn};
use uuid::Uuid;

use self::client::{PostOutcome, WebhookPoster, WebhookRequest};
use super::Step;
use crate::domain::event::parse_types;
use crate::domain::webhook::{SigningSecret, WebhookUrl, retry_delay, signature_header};
use crate::node::Node;
use crate::node::events::{EVENT_POLL, event_id, event_json};
use crate::store::StoreError;
use crate::store::events::EventFilter;
use crate::store::webhooks::{AttemptRecord, ClaimedWebhook};

/// Endpoints one replica delivers to at once.
const PARALLEL_ENDPOINTS: usize = 16;

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Endpoints taken.
    pub endpoints: usize,
    /// Events delivered (answered 2xx).
    pub delivered: usize,
    /// Attempts that failed.
    pub failed: usize,
    /// Endpoints left with events still to send (their turn ran out): the step runs again.
    pub more: usize,
}

/// How one endpoint's turn ended.
#[derive(Clone, Copy, Debug, Default)]
struct Turn {
    delivered: usize,
    failed: bool,
    more: bool,
}

/// Delivers to the webhook endpoints on behalf of one replica.
#[derive(Debug)]
pub struct WebhookWorker {
    /// The node whose events are sent.
    node: Arc<Node>,
    /// How requests are sent.
    poster: Arc<dyn WebhookPoster>,
    /// This worker's name on the leases it takes.
    owner: Uuid,
}

impl WebhookWorker {
    /// A worker for `node` sending through `poster`.
    pub fn new(node: Arc<Node>, poster: Arc<dyn WebhookPoster>) -> WebhookWorker {
        WebhookWorker {
            node,
            poster,
            owner: Uuid::new_v4(),
        }
    }

    /// How long this replica holds an endpoint without moving its cursor: long enough for a
    /// request that takes the whole `limits.webhook_timeout`, with room to record it.
    fn lease(&self) -> Duration {
        self.node.limits().webhook_timeout * 3
    }

    /// One step: takes the endpoints that are due (up to [`PARALLEL_ENDPOINTS`]) and delivers
    /// to each, side by side, until it is caught up, fails, has had its turn, or `stop` turns
    /// true (the node is stopping: the request on the wire is finished and recorded first).
    #[instrument(skip_all)]
    pub async fn run_once(&self, stop: &watch::Receiver<bool>) -> Result<Round, StoreError> {
        let mut claimed = Vec::new();
        let mut taken = Vec::new();
        while claimed.len() < PARALLEL_ENDPOINTS {
            match self
                .node
                .store()
                .claim_due_webhook(self.owner, self.lease(), &taken)
                .await?
            {
                Some(endpoint) => {
                    taken.push(endpoint.endpoint.id);
                    claimed.push(endpoint);
                }
                None => break,
            }
        }
        let turns =
            futures::future::join_all(claimed.into_iter().map(|endpoint| self.turn(endpoint, stop))).await;
        let mut round = Round {
            endpoints: turns.len(),
            ..Round::default()
        };
        let mut first_error = None;
        for turn in turns {
            match turn {
                Ok(turn) => {
                    round.delivered += turn.delivered;
                    round.failed += usize::from(turn.failed);
                    round.more += usize::from(turn.more);
                }
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(round),
        }
    }

    /// [`run_once`](Self::run_once) as a loop step: again at once while endpoints have more to
    /// send; otherwise after [`EVENT_POLL`] (another replica may have sealed events), or sooner
    /// when a failing endpoint's retry falls due before.
    pub async fn step(&self, stop: &watch::Receiver<bool>) -> Result<Step, StoreError> {
        let round = self.run_once(stop).await?;
        if round.more > 0 {
            return Ok(Step::Worked);
        }
        let retry = self.node.store().next_webhook_retry().await?;
        let pause = retry.map_or(EVENT_POLL, |retry| retry.min(EVENT_POLL));
        Ok(Step::Idle(pause.max(Duration::from_millis(10))))
    }

    /// One endpoint's turn, the lease held: events in order until caught up, a failure, or
    /// `limits.webhook_timeout` spent (so that a busy endpoint lets the step end and shutdown
    /// come between). The lease is always let go or renewed in the database before returning.
    #[instrument(skip_all, fields(endpoint = claimed.endpoint.id))]
    async fn turn(&self, claimed: ClaimedWebhook, stop: &watch::Receiver<bool>) -> Result<Turn, StoreError> {
        let id = claimed.endpoint.id;
        match self.deliver(&claimed, stop).await {
            Ok(turn) => Ok(turn),
            // an endpoint whose stored settings do not read (changed outside the node) is
            // failing, shown as such in `hancha webhooks list`, and looked at again after the
            // longest delay: it does not fail every step of the others
            Err(StoreError::Corrupt(what)) => {
                warn!(error = %what, "webhook endpoint cannot be delivered to");
                let attempt = AttemptRecord {
                    position: claimed.endpoint.cursor,
                    result: "other",
                    status: None,
                    error: Some(what),
                    elapsed: Duration::ZERO,
                };
                self.node.metrics().webhook_attempt(attempt.result);
                let delay = self.node.limits().webhook_retry_max;
                self.node
                    .store()
                    .webhook_failed(id, self.owner, &attempt, delay)
                    .await?;
                Ok(Turn {
                    failed: true,
                    ..Turn::default()
                })
            }
            Err(error) => {
                // the database, most likely: let the endpoint go for whoever is next
                let _ = self.node.store().release_webhook(id, self.owner).await;
                Err(error)
            }
        }
    }

    async fn deliver(
        &self,
        claimed: &ClaimedWebhook,
        stop: &watch::Receiver<bool>,
    ) -> Result<Turn, StoreError> {
        let store = self.node.store();
        let limits = self.node.limits();
        let endpoint = &claimed.endpoint;
        let corrupt = |what: &str| StoreError::Corrupt(format!("webhook endpoint {}: {what}", endpoint.id));
        let url = WebhookUrl::parse(&endpoint.url).map_err(|_| corrupt("url"))?;
        let filter = EventFilter {
            types: parse_types(&endpoint.event_types).map_err(|_| corrupt("event types"))?,
            township: endpoint
                .township
                .as_deref()
                .map(crate::domain::division::TownshipCode::parse)
                .transpose()
                .map_err(|_| corrupt("township"))?,
        };
        let secrets = claimed
            .secrets
            .iter()
            .map(|secret| SigningSecret::parse(secret))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("signing secret"))?;
        if secrets.is_empty() {
            return Err(corrupt("no signing secret in force"));
        }
        let county = self.node.county();
        let started = Instant::now();
        let mut cursor = endpoint.cursor;
        let mut turn = Turn::default();
        loop {
            if started.elapsed() >= limits.webhook_timeout || *stop.borrow() {
                store.release_webhook(endpoint.id, self.owner).await?;
                turn.more = true;
                return Ok(turn);
            }
            let page = self.node.store().events_after(cursor, &filter, 1).await?;
            let Some(event) = page.events.first() else {
                store
                    .webhook_caught_up(endpoint.id, self.owner, page.scanned_to)
                    .await?;
                // a read that stopped short of the head (a long stretch without events for
                // this endpoint) continues in the next step
                turn.more = page.scanned_to > cursor;
                return Ok(turn);
            };
            let webhook_id = event_id(county, event);
            let body = Bytes::from(
                serde_json::to_vec(&event_json(county, event))
                    .map_err(|error| StoreError::Corrupt(format!("event json: {error}")))?,
            );
            let timestamp = Utc::now().timestamp();
            let request = WebhookRequest {
                url: url.clone(),
                headers: vec![
                    ("webhook-id", webhook_id.clone()),
                    ("webhook-timestamp", timestamp.to_string()),
                    (
                        "webhook-signature",
                        signature_header(&secrets, &webhook_id, timestamp, &body),
                    ),
                ],
                body,
            };
            let sent = Instant::now();
            let outcome = self.poster.post(request).await;
            self.node.metrics().webhook_attempt(outcome.result());
            let mut attempt = AttemptRecord {
                position: event.position,
                result: outcome.result(),
                status: None,
                error: None,
                elapsed: sent.elapsed(),
            };
            match outcome {
                PostOutcome::Accepted(status) => {
                    attempt.status = Some(status);
                    if !store
                        .webhook_delivered(endpoint.id, self.owner, &attempt, self.lease())
                        .await?
                    {
                        // the lease ran out (a stalled step) and another replica may have the
                        // endpoint now: it sends this event again, as at-least-once allows
                        warn!(
                            webhook_id,
                            "webhook lease lost (or the endpoint removed) before the cursor moved; \
                             the event is sent again unless it was removed"
                        );
                        return Ok(turn);
                    }
                    debug!(webhook_id, status, "webhook delivered");
                    turn.delivered += 1;
                    cursor = event.position;
                }
                PostOutcome::Failed { status, error, .. } => {
                    let attempts = if turn.delivered == 0 {
                        u32::try_from(endpoint.attempts).unwrap_or(0) + 1
                    } else {
                        1
                    };
                    let delay = retry_delay(
                        attempts,
                        limits.webhook_retry_first,
                        limits.webhook_retry_max,
                        rand::random::<f64>(),
                    );
                    warn!(
                        webhook_id,
                        attempts,
                        result = attempt.result,
                        status,
                        error = %error,
                        retry_in = %humantime::format_duration(Duration::from_millis(delay.as_millis() as u64)),
                        "webhook delivery failed"
                    );
                    attempt.status = status;
                    attempt.error = Some(error);
                    store
                        .webhook_failed(endpoint.id, self.owner, &attempt, delay)
                        .await?;
                    turn.failed = true;
                    return Ok(turn);
                }
            }
        }
    }
}

/// Runs the worker until `shutdown` turns true: a step whenever this replica seals events, a
/// failing endpoint's retry falls due, or [`EVENT_POLL`] passes (another replica may have
/// sealed). A failed step is logged and tried again after `retry`.
pub async fn run(worker: Arc<WebhookWorker>, mut shutdown: watch::Receiver<bool>, retry: Duration) {
    let mut sealed = worker.node.events_sealed();
    while !*shutdown.borrow() {
        let pause = match worker.step(&shutdown).await {
            Ok(Step::Worked) => continue,
            Ok(Step::Idle(pause)) => pause,
            Err(error) => {
                warn!(worker = "webhooks", %error, "worker step failed");
                retry
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            Ok(()) = sealed.changed() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
