//! The node's plain-HTTP listener (`[metrics] listen`, loopback by default, never the peer
//! port): `/metrics` in the Prometheus text format, and for probes that do not speak gRPC
//! `/healthz` (liveness: the process answers; it stays OK while the database is down, or a
//! service manager would restart the node in a loop) and `/readyz` (readiness, as the gRPC
//! health services report it: 200 when ready, 503 with the reason when not).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::warn;

use super::health::Health;
use crate::node::Node;

/// What the routes report on.
#[derive(Clone, Debug)]
pub struct Probed {
    /// The node, for its metrics and database figures.
    pub node: Arc<Node>,
    /// Its readiness.
    pub health: Arc<Health>,
}

/// Every route of the HTTP listener.
pub fn router(node: Arc<Node>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Probed { node, health })
}

/// `GET /healthz`: the process is alive and answering (200 `ok`), followed by a `warning:` line
/// for each thing an operator should see that does not stop the node (a TLS reload that failed),
/// and last a `database:` line: the primary in use (when the node has several addresses) and
/// whether a commit waits for a synchronous standby (see `crate::store::failover`).
async fn healthz(State(probed): State<Probed>) -> String {
    let mut text = with_warnings("ok\n".to_string(), &probed.health);
    if let Some(database) = probed.health.database() {
        text.push_str(&format!("database: {database}\n"));
    }
    text
}

fn with_warnings(mut text: String, health: &Health) -> String {
    for warning in health.warnings() {
        text.push_str(&format!("warning: {warning}\n"));
    }
    text
}

/// `GET /readyz`: 200 when the node is ready to take work, 503 with the reason when not.
async fn readyz(State(probed): State<Probed>) -> Response {
    match probed.health.why_not() {
        None if probed.health.is_ready() => (
            StatusCode::OK,
            with_warnings("ready\n".to_string(), &probed.health),
        )
            .into_response(),
        why => (
            StatusCode::SERVICE_UNAVAILABLE,
            with_warnings(
                format!("not ready: {}\n", why.unwrap_or_default()),
                &probed.health,
            ),
        )
            .into_response(),
    }
}

/// Binds `listen` and serves [`router`] until `shutdown` turns true; returns the bound address.
pub async fn spawn(
    listen: SocketAddr,
    node: Arc<Node>,
    health: Arc<Health>,
    tasks: &mut JoinSet<()>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics listener on {listen}"))?;
    let address = listener.local_addr()?;
    tasks.spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router(node, health))
            .with_graceful_shutdown(stop)
            .await
        {
            warn!(%error, "metrics listener stopped with an error");
        }
    });
    Ok(address)
}

/// `GET /metrics`: the process's counters and the database-derived gauges read now. When the
/// database cannot be read the scrape fails (503), so that Prometheus marks the target down
/// rather than show stale figures.
async fn metrics(State(Probed { node, .. }): State<Probed>) -> Response {
    let store = node.store();
    let figures = match store.monitoring_figures().await {
        Ok(figures) => figures,
        Err(error) => {
            warn!(%error, "metrics scrape: cannot read the database");
            return (StatusCode::SERVICE_UNAVAILABLE, "the database cannot be read\n").into_response();
        }
    };
    let metrics = node.metrics();
    metrics.observe_database(&figures);
    let (size, idle) = store.pool_usage();
    metrics.observe_pool(size, idle, store.pool_max());
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        metrics.render(),
    )
        .into_response()
}
