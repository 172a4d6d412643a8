//! Reconciliation in the store: the per-peer lock, reading the digests of the two sets
//! (`sets`), and committing a run's repairs together with its record in one transaction
//! (`runs`).

mod runs;
mod sets;
pub(in crate::store) use sets::{ASKED_BEFORE_SQL, message_digests_sql};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

pub use runs::{Committed, PersonDifferenceRow, RunRecord, RunRow};
pub use sets::{MessageDigest, PersonDigest};

use super::{Store, StoreError};
use crate::domain::division::CountyCode;

/// Holds the per-peer reconciliation lock (a PostgreSQL advisory lock on a connection of its
/// own), so that several replicas of a node never run the same pair at once. Released by
/// [`ReconcileLock::release`]; if dropped instead (a panic, a cancelled task), the connection
/// is closed rather than returned to the pool, which releases the lock too.
#[derive(Debug)]
pub struct ReconcileLock {
    connection: Option<PoolConnection<Postgres>>,
    key: i64,
}

impl ReconcileLock {
    /// Releases the lock and returns the connection to the pool.
    pub async fn release(mut self) {
        if let Some(mut connection) = self.connection.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *connection)
                .await;
            if unlocked.is_err() {
                drop(connection.detach());
            }
        }
    }
}

impl Drop for ReconcileLock {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}

/// The advisory lock key of a peer: a stable 64-bit value from the peer's code.
pub fn reconcile_lock_key(peer: CountyCode) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("hancha/reconcile/{peer}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

impl Store {
    /// Takes the reconciliation lock for `peer`, or `None` if another run (on this replica or
    /// another one sharing the database) holds it.
    pub async fn try_lock_reconcile(&self, peer: CountyCode) -> Result<Option<ReconcileLock>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        let key = reconcile_lock_key(peer);
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *connection)
            .await?;
        Ok(locked.then(|| ReconcileLock {
            connection: Some(connection),
            key,
        }))
    }
}
