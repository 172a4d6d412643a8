//! The figures of `hancha bench reconcile --nodes`, as one JSON object or a table for people.

use serde::Serialize;

use super::nodes::Anatomy;
use super::people::SharedPeople;
use crate::devdb::ServerFacts;

/// The shared-people set of one run, seen from 430703 (the caller).
#[derive(Clone, Debug, Serialize)]
pub struct PeopleRun {
    /// Persons in 430703's set.
    pub local_size: u64,
    /// Persons in 431322's set, as it announced.
    pub peer_size: u64,
    /// Elements in the difference, as 430703 recorded it.
    pub differences: u64,
    /// As 431322 recorded it.
    pub peer_differences: u64,
    /// Coded symbols sent.
    pub symbols: u64,
    /// Whether every element was sent instead.
    pub fell_back: bool,
    /// Bytes 430703 sent, gRPC framing included.
    pub bytes_sent: u64,
    /// Bytes it received.
    pub bytes_received: u64,
    /// The set, from reading it until both sides committed (s).
    pub seconds: f64,
    /// Reading and keying 430703's set, computing the missing digests first (s).
    pub load_seconds: f64,
    /// From `begin` until 431322 was ready: it read and keyed its own set (s).
    pub peer_load_seconds: f64,
    /// Coding, sending and decoding symbols (s).
    pub protocol_seconds: f64,
    /// Naming the difference and committing it, 431322 then 430703 (s).
    pub commit_seconds: f64,
    /// After the set: dropping it and releasing the run's lock (s).
    pub after_seconds: f64,
    /// Outflow inquiries 430703 opened.
    pub inquiries_opened: u32,
    /// Differences 430703 reported (over the cap, already asked, or not its to ask).
    pub reported: u32,
    /// Differences 431322 reported.
    pub peer_reported: u32,
}

/// One `reconcile_with`.
#[derive(Clone, Debug, Serialize)]
pub struct NodeRun {
    /// Both sets, end to end (s).
    pub seconds: f64,
    /// 430703's persons without a stored digest (or one for other fields) before the run.
    pub digests_to_compute: u64,
    /// 431322's.
    pub peer_digests_to_compute: u64,
    /// The messages set (s).
    pub messages_seconds: f64,
    /// The shared-people set.
    pub people: PeopleRun,
    /// Resident memory of this process when the run started (MiB): what the allocator kept of
    /// earlier work counts in the peak too.
    pub rss_at_start_mb: f64,
    /// Of 431322's process (MiB).
    pub responder_rss_at_start_mb: f64,
    /// Peak resident memory of this process (430703 and the benchmark) during the run (MiB).
    pub peak_rss_mb: f64,
    /// Of 431322's process (MiB).
    pub responder_peak_rss_mb: f64,
    /// Whether both peaks are this run's alone (the kernel could reset them before it).
    pub peak_rss_per_run: bool,
    /// Persons asked about again, already asked about in the previous run (their inquiry has
    /// been answered meanwhile, and they still differ).
    pub reasked: usize,
}

/// The figures.
#[derive(Clone, Debug, Serialize)]
pub struct NodesReport {
    /// Persons in 430703's set.
    pub n: usize,
    /// Element differences injected.
    pub d: usize,
    /// Persons both know differently (two elements each).
    pub changed: usize,
    /// Persons only 430703 knows.
    pub origin_only: usize,
    /// Persons only 431322 knows.
    pub destination_only: usize,
    /// Writing both registries, both nodes at once (s); not part of reconciliation.
    pub import_seconds: f64,
    /// Persons rewritten on each side between the runs.
    pub rewritten: usize,
    /// The first run, both sets (s): every digest computed and stored.
    pub first_run_seconds: f64,
    /// The second run (s): stored digests read, the rewritten ones computed.
    pub second_run_seconds: f64,
    /// Shared-people differences found in the first run.
    pub differences: u64,
    /// Coded symbols of the first run's shared-people set.
    pub symbols: u64,
    /// Its bytes, both ways.
    pub bytes: u64,
    /// Peak of this process over the runs (MiB).
    pub peak_rss_mb: f64,
    /// Peak of 431322's process over the runs (MiB).
    pub responder_peak_rss_mb: f64,
    /// 430703's set read on its own, every digest stored (s).
    pub read_seconds: f64,
    /// Keyed and sorted on its own (s).
    pub key_seconds: f64,
    /// Every person's digest computed in memory (s).
    pub digest_seconds: f64,
    /// The most outflow inquiries one run may open.
    pub inquiry_cap: usize,
    /// The first run.
    pub first_run: NodeRun,
    /// The second run.
    pub second_run: NodeRun,
    /// The database server.
    pub postgres: ServerFacts,
    /// CPU cores available to this process.
    pub cores: usize,
}

impl NodesReport {
    /// The report of two checked runs.
    pub fn new(
        people: &SharedPeople,
        import_seconds: f64,
        rewritten: usize,
        inquiry_cap: usize,
        anatomy: Anatomy,
        [first_run, second_run]: [NodeRun; 2],
        postgres: ServerFacts,
    ) -> NodesReport {
        NodesReport {
            n: people.n,
            d: people.d,
            changed: people.changed,
            origin_only: people.origin_only,
            destination_only: people.destination_only,
            import_seconds,
            rewritten,
            first_run_seconds: first_run.seconds,
            second_run_seconds: second_run.seconds,
            differences: first_run.people.differences,
            symbols: first_run.people.symbols,
            bytes: first_run.people.bytes_sent + first_run.people.bytes_received,
            peak_rss_mb: first_run.peak_rss_mb.max(second_run.peak_rss_mb),
            responder_peak_rss_mb: first_run
                .responder_peak_rss_mb
                .max(second_run.responder_peak_rss_mb),
            read_seconds: anatomy.read_seconds,
            key_seconds: anatomy.key_seconds,
            digest_seconds: anatomy.digest_seconds,
            inquiry_cap,
            first_run,
            second_run,
            postgres,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }

    /// The figures as a table for people, the two runs side by side.
    pub fn table(&self) -> String {
        let (first, second) = (&self.first_run, &self.second_run);
        let both = |figure: &dyn Fn(&NodeRun) -> String| (figure(first), figure(second));
        let seconds = |value: f64| format!("{value:.2} s");
        let rows: Vec<(&str, (String, String))> = vec![
            (
                "digests to compute (430703 / 431322)",
                both(&|run| format!("{} / {}", run.digests_to_compute, run.peer_digests_to_compute)),
            ),
            ("reconcile_with, both sets", both(&|run| seconds(run.seconds))),
            ("  messages set", both(&|run| seconds(run.messages_seconds))),
            ("  shared-people set", both(&|run| seconds(run.people.seconds))),
            (
                "    430703 reads + keys",
                both(&|run| seconds(run.people.load_seconds)),
            ),
            (
                "    431322 reads + keys (until ready)",
                both(&|run| seconds(run.people.peer_load_seconds)),
            ),
            (
                "    protocol (symbols, decoding)",
                both(&|run| seconds(run.people.protocol_seconds)),
            ),
            (
                "    commit (431322, then 430703)",
                both(&|run| seconds(run.people.commit_seconds)),
            ),
            (
                "    dropping the set, the lock",
                both(&|run| seconds(run.people.after_seconds)),
            ),
            (
                "  set sizes (430703 / 431322)",
                both(&|run| format!("{} / {}", run.people.local_size, run.people.peer_size)),
            ),
            (
                "  differences (430703 / 431322)",
                both(&|run| format!("{} / {}", run.people.differences, run.people.peer_differences)),
            ),
            (
                "  coded symbols",
                both(&|run| {
                    let fell_back = if run.people.fell_back { " (fell back)" } else { "" };
                    format!("{}{fell_back}", run.people.symbols)
                }),
            ),
            (
                "  bytes (sent + received)",
                both(&|run| format!("{} + {}", run.people.bytes_sent, run.people.bytes_received)),
            ),
            (
                "  inquiries opened",
                both(&|run| format!("{} (cap {})", run.people.inquiries_opened, self.inquiry_cap)),
            ),
            (
                "    asked again (asked the run before)",
                both(&|run| run.reasked.to_string()),
            ),
            (
                "  reported (430703 / 431322)",
                both(&|run| format!("{} / {}", run.people.reported, run.people.peer_reported)),
            ),
            (
                "peak memory, 430703 (this process)",
                both(&|run| format!("{:.0} MiB (from {:.0})", run.peak_rss_mb, run.rss_at_start_mb)),
            ),
            (
                "peak memory, 431322 (hancha serve)",
                both(&|run| {
                    format!(
                        "{:.0} MiB (from {:.0})",
                        run.responder_peak_rss_mb, run.responder_rss_at_start_mb
                    )
                }),
            ),
        ];
        let mut out = format!(
            "hancha bench reconcile --nodes: 430703 (this process) and 431322 (hancha serve), each on its own \
             PostgreSQL\nshared persons: 430703 holds {}, 431322 holds {}; {} element differences injected \
             ({} persons known differently, {} only at 430703, {} only at 431322)\n\
             PostgreSQL {} ({}), fsync={}; {} cores; gRPC with mutual TLS on 127.0.0.1\n\n",
            self.first_run.people.local_size,
            self.first_run.people.peer_size,
            self.d,
            self.changed,
            self.origin_only,
            self.destination_only,
            self.postgres.version,
            self.postgres.source,
            self.postgres.fsync,
            self.cores,
        );
        out.push_str(&format!(
            "{:<40} {:.1} s (not reconciliation: both registries, {} persons a call)\n\n",
            "import",
            self.import_seconds,
            super::nodes::IMPORT_CHUNK
        ));
        out.push_str(&format!("{:<40} {:>18} {:>18}\n", "", "first run", "second run"));
        for (what, (first, second)) in rows {
            out.push_str(&format!("{what:<40} {first:>18} {second:>18}\n"));
        }
        out.push_str(&format!(
            "\n430703's set of {} alone, every digest stored: read {:.2} s, key + sort {:.2} s; \
             the SHA-256 digests of every person, in memory: {:.2} s\n",
            self.n, self.read_seconds, self.key_seconds, self.digest_seconds
        ));
        out.push_str(&format!(
            "\nThe first run computes and stores every person's digest on both sides; between the runs {} \
             persons are\nrewritten on each side (a status field corrected alike on both sides), and the second run computes \
             only theirs.\nBoth runs found the injected difference on both sides, person by person. \
             VACUUM (ANALYZE) ran after\nthe import and between the runs, as autovacuum would before a night. \
             Bytes count gRPC frames, not TLS.\n",
            self.rewritten
        ));
        if !(first.peak_rss_per_run && second.peak_rss_per_run) {
            out.push_str("Peak memory: since the process started (the kernel would not reset the peak).\n");
        }
        out
    }
}
