//! The figures monitoring reads from the database at scrape time: one cheap query each, so that
//! every replica of a county's node (one database) reports the same values.

use super::{Store, StoreError};

/// What the database says at one moment, for the metrics that are really database state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatabaseFigures {
    /// Per peer with anything in the outbox.
    pub outbox: Vec<OutboxFigures>,
    /// Inquiries not yet answered, by direction and state.
    pub open_inquiries: Vec<OpenInquiries>,
    /// Pending inquiries past their deadline, by direction (`inbound`: we owe the answer).
    pub overdue: Vec<(String, i64)>,
    /// Per peer: when a reconciliation with it last completed (either side starting it), in
    /// Unix seconds.
    pub reconcile_last_completed: Vec<(String, f64)>,
    /// Per peer: its clock minus ours at the last status exchange, in milliseconds.
    pub peer_clock_offsets_ms: Vec<(String, i64)>,
    /// The audit chain: the last position sealed, committed records not yet sealed, and the
    /// age in seconds of the oldest of them.
    pub audit_sealed_position: i64,
    /// See `audit_sealed_position`.
    pub audit_unsealed: i64,
    /// See `audit_sealed_position`.
    pub audit_unsealed_oldest_seconds: f64,
    /// Peers whose audit chain forked (a fork recorded and not since resolved).
    pub audit_forked_peers: Vec<String>,
    /// Per webhook endpoint (by id): chain positions between its cursor and the head, and
    /// whether its delivery is failing.
    pub webhooks: Vec<WebhookFigures>,
}

/// One webhook endpoint's delivery.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct WebhookFigures {
    /// The endpoint's id.
    pub endpoint: String,
    /// Chain positions past its cursor (an upper bound on the events it has yet to receive).
    pub backlog: i64,
    /// Whether its last attempt failed.
    pub failing: bool,
}

/// The outbox towards one peer.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxFigures {
    /// The peer's county code.
    pub peer: String,
    /// Messages waiting (queued, retried, held, or leased while on the wire).
    pub messages: i64,
    /// Age of the oldest of them.
    pub oldest_age_seconds: f64,
}

/// Open inquiries of one direction in one state.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct OpenInquiries {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `queued` or `pending`.
    pub state: String,
    /// How many.
    pub count: i64,
}

impl Store {
    /// The database-derived figures for a scrape.
    pub async fn monitoring_figures(&self) -> Result<DatabaseFigures, StoreError> {
        let outbox: Vec<(String, i64, f64)> = sqlx::query_as(
            "SELECT peer_county, count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
             FROM outbox GROUP BY peer_county ORDER BY peer_county",
        )
        .fetch_all(self.pool())
        .await?;
        let open_inquiries: Vec<OpenInquiries> = sqlx::query_as(
            // queued inquiries are ours still in the outbox (small); pending ones are counted
            // through the work-queue indexes (one per direction, hence both named), so a scrape
            // never reads every inquiry ever exchanged
            "SELECT 'outbound' AS direction, 'queued' AS state, count(*) AS count FROM outbox
              WHERE message_type = 'inquiry'
             UNION ALL
             SELECT direction, 'pending', count(*) FROM inquiries
              WHERE state = 'pending' AND (direction = 'inbound' OR direction = 'outbound')
              GROUP BY direction",
        )
        .fetch_all(self.pool())
        .await?;
        let overdue: Vec<(String, i64)> = sqlx::query_as(
            "SELECT direction, count(*) FROM inquiries
             WHERE state = 'pending' AND (direction = 'inbound' OR direction = 'outbound') AND due_at < now()
             GROUP BY direction",
        )
        .fetch_all(self.pool())
        .await?;
        let reconcile_last_completed: Vec<(String, f64)> = sqlx::query_as(
            // every peer with an agreement: its last completed run, or before the first one when
            // the first agreement with it was installed (so that a pair that never reconciled
            // is noticed too)
            "SELECT a.peer_county,
                    EXTRACT(EPOCH FROM COALESCE(
                        (SELECT max(r.finished_at) FROM reconcile_runs r
                          WHERE r.peer_county = a.peer_county AND r.outcome = 'completed'),
                        min(a.installed_at)))::float8
             FROM agreements a GROUP BY a.peer_county",
        )
        .fetch_all(self.pool())
        .await?;
        let peer_clock_offsets_ms = self
            .peer_statuses()
            .await?
            .into_iter()
            .map(|status| (status.peer_county.to_string(), status.clock_offset_ms))
            .collect();
        let audit_sealed_position = self.audit_chain_end().await?.map_or(0, |end| end.position as i64);
        let (audit_unsealed, audit_unsealed_oldest_seconds) = self.audit_unsealed().await?;
        let audit_forked_peers = self
            .peer_witness(None)
            .await?
            .into_iter()
            .filter(|witness| witness.fork.is_some())
            .map(|witness| witness.peer)
            .collect();
        let webhooks: Vec<WebhookFigures> = sqlx::query_as(
            "SELECT id::text AS endpoint, greatest($1 - cursor, 0) AS backlog,
                    failing_since IS NOT NULL AS failing
             FROM webhook_endpoints WHERE disabled_at IS NULL ORDER BY id",
        )
        .bind(audit_sealed_position)
        .fetch_all(self.pool())
        .await?;
        Ok(DatabaseFigures {
            webhooks,
            outbox: outbox
                .into_iter()
                .map(|(peer, messages, oldest_age_seconds)| OutboxFigures {
                    peer,
                    messages,
                    oldest_age_seconds,
                })
                .collect(),
            open_inquiries,
            overdue,
            reconcile_last_completed,
            peer_clock_offsets_ms,
            audit_sealed_position,
            audit_unsealed,
            audit_unsealed_oldest_seconds,
            audit_forked_peers,
        })
    }

    /// This process's connection pool: connections open, idle among them.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// The most connections this process's pool may open.
    pub fn pool_max(&self) -> u32 {
        self.pool.options().get_max_connections()
    }
}
