//! `hancha sweep`: a sweep (清查) of many persons from a CSV file, as one batch of inquiries to
//! one county. Running it again with the same file adds nothing: the file's digest is the sweep
//! key, and subjects already asked under it are skipped.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::csv_input::{self, Encoding, LinesOfEachId, Refusals};
use super::exit::{Exit, NodeUnavailable, UnusableFile};
use crate::csv_input::Decoded;
use crate::csv_input::sweep::{SweepColumns, sweep_key};
use crate::domain::person_row::repeated_reason;
use crate::present::{self as explain, display};
use crate::proto::operator as pb;

/// Items per Sweep call.
const CHUNK: usize = 1_000;

/// Encoded bytes per Sweep call, under the operator API's 4 MiB message limit whatever the rows
/// hold.
const CHUNK_BYTES: usize = 3 * 1024 * 1024;

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

/// What a first reading of the whole file found, before anything is sent.
struct CheckedFile {
    columns: SweepColumns,
    decoded_as: Decoded,
    /// Rows that are not all empty.
    rows: u64,
    /// The first line of each person: later rows naming the same person are refused here.
    lines_of_each_id: LinesOfEachId,
    /// The raw bytes' SHA-256: the sweep key, and what the second reading must find again.
    digest: String,
}

/// Reads the whole file: its columns, rows, repeated persons and digest. Any problem refuses the
/// file before anything is sent.
fn check_file(args: &SweepArgs) -> Result<CheckedFile, UnusableFile> {
    let mut reader = csv_input::open(&args.file, args.encoding)?;
    let columns = SweepColumns::of(reader.headers()).ok_or_else(|| {
        let columns: Vec<String> = reader
            .headers()
            .iter()
            .map(|name| name.chars().take(40).collect())
            .collect();
        UnusableFile(format!(
            "{}: no resident_id column (the header has {} columns: {})",
            args.file.display(),
            columns.len(),
            csv_input::first_of(&columns, 8)
        ))
    })?;
    let mut lines_of_each_id = LinesOfEachId::default();
    let mut rows = 0;
    for record in reader.by_ref() {
        let record = record.map_err(|error| csv_input::explain(&args.file, error))?;
        rows += 1;
        // only a row the node would take counts as the person's first: a row refused for
        // another cell does not make a later, good row of the same person a repeat
        if columns.well_formed(&record) {
            csv_input::note_person(
                &mut lines_of_each_id,
                &args.file,
                columns.resident_id_of(&record),
                record.line,
            )?;
        }
    }
    Ok(CheckedFile {
        columns,
        decoded_as: reader.decoded_as(),
        rows,
        lines_of_each_id,
        digest: reader.digest().unwrap_or_default(),
    })
}

pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let file = check_file(&args)?;
    if file.decoded_as != Decoded::Utf8 && !args.json {
        eprintln!("{}: read as {}", args.file.display(), file.decoded_as);
    }
    let sweep_key = sweep_key(&args.to, &args.kind, &file.digest);
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let progress = ProgressBar::with_draw_target(Some(file.rows), ProgressDrawTarget::stderr());
        progress.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} inquiries submitted ({eta} left)")
                .expect("a valid template"),
        );
        if args.json {
            progress.set_draw_target(ProgressDrawTarget::hidden());
        }
        let mut refusals = Refusals::default();
        let mut reader = csv_input::open(&args.file, file.decoded_as)?;
        // The file was read whole once already, so this only fails if it changed since.
        let mut unreadable = None;
        let items = std::iter::from_fn(|| {
            loop {
                match reader.next()? {
                    Ok(record) => {
                        let resident_id = file.columns.resident_id_of(&record);
                        let repeats = file
                            .columns
                            .well_formed(&record)
                            .then(|| file.lines_of_each_id.first_other_than(resident_id, record.line))
                            .flatten();
                        match repeats {
                            Some(first) => refusals.add(record.line, &repeated_reason(first)),
                            None => return Some(file.columns.item(record)),
                        }
                    }
                    Err(error) => {
                        unreadable = Some(error);
                        return None;
                    }
                }
            }
        });
        let (mut taken, mut accepted, mut duplicates) = (0u64, 0u32, 0u32);
        let mut refused_by_node = Vec::new();
        for chunk in csv_input::chunks(items, CHUNK, CHUNK_BYTES) {
            let sent = chunk.len() as u64;
            let request = pb::SweepRequest {
                to_county: args.to.clone(),
                kind: args.kind.clone(),
                sweep_key: sweep_key.clone(),
                items: chunk,
            };
            let response = match client.sweep(request).await {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    progress.abandon();
                    return Err(stopped(&args, &file, taken, status));
                }
            };
            taken += sent;
            accepted += response.accepted;
            duplicates += response.duplicates;
            refused_by_node.extend(
                response
                    .results
                    .into_iter()
                    .filter(|result| !result.error.is_empty())
                    .map(|result| (result.line, result.error)),
            );
            progress.inc(sent);
        }
        for (line, reason) in refused_by_node {
            refusals.add(line, &reason);
        }
        progress.finish_and_clear();
        // The sweep key is the digest of the first reading: what was sent must be that file.
        if unreadable.is_some() || reader.digest().as_deref() != Some(file.digest.as_str()) {
            bail!(
                "{} changed while the sweep read it; run the sweep again (what was sent is not sent twice)",
                args.file.display()
            );
        }
        let status = wait_for_answers(&mut client, &sweep_key, args.wait).await?;
        if args.json {
            let (rejected, refusals_json) = refusals.to_json();
            println!(
                "{}",
                json!({
                    "file_rows": file.rows, "accepted": accepted, "already_submitted": duplicates,
                    "rejected": rejected, "rejected_rows": refusals.rows(), "refusals": refusals_json,
                    "answered": status.answered, "found": status.found,
                    "not_found": status.not_found, "pending": status.pending, "queued": status.queued,
                    "refused_by_peer": status.rejected, "sweep_key": sweep_key,
                })
            );
        } else {
            println!(
                "sweep of {} to {}: {} rows",
                args.file.display(),
                display::county(&args.to),
                file.rows
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
            println!("  rejected here        {}", refusals.rows());
            for line in refusals.lines() {
                println!("    {line}");
            }
        }
        Ok(if refusals.rows() == 0 {
            Exit::Done
        } else {
            Exit::Refused
        }
        .into())
    })
}

/// Why the sweep stopped part-way, in one line, with how to go on: `taken` rows were taken by the
/// node before the call that failed.
fn stopped(args: &SweepArgs, file: &CheckedFile, taken: u64, status: tonic::Status) -> anyhow::Error {
    let node = &args.node.address;
    let progress = format!(
        "after {} of {} rows were accepted",
        crate::present::display::thousands(taken),
        crate::present::display::thousands(file.rows)
    );
    let rerun = "run the same command again to send the rest — nothing is sent twice";
    match explain::went_away(&status) {
        Some(gone) => anyhow::Error::new(NodeUnavailable(format!(
            "the node at {node} went away {progress} ({}); {rerun}",
            gone.cause
        ))),
        None => anyhow::anyhow!(
            "the node at {node} refused the sweep {progress}: {:#}; {rerun}",
            explain::explain(status)
        ),
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
            list_inquiries: false,
        };
        let status = client
            .sweep_status(request)
            .await
            .map_err(explain::explain)?
            .into_inner();
        let settled = status.queued == 0 && status.pending == 0;
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
