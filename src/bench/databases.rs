//! The PostgreSQL server a benchmark runs on: the one at `DATABASE_URL` when it is set and
//! reachable (fresh databases, dropped at the end), otherwise a throwaway cluster with production
//! durability (`fsync` and `synchronous_commit` on), removed at the end.

use anyhow::Context;
use sqlx::Connection;

use crate::devdb::{Durability, ThrowawayPostgres};
use crate::devdb::{create_database, drop_database, reachable};

/// Where the databases live.
#[derive(Debug)]
enum Server {
    /// Someone else's server: only the databases we created are ours to drop.
    External {
        /// Connection URL of a maintenance database, from `DATABASE_URL`.
        admin_url: String,
    },
    /// A cluster we started; dropping it stops the server and deletes its directory.
    Throwaway(ThrowawayPostgres),
}

/// What the figures were measured on, for the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerFacts {
    /// `throwaway` or `DATABASE_URL`.
    pub source: &'static str,
    /// `server_version`.
    pub version: String,
    /// `fsync`: `on` unless the server at `DATABASE_URL` was configured otherwise.
    pub fsync: String,
    /// `synchronous_commit`.
    pub synchronous_commit: String,
}

/// Fresh databases on one server, removed by [`Databases::remove`].
#[derive(Debug)]
pub struct Databases {
    /// The server they live on.
    server: Server,
    /// Names of the databases created.
    created: Vec<String>,
}

impl Databases {
    /// Connects to `DATABASE_URL` if it is set and reachable, otherwise starts a throwaway
    /// PostgreSQL with production durability.
    pub async fn provision() -> anyhow::Result<Databases> {
        let server = match std::env::var("DATABASE_URL") {
            Ok(url) if reachable(&url).await => Server::External { admin_url: url },
            configured => {
                if configured.is_ok() {
                    eprintln!(
                        "bench: DATABASE_URL is set but not reachable; starting a throwaway PostgreSQL"
                    );
                }
                let cluster =
                    tokio::task::spawn_blocking(|| ThrowawayPostgres::start(Durability::Production))
                        .await
                        .context("starting PostgreSQL")??;
                Server::Throwaway(cluster)
            }
        };
        Ok(Databases {
            server,
            created: Vec::new(),
        })
    }

    /// The server's version and durability settings.
    pub async fn facts(&self) -> anyhow::Result<ServerFacts> {
        let mut connection = sqlx::PgConnection::connect(self.admin_url()).await?;
        let mut show = async |setting: &str| -> anyhow::Result<String> {
            let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
                .fetch_one(&mut connection)
                .await?;
            Ok(value)
        };
        Ok(ServerFacts {
            source: match self.server {
                Server::External { .. } => "DATABASE_URL",
                Server::Throwaway(_) => "throwaway",
            },
            version: show("server_version").await?,
            fsync: show("fsync").await?,
            synchronous_commit: show("synchronous_commit").await?,
        })
    }

    /// Creates a fresh database named after `purpose` and returns its URL.
    pub async fn create(&mut self, purpose: &str) -> anyhow::Result<String> {
        let database = create_database(self.admin_url(), &format!("hancha_bench_{purpose}")).await?;
        self.created.push(database.name);
        Ok(database.url)
    }

    /// Drops the databases we created on someone else's server, or stops and deletes the
    /// throwaway cluster. Call after everything using them has stopped.
    pub async fn remove(self) {
        match self.server {
            Server::External { admin_url } => {
                for name in &self.created {
                    if let Err(error) = drop_database(&admin_url, name).await {
                        eprintln!("bench: could not drop database {name}: {error:#}");
                    }
                }
            }
            Server::Throwaway(cluster) => {
                // Stopping the server waits for `pg_ctl`: keep it off the async threads.
                let _ = tokio::task::spawn_blocking(move || drop(cluster)).await;
            }
        }
    }

    fn admin_url(&self) -> &str {
        match &self.server {
            Server::External { admin_url } => admin_url,
            Server::Throwaway(cluster) => cluster.url(),
        }
    }
}
