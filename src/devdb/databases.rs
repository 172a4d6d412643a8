//! The PostgreSQL server the demo and the benchmarks run on: the one at `DATABASE_URL` when it is
//! set and reachable (fresh databases, dropped at the end), otherwise a throwaway cluster with
//! production durability (`fsync` and `synchronous_commit` on), removed at the end.

use anyhow::Context;
use sqlx::Connection;

use super::{Durability, ThrowawayPostgres, create_database, drop_database, reachable};

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
    /// Who uses them (`demo`, `bench`): the start of every message and of every database name.
    user: &'static str,
}

impl Databases {
    /// Connects to `DATABASE_URL` if it is set and reachable, otherwise starts a throwaway
    /// PostgreSQL with production durability.
    pub async fn provision(user: &'static str) -> anyhow::Result<Databases> {
        let server = match std::env::var("DATABASE_URL") {
            Ok(url) if reachable(&url).await => {
                eprintln!(
                    "{user}: using the PostgreSQL at DATABASE_URL ({})",
                    crate::config::redact_url(&url)
                );
                Server::External { admin_url: url }
            }
            configured => {
                if configured.is_ok() {
                    eprintln!(
                        "{user}: DATABASE_URL is set but not reachable; starting a throwaway PostgreSQL instead"
                    );
                }
                let cluster =
                    tokio::task::spawn_blocking(|| ThrowawayPostgres::start(Durability::Production))
                        .await
                        .context("starting PostgreSQL")??;
                eprintln!(
                    "{user}: started a throwaway PostgreSQL ({}); it is removed when the {user} ends",
                    cluster.url()
                );
                Server::Throwaway(cluster)
            }
        };
        Ok(Databases {
            server,
            created: Vec::new(),
            user,
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
        let prefix = format!("hancha_{}_{purpose}", self.user);
        let database = create_database(self.admin_url(), &prefix).await?;
        self.created.push(database.name);
        Ok(database.url)
    }

    /// Drops the databases we created on someone else's server, or stops and deletes the
    /// throwaway cluster. Call after everything using them has stopped.
    pub async fn remove(self) {
        let user = self.user;
        match self.server {
            Server::External { admin_url } => {
                for name in &self.created {
                    if let Err(error) = drop_database(&admin_url, name).await {
                        eprintln!("{user}: could not drop database {name}: {error:#}");
                    }
                }
                eprintln!(
                    "{user}: dropped the {user} databases ({})",
                    self.created.join(", ")
                );
            }
            Server::Throwaway(cluster) => {
                // Stopping the server waits for `pg_ctl`: keep it off the async threads.
                let _ = tokio::task::spawn_blocking(move || drop(cluster)).await;
                eprintln!("{user}: stopped and removed the throwaway PostgreSQL");
            }
        }
    }

    /// The names of the databases created so far.
    pub fn names(&self) -> Vec<&str> {
        self.created.iter().map(String::as_str).collect()
    }

    fn admin_url(&self) -> &str {
        match &self.server {
            Server::External { admin_url } => admin_url,
            Server::Throwaway(cluster) => cluster.url(),
        }
    }
}
