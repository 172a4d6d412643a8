//! Read-only counts that check the store from outside: the benchmark's bookkeeping after a run
//! and the demo's closing proof, each asking whether every message was handled exactly once.
//! The node itself never reads these; the writes here are the demo's fault injections, named as
//! such.

use uuid::Uuid;

use super::{Store, StoreError, parsed};
use crate::domain::division::CountyCode;
use crate::domain::message::Direction;

/// The client backends of the session's database, in `pg_stat_activity` (a `FROM` clause).
const CLIENT_BACKENDS: &str =
    "pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'";

/// A backend's pid and start (seconds since the Unix epoch), as [`Backend`] reads them from
/// `pg_stat_activity`.
const BACKEND_COLUMNS: &str = "pid, extract(epoch FROM backend_start)::float8 AS started_s";

/// A server process serving one client, as PostgreSQL lists it: its pid, and when it started
/// (seconds since the Unix epoch), by which a benchmark can tell it among this machine's
/// processes — or find that it is not one of them.
#[derive(Clone, Copy, Debug, PartialEq, sqlx::FromRow)]
pub struct Backend {
    /// The process id on the server's machine.
    pub pid: i32,
    /// When it started, seconds since the Unix epoch.
    pub started_s: f64,
}

/// The server process behind `connection`.
pub async fn connection_backend(connection: &mut sqlx::PgConnection) -> Result<Backend, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BACKEND_COLUMNS} FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    ))
    .fetch_one(connection)
    .await?)
}

/// What an asking county's database holds after a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AskerCounts {
    /// Our inquiries.
    pub inquiries: i64,
    /// Of which answered.
    pub answered: i64,
    /// Of which answered `found`.
    pub found: i64,
    /// Of which answered `not_found`.
    pub not_found: i64,
    /// Confirmations received.
    pub confirmations: i64,
    /// Inquiries with no confirmation stored.
    pub unconfirmed: i64,
    /// Outbox entries left.
    pub outbox: i64,
    /// Audit records of confirmations accepted (one per first delivery; repeats add none).
    pub confirmations_audited: i64,
}

/// What an answering county's database holds after a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ResponderCounts {
    /// Inquiries received.
    pub inquiries: i64,
    /// Of which answered.
    pub answered: i64,
    /// Of which answered `found`.
    pub found: i64,
    /// Of which answered `not_found`.
    pub not_found: i64,
    /// Confirmations written.
    pub confirmations: i64,
    /// Of which acknowledged by the asker.
    pub delivered: i64,
    /// Outbox entries left.
    pub outbox: i64,
    /// Audit records of inquiries accepted (one per first delivery; repeats add none).
    pub inquiries_audited: i64,
    /// Inquiries counted against the daily cap.
    pub daily_volume: i64,
}

/// Inquiries between this county and one peer, one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InquiryTally {
    /// The other county.
    pub peer: CountyCode,
    /// Asked by us (outbound) or of us (inbound).
    pub direction: Direction,
    /// How many.
    pub total: u64,
    /// Of which answered.
    pub answered: u64,
}

/// Confirmations between this county and one peer, one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfirmationTally {
    /// The other county.
    pub peer: CountyCode,
    /// Written by us (outbound) or received (inbound).
    pub direction: Direction,
    /// Answered automatically from the registry.
    pub automatic: u64,
    /// Answered by an operator.
    pub by_hand: u64,
    /// Distinct inquiries answered: equal to the total when none was answered twice.
    pub inquiries: u64,
    /// Of which acknowledged by the asker.
    pub delivered: u64,
}

/// What one county's database holds about its exchanges, per peer and direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExchangeTally {
    /// Inquiries per peer and direction.
    pub inquiries: Vec<InquiryTally>,
    /// Confirmations per peer and direction.
    pub confirmations: Vec<ConfirmationTally>,
    /// Notices per peer and direction.
    pub notices: Vec<NoticeTally>,
    /// Feedback per peer and direction.
    pub feedback: Vec<NoticeTally>,
    /// Messages still waiting for delivery.
    pub outbox: u64,
    /// Audit records.
    pub audit: u64,
}

/// Notices (or feedback) exchanged with one peer, one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoticeTally {
    /// The peer.
    pub peer: CountyCode,
    /// Which way.
    pub direction: Direction,
    /// How many.
    pub total: u64,
    /// Of which acknowledged: outbound, the peer's receipt recorded; inbound, stored here.
    pub acknowledged: u64,
}

impl Store {
    /// Whether an asking node has nothing left to wait for: no outbox entry, and no inquiry of
    /// ours not yet answered (queued, or accepted and pending; a queued one also keeps its outbox
    /// entry). Benchmarks ask this every few hundred milliseconds while they measure, so it must
    /// cost the database next to nothing: each half reads the first live entry of an index (the
    /// work queue's, whose predicate is exactly "queued or pending"; the outbox's due index) and
    /// stops. Sequential scans are turned off for it, because statistics taken while the tables
    /// were small would choose them, and the outbox's heap is mostly dead rows during a sweep.
    pub async fn asker_settled(&self) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT set_config('enable_seqscan', 'off', true)")
            .execute(&mut *tx)
            .await?;
        let settled = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM inquiries WHERE direction = 'outbound' AND state IN ('queued', 'pending'))
                AND NOT EXISTS (SELECT 1 FROM outbox WHERE peer_county > '' AND next_attempt_at > '-infinity')",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(settled)
    }

    /// The server processes serving clients of this store's database right now (every
    /// client's, this pool's included), for a benchmark reading PostgreSQL's own CPU. Whether
    /// they are processes of this machine is not for the server to say (a loopback address may
    /// be a tunnel's end, a socket a container's): the benchmark checks each against `/proc`.
    pub async fn database_backends(&self) -> Result<Vec<Backend>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {BACKEND_COLUMNS} FROM {CLIENT_BACKENDS}"))
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The connections open to this store's database right now (every client's, this pool's
    /// included), for a benchmark that counts a node's connections.
    pub async fn database_connections(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {CLIENT_BACKENDS}"))
            .fetch_one(self.pool())
            .await?;
        Ok(count.unsigned_abs())
    }

    /// Counts what an asking county's database holds.
    pub async fn asker_counts(&self) -> Result<AskerCounts, StoreError> {
        Ok(sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM inquiries WHERE direction = 'outbound') AS inquiries,
               (SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered') AS answered,
               (SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND outcome = 'found') AS found,
               (SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND outcome = 'not_found') AS not_found,
               (SELECT count(*) FROM confirmations WHERE direction = 'inbound') AS confirmations,
               (SELECT count(*) FROM inquiries i WHERE i.direction = 'outbound'
                   AND NOT EXISTS (SELECT 1 FROM confirmations c WHERE c.inquiry_id = i.message_id)) AS unconfirmed,
               (SELECT count(*) FROM outbox) AS outbox,
               (SELECT count(*) FROM audit_log
                   WHERE direction = 'inbound' AND kind = 'confirmation' AND outcome = 'accepted')
                   AS confirmations_audited",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// Counts what an answering county's database holds.
    pub async fn responder_counts(&self) -> Result<ResponderCounts, StoreError> {
        Ok(sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM inquiries WHERE direction = 'inbound') AS inquiries,
               (SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND state = 'answered') AS answered,
               (SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND outcome = 'found') AS found,
               (SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND outcome = 'not_found') AS not_found,
               (SELECT count(*) FROM confirmations WHERE direction = 'outbound') AS confirmations,
               (SELECT count(*) FROM confirmations WHERE direction = 'outbound' AND delivered_at IS NOT NULL)
                   AS delivered,
               (SELECT count(*) FROM outbox) AS outbox,
               (SELECT count(*) FROM audit_log
                   WHERE direction = 'inbound' AND kind <> 'confirmation' AND outcome = 'accepted')
                   AS inquiries_audited,
               (SELECT coalesce(sum(inquiries), 0)::bigint FROM daily_volume) AS daily_volume",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// Inquiries and confirmations per peer and direction, outbox entries and audit records.
    pub async fn exchange_tally(&self) -> Result<ExchangeTally, StoreError> {
        let inquiries: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT peer_county, direction, count(*), count(*) FILTER (WHERE state = 'answered')
             FROM inquiries GROUP BY peer_county, direction",
        )
        .fetch_all(self.pool())
        .await?;
        let confirmations: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT peer_county, direction,
                    count(*) FILTER (WHERE answered_by = 'automatic'),
                    count(*) FILTER (WHERE answered_by = 'operator'),
                    count(DISTINCT inquiry_id), count(delivered_at)
             FROM confirmations GROUP BY peer_county, direction",
        )
        .fetch_all(self.pool())
        .await?;
        let mut notices = Vec::new();
        for table in ["notices", "feedback"] {
            let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
                "SELECT peer_county, direction, count(*), count(acknowledged_at)
                 FROM {table} GROUP BY peer_county, direction"
            ))
            .fetch_all(self.pool())
            .await?;
            notices.push(
                rows.into_iter()
                    .map(|(peer, direction, total, acknowledged)| {
                        Ok(NoticeTally {
                            peer: parsed(&peer)?,
                            direction: parsed(&direction)?,
                            total: total.unsigned_abs(),
                            acknowledged: acknowledged.unsigned_abs(),
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?,
            );
        }
        let feedback = notices.pop().unwrap_or_default();
        let notices = notices.pop().unwrap_or_default();
        let (outbox, audit): (i64, i64) =
            sqlx::query_as("SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM audit_log)")
                .fetch_one(self.pool())
                .await?;
        Ok(ExchangeTally {
            inquiries: inquiries
                .into_iter()
                .map(|(peer, direction, total, answered)| {
                    Ok(InquiryTally {
                        peer: parsed(&peer)?,
                        direction: parsed(&direction)?,
                        total: total.unsigned_abs(),
                        answered: answered.unsigned_abs(),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            confirmations: confirmations
                .into_iter()
                .map(|(peer, direction, automatic, by_hand, inquiries, delivered)| {
                    Ok(ConfirmationTally {
                        peer: parsed(&peer)?,
                        direction: parsed(&direction)?,
                        automatic: automatic.unsigned_abs(),
                        by_hand: by_hand.unsigned_abs(),
                        inquiries: inquiries.unsigned_abs(),
                        delivered: delivered.unsigned_abs(),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            notices,
            feedback,
            outbox: outbox.unsigned_abs(),
            audit: audit.unsigned_abs(),
        })
    }

    /// How many of `inquiries` have an answer stored.
    pub async fn answers_held_for(&self, inquiries: &[Uuid]) -> Result<u64, StoreError> {
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM confirmations WHERE inquiry_id = ANY($1)")
            .bind(inquiries)
            .fetch_one(self.pool())
            .await?;
        Ok(held.unsigned_abs())
    }

    /// FAULT INJECTION, for the demo: deletes the last `count` answers that `peer` sent for this
    /// county's inquiries, and leaves the inquiries marked answered, as a database restored from
    /// a backup taken before the answers arrived would hold them (a node accepts an answer again
    /// for an inquiry whose confirmation is gone). Returns the inquiries whose answers were lost.
    pub async fn lose_answers_from(&self, peer: CountyCode, count: u32) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "DELETE FROM confirmations WHERE message_id IN (
                 SELECT message_id FROM confirmations WHERE direction = 'inbound' AND peer_county = $1
                  ORDER BY created_at DESC, message_id LIMIT $2)
             RETURNING inquiry_id",
        )
        .bind(peer.as_str())
        .bind(i64::from(count))
        .fetch_all(self.pool())
        .await?)
    }

    /// FAULT INJECTION, for the demo: what a database administrator can do to the audit log
    /// behind the node's back. Switches the append-only trigger off, sets the outcome of audit
    /// record `id` to `outcome` and switches the trigger on again, all in one transaction (the
    /// trigger is never off outside it). Returns the outcome the record had; `None`, changing
    /// nothing, when there is no such record.
    pub async fn overwrite_audit_outcome(
        &self,
        id: i64,
        outcome: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete")
            .execute(&mut *tx)
            .await?;
        let before: Option<String> = sqlx::query_scalar("SELECT outcome FROM audit_log WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if before.is_none() {
            // rolled back: the trigger was never off
            return Ok(None);
        }
        sqlx::query("UPDATE audit_log SET outcome = $2 WHERE id = $1")
            .bind(id)
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        sqlx::query("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_or_delete")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(before)
    }

    /// Persons whose digest is missing or was made for other fields than `fields`: what the
    /// next reconciliation computes.
    pub async fn persons_without_digest_for(&self, fields: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM persons
             WHERE shared_digest IS NULL OR shared_digest_fields IS DISTINCT FROM $1",
        )
        .bind(fields)
        .fetch_one(self.pool())
        .await?;
        Ok(count.unsigned_abs())
    }

    /// `VACUUM (ANALYZE) persons`: what autovacuum would do after a large import, done now so
    /// that a benchmark run starts from the same state whatever autovacuum is up to.
    pub async fn vacuum_persons(&self) -> Result<(), StoreError> {
        sqlx::query("VACUUM (ANALYZE) persons")
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
