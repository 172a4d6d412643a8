//! `hancha sweep`: a sweep (清查) of many persons from a CSV file, as one batch of inquiries to
//! one county. Running it again with the same file adds nothing: the file's digest is the sweep
//! key, and subjects already asked under it are skipped.

use crate::present::explain;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::csv_input::{self, Encoding};
use crate::present::display;
use crate::proto::operator as pb;

/// Items per Sweep call.
const CHUNK: usize = 1_000;

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The county to ask (6-digit code).
    #[arg(long, value_name = "COUNTY")]
    to: String,
    /// outflow_status (流出人口函查) or certificate_verification (查证验证).
    #[arg(long, default_value = "outflow_status")]
    kind: String,
    /// CSV with a `resident_id` column; optional `certificate_number` and `urgent` (true/1/是).
    #[arg(long)]
    file: PathBuf,
    /// How the file is encoded.
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    encoding: Encoding,
    /// After submitting, wait this long for answers before summarising (e.g. 10s).
    #[arg(long, default_value = "3s", value_parser = display::parse_wait)]
    wait: Duration,
    /// Print one JSON object as the last line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let file = csv_input::read(&args.file, args.encoding)?;
    let column = |name: &str| file.headers.iter().position(|h| h == name);
    let Some(id_column) = column("resident_id") else {
        bail!(
            "{}: no resident_id column (columns: {})",
            args.file.display(),
            file.headers.join(", ")
        );
    };
    let certificate_column = column("certificate_number");
    let urgent_column = column("urgent");
    let items: Vec<pb::SweepItem> = file
        .records
        .iter()
        .map(|(line, cells)| {
            let cell = |index: Option<usize>| index.and_then(|i| cells.get(i)).cloned().unwrap_or_default();
            pb::SweepItem {
                line: *line,
                resident_id: cell(Some(id_column)),
                certificate_number: cell(certificate_column),
                urgent: matches!(
                    cell(urgent_column).to_lowercase().as_str(),
                    "true" | "1" | "yes" | "是"
                ),
            }
        })
        .collect();
    if file.decoded_as != "UTF-8" && !args.json {
        eprintln!("{}: read as {}", args.file.display(), file.decoded_as);
    }
    let sweep_key = format!("{}:{}:{}", args.to, args.kind, file.digest);
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let progress = ProgressBar::with_draw_target(Some(items.len() as u64), ProgressDrawTarget::stderr());
        progress.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} inquiries submitted ({eta} left)")
                .expect("a valid template"),
        );
        if args.json {
            progress.set_draw_target(ProgressDrawTarget::hidden());
        }
        let (mut accepted, mut duplicates) = (0u32, 0u32);
        let mut errors: Vec<(u32, String)> = Vec::new();
        for chunk in items.chunks(CHUNK) {
            let request = pb::SweepRequest {
                to_county: args.to.clone(),
                kind: args.kind.clone(),
                sweep_key: sweep_key.clone(),
                items: chunk.to_vec(),
            };
            let response = client.sweep(request).await.map_err(explain)?.into_inner();
            accepted += response.accepted;
            duplicates += response.duplicates;
            errors.extend(
                response
                    .results
                    .into_iter()
                    .filter(|r| !r.error.is_empty())
                    .map(|r| (r.line, r.error)),
            );
            progress.inc(chunk.len() as u64);
        }
        progress.finish_and_clear();
        let status = wait_for_answers(&mut client, &sweep_key, args.wait).await?;
        if args.json {
            let rejected: Vec<_> = errors
                .iter()
                .map(|(line, reason)| json!({ "line": line, "reason": reason }))
                .collect();
            println!(
                "{}",
                json!({
                    "file_rows": items.len(), "accepted": accepted, "already_submitted": duplicates,
                    "rejected": rejected, "answered": status.answered, "found": status.found,
                    "not_found": status.not_found, "pending": status.pending, "queued": status.queued,
                    "refused_by_peer": status.rejected, "sweep_key": sweep_key,
                })
            );
        } else {
            println!(
                "sweep of {} to {}: {} rows",
                args.file.display(),
                display::county(&args.to),
                items.len()
            );
            println!("  accepted now         {accepted}");
            println!("  already submitted    {duplicates} (an earlier run of this file)");
            println!(
                "  answered             {} (found {}, not found {})",
                status.answered, status.found, status.not_found
            );
            println!("  pending at the peer  {}", status.pending);
            println!("  not yet delivered    {}", status.queued);
            println!("  refused by the peer  {}", status.rejected);
            println!("  rejected here        {}", errors.len());
            for (line, reason) in &errors {
                println!("    line {line}: {reason}");
            }
        }
        Ok(if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Polls the sweep's state until nothing is queued any more or `wait` has passed.
async fn wait_for_answers(
    client: &mut crate::proto::operator::operator_client::OperatorClient<tonic::transport::Channel>,
    sweep_key: &str,
    wait: Duration,
) -> anyhow::Result<pb::SweepStatusResponse> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let request = pb::SweepStatusRequest {
            sweep_key: sweep_key.to_string(),
        };
        let status = client.sweep_status(request).await.map_err(explain)?.into_inner();
        let settled = status.queued == 0 && status.pending == 0;
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
