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
use crate::csv_input::{CsvError, Decoded, Record};
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
    // A first reading checks the whole file and takes its digest, the sweep key, before anything
    // is sent; the second sends it a chunk at a time.
    let reader = csv_input::open(&args.file, args.encoding)?;
    let columns = SweepColumns::of(reader.headers()).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no resident_id column (columns: {})",
            args.file.display(),
            reader.headers().join(", ")
        )
    })?;
    let decoded_as = reader.decoded_as();
    let file = reader
        .summarize()
        .map_err(|error| csv_input::explain(&args.file, error))?;
    if decoded_as != Decoded::Utf8 && !args.json {
        eprintln!("{}: read as {decoded_as}", args.file.display());
    }
    let sweep_key = format!("{}:{}:{}", args.to, args.kind, file.digest);
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let progress = ProgressBar::with_draw_target(Some(file.records), ProgressDrawTarget::stderr());
        progress.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} inquiries submitted ({eta} left)")
                .expect("a valid template"),
        );
        if args.json {
            progress.set_draw_target(ProgressDrawTarget::hidden());
        }
        let mut reader = csv_input::open(&args.file, decoded_as)?;
        let (mut accepted, mut duplicates) = (0u32, 0u32);
        let mut errors: Vec<(u32, String)> = Vec::new();
        loop {
            let chunk = columns
                .items(reader.by_ref().take(CHUNK))
                .map_err(|error| csv_input::explain(&args.file, error))?;
            if chunk.is_empty() {
                break;
            }
            let sent = chunk.len() as u64;
            let request = pb::SweepRequest {
                to_county: args.to.clone(),
                kind: args.kind.clone(),
                sweep_key: sweep_key.clone(),
                items: chunk,
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
            progress.inc(sent);
        }
        progress.finish_and_clear();
        // The sweep key is the digest of the first reading: what was sent must be that file.
        if reader.digest().as_deref() != Some(file.digest.as_str()) {
            bail!(
                "{} changed while the sweep read it; run the sweep again",
                args.file.display()
            );
        }
        let status = wait_for_answers(&mut client, &sweep_key, args.wait).await?;
        if args.json {
            let rejected: Vec<_> = errors
                .iter()
                .map(|(line, reason)| json!({ "line": line, "reason": reason }))
                .collect();
            println!(
                "{}",
                json!({
                    "file_rows": file.records, "accepted": accepted, "already_submitted": duplicates,
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
                file.records
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

/// Where a sweep file's columns are, found once from the header and used for every chunk.
struct SweepColumns {
    /// The person asked about: the one column a sweep file must have.
    resident_id: usize,
    /// For certificate verification (查证验证); empty when the column is absent.
    certificate_number: Option<usize>,
    /// Marks rows the peer should answer by the urgent deadline.
    urgent: Option<usize>,
}

impl SweepColumns {
    /// The columns in `headers`; `None` without a `resident_id` column.
    fn of(headers: &[String]) -> Option<Self> {
        let column = |name: &str| headers.iter().position(|header| header == name);
        Some(Self {
            resident_id: column("resident_id")?,
            certificate_number: column("certificate_number"),
            urgent: column("urgent"),
        })
    }

    /// The sweep items for `records`.
    fn items(
        &self,
        records: impl Iterator<Item = Result<Record, CsvError>>,
    ) -> Result<Vec<pb::SweepItem>, CsvError> {
        records
            .map(|record| {
                let Record { line, cells } = record?;
                let cell =
                    |index: Option<usize>| index.and_then(|i| cells.get(i)).cloned().unwrap_or_default();
                Ok(pb::SweepItem {
                    line,
                    resident_id: cell(Some(self.resident_id)),
                    certificate_number: cell(self.certificate_number),
                    urgent: matches!(
                        cell(self.urgent).to_lowercase().as_str(),
                        "true" | "1" | "yes" | "是"
                    ),
                })
            })
            .collect()
    }
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
