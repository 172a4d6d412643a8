//! `hancha registry import`: upserts the county's registry of persons from a CSV file, as
//! townships and the county's own systems export it. Each bad row is reported with its line and
//! reason and skipped; good rows are kept; a row is never half-written.

use crate::present::explain;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::csv_input::{self, Encoding};
use crate::domain::person_row::{check_header, resident_id_key, superseded_reason};
use crate::proto::operator as pb;

/// Rows per ImportPersons call: a transaction of a few seconds at most.
const CHUNK_ROWS: usize = 5_000;

/// Encoded bytes per ImportPersons call, kept under the operator API's 4 MiB message limit
/// whatever the rows hold.
const CHUNK_BYTES: usize = 3 * 1024 * 1024;

/// Exit code for a file that cannot be imported at all (nothing was sent).
const UNUSABLE_FILE: u8 = 2;

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
}

pub fn run(command: RegistryCommand) -> anyhow::Result<ExitCode> {
    let RegistryCommand::Import(args) = command;
    let (rows, mut skipped) = match read_rows(&args) {
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
    let mut outcome = if rows.is_empty() {
        Outcome::default()
    } else {
        runtime()?.block_on(send(&args.node, rows))?
    };
    skipped.append(&mut outcome.skipped);
    skipped.sort_by_key(|row| row.line);
    outcome.skipped = skipped;
    print_summary(&outcome, args.json);
    let complete = outcome.skipped.is_empty() && outcome.stopped.is_none();
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads, decodes and checks the file: the rows to send, and the rows already refused here (a
/// wrong number of cells, or superseded by a later row with the same ID number). Problems that
/// make the whole file unusable come back as `Err`.
fn read_rows(args: &ImportArgs) -> Result<(Vec<pb::PersonRow>, Vec<Skipped>), Vec<String>> {
    let path = args.file.display();
    let file =
        csv_input::read(&args.file, args.encoding).map_err(|error| vec![format!("{path}: {error:#}")])?;
    if args.encoding == Encoding::Auto && file.decoded_as != csv_input::UTF_8 {
        eprintln!(
            "note: {path} is not UTF-8; read it as {} (choose with --encoding)",
            file.decoded_as
        );
    }
    let (headers, records) = (file.headers, file.records);
    check_header(headers.iter().map(String::as_str))
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;

    let mut rows = Vec::with_capacity(records.len());
    let mut skipped = Vec::new();
    for (line, cells) in records {
        if cells.len() != headers.len() {
            skipped.push(Skipped {
                line,
                reason: format!(
                    "has {} cells, the header has {} columns (a comma inside a value must be quoted)",
                    cells.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let columns = headers
            .iter()
            .zip(cells)
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(name, cell)| (name.clone(), cell))
            .collect();
        rows.push(pb::PersonRow { line, columns });
    }
    Ok((keep_last_of_each_id(rows, &mut skipped), skipped))
}

/// Keeps, of rows with the same resident ID number, only the last; the earlier ones are skipped
/// as superseded. Done over the whole file, because the node only sees one chunk at a time.
fn keep_last_of_each_id(rows: Vec<pb::PersonRow>, skipped: &mut Vec<Skipped>) -> Vec<pb::PersonRow> {
    let mut last_line_of_id = std::collections::HashMap::new();
    for row in &rows {
        if let Some(key) = resident_id_key(&row.columns) {
            last_line_of_id.insert(key, row.line);
        }
    }
    rows.into_iter()
        .filter(|row| {
            let Some(last) = resident_id_key(&row.columns).map(|key| last_line_of_id[&key]) else {
                return true;
            };
            if last == row.line {
                return true;
            }
            skipped.push(Skipped {
                line: row.line,
                reason: superseded_reason(last),
            });
            false
        })
        .collect()
}

/// Sends the rows in chunks, with a progress bar on a terminal. A failed call stops the import;
/// chunks already sent stay imported.
async fn send(node: &NodeArgs, rows: Vec<pb::PersonRow>) -> anyhow::Result<Outcome> {
    let mut client = node.connect().await?;
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(rows.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows imported ({eta} left)")
            .expect("a valid template"),
    );
    let mut outcome = Outcome::default();
    for chunk in chunks(rows) {
        let first_line = chunk.first().map_or(0, |row| row.line);
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
            }
            Err(status) => {
                progress.abandon();
                outcome.stopped = Some((first_line, format!("{:#}", explain(status))));
                break;
            }
        }
    }
    progress.finish_and_clear();
    Ok(outcome)
}

/// Cuts the rows into calls of at most [`CHUNK_ROWS`] rows and [`CHUNK_BYTES`] bytes.
fn chunks(rows: Vec<pb::PersonRow>) -> Vec<Vec<pb::PersonRow>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut current_bytes = 0;
    for row in rows {
        // The row's length-delimited field in the request: tag, length prefix, body.
        let bytes = row.encoded_len() + 8;
        if !current.is_empty() && (current.len() == CHUNK_ROWS || current_bytes + bytes > CHUNK_BYTES) {
            chunks.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += bytes;
        current.push(row);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
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
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::super::csv_input::{GBK, UTF_8, UTF_8_BOM, decode, parse_csv};
    use super::*;

    fn row(line: u32, id: &str) -> pb::PersonRow {
        pb::PersonRow {
            line,
            columns: [("resident_id".to_string(), id.to_string())].into(),
        }
    }

    #[test]
    fn chunks_hold_at_most_5000_rows() {
        let rows: Vec<_> = (0..12_001).map(|line| row(line, "x")).collect();
        let sizes: Vec<usize> = chunks(rows).iter().map(Vec::len).collect();
        assert_eq!(sizes, [5_000, 5_000, 2_001]);
    }

    #[test]
    fn chunks_stay_under_the_message_limit() {
        let big = "长".repeat(100_000);
        let rows: Vec<_> = (0..40).map(|line| row(line, &big)).collect();
        for chunk in chunks(rows) {
            let request = pb::ImportPersonsRequest { rows: chunk };
            assert!(request.encoded_len() <= CHUNK_BYTES, "{}", request.encoded_len());
        }
    }

    fn lines_of(text: &str) -> Vec<u32> {
        parse_csv(text).unwrap().1.iter().map(|record| record.0).collect()
    }

    #[test]
    fn records_carry_the_line_a_person_sees() {
        assert_eq!(lines_of("a,b\n1,2\n3,4\n"), [2, 3]);
        assert_eq!(lines_of("a,b\r\n\r\n1,2\r\n\r\n\r\n3,4\r\n"), [3, 6]);
        assert_eq!(lines_of("a,b\n\"multi\nline\",2\n3,4\n"), [2, 4]);
        assert_eq!(
            lines_of("a,b\n1,2\n,\n \t, \n5,6"),
            [2, 5],
            "empty rows are left out"
        );
    }

    #[test]
    fn headers_are_trimmed_and_lower_cased() {
        let (headers, _) = parse_csv(" Resident_ID ,NAME\n").unwrap();
        assert_eq!(headers, ["resident_id", "name"]);
    }

    #[test]
    fn encodings_are_detected_or_refused_with_a_hint() {
        let (gbk, _, _) = encoding_rs::GBK.encode("name\n张三\n");
        let with_bom = [UTF_8_BOM, "name\n张三\n".as_bytes()].concat();
        assert_eq!(
            decode(&gbk, Encoding::Auto).unwrap(),
            ("name\n张三\n".to_owned(), GBK)
        );
        assert_eq!(decode(&gbk, Encoding::Gbk).unwrap().1, GBK);
        assert_eq!(
            decode(&with_bom, Encoding::Auto).unwrap(),
            ("name\n张三\n".to_owned(), UTF_8)
        );
        assert_eq!(decode(&with_bom, Encoding::Utf8).unwrap().1, UTF_8);
        let error = decode(&gbk, Encoding::Utf8).unwrap_err();
        assert!(error.starts_with("not valid UTF-8 (line 2)"), "{error}");
        assert!(
            decode(&with_bom, Encoding::Gbk)
                .unwrap_err()
                .contains("byte-order mark")
        );
        let broken_after_bom = [UTF_8_BOM, b"name\n\xD5\xC5\n"].concat();
        assert!(
            decode(&broken_after_bom, Encoding::Auto)
                .unwrap_err()
                .starts_with("not valid UTF-8")
        );
        assert!(
            decode(b"name\n\x81\n", Encoding::Auto)
                .unwrap_err()
                .starts_with("neither UTF-8 nor GBK")
        );
    }

    #[test]
    fn the_last_row_of_an_id_wins_whatever_its_case() {
        let mut skipped = Vec::new();
        let kept = keep_last_of_each_id(
            vec![
                row(2, "43070319900506028x"),
                row(3, "other"),
                row(4, "43070319900506028X "),
            ],
            &mut skipped,
        );
        let kept_lines: Vec<u32> = kept.iter().map(|row| row.line).collect();
        assert_eq!(kept_lines, [3, 4]);
        assert_eq!(
            skipped,
            [Skipped {
                line: 2,
                reason: superseded_reason(4)
            }]
        );
    }
}
