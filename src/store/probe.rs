//! Measuring the database itself, for benchmarks that compare hancha with the limit it works
//! against: the cost of one flushed commit.

use std::time::{Duration, Instant};

use super::{Store, StoreError};

impl Store {
    /// Times one flushed commit with nothing else in it: a transaction that takes a transaction
    /// id writes a commit record, which PostgreSQL flushes before `COMMIT` returns (with
    /// `synchronous_commit` on). The least any durable write on this database can cost.
    pub async fn time_flushed_commit(&self) -> Result<Duration, StoreError> {
        let mut connection = self.pool().acquire().await?;
        let started = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut *connection).await?;
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(started.elapsed())
    }
}
