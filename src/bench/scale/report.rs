//! The figures of one `hancha bench scale` run, as JSON and as a table for people.

use serde::Serialize;

use crate::devdb::ServerFacts;

/// The figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleReport {
    /// Peer counties, each with its own agreement and certificate.
    pub peers: usize,
    /// Persons in the node's registry.
    pub persons: usize,
    /// Sweep inquiries, over all peers.
    pub inquiries: usize,
    /// Sweep: first submit until the last answer is stored (s).
    pub sweep_s: f64,
    /// Sweep throughput, inquiries answered per second over all peers.
    pub sweep_per_s: f64,
    /// Single inquiries the clerk made while the sweep ran.
    pub clerk: usize,
    /// Of which answered inline.
    pub clerk_inline: usize,
    /// The clerk's single inquiry, median (ms).
    pub clerk_p50_ms: f64,
    /// 99th percentile (ms).
    pub clerk_p99_ms: f64,
    /// Peak resident memory of this process during the sweep (MiB): the node, the test peer's
    /// P counties and the driver.
    pub peak_rss_mb: f64,
    /// Resident memory with every peer connected, before the sweep (MiB).
    pub rss_before_sweep_mb: f64,
    /// Most connections open at once during the sweep: `peer_connections` + `database_connections`.
    pub connections: u64,
    /// Most TCP connections between the node and its peers at once (both ways).
    pub peer_connections: u64,
    /// Most PostgreSQL connections of the node's database at once.
    pub database_connections: u64,
    /// Registry import through `hancha registry import` (persons per second).
    pub import_per_s: f64,
    /// The import, end to end (s).
    pub import_s: f64,
    /// The quarter's indicators over the registry (s).
    pub report_s: f64,
    /// Reconciliation of N shared persons with `reconcile_differences` differences, first night:
    /// every digest computed (s).
    pub reconcile_s: f64,
    /// The second night: stored digests read (s).
    pub reconcile_second_s: f64,
    /// Differences injected.
    pub reconcile_differences: usize,
    /// Differences found in the first night.
    pub reconcile_found: u64,
    /// Peak of the calling node's process over the reconciliation runs (MiB).
    pub reconcile_peak_rss_mb: f64,
    /// Every inquiry received once by its peer, answered once, its answer stored once.
    pub answered_exactly_once: bool,
    /// Inquiries the test peer received again (resends after a lost receipt; not answered twice).
    pub resent: u64,
    /// The database server.
    pub postgres: ServerFacts,
    /// CPU cores available to this process.
    pub cores: usize,
}

impl ScaleReport {
    /// The figures as a table for people.
    pub fn table(&self) -> String {
        let rows = [
            ("peers", format!("{}", self.peers)),
            ("persons", format!("{}", self.persons)),
            (
                "sweep",
                format!(
                    "{} inquiries in {:.2} s = {:.0}/s",
                    self.inquiries, self.sweep_s, self.sweep_per_s
                ),
            ),
            (
                "clerk during the sweep",
                format!(
                    "{} single inquiries ({} inline), p50 {:.1} ms, p99 {:.1} ms",
                    self.clerk, self.clerk_inline, self.clerk_p50_ms, self.clerk_p99_ms
                ),
            ),
            (
                "memory",
                format!(
                    "{:.0} MiB before the sweep, peak {:.0} MiB (node + test peer + driver)",
                    self.rss_before_sweep_mb, self.peak_rss_mb
                ),
            ),
            (
                "connections",
                format!(
                    "{} at most ({} peer TCP, {} PostgreSQL)",
                    self.connections, self.peer_connections, self.database_connections
                ),
            ),
            (
                "import",
                format!("{:.2} s = {:.0} persons/s", self.import_s, self.import_per_s),
            ),
            ("indicator report", format!("{:.3} s", self.report_s)),
            (
                "reconciliation",
                format!(
                    "{:.2} s first night, {:.2} s second ({} of {} differences found), peak {:.0} MiB",
                    self.reconcile_s,
                    self.reconcile_second_s,
                    self.reconcile_found,
                    self.reconcile_differences,
                    self.reconcile_peak_rss_mb
                ),
            ),
            (
                "bookkeeping",
                format!(
                    "exactly once: {} ({} resent)",
                    self.answered_exactly_once, self.resent
                ),
            ),
            (
                "PostgreSQL",
                format!(
                    "{} (fsync={}, synchronous_commit={}), {} cores",
                    self.postgres.version, self.postgres.fsync, self.postgres.synchronous_commit, self.cores
                ),
            ),
        ];
        let mut out = String::new();
        for (name, value) in rows {
            out.push_str(&format!("{name:<24} {value}\n"));
        }
        out
    }
}
