//! `Watch`: the event stream ([`crate::node::events`]) to a county system, page by page, with
//! bounded memory however slow the client reads (the node reads the next page only when the
//! client took the last; a slow client falls behind on the cursor, never in the node's memory).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tonic::Status;
use tracing::warn;

use super::access::Caller;
use super::invalid;
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::event::parse_types;
use crate::domain::policy::{Rejection, RejectionCode};
use crate::exchange::convert::timestamp_to_wire;
use crate::node::Node;
use crate::node::events::event_id;
use crate::proto::operator as pb;
use crate::store::events::{EventFilter, EventRecord};

/// Events read per page.
const PAGE: i64 = 256;

/// Events sent ahead of the client: what the node holds for one stream at most, with a page.
const AHEAD: usize = 32;

/// While a reader with a narrow filter works through a long stretch of the chain with nothing
/// for it, it is told how far the node has looked at least this often (an event with no type),
/// so that it never waits in silence and resumes from there, not from its old cursor.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Checks the request, audits the start of the stream, and streams events after the cursor
/// until the client goes away.
pub(super) async fn watch(
    node: &Arc<Node>,
    caller: &Caller,
    request: pb::WatchRequest,
) -> Result<mpsc::Receiver<Result<pb::Event, Status>>, Status> {
    let filter = filter_of(node, caller, &request).await?;
    if request.after < 0 {
        return Err(invalid("after", "a cursor is 0 or a cursor an event carried"));
    }
    let head = node.store().event_head().await.map_err(crate::status::internal)?;
    if request.after > head && !request.from_now {
        return Err(invalid(
            "after",
            format!(
                "no event has this cursor yet: the last is {head} (a cursor from another node's database?)"
            ),
        ));
    }
    let after = if request.from_now { head } else { request.after };
    caller.audit(node, caller.access("started")).await?;
    let end = End {
        max_events: (request.max_events > 0).then_some(u64::from(request.max_events)),
        idle: (request.idle_seconds > 0).then(|| Duration::from_secs(u64::from(request.idle_seconds))),
    };
    let (sender, receiver) = mpsc::channel(AHEAD);
    tokio::spawn(stream(Arc::clone(node), filter, after, end, sender));
    Ok(receiver)
}

/// The filter a request asks for, narrowed to the caller's township.
async fn filter_of(node: &Node, caller: &Caller, request: &pb::WatchRequest) -> Result<EventFilter, Status> {
    let types = parse_types(&request.types).map_err(|error| invalid("types", error.to_string()))?;
    let requested = (!request.township.is_empty())
        .then(|| TownshipCode::parse(&request.township).map_err(|e| invalid("township", e.to_string())))
        .transpose()?;
    let township = caller.narrowed(node, requested).await?;
    // a township office sees no county-wide events (reconciliation runs)
    let types = types
        .into_iter()
        .filter(|kind| township.is_none() || kind.has_township())
        .collect::<Vec<_>>();
    if types.is_empty() {
        return Err(invalid(
            "types",
            "no event type asked for is one a township office receives",
        ));
    }
    Ok(EventFilter { types, township })
}

/// When a stream ends by itself (otherwise when the client goes or the node stops).
#[derive(Clone, Copy, Debug)]
struct End {
    /// After this many events.
    max_events: Option<u64>,
    /// Once no event came for this long.
    idle: Option<Duration>,
}

async fn stream(
    node: Arc<Node>,
    filter: EventFilter,
    mut after: i64,
    end: End,
    sender: mpsc::Sender<Result<pb::Event, Status>>,
) {
    let mut sent = 0;
    let mut last_event = Instant::now();
    // what the client was last told (an event's cursor or progress), and when
    let mut told = after;
    let mut last_message = Instant::now();
    let mut sealed = node.events_sealed();
    let stopping = node.streams_stopped();
    tokio::pin!(stopping);
    loop {
        let page = match node.store().events_after(after, &filter, PAGE).await {
            Ok(page) => page,
            Err(error) => {
                warn!(%error, "the event stream cannot read events");
                let _ = sender
                    .send(Err(unavailable(
                        "the node cannot read its events now; reconnect with the last cursor",
                    )))
                    .await;
                return;
            }
        };
        let caught_up = page.events.is_empty() && page.scanned_to == after;
        for event in &page.events {
            tokio::select! {
                result = sender.send(Ok(event_of(node.county(), event))) => if result.is_err() { return },
                _ = &mut stopping => return stopped(&sender).await,
            }
            sent += 1;
            last_event = Instant::now();
            last_message = last_event;
            told = event.position;
            if end.max_events.is_some_and(|max| sent >= max) {
                return;
            }
        }
        after = page.scanned_to;
        if sender.is_closed() {
            return;
        }
        if node.streams_are_stopping() {
            return stopped(&sender).await;
        }
        if page.events.is_empty() && after > told && last_message.elapsed() >= PROGRESS_EVERY {
            if sender.send(Ok(progress(after))).await.is_err() {
                return;
            }
            told = after;
            last_message = Instant::now();
        }
        if caught_up {
            let idle_until = end.idle.map(|idle| last_event + idle);
            if idle_until.is_some_and(|until| until <= Instant::now()) {
                if after > told {
                    let _ = sender.send(Ok(progress(after))).await;
                }
                return;
            }
            let idle_over = async {
                match idle_until {
                    Some(until) => tokio::time::sleep_until(until.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = idle_over => {
                    if after > told {
                        let _ = sender.send(Ok(progress(after))).await;
                    }
                    return;
                }
                _ = node.wait_for_sealing(&mut sealed) => {}
                _ = sender.closed() => return,
                _ = &mut stopping => return stopped(&sender).await,
            }
        }
    }
}

/// The node stops: the stream ends with `UNAVAILABLE`, telling the client to reconnect (a
/// client that does not take it within a second just sees the stream end).
async fn stopped(sender: &mpsc::Sender<Result<pb::Event, Status>>) {
    let status =
        unavailable("the node is stopping: reconnect (to it or another replica) with the last cursor");
    let _ = tokio::time::timeout(Duration::from_secs(1), sender.send(Err(status))).await;
}

/// `UNAVAILABLE`: the stream cannot go on here; the client reconnects with its cursor.
fn unavailable(reason: &str) -> Status {
    crate::status::status_of(&Rejection::new(RejectionCode::Unavailable, reason))
}

/// Progress: nothing the filter wants up to `cursor` (an event with no type).
fn progress(cursor: i64) -> pb::Event {
    pb::Event {
        cursor,
        ..pb::Event::default()
    }
}

/// An event as the operator API sends it.
pub(super) fn event_of(county: CountyCode, event: &EventRecord) -> pb::Event {
    let text = |value: Option<String>| value.unwrap_or_default();
    pb::Event {
        cursor: event.position,
        id: event_id(county, event),
        r#type: event.event_type.as_str().to_string(),
        at: Some(timestamp_to_wire(event.at)),
        peer_county: text(event.peer_county.map(|peer| peer.to_string())),
        message_id: text(event.message_id.map(|id| id.to_string())),
        refers_to: text(event.refers_to.map(|id| id.to_string())),
        kind: text(event.kind.clone()),
        township: text(event.township.map(|township| township.to_string())),
        direction: event.direction.clone(),
        outcome: event.outcome.clone(),
    }
}
