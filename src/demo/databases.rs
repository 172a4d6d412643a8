//! The demo's three databases: on the server at `DATABASE_URL` when it is set and reachable
//! (created fresh, dropped at the end), otherwise on a throwaway local PostgreSQL started for the
//! demo (the same mechanism as the tests), removed whole at the end.

use anyhow::Context;

use crate::devdb::{Durability, ThrowawayPostgres};
use crate::devdb::{create_database, drop_database, reachable};

/// Where the databases live and how to get rid of them.
#[derive(Debug)]
enum Server {
    /// Someone else's server: only the databases we created are ours to drop.
    External {
        /// Connection URL of the maintenance database, from `DATABASE_URL`.
        admin_url: String,
    },
    /// A cluster we started; dropping it stops the server and deletes its directory.
    Throwaway(ThrowawayPostgres),
}

/// One database per county, on one server.
#[derive(Debug)]
pub struct Databases {
    /// The server they live on.
    server: Server,
    /// Names of the databases created, in order.
    created: Vec<String>,
}

impl Databases {
    /// Connects to `DATABASE_URL` if it is set and reachable, otherwise starts a throwaway
    /// PostgreSQL (production durability, so the demo's timings are honest). Says on stderr
    /// which it did.
    pub async fn provision() -> anyhow::Result<Databases> {
        let server = match std::env::var("DATABASE_URL") {
            Ok(url) if reachable(&url).await => {
                eprintln!(
                    "demo: using the PostgreSQL at DATABASE_URL ({})",
                    crate::config::redact_url(&url)
                );
                Server::External { admin_url: url }
            }
            configured => {
                if configured.is_ok() {
                    eprintln!(
                        "demo: DATABASE_URL is set but not reachable; starting a throwaway PostgreSQL instead"
                    );
                }
                let cluster =
                    tokio::task::spawn_blocking(|| ThrowawayPostgres::start(Durability::Production))
                        .await
                        .context("starting PostgreSQL")??;
                eprintln!(
                    "demo: started a throwaway PostgreSQL ({}); it is removed when the demo ends",
                    cluster.url()
                );
                Server::Throwaway(cluster)
            }
        };
        Ok(Databases {
            server,
            created: Vec::new(),
        })
    }

    /// Creates a fresh database for `county` and returns its URL.
    pub async fn create(&mut self, county: &str) -> anyhow::Result<String> {
        let database = create_database(self.admin_url(), &format!("hancha_demo_{county}")).await?;
        self.created.push(database.name);
        Ok(database.url)
    }

    /// The names of the databases created, for telling the user.
    pub fn names(&self) -> Vec<&str> {
        self.created.iter().map(String::as_str).collect()
    }

    /// Drops the databases we created on someone else's server, or stops and deletes the
    /// throwaway cluster. Call after the nodes are stopped.
    pub async fn remove(self) {
        let names = self.created.join(", ");
        match self.server {
            Server::External { admin_url } => {
                for name in &self.created {
                    if let Err(error) = drop_database(&admin_url, name).await {
                        eprintln!("demo: could not drop database {name}: {error:#}");
                    }
                }
                eprintln!("demo: dropped the demo databases ({names})");
            }
            Server::Throwaway(cluster) => {
                // Stopping the server waits for `pg_ctl`: keep it off the async threads.
                let _ = tokio::task::spawn_blocking(move || drop(cluster)).await;
                eprintln!("demo: stopped and removed the throwaway PostgreSQL");
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
