//! A sweep file (清查): where its columns are, what each row asks, and the sweep key that makes
//! sending the same file again add nothing. The command line (`hancha sweep`) and the console's
//! upload read sweep files through this one place.

use std::collections::HashMap;

use super::Record;
use crate::domain::message::Subject;
use crate::proto::operator as pb;

/// The sweep key of a file sent to `county` about `kind`: the file's raw bytes' SHA-256
/// (`digest`, hex) under that county and kind. The same file sent again, from the command line
/// or the console, names the same sweep, and the node skips the persons already asked in it.
pub fn sweep_key(county: &str, kind: &str, digest: &str) -> String {
    format!("{county}:{kind}:{digest}")
}

/// Where a sweep file's columns are, found once from the header and used for every row.
#[derive(Clone, Copy, Debug)]
pub struct SweepColumns {
    /// The person asked about: the one column a sweep file must have.
    resident_id: usize,
    /// For certificate verification (查证验证); empty when the column is absent.
    certificate_number: Option<usize>,
    /// Marks rows the peer should answer by the urgent deadline.
    urgent: Option<usize>,
}

impl SweepColumns {
    /// The columns in `headers`; `None` without a `resident_id` column.
    pub fn of(headers: &[String]) -> Option<Self> {
        let column = |name: &str| headers.iter().position(|header| header == name);
        Some(Self {
            resident_id: column("resident_id")?,
            certificate_number: column("certificate_number"),
            urgent: column("urgent"),
        })
    }

    /// The row's resident ID number, as written.
    pub fn resident_id_of<'a>(&self, record: &'a Record) -> &'a str {
        record.cells.get(self.resident_id).map_or("", String::as_str)
    }

    /// Whether the node would take `record`'s person as written (the one rule for a subject,
    /// [`Subject::parse`]).
    pub fn well_formed(&self, record: &Record) -> bool {
        self.refusal(record).is_none()
    }

    /// Why the node would refuse `record`'s person, worded as the node words it in a sweep's
    /// results (`field: why`, never quoting the ID number); `None` when it would take it.
    pub fn refusal(&self, record: &Record) -> Option<String> {
        let cell = |index: Option<usize>| index.and_then(|i| record.cells.get(i)).map_or("", String::as_str);
        let mut violations = Vec::new();
        let subject = Subject::parse(
            cell(Some(self.resident_id)),
            cell(self.certificate_number),
            "subject",
            &mut violations,
        );
        subject.is_none().then(|| subject_refusal(&violations))
    }

    /// The sweep item for `record`.
    pub fn item(&self, record: Record) -> pb::SweepItem {
        let Record { line, cells } = record;
        let cell = |index: Option<usize>| index.and_then(|i| cells.get(i)).cloned().unwrap_or_default();
        pb::SweepItem {
            line,
            resident_id: cell(Some(self.resident_id)),
            certificate_number: cell(self.certificate_number),
            urgent: matches!(
                cell(self.urgent).to_lowercase().as_str(),
                "true" | "1" | "yes" | "是"
            ),
        }
    }
}

/// Why a sweep row's subject is refused, in one line: each field at fault and why. The node's
/// sweep results and a file checked before sending say it alike.
pub fn subject_refusal(violations: &[crate::domain::message::FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A resident ID number's key (trimmed, `x` as `X`), shortened to a digest: what is remembered per
/// person while a file is read, so that memory grows by a few dozen bytes per person whatever
/// the rows hold.
type IdDigest = [u8; 16];

fn id_digest(resident_id: &str) -> Option<IdDigest> {
    let key = resident_id.trim().to_ascii_uppercase();
    if key.is_empty() {
        return None;
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
    let mut short = [0; 16];
    short.copy_from_slice(&digest[..16]);
    Some(short)
}

/// The most distinct persons one file may name: what bounds the memory a reading of a file
/// needs to name every repeat by line (about 55 bytes a person, so about 110 MB at most). A
/// larger file is refused before anything is sent; split it (re-running a part sends nothing
/// twice).
pub const MAX_PERSONS_PER_FILE: usize = 2_000_000;

/// The most distinct persons one registry import may name (`hancha registry import`): a
/// county's whole registry in one file, about 550 MB of memory for the reading at most. The
/// rows themselves are never held: they are read again and sent in chunks.
pub const MAX_PERSONS_PER_IMPORT: usize = 10_000_000;

/// A file names more than its limit of persons ([`MAX_PERSONS_PER_FILE`] unless the reading
/// was given another), first on `line`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyPersons {
    pub line: u32,
    /// The limit it went over.
    pub limit: usize,
}

impl std::fmt::Display for TooManyPersons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: more than {} persons in one file; split it into smaller files \
             (running a part again sends nothing twice)",
            self.line,
            crate::present::display::thousands(self.limit as u64)
        )
    }
}

/// The lines on which each person of a file appears, first and last, over the whole file: a
/// file is sent in chunks, so only a reading of the whole file names every repeat by line
/// wherever it falls. A sweep (command line or console) asks about a person's first row, an
/// import keeps the last.
#[derive(Debug, Default)]
pub struct LinesOfEachId {
    /// The first and last line of each ID number.
    lines: HashMap<IdDigest, (u32, u32)>,
    /// Rows that repeat an ID number seen on an earlier line.
    repeats: u64,
    /// The most distinct persons, when not [`MAX_PERSONS_PER_FILE`].
    limit: Option<usize>,
}

impl LinesOfEachId {
    /// A reading that accepts up to `limit` distinct persons (a registry import's
    /// [`MAX_PERSONS_PER_IMPORT`]) instead of [`MAX_PERSONS_PER_FILE`].
    pub fn with_limit(limit: usize) -> LinesOfEachId {
        LinesOfEachId {
            limit: Some(limit),
            ..LinesOfEachId::default()
        }
    }

    /// Notes that `resident_id` is on `line` (an empty cell is not noted); a file of more
    /// than [`MAX_PERSONS_PER_FILE`] persons cannot be used.
    pub fn note(&mut self, resident_id: &str, line: u32) -> Result<(), TooManyPersons> {
        let Some(digest) = id_digest(resident_id) else {
            return Ok(());
        };
        let limit = self.limit.unwrap_or(MAX_PERSONS_PER_FILE);
        if self.lines.len() >= limit && !self.lines.contains_key(&digest) {
            return Err(TooManyPersons { line, limit });
        }
        self.lines
            .entry(digest)
            .and_modify(|(_, last)| {
                *last = line;
                self.repeats += 1;
            })
            .or_insert((line, line));
        Ok(())
    }

    /// The first line with `resident_id`, if that is not `line`: the row on `line` repeats it.
    pub fn first_other_than(&self, resident_id: &str, line: u32) -> Option<u32> {
        let (first, _) = self.lines.get(&id_digest(resident_id)?)?;
        (*first != line).then_some(*first)
    }

    /// The last line with `resident_id`, if that is not `line`: a later row replaces this one.
    pub fn last_other_than(&self, resident_id: &str, line: u32) -> Option<u32> {
        let (_, last) = self.lines.get(&id_digest(resident_id)?)?;
        (*last != line).then_some(*last)
    }

    /// How many rows repeat an ID number of an earlier row.
    pub fn repeats(&self) -> u64 {
        self.repeats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_found_wherever_they_fall_and_whatever_the_case() {
        let mut ids = LinesOfEachId::default();
        ids.note("43070319900506028x", 2).unwrap();
        ids.note("other", 3).unwrap();
        ids.note("", 4).unwrap();
        ids.note(" 43070319900506028X", 20_002).unwrap();
        assert_eq!(ids.repeats(), 1);
        assert_eq!(ids.first_other_than("43070319900506028X", 20_002), Some(2));
        assert_eq!(ids.first_other_than("43070319900506028X", 2), None);
        assert_eq!(ids.last_other_than("43070319900506028X", 2), Some(20_002));
        assert_eq!(ids.first_other_than("", 4), None);
    }

    #[test]
    fn a_file_of_more_persons_than_the_limit_cannot_be_used() {
        let mut ids = LinesOfEachId::default();
        for n in 0..MAX_PERSONS_PER_FILE {
            ids.note(&format!("{n:018}"), 2).unwrap();
        }
        // a repeat of someone already there is still fine; a new person is one too many
        ids.note(&format!("{:018}", 7), 9).unwrap();
        let refused = ids.note("430703199005060281", 2_000_002).unwrap_err();
        assert_eq!(
            refused,
            TooManyPersons {
                line: 2_000_002,
                limit: MAX_PERSONS_PER_FILE
            }
        );
        assert!(
            refused
                .to_string()
                .starts_with("line 2000002: more than 2,000,000 persons"),
            "{refused}"
        );
    }
}
