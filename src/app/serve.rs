//! Wiring a node: database, agreements, mutual-TLS listener with the exchange, health and
//! reflection services, and the workers; graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tonic::server::NamedService;
use tracing::{info, warn};

use super::health::{self, Health, Reported};
use super::supervise::{Supervisor, Workers};
use super::tls_reload::TlsReloader;
use crate::config::NodeConfig;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::exchange::ExchangeService;
use crate::node::Node;
use crate::node::reconcile::ReconcileSettings;
use crate::node::{AgreementSignatures, InstallError, agreements_in_store, install_admitted};
use crate::operator::{Listener, OperatorService};
use crate::peer::{CallTimings, PeerClient, PeerLink};
use crate::proto::exchange::exchange_server::ExchangeServer;
use crate::proto::operator::operator_server::OperatorServer;
use crate::rpc_trace;
use crate::store::Store;
use crate::store::audit::AuditEntry;
use crate::tls::transport::HandshakeFailureHook;
use crate::tls::{
    AnchorsInForce, County, CountyKey, LiveTls, Role, TlsIncoming, TlsSources, reconnector_tracked,
};
use crate::workers::delivery::DeliveryWorker;
use crate::workers::peer_status::PeerStatusWorker;
use crate::workers::{self, run_loop};

/// A node serving on its listener with its workers running.
#[derive(Debug)]
pub struct RunningNode {
    /// The node itself, for direct calls (tests, the operator API).
    pub node: Arc<Node>,
    /// Where the peer listener is bound.
    pub local_addr: SocketAddr,
    /// Where the operator API listens.
    pub operator_addr: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (plain HTTP).
    pub metrics_addr: SocketAddr,
    /// Where the HTTP/JSON API listens (`[web] listen`), if it does.
    pub web_addr: Option<SocketAddr>,
    /// Whether the node is ready, as its health services report it.
    pub health: Arc<Health>,
    /// The supervised workers' states.
    pub workers: Arc<Workers>,
    /// Reloads the TLS material (SIGHUP, file watch).
    tls: Arc<TlsReloader>,
    /// Flipped to `true` to stop serving and stop the workers.
    shutdown: watch::Sender<bool>,
    /// The server and worker tasks.
    tasks: JoinSet<()>,
}

impl RunningNode {
    /// Waits until one of the node's tasks (a listener, a worker's supervisor, the health
    /// check) ends; `None` when there are none. None ends while the node runs, unless broken.
    pub async fn task_ended(&mut self) -> Option<()> {
        self.tasks.join_next().await.map(|_| ())
    }

    /// Reads the TLS material's files again and puts them in force if they changed (or, with
    /// `force`, as SIGHUP does, even if not); see `crate::tls::live`.
    pub async fn reload_tls(&self, force: bool) -> crate::tls::ReloadOutcome {
        self.tls.reload(force).await
    }

    /// Stops gracefully: the listener stops accepting, in-flight requests finish, workers stop
    /// at their next step boundary.
    pub async fn stop(mut self) {
        // not ready from the first moment, so that probes and load balancers turn away at once
        self.health.stopping().await;
        // open event streams end (their clients reconnect elsewhere with their cursor), or the
        // listeners would wait for them forever
        self.node.stop_streams();
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs a node until SIGTERM or SIGINT, then stops it gracefully.
pub async fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the peer listener on {}", config.listen))?;
    let mut running = start(&config, listener).await?;
    info!(county = %config.county, address = %running.local_addr, "node serving");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let broken = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { info!("interrupt: stopping"); break false }
            _ = terminate.recv() => { info!("terminate: stopping"); break false }
            // SIGHUP: read the certificate, key, trust anchors and CRLs again
            _ = hangup.recv() => {
                info!("hangup: reloading the tls material");
                running.reload_tls(true).await;
            }
            // a listener or a worker's supervisor never ends while the node runs: one that did
            // leaves a node that cannot do its work, which the service manager should restart
            Some(()) = running.task_ended() => break true,
        }
    };
    running.stop().await;
    if broken {
        bail!(
            "a listener or a worker's supervisor stopped while the node was running (its log says why); stopped the node so that its service manager starts it again"
        );
    }
    info!("node stopped");
    Ok(())
}

/// Starts a node on an already bound `listener` (tests bind port 0 first).
pub async fn start(config: &NodeConfig, listener: TcpListener) -> anyhow::Result<RunningNode> {
    let county = County::parse(config.county.as_str()).context("node county")?;
    let tls = LiveTls::load(tls_sources(config), county)
        .context("loading the tls certificate, key, trust anchors and CRLs")?;
    let store = Store::connect_any(
        &config.database_addresses(),
        config.database_pool_size,
        config.limits.database_acquire_timeout,
        config.limits.statement_timeouts(),
    )
    .await
    .context("connecting to PostgreSQL")?;
    store.migrate().await.context("applying migrations")?;
    // signatures (agreement versions, peers' audit checkpoints) are checked against the trust
    // anchors in force, and audit checkpoints signed with the certificate in force: both follow
    // reloads of the TLS material
    let signatures = AgreementSignatures {
        required: config.require_signatures,
        anchors: Some(AnchorsInForce::Live(Arc::clone(&tls))),
    };
    let agreements = load_agreements(&store, config.county, &config.agreements_dir, &signatures).await?;
    let reconcile = ReconcileSettings::from_config(&config.reconcile)?;
    let node = Arc::new(
        Node::new(config.county, store, agreements, config.limits.clone())
            .with_reconcile(reconcile)
            .with_agreement_signatures(signatures)
            .with_county_key(CountyKey::Live(Arc::clone(&tls))),
    );
    node.refresh_agreements()
        .await
        .context("reading what is known of each agreement version")?;

    let local_addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ExchangeServer<ExchangeService<Node>>>()
        .await;
    let reflection = reflection_of(&[
        crate::proto::EXCHANGE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ])?;
    let exchange = ExchangeServer::new(ExchangeService::new(Arc::clone(&node)))
        .max_decoding_message_size(config.limits.max_message_bytes)
        .max_encoding_message_size(config.limits.max_message_bytes);
    let mut incoming = TlsIncoming::tracked(
        listener,
        tls.server_config()?,
        config.limits.handshake_timeout,
        audit_handshake_failures(&node, &mut tasks, ""),
        Arc::clone(tls.connections()),
        Role::PeerClient,
    );
    let mut server_shutdown = shutdown_rx.clone();
    let (rpc_timeout, rpc_concurrency) = (
        config.limits.rpc_timeout,
        config.limits.rpc_concurrency_per_connection,
    );
    // the task ends once the listener is closed, so a stopped node's port is free again
    let listener_closed = incoming.closed();
    tasks.spawn(async move {
        let result = tonic::transport::Server::builder()
            .timeout(rpc_timeout)
            .concurrency_limit_per_connection(rpc_concurrency)
            .trace_fn(rpc_trace::span_of)
            .layer(rpc_trace::RecordOutcome)
            .add_service(health_service)
            .add_service(reflection)
            .add_service(exchange)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(error) = result {
            warn!(%error, "peer listener stopped with an error");
        }
        listener_closed.await;
    });

    let (operator_addr, operator_health, operator) =
        spawn_operator_api(config, &tls, Arc::clone(&node), &mut tasks, shutdown_rx.clone()).await?;
    let web = crate::web::spawn(config, &operator, &mut tasks, shutdown_rx.clone()).await?;
    if let Some(web) = &web {
        info!(address = %web.address, tls = web.certificate.is_some(), "web listener (console and HTTP/JSON API) serving");
    }
    let web_addr = web.as_ref().map(|web| web.address);
    let health = Health::new(
        vec![
            Reported {
                reporter: health_reporter.clone(),
                services: vec![<ExchangeServer<ExchangeService<Node>> as NamedService>::NAME],
                serves_peers: true,
            },
            operator_health,
        ],
        Arc::clone(node.metrics()),
    );
    // at start, the log says which durability the database gives what the node acknowledges
    health.read_database(&node).await;
    let metrics_addr = super::http::spawn(
        config.metrics.listen,
        Arc::clone(&node),
        Arc::clone(&health),
        &mut tasks,
        shutdown_rx.clone(),
    )
    .await?;
    let reloader = TlsReloader::new(
        Arc::clone(&tls),
        web.and_then(|web| web.certificate),
        Arc::clone(&node),
        Arc::clone(&health),
    );
    tasks.spawn(Arc::clone(&reloader).watch(config.tls.watch_interval, shutdown_rx.clone()));

    let workers = Workers::new();
    let supervisor = Supervisor {
        workers: Arc::clone(&workers),
        metrics: Arc::clone(node.metrics()),
        shutdown: shutdown_rx.clone(),
    };
    let retry = node.limits().poll_interval;
    for (peer, endpoint) in config.peer_endpoints() {
        node.metrics().register_peer(peer);
        let county = County::parse(peer.as_str()).context("peer county")?;
        // connected on first use, closed once idle for limits.connection_idle
        let reopen = reconnector_tracked(
            &endpoint,
            tls.client_config(county)?,
            config.limits.channel_timings(),
            Arc::clone(tls.connections()),
            county,
        )
        .with_context(|| format!("peer {peer} endpoint {endpoint}"))?;
        let timings = CallTimings {
            batch_call: config.limits.call_timeout,
            sync_margin: config.limits.call_margin,
        };
        let link: Arc<dyn PeerLink> = Arc::new(PeerClient::closing_when_idle(
            reopen,
            config.limits.connection_idle,
            config.limits.max_message_bytes,
            timings,
        ));
        node.set_peer_link(peer, Arc::clone(&link));
        let status = Arc::new(PeerStatusWorker::new(Arc::clone(&node), peer, Arc::clone(&link)));
        let wake = node.status_waker();
        supervisor.run(&mut tasks, format!("peer_status:{peer}"), move |stop| {
            let (status, wake) = (Arc::clone(&status), Arc::clone(&wake));
            async move { run_loop("peer_status", stop, &wake, retry, || status.step()).await }
        });
        let delivery = Arc::new(DeliveryWorker::new(Arc::clone(&node), peer, link));
        let wake = node.delivery_waker();
        supervisor.run(&mut tasks, format!("delivery:{peer}"), move |stop| {
            let (delivery, wake) = (Arc::clone(&delivery), Arc::clone(&wake));
            async move { run_loop("delivery", stop, &wake, retry, || delivery.step()).await }
        });
    }
    if node.store().primary_in_use().is_some() {
        let follower = Arc::clone(&node);
        supervisor.run(&mut tasks, "database_primary", move |stop| {
            let node = Arc::clone(&follower);
            async move {
                let never = Notify::new();
                run_loop("database_primary", stop, &never, retry, || {
                    workers::database::run_once(&node)
                })
                .await;
            }
        });
    }
    let auto_answer = Arc::clone(&node);
    supervisor.run(&mut tasks, "auto_answer", move |stop| {
        let node = Arc::clone(&auto_answer);
        async move {
            run_loop("auto_answer", stop, &node.auto_answer_wake, retry, || {
                workers::auto_answer::run_once(&node)
            })
            .await;
        }
    });
    let changes = Arc::clone(&node);
    supervisor.run(&mut tasks, "changes", move |stop| {
        workers::changes::run(Arc::clone(&changes), stop)
    });
    if node.reconcile_settings().schedules().next().is_some() {
        let reconcile = Arc::clone(&node);
        supervisor.run(&mut tasks, "reconcile", move |stop| {
            workers::reconcile::run(Arc::clone(&reconcile), stop)
        });
    }
    let sealer = Arc::clone(&node);
    supervisor.run(&mut tasks, "audit_sealer", move |stop| {
        let node = Arc::clone(&sealer);
        async move {
            let never = Notify::new();
            run_loop("audit_sealer", stop, &never, retry, || {
                workers::audit_sealer::step(&node)
            })
            .await;
        }
    });
    let deadlines = Arc::clone(&node);
    supervisor.run(&mut tasks, "deadlines", move |stop| {
        let node = Arc::clone(&deadlines);
        async move {
            let never = Notify::new();
            let interval = node.limits().deadline_check_interval;
            run_loop("deadlines", stop, &never, interval, || {
                workers::deadlines::run_once(&node)
            })
            .await;
        }
    });
    // events pushed to the county systems' webhook endpoints
    let poster: Arc<dyn workers::webhooks::client::WebhookPoster> = Arc::new(
        workers::webhooks::client::HttpPoster::new(
            config.limits.webhook_connect_timeout,
            config.limits.webhook_timeout,
        )
        .context("the webhooks' https client")?,
    );
    let webhooks = Arc::new(workers::webhooks::WebhookWorker::new(Arc::clone(&node), poster));
    supervisor.run(&mut tasks, "webhooks", move |stop| {
        workers::webhooks::run(Arc::clone(&webhooks), stop, retry)
    });
    let retention = Arc::clone(&node);
    supervisor.run(&mut tasks, "retention", move |stop| {
        let node = Arc::clone(&retention);
        async move {
            let never = Notify::new();
            run_loop("retention", stop, &never, retry, || {
                workers::retention::run_once(&node, chrono::Utc::now())
            })
            .await;
        }
    });
    tasks.spawn(health::watch(
        Arc::clone(&health),
        Arc::clone(&node),
        Arc::clone(&workers),
        shutdown_rx,
    ));
    Ok(RunningNode {
        node,
        local_addr,
        operator_addr,
        metrics_addr,
        web_addr,
        health,
        workers,
        tls: reloader,
        shutdown,
        tasks,
    })
}

/// The files of the node's TLS material, from its configuration.
fn tls_sources(config: &NodeConfig) -> TlsSources {
    TlsSources {
        certificate: config.tls.certificate.clone(),
        private_key: config.tls.private_key.clone(),
        trust_anchors: config.tls.trust_anchors.clone(),
        crls: config.tls.crls.clone(),
        operator_trust_anchors: config.operator.trust_anchors.clone(),
        crl_grace: config.tls.crl_grace,
    }
}

/// Binds and serves the operator API: plaintext on loopback (county-wide), otherwise mutual TLS
/// with operator certificates, each caller scoped by its certificate. Returns the service too,
/// for the web listener to serve the same.
async fn spawn_operator_api(
    config: &NodeConfig,
    tls: &Arc<LiveTls>,
    node: Arc<Node>,
    tasks: &mut JoinSet<()>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, Reported, OperatorService)> {
    let listen = config.operator.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the operator listener on {listen}"))?;
    let address = listener.local_addr()?;
    let kind = match &config.operator.trust_anchors {
        None if !listen.ip().is_loopback() => {
            bail!("operator.listen {listen} is not loopback: operator.trust_anchors is required")
        }
        None => Listener::Loopback,
        Some(_) => Listener::OperatorCertificates,
    };
    let handshakes = Arc::clone(&node);
    let operator = OperatorService::new(node, kind);
    // the operator port has its own health service, so that a probe needs no county certificate
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let operator_name = <OperatorServer<OperatorService> as NamedService>::NAME;
    reporter
        .set_service_status(operator_name, tonic_health::ServingStatus::Serving)
        .await;
    let router = tonic::transport::Server::builder()
        .timeout(config.limits.rpc_timeout)
        .concurrency_limit_per_connection(config.limits.rpc_concurrency_per_connection)
        .trace_fn(rpc_trace::span_of)
        .layer(rpc_trace::RecordOutcome)
        .add_service(health_service)
        .add_service(reflection_of(&[
            crate::proto::OPERATOR_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ])?)
        .add_service(OperatorServer::new(operator.clone()));
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    match &config.operator.trust_anchors {
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tasks.spawn(log_stop(router.serve_with_incoming_shutdown(incoming, stop)));
        }
        Some(_) => {
            // the operator CA was loaded with the rest of the material (and is reloaded with it)
            let mut incoming = TlsIncoming::tracked(
                listener,
                tls.operator_server_config()?,
                config.limits.handshake_timeout,
                audit_handshake_failures(&handshakes, tasks, "operator listener: "),
                Arc::clone(tls.connections()),
                Role::OperatorClient,
            );
            let listener_closed = incoming.closed();
            tasks.spawn(async move {
                log_stop(router.serve_with_incoming_shutdown(incoming, stop)).await;
                listener_closed.await;
            });
        }
    }
    let reported = Reported {
        reporter,
        services: vec![operator_name],
        serves_peers: false,
    };
    Ok((address, reported, operator))
}

/// Serves the operator API until it stops, logging an error it stops with.
async fn log_stop(server: impl std::future::Future<Output = Result<(), tonic::transport::Error>>) {
    if let Err(error) = server.await {
        warn!(%error, "operator listener stopped with an error");
    }
}

/// The gRPC reflection service (v1) for one listener: it describes exactly the descriptor sets
/// given, so a peer never learns the shape of the operator API, nor an operator tool the
/// exchange's. The reflection service itself is always listed.
fn reflection_of(
    sets: &[&[u8]],
) -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
> {
    let mut builder = tonic_reflection::server::Builder::configure();
    for set in sets {
        builder = builder.register_encoded_file_descriptor_set(set);
    }
    builder.build_v1().context("building the reflection service")
}

/// Failed handshakes waiting for their audit record; beyond this (a flood of bad connections
/// faster than the database takes records) further ones are only logged.
const HANDSHAKE_AUDIT_QUEUE: usize = 1024;

/// Longest TLS error text kept in an audit reason.
const HANDSHAKE_REASON_CHARS: usize = 200;

/// A hook for the TLS listener that audits every refused handshake: such connections never
/// reach a handler, but each refusal must still leave a record. The hook only queues; a task in
/// `tasks` writes the records, so the accept loop never waits on the database. The task ends
/// once the listener (and with it the hook) is dropped and the queue is drained.
fn audit_handshake_failures(
    node: &Arc<Node>,
    tasks: &mut JoinSet<()>,
    listener: &'static str,
) -> HandshakeFailureHook {
    let metrics = Arc::clone(node.metrics());
    let metrics_listener = if listener.is_empty() { "peer" } else { "operator" };
    let (sender, mut receiver) = mpsc::channel::<AuditEntry>(HANDSHAKE_AUDIT_QUEUE);
    let node = Arc::clone(node);
    tasks.spawn(async move {
        while let Some(entry) = receiver.recv().await {
            if let Err(error) = node.store().append_audit(&entry).await {
                warn!(%error, "cannot audit a failed tls handshake");
            }
        }
    });
    Arc::new(move |peer: SocketAddr, error: &std::io::Error| {
        metrics.tls_handshake_refused(metrics_listener, crate::metrics::handshake_refusal_reason(error));
        // The TLS error names protocol problems only, never a person's data.
        // withheld before it is cut, so that no cut-off ID number slips past the audit's rule
        let reason: String = crate::domain::privacy::without_id_numbers(&error.to_string())
            .chars()
            .take(HANDSHAKE_REASON_CHARS)
            .collect();
        let entry = AuditEntry::inbound_rejected(
            None,
            format!("UNAUTHENTICATED: {listener}tls handshake failed from {peer}: {reason}"),
        );
        match sender.try_send(entry) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(%peer, "audit queue for failed tls handshakes is full; record dropped");
            }
            // The node is stopping.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    })
}

/// Reads every `*.toml` agreement in `dir`, installs the new versions [`admit`] lets in (in
/// version order, so a directory that keeps an agreement's history installs it as it was
/// signed), and returns every version the store holds (older ones too: a receiver honours
/// every version it holds). A version refused (expired, older than one installed, another
/// version's number, or — when signatures are required — not signed by every party) is left
/// out with a warning; the node still starts.
pub async fn load_agreements(
    store: &Store,
    me: CountyCode,
    dir: &Path,
    signatures: &AgreementSignatures,
) -> anyhow::Result<Vec<Agreement>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the agreements directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let agreement = Agreement::parse(&text).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::anyhow!(
                "{} is not a valid agreement:\n{}",
                path.display(),
                lines.join("\n")
            )
        })?;
        let Some(peer) = agreement.peer_of(me) else {
            warn!(path = %path.display(), "agreement does not involve this county; ignored");
            continue;
        };
        found.push((path, agreement, peer));
    }
    found.sort_by_key(|(_, agreement, _)| (agreement.id().to_string(), agreement.version()));
    for (path, agreement, peer) in found {
        match install_admitted(store, &agreement, peer, signatures).await {
            Ok(installed) => {
                for warning in installed.warnings {
                    warn!(path = %path.display(), "{warning}");
                }
            }
            Err(InstallError::NotAdmitted(refusal)) => {
                warn!(path = %path.display(), %refusal, "agreement version not installed");
            }
            Err(InstallError::Unsigned(refusal)) => {
                warn!(path = %path.display(), %refusal, "agreement version not installed");
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(agreements_in_store(store, signatures).await?)
}
