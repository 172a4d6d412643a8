//! The store: every SQL statement the node runs, and the migrations applied at start-up.
//!
//! Queries are checked at run time (`sqlx::query`), not at compile time, so the crate builds
//! without a database; every statement here is exercised by the integration tests.

pub mod agreements;
pub mod answers;
pub mod api_tokens;
pub mod audit;
pub mod audit_chain;
pub mod audit_witness;
pub mod console_logins;
pub mod events;
pub mod failover;
pub mod feedback;
pub mod floor;
pub mod inbound;
pub mod inspect;
pub mod monitoring;
pub mod notice_effects;
pub mod notices;
pub mod notices_out;
pub mod outbound;
pub mod outbox;
pub mod personal;
pub mod plans;
pub mod probe;
pub mod queries;
pub mod reconcile;
pub mod registry;
pub mod reminders;
pub mod report;
pub mod retention;
pub mod sequencer;
pub mod tags;
pub mod webhooks;
pub mod window;

pub(crate) use audit::audit_batch_in;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The schema migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Errors from the store, mapped from PostgreSQL SQLSTATEs where the caller can act on them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same key exists (SQLSTATE 23505).
    #[error("already exists")]
    AlreadyExists,
    /// Any other database failure; the detail goes to the log, never to a peer.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// No such record.
    #[error("not found")]
    NotFound,
    /// The record exists but its state forbids the change (e.g. answering an answered inquiry).
    #[error("{0}")]
    Conflict(String),
    /// A stored value no longer parses: the database was changed outside the node.
    #[error("stored data does not parse: {0}")]
    Corrupt(String),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether a transaction failed only because a concurrent one was writing the same rows: a
    /// unique violation (SQLSTATE 23505), a detected deadlock (40P01) or a serialization failure
    /// (40001). PostgreSQL rolled it back whole, so running it again is safe, and the second run
    /// sees what the other one committed (a message the other copy stored is then a repeat).
    pub(crate) fn lost_a_race(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("23505" | "40P01" | "40001"))
            }
            _ => false,
        }
    }

    /// Maps a sqlx error, recognising unique violations.
    pub fn from_sqlx(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => StoreError::AlreadyExists,
            _ => StoreError::Database(error),
        }
    }
}

/// The node's handle on its county database.
#[derive(Clone, Debug)]
pub struct Store {
    /// Shared connection pool; cheap to clone.
    pool: PgPool,
    /// How long statements of each kind may run.
    timeouts: StatementTimeouts,
    /// The addresses to choose the primary among, when the node was given several.
    failover: Option<std::sync::Arc<failover::Failover>>,
}

/// How long a statement may run, by kind of work: the database's `statement_timeout`, set for
/// every connection (`ordinary`) and raised or lowered per transaction (`SET LOCAL`) where the
/// work is known to be quick or long. `None` leaves the server's setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatementTimeouts {
    /// Every statement not named below.
    pub ordinary: Option<Duration>,
    /// The clerk's path: someone waits at a window, so a stuck statement fails fast.
    pub clerk: Option<Duration>,
    /// Bulk work: registry imports and reconciliation reads.
    pub bulk: Option<Duration>,
}

/// Which kind of work a transaction does, for its statement timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// The clerk's path.
    Clerk,
    /// Registry imports, reconciliation reads.
    Bulk,
}

/// A duration as PostgreSQL reads it: `1500ms`.
fn millis(duration: Duration) -> String {
    format!("{}ms", duration.as_millis().max(1))
}

impl Store {
    /// Connects to `url` with a pool of at most `max_connections`; a task waits at most
    /// `acquire_timeout` for a free connection.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Store, StoreError> {
        Self::connect_with_timeouts(
            url,
            max_connections,
            acquire_timeout,
            StatementTimeouts::default(),
        )
        .await
    }

    /// [`Store::connect`], with statements limited by `timeouts`.
    pub async fn connect_with_timeouts(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
        timeouts: StatementTimeouts,
    ) -> Result<Store, StoreError> {
        Self::connect_any(&[url.to_string()], max_connections, acquire_timeout, timeouts).await
    }

    /// [`Store::connect_with_timeouts`] with one address or several: with several, the node
    /// uses the primary among them and follows a promotion ([`Store::follow_primary`]), never
    /// writing to an old primary on a lower timeline (see [`failover`]).
    pub async fn connect_any(
        urls: &[String],
        max_connections: u32,
        acquire_timeout: Duration,
        timeouts: StatementTimeouts,
    ) -> Result<Store, StoreError> {
        let mut addresses = Vec::with_capacity(urls.len());
        for url in urls {
            let mut options = planned_for_memory(url.parse()?);
            if let Some(ordinary) = timeouts.ordinary {
                options = unless_named(options, "statement_timeout", &millis(ordinary));
            }
            addresses.push(options);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout);
        if addresses.len() > 1 {
            let (pool, failover) = failover::connect(addresses, pool).await?;
            return Ok(Store {
                pool,
                timeouts,
                failover: Some(failover),
            });
        }
        let Some(options) = addresses.pop() else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                "no database address given".into(),
            )));
        };
        let pool = pool.connect_with(options).await?;
        Ok(Store {
            pool,
            timeouts,
            failover: None,
        })
    }

    /// Wraps an existing pool (tests get theirs from `#[sqlx::test]`).
    pub fn from_pool(pool: PgPool) -> Store {
        Store {
            pool,
            timeouts: StatementTimeouts::default(),
            failover: None,
        }
    }

    /// Applies every migration not yet applied; a second run changes nothing. Migrations run
    /// without a statement timeout: reshaping a large table may take long.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut *connection)
            .await?;
        MIGRATOR.run(&mut *connection).await?;
        sqlx::query("RESET statement_timeout")
            .execute(&mut *connection)
            .await?;
        Ok(())
    }

    /// Sets the statement timeout for `work` in the transaction `tx` (`SET LOCAL`: it ends with
    /// the transaction).
    pub(in crate::store) async fn limit(
        &self,
        tx: &mut sqlx::PgConnection,
        work: Work,
    ) -> Result<(), StoreError> {
        let timeout = match work {
            Work::Clerk => self.timeouts.clerk,
            Work::Bulk => self.timeouts.bulk,
        };
        if let Some(timeout) = timeout {
            sqlx::query(&format!("SET LOCAL statement_timeout = '{}'", millis(timeout)))
                .execute(tx)
                .await?;
        }
        Ok(())
    }

    /// The underlying pool, for the store's own submodules: everything else goes through the
    /// store's methods, so every statement the node runs is here.
    pub(in crate::store) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How this store connects, for a check that opens its own connection to the same database
    /// (an integration test counting rows) without sharing the node's pool.
    pub fn connect_options(&self) -> PgConnectOptions {
        (*self.pool.connect_options()).clone()
    }

    /// Closes every connection, waiting for those in use to be returned: before a benchmark
    /// drops the database under a stopped node.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The planner's cost of reading a page out of order, for the node's sessions: 1.1, the value
/// PostgreSQL's documentation gives for solid-state storage, instead of its default of 4, which
/// models a spinning disk.
///
/// With the default, PostgreSQL reads a table of tens of thousands of messages from end to end
/// (and hashes a batch's 500 ids) rather than look up 500 rows through the primary key, because
/// it prices each lookup as a random disk seek: every batch a sweep stores, receives or sends
/// would scan the whole table. A node's working set (the messages of the last weeks) is in
/// memory, so the lookups are what is cheap.
pub const RANDOM_PAGE_COST: &str = "1.1";

/// `options` with the node's planner setting ([`RANDOM_PAGE_COST`]) for every session, sent when
/// the connection starts (no statement of its own). Being a session setting, it takes the place
/// of the server's, the database's and the role's; a database URL (or `PGOPTIONS`) that sets
/// `random_page_cost` itself (`?options=-c%20random_page_cost%3D2`) keeps its own value.
pub fn planned_for_memory(options: PgConnectOptions) -> PgConnectOptions {
    unless_named(options, "random_page_cost", RANDOM_PAGE_COST)
}

/// `options` with the session setting `name` = `value`, unless they name it already (the
/// operator's own choice in the database URL or `PGOPTIONS`, which is kept). PostgreSQL reads
/// setting names case-insensitively, `-` as `_`.
fn unless_named(options: PgConnectOptions, name: &str, value: &str) -> PgConnectOptions {
    let names_it = |given: &str| given.to_ascii_lowercase().replace('-', "_").contains(name);
    if options.get_options().is_some_and(names_it) {
        return options;
    }
    options.options([(name, value)])
}

/// Parses a stored name or code into its domain type; a value that does not parse means the
/// database was changed outside the node.
pub(crate) fn parsed<T>(stored: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    stored
        .parse()
        .map_err(|error: T::Err| StoreError::Corrupt(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_plan_for_memory_unless_the_url_says_otherwise() {
        // (`PGOPTIONS`, if the environment sets it, comes first in what is sent)
        let sent = |url: &str| {
            planned_for_memory(url.parse().unwrap())
                .get_options()
                .unwrap_or_default()
                .to_string()
        };
        assert!(sent("postgres://hancha@localhost/hancha").ends_with("-c random_page_cost=1.1"));

        let own = sent("postgres://hancha@localhost/hancha?options=-c%20random_page_cost%3D2");
        assert!(
            own.ends_with("-c random_page_cost=2") && !own.contains("1.1"),
            "{own}"
        );

        let shouted = sent("postgres://hancha@localhost/hancha?options=--RANDOM-PAGE-COST%3D3");
        assert!(
            shouted.ends_with("--RANDOM-PAGE-COST=3") && !shouted.contains("1.1"),
            "{shouted}"
        );

        let timeout = unless_named(
            "postgres://hancha@localhost/hancha?options=-c%20statement_timeout%3D2s"
                .parse()
                .unwrap(),
            "statement_timeout",
            "60000ms",
        );
        let timeout = timeout.get_options().unwrap_or_default();
        assert!(
            timeout.ends_with("-c statement_timeout=2s") && !timeout.contains("60000"),
            "{timeout}"
        );

        let other = sent("postgres://hancha@localhost/hancha?options=-c%20work_mem%3D8MB");
        assert!(
            other.ends_with("-c work_mem=8MB -c random_page_cost=1.1"),
            "{other}"
        );
    }
}
