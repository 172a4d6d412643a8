//! In-process county nodes: a [`Cluster`] of real nodes on 127.0.0.1 port 0 with certificates
//! minted for the test, each on its own [`TestDatabase`], dropped with the cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as TimeDelta, Utc};
use hancha::app::RunningNode;
use hancha::config::{Limits, NodeConfig, TlsFiles};
use hancha::domain::division::CountyCode;
use hancha::node::Node;
use hancha::proto::exchange::exchange_client::ExchangeClient;
use hancha::tls::dev::TestPki;
use hancha::tls::{County, NodeIdentity, TrustAnchors, client_config, connect};
use tokio::net::TcpListener;
use tonic::transport::Channel;

use super::{TestDatabase, fresh_database, test_reconcile_config};

/// One county in the cluster.
pub struct Member {
    pub county: &'static str,
    pub config: NodeConfig,
    pub running: Option<RunningNode>,
    /// The member's database (its `config.database_url`): dropped with the member, after the
    /// node (fields drop in order).
    pub database: TestDatabase,
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
        std::fs::write(dir.path().join("ca.pem"), super::trust_anchors_pem(&pki.ca_pem())).unwrap();
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
            let database = fresh_database().await;
            let config = NodeConfig {
                county: CountyCode::parse(county).unwrap(),
                listen: addresses[county],
                database_url: database.url().to_string(),
                database_urls: Vec::new(),
                database_pool_size: 8,
                tls: TlsFiles::new(
                    node_dir.join("node.pem"),
                    node_dir.join("node-key.pem"),
                    dir.path().join("ca.pem"),
                ),
                agreements_dir: node_dir.join("agreements"),
                require_signatures: true,
                operator: hancha::config::OperatorListener {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    trust_anchors: None,
                },
                metrics: hancha::config::MetricsListener {
                    listen: "127.0.0.1:0".parse().expect("an address"),
                },
                web: hancha::config::WebListener::default(),
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
                    database,
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

    /// Where `county` serves its metrics.
    pub fn metrics_url(&self, county: &str) -> String {
        let running = self.members[county].running.as_ref().expect("node is running");
        format!("http://{}/metrics", running.metrics_addr)
    }

    /// A second replica of `county` on the same database, its listeners on free loopback ports.
    pub async fn start_replica(&self, county: &str) -> hancha::app::RunningNode {
        let mut config = self.members[county].config.clone();
        config.operator.listen = "127.0.0.1:0".parse().unwrap();
        config.metrics.listen = "127.0.0.1:0".parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.listen = listener.local_addr().unwrap();
        hancha::app::start(&config, listener)
            .await
            .expect("replica starts")
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

    /// Restarts `county` on the same port and database with its operator API in remote mode:
    /// mutual TLS with the operator CA in `anchors`.
    pub async fn restart_with_operator_anchors(&mut self, county: &str, anchors: PathBuf) {
        self.stop(county).await;
        self.members
            .get_mut(county)
            .unwrap()
            .config
            .operator
            .trust_anchors = Some(anchors);
        self.restart(county).await;
    }

    /// Restarts `county` on the same port and database with its web listener (HTTP/JSON API)
    /// configured as `web` (its `listen` port 0 picks a free port: see [`Cluster::web_address`]).
    pub async fn restart_with_web(&mut self, county: &str, web: hancha::config::WebListener) {
        self.stop(county).await;
        self.members.get_mut(county).unwrap().config.web = web;
        self.restart(county).await;
    }

    /// Where `county`'s web listener is bound.
    pub fn web_address(&self, county: &str) -> SocketAddr {
        self.members[county]
            .running
            .as_ref()
            .expect("running")
            .web_addr
            .expect("a web listener")
    }

    /// A client that presents `as_county`'s certificate (issued by the cluster CA) and expects
    /// the server to be `to_county`.
    pub async fn client(&self, as_county: &str, to_county: &str) -> ExchangeClient<Channel> {
        let identity = self.pki.county_identity(as_county).expect("identity");
        self.client_with(identity, to_county).await
    }

    /// A client with any identity.
    pub async fn client_with(&self, identity: NodeIdentity, to_county: &str) -> ExchangeClient<Channel> {
        ExchangeClient::new(self.channel_with(identity, to_county).await)
    }

    /// A mutual-TLS channel to `to_county`'s peer listener as `as_county`, for any service.
    pub async fn channel(&self, as_county: &str, to_county: &str) -> Channel {
        let identity = self.pki.county_identity(as_county).expect("identity");
        self.channel_with(identity, to_county).await
    }

    async fn channel_with(&self, identity: NodeIdentity, to_county: &str) -> Channel {
        let anchors = TrustAnchors::from_pem(&self.pki.ca_pem()).unwrap();
        let config = client_config(&identity, &anchors, County::parse(to_county).unwrap()).unwrap();
        connect(&self.address(to_county).to_string(), config)
            .await
            .expect("connect")
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

    /// Installs the agreement `text` on every running node straight into its store and puts it
    /// in force, as a version installed while it was valid and expired since: start-up and
    /// `agreement apply` refuse a version already expired, so a test of what happens after an
    /// agreement ends goes round them this way.
    pub async fn install_as_once_valid(&self, text: &str) {
        let agreement = hancha::domain::agreement::Agreement::parse(text).expect("the agreement parses");
        for member in self.members.values() {
            let Some(running) = &member.running else {
                continue;
            };
            let node = &running.node;
            let peer = agreement.peer_of(node.county()).expect("a party");
            // its signatures checked as when it was applied, while it was valid
            let mut stored = hancha::node::stored_agreement(&agreement, peer);
            let report = node
                .agreement_signatures()
                .examine(&agreement, chrono::Utc::now());
            stored.signed_by_all = report.verdict.is_ok();
            node.store()
                .install_agreement(&stored, &report.records)
                .await
                .expect("installed");
            node.reload_agreements().await.expect("in force");
        }
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

    /// A configuration file for the commands run against `county`'s database (`--config`):
    /// its county, database and files, as `hancha serve` reads them.
    pub fn config_file(&self, county: &str) -> PathBuf {
        let config = &self.members[county].config;
        let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
        let path = self.path().join(format!("{county}.toml"));
        std::fs::write(
            &path,
            format!(
                "county = {}\nlisten = {}\ndatabase_url = {}\nagreements_dir = {}\n\n[tls]\ncertificate = {}\n\
                 private_key = {}\ntrust_anchors = {}\n",
                quoted(county),
                quoted(&config.listen.to_string()),
                quoted(&config.database_url),
                quoted(&config.agreements_dir.display().to_string()),
                quoted(&config.tls.certificate.display().to_string()),
                quoted(&config.tls.private_key.display().to_string()),
                quoted(&config.tls.trust_anchors.display().to_string()),
            ),
        )
        .unwrap();
        path
    }
}
