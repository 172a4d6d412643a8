//! `hancha bench`: benchmarks that start everything they measure themselves.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::bench::exchange::{self, ExchangeOptions};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// A sweep and single inquiries between two county nodes over real mutual TLS, each on its
    /// own PostgreSQL database with production durability, measured beside PostgreSQL alone
    /// writing the same rows and gRPC alone making the same round trips.
    ///
    /// Uses the PostgreSQL at DATABASE_URL when it is set and reachable (fresh databases, dropped
    /// at the end; the role needs CREATEDB), otherwise starts a throwaway PostgreSQL with fsync on
    /// and removes it at the end. Fails, without figures, unless every inquiry was answered
    /// exactly once on both sides.
    Exchange(ExchangeArgs),
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

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    let BenchCommand::Exchange(args) = command;
    init_logging();
    let options = ExchangeOptions {
        inquiries: args.inquiries as usize,
        batch: args.batch as usize,
        sync: args.sync as usize,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        tokio::select! {
            report = exchange::run(options, &|line| eprintln!("bench: {line}")) => report.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    })?;
    let Some(report) = report else {
        eprintln!("bench: interrupted");
        return Ok(ExitCode::from(130));
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}

/// The node in this process logs warnings and errors only, unless `RUST_LOG` says otherwise:
/// a log line per batch would be measured too.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
