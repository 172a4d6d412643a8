//! The transport limit: gRPC round trips over the same kind of mutual-TLS channel the delivery
//! worker uses, to a handler that does nothing (the standard health check on the answering
//! node's peer port), one after another.

use std::time::{Duration, Instant};

use anyhow::Context;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Makes `count` health-check calls on `channel`, each after the previous one answered, and
/// returns how long each took.
pub async fn round_trips(channel: Channel, count: usize) -> anyhow::Result<Vec<Duration>> {
    let mut health = HealthClient::new(channel);
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        health
            .check(HealthCheckRequest::default())
            .await
            .context("health check on the answering node")?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}
