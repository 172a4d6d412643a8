//! Nodes as child processes: a [`NodeProcess`] runs the real `hancha serve` binary, so that a
//! test can SIGKILL it, SIGTERM it and start it again on the same database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{Duration as TimeDelta, Utc};
use hancha::config::Limits;
use hancha::store::Store;

use super::{Cluster, DINGCHENG, TestDatabase, XINHUA, eventually, fresh_database, open_agreement};

/// A free loopback address for a node that binds later (a [`NodeProcess`]): bound to port 0 and
/// released at once, so that in-process nodes can be told the address before it exists.
pub fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address")
}

/// A county node running as a real `hancha serve` child process, with its own certificate from
/// the cluster CA, its own fresh database and a configuration file in the cluster's directory,
/// so that a test can SIGKILL it, SIGTERM it, and start it again on the same database.
///
/// Dropping it kills the process and drops its database; if the test is failing, the node's log
/// is printed first.
pub struct NodeProcess {
    pub county: &'static str,
    /// Where the node listens (fixed across restarts).
    pub address: SocketAddr,
    /// The test's own connection to the node's database, for seeding and counting rows.
    pub store: Store,
    /// The node's `hancha serve --config` file.
    pub config_path: PathBuf,
    /// The node's stdout and stderr, every run appended.
    pub log_path: PathBuf,
    /// The running process, if any.
    child: Option<std::process::Child>,
    /// How many times it was started: the log holds one "node serving" line per start.
    starts: usize,
    /// Whether the process runs in a process group of its own, so that the test can kill the
    /// whole group ([`NodeProcess::kill_process_group`]) as a service manager would.
    own_process_group: bool,
    /// The node's database: dropped after the process is killed and `store` is closed. `None`
    /// for a replica ([`NodeProcess::replica`]), whose first node owns the shared database, and
    /// for a node on databases the test manages itself (a primary and its standby).
    database: Option<TestDatabase>,
}

impl NodeProcess {
    /// Writes the configuration, certificate, key and agreements of `county` under the cluster's
    /// directory and creates and migrates its database, without starting the process.
    pub async fn prepare(
        cluster: &Cluster,
        county: &'static str,
        address: SocketAddr,
        agreements: &[String],
        peers: &[(&str, SocketAddr)],
        limits: &Limits,
    ) -> NodeProcess {
        let database = fresh_database().await;
        let urls = vec![database.url().to_string()];
        Self::prepare_on(
            cluster,
            county,
            address,
            agreements,
            peers,
            limits,
            &urls,
            Some(database),
        )
        .await
    }

    /// [`NodeProcess::prepare`] on database addresses the test provides: with several, the
    /// node is given them all (`database_urls`), and `store` (the test's own) is on the first.
    #[allow(clippy::too_many_arguments)]
    pub async fn prepare_on(
        cluster: &Cluster,
        county: &'static str,
        address: SocketAddr,
        agreements: &[String],
        peers: &[(&str, SocketAddr)],
        limits: &Limits,
        urls: &[String],
        database: Option<TestDatabase>,
    ) -> NodeProcess {
        let dir = cluster.path().join(format!("{county}-process"));
        std::fs::create_dir_all(dir.join("agreements")).unwrap();
        let now = Utc::now();
        let (cert, key) = cluster
            .pki
            .issue_county(county, now - TimeDelta::hours(1), now + TimeDelta::days(2))
            .expect("node certificate");
        std::fs::write(dir.join("node.pem"), cert).unwrap();
        std::fs::write(dir.join("node-key.pem"), key).unwrap();
        std::fs::write(
            dir.join("ca.pem"),
            super::trust_anchors_pem(&cluster.pki.ca_pem()),
        )
        .unwrap();
        for (index, text) in agreements.iter().enumerate() {
            std::fs::write(dir.join("agreements").join(format!("{index}.toml")), text).unwrap();
        }
        let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
        let duration = |duration: Duration| quoted(&humantime::format_duration(duration).to_string());
        let mut config = format!(
            "county = {}\nlisten = {}\n{}\ndatabase_pool_size = 8\n\
             agreements_dir = \"agreements\"\n\n\
             [tls]\ncertificate = \"node.pem\"\nprivate_key = \"node-key.pem\"\ntrust_anchors = \"ca.pem\"\n\n\
             [operator]\nlisten = \"127.0.0.1:0\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [limits]\nbatch_size = {}\nretry_initial = {}\nretry_max = {}\npoll_interval = {}\n\
             lease = {}\nlease_renewal = {}\ninline_answer_grace = {}\n\n\
             [peers]\n",
            quoted(county),
            quoted(&address.to_string()),
            match urls {
                [url] => format!("database_url = {}", quoted(url)),
                several => format!(
                    "database_urls = [{}]",
                    several
                        .iter()
                        .map(|url| quoted(url))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            limits.batch_size,
            duration(limits.retry_initial),
            duration(limits.retry_max),
            duration(limits.poll_interval),
            duration(limits.lease),
            duration(limits.lease_renewal),
            duration(limits.inline_answer_grace),
        );
        for (peer, peer_address) in peers {
            config.push_str(&format!("{peer} = {}\n", quoted(&peer_address.to_string())));
        }
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, config).unwrap();
        let store = Store::connect(&urls[0], 4, limits.database_acquire_timeout)
            .await
            .expect("connect to the node's database");
        store.migrate().await.expect("migrate the node's database");
        NodeProcess {
            county,
            address,
            store,
            config_path,
            log_path: dir.join("node.log"),
            child: None,
            starts: 0,
            own_process_group: false,
            database,
        }
    }

    /// Another replica of this node's county on the same database, listening for peers at
    /// `address`: the same certificate, key, trust anchors, agreements and peers (copied into a
    /// directory of its own, `name`, with its own log), its operator and metrics listeners on
    /// free ports. Not started.
    pub fn replica(&self, name: &str, address: SocketAddr) -> NodeProcess {
        let dir = self.dir().with_file_name(format!("{}-{name}", self.county));
        std::fs::create_dir_all(dir.join("agreements")).unwrap();
        for file in ["node.pem", "node-key.pem", "ca.pem"] {
            std::fs::copy(self.dir().join(file), dir.join(file)).unwrap();
        }
        for entry in std::fs::read_dir(self.dir().join("agreements")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join("agreements").join(entry.file_name())).unwrap();
        }
        // The same configuration, but its own peer listener, and its operator API on a free
        // port (the first node's may be fixed).
        let mut section = String::new();
        let config: String = std::fs::read_to_string(&self.config_path)
            .unwrap()
            .lines()
            .map(|line| {
                if line.starts_with('[') {
                    section = line.to_string();
                }
                match (section.as_str(), line.starts_with("listen = ")) {
                    ("", true) => format!("listen = \"{address}\"\n"),
                    ("[operator]", true) => "listen = \"127.0.0.1:0\"\n".to_string(),
                    _ => format!("{line}\n"),
                }
            })
            .collect();
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, config).unwrap();
        NodeProcess {
            county: self.county,
            address,
            store: self.store.clone(),
            config_path,
            log_path: dir.join("node.log"),
            child: None,
            starts: 0,
            own_process_group: self.own_process_group,
            database: None,
        }
    }

    /// Runs the process in a process group of its own from its next start on, so that
    /// [`NodeProcess::kill_process_group`] takes everything it started.
    pub fn in_own_process_group(&mut self) {
        self.own_process_group = true;
    }

    /// Has the node serve its operator API at `address` from its next start on (port 0 by
    /// default), so that a command can reach it again at the same address after a restart.
    pub fn set_operator_listen(&mut self, address: SocketAddr) {
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        let config = config.replace(
            "[operator]\nlisten = \"127.0.0.1:0\"",
            &format!("[operator]\nlisten = \"{address}\""),
        );
        assert!(
            config.contains(&address.to_string()),
            "the operator listener is configured"
        );
        std::fs::write(&self.config_path, config).unwrap();
    }

    /// Adds `lines` (e.g. `crls = ["crl.pem"]`) to the `[tls]` section of the node's
    /// configuration, from its next start on.
    pub fn add_tls_settings(&mut self, lines: &str) {
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        let anchors = "trust_anchors = \"ca.pem\"\n";
        assert!(config.contains(anchors), "the [tls] section is where it was");
        std::fs::write(
            &self.config_path,
            config.replace(anchors, &format!("{anchors}{lines}\n")),
        )
        .unwrap();
    }

    /// The directory of the node's configuration, certificate, key and CA files.
    pub fn dir(&self) -> PathBuf {
        self.config_path.parent().expect("a directory").to_path_buf()
    }

    /// Sends the running process `signal` (`HUP`, `TERM`, ...).
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the node is running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Starts `hancha serve` and waits until it serves.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.county);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the node log");
        use std::io::Write;
        writeln!(
            log,
            "=== test: starting {} (start {})",
            self.county,
            self.starts + 1
        )
        .unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hancha"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .env_remove("HANCHA_CONFIG")
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // The configuration file is the whole truth: no override from the test's environment.
        for (variable, _) in hancha::config::ENVIRONMENT_OVERRIDES {
            command.env_remove(variable);
        }
        if self.own_process_group {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        self.child = Some(command.spawn().expect("spawn hancha serve"));
        self.starts += 1;
        let starts = self.starts;
        eventually(&format!("{} serves (start {starts})", self.county), || {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited at start with {status}", self.county);
            }
            let serving = self.log().matches("node serving").count() >= starts;
            async move { serving.then_some(()) }
        })
        .await;
    }

    /// Kills the process with SIGKILL (no chance to finish anything) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the node");
            child.wait().expect("reap the node");
        }
    }

    /// Kills the process's whole group with SIGKILL (the process must run in a group of its
    /// own: [`NodeProcess::in_own_process_group`]) and reaps it.
    pub fn kill_process_group(&mut self) {
        assert!(self.own_process_group, "{} runs in the test's group", self.county);
        if let Some(mut child) = self.child.take() {
            let status = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -KILL of the process group failed");
            child.wait().expect("reap the node");
        }
    }

    /// Asks the process to stop with SIGTERM and waits for it to exit; returns its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed");
        eventually(&format!("{} exits after SIGTERM", self.county), || {
            let exited = child.try_wait().expect("poll the node");
            async move { exited }
        })
        .await
    }

    /// The name of the node's database on the server.
    pub fn database_name(&self) -> &str {
        self.database.as_ref().expect("the node owns its database").name()
    }

    /// Everything the node has logged so far, across starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(300)..];
            eprintln!(
                "--- last {} lines of {} ({}) ---\n{}\n--- end of node log ---",
                tail.len(),
                self.county,
                self.log_path.display(),
                tail.join("\n")
            );
        }
    }
}

/// 新化县 in this process and 鼎城区 as a `hancha serve` process (prepared, not started) beside
/// it, both holding the open agreement, 鼎城区's operator API on a fixed free address (returned)
/// so that a command reaches it again after a restart.
pub async fn dingcheng_process_beside_xinhua(limits: &Limits) -> (Cluster, NodeProcess, SocketAddr) {
    let agreement = open_agreement(DINGCHENG, XINHUA);
    let process_address = free_address();
    let cluster = Cluster::start_with_outside(
        &[XINHUA],
        std::slice::from_ref(&agreement),
        limits.clone(),
        &[(DINGCHENG, process_address)],
    )
    .await;
    let mut dingcheng = NodeProcess::prepare(
        &cluster,
        DINGCHENG,
        process_address,
        std::slice::from_ref(&agreement),
        &[(XINHUA, cluster.address(XINHUA))],
        limits,
    )
    .await;
    let operator = free_address();
    dingcheng.set_operator_listen(operator);
    (cluster, dingcheng, operator)
}
