//! `hancha bench`: benchmarks that start everything they measure themselves.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::bench::exchange::{self, ExchangeOptions};
use crate::bench::reconcile::nodes::{self, NodesOptions};
use crate::bench::reconcile::{self, ReconcileOptions};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// A sweep and single inquiries between two county nodes over real mutual TLS, each on its
    /// own PostgreSQL database with production durability, measured beside PostgreSQL alone
    /// writing the same rows and gRPC alone making the same round trips.
    ///
    /// Also measures the storage floor (PostgreSQL alone writing the least an audited exchange
    /// of the same inquiries can durably write; sweep ÷ floor, target ≤ 1.7) and the CPU each
    /// phase used, from Linux /proc: the whole machine's, the two nodes' processes', and
    /// PostgreSQL's own server processes' when it runs on this machine.
    ///
    /// Uses the PostgreSQL at DATABASE_URL when it is set and reachable (fresh databases, dropped
    /// at the end; the role needs CREATEDB), otherwise starts a throwaway PostgreSQL with fsync on
    /// and removes it at the end. Fails, without figures, unless every inquiry was answered
    /// exactly once on both sides.
    Exchange(ExchangeArgs),
    /// Reconciliation of two sets of N elements differing in D, over a real gRPC stream with
    /// mutual TLS on 127.0.0.1, beside the two baselines: sending every element (over the same
    /// stream) and a Merkle-tree exchange (computed in memory).
    ///
    /// ⌈D/2⌉ elements are only in the caller's set, ⌊D/2⌋ only in the peer's. Prints coded
    /// symbols ÷ D, bytes on the wire, seconds and peak memory, medians over the runs. Needs no
    /// database. Fails, without figures, unless every method found exactly the injected
    /// difference.
    ///
    /// With --nodes: a real node's run instead. Two county nodes (one in this process, one a
    /// `hancha serve` child) on PostgreSQL as `bench exchange` provisions it, with registries of
    /// N shared persons differing in D elements (a person known differently counts twice); the
    /// import is timed on its own, then the caller reconciles twice: the first run computes and
    /// stores every person's digest, the second reads them (100 persons rewritten in between).
    /// Prints each run's phases (read + key, the peer's, protocol, commit), set sizes,
    /// differences, symbols, bytes and both processes' peak memory. Fails, without figures,
    /// unless both runs found exactly the injected difference on both sides and opened no more
    /// inquiries than the cap.
    Reconcile(ReconcileArgs),
    /// The web console's first page of the work queue (工作台) with many inquiries waiting,
    /// timed beside the same rows as JSON from the HTTP API (`POST /v1/ListPending`).
    ///
    /// Starts the two nodes of `bench exchange` on PostgreSQL provisioned the same way, fills the
    /// asking county's registry and its queue (the inquiries stored through the exchange's
    /// intake, some overdue), then requests the page and the API call one after the other.
    /// Prints medians and 95th percentiles, the page's size and page ÷ API; the target is a first
    /// page under 200 ms in a release build.
    Console(ConsoleArgs),
    /// A backlog to a peer that was away, drained after it comes back, beside the same number
    /// of inquiries delivered in normal running.
    ///
    /// Starts the two nodes of `bench exchange` (production limits) on PostgreSQL provisioned
    /// the same way; times N inquiries to 新化县 in normal running; kills 新化县 with SIGKILL,
    /// queues N more, waits --outage seconds (the circuit to 新化县 opens and its probes fail),
    /// starts it again, and times the first delivery after it serves and the drain of the
    /// backlog. Prints both rates and their ratio (target: at least 0.8).
    Recovery(RecoveryArgs),
    /// One node with P peer counties and N persons, measured in one run: registry import of N
    /// persons (through `hancha registry import`), the quarter's indicator report, a sweep to all
    /// P peers at once with a clerk's single inquiries to one peer meanwhile (p50, p99), peak
    /// memory, open connections (peer TCP both ways and PostgreSQL), and reconciliation of N
    /// shared persons with D differences.
    ///
    /// The node under test (430703) runs in this process on PostgreSQL provisioned as `bench
    /// exchange` does. Its P peers are a test peer in the same process: P counties, each with its
    /// own listener, certificate from the run's CA and signed agreement, answering inquiries as
    /// a node does (receipts, answers delivered back through the node's peer API with that
    /// county's certificate, inline answers for single inquiries) but without a database, so
    /// that the figures are the node's, not P PostgreSQL pools'. Reconciliation needs a real
    /// peer: it runs as `bench reconcile --nodes --n N --d D`, between two nodes.
    ///
    /// Fails, without figures, unless every inquiry was received once, answered once and its
    /// answer stored once, counted on the node and at the test peer.
    Scale(ScaleArgs),
}

#[derive(Debug, Args)]
pub struct RecoveryArgs {
    /// Inquiries delivered in normal running, and in the backlog the outage builds.
    #[arg(long, default_value_t = 12_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    inquiries: u32,
    /// Seconds the peer stays away.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3_600))]
    outage: u32,
    /// Print one JSON object with the figures as the last line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Peer counties, each with its own agreement and certificate.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=2_900))]
    peers: u32,
    /// Persons in the node's registry (and shared persons in the reconciliation run).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    persons: u32,
    /// Sweep inquiries in all, spread evenly over the peers.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    inquiries: u32,
    /// Differences between the two registries of the reconciliation run (at most 2 × persons).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(0..=20_000_000))]
    differences: u32,
    /// Print one JSON object with the figures as the last line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Inquiries waiting for an answer.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pending: u32,
    /// Requests of each kind; the figures are medians and 95th percentiles.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    runs: u32,
    /// Print one JSON object with the figures as the last line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ExchangeArgs {
    /// Inquiries in the sweep.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    inquiries: u32,
    /// Messages per batch between the nodes (at most the nodes' limit of 2,000 per batch).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=2_000))]
    batch: u32,
    /// Single inquiries made one at a time, each waiting for its inline answer.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    sync: u32,
    /// Print one JSON object with the figures as the last line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Elements in each set (with --nodes: shared persons in the caller's registry).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    n: u32,
    /// Elements in exactly one of the two sets (at most 2·N; with --nodes, about 2·N).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(0..=20_000_000))]
    d: u32,
    /// Runs, each on freshly drawn sets; the figures are medians.
    #[arg(long, conflicts_with = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Seed of the first run's sets (run k uses seed + k).
    #[arg(long, conflicts_with = "nodes", default_value_t = 1)]
    seed: u64,
    /// Two county nodes on PostgreSQL, reconciling their registries twice, instead of two
    /// in-memory sets.
    #[arg(long)]
    nodes: bool,
    /// Print one JSON object with the figures as the last line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    init_logging();
    let say = |line: &str| eprintln!("bench: {line}");
    match command {
        BenchCommand::Exchange(args) => {
            let options = ExchangeOptions {
                inquiries: args.inquiries as usize,
                batch: args.batch as usize,
                sync: args.sync as usize,
            };
            let report = until_interrupted(exchange::run(options, &say))?;
            print(report, args.json, |report| report.table())
        }
        BenchCommand::Console(args) => {
            let options = crate::bench::console::ConsoleOptions {
                pending: args.pending as usize,
                runs: args.runs as usize,
            };
            let report = until_interrupted(crate::bench::console::run(options, &say))?;
            print(report, args.json, |report| report.table())
        }
        BenchCommand::Recovery(args) => {
            let options = crate::bench::recovery::RecoveryOptions {
                inquiries: args.inquiries as usize,
                outage: std::time::Duration::from_secs(u64::from(args.outage)),
            };
            let report = until_interrupted(crate::bench::recovery::run(options, &say))?;
            print(report, args.json, |report| report.table())
        }
        BenchCommand::Scale(args) => {
            let options = crate::bench::scale::ScaleOptions {
                peers: args.peers as usize,
                persons: args.persons as usize,
                inquiries: args.inquiries as usize,
                differences: (args.differences as usize).min(2 * args.persons as usize),
            };
            let report = until_interrupted(crate::bench::scale::run(options, &say))?;
            print(report, args.json, |report| report.table())
        }
        BenchCommand::Reconcile(args) if args.nodes => {
            let options = NodesOptions {
                n: args.n as usize,
                d: args.d as usize,
            };
            let report = until_interrupted(nodes::run(options, &say))?;
            print(report, args.json, |report| report.table())
        }
        BenchCommand::Reconcile(args) => {
            let options = ReconcileOptions {
                n: args.n as usize,
                d: args.d as usize,
                runs: args.runs as usize,
                seed: args.seed,
            };
            let report = until_interrupted(reconcile::run(options, &say))?;
            print(report, args.json, |report| report.table())
        }
    }
}

/// Runs a benchmark on a fresh runtime; `None` when Ctrl-C came first.
fn until_interrupted<T>(benchmark: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<Option<T>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        tokio::select! {
            report = benchmark => report.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    })
}

/// Prints the report as a table, or as one JSON line; exit code 130 if there is none.
fn print<R: serde::Serialize>(
    report: Option<R>,
    json: bool,
    table: impl Fn(&R) -> String,
) -> anyhow::Result<ExitCode> {
    let Some(report) = report else {
        eprintln!("bench: interrupted");
        return Ok(ExitCode::from(130));
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The node in this process logs warnings and errors only, unless `RUST_LOG` says otherwise:
/// a log line per batch would be measured too.
fn init_logging() {
    super::init_tracing_with("warn");
}
