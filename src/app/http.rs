//! The node's plain-HTTP listener (`[metrics] listen`, loopback by default, never the peer
//! port): `/metrics` in the Prometheus text format. Routes for load balancers and orchestrators
//! (`/healthz`, `/readyz`) belong in [`router`] beside it.

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

use crate::node::Node;

/// Every route of the HTTP listener, over the node they report on.
pub fn router(node: Arc<Node>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(node)
}

/// Binds `listen` and serves [`router`] until `shutdown` turns true; returns the bound address.
pub async fn spawn(
    listen: SocketAddr,
    node: Arc<Node>,
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
        if let Err(error) = axum::serve(listener, router(node))
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
async fn metrics(State(node): State<Arc<Node>>) -> Response {
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
