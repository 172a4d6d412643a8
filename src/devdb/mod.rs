//! A throwaway local PostgreSQL for tests, the demo and benchmarks.
//!
//! `./scripts/test`, `hancha demo` and `hancha bench` all use this one mechanism: `initdb` into a
//! private temporary directory, a server listening only on a Unix socket inside that directory
//! (so it never clashes with another server or port), and `pg_ctl stop` plus removal of the
//! directory when the [`ThrowawayPostgres`] is dropped. `initdb` refuses to run as root, so when
//! we are root the cluster is created and run as the `postgres` system user.

mod databases;

pub use databases::{Databases, ServerFacts};

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// How the throwaway cluster trades durability for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` and `synchronous_commit` as in production: benchmarks measure real costs.
    Production,
    /// `fsync=off`: for test suites, where a machine crash loses nothing of value.
    Relaxed,
}

/// A running private PostgreSQL cluster, stopped and deleted on drop.
#[derive(Debug)]
pub struct ThrowawayPostgres {
    /// The temporary directory holding the data directory, the socket and the server log.
    root: PathBuf,
    /// Where `initdb`, `pg_ctl` and `postgres` live.
    bin_dir: PathBuf,
    /// `Some("postgres")` when we are root and must run the server as another user.
    run_as: Option<String>,
    /// Connection URL of the `postgres` database as the superuser `hancha`.
    url: String,
}

impl ThrowawayPostgres {
    /// Creates and starts a new cluster. Fails with an explanation of what to install when the
    /// PostgreSQL server binaries are missing.
    pub fn start(durability: Durability) -> anyhow::Result<Self> {
        let bin_dir = find_server_binaries()?;
        let run_as = if running_as_root()? {
            Some("postgres".to_string())
        } else {
            None
        };
        let root = std::env::temp_dir().join(format!(
            "hancha-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
        let mut cluster = ThrowawayPostgres {
            url: format!("postgres://hancha@localhost/postgres?host={}", root.display()),
            root,
            bin_dir,
            run_as,
        };
        if let Some(user) = &cluster.run_as {
            run(Command::new("chown").arg(format!("{user}:")).arg(&cluster.root)).with_context(|| {
                format!(
                    "giving {} to the {user} user (does it exist?)",
                    cluster.root.display()
                )
            })?;
        }
        cluster.init(durability)?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Connection URL of the maintenance database (`postgres`) as superuser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connection URL for another database on the same cluster.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://hancha@localhost/{database}?host={}",
            self.root.display()
        )
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`): for tests of
    /// what a node does when its database goes away.
    pub fn stop_now(&self) -> anyhow::Result<()> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]))
        .context("stopping PostgreSQL")
    }

    /// Starts the server again after [`stop_now`](Self::stop_now).
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.start_server()
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin_dir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.arg("-u").arg(user).arg("--").arg(binary);
                command
            }
            None => Command::new(binary),
        }
    }

    fn init(&mut self, durability: Durability) -> anyhow::Result<()> {
        run(self.command("initdb").arg("-D").arg(self.data_dir()).args([
            "-U",
            "hancha",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]))
        .context("initdb failed")?;
        let fsync = match durability {
            Durability::Production => "on",
            Durability::Relaxed => "off",
        };
        let settings = format!(
            "\n# hancha throwaway cluster\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
             max_connections = 400\nshared_buffers = 128MB\nfsync = {fsync}\nsynchronous_commit = {fsync}\n\
             full_page_writes = {fsync}\n",
            self.root.display()
        );
        let conf = self.data_dir().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).context("reading postgresql.conf")?;
        text.push_str(&settings);
        std::fs::write(&conf, text).context("writing postgresql.conf")?;
        Ok(())
    }

    fn start_server(&self) -> anyhow::Result<()> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.root.join("server.log"))
            .args(["-w", "-t", "60", "start"]))
        .with_context(|| {
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            format!("starting PostgreSQL failed; server log:\n{log}")
        })
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(stopped, Ok(status) if status.success()) {
            eprintln!(
                "warning: could not stop the throwaway PostgreSQL in {}",
                self.root.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn running_as_root() -> anyhow::Result<bool> {
    Ok(std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid()
        == 0)
}

/// Finds `initdb` and `pg_ctl`: on PATH, or in Debian's versioned directories.
fn find_server_binaries() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    debian.sort();
    debian.reverse();
    for dir in on_path.into_iter().chain(debian) {
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
    }
    bail!(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin.\n\
         Install them (Debian/Ubuntu: `apt-get install postgresql`), or set DATABASE_URL to a server you run\n\
         (the role needs CREATEDB)."
    )
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} exited with {}: {}{}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// `admin_url` with its database name replaced by `name`, keeping credentials and the query
/// (e.g. a socket `host`): how the demo, the benchmarks and the tests address the databases
/// they create on one server.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    // postgres://user@host:port/db: the database is what follows the first '/' after the host.
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// A database made by [`create_database`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreshDatabase {
    /// Its name, for [`drop_database`] and for telling the user.
    pub name: String,
    /// Its connection URL: the admin URL's server and credentials, this database.
    pub url: String,
}

/// Creates a fresh, empty database named `{prefix}_` and a random suffix on the server at
/// `admin_url` (any database there the role may connect to; the role needs CREATEDB): what the
/// tests, the demo and the benchmarks each start a node on.
pub async fn create_database(admin_url: &str, prefix: &str) -> anyhow::Result<FreshDatabase> {
    use sqlx::Connection;
    let name = format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut connection = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .with_context(|| format!("creating database {name} (the role needs CREATEDB)"))?;
    let _ = connection.close().await;
    Ok(FreshDatabase {
        url: with_database(admin_url, &name),
        name,
    })
}

/// Drops the database `name` on the server at `admin_url`, even if a stopped node's pool still
/// holds an idle connection to it; a database that is already gone is not an error.
pub async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut connection)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    let _ = connection.close().await;
    Ok(())
}

/// Whether a PostgreSQL server answers at `url` within five seconds.
pub async fn reachable(url: &str) -> bool {
    use sqlx::Connection;
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::PgConnection::connect(url)
        )
        .await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_urls_keep_server_credentials_and_query() {
        assert_eq!(
            with_database("postgres://u:p@db:5432/postgres", "x"),
            "postgres://u:p@db:5432/x"
        );
        assert_eq!(
            with_database("postgres://hancha@localhost/postgres?host=/tmp/s", "x"),
            "postgres://hancha@localhost/x?host=/tmp/s"
        );
        assert_eq!(with_database("postgres://db:5432", "x"), "postgres://db:5432/x");
    }
}
