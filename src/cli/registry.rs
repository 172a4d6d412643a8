//! `hancha registry import`: upserts the county's registry of persons from a CSV file, as
//! townships and the county's own systems export it. Each bad row is reported with its line and
//! reason and skipped; good rows are kept; a row is never half-written.

use crate::present::explain;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::csv_input::{self, Encoding};
use crate::csv_input::{CsvError, Decoded, Record};
use crate::domain::person_row::{check_header, resident_id_key, superseded_reason};
use crate::proto::operator as pb;

/// Rows per ImportPersons call: a transaction of a few seconds at most.
const CHUNK_ROWS: usize = 5_000;

/// Encoded bytes per ImportPersons call, kept under the operator API's 4 MiB message limit
/// whatever the rows hold.
const CHUNK_BYTES: usize = 3 * 1024 * 1024;

/// Exit code for a file that cannot be imported at all (nothing was sent).
const UNUSABLE_FILE: u8 = 2;

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
    /// Each bad row is reported with its line and reason and skipped. Exit codes: 0 every row
    /// imported, 1 some rows skipped (or the node failed), 2 the file cannot be used (unreadable,
    /// undecodable, or an unknown, duplicate or missing column): nothing imported.
    Import(ImportArgs),
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

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Skipped {
    /// Physical line in the file; the header is line 1.
    line: u32,
    /// Every reason, each starting with the column it is about.
    reason: String,
}

/// What an import did, for the summary.
#[derive(Debug, Default)]
struct Outcome {
    /// Persons written.
    imported: u64,
    /// Rows not written, with reasons, in line order.
    skipped: Vec<Skipped>,
    /// Why the import stopped before sending every row, and the first line not sent.
    stopped: Option<(u32, String)>,
    /// The file's bytes differed between the reading that checked it and the one that sent it.
    changed_while_read: bool,
}

pub fn run(command: RegistryCommand) -> anyhow::Result<ExitCode> {
    let RegistryCommand::Import(args) = command;
    let (checked, mut skipped) = match check_file(&args) {
        Ok(read) => read,
        Err(problems) => {
            eprintln!(
                "error: {} cannot be imported; nothing was imported:",
                args.file.display()
            );
            for problem in &problems {
                eprintln!("  {problem}");
            }
            if args.json {
                println!(
                    "{}",
                    json!({ "imported": 0, "skipped": 0, "errors": [], "file_errors": problems })
                );
            }
            return Ok(ExitCode::from(UNUSABLE_FILE));
        }
    };
    let mut outcome = if checked.last_of_each_id.kept() == 0 {
        Outcome::default()
    } else {
        runtime()?.block_on(send(&args, &checked))?
    };
    skipped.append(&mut outcome.skipped);
    skipped.sort_by_key(|row| row.line);
    outcome.skipped = skipped;
    print_summary(&outcome, args.json);
    let complete = outcome.skipped.is_empty() && outcome.stopped.is_none() && !outcome.changed_while_read;
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a first reading of the file found: what the second reading sends.
#[derive(Debug)]
struct CheckedFile {
    /// The header's names, checked: every row is read against them.
    headers: Vec<String>,
    /// What the file was decoded as, so that the second reading decodes it the same way.
    decoded_as: Decoded,
    /// Which row of each resident ID number is sent.
    last_of_each_id: LastOfEachId,
    /// The raw bytes' SHA-256: the second reading must find the same file.
    digest: String,
}

impl CheckedFile {
    /// The row to send for `record`, or `None` for a row refused here.
    fn row_to_send(&self, record: Record) -> Option<pb::PersonRow> {
        person_row(&self.headers, record)
            .ok()
            .filter(|row| self.last_of_each_id.keeps(row))
    }
}

/// Reads, decodes and checks the whole file before anything is sent: what to send, and the rows
/// already refused here (a wrong number of cells, or superseded by a later row with the same ID
/// number). Problems that make the whole file unusable come back as `Err`.
fn check_file(args: &ImportArgs) -> Result<(CheckedFile, Vec<Skipped>), Vec<String>> {
    let path = args.file.display();
    let file_problem = |error: CsvError| vec![format!("{path}: {:#}", csv_input::explain(&args.file, error))];
    let mut reader =
        csv_input::open(&args.file, args.encoding).map_err(|error| vec![format!("{path}: {error:#}")])?;
    if args.encoding == Encoding::Auto && reader.decoded_as() != Decoded::Utf8 {
        eprintln!(
            "note: {path} is not UTF-8; read it as {} (choose with --encoding)",
            reader.decoded_as()
        );
    }
    let headers = reader.headers().to_vec();
    check_header(headers.iter().map(String::as_str))
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;

    let mut skipped = Vec::new();
    let mut last_of_each_id = LastOfEachId::default();
    for record in reader.by_ref() {
        match person_row(&headers, record.map_err(file_problem)?) {
            Ok(row) => last_of_each_id.note(&row),
            Err(skip) => skipped.push(skip),
        }
    }
    skipped.extend(last_of_each_id.superseded());
    let checked = CheckedFile {
        headers,
        decoded_as: reader.decoded_as(),
        last_of_each_id,
        digest: reader.digest().unwrap_or_default(),
    };
    Ok((checked, skipped))
}

/// The row `record` describes, or why it is refused here.
fn person_row(headers: &[String], record: Record) -> Result<pb::PersonRow, Skipped> {
    let Record { line, cells } = record;
    if cells.len() != headers.len() {
        return Err(Skipped {
            line,
            reason: format!(
                "has {} cells, the header has {} columns (a comma inside a value must be quoted)",
                cells.len(),
                headers.len()
            ),
        });
    }
    let columns = headers
        .iter()
        .zip(cells)
        .filter(|(_, cell)| !cell.is_empty())
        .map(|(name, cell)| (name.clone(), cell))
        .collect();
    Ok(pb::PersonRow { line, columns })
}

/// A resident ID number's key, shortened to a digest: what is remembered per person while a file
/// is checked, so that memory grows by a few dozen bytes per person whatever the rows hold.
type IdDigest = [u8; 16];

fn id_digest(key: &str) -> IdDigest {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
    let mut short = [0; 16];
    short.copy_from_slice(&digest[..16]);
    short
}

/// Of rows with the same resident ID number only the last is kept; the earlier ones are skipped
/// as superseded. Decided over the whole file, because the node only sees one chunk at a time.
#[derive(Debug, Default)]
struct LastOfEachId {
    /// The last line seen with each ID number.
    last_line: HashMap<IdDigest, u32>,
    /// Earlier lines with an ID number seen again, and that number: the superseded rows.
    earlier: Vec<(u32, IdDigest)>,
    /// Rows with no ID number: sent, for the node to refuse with its reason.
    without_id: u64,
}

impl LastOfEachId {
    fn note(&mut self, row: &pb::PersonRow) {
        let Some(key) = resident_id_key(&row.columns) else {
            self.without_id += 1;
            return;
        };
        let digest = id_digest(&key);
        if let Some(earlier) = self.last_line.insert(digest, row.line) {
            self.earlier.push((earlier, digest));
        }
    }

    /// Whether `row` is sent: it has no ID number or is the last row with its ID number.
    fn keeps(&self, row: &pb::PersonRow) -> bool {
        resident_id_key(&row.columns)
            .is_none_or(|key| self.last_line.get(&id_digest(&key)) == Some(&row.line))
    }

    /// How many rows are sent.
    fn kept(&self) -> u64 {
        self.last_line.len() as u64 + self.without_id
    }

    /// The rows skipped as superseded, with the line that supersedes each.
    fn superseded(&self) -> impl Iterator<Item = Skipped> + '_ {
        self.earlier.iter().map(|(line, digest)| Skipped {
            line: *line,
            reason: superseded_reason(self.last_line.get(digest).copied().unwrap_or_default()),
        })
    }
}

/// Reads the file again and sends its rows in chunks, with a progress bar on a terminal. A failed
/// call stops the import; chunks already sent stay imported.
async fn send(args: &ImportArgs, checked: &CheckedFile) -> anyhow::Result<Outcome> {
    let mut client = args.node.connect().await?;
    let mut reader = csv_input::open(&args.file, checked.decoded_as)?;
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(checked.last_of_each_id.kept())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows imported ({eta} left)")
            .expect("a valid template"),
    );
    let mut outcome = Outcome::default();
    // The file was read whole once already, so this only fails if it changed since.
    let mut unreadable = None;
    let rows = std::iter::from_fn(|| {
        loop {
            match reader.next()? {
                Ok(record) => {
                    if let Some(row) = checked.row_to_send(record) {
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
    let mut last_line_sent = 1;
    for chunk in chunks(rows) {
        let first_line = chunk.first().map_or(0, |row| row.line);
        let last_line = chunk.last().map_or(0, |row| row.line);
        let sent = chunk.len() as u64;
        let request = pb::ImportPersonsRequest { rows: chunk };
        match client.import_persons(request).await {
            Ok(response) => {
                let response = response.into_inner();
                outcome.imported += u64::from(response.imported);
                outcome
                    .skipped
                    .extend(response.errors.into_iter().map(|error| Skipped {
                        line: error.line,
                        reason: error.reason,
                    }));
                progress.inc(sent);
                last_line_sent = last_line;
            }
            Err(status) => {
                progress.abandon();
                outcome.stopped = Some((first_line, format!("{:#}", explain(status))));
                break;
            }
        }
    }
    if let Some(error) = unreadable.filter(|_| outcome.stopped.is_none()) {
        progress.abandon();
        let line = error.line().unwrap_or(last_line_sent + 1);
        outcome.stopped = Some((line, format!("{:#}", csv_input::explain(&args.file, error))));
    }
    // Rows added or changed after the first reading were checked against the wrong file.
    outcome.changed_while_read =
        outcome.stopped.is_none() && reader.digest().as_deref() != Some(checked.digest.as_str());
    progress.finish_and_clear();
    Ok(outcome)
}

/// Cuts the rows into calls of at most [`CHUNK_ROWS`] rows and [`CHUNK_BYTES`] bytes, reading
/// only as many rows as the next call holds.
fn chunks(rows: impl Iterator<Item = pb::PersonRow>) -> impl Iterator<Item = Vec<pb::PersonRow>> {
    let mut rows = rows.peekable();
    std::iter::from_fn(move || {
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        while let Some(row) = rows.peek() {
            // The row's length-delimited field in the request: tag, length prefix, body.
            let bytes = row.encoded_len() + 8;
            if !chunk.is_empty() && (chunk.len() == CHUNK_ROWS || chunk_bytes + bytes > CHUNK_BYTES) {
                break;
            }
            chunk_bytes += bytes;
            chunk.extend(rows.next());
        }
        (!chunk.is_empty()).then_some(chunk)
    })
}

fn print_summary(outcome: &Outcome, as_json: bool) {
    if as_json {
        let errors: Vec<_> = outcome
            .skipped
            .iter()
            .map(|row| json!({ "line": row.line, "reason": row.reason }))
            .collect();
        let mut summary = json!({
            "imported": outcome.imported,
            "skipped": outcome.skipped.len(),
            "errors": errors,
        });
        if let Some((line, error)) = &outcome.stopped {
            summary["stopped_at_line"] = json!(line);
            summary["error"] = json!(error);
        }
        if outcome.changed_while_read {
            summary["error"] = json!(CHANGED_WHILE_READ);
        }
        println!("{summary}");
        return;
    }
    let persons = plural(outcome.imported, "person", "persons");
    match outcome.skipped.len() {
        0 => println!("imported {persons}"),
        count => println!(
            "imported {persons}; {} skipped:",
            plural(count as u64, "row", "rows")
        ),
    }
    for row in &outcome.skipped {
        println!("line {}: {}", row.line, row.reason);
    }
    if let Some((line, error)) = &outcome.stopped {
        eprintln!(
            "error: the import stopped at line {line}: {error}\n\
             rows from line {line} on were not imported; importing again is safe (rows replace, never duplicate)"
        );
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

    fn row(line: u32, id: &str) -> pb::PersonRow {
        pb::PersonRow {
            line,
            columns: [("resident_id".to_string(), id.to_string())].into(),
        }
    }

    #[test]
    fn chunks_hold_at_most_5000_rows() {
        let rows = (0..12_001).map(|line| row(line, "x"));
        let sizes: Vec<usize> = chunks(rows).map(|chunk| chunk.len()).collect();
        assert_eq!(sizes, [5_000, 5_000, 2_001]);
    }

    #[test]
    fn chunks_stay_under_the_message_limit() {
        let big = "长".repeat(100_000);
        let rows = (0..40).map(|line| row(line, &big));
        let mut sent = 0;
        for chunk in chunks(rows) {
            sent += chunk.len();
            let request = pb::ImportPersonsRequest { rows: chunk };
            assert!(request.encoded_len() <= CHUNK_BYTES, "{}", request.encoded_len());
        }
        assert_eq!(sent, 40);
    }

    #[test]
    fn a_row_with_the_wrong_number_of_cells_is_skipped_with_its_line() {
        let headers = ["resident_id".to_owned(), "name".to_owned()];
        let record = |cells: &[&str]| Record {
            line: 7,
            cells: cells.iter().map(|cell| cell.to_string()).collect(),
        };
        let skipped = person_row(&headers, record(&["1", "2", "3"])).unwrap_err();
        assert_eq!(skipped.line, 7);
        assert!(
            skipped
                .reason
                .starts_with("has 3 cells, the header has 2 columns")
        );
        let row = person_row(&headers, record(&["1", ""])).unwrap();
        assert_eq!(row.columns, [("resident_id".to_owned(), "1".to_owned())].into());
    }

    #[test]
    fn the_last_row_of_an_id_wins_whatever_its_case() {
        let rows = [
            row(2, "43070319900506028x"),
            row(3, "other"),
            row(4, "43070319900506028X "),
        ];
        let mut last_of_each_id = LastOfEachId::default();
        for row in &rows {
            last_of_each_id.note(row);
        }
        let kept_lines: Vec<u32> = rows
            .iter()
            .filter(|row| last_of_each_id.keeps(row))
            .map(|row| row.line)
            .collect();
        assert_eq!(kept_lines, [3, 4]);
        assert_eq!(last_of_each_id.kept(), 2);
        assert_eq!(
            last_of_each_id.superseded().collect::<Vec<_>>(),
            [Skipped {
                line: 2,
                reason: superseded_reason(4)
            }]
        );
    }
}
