//! Benchmarks that start what they measure themselves: `hancha bench …`.
//!
//! # Layout
//!
//! - [`exchange`]: two county nodes over real mutual TLS, a sweep and single inquiries between
//!   them, measured side by side with what PostgreSQL alone and gRPC alone can do.
//! - [`reconcile`]: the reconciliation protocol between two in-memory sets over mutual TLS,
//!   beside sending every element and a Merkle-tree exchange ([`merkle`]); with `--nodes`, a
//!   real run between two county nodes on PostgreSQL, first night and second night.
//! - [`recovery`]: a backlog to a peer that comes back after an outage (its circuit closing),
//!   drained beside the same number of inquiries in normal running.
//! - [`scale`]: one node with P peer counties (a test peer answering as all of them, without a
//!   database) and N persons: import, indicator report, a sweep to every peer with a clerk's
//!   single inquiries alongside, memory, connections, and reconciliation at N.
//! - `databases` (private): the PostgreSQL server the nodes and the limits run on.
//! - `rig` (private): the two nodes, one in this process and one a `hancha serve` child.
//! - `population` (private): synthetic registries and the inquiries about them.
//! - `storage` and `transport` (private): the two limits, PostgreSQL alone and gRPC alone.
//! - `ledger` (private): the count on both sides that every inquiry was answered exactly once.
//! - `memory` (private): peak resident memory from `/proc`.
//! - [`cpu`]: CPU time from `/proc`: the machine's, the nodes' processes', and
//!   PostgreSQL's server processes' when it runs on the same machine.
//! - `table` (private): the figures as a table for people.
//!
//! A benchmark that ran into a bookkeeping error fails: its figures would not describe the
//! exchange the nodes are meant to do.

pub mod console;
pub mod cpu;
pub mod exchange;
mod ledger;
mod memory;
pub mod merkle;
mod population;
pub mod reconcile;
pub mod recovery;
mod rig;
pub mod scale;
mod storage;
mod table;
mod transport;

use std::time::Duration;

/// Latency percentiles of a set of samples, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Latencies {
    /// The median.
    pub p50_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
    /// The slowest sample.
    pub max_ms: f64,
}

impl Latencies {
    /// Percentiles of `samples` (nearest rank); all zero when there are none.
    pub fn of(samples: &[Duration]) -> Latencies {
        if samples.is_empty() {
            return Latencies::default();
        }
        let mut sorted: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1_000.0).collect();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        Latencies {
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: sorted[sorted.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let latencies = Latencies::of(&samples);
        assert_eq!(latencies.p50_ms, 50.0);
        assert_eq!(latencies.p99_ms, 99.0);
        assert_eq!(latencies.max_ms, 100.0);
        assert_eq!(Latencies::of(&[]), Latencies::default());
    }
}
