//! The outbox the delivery worker drains: one entry per message still owed to a peer, written
//! in the transaction that writes the message ([`enqueue_in`]).
//!
//! The delivery worker *leases* due entries (moves their next attempt into the future under
//! `FOR UPDATE SKIP LOCKED`), so several replicas never send the same entry at once. The sender
//! renews the lease while the batch is on the wire, so the lease itself can be short: a replica
//! that dies mid-send stops renewing, and its entries are retried (by another replica, or by
//! itself after a restart) once the short lease runs out. An entry that failed waits for its
//! retry; one the peer refused for an agreement version mismatch is *held* until the peer's
//! status releases it ([`Store::record_peer_status`]), or an operator withdraws it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{AuditEntry, OperatorAccess, append_operator_access_in};
use super::{Store, StoreError, audit_batch_in, parsed};
use crate::domain::division::CountyCode;
use crate::domain::message::MessageType;

/// One leased outbox entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The message to send.
    pub message_id: Uuid,
    /// Attempts so far, this one included; drives the backoff.
    pub attempts: i32,
}

/// How a delivery attempt failed, as its audit record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failed {
    /// Not delivered: the peer could not be reached or asked us to retry.
    Attempt,
    /// Held until the two sides hold the same agreement version.
    Held,
}

impl Failed {
    /// The audit outcome.
    pub const fn as_str(self) -> &'static str {
        match self {
            Failed::Attempt => "attempt_failed",
            Failed::Held => "held",
        }
    }
}

/// Leases up to `$3` due entries of type `$2` for peer `$1`, oldest due first, for `$4`
/// milliseconds; returns each entry's id and attempts. Only ever run after [`LEASE_SETTINGS`]
/// in the same transaction: a connection keeps the statement prepared, and PostgreSQL does not
/// plan a kept statement again when planner settings change.
pub(super) const LEASE: &str = "UPDATE outbox SET next_attempt_at = now() + $4 * interval '1 millisecond',
                   leased_until = now() + $4 * interval '1 millisecond', attempts = attempts + 1
 WHERE message_id IN (
     SELECT message_id FROM outbox
     WHERE peer_county = $1 AND message_type = $2 AND next_attempt_at <= now()
     ORDER BY next_attempt_at
     LIMIT $3
     FOR UPDATE SKIP LOCKED)
 RETURNING message_id, attempts";

/// The settings of a lease's transaction, for it alone.
///
/// - It commits without waiting for its WAL flush (`synchronous_commit`): a lease lost in a
///   database crash only makes its entries due again, and a message sent twice is answered as a
///   duplicate. Not waiting saves a disk flush per step.
/// - It reads the due entries in the order of the due index (peer, next attempt) and stops at its
///   limit, never reading them all to sort them (`enable_sort`, `enable_bitmapscan`). The
///   planner would sort whenever its statistics take the outbox for small, and they lag behind
///   how fast it grows: a sweep queued at once, or the backlog of a peer that was away. In
///   `hancha bench exchange` every lease of 2,000 entries read and sorted about 50,000 on disk.
///   Reading in index order is the right plan at every size. (An index led by the message type
///   as well would not need the settings, but the next-attempt look-up per peer, across types,
///   would then read every entry of the peer.)
pub(super) const LEASE_SETTINGS: &str = "SELECT set_config('synchronous_commit', 'off', true),
        set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)";

impl Store {
    /// Leases up to `limit` due outbox entries of one type for `peer`, pushing their next
    /// attempt `lease` into the future.
    ///
    /// Its transaction runs under [`LEASE_SETTINGS`]: it commits without waiting for its WAL
    /// flush, and reads the due entries in the due index's order.
    pub async fn lease_outbox(
        &self,
        peer: CountyCode,
        message_type: MessageType,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(LEASE_SETTINGS).execute(&mut *tx).await?;
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(LEASE)
            .bind(peer.as_str())
            .bind(message_type.as_str())
            .bind(limit)
            .bind(lease.as_millis() as f64)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(message_id, attempts)| Lease { message_id, attempts })
            .collect())
    }

    /// Extends the lease on entries still being sent to `lease` from now. Entries delivered
    /// meanwhile are gone and stay gone.
    pub async fn renew_outbox_lease(&self, ids: &[Uuid], lease: Duration) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = now() + $2 * interval '1 millisecond',
                               leased_until = now() + $2 * interval '1 millisecond'
             WHERE message_id = ANY($1)",
        )
        .bind(ids)
        .bind(lease.as_millis() as f64)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The earliest next attempt among `peer`'s outbox entries, to know how long to sleep.
    pub async fn next_outbox_attempt(&self, peer: CountyCode) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT min(next_attempt_at) FROM outbox WHERE peer_county = $1")
                .bind(peer.as_str())
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// How many messages of one type still wait in the outbox for `peer` (not yet accepted by
    /// it), for a benchmark watching a backlog drain.
    pub async fn outbox_waiting(
        &self,
        peer: CountyCode,
        message_type: MessageType,
    ) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE peer_county = $1 AND message_type = $2")
                .bind(peer.as_str())
                .bind(message_type.as_str())
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Puts leased entries back with the error that stopped them and when to try again; a
    /// [`Failed::Held`] entry is marked held, to be released as soon as the peer's status shows
    /// it holds a version it did not ([`Store::record_peer_status`]).
    pub async fn reschedule_outbox(
        &self,
        peer: CountyCode,
        failed: Failed,
        ids: &[Uuid],
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE outbox SET last_error = $2, next_attempt_at = $3, held = $4, leased_until = NULL
             WHERE message_id = ANY($1)",
        )
        .bind(ids)
        .bind(error)
        .bind(next_attempt_at)
        .bind(failed == Failed::Held)
        .execute(&mut *tx)
        .await?;
        // one record per message and failed attempt (never per success): what `hancha show`
        // lists as the message's attempts
        let entries: Vec<AuditEntry> = ids
            .iter()
            .map(|&id| AuditEntry {
                peer_county: Some(peer.to_string()),
                direction: "outbound".into(),
                message_id: Some(id),
                outcome: failed.as_str().into(),
                reason: Some(error.to_string()),
                ..AuditEntry::default()
            })
            .collect();
        audit_batch_in(&mut tx, &entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A peer that cannot be reached: every entry for it due before `next_attempt_at` waits
    /// until then, so the worker does not try the dead peer once per batch of its backlog.
    /// Entries on the wire (leased, by this replica or another) are left to their batch's own
    /// outcome. Returns how many entries were put back.
    pub async fn defer_peer_outbox(
        &self,
        peer: CountyCode,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let deferred = sqlx::query(
            "UPDATE outbox SET last_error = $2, next_attempt_at = $3
             WHERE peer_county = $1 AND next_attempt_at < $3 AND (leased_until IS NULL OR leased_until <= now())",
        )
        .bind(peer.as_str())
        .bind(error)
        .bind(next_attempt_at)
        .execute(self.pool())
        .await?;
        Ok(deferred.rows_affected())
    }

    /// A peer reached again after an outage: every entry for it that waits on the outage (failed
    /// and due no later than `deferred_until`, the time the outage put them back to) is due at
    /// once, in the order the messages were written (its next attempt becomes its creation
    /// time). Entries held for an agreement version, or waiting on their own backoff beyond
    /// `deferred_until`, keep their time, and so do entries on the wire (leased, by this replica
    /// or another), which would otherwise be sent a second time while the first is under way.
    /// Returns how many are due again.
    pub async fn release_peer_outbox(
        &self,
        peer: CountyCode,
        deferred_until: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let released = sqlx::query(
            "UPDATE outbox SET next_attempt_at = least(created_at, now())
             WHERE peer_county = $1 AND NOT held AND last_error IS NOT NULL
               AND next_attempt_at <= $2 AND (leased_until IS NULL OR leased_until <= now())",
        )
        .bind(peer.as_str())
        .bind(deferred_until)
        .execute(self.pool())
        .await?;
        Ok(released.rows_affected())
    }

    /// Withdraws our inquiry `message_id` if the peer holds it back for a version mismatch:
    /// its outbox entry is held and not on its way (a held entry waits `retry_max`; one on the
    /// wire is due within `lease`). It is then never sent and stays `rejected` with `reason`,
    /// recorded with `audit` in the same transaction. `None` when it is not such an inquiry.
    pub async fn withdraw_held_inquiry(
        &self,
        message_id: Uuid,
        lease: Duration,
        reason: &str,
        audit: &OperatorAccess,
    ) -> Result<Option<CountyCode>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let removed: Option<String> = sqlx::query_scalar(
            "DELETE FROM outbox WHERE message_id = $1 AND message_type = 'inquiry' AND held
                AND next_attempt_at > now() + make_interval(secs => $2)
             RETURNING peer_county",
        )
        .bind(message_id)
        .bind(lease.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(peer) = removed else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE inquiries SET state = 'rejected', reject_reason = $2
             WHERE message_id = $1 AND direction = 'outbound' AND state = 'queued'",
        )
        .bind(message_id)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        append_operator_access_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(parsed(&peer)?))
    }
}

/// Adds outbox entries for messages written in the same transaction, due after `hold`; returns
/// how many were new (a message already waiting in the outbox keeps its entry).
pub(crate) async fn enqueue_in(
    connection: &mut sqlx::PgConnection,
    ids: &[Uuid],
    message_type: MessageType,
    peer: CountyCode,
    hold: Duration,
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let inserted = sqlx::query(
        "INSERT INTO outbox (message_id, message_type, peer_county, next_attempt_at)
         SELECT id, $2, $3, now() + $4 * interval '1 millisecond' FROM UNNEST($1::uuid[]) AS t(id)
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(ids)
    .bind(message_type.as_str())
    .bind(peer.as_str())
    .bind(hold.as_millis() as f64)
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected())
}
