//! The two nodes of an exchange benchmark, on 127.0.0.1 over real mutual TLS with certificates
//! minted for the run: the asking county in this process (so that the sweep and the single
//! inquiries go through its [`Node`] exactly as the operator API would call it), the answering
//! county as a `hancha serve` child process, so that each node's peak resident memory can be read
//! on its own from `/proc/<pid>/status`.
//!
//! Both nodes hold a reconciliation secret for their agreement (minted for the run) with a
//! schedule that never fires, so that a benchmark can start a run itself
//! ([`Node::reconcile_with`]) and nothing else starts one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{Days, Utc};
use tokio::net::TcpListener;
use tonic::transport::Channel;

use crate::app::RunningNode;
use crate::config::{AgreementReconcile, Limits, NodeConfig, OperatorListener, ReconcileConfig, TlsFiles};
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::reconcile::ReconcileKey;
use crate::node::Node;
use crate::store::Store;
use crate::tls::dev::TestPki;
use crate::tls::{County, NodeIdentity, TrustAnchors, client_config, connect};

/// How long the answering node may take to start serving.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// The reconciliation schedule of both nodes: the 31st of February, never. Runs are started by
/// the benchmark, so that no scheduled one overlaps them.
const NEVER: &str = "0 0 31 2 *";

/// The two running nodes and what the benchmark needs to reach them.
#[derive(Debug)]
pub struct Rig {
    /// The asking county's node, in this process.
    pub asker: Option<RunningNode>,
    /// The answering county's `hancha serve` process.
    responder: tokio::process::Child,
    /// The answering county, for building clients that expect its certificate.
    pub responder_county: CountyCode,
    /// Where the answering node's peer listener is.
    pub responder_address: SocketAddr,
    /// A connection of our own to the answering node's database, for its registry and counts.
    pub responder_store: Store,
    /// The agreement both nodes hold.
    pub agreement: Agreement,
    /// The key made of the reconciliation secret both nodes hold for it (the secret itself is
    /// not kept: `Rig` is `Debug`, and the key's `Debug` says nothing).
    reconcile_key: ReconcileKey,
    /// The asking county's certificate, to open mutual-TLS channels as it does.
    asker_identity: NodeIdentity,
    /// The run's CA.
    anchors: TrustAnchors,
    /// Certificates, agreement, configuration and the child's log.
    scratch: PathBuf,
}

impl Rig {
    /// Mints a CA and both nodes' certificates, writes an agreement allowing automatic answers
    /// with a daily cap of at least `daily_cap`, and starts both nodes on their databases.
    pub async fn start(
        asker: CountyCode,
        responder: CountyCode,
        databases: (&str, &str),
        daily_cap: u32,
        limits: &Limits,
    ) -> anyhow::Result<Rig> {
        Self::start_with(asker, responder, databases, daily_cap, limits, false).await
    }

    /// As [`Rig::start`]; with `asker_answers_by_hand`, what the answering county asks the asking
    /// county waits for an operator there (the agreement's `automatic_answers = false` in that
    /// direction), so that inquiries stay in the asking node's work queue.
    pub async fn start_with(
        asker: CountyCode,
        responder: CountyCode,
        databases: (&str, &str),
        daily_cap: u32,
        limits: &Limits,
        asker_answers_by_hand: bool,
    ) -> anyhow::Result<Rig> {
        let scratch = std::env::temp_dir().join(format!(
            "hancha-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let pki = TestPki::new().context("minting the benchmark CA")?;
        // signed by both counties with the benchmark CA's keys, as a node requires
        let mut agreement_text = agreement_toml(asker, responder, daily_cap, asker_answers_by_hand);
        for county in [asker, responder] {
            let identity = pki
                .county_identity(county.as_str())
                .context("minting a signing certificate")?;
            agreement_text = crate::node::sign_agreement(&agreement_text, &identity, chrono::Utc::now())
                .context("signing the benchmark agreement")?;
        }
        let agreement = Agreement::parse(&agreement_text)
            .map_err(|errors| anyhow::anyhow!("the benchmark agreement is invalid: {errors:?}"))?;
        let reconcile_secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let asker_files = write_node_files(&scratch, &pki, asker, &agreement_text)?;
        write_node_files(&scratch, &pki, responder, &agreement_text)?;

        let asker_listener = TcpListener::bind("127.0.0.1:0").await?;
        let asker_address = asker_listener.local_addr()?;
        let responder_address = free_loopback_address()?;

        let responder_config = responder_config(
            responder,
            responder_address,
            databases.1,
            (asker, asker_address),
            limits,
            (agreement.id(), &reconcile_secret),
        );
        let config_path = scratch.join(responder.as_str()).join("node.toml");
        std::fs::write(&config_path, responder_config)?;
        let responder_child = spawn_serve(&config_path, &scratch.join("responder.log"))?;

        let config = NodeConfig {
            county: asker,
            listen: asker_address,
            database_url: databases.0.to_string(),
            database_urls: Vec::new(),
            database_pool_size: 10,
            tls: asker_files,
            agreements_dir: scratch.join(asker.as_str()).join("agreements"),
            require_signatures: true,
            operator: OperatorListener {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                trust_anchors: None,
            },
            metrics: crate::config::MetricsListener {
                listen: "127.0.0.1:0".parse().expect("an address"),
            },
            // the console and the HTTP API on loopback (`bench console` measures them)
            web: crate::config::WebListener {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                require_login: None,
                tls: None,
            },
            peers: [(responder.to_string(), responder_address.to_string())].into(),
            limits: limits.clone(),
            reconcile: ReconcileConfig {
                agreements: [(
                    agreement.id().to_string(),
                    AgreementReconcile {
                        secret: Some(reconcile_secret.clone()),
                        schedule: NEVER.to_string(),
                    },
                )]
                .into(),
                ..ReconcileConfig::default()
            },
            warnings: Vec::new(),
        };
        let running = crate::app::start(&config, asker_listener)
            .await
            .context("starting the asking node")?;
        let asker_identity = NodeIdentity::from_pem_files(&config.tls.certificate, &config.tls.private_key)?;
        let anchors = TrustAnchors::from_pem(&pki.ca_pem())?;
        let responder_store = Store::connect(databases.1, 4, limits.database_acquire_timeout)
            .await
            .context("connecting to the answering node's database")?;
        let mut rig = Rig {
            asker: Some(running),
            responder: responder_child,
            responder_county: responder,
            responder_address,
            responder_store,
            agreement,
            reconcile_key: ReconcileKey::new(reconcile_secret.as_bytes())?,
            asker_identity,
            anchors,
            scratch,
        };
        rig.wait_for_responder().await?;
        Ok(rig)
    }

    /// The asking node.
    pub fn asker(&self) -> &Arc<Node> {
        &self.asker.as_ref().expect("the asking node runs").node
    }

    /// A mutual-TLS channel to the answering node's peer port, presenting the asking county's
    /// certificate and checking the server's county, as the delivery worker's channel does.
    pub async fn responder_channel(&self) -> anyhow::Result<Channel> {
        let config = client_config(
            &self.asker_identity,
            &self.anchors,
            County::parse(self.responder_county.as_str())?,
        )?;
        Ok(connect(&self.responder_address.to_string(), config).await?)
    }

    /// The key both nodes reconcile under, for a benchmark that keys a set as a node does.
    pub fn reconcile_key(&self) -> &ReconcileKey {
        &self.reconcile_key
    }

    /// The answering process's id, for reading its memory.
    pub fn responder_pid(&self) -> Option<u32> {
        self.responder.id()
    }

    /// The last lines the answering node logged, for error messages.
    pub fn responder_log_tail(&self) -> String {
        let restarted = self.scratch.join("responder-restarted.log");
        let log = std::fs::read_to_string(if restarted.exists() {
            restarted
        } else {
            self.scratch.join("responder.log")
        })
        .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops both nodes (the child with SIGTERM, then SIGKILL if it lingers) and removes the
    /// scratch files.
    pub async fn stop(mut self) {
        if let Some(running) = self.asker.take() {
            running.stop().await;
        }
        if let Some(pid) = self.responder.id() {
            let _ = tokio::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(30), self.responder.wait())
                .await
                .is_err()
            {
                let _ = self.responder.kill().await;
            }
        }
        self.responder_store.close().await;
        let _ = std::fs::remove_dir_all(&self.scratch);
    }

    /// Kills the answering node with SIGKILL (an outage, not a shutdown) and waits for it to
    /// be gone.
    pub async fn kill_responder(&mut self) -> anyhow::Result<()> {
        self.responder.kill().await.context("killing the answering node")
    }

    /// Starts the answering node again on its port and database (logging to
    /// `responder-restarted.log`), and waits until it serves.
    pub async fn restart_responder(&mut self) -> anyhow::Result<()> {
        let config_path = self
            .scratch
            .join(self.responder_county.as_str())
            .join("node.toml");
        self.responder = spawn_serve(&config_path, &self.scratch.join("responder-restarted.log"))?;
        self.wait_for_responder().await
    }

    /// Waits until the answering node answers a health check on its peer port.
    async fn wait_for_responder(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + START_PATIENCE;
        loop {
            if let Some(status) = self.responder.try_wait()? {
                bail!(
                    "the answering node exited at start with {status}:\n{}",
                    self.responder_log_tail()
                );
            }
            if let Ok(channel) = self.responder_channel().await {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                let request = tonic_health::pb::HealthCheckRequest::default();
                if health.check(request).await.is_ok() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the answering node did not serve within {START_PATIENCE:?}:\n{}",
                    self.responder_log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Writes `county`'s certificate, key, the CA and the agreement under `scratch/<county>`.
pub(super) fn write_node_files(
    scratch: &Path,
    pki: &TestPki,
    county: CountyCode,
    agreement: &str,
) -> anyhow::Result<TlsFiles> {
    let dir = scratch.join(county.as_str());
    std::fs::create_dir_all(dir.join("agreements")).with_context(|| format!("creating {}", dir.display()))?;
    let now = Utc::now();
    let (certificate, key) = pki.issue_county(
        county.as_str(),
        now - chrono::Duration::hours(1),
        now + chrono::Duration::days(2),
    )?;
    let files = TlsFiles::new(dir.join("node.pem"), dir.join("node-key.pem"), dir.join("ca.pem"));
    std::fs::write(&files.certificate, certificate)?;
    std::fs::write(&files.private_key, key)?;
    std::fs::write(&files.trust_anchors, pki.ca_pem())?;
    std::fs::write(dir.join("agreements").join("bench.toml"), agreement)?;
    Ok(files)
}

/// The answering node's configuration file: production limits except the batch size, and the
/// reconciliation secret of the agreement.
fn responder_config(
    county: CountyCode,
    listen: SocketAddr,
    database_url: &str,
    (peer, peer_address): (CountyCode, SocketAddr),
    limits: &Limits,
    (agreement_id, reconcile_secret): (&str, &str),
) -> String {
    let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
    format!(
        "county = {}\nlisten = {}\ndatabase_url = {}\nagreements_dir = \"agreements\"\n\n\
         [tls]\ncertificate = \"node.pem\"\nprivate_key = \"node-key.pem\"\ntrust_anchors = \"ca.pem\"\n\n\
         [operator]\nlisten = \"127.0.0.1:0\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [limits]\nbatch_size = {}\n\n\
         [peers]\n{} = {}\n\n\
         [reconcile.agreements.{}]\nsecret = {}\nschedule = {}\n",
        quoted(county.as_str()),
        quoted(&listen.to_string()),
        quoted(database_url),
        limits.batch_size,
        peer.as_str(),
        quoted(&peer_address.to_string()),
        quoted(agreement_id),
        quoted(reconcile_secret),
        quoted(NEVER),
    )
}

/// Starts `hancha serve --config config` (this very binary), logging to `log`; killed if the
/// benchmark dies first.
fn spawn_serve(config: &Path, log: &Path) -> anyhow::Result<tokio::process::Child> {
    let executable = std::env::current_exe().context("locating the hancha binary")?;
    let log_file = std::fs::File::create(log)?;
    let mut command = tokio::process::Command::new(executable);
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("NO_COLOR", "1")
        .env_remove("HANCHA_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true);
    // The configuration file is the whole truth: no override from our environment.
    for (variable, _) in crate::config::ENVIRONMENT_OVERRIDES {
        command.env_remove(variable);
    }
    for (variable, _) in std::env::vars() {
        if variable.starts_with("HANCHA_PEER_") || variable.starts_with("HANCHA_RECONCILE_SECRET_") {
            command.env_remove(variable);
        }
    }
    command
        .spawn()
        .context("starting the answering node (hancha serve)")
}

/// A loopback address with a free port for a node that binds it itself a moment later.
fn free_loopback_address() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// An agreement valid from yesterday for a year, each way allowing both inquiry kinds, the
/// usual answer fields, automatic answers and `daily_cap` inquiries a day.
pub(super) fn agreement_toml(
    a: CountyCode,
    b: CountyCode,
    daily_cap: u32,
    a_answers_by_hand: bool,
) -> String {
    let today = Utc::now().date_naive();
    let valid_from = today - Days::new(1);
    let valid_until = today + Days::new(365);
    let direction = |from: CountyCode, to: CountyCode, automatic: bool| {
        format!(
            "[[direction]]\nfrom = \"{from}\"\nto = \"{to}\"\n\
             inquiry_kinds = [\"certificate_verification\", \"outflow_status\"]\nnotice_kinds = [\"birth\"]\n\
             answer_fields = [\"marital_status\", \"certificate_number\", \"certificate_valid_until\", \
             \"certificate_status\", \"children_count\", \"pregnant\", \"registered_since\", \"township\"]\n\
             reply_days = {{ normal = 30, urgent = 15 }}\nnotice_days = {{ receipt = 30, feedback = 30 }}\n\
             daily_cap = {daily_cap}\nautomatic_answers = {automatic}\n\n"
        )
    };
    format!(
        "id = \"{a}-{b}\"\nversion = 1\ntitle = \"benchmark agreement\"\nparties = [\"{a}\", \"{b}\"]\n\
         valid_from = {valid_from}\nvalid_until = {valid_until}\nretention_days = 1095\n\n{}{}",
        direction(a, b, true),
        direction(b, a, !a_answers_by_hand)
    )
}
