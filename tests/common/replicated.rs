//! A private PostgreSQL primary with a streaming standby of its own, for the failover tests:
//! `initdb`, `pg_basebackup -R` and `pg_ctl` of the installed PostgreSQL, each server on a Unix
//! socket in its own directory (no port to clash with), run as the `postgres` user when the
//! test runs as root. The primary can be killed as a crash would (SIGKILL to the postmaster's
//! whole process group), the standby promoted, the old primary started again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sqlx::Connection;

/// Whether the primary waits for the standby at commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// `synchronous_standby_names = 'FIRST 1 (standby1)'`, `synchronous_commit = on`.
    Synchronous,
    /// The standby streams, nobody waits for it.
    Asynchronous,
}

/// One server of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// The first primary (`a`).
    A,
    /// Its standby (`b`), promoted in the tests.
    B,
}

impl Server {
    fn dir(self) -> &'static str {
        match self {
            Server::A => "a",
            Server::B => "b",
        }
    }
}

/// The two servers, stopped and deleted on drop.
pub struct ReplicatedPostgres {
    /// Holds `a/` and `b/` (the data directories), their socket directories and the logs.
    root: PathBuf,
    /// Where `initdb`, `pg_ctl`, `pg_basebackup` live.
    bin_dir: PathBuf,
    /// `Some("postgres")` when we are root.
    run_as: Option<String>,
}

impl ReplicatedPostgres {
    /// Creates the primary, a database `hancha` on it, the standby from a base backup, and
    /// starts both; with [`Replication::Synchronous`] the primary then waits for the standby.
    pub async fn start(replication: Replication) -> ReplicatedPostgres {
        let bin_dir = server_binaries();
        let run_as = (current_uid() == 0).then(|| "postgres".to_string());
        let root = std::env::temp_dir().join(format!(
            "hancha-failover-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir(&root).unwrap();
        let pair = ReplicatedPostgres {
            root,
            bin_dir,
            run_as,
        };
        for server in [Server::A, Server::B] {
            std::fs::create_dir(pair.socket(server)).unwrap();
        }
        if let Some(user) = &pair.run_as {
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(&pair.root));
        }
        run(pair.command("initdb").arg("-D").arg(pair.data(Server::A)).args([
            "-U",
            "hancha",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]));
        // fsync off: the tests kill processes, never the machine, and a killed process loses
        // nothing the kernel holds; synchronous_commit stays on, as the failover needs
        pair.append_conf(
            Server::A,
            &format!(
                "listen_addresses = ''\nunix_socket_directories = '{}'\nmax_connections = 100\n\
                 fsync = off\nsynchronous_commit = on\nwal_level = replica\nmax_wal_senders = 4\n\
                 wal_keep_size = 256MB\n",
                pair.socket(Server::A).display()
            ),
        );
        pair.start_server(Server::A);
        run(pair
            .command("pg_basebackup")
            .arg("-D")
            .arg(pair.data(Server::B))
            .args(["-R", "-X", "stream", "-c", "fast", "-U", "hancha", "-h"])
            .arg(pair.socket(Server::A)));
        pair.append_conf(
            Server::B,
            &format!(
                "unix_socket_directories = '{}'\ncluster_name = 'standby1'\n",
                pair.socket(Server::B).display()
            ),
        );
        pair.start_server(Server::B);
        if replication == Replication::Synchronous {
            // set after the base backup, so that the standby, once promoted, waits for nobody
            pair.execute(
                Server::A,
                "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1)'",
            )
            .await;
            pair.execute(Server::A, "SELECT pg_reload_conf()").await;
        }
        let want = match replication {
            Replication::Synchronous => "sync",
            Replication::Asynchronous => "async",
        };
        super::eventually(&format!("the standby streams ({want})"), || async {
            let state: Option<String> = pair
                .query_scalar(
                    Server::A,
                    "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'",
                )
                .await;
            (state.as_deref() == Some(want)).then_some(())
        })
        .await;
        pair
    }

    /// Connection URL of `database` on `server`.
    pub fn url(&self, server: Server, database: &str) -> String {
        format!(
            "postgres://hancha@localhost/{database}?host={}",
            self.socket(server).display()
        )
    }

    /// Creates the database `name` on the primary (the standby gets it by replication).
    pub async fn create_database(&self, name: &str) {
        self.execute(Server::A, &format!("CREATE DATABASE {name}")).await;
    }

    /// SIGKILL to every process of `server` at once (the postmaster's process group: the
    /// postmaster, its backends, the WAL writer and sender), as a crash of the machine would.
    pub fn kill(&self, server: Server) {
        let pid_file =
            std::fs::read_to_string(self.data(server).join("postmaster.pid")).expect("the server runs");
        let pid: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // pid (comm) state ppid pgrp ...: the comm may hold spaces, the fields after it do not
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let group: u32 = after_comm.split(' ').nth(2).unwrap().parse().unwrap();
        assert_eq!(group, pid, "pg_ctl makes the postmaster lead its process group");
        run(Command::new("kill").args(["-KILL", "--", &format!("-{group}")]));
        let deadline = std::time::Instant::now() + SERVER_GONE;
        while alive(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the killed postmaster is gone"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops `server` at once (`pg_ctl stop -m immediate`).
    pub fn stop_now(&self, server: Server) {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data(server))
            .args(["-m", "immediate", "-w", "stop"]));
    }

    /// Starts `server` (again), as it is configured: the old primary comes back as a primary.
    pub fn start_again(&self, server: Server) {
        // a killed postmaster leaves its lock files: they name a process that is gone (or a zombie
        // nobody reaped, which the server would take for alive)
        let lock = self.data(server).join("postmaster.pid");
        if let Ok(text) = std::fs::read_to_string(&lock) {
            let pid: u32 = text.lines().next().unwrap().trim().parse().unwrap();
            if !alive(pid) {
                std::fs::remove_file(&lock).unwrap();
                let _ = std::fs::remove_file(self.socket(server).join(".s.PGSQL.5432.lock"));
            }
        }
        self.start_server(server);
    }

    /// Promotes the standby (`pg_ctl promote`, waiting until it accepts writes).
    pub fn promote(&self, server: Server) {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data(server))
            .args(["-w", "promote"]));
    }

    /// Runs `sql` on `server`'s `postgres` database.
    pub async fn execute(&self, server: Server, sql: &str) {
        let mut connection = sqlx::PgConnection::connect(&self.url(server, "postgres"))
            .await
            .expect("connect to the server");
        sqlx::query(sql).execute(&mut connection).await.expect(sql);
        let _ = connection.close().await;
    }

    /// The first column of the first row of `sql` on `server`'s `postgres` database, if any.
    pub async fn query_scalar<T>(&self, server: Server, sql: &str) -> Option<T>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        let mut connection = sqlx::PgConnection::connect(&self.url(server, "postgres"))
            .await
            .ok()?;
        let value = sqlx::query_scalar(sql)
            .fetch_optional(&mut connection)
            .await
            .ok()
            .flatten();
        let _ = connection.close().await;
        value
    }

    fn data(&self, server: Server) -> PathBuf {
        self.root.join(server.dir())
    }

    /// The directory of the server's socket: outside its data directory, which the base backup
    /// copies (socket lock file included).
    fn socket(&self, server: Server) -> PathBuf {
        self.root.join(format!("{}-socket", server.dir()))
    }

    fn append_conf(&self, server: Server, settings: &str) {
        let conf = self.data(server).join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\n# hancha failover test\n");
        text.push_str(settings);
        std::fs::write(&conf, text).unwrap();
    }

    fn start_server(&self, server: Server) {
        let log = self.root.join(format!("{}.log", server.dir()));
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data(server))
            .arg("-l")
            .arg(log)
            .args(["-w", "-t", "60", "start"]));
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
}

impl Drop for ReplicatedPostgres {
    fn drop(&mut self) {
        for server in [Server::A, Server::B] {
            if self.data(server).join("postmaster.pid").exists() {
                let _ = self
                    .command("pg_ctl")
                    .arg("-D")
                    .arg(self.data(server))
                    .args(["-m", "immediate", "-w", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if std::thread::panicking() {
            for server in [Server::A, Server::B] {
                let log = std::fs::read_to_string(self.root.join(format!("{}.log", server.dir())))
                    .unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "--- last lines of server {server:?}'s log ---\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The directory of the installed PostgreSQL's server programs: where the `initdb` on PATH
/// really lives (it may be a link), which holds `pg_basebackup` too.
fn server_binaries() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
        .and_then(|initdb| std::fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("pg_basebackup").is_file() && dir.join("pg_ctl").is_file())
        .expect("initdb, pg_ctl and pg_basebackup of PostgreSQL on PATH")
}

/// Whether process `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
    }
}

/// Our user id, from `/proc/self` (no libc call needed).
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn run(command: &mut Command) {
    let output = command.stdin(Stdio::null()).output().expect("run a command");
    assert!(
        output.status.success(),
        "{:?} failed: {}{}",
        command,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How long a killed postmaster may take to go.
const SERVER_GONE: Duration = Duration::from_secs(10);
