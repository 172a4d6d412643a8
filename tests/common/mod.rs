//! A test cluster: real county nodes on 127.0.0.1 port 0, real mutual TLS with certificates
//! minted for the test, each node on its own fresh PostgreSQL database on `DATABASE_URL`.
#![allow(dead_code)]

pub mod pair;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as TimeDelta, NaiveDate, Utc};
use hancha::app::RunningNode;
use hancha::config::{Limits, NodeConfig, TlsFiles};
use hancha::domain::division::{CountyCode, TownshipCode};
use hancha::domain::person::{Flow, Person};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{CertificateStatus, MaritalStatus, StatusValues};
use hancha::node::Node;
use hancha::proto::exchange::exchange_client::ExchangeClient;
use hancha::store::Store;
use hancha::tls::dev::TestPki;
use hancha::tls::{County, NodeIdentity, TrustAnchors, client_config, connect};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tonic::transport::Channel;

pub const DINGCHENG: &str = "430703"; // 鼎城区
pub const SHAODONG: &str = "430582"; // 邵东市
pub const XINHUA: &str = "431322"; // 新化县

/// How long a test waits for something that should happen quickly before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Terms for one direction of a test agreement.
#[derive(Clone, Debug)]
pub struct Terms {
    pub inquiry_kinds: &'static [&'static str],
    pub answer_fields: &'static [&'static str],
    pub daily_cap: u32,
    pub automatic_answers: bool,
}

impl Default for Terms {
    fn default() -> Self {
        Terms {
            inquiry_kinds: &["certificate_verification", "outflow_status"],
            answer_fields: &[
                "certificate_valid_until",
                "certificate_status",
                "marital_status",
                "children_count",
            ],
            daily_cap: 20_000,
            automatic_answers: true,
        }
    }
}

/// An agreement document between `a` and `b` with the given terms each way.
pub fn agreement_toml(
    a: &str,
    b: &str,
    version: u32,
    valid: (&str, &str),
    a_to_b: &Terms,
    b_to_a: &Terms,
) -> String {
    let direction = |from: &str, to: &str, terms: &Terms| {
        let quote = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "[[direction]]\nfrom = \"{from}\"\nto = \"{to}\"\ninquiry_kinds = [{}]\nnotice_kinds = [\"birth\"]\n\
             answer_fields = [{}]\nreply_days = {{ normal = 30, urgent = 15 }}\n\
             notice_days = {{ receipt = 30, feedback = 30 }}\ndaily_cap = {}\nautomatic_answers = {}\n\n",
            quote(terms.inquiry_kinds),
            quote(terms.answer_fields),
            terms.daily_cap,
            terms.automatic_answers
        )
    };
    format!(
        "id = \"{a}-{b}\"\nversion = {version}\ntitle = \"test agreement\"\nparties = [\"{a}\", \"{b}\"]\n\
         valid_from = {}\nvalid_until = {}\n\n{}{}",
        valid.0,
        valid.1,
        direction(a, b, a_to_b),
        direction(b, a, b_to_a)
    )
}

/// The usual test agreement: valid 2026–2030, everything allowed both ways.
pub fn open_agreement(a: &str, b: &str) -> String {
    agreement_toml(
        a,
        b,
        1,
        ("2026-01-01", "2030-12-31"),
        &Terms::default(),
        &Terms::default(),
    )
}

/// Most outflow inquiries a test node's reconciliation run opens: small, so the cap shows.
pub const RECONCILE_CAP: usize = 3;

/// Reconciliation for every agreement of a test cluster: a secret per agreement, and a schedule
/// that never fires (February 31st), so that only the tests start runs.
pub fn test_reconcile_config(agreements: &[String]) -> hancha::config::ReconcileConfig {
    let mut config = hancha::config::ReconcileConfig {
        max_inquiries_per_run: RECONCILE_CAP,
        ..Default::default()
    };
    for text in agreements {
        let agreement = hancha::domain::agreement::Agreement::parse(text).expect("test agreement parses");
        config.agreements.insert(
            agreement.id().to_string(),
            hancha::config::AgreementReconcile {
                secret: Some(format!("test reconciliation secret for {}", agreement.id())),
                schedule: "0 0 31 2 *".into(),
            },
        );
    }
    config
}

/// A fresh, empty database on the server at `DATABASE_URL`; returns its URL.
pub async fn fresh_database() -> String {
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (./scripts/test sets it)");
    hancha::devdb::create_database(&admin, "hancha_test")
        .await
        .expect("create database")
        .url
}

/// One county in the cluster.
pub struct Member {
    pub county: &'static str,
    pub config: NodeConfig,
    pub running: Option<RunningNode>,
}

/// Several county nodes talking to each other.
pub struct Cluster {
    pub pki: TestPki,
    pub dir: tempfile::TempDir,
    pub members: BTreeMap<&'static str, Member>,
}

impl Cluster {
    /// Starts nodes for `counties` with `agreements` (TOML texts) installed on every node that
    /// is a party to them.
    pub async fn start(counties: &[&'static str], agreements: &[String]) -> Cluster {
        Self::start_with(
            counties,
            agreements,
            Limits {
                retry_initial: Duration::from_millis(50),
                retry_max: Duration::from_millis(500),
                poll_interval: Duration::from_millis(100),
                ..Limits::default()
            },
        )
        .await
    }

    /// [`Cluster::start`] with explicit limits.
    pub async fn start_with(counties: &[&'static str], agreements: &[String], limits: Limits) -> Cluster {
        Self::start_with_outside(counties, agreements, limits, &[]).await
    }

    /// [`Cluster::start_with`], where the nodes also know peers that run outside the cluster
    /// (e.g. a [`NodeProcess`]) at the given addresses.
    pub async fn start_with_outside(
        counties: &[&'static str],
        agreements: &[String],
        limits: Limits,
        outside: &[(&'static str, SocketAddr)],
    ) -> Cluster {
        let pki = TestPki::new().expect("test CA");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).unwrap();
        let mut listeners = BTreeMap::new();
        for county in counties {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listeners.insert(*county, listener);
        }
        let addresses: BTreeMap<&str, SocketAddr> = listeners
            .iter()
            .map(|(c, l)| (*c, l.local_addr().unwrap()))
            .collect();
        let mut members = BTreeMap::new();
        for (county, listener) in listeners {
            let node_dir = dir.path().join(county);
            std::fs::create_dir_all(node_dir.join("agreements")).unwrap();
            let now = Utc::now();
            let (cert, key) = pki
                .issue_county(county, now - TimeDelta::hours(1), now + TimeDelta::days(2))
                .expect("node certificate");
            std::fs::write(node_dir.join("node.pem"), cert).unwrap();
            std::fs::write(node_dir.join("node-key.pem"), key).unwrap();
            for (index, text) in agreements.iter().enumerate() {
                std::fs::write(node_dir.join("agreements").join(format!("{index}.toml")), text).unwrap();
            }
            let peers = addresses
                .iter()
                .chain(outside.iter().map(|(c, a)| (c, a)))
                .filter(|(other, _)| **other != county)
                .map(|(other, address)| (other.to_string(), address.to_string()))
                .collect();
            let config = NodeConfig {
                county: CountyCode::parse(county).unwrap(),
                listen: addresses[county],
                database_url: fresh_database().await,
                database_pool_size: 8,
                tls: TlsFiles {
                    certificate: node_dir.join("node.pem"),
                    private_key: node_dir.join("node-key.pem"),
                    trust_anchors: dir.path().join("ca.pem"),
                },
                agreements_dir: node_dir.join("agreements"),
                operator: hancha::config::OperatorListener {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    trust_anchors: None,
                },
                peers,
                limits: limits.clone(),
                reconcile: test_reconcile_config(agreements),
                warnings: Vec::new(),
            };
            let running = hancha::app::start(&config, listener).await.expect("node starts");
            members.insert(
                county,
                Member {
                    county,
                    config,
                    running: Some(running),
                },
            );
        }
        Cluster { pki, dir, members }
    }

    /// The running node of `county`.
    pub fn node(&self, county: &str) -> &Arc<Node> {
        &self.members[county]
            .running
            .as_ref()
            .expect("node is running")
            .node
    }

    /// Where `county` listens.
    pub fn address(&self, county: &str) -> SocketAddr {
        self.members[county].config.listen
    }

    /// Stops `county` gracefully (it can be restarted on the same port and database).
    pub async fn stop(&mut self, county: &str) {
        let member = self.members.get_mut(county).unwrap();
        if let Some(running) = member.running.take() {
            running.stop().await;
        }
    }

    /// Restarts a stopped `county` on its old port and database.
    pub async fn restart(&mut self, county: &str) {
        let member = self.members.get_mut(county).unwrap();
        let listener = TcpListener::bind(member.config.listen)
            .await
            .expect("rebind the old port");
        member.running = Some(
            hancha::app::start(&member.config, listener)
                .await
                .expect("node restarts"),
        );
    }

    /// A client that presents `as_county`'s certificate (issued by the cluster CA) and expects
    /// the server to be `to_county`.
    pub async fn client(&self, as_county: &str, to_county: &str) -> ExchangeClient<Channel> {
        let identity = self.pki.county_identity(as_county).expect("identity");
        self.client_with(identity, to_county).await
    }

    /// A client with any identity.
    pub async fn client_with(&self, identity: NodeIdentity, to_county: &str) -> ExchangeClient<Channel> {
        let anchors = TrustAnchors::from_pem(&self.pki.ca_pem()).unwrap();
        let config = client_config(&identity, &anchors, County::parse(to_county).unwrap()).unwrap();
        let channel = connect(&self.address(to_county).to_string(), config)
            .await
            .expect("connect");
        ExchangeClient::new(channel)
    }

    /// Where `county`'s operator API listens (loopback, no certificates).
    pub fn operator_address(&self, county: &str) -> SocketAddr {
        self.members[county]
            .running
            .as_ref()
            .expect("node is running")
            .operator_addr
    }

    /// A client for `county`'s operator API.
    pub async fn operator(
        &self,
        county: &str,
    ) -> hancha::proto::operator::operator_client::OperatorClient<Channel> {
        hancha::proto::operator::operator_client::OperatorClient::connect(format!(
            "http://{}",
            self.operator_address(county)
        ))
        .await
        .expect("connect to the operator API")
    }

    /// The agreement hash `county` holds for agreement `id`.
    pub fn agreement_hash(&self, county: &str, id: &str) -> String {
        let book = self.node(county).agreements();
        let agreement = book
            .current_versions()
            .find(|a| a.id() == id)
            .expect("agreement held");
        agreement.canonical_hash().as_str().to_string()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A valid resident ID from the 17 first digits.
pub fn resident_id(first17: &str) -> ResidentId {
    ResidentId::with_check_character(first17).expect("valid id")
}

/// The `n`-th synthetic woman registered in `registered` (born 1990, sequence from `n`).
pub fn synthetic_id(registered: &str, n: u32) -> ResidentId {
    let day = 1 + (n / 500) % 28;
    let month = 1 + (n / (500 * 28)) % 12;
    let sequence = (n % 500) * 2; // even: female
    let birth = NaiveDate::from_ymd_opt(1990, month, day).expect("a day of 1990");
    ResidentId::synthetic(
        CountyCode::parse(registered).expect("a county code"),
        birth,
        sequence,
    )
    .expect("valid id")
}

/// An outflow person registered in `origin`, living in `destination`, with a valid certificate.
pub fn outflow_person(id: ResidentId, origin: &str, destination: &str) -> Person {
    let township = hancha::domain::division::townships_of(CountyCode::parse(origin).unwrap())[0];
    Person {
        resident_id: id,
        name: "测试人员".into(),
        flow: Flow::Outflow,
        registered_county: CountyCode::parse(origin).unwrap(),
        residence_county: CountyCode::parse(destination).unwrap(),
        status: StatusValues {
            marital_status: Some(MaritalStatus::Married),
            certificate_number: None,
            certificate_valid_until: NaiveDate::from_ymd_opt(2028, 5, 31),
            certificate_status: Some(CertificateStatus::Valid),
            children_count: Some(1),
            pregnant: Some(false),
            township: Some(township),
            ..StatusValues::default()
        },
    }
}

/// The same person seen from the destination (inflow), living in one of its townships.
pub fn inflow_person(id: ResidentId, origin: &str, destination: &str) -> Person {
    let township: TownshipCode =
        hancha::domain::division::townships_of(CountyCode::parse(destination).unwrap())[0];
    let mut person = outflow_person(id, origin, destination);
    person.flow = Flow::Inflow;
    person.status.township = Some(township);
    person
}

/// Polls `check` until it returns `Some`, or panics after [`PATIENCE`] with `what`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, PATIENCE, check).await
}

/// [`eventually`] with an explicit patience, for something known to take long (a sweep).
pub async fn eventually_within<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The database behind `store`, through a pool of our own: the node's pool is the store's, and
/// a test that counts or changes rows behind the node's back does it over its own connections.
pub async fn database(store: &Store) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(store.connect_options())
        .await
        .expect("connect to the node's database")
}

/// Count of rows in a node's database matching `sql` (a `SELECT count(*) ...`).
pub async fn count(node: &Node, sql: &str) -> i64 {
    count_in(node.store(), sql).await
}

/// Count of rows in a database we hold a [`Store`] for (e.g. a [`NodeProcess`]'s).
pub async fn count_in(store: &Store, sql: &str) -> i64 {
    let database = database(store).await;
    let count = sqlx::query_scalar(sql).fetch_one(&database).await.expect(sql);
    database.close().await;
    count
}

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
/// Dropping it kills the process; if the test is failing, the node's log is printed first.
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
        let dir = cluster.path().join(format!("{county}-process"));
        std::fs::create_dir_all(dir.join("agreements")).unwrap();
        let now = Utc::now();
        let (cert, key) = cluster
            .pki
            .issue_county(county, now - TimeDelta::hours(1), now + TimeDelta::days(2))
            .expect("node certificate");
        std::fs::write(dir.join("node.pem"), cert).unwrap();
        std::fs::write(dir.join("node-key.pem"), key).unwrap();
        std::fs::write(dir.join("ca.pem"), cluster.pki.ca_pem()).unwrap();
        for (index, text) in agreements.iter().enumerate() {
            std::fs::write(dir.join("agreements").join(format!("{index}.toml")), text).unwrap();
        }
        let database_url = fresh_database().await;
        let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
        let duration = |duration: Duration| quoted(&humantime::format_duration(duration).to_string());
        let mut config = format!(
            "county = {}\nlisten = {}\ndatabase_url = {}\ndatabase_pool_size = 8\n\
             agreements_dir = \"agreements\"\n\n\
             [tls]\ncertificate = \"node.pem\"\nprivate_key = \"node-key.pem\"\ntrust_anchors = \"ca.pem\"\n\n\
             [operator]\nlisten = \"127.0.0.1:0\"\n\n\
             [limits]\nbatch_size = {}\nretry_initial = {}\nretry_max = {}\npoll_interval = {}\n\
             lease = {}\nlease_renewal = {}\n\n\
             [peers]\n",
            quoted(county),
            quoted(&address.to_string()),
            quoted(&database_url),
            limits.batch_size,
            duration(limits.retry_initial),
            duration(limits.retry_max),
            duration(limits.poll_interval),
            duration(limits.lease),
            duration(limits.lease_renewal),
        );
        for (peer, peer_address) in peers {
            config.push_str(&format!("{peer} = {}\n", quoted(&peer_address.to_string())));
        }
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, config).unwrap();
        let store = Store::connect(&database_url, 4, limits.database_acquire_timeout)
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
        }
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
            .env("NO_COLOR", "1")
            .env_remove("HANCHA_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // The configuration file is the whole truth: no override from the test's environment.
        for (variable, _) in hancha::config::ENVIRONMENT_OVERRIDES {
            command.env_remove(variable);
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

// === raw clients, for what `client_config` refuses to build ===

/// A hand-built rustls client trusting `ca_pem` (standard WebPKI verification of `localhost`,
/// which every test node certificate carries), speaking only `versions`, presenting
/// `certificate` (`(cert_pem, key_pem)`) if given. For clients `hancha::tls::client_config`
/// will not build: no certificate, TLS 1.2, an expired or foreign certificate.
pub fn raw_tls_client(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    certificate: Option<(&str, &str)>,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match certificate {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("a private key");
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// Dials `address` with `config`, completes the client side of the handshake and sends the
/// HTTP/2 preface; returns the local address used (which the server's audit record names) and
/// the error that ended the attempt. Panics if the server answers instead of refusing.
pub async fn raw_tls_attempt(
    address: SocketAddr,
    config: rustls::ClientConfig,
) -> (SocketAddr, std::io::Error) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let attempt = async {
        let mut tls = connector.connect(name, tcp).await?;
        // TLS 1.3: the server judges the client certificate after the client's side of the
        // handshake is done, so its verdict arrives as an alert on the first read.
        tls.write_all(HTTP2_PREFACE).await?;
        let mut buffer = [0_u8; 64];
        tls.read(&mut buffer).await
    };
    match tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("raw tls attempt hangs")
    {
        Ok(bytes) => panic!("expected a refusal, the server answered with {bytes} bytes"),
        Err(error) => (local, error),
    }
}

/// What an HTTP/2 client sends first (a gRPC client over plaintext sends exactly this).
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Speaks plaintext HTTP/2 to `address`; returns the local address once the server has hung up
/// without answering (panics if it answers).
pub async fn plaintext_attempt(address: SocketAddr) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let attempt = async {
        tcp.write_all(HTTP2_PREFACE).await?;
        // Whatever the server sends back must not be HTTP/2: at most a TLS alert, then EOF.
        let mut received = Vec::new();
        tcp.read_to_end(&mut received).await?;
        Ok::<_, std::io::Error>(received)
    };
    // A reset is a refusal too; what was received, if anything, must be a TLS alert record
    // (content type 21), never an HTTP/2 frame.
    if let Ok(received) = tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("plaintext attempt hangs")
    {
        assert!(
            received.is_empty() || received[0] == 21,
            "the server answered plaintext: {received:?}"
        );
    }
    local
}

/// The TLS alert a raw client received, if that is what ended its attempt.
pub fn rustls_alert(error: &std::io::Error) -> Option<rustls::AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

impl Cluster {
    /// Waits for `county`'s audit record of the failed TLS handshake from `client` (the local
    /// address of the refused connection) and returns it.
    pub async fn handshake_audit(
        &self,
        county: &str,
        client: SocketAddr,
    ) -> hancha::store::audit::AuditEntry {
        let node = self.node(county);
        let marker = format!("UNAUTHENTICATED: tls handshake failed from {client}: ");
        eventually("the failed handshake is audited", || async {
            node.store()
                .recent_audit(100)
                .await
                .unwrap()
                .into_iter()
                .map(|record| record.entry)
                .find(|entry| entry.reason.as_deref().is_some_and(|r| r.starts_with(&marker)))
        })
        .await
    }
}

/// Registers the same persons on both sides of a pair, alike: `origin`'s outflow persons living
/// in `destination` are `destination`'s inflow persons registered in `origin` (the `n`-th
/// synthetic person of `origin` for each `n` in `range`).
pub async fn share_persons(cluster: &Cluster, origin: &str, destination: &str, range: std::ops::Range<u32>) {
    let ids: Vec<ResidentId> = range.map(|n| synthetic_id(origin, n)).collect();
    let outflow: Vec<Person> = ids
        .iter()
        .map(|id| outflow_person(id.clone(), origin, destination))
        .collect();
    let inflow: Vec<Person> = ids
        .iter()
        .map(|id| inflow_person(id.clone(), origin, destination))
        .collect();
    cluster
        .node(origin)
        .store()
        .upsert_persons(&outflow)
        .await
        .unwrap();
    cluster
        .node(destination)
        .store()
        .upsert_persons(&inflow)
        .await
        .unwrap();
}
