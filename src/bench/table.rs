//! The exchange benchmark's figures as a table for people, with the targets beside them.

use super::exchange::ExchangeReport;

impl ExchangeReport {
    /// The figures as a table for people, with the targets beside them.
    pub fn table(&self) -> String {
        // what the machine-wide CPU figures are summed over
        let cpus = self.machine_cpus.unwrap_or(self.cores);
        let rows = [
            (
                "sweep, end to end",
                format!("{:.2} s", self.gateway_s),
                String::new(),
            ),
            (
                "  throughput",
                format!("{:.0} inquiries/s", self.inquiries_per_s),
                "≥ 10,000/s".into(),
            ),
            (
                "PostgreSQL alone, same rows",
                format!("{:.2} s", self.postgres_only_s),
                String::new(),
            ),
            (
                "  ratio sweep ÷ PostgreSQL alone",
                format!("{:.2}", self.ratio),
                "≤ 3".into(),
            ),
            (
                "storage floor (minimal audited)",
                format!("{:.2} s", self.sweep_floor_s),
                String::new(),
            ),
            (
                "  ratio sweep ÷ floor",
                format!("{:.2}", self.sweep_floor_ratio),
                "≤ 1.7".into(),
            ),
            (
                "  CPU during the sweep",
                match self.sweep_cpu_s {
                    Some(cpu) => format!(
                        "{cpu:.1} core-s, {} (hancha {}, PostgreSQL {})",
                        busy_cores(self.sweep_busy_cores, cpus),
                        core_s(self.sweep_nodes_cpu_s),
                        core_s(self.sweep_postgres_cpu_s),
                    ),
                    None => "not measured (no /proc)".into(),
                },
                String::new(),
            ),
            (
                "  CPU during the floor",
                match self.floor_cpu_s {
                    Some(cpu) => format!(
                        "{cpu:.1} core-s, {} (PostgreSQL {})",
                        busy_cores(self.floor_busy_cores, cpus),
                        core_s(self.floor_postgres_cpu_s),
                    ),
                    None => "not measured (no /proc)".into(),
                },
                String::new(),
            ),
            (
                "  ratio of CPU sweep ÷ floor",
                self.sweep_floor_cpu_ratio.map_or_else(
                    || "not measured (no /proc, or a phase under a second)".into(),
                    |ratio| format!("{ratio:.2}"),
                ),
                String::new(),
            ),
            (
                "  PostgreSQL's CPU sweep ÷ floor",
                self.sweep_floor_postgres_cpu_ratio.map_or_else(
                    || "not measured (PostgreSQL not on this machine, or a phase under a second)".into(),
                    |ratio| format!("{ratio:.2}"),
                ),
                String::new(),
            ),
            (
                "gRPC alone, same round trips",
                format!(
                    "{:.3} s for {} (p50 {:.2} ms, p99 {:.2} ms)",
                    self.transport_s,
                    self.transport_round_trips,
                    self.transport_p50_ms,
                    self.transport_p99_ms
                ),
                String::new(),
            ),
            (
                "single inquiry: floor",
                format!(
                    "{:.2} ms (its 3 flushed commits, bare, same databases)",
                    self.sync_floor_ms
                ),
                String::new(),
            ),
            (
                "single inquiry p50",
                format!("{:.2} ms = {:.2}× floor", self.sync_p50_ms, self.sync_p50_ratio),
                "≤ 2× floor".into(),
            ),
            (
                "single inquiry p99",
                format!("{:.2} ms = {:.2}× floor", self.sync_p99_ms, self.sync_p99_ratio),
                "≤ 3× floor".into(),
            ),
            (
                "single inquiry max",
                format!(
                    "{:.2} ms ({} of {} answered inline)",
                    self.sync_max_ms, self.sync_inline, self.sync
                ),
                String::new(),
            ),
            (
                "peak memory 430703 (asker)",
                format!("{:.0} MiB", self.peak_rss_asker_mb),
                "< 150 MB".into(),
            ),
            (
                "peak memory 431322 (responder)",
                format!("{:.0} MiB", self.peak_rss_responder_mb),
                "< 150 MB".into(),
            ),
            (
                "answered exactly once",
                format!(
                    "{} ({} found, {} not found)",
                    if self.answered_exactly_once { "yes" } else { "NO" },
                    self.found,
                    self.not_found
                ),
                String::new(),
            ),
        ];
        let mut out = format!(
            "hancha bench exchange: {} inquiries in batches of {}, {} single inquiries\n\
             machine: {} cores, {} MiB; PostgreSQL {} ({}), fsync={}, synchronous_commit={}\n\n",
            self.inquiries,
            self.batch,
            self.sync,
            self.cores,
            self.memory_mb,
            self.postgres.version,
            self.postgres.source,
            self.postgres.fsync,
            self.postgres.synchronous_commit
        );
        for (what, figure, target) in rows {
            let target = if target.is_empty() {
                String::new()
            } else {
                format!("   target {target}")
            };
            out.push_str(&format!("{what:<34} {figure}{target}\n"));
        }
        out.push_str(
            "\nThe asker's memory is this process's peak since the sweep began: the node plus the \
             benchmark driver.\nThe responder runs as its own `hancha serve` process.\n",
        );
        out
    }
}

/// Cores a phase kept busy, which the report leaves out for a phase too short to say
/// ([`super::cpu::SHORTEST_MEASURED_PHASE_S`]).
fn busy_cores(busy: Option<f64>, cpus: usize) -> String {
    busy.map_or_else(
        || "too short to say how many cores were busy".into(),
        |busy| format!("{busy:.2} of {cpus} cores busy"),
    )
}

/// A CPU figure that may not have been measured.
fn core_s(cpu: Option<f64>) -> String {
    cpu.map_or_else(|| "?".into(), |cpu| format!("{cpu:.1} core-s"))
}
