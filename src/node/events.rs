//! The event stream as the node serves it ([`crate::domain::event`], read by
//! [`crate::store::events`]): waiting for new events without polling the database in a tight
//! loop, and the one JSON form of an event that webhooks and the HTTP API send.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::Node;
use crate::domain::division::CountyCode;
use crate::store::events::EventRecord;

/// How long a reader waits for a sealing on this replica before it reads again anyway:
/// another replica may have sealed (it does not ring this one).
pub const EVENT_POLL: Duration = Duration::from_secs(1);

impl Node {
    /// Rung by this replica's sealer with the chain's head each time it seals records.
    pub fn events_sealed(&self) -> watch::Receiver<i64> {
        self.sealed.subscribe()
    }

    /// Ends every open event stream: the node is stopping.
    pub fn stop_streams(&self) {
        self.streams_stop.send_replace(true);
    }

    /// Whether the node is stopping.
    pub fn streams_are_stopping(&self) -> bool {
        *self.streams_stop.borrow()
    }

    /// Resolves once the node is stopping (at once if it already is).
    pub async fn streams_stopped(&self) {
        let mut stop = self.streams_stop.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// Waits until this replica seals something or [`EVENT_POLL`] passes, whichever is first.
    pub async fn wait_for_sealing(&self, sealed: &mut watch::Receiver<i64>) {
        let _ = tokio::time::timeout(EVENT_POLL, sealed.changed()).await;
    }
}

/// An event's id, the same wherever it is sent (webhooks' `webhook-id`, for deduplication):
/// the county and the cursor.
pub fn event_id(county: CountyCode, event: &EventRecord) -> String {
    format!("evt_{county}_{}", event.position)
}

/// The event as JSON, in the Standard Webhooks shape (`type`, `timestamp`, `data`); `data`
/// names messages by id and never holds a person's data.
pub fn event_json(county: CountyCode, event: &EventRecord) -> Value {
    json!({
        "type": event.event_type.as_str(),
        "timestamp": event.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "id": event_id(county, event),
            "cursor": event.position.to_string(),
            "county": county.as_str(),
            "peerCounty": event.peer_county.map(|peer| peer.as_str().to_string()),
            "messageId": event.message_id.map(|id| id.to_string()),
            "refersTo": event.refers_to.map(|id| id.to_string()),
            "kind": event.kind,
            "township": event.township.map(|township| township.as_str().to_string()),
            "direction": event.direction,
            "outcome": event.outcome,
        }
    })
}
