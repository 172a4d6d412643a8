//! Webhook endpoints ([`crate::domain::webhook`]): registration, signing secrets, and the
//! delivery state every replica shares: the cursor (the chain position of the last event
//! delivered), the retry state, the lease that keeps two replicas from delivering to one
//! endpoint at once, and a short log of attempts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

/// Attempts kept per endpoint in `webhook_attempts`: older ones are dropped as new ones come.
pub const ATTEMPTS_KEPT: i64 = 50;

/// An endpoint to register.
#[derive(Clone)]
pub struct NewWebhook {
    /// The URL, checked by [`crate::domain::webhook::WebhookUrl::parse`].
    pub url: String,
    /// Event type wire names; empty: every type.
    pub event_types: Vec<String>,
    /// Only this township's events.
    pub township: Option<String>,
    /// Who registered it (the principal's name).
    pub created_by: String,
    /// Its first signing secret, in text form.
    pub secret: String,
    /// Where its delivery starts: the event stream's head when it is registered.
    pub cursor: i64,
}

/// A signing secret as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredSecret {
    /// Its text form (`whsec_…`): shown to nobody after it was made.
    pub secret: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops signing (the end of a rotation's overlap); `None`: in force.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An endpoint with its delivery state, as listings show it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: i64,
    /// Where events go.
    pub url: String,
    /// Event type wire names; empty: every type.
    pub event_types: Vec<String>,
    /// Only this township's events.
    pub township: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// By whom.
    pub created_by: String,
    /// The chain position of the last event delivered (or passed over by the filter).
    pub cursor: i64,
    /// Events delivered so far.
    pub delivered: i64,
    /// Failed attempts at the next event.
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Since when delivery has failed without a success (`None`: not failing).
    pub failing_since: Option<DateTime<Utc>>,
    /// The last HTTP status the endpoint answered with.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When an event was last delivered.
    pub last_success_at: Option<DateTime<Utc>>,
}

/// One delivery attempt, as the log keeps it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookAttempt {
    /// The event's chain position.
    pub position: i64,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// `delivered`, or what failed (`http_status`, `redirect`, `timeout`, `connect`, `tls`,
    /// `other`).
    pub result: String,
    /// The HTTP status, if the endpoint answered.
    pub status: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// How long it took.
    pub elapsed_ms: i32,
}

/// An endpoint this replica holds the lease of, with what delivery needs.
#[derive(Clone)]
pub struct ClaimedWebhook {
    /// The endpoint as stored.
    pub endpoint: WebhookEndpoint,
    /// Its secrets in force now (at least one for an endpoint not removed).
    pub secrets: Vec<String>,
}

/// How an attempt ended, to record.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// The event's chain position.
    pub position: i64,
    /// See [`WebhookAttempt::result`].
    pub result: &'static str,
    /// The HTTP status, if any.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took.
    pub elapsed: Duration,
}

// Secrets never reach a log through `Debug`.

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("event_types", &self.event_types)
            .field("township", &self.township)
            .field("created_by", &self.created_by)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClaimedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedWebhook")
            .field("endpoint", &self.endpoint.id)
            .field("cursor", &self.endpoint.cursor)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, event_types, township, created_at, created_by, cursor,
    delivered, attempts, next_attempt_at, failing_since, last_status, last_error, last_success_at";

impl Store {
    /// Registers an endpoint with its first secret; returns its id.
    pub async fn add_webhook(&self, new: &NewWebhook) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_endpoints (url, event_types, township, created_by, cursor)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&new.url)
        .bind(&new.event_types)
        .bind(&new.township)
        .bind(&new.created_by)
        .bind(new.cursor)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO webhook_secrets (endpoint_id, secret) VALUES ($1, $2)")
            .bind(id)
            .bind(&new.secret)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The endpoints not removed, oldest first.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// An endpoint's secrets that still sign (or will: none is made to start later), oldest first.
    pub async fn webhook_secrets(&self, id: i64) -> Result<Vec<StoredSecret>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT secret, created_at, expires_at FROM webhook_secrets
             WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > now())
             ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    /// An endpoint's latest attempts, newest first.
    pub async fn webhook_attempts(&self, id: i64, limit: i64) -> Result<Vec<WebhookAttempt>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT position, at, result, status, error, elapsed_ms FROM webhook_attempts
             WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Gives endpoint `id` the new secret `secret`; the secrets it had sign on until
    /// `overlap_until` (at the latest: one already ending sooner keeps its end). NotFound for an
    /// endpoint that does not exist or was removed.
    pub async fn rotate_webhook_secret(
        &self,
        id: i64,
        secret: &str,
        overlap_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM webhook_endpoints WHERE id = $1 AND disabled_at IS NULL FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE webhook_secrets SET expires_at = least(coalesce(expires_at, $2), $2)
             WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > now())",
        )
        .bind(id)
        .bind(overlap_until)
        .execute(&mut *tx)
        .await?;
        // expired secrets are of no use to anyone: dropped
        sqlx::query("DELETE FROM webhook_secrets WHERE endpoint_id = $1 AND expires_at <= now()")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO webhook_secrets (endpoint_id, secret) VALUES ($1, $2)")
            .bind(id)
            .bind(secret)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stops delivery to endpoint `id` and drops its secrets; returns its URL. NotFound for an
    /// endpoint that does not exist or was removed already.
    pub async fn remove_webhook(&self, id: i64) -> Result<String, StoreError> {
        let mut tx = self.pool().begin().await?;
        let url: Option<String> = sqlx::query_scalar(
            "UPDATE webhook_endpoints SET disabled_at = now(), lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND disabled_at IS NULL RETURNING url",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(url) = url else {
            return Err(StoreError::NotFound);
        };
        sqlx::query("DELETE FROM webhook_secrets WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(url)
    }

    /// Takes the lease of one endpoint that is due (its next attempt's time has come) and whose
    /// lease no replica holds, for `lease`, leaving out those in `skip`. One short statement:
    /// `FOR UPDATE SKIP LOCKED` lets replicas claiming at the same moment take different ones.
    pub async fn claim_due_webhook(
        &self,
        owner: Uuid,
        lease: Duration,
        skip: &[i64],
    ) -> Result<Option<ClaimedWebhook>, StoreError> {
        let endpoint: Option<WebhookEndpoint> = sqlx::query_as(&format!(
            "UPDATE webhook_endpoints SET lease_owner = $1, lease_until = now() + $2
             WHERE id = (
                 SELECT id FROM webhook_endpoints
                 WHERE disabled_at IS NULL AND next_attempt_at <= now()
                   AND (lease_until IS NULL OR lease_until < now())
                   AND NOT (id = ANY($3))
                 ORDER BY next_attempt_at, id
                 LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(owner)
        .bind(pg_interval(lease))
        .bind(skip)
        .fetch_optional(self.pool())
        .await?;
        let Some(endpoint) = endpoint else {
            return Ok(None);
        };
        let secrets = self
            .webhook_secrets(endpoint.id)
            .await?
            .into_iter()
            .map(|stored| stored.secret)
            .collect();
        Ok(Some(ClaimedWebhook { endpoint, secrets }))
    }

    /// Records that the event at `attempt.position` was delivered: the cursor moves to it (in
    /// the same transaction as the attempt's record) and the lease is extended by `lease`.
    /// `false` when this replica no longer holds the lease (it ran out): the caller stops.
    pub async fn webhook_delivered(
        &self,
        id: i64,
        owner: Uuid,
        attempt: &AttemptRecord,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let moved = sqlx::query(
            "UPDATE webhook_endpoints
             SET cursor = $3, delivered = delivered + 1, attempts = 0, failing_since = NULL,
                 last_status = $4, last_error = NULL, last_success_at = now(),
                 next_attempt_at = now(), lease_until = now() + $5
             WHERE id = $1 AND lease_owner = $2 AND lease_until > now() AND cursor < $3
               AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(owner)
        .bind(attempt.position)
        .bind(attempt.status.map(i32::from))
        .bind(pg_interval(lease))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !moved {
            return Ok(false);
        }
        record_attempt(&mut tx, id, attempt).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves the cursor over positions that hold no event for this endpoint (up to `to`) and
    /// lets the lease go: the endpoint is caught up.
    pub async fn webhook_caught_up(&self, id: i64, owner: Uuid, to: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_endpoints
             SET cursor = greatest(cursor, $3), lease_owner = NULL, lease_until = NULL,
                 -- to the back of the queue: claims go round every endpoint in turn
                 next_attempt_at = greatest(next_attempt_at, now())
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(to)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a failed attempt and lets the lease go; the endpoint is due again after
    /// `retry_after` (by the database's clock, which every replica shares).
    pub async fn webhook_failed(
        &self,
        id: i64,
        owner: Uuid,
        attempt: &AttemptRecord,
        retry_after: Duration,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE webhook_endpoints
             SET attempts = attempts + 1, next_attempt_at = now() + $3,
                 failing_since = coalesce(failing_since, now()),
                 last_status = $4, last_error = $5, lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(pg_interval(retry_after))
        .bind(attempt.status.map(i32::from))
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            record_attempt(&mut tx, id, attempt).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Lets the lease of endpoint `id` go without changing anything else (delivery stopped at
    /// a step boundary).
    pub async fn release_webhook(&self, id: i64, owner: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL,
                 next_attempt_at = greatest(next_attempt_at, now())
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// How long until the earliest retry of a failing endpoint is due, if one is waiting: how
    /// long the delivery worker may sleep at most.
    pub async fn next_webhook_retry(&self) -> Result<Option<Duration>, StoreError> {
        let seconds: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8
             FROM webhook_endpoints
             WHERE disabled_at IS NULL AND failing_since IS NOT NULL AND next_attempt_at > now()",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(seconds.map(|seconds| Duration::from_secs_f64(seconds.max(0.0))))
    }
}

async fn record_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: i64,
    attempt: &AttemptRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_attempts (endpoint_id, position, result, status, error, elapsed_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(attempt.position)
    .bind(attempt.result)
    .bind(attempt.status.map(i32::from))
    .bind(&attempt.error)
    .bind(i32::try_from(attempt.elapsed.as_millis()).unwrap_or(i32::MAX))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE endpoint_id = $1 AND id <= (
             SELECT id FROM webhook_attempts WHERE endpoint_id = $1
             ORDER BY id DESC OFFSET $2 LIMIT 1)",
    )
    .bind(id)
    .bind(ATTEMPTS_KEPT)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A duration as PostgreSQL's `interval`.
fn pg_interval(duration: Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
    }
}
