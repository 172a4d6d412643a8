//! Measuring the database itself: whether it answers at all (readiness), and for benchmarks that
//! compare hancha with the limit it works against, the cost of one flushed commit.

use std::time::{Duration, Instant};

use super::{Store, StoreError};

impl Store {
    /// Whether the database answers a trivial query: what readiness asks of it.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    /// Times one flushed commit with next to nothing in it: a transaction that writes one tiny
    /// transactional WAL record (a logical message no table keeps), so that its commit is
    /// flushed before `COMMIT` returns, as every commit that wrote a row is (with
    /// `synchronous_commit` on). A transaction that only takes an id is not flushed, so it
    /// would not do. The least any durable write on this database can cost.
    pub async fn time_flushed_commit(&self) -> Result<Duration, StoreError> {
        let mut connection = self.pool().acquire().await?;
        let started = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut *connection).await?;
        sqlx::query("SELECT pg_logical_emit_message(true, 'hancha', 'commit probe')")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(started.elapsed())
    }
}
