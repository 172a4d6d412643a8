//! The demo's three county nodes, in this process, over real mutual TLS on 127.0.0.1: every
//! peer listener is bound first (port 0), so that each node's configuration can list its peers'
//! addresses before any node starts; then each node starts on its own database, holding a
//! reconciliation secret for each of its agreements that only this run of the demo knows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use super::files::Scratch;
use crate::app::RunningNode;
use crate::config::{AgreementReconcile, Limits, NodeConfig, OperatorListener, ReconcileConfig, TlsFiles};
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::node::Node;
use crate::proto::operator::operator_client::OperatorClient;

/// One county's node: its configuration (kept to restart it on the same port and database)
/// and, while it runs, the running node.
#[derive(Debug)]
struct Member {
    /// What it was started with; the operator address is pinned after the first start so that
    /// a restarted node answers on the same operator port.
    config: NodeConfig,
    /// `None` while stopped.
    running: Option<RunningNode>,
}

/// The running nodes, by county code.
#[derive(Debug, Default)]
pub struct Cluster {
    /// County code → node.
    members: BTreeMap<String, Member>,
}

/// The nightly schedule of the demo's reconciliations: February 31st, a day that never comes.
/// The demo runs the night's reconciliation itself, at its own point in the story and through
/// the operator API as `hancha reconcile --with` does; a scheduled run firing meanwhile would
/// repair the divergences before the story shows them.
const NEVER: &str = "0 0 31 2 *";

/// Limits for a story told in seconds, for a sweep of `sweep_size`: a stopped peer's messages
/// are retried within a second of its return rather than after the production backoff (500 ms
/// doubling up to five minutes); idle workers look for work five times a second; and messages
/// travel in batches of about a twenty-fifth of the sweep, so that its answers arrive in steps a
/// progress bar can follow and a node can be stopped between them.
pub fn demo_limits(sweep_size: usize) -> Limits {
    Limits {
        batch_size: (sweep_size / 25).clamp(10, 500),
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        ..Limits::default()
    }
}

/// Reconciliation for every agreement in `agreements_dir` (the files the node itself loads):
/// the secret both counties of the agreement hold, fresh for each demo (`secrets`, shared
/// between the calls for the two counties), and a schedule that never fires ([`NEVER`]).
fn reconcile_config(
    agreements_dir: &Path,
    secrets: &mut BTreeMap<String, String>,
) -> anyhow::Result<ReconcileConfig> {
    let mut config = ReconcileConfig::default();
    let entries =
        std::fs::read_dir(agreements_dir).with_context(|| format!("reading {}", agreements_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let agreement = Agreement::parse(&text)
            .map_err(|errors| anyhow::anyhow!("{} is not a valid agreement: {errors}", path.display()))?;
        let secret = secrets
            .entry(agreement.id().to_string())
            .or_insert_with(|| hex::encode(rand::random::<[u8; 32]>()));
        config.agreements.insert(
            agreement.id().to_string(),
            AgreementReconcile {
                secret: Some(secret.clone()),
                schedule: NEVER.to_string(),
            },
        );
    }
    Ok(config)
}

impl Cluster {
    /// Binds a peer listener for every county, then starts each node with its peers' addresses
    /// and its database (`databases`: county → URL). Nodes started before a failure stay in
    /// `self`, so that [`Cluster::stop_all`] stops them.
    pub async fn start(
        &mut self,
        scratch: &Scratch,
        databases: &[(&str, String)],
        limits: &Limits,
    ) -> anyhow::Result<()> {
        let mut listeners = BTreeMap::new();
        for (county, _) in databases {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a peer listener on 127.0.0.1")?;
            listeners.insert(county.to_string(), listener);
        }
        let addresses: BTreeMap<String, SocketAddr> = listeners
            .iter()
            .map(|(county, listener)| Ok((county.clone(), listener.local_addr()?)))
            .collect::<std::io::Result<_>>()?;
        // Agreement id → the reconciliation secret both of its counties hold, drawn per run.
        let mut secrets = BTreeMap::new();
        for (county, database_url) in databases {
            let files = scratch.files(county);
            let reconcile = reconcile_config(&files.agreements_dir, &mut secrets)?;
            let peers = addresses
                .iter()
                .filter(|(other, _)| other.as_str() != *county)
                .map(|(other, address)| (other.clone(), address.to_string()))
                .collect();
            let mut config = NodeConfig {
                county: CountyCode::parse(county)?,
                listen: addresses[*county],
                database_url: database_url.clone(),
                database_urls: Vec::new(),
                database_pool_size: 10,
                tls: TlsFiles::new(files.certificate, files.private_key, files.trust_anchors),
                agreements_dir: files.agreements_dir,
                require_signatures: true,
                operator: OperatorListener {
                    listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                    trust_anchors: None,
                },
                metrics: crate::config::MetricsListener {
                    listen: "127.0.0.1:0".parse().expect("an address"),
                },
                // the console (控制台) and the HTTP/JSON API: loopback, no login
                web: crate::config::WebListener {
                    listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                    require_login: None,
                    tls: None,
                },
                peers,
                limits: limits.clone(),
                reconcile,
                warnings: Vec::new(),
            };
            let listener = listeners.remove(*county).expect("a listener per county");
            let running = crate::app::start(&config, listener)
                .await
                .with_context(|| format!("starting the node of {county}"))?;
            config.operator.listen = running.operator_addr;
            config.metrics.listen = running.metrics_addr;
            config.web.listen = running.web_addr;
            self.members.insert(
                county.to_string(),
                Member {
                    config,
                    running: Some(running),
                },
            );
        }
        Ok(())
    }

    /// The running node of `county`.
    pub fn node(&self, county: &str) -> &Arc<Node> {
        &self.running(county).node
    }

    /// Where `county`'s peers reach it (mutual TLS).
    pub fn peer_address(&self, county: &str) -> SocketAddr {
        self.members[county].config.listen
    }

    /// Where `county`'s operator API listens (loopback, no certificates).
    pub fn operator_address(&self, county: &str) -> SocketAddr {
        self.members[county].config.operator.listen
    }

    /// `county`'s web console (控制台), served with its HTTP/JSON API on loopback.
    pub fn console_url(&self, county: &str) -> Option<String> {
        self.members[county]
            .config
            .web
            .listen
            .map(|address| format!("http://{address}/"))
    }

    /// Where Prometheus scrapes `county` (plain HTTP on loopback).
    pub fn metrics_url(&self, county: &str) -> String {
        format!("http://{}/metrics", self.members[county].config.metrics.listen)
    }

    /// A client of `county`'s operator API, as the `hancha` command line would connect.
    pub async fn operator(&self, county: &str) -> anyhow::Result<OperatorClient<Channel>> {
        let address = format!("http://{}", self.operator_address(county));
        let client = OperatorClient::connect(address)
            .await
            .with_context(|| format!("connecting to the operator API of {county}"))?;
        Ok(client.max_decoding_message_size(64 * 1024 * 1024))
    }

    /// Stops `county` gracefully: in-flight requests finish, workers stop at a step boundary.
    pub async fn stop(&mut self, county: &str) {
        if let Some(running) = self.members.get_mut(county).and_then(|m| m.running.take()) {
            running.stop().await;
        }
    }

    /// Starts a stopped `county` again on the same peer and operator ports and database.
    pub async fn restart(&mut self, county: &str) -> anyhow::Result<()> {
        let member = self
            .members
            .get_mut(county)
            .context("no such county in the demo")?;
        let listener = TcpListener::bind(member.config.listen)
            .await
            .with_context(|| format!("binding {} again", member.config.listen))?;
        let running = crate::app::start(&member.config, listener)
            .await
            .with_context(|| format!("restarting the node of {county}"))?;
        member.running = Some(running);
        Ok(())
    }

    /// Reads `county`'s TLS files again and puts them in force, as SIGHUP does (`hancha serve`):
    /// new handshakes use the new material, with no restart.
    pub async fn reload_tls(&self, county: &str) -> crate::tls::ReloadOutcome {
        self.running(county).reload_tls(true).await
    }

    /// The state of `county`'s supervised workers, by name.
    pub fn workers(&self, county: &str) -> BTreeMap<String, crate::app::supervise::WorkerState> {
        self.running(county).workers.snapshot()
    }

    /// Stops every running node; returns how many were running.
    pub async fn stop_all(&mut self) -> usize {
        let mut stopped = 0;
        for member in self.members.values_mut() {
            if let Some(running) = member.running.take() {
                running.stop().await;
                stopped += 1;
            }
        }
        stopped
    }

    fn running(&self, county: &str) -> &RunningNode {
        self.members[county]
            .running
            .as_ref()
            .expect("the node is running")
    }
}
