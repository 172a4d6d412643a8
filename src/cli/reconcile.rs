//! `hancha reconcile`: reconcile with a peer county now (对账), list past runs, and export the
//! person-level differences for the township offices.

use crate::present::explain;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::client::{NodeArgs, runtime};
use crate::present::display;
use crate::present::reconcile::{bytes, write_differences_csv};
use crate::proto::operator as pb;
use crate::proto::operator::reconcile_progress::Step;

/// Reconcile (对账) with a peer county now (`--with`), or look at past runs (`reports`).
///
/// A run compares two sets with the peer, sending only what differs: the messages the two
/// counties exchanged (a lost confirmation is delivered again) and the people both should know
/// (a person one side does not know, or knows differently, is reported, and the origin opens
/// an outflow inquiry about them, up to the configured number per run). Runs also start by
/// themselves on each agreement's schedule (nightly at 02:00 China Standard Time by default).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReconcileArgs {
    #[command(subcommand)]
    command: Option<ReconcileCommand>,
    /// The peer county to reconcile with (6-digit code).
    #[arg(long = "with", value_name = "COUNTY")]
    with: Option<String>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, Subcommand)]
enum ReconcileCommand {
    /// Past runs, newest first: when, set sizes, differences found, repaired, reported, bytes
    /// sent and duration. With `--csv`, the person-level differences instead, for the township
    /// offices.
    Reports(ReportsArgs),
}

#[derive(Debug, Args)]
struct ReportsArgs {
    /// Only runs with this peer county.
    #[arg(long = "with", value_name = "COUNTY")]
    with: Option<String>,
    /// How many runs to list.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Write the person-level differences as CSV (UTF-8, header row): when found, peer,
    /// township, ID number, flow, difference, action taken, inquiry opened.
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    match (args.command, args.with) {
        (Some(ReconcileCommand::Reports(reports)), _) => run_reports(reports),
        (None, Some(with)) => run_now(&args.node, with),
        (None, None) => {
            eprintln!(
                "error: name the peer county: `hancha reconcile --with COUNTY`, or list past runs with \
                 `hancha reconcile reports`"
            );
            Ok(ExitCode::from(2))
        }
    }
}

fn run_now(node: &NodeArgs, with: String) -> anyhow::Result<ExitCode> {
    if let Err(error) = crate::domain::division::CountyCode::parse(&with) {
        anyhow::bail!("--with {with}: {error}");
    }
    runtime()?.block_on(async {
        let mut client = node.connect().await?;
        println!("reconciling with {}", display::county(&with));
        let mut stream = client
            .reconcile(pb::ReconcileRequest { with_county: with })
            .await
            .map_err(explain)?
            .into_inner();
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
        let mut runs = Vec::new();
        loop {
            let progress = match stream.message().await {
                Ok(Some(progress)) => progress,
                Ok(None) => break,
                Err(status) => {
                    spinner.finish_and_clear();
                    return Err(explain(status));
                }
            };
            let set = progress.set.replace('_', " ");
            match progress.step {
                Some(Step::Loaded(size)) => spinner.set_message(format!("{set}: {size} here")),
                Some(Step::PeerSize(size)) => spinner.set_message(format!("{set}: {size} at the peer")),
                Some(Step::Symbols(sent)) => spinner.set_message(format!("{set}: {sent} coded symbols sent")),
                Some(Step::FallingBack(_)) => {
                    spinner.set_message(format!("{set}: large difference, sending every element"))
                }
                Some(Step::Decoded(differences)) => {
                    spinner.set_message(format!("{set}: {differences} differences found, repairing"))
                }
                Some(Step::Done(run)) => {
                    // On stdout, above the spinner (which draws on stderr, and only on a terminal).
                    spinner.suspend(|| println!("{}", summary_line(&run)));
                    runs.push(run);
                }
                None => {}
            }
            spinner.tick();
        }
        spinner.finish_and_clear();
        let total: u32 = runs.iter().map(|run| run.differences).sum();
        if total == 0 {
            println!("both sides agree: nothing to repair");
        } else {
            println!("see `hancha reconcile reports` for past runs, `--csv` for the persons");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn summary_line(run: &pb::ReconcileRun) -> String {
    format!(
        "✓ {:<13} {} here, {} at the peer: {} differences; here: re-delivered {}, inquiries opened {}, \
         reported {}; at the peer: re-delivered {}, inquiries opened {}, reported {}; {} in {:.2} s",
        run.set.replace('_', " "),
        run.local_size,
        run.peer_size,
        run.differences,
        run.repaired,
        run.inquiries_opened,
        run.reported,
        run.peer_repaired,
        run.peer_inquiries_opened,
        run.peer_reported,
        bytes(run.bytes_sent + run.bytes_received),
        run.seconds
    )
}

fn run_reports(args: ReportsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let with_county = args.with.clone().unwrap_or_default();
        if args.csv {
            let response = client
                .list_reconcile_differences(pb::ListReconcileDifferencesRequest { with_county })
                .await
                .map_err(explain)?
                .into_inner();
            write_differences_csv(std::io::stdout(), &response.differences)?;
            return Ok(ExitCode::SUCCESS);
        }
        let response = client
            .list_reconcile_runs(pb::ListReconcileRunsRequest {
                with_county,
                limit: args.limit,
            })
            .await
            .map_err(explain)?
            .into_inner();
        if response.runs.is_empty() {
            println!("no reconciliation runs yet");
            return Ok(ExitCode::SUCCESS);
        }
        let rows: Vec<Vec<String>> = response
            .runs
            .iter()
            .map(|run| {
                vec![
                    display::time(run.started_at.as_ref()),
                    display::county(&run.peer_county),
                    run.set.clone(),
                    run.role.clone(),
                    if run.error.is_empty() {
                        run.outcome.clone()
                    } else {
                        format!("{} ({})", run.outcome, run.error)
                    },
                    run.local_size.to_string(),
                    run.peer_size.to_string(),
                    run.differences.to_string(),
                    run.repaired.to_string(),
                    run.inquiries_opened.to_string(),
                    run.reported.to_string(),
                    bytes(run.bytes_sent + run.bytes_received),
                    format!("{:.2}", run.seconds),
                ]
            })
            .collect();
        println!(
            "{}",
            display::table(
                &[
                    "started",
                    "peer",
                    "set",
                    "role",
                    "outcome",
                    "here",
                    "peer has",
                    "differences",
                    "re-delivered",
                    "inquiries",
                    "reported",
                    "bytes",
                    "seconds",
                ],
                &rows,
            )
        );
        Ok(ExitCode::SUCCESS)
    })
}
