//! Events, read from the sealed audit chain ([`crate::domain::event`]): the audit records a
//! county system is told about, each at its chain position, with the township it concerns.
//! Nothing is written for an event: intake pays nothing, and an event exists exactly when its
//! sealed audit record does.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError, parsed};
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::event::EventType;
use crate::domain::vocabulary::{InquiryKind, NoticeKind};

/// At most this many chain positions are looked through per read: a reader far behind a chain
/// with few events in it moves on in steps of bounded cost.
pub const SCAN_WINDOW: i64 = 20_000;

/// One event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// Its cursor: the audit record's chain position.
    pub position: i64,
    /// What happened.
    pub event_type: EventType,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The peer county concerned.
    pub peer_county: Option<CountyCode>,
    /// The message the audit record names (the confirmation, for an answer; the feedback, for
    /// feedback).
    pub message_id: Option<Uuid>,
    /// The message it refers to: the inquiry answered, the notice fed back on.
    pub refers_to: Option<Uuid>,
    /// The inquiry or notice kind (`outflow_status`, `birth`, ...), or the set reconciled
    /// (`messages`, `shared_people`).
    pub kind: Option<String>,
    /// The township office concerned, when known (who asked, or where the person is registered).
    pub township: Option<TownshipCode>,
    /// `inbound` (ours to act on) or `outbound` (the peer's), for messages.
    pub direction: String,
    /// The audit outcome (`accepted`, `overdue`, `rejected_by_peer`, `reconciled`,
    /// `interrupted`).
    pub outcome: String,
}

/// Which events a reader wants.
#[derive(Clone, Debug)]
pub struct EventFilter {
    /// Only these types (never empty: see [`crate::domain::event::parse_types`]).
    pub types: Vec<EventType>,
    /// Only this township's (events of no known township are then left out).
    pub township: Option<TownshipCode>,
}

/// A read: the events found, and how far the chain was looked through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventPage {
    /// The events, in position order.
    pub events: Vec<EventRecord>,
    /// The position up to which the chain was read: the next read starts after it. Equal to the
    /// last event's position when the page filled up.
    pub scanned_to: i64,
}

type EventRow = (
    i64,
    String,
    DateTime<Utc>,
    Option<String>,
    Option<Uuid>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// The audit records that are events, typed, with their township, over `chain` (position,
/// audit_id). Written once: every reader goes through it. An event's type follows from its audit
/// record alone (direction, outcome, kind: `$6` the inquiry kinds, `$7` the notice kinds), which
/// never changes, so that what is an event never changes either; the rest (the inquiry answered,
/// its kind, the township) is read from the messages, which the same peer's records name.
const EVENTS_OVER_CHAIN: &str = "
    SELECT c.position, e.event_type, a.at, a.peer_county, a.message_id, d.refers_to,
           d.kind, d.township, a.direction, a.outcome
    FROM chain c
    JOIN audit_log a ON a.id = c.audit_id
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN a.direction = 'inbound' AND a.outcome = 'accepted' AND a.kind = 'confirmation'
                 THEN 'answer.received'
            WHEN a.direction = 'inbound' AND a.outcome = 'accepted' AND a.kind = 'feedback'
                 THEN 'feedback.received'
            WHEN a.direction = 'inbound' AND a.outcome = 'accepted' AND a.kind = ANY($7)
                 THEN 'notice.received'
            WHEN a.direction = 'inbound' AND a.outcome = 'accepted' AND a.kind = ANY($6)
                 THEN 'inquiry.received'
            WHEN a.outcome = 'overdue' AND a.kind = ANY($6) THEN 'inquiry.overdue'
            WHEN a.direction = 'outbound' AND a.outcome = 'rejected_by_peer'
                 AND (a.kind IS NULL OR a.kind = 'inquiry' OR a.kind = ANY($6))
                 THEN 'inquiry.refused'
            WHEN a.direction = 'outbound' AND a.outcome = 'rejected_by_peer'
                 AND (a.kind = 'notice' OR a.kind = ANY($7))
                 THEN 'notice.refused'
            WHEN a.kind LIKE 'reconcile\\_%' AND a.outcome IN ('reconciled', 'interrupted')
                 THEN 'reconcile.finished'
        END AS event_type,
        coalesce(a.kind, '') IN ('notice', 'feedback') OR a.kind = ANY($7) AS about_notice
    ) e
    LEFT JOIN confirmations cf ON a.kind = 'confirmation' AND cf.message_id = a.message_id
    LEFT JOIN feedback fb ON a.kind = 'feedback' AND fb.message_id = a.message_id
    LEFT JOIN inquiries iq ON NOT e.about_notice
                          AND iq.message_id = coalesce(cf.inquiry_id, a.message_id)
                          AND iq.peer_county = a.peer_county
    LEFT JOIN persons ip ON ip.resident_id = iq.subject_id
    LEFT JOIN notices nt ON e.about_notice
                        AND nt.message_id = coalesce(fb.notice_id, a.message_id)
                        AND nt.peer_county = a.peer_county
    LEFT JOIN persons np ON np.resident_id = nt.subject_id
    CROSS JOIN LATERAL (
        SELECT
        CASE WHEN a.kind = 'confirmation' THEN cf.inquiry_id
             WHEN a.kind = 'feedback' THEN fb.notice_id END AS refers_to,
        CASE WHEN a.kind LIKE 'reconcile\\_%' THEN substr(a.kind, 11)
             WHEN iq.message_id IS NOT NULL THEN iq.kind
             WHEN nt.message_id IS NOT NULL THEN nt.kind
             ELSE a.kind END AS kind,
        CASE WHEN iq.message_id IS NOT NULL THEN coalesce(iq.asked_by_township, ip.township)
             WHEN nt.message_id IS NOT NULL THEN np.township END AS township
    ) d
    WHERE e.event_type IS NOT NULL";

impl Store {
    /// The chain's last sealed position (0 before anything was sealed): where a reader that
    /// wants only what happens from now on starts.
    pub async fn event_head(&self) -> Result<i64, StoreError> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT last_position FROM audit_chain ORDER BY first_position DESC LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(head.unwrap_or(0))
    }

    /// At most `limit` events after position `after` that `filter` wants, looking through at
    /// most [`SCAN_WINDOW`] positions of the sealed chain.
    pub async fn events_after(
        &self,
        after: i64,
        filter: &EventFilter,
        limit: i64,
    ) -> Result<EventPage, StoreError> {
        let after = after.max(0);
        let head = self.event_head().await?;
        let upto = head.min(after.saturating_add(SCAN_WINDOW));
        if upto <= after {
            return Ok(EventPage {
                events: Vec::new(),
                scanned_to: after,
            });
        }
        let types: Vec<&str> = filter.types.iter().map(|kind| kind.as_str()).collect();
        // the blocks overlapping (after, upto], found through the exclusion constraint's index
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "WITH chain AS (
                SELECT b.first_position + u.k - 1 AS position, u.audit_id
                FROM audit_chain b
                CROSS JOIN LATERAL unnest(b.audit_ids) WITH ORDINALITY AS u(audit_id, k)
                WHERE int8range(b.first_position, b.last_position, '[]') && int8range($1, $2, '(]')
                  AND b.first_position + u.k - 1 > $1 AND b.first_position + u.k - 1 <= $2
             )
             SELECT * FROM ({EVENTS_OVER_CHAIN}) ev
             WHERE ev.event_type = ANY($3)
               AND ($4::text IS NULL OR ev.township = $4)
             ORDER BY ev.position
             LIMIT $5"
        ))
        .bind(after)
        .bind(upto)
        .bind(&types)
        .bind(filter.township.as_ref().map(TownshipCode::as_str))
        .bind(limit)
        .bind(
            InquiryKind::ALL
                .iter()
                .map(|kind| kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            NoticeKind::ALL
                .iter()
                .map(|kind| kind.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_all(self.pool())
        .await?;
        let full = rows.len() as i64 >= limit;
        let events = rows
            .into_iter()
            .map(event_record)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let scanned_to = match events.last() {
            Some(last) if full => last.position,
            _ => upto,
        };
        Ok(EventPage { events, scanned_to })
    }
}

fn event_record(row: EventRow) -> Result<EventRecord, StoreError> {
    let (position, event_type, at, peer_county, message_id, refers_to, kind, township, direction, outcome) =
        row;
    Ok(EventRecord {
        position,
        event_type: event_type
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("event type {event_type}")))?,
        at,
        peer_county: peer_county.as_deref().map(parsed).transpose()?,
        message_id,
        refers_to,
        kind,
        township: township.as_deref().map(parsed).transpose()?,
        direction,
        outcome,
    })
}
