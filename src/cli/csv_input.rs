//! The command line's side of reading CSV files: the `--encoding` flag, and error messages that
//! tell the user which flag to pass. The reading itself is [`crate::csv_input`].

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use clap::ValueEnum;

use super::exit::UnusableFile;
use crate::csv_input::{self, CsvError, CsvReader};

/// How a file's bytes are decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// UTF-8 when the file starts as valid UTF-8, otherwise GBK.
    #[default]
    Auto,
    /// UTF-8 (a byte-order mark is skipped).
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK / GB 18030, as saved by Chinese office software.
    Gbk,
}

impl From<Encoding> for csv_input::Encoding {
    fn from(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Auto => Self::Auto,
            Encoding::Utf8 => Self::Utf8,
            Encoding::Gbk => Self::Gbk,
        }
    }
}

/// Opens `path` for reading record by record; errors are worded for the command line, as an
/// [`UnusableFile`].
pub fn open(path: &Path, encoding: impl Into<csv_input::Encoding>) -> Result<CsvReader<File>, UnusableFile> {
    csv_input::open(path, encoding.into()).map_err(|error| explain(path, error))
}

/// `error` as the command line reports it, in one line: the file named, and the flag that may
/// help.
pub fn explain(path: &Path, error: CsvError) -> UnusableFile {
    let advice = match &error {
        CsvError::Io(_) => return UnusableFile(format!("reading {}: {error}", path.display())),
        CsvError::NotUtf8 { .. } => ": try --encoding gbk",
        CsvError::ByteOrderMarkButGbk => ": drop --encoding gbk",
        CsvError::NotGbk { .. }
        | CsvError::NeitherUtf8NorGbk { .. }
        | CsvError::RecordTooLong { .. }
        | CsvError::CellTooLong { .. }
        | CsvError::TooManyCells { .. } => "",
    };
    UnusableFile(format!("{}: {error}{advice}", path.display()))
}

/// Lines listed for each distinct reason; the rest are counted.
const FIRST_LINES: usize = 10;

/// Distinct reasons tallied one by one; rows refused for yet other reasons are counted together,
/// so that memory and output stay bounded whatever the file holds.
const MAX_REASONS: usize = 1_000;

/// The rows a file command refused, each distinct reason once with how many rows it refused and
/// the first lines where it occurs (what `sweep` and `registry import` print and exit 1 on).
#[derive(Debug, Default)]
pub struct Refusals {
    /// The tallied reasons, in the order they were first met.
    reasons: Vec<Tally>,
    /// Where each reason is in `reasons`.
    index: HashMap<String, usize>,
    /// Rows refused for a reason beyond the first [`MAX_REASONS`], and the first of their lines.
    others: Tally,
}

/// One reason: how many rows, and the first of their lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub reason: String,
    pub rows: u64,
    /// The first [`FIRST_LINES`] lines, smallest first.
    pub lines: Vec<u32>,
}

impl Tally {
    fn add(&mut self, line: u32) {
        self.rows += 1;
        let at = self.lines.partition_point(|&known| known < line);
        if at < FIRST_LINES {
            self.lines.insert(at, line);
            self.lines.truncate(FIRST_LINES);
        }
    }

    /// `line 3: reason`, or `lines 3, 7, 9 and 120 more (123 rows): reason`.
    fn describe(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(|line| line.to_string()).collect();
        match self.rows {
            1 => format!("line {}: {}", lines.join(", "), self.reason),
            rows => {
                let more = rows.saturating_sub(self.lines.len() as u64);
                let more = if more > 0 {
                    format!(" and {} more", crate::present::display::thousands(more))
                } else {
                    String::new()
                };
                format!(
                    "lines {}{more} ({} rows): {}",
                    lines.join(", "),
                    crate::present::display::thousands(rows),
                    self.reason
                )
            }
        }
    }
}

impl Refusals {
    /// Notes that the row on `line` was refused for `reason`.
    pub fn add(&mut self, line: u32, reason: &str) {
        if let Some(&at) = self.index.get(reason) {
            self.reasons[at].add(line);
        } else if self.reasons.len() < MAX_REASONS {
            self.index.insert(reason.to_owned(), self.reasons.len());
            let mut tally = Tally {
                reason: reason.to_owned(),
                ..Tally::default()
            };
            tally.add(line);
            self.reasons.push(tally);
        } else {
            self.others.reason = "other reasons (too many different ones to list)".to_owned();
            self.others.add(line);
        }
    }

    /// How many rows were refused.
    pub fn rows(&self) -> u64 {
        self.reasons.iter().map(|tally| tally.rows).sum::<u64>() + self.others.rows
    }

    /// Each distinct reason, by the first line it occurs on.
    pub fn tallies(&self) -> Vec<&Tally> {
        let mut tallies: Vec<&Tally> = self.reasons.iter().collect();
        if self.others.rows > 0 {
            tallies.push(&self.others);
        }
        tallies.sort_by_key(|tally| tally.lines.first().copied());
        tallies
    }

    /// One line per distinct reason, as printed.
    pub fn lines(&self) -> Vec<String> {
        self.tallies().into_iter().map(Tally::describe).collect()
    }

    /// For `--json`: every line listed with its reason (`[{line, reason}]`, by line), and each
    /// distinct reason with its count (`[{reason, rows, lines}]`).
    pub fn to_json(&self) -> (serde_json::Value, serde_json::Value) {
        let mut listed: Vec<(u32, &str)> = self
            .tallies()
            .into_iter()
            .flat_map(|tally| tally.lines.iter().map(|&line| (line, tally.reason.as_str())))
            .collect();
        listed.sort_by_key(|(line, _)| *line);
        let listed = listed
            .into_iter()
            .map(|(line, reason)| serde_json::json!({ "line": line, "reason": reason }))
            .collect();
        (listed, serde_json::json!(self.tallies()))
    }
}

pub use crate::csv_input::sweep::LinesOfEachId;

/// Notes that `resident_id` is on `line` of the file at `path` ([`LinesOfEachId::note`]); a file
/// of too many persons cannot be used, said with the file's name.
pub fn note_person(
    ids: &mut LinesOfEachId,
    path: &Path,
    resident_id: &str,
    line: u32,
) -> Result<(), UnusableFile> {
    ids.note(resident_id, line)
        .map_err(|too_many| UnusableFile(format!("{}: {too_many}", path.display())))
}

/// Cuts `rows` into calls of at most `max_rows` rows and `max_bytes` encoded bytes (within the
/// operator API's 4 MiB message limit whatever the rows hold), reading only as many rows as the
/// next call holds.
pub fn chunks<T: prost::Message>(
    rows: impl Iterator<Item = T>,
    max_rows: usize,
    max_bytes: usize,
) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.peekable();
    std::iter::from_fn(move || {
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        while let Some(row) = rows.peek() {
            // The row's length-delimited field in the request: tag, length prefix, body.
            let bytes = row.encoded_len() + 8;
            if !chunk.is_empty() && (chunk.len() == max_rows || chunk_bytes + bytes > max_bytes) {
                break;
            }
            chunk_bytes += bytes;
            chunk.extend(rows.next());
        }
        (!chunk.is_empty()).then_some(chunk)
    })
}

/// `items` as a person reads a list: the first `shown`, then how many more.
pub fn first_of(items: &[String], shown: usize) -> String {
    let mut text = items.iter().take(shown).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > shown {
        text.push_str(&format!(
            " and {} more",
            crate::present::display::thousands((items.len() - shown) as u64)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_distinct_reason_is_told_once_with_its_count_and_first_lines() {
        let mut refusals = Refusals::default();
        for line in (2..1_002).rev() {
            refusals.add(line, "resident_id: not 18 characters");
        }
        refusals.add(1_500, "name: longer than 64 characters");
        assert_eq!(refusals.rows(), 1_001);
        assert_eq!(
            refusals.lines(),
            [
                "lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 990 more (1,000 rows): resident_id: not 18 characters",
                "line 1500: name: longer than 64 characters",
            ]
        );
    }

    #[test]
    fn reasons_beyond_the_limit_are_counted_together() {
        let mut refusals = Refusals::default();
        for line in 0..(MAX_REASONS as u32 + 5) {
            refusals.add(line, &format!("reason {line}"));
        }
        assert_eq!(refusals.rows(), MAX_REASONS as u64 + 5);
        assert_eq!(refusals.lines().len(), MAX_REASONS + 1);
        assert!(
            refusals
                .lines()
                .last()
                .unwrap()
                .contains("(5 rows): other reasons")
        );
    }

    #[test]
    fn lists_show_their_first_items() {
        let items: Vec<String> = (1..=5).map(|n| n.to_string()).collect();
        assert_eq!(first_of(&items, 3), "1, 2, 3 and 2 more");
        assert_eq!(first_of(&items, 5), "1, 2, 3, 4, 5");
    }
}
