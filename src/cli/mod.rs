//! The `hancha` command line: one file per subcommand, each with its `Args` and `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agreement;
mod answer;
mod ask;
mod bench;
mod certs;
pub mod client;
mod csv_input;
mod demo;
mod dev;
mod id;
mod pending;
mod reconcile;
mod registry;
mod report;
mod serve;
mod show;
mod sweep;

/// 函查 hancha: the gateway through which county governments exchange inquiries (函查) and
/// status confirmations (反馈) about people registered in one county and living in another.
#[derive(Debug, Parser)]
#[command(name = "hancha", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Three county nodes on this machine playing the exchange end to end: a certificate checked
    /// at a window, a sweep surviving a node's restart, answers by hand, indicators, a summary.
    Demo(demo::DemoArgs),
    /// Run this county's node: the peer listener and the workers.
    Serve(serve::ServeArgs),
    /// Ask another county about one person and wait briefly for the answer (a clerk's window).
    Ask(ask::AskArgs),
    /// Send a sweep (清查): inquiries about every person in a CSV file to one county.
    Sweep(sweep::SweepArgs),
    /// List inquiries waiting for our answer (or, with --outbound, for others'), by deadline.
    Pending(pending::PendingArgs),
    /// Show one inquiry with its history.
    Show(show::ShowArgs),
    /// Answer a pending inquiry by hand.
    Answer(answer::AnswerArgs),
    /// The four indicators (登记率, 办证率, 持验证率, 流出人口函查率) per township and for the county.
    Report(report::ReportArgs),
    Reconcile(reconcile::ReconcileArgs),
    /// The county's registry of persons: import from CSV.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Check resident ID numbers (公民身份号码) by hand or from scripts.
    #[command(subcommand)]
    Id(id::IdCommand),
    /// Validate agreements (双向协议) and show their canonical hash.
    #[command(subcommand)]
    Agreement(agreement::AgreementCommand),
    /// Create certificates for development and tests (never for production).
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Developer tools: a throwaway PostgreSQL for tests, demos and benchmarks.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Benchmarks that start their own nodes and databases.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Parses the command line, runs the command and returns the process exit code.
///
/// Exit codes: 0 success, 1 the command ran and found something invalid or failed, 2 usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Ask(args) => ask::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Pending(args) => pending::run(args),
        Command::Show(args) => show::run(args),
        Command::Answer(args) => answer::run(args),
        Command::Report(args) => report::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Registry(command) => registry::run(command),
        Command::Id(command) => id::run(command),
        Command::Agreement(command) => agreement::run(command),
        Command::Certs(command) => certs::run(command),
        Command::Dev(command) => dev::run(command),
        Command::Bench(command) => bench::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // A certificate refused in the handshake fails the call with a bare "operation was
            // canceled"; the alert the node sent says why.
            match client::handshake_refusal() {
                Some(refusal) => eprintln!("error: {refusal}"),
                None => eprintln!("error: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`), `RUST_LOG_FORMAT=json` switches to JSON.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("RUST_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
