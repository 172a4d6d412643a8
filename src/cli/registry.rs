//! `hancha registry import`: upserts the county's registry of persons from a CSV file, as
//! townships and the county's own systems export it. Each bad row is reported with its line and
//! reason and skipped; good rows are kept; a row is never half-written.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::csv_input::{self, Encoding, LinesOfEachId, Refusals};
use super::exit::Exit;
use crate::csv_input::{Decoded, Record};
use crate::domain::person_row::{HeaderError, check_header, superseded_reason};
use crate::present;
use crate::proto::operator as pb;

/// Rows per ImportPersons call: a transaction of a few seconds at most.
const CHUNK_ROWS: usize = 5_000;

/// Encoded bytes per ImportPersons call, kept under the operator API's 4 MiB message limit
/// whatever the rows hold.
const CHUNK_BYTES: usize = 3 * 1024 * 1024;

/// How often an import off a terminal prints a progress line (rows, rows/s) to stderr.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Why an import that read a file twice may have missed rows.
const CHANGED_WHILE_READ: &str =
    "the file changed while it was imported: rows added or changed since it was checked may be missing";

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Import persons (流入/流出人口) into this county's registry from a CSV file.
    ///
    /// The header row names the columns: resident_id, name, flow (inflow|outflow, 流入|流出) are
    /// required; registered_county, residence_county, township, village and the status fields
    /// (marital_status, certificate_number, certificate_valid_until, certificate_status,
    /// children_count, contraception_status, contraception_date, pregnant, registered_since) are
    /// optional. An empty cell is an absent value; a row replaces what was stored about that
    /// person. Running the same file again is safe.
    ///
    /// Rows are checked by the node and written at PostgreSQL's bulk rate (COPY into a staging
    /// table, then one upsert per chunk); progress (rows, rows/s) shows as a bar on a terminal,
    /// otherwise as a line on stderr every 10 seconds. A file may name up to 10,000,000 persons.
    ///
    /// Each bad row is skipped and named by its line; each distinct reason is printed once, with
    /// how many rows and the first lines. Of rows with the same resident ID number, wherever they
    /// fall in the file, the last is imported and the earlier ones are skipped as superseded.
    ///
    /// Exit codes: 0 every row imported, 1 some rows skipped (or the node refused a call), 2 the
    /// file cannot be used (unreadable, undecodable, an unknown, duplicate or missing column, a
    /// cell over 4 KiB, a record over 1 MiB or of more than 256 cells): nothing imported, 3 the
    /// node could not be reached or went away: run the same command again to import the rest.
    Import(ImportArgs),
    /// Every recorded change of one person's entry: which field, its old and new value, when,
    /// and the source (an import, a notice with its message id, an operator). Township offices
    /// see their township's people only.
    History(super::registry_history::HistoryArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The CSV file: a header row, then one person per row.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// How the file is encoded: auto reads UTF-8 (with or without a byte-order mark) and falls
    /// back to GBK, as saved by Chinese office software.
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    encoding: Encoding,
    /// Print one JSON object as the last line: imported, skipped, errors [{line, reason}].
    #[arg(long)]
    json: bool,
}

/// What an import did, for the summary.
#[derive(Debug, Default)]
struct Outcome {
    /// Persons written.
    imported: u64,
    /// Rows not written, with reasons.
    skipped: Refusals,
    /// Why the import stopped before sending every row, with how to go on.
    stopped: Option<Stop>,
    /// The file's bytes differed between the reading that checked it and the one that sent it.
    changed_while_read: bool,
}

/// Why an import stopped part-way.
#[derive(Debug)]
struct Stop {
    /// What happened and how to go on, in one line.
    message: String,
    /// The node went away (exit 3), rather than refusing a call or the file changing (exit 1).
    node_went_away: bool,
}

pub fn run(command: RegistryCommand) -> anyhow::Result<ExitCode> {
    let args = match command {
        RegistryCommand::Import(args) => args,
        RegistryCommand::History(args) => return super::registry_history::run(args),
    };
    let checked = match check_file(&args) {
        Ok(read) => read,
        Err(problems) => {
            let path = args.file.display().to_string();
            match problems.as_slice() {
                [problem] => {
                    let problem = problem.strip_prefix(&format!("{path}: ")).unwrap_or(problem);
                    eprintln!("error: {path} cannot be imported: {problem}; nothing was imported");
                }
                _ => {
                    eprintln!("error: {path} cannot be imported; nothing was imported:");
                    for problem in &problems {
                        eprintln!("  {problem}");
                    }
                }
            }
            if args.json {
                println!(
                    "{}",
                    json!({ "imported": 0, "skipped": 0, "errors": [], "file_errors": problems })
                );
            }
            return Ok(Exit::Unusable.into());
        }
    };
    let outcome = runtime()?.block_on(send(&args, &checked))?;
    print_summary(&outcome, args.json);
    Ok(match &outcome.stopped {
        Some(stop) if stop.node_went_away => Exit::NodeUnavailable,
        Some(_) => Exit::Refused,
        None if outcome.changed_while_read || outcome.skipped.rows() > 0 => Exit::Refused,
        None => Exit::Done,
    }
    .into())
}

/// What a first reading of the file found: what the second reading sends.
#[derive(Debug)]
struct CheckedFile {
    /// The header's names, checked: every row is read against them.
    headers: Vec<String>,
    /// What the file was decoded as, so that the second reading decodes it the same way.
    decoded_as: Decoded,
    /// The lines of each resident ID number: the last row of each is sent.
    lines_of_each_id: LinesOfEachId,
    /// Rows that will be sent: not refused here, and not superseded by a later row.
    rows_to_send: u64,
    /// The raw bytes' SHA-256: the second reading must find the same file.
    digest: String,
}

impl CheckedFile {
    /// The row to send for `record`, or `None` for a row refused here (noted in `skipped`).
    fn row_to_send(&self, record: Record, skipped: &mut Refusals) -> Option<pb::PersonRow> {
        let line = record.line;
        let row = match person_row(&self.headers, record) {
            Ok(row) => row,
            Err(reason) => {
                skipped.add(line, &reason);
                return None;
            }
        };
        match self.lines_of_each_id.last_other_than(resident_id_of(&row), line) {
            Some(last) => {
                skipped.add(line, &superseded_reason(last));
                None
            }
            None => Some(row),
        }
    }
}

fn resident_id_of(row: &pb::PersonRow) -> &str {
    row.columns.get("resident_id").map_or("", String::as_str)
}

/// Reads, decodes and checks the whole file before anything is sent: which rows to send, and
/// the problems that make the whole file unusable (`Err`, each distinct problem once). Rows
/// refused here are named by the second reading, which meets them in line order.
fn check_file(args: &ImportArgs) -> Result<CheckedFile, Vec<String>> {
    let path = args.file.display();
    let mut reader = csv_input::open(&args.file, args.encoding).map_err(|error| vec![error.0])?;
    if args.encoding == Encoding::Auto && reader.decoded_as() != Decoded::Utf8 {
        eprintln!(
            "note: {path} is not UTF-8; read it as {} (choose with --encoding)",
            reader.decoded_as()
        );
    }
    let headers = reader.headers().to_vec();
    check_header(headers.iter().map(String::as_str)).map_err(|errors| header_problems(&errors))?;

    let mut lines_of_each_id = LinesOfEachId::with_limit(crate::csv_input::sweep::MAX_PERSONS_PER_IMPORT);
    let mut well_formed = 0;
    for record in reader.by_ref() {
        let record = record.map_err(|error| vec![csv_input::explain(&args.file, error).0])?;
        if let Ok(row) = person_row(&headers, record) {
            well_formed += 1;
            csv_input::note_person(&mut lines_of_each_id, &args.file, resident_id_of(&row), row.line)
                .map_err(|unusable| vec![unusable.0])?;
        }
    }
    let checked = CheckedFile {
        headers,
        decoded_as: reader.decoded_as(),
        rows_to_send: well_formed - lines_of_each_id.repeats(),
        lines_of_each_id,
        digest: reader.digest().unwrap_or_default(),
    };
    Ok(checked)
}

/// The header's problems, each distinct one once: every unknown column on one line (a file of
/// a thousand columns is one mistake, not a thousand).
fn header_problems(errors: &[HeaderError]) -> Vec<String> {
    let mut unknown_positions = Vec::new();
    let mut unknown_reason = None;
    let mut problems = Vec::new();
    for error in errors {
        match error {
            HeaderError::Unknown { position, error } => {
                unknown_positions.push(position.to_string());
                unknown_reason.get_or_insert_with(|| error.to_string());
            }
            other => problems.push(other.to_string()),
        }
    }
    if let Some(reason) = unknown_reason {
        let columns = match unknown_positions.len() {
            1 => format!("header column {}", unknown_positions[0]),
            n => format!(
                "header columns {} ({} columns)",
                csv_input::first_of(&unknown_positions, 10),
                crate::present::display::thousands(n as u64)
            ),
        };
        problems.insert(0, format!("{columns}: {reason}"));
    }
    problems
}

/// The row `record` describes, or why it is refused here.
fn person_row(headers: &[String], record: Record) -> Result<pb::PersonRow, String> {
    let Record { line, cells } = record;
    if cells.len() != headers.len() {
        return Err(format!(
            "has {} cells, the header has {} columns (a comma inside a value must be quoted)",
            cells.len(),
            headers.len()
        ));
    }
    let columns = headers
        .iter()
        .zip(cells)
        .filter(|(_, cell)| !cell.is_empty())
        .map(|(name, cell)| (name.clone(), cell))
        .collect();
    Ok(pb::PersonRow { line, columns })
}

/// Reads the file again and sends its rows in chunks, with a progress bar on a terminal; the
/// node is only called when there is a row to send. A failed call stops the import; chunks
/// already sent stay imported.
async fn send(args: &ImportArgs, checked: &CheckedFile) -> anyhow::Result<Outcome> {
    let mut reader = csv_input::open(&args.file, checked.decoded_as)?;
    let on_terminal = std::io::stderr().is_terminal();
    let progress = if on_terminal {
        ProgressBar::new(checked.rows_to_send)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows imported, {per_sec} ({eta} left)")
            .expect("a valid template"),
    );
    // Off a terminal (a log, a scheduled job): a line every PROGRESS_EVERY instead of the bar.
    let started = std::time::Instant::now();
    let mut last_line = started;
    let mut skipped = Refusals::default();
    // The file was read whole once already, so this only fails if it changed since.
    let mut unreadable = None;
    let rows = std::iter::from_fn(|| {
        loop {
            match reader.next()? {
                Ok(record) => {
                    if let Some(row) = checked.row_to_send(record, &mut skipped) {
                        return Some(row);
                    }
                }
                Err(error) => {
                    unreadable = Some(error);
                    return None;
                }
            }
        }
    });
    let mut client = None;
    let (mut imported, mut sent) = (0u64, 0u64);
    let mut refused_by_node = Vec::new();
    let mut stopped = None;
    for chunk in csv_input::chunks(rows, CHUNK_ROWS, CHUNK_BYTES) {
        let client = match &mut client {
            Some(client) => client,
            None => client.insert(args.node.connect().await?),
        };
        let rows_in_chunk = chunk.len() as u64;
        let request = pb::ImportPersonsRequest { rows: chunk };
        match client.import_persons(request).await {
            Ok(response) => {
                let response = response.into_inner();
                imported += u64::from(response.imported);
                refused_by_node.extend(
                    response
                        .errors
                        .into_iter()
                        .map(|error| (error.line, error.reason)),
                );
                sent += rows_in_chunk;
                progress.inc(rows_in_chunk);
                if !on_terminal && last_line.elapsed() >= PROGRESS_EVERY {
                    last_line = std::time::Instant::now();
                    eprintln!("{}", progress_line(sent, checked.rows_to_send, started.elapsed()));
                }
            }
            Err(status) => {
                progress.abandon();
                stopped = Some(stop(args, checked, sent, status));
                break;
            }
        }
    }
    for (line, reason) in refused_by_node {
        skipped.add(line, &reason);
    }
    if let Some(error) = unreadable.filter(|_| stopped.is_none()) {
        progress.abandon();
        stopped = Some(Stop {
            message: format!(
                "{}; rows from there on were not imported; importing again is safe (rows replace, never duplicate)",
                csv_input::explain(&args.file, error)
            ),
            node_went_away: false,
        });
    }
    // Rows added or changed after the first reading were checked against the wrong file.
    let changed_while_read = stopped.is_none() && reader.digest().as_deref() != Some(checked.digest.as_str());
    progress.finish_and_clear();
    Ok(Outcome {
        imported,
        skipped,
        stopped,
        changed_while_read,
    })
}

/// `sent` of `total` rows taken by the node after `elapsed`, with the rate, as a line of a log.
fn progress_line(sent: u64, total: u64, elapsed: std::time::Duration) -> String {
    let thousands = crate::present::display::thousands;
    let per_s = sent as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "progress: {} of {} rows imported ({} rows/s)",
        thousands(sent),
        thousands(total),
        thousands(per_s as u64)
    )
}

/// Why the import stopped part-way, in one line, with how to go on: `sent` rows were taken by
/// the node before the call that failed.
fn stop(args: &ImportArgs, checked: &CheckedFile, sent: u64, status: tonic::Status) -> Stop {
    let node = &args.node.address;
    let progress = format!(
        "after {} of {} rows were imported",
        crate::present::display::thousands(sent),
        crate::present::display::thousands(checked.rows_to_send)
    );
    let rerun = "run the same command again to import the rest — rows replace, never duplicate";
    match present::went_away(&status) {
        Some(gone) => Stop {
            message: format!(
                "the node at {node} went away {progress} ({}); {rerun}",
                gone.cause
            ),
            node_went_away: true,
        },
        None => Stop {
            message: format!(
                "the node at {node} refused the import {progress}: {:#}; {rerun}",
                present::explain(status)
            ),
            node_went_away: false,
        },
    }
}

fn print_summary(outcome: &Outcome, as_json: bool) {
    if as_json {
        let (errors, refusals) = outcome.skipped.to_json();
        let mut summary = json!({
            "imported": outcome.imported,
            "skipped": outcome.skipped.rows(),
            "errors": errors,
            "refusals": refusals,
        });
        if let Some(stop) = &outcome.stopped {
            summary["error"] = json!(stop.message);
        }
        if outcome.changed_while_read {
            summary["error"] = json!(CHANGED_WHILE_READ);
        }
        println!("{summary}");
    } else {
        let persons = plural(outcome.imported, "person", "persons");
        match outcome.skipped.rows() {
            0 => println!("imported {persons}"),
            count => println!("imported {persons}; {} skipped:", plural(count, "row", "rows")),
        }
        for line in outcome.skipped.lines() {
            println!("{line}");
        }
    }
    if let Some(stop) = &outcome.stopped {
        eprintln!("error: {}", stop.message);
    }
    if outcome.changed_while_read {
        eprintln!("error: {CHANGED_WHILE_READ}; importing again is safe (rows replace, never duplicate)");
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn row(line: u32, id: &str) -> pb::PersonRow {
        pb::PersonRow {
            line,
            columns: [("resident_id".to_string(), id.to_string())].into(),
        }
    }

    #[test]
    fn chunks_hold_at_most_5000_rows() {
        let rows = (0..12_001).map(|line| row(line, "x"));
        let sizes: Vec<usize> = csv_input::chunks(rows, CHUNK_ROWS, CHUNK_BYTES)
            .map(|chunk| chunk.len())
            .collect();
        assert_eq!(sizes, [5_000, 5_000, 2_001]);
    }

    #[test]
    fn chunks_stay_under_the_message_limit() {
        let big = "长".repeat(100_000);
        let rows = (0..40).map(|line| row(line, &big));
        let mut sent = 0;
        for chunk in csv_input::chunks(rows, CHUNK_ROWS, CHUNK_BYTES) {
            sent += chunk.len();
            let request = pb::ImportPersonsRequest { rows: chunk };
            assert!(request.encoded_len() <= CHUNK_BYTES, "{}", request.encoded_len());
        }
        assert_eq!(sent, 40);
    }

    #[test]
    fn a_row_with_the_wrong_number_of_cells_is_skipped_with_its_reason() {
        let headers = ["resident_id".to_owned(), "name".to_owned()];
        let record = |cells: &[&str]| Record {
            line: 7,
            cells: cells.iter().map(|cell| cell.to_string()).collect(),
        };
        let reason = person_row(&headers, record(&["1", "2", "3"])).unwrap_err();
        assert!(reason.starts_with("has 3 cells, the header has 2 columns"));
        let row = person_row(&headers, record(&["1", ""])).unwrap();
        assert_eq!(row.columns, [("resident_id".to_owned(), "1".to_owned())].into());
    }

    #[test]
    fn a_progress_line_says_rows_and_rate() {
        let line = progress_line(1_240_000, 5_000_000, std::time::Duration::from_secs(30));
        assert_eq!(
            line,
            "progress: 1,240,000 of 5,000,000 rows imported (41,333 rows/s)"
        );
    }

    #[test]
    fn a_thousand_unknown_columns_are_one_problem() {
        let names: Vec<String> = (0..1_000).map(|n| format!("c{n}")).collect();
        let errors = check_header(names.iter().map(String::as_str)).unwrap_err();
        let problems = header_problems(&errors);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "header columns 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 990 more (1,000 columns): unknown column"
            ),
            "{}",
            problems[0]
        );
        assert_eq!(problems[1], "required column resident_id is missing");
    }
}
