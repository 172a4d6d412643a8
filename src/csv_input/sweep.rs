//! A sweep file (清查): where its columns are, what each row asks, and the sweep key that makes
//! sending the same file again add nothing. The command line (`hancha sweep`) and the console's
//! upload read sweep files through this one place.

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
