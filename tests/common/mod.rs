//! A test cluster: real county nodes on 127.0.0.1 port 0, real mutual TLS with certificates
//! minted for the test, each node on its own fresh PostgreSQL database on `DATABASE_URL`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as TimeDelta, NaiveDate, Utc};
use hancha::config::{Limits, NodeConfig, TlsFiles};
use hancha::domain::division::{CountyCode, TownshipCode};
use hancha::domain::person::{Flow, Person};
use hancha::domain::resident_id::{ResidentId, check_character};
use hancha::domain::vocabulary::{CertificateStatus, MaritalStatus, StatusValues};
use hancha::node::{Node, RunningNode};
use hancha::proto::exchange::exchange_client::ExchangeClient;
use hancha::tls::dev::TestPki;
use hancha::tls::{County, NodeIdentity, TrustAnchors, client_config, connect};
use sqlx::Connection;
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

/// A fresh, empty database on the server at `DATABASE_URL`; returns its URL.
pub async fn fresh_database() -> String {
    let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (./scripts/test sets it)");
    let name = format!("hancha_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create database");
    // The admin URL with the database swapped, query (e.g. a socket `host`) kept.
    match admin.split_once('?') {
        Some((base, query)) => format!(
            "{}/{name}?{query}",
            base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base)
        ),
        None => format!(
            "{}/{name}",
            admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin)
        ),
    }
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
                retry_initial_ms: 50,
                retry_max_ms: 500,
                poll_interval_ms: 100,
                ..Limits::default()
            },
        )
        .await
    }

    /// [`Cluster::start`] with explicit limits.
    pub async fn start_with(counties: &[&'static str], agreements: &[String], limits: Limits) -> Cluster {
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
                peers,
                limits: limits.clone(),
            };
            let running = hancha::node::start(&config, listener).await.expect("node starts");
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
            hancha::node::start(&member.config, listener)
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
    let digits: [u8; 17] = first17.as_bytes().try_into().expect("17 digits");
    let check = check_character(&digits);
    ResidentId::parse(&format!("{first17}{check}")).expect("valid id")
}

/// The `n`-th synthetic woman registered in `registered` (born 1990, sequence from `n`).
pub fn synthetic_id(registered: &str, n: u32) -> ResidentId {
    let day = 1 + (n / 500) % 28;
    let month = 1 + (n / (500 * 28)) % 12;
    let sequence = (n % 500) * 2; // even: female
    resident_id(&format!("{registered}1990{month:02}{day:02}{sequence:03}"))
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
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
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

/// Count of rows in a node's database matching `sql` (a `SELECT count(*) ...`).
pub async fn count(node: &Node, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(node.store().pool())
        .await
        .expect(sql)
}
