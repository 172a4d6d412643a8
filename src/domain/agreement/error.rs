//! Errors in an agreement document, each tied to the line, column and key path where a person
//! editing the TOML has to look.

use std::fmt;
use std::fmt::Write as _;
use std::ops::Range;

use chrono::NaiveDate;
use toml::de::{DeTable, DeValue};

use crate::domain::division::{CountyCode, DivisionError};
use crate::domain::vocabulary::{NoticeField, NoticeKind, UnknownName};

/// One thing wrong with an agreement document.
///
/// Renders as `line 11, column 46: direction[0].inquiry_kinds: unknown inquiry kind "foo"
/// (allowed: certificate_verification, outflow_status)`, so that `hancha agreement check` output
/// can be followed without a manual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementError {
    /// 1-based line of the offending text, because editors navigate by line.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes), so it matches what an editor shows
    /// on lines with Chinese text.
    pub column: usize,
    /// The key path, like `direction[1].reply_days.urgent` (directions counted from 0 in file
    /// order); empty when the problem concerns the whole document.
    pub path: String,
    /// What is wrong, as a value, so callers and tests can tell problems apart.
    pub problem: Problem,
}

impl fmt::Display for AgreementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: ", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for AgreementError {}

/// What is wrong at one place of an agreement document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The text is not valid TOML (message from the TOML parser).
    #[error("{message}")]
    Syntax {
        /// The parser's description, e.g. "unclosed array, expected `]`".
        message: String,
    },
    /// Valid TOML of the wrong shape: an unknown or missing key, or a value of the wrong type
    /// (message from the deserializer).
    #[error("{message}")]
    Shape {
        /// The deserializer's description, e.g. "missing field `daily_cap`".
        message: String,
    },
    /// A county code that names no county, current or historical.
    #[error(transparent)]
    UnknownCounty(DivisionError),
    /// `parties` does not list exactly two counties: agreements are bilateral.
    #[error("expected exactly two parties, found {count}")]
    PartyCount {
        /// How many entries the list has.
        count: usize,
    },
    /// Both parties are the same county (compared after following renames).
    #[error("both parties are the same county {county} ({})", county.name())]
    SameCountyTwice {
        /// The county today (after renames).
        county: CountyCode,
    },
    /// A direction names a county that is not one of the two parties.
    #[error("{county} ({}) is not one of the parties {} and {}",
        county.name(), parties[0], parties[1])]
    NotAParty {
        /// The county the direction names.
        county: CountyCode,
        /// The agreement's parties, to show what would be right.
        parties: [CountyCode; 2],
    },
    /// A direction from a county to itself.
    #[error("from and to are the same county {county}")]
    FromIsTo {
        /// The county named twice.
        county: CountyCode,
    },
    /// The validity period ends before it starts.
    #[error("valid_until {until} is before valid_from {from}")]
    EndsBeforeStart {
        /// `valid_from` as written.
        from: NaiveDate,
        /// `valid_until` as written.
        until: NaiveDate,
    },
    /// A datetime where a plain date is expected: validity is by calendar day in China Standard
    /// Time, so a time or offset would only mislead.
    #[error("expected a plain date like 2026-01-01 (no time, no offset)")]
    NotADate,
    /// A signature's time must say which instant: date, time and offset.
    #[error("expected a date-time with offset like 2025-06-20T08:00:00+08:00")]
    NotAnInstant,
    /// A kind or field name outside the vocabulary.
    #[error(transparent)]
    UnknownName(UnknownName),
    /// The same name appears twice in a list, which is most likely a typo for another name.
    #[error("\"{name}\" is listed twice")]
    ListedTwice {
        /// The repeated name.
        name: String,
    },
    /// Two `[[direction]]` tables for the same ordered pair of counties.
    #[error("a direction from {from} to {to} is already declared at line {first_line}")]
    DuplicateDirection {
        /// The asking (sending) county of the repeated direction.
        from: CountyCode,
        /// The answering (receiving) county of the repeated direction.
        to: CountyCode,
        /// Where the first one is, so the author can decide which to keep.
        first_line: usize,
    },
    /// `direction = []`: an agreement that allows nothing.
    #[error("at least one [[direction]] is required")]
    NoDirection,
    /// A direction with no inquiry kind and no notice kind.
    #[error("a direction must allow at least one inquiry or notice kind")]
    AllowsNothing,
    /// A number outside its sensible range (days of 0, a cap of 0, version 0, …).
    #[error("must be between {min} and {max}, found {found}")]
    OutOfRange {
        /// The smallest accepted value.
        min: i64,
        /// The largest accepted value.
        max: i64,
        /// The value written.
        found: i64,
    },
    /// An urgent deadline longer than the normal one defeats the point of urgency.
    #[error("urgent ({urgent} days) must not be longer than normal ({normal} days)")]
    UrgentLongerThanNormal {
        /// `reply_days.normal`.
        normal: u16,
        /// `reply_days.urgent`.
        urgent: u16,
    },
    /// Notice kinds are allowed but nothing says how long a receipt may take.
    #[error("notice_days = {{ receipt = …, feedback = … }} is required when notice_kinds is not empty")]
    MissingNoticeDays,
    /// `notice_fields` lists a field that belongs to another notice kind.
    #[error("{field} is a field of {} notices, not of {kind}", field.kind())]
    FieldOfOtherKind {
        /// The field listed.
        field: NoticeField,
        /// The kind it was listed under.
        kind: NoticeKind,
    },
    /// `notice_fields` or `notice_effect` names a kind that `notice_kinds` does not allow.
    #[error("{kind} is not in this direction's notice_kinds")]
    FieldsForKindNotAllowed {
        /// The kind named.
        kind: NoticeKind,
    },
    /// An id that cannot serve as a stable key on the wire and in the database.
    #[error("must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")]
    BadId,
    /// An empty or blank text where one is required.
    #[error("must not be empty")]
    Empty,
}

/// Every error found in an agreement document, in document order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementErrors(Vec<AgreementError>);

impl AgreementErrors {
    /// Wraps the collected errors, sorted by position so output reads top to bottom.
    pub(super) fn new(mut errors: Vec<AgreementError>) -> Self {
        errors.sort_by_key(|error| (error.line, error.column));
        AgreementErrors(errors)
    }

    /// The errors, in document order.
    pub fn iter(&self) -> std::slice::Iter<'_, AgreementError> {
        self.0.iter()
    }

    /// The errors as a slice, for counting and indexing.
    pub fn as_slice(&self) -> &[AgreementError] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a AgreementErrors {
    type Item = &'a AgreementError;
    type IntoIter = std::slice::Iter<'a, AgreementError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One error per line, so the whole list can go into a log line or a terminal.
impl fmt::Display for AgreementErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AgreementErrors {}

// === positions ===

/// Turns byte offsets (what the TOML parser reports) into lines and character columns (what a
/// person looks for).
pub(super) struct Positions<'t> {
    /// The document, to count characters on the error's line.
    text: &'t str,
    /// Byte offset where each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
}

impl<'t> Positions<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(index, _)| index + 1))
            .collect();
        Positions { text, line_starts }
    }

    /// 1-based (line, column) of a byte offset; offsets past the end or inside a character are
    /// clamped rather than trusted.
    pub(super) fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[line_index];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line_index + 1, column)
    }

    /// The 1-based line of a byte offset.
    pub(super) fn line(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }
}

/// Collects errors while the document is checked, so one pass reports everything it can.
pub(super) struct Collector<'t> {
    /// Converts spans to lines and columns.
    positions: Positions<'t>,
    /// What was found so far.
    errors: Vec<AgreementError>,
}

impl<'t> Collector<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Collector {
            positions: Positions::new(text),
            errors: Vec::new(),
        }
    }

    /// Records a problem at the start of `span`.
    pub(super) fn push(&mut self, span: Range<usize>, path: impl Into<String>, problem: Problem) {
        let (line, column) = self.positions.line_column(span.start);
        self.errors.push(AgreementError {
            line,
            column,
            path: path.into(),
            problem,
        });
    }

    /// The 1-based line of a byte offset, for messages that point to another place.
    pub(super) fn line(&self, offset: usize) -> usize {
        self.positions.line(offset)
    }

    /// Whether anything was recorded.
    pub(super) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors found, or `None` when there were none.
    pub(super) fn finish(self) -> Option<AgreementErrors> {
        (!self.errors.is_empty()).then(|| AgreementErrors::new(self.errors))
    }
}

// === key paths for parser errors ===

/// The key path (`direction[0].reply_days`) of the innermost key or value at `offset`, for the
/// TOML parser's errors, which carry a span but not the path.
pub(super) fn path_at(table: &DeTable<'_>, offset: usize) -> String {
    let mut segments = Vec::new();
    table_path(table, offset, &mut segments);
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
            }
            Segment::Index(index) => {
                // Writing to a String cannot fail.
                let _ = write!(path, "[{index}]");
            }
        }
    }
    path
}

/// One step of a key path.
enum Segment {
    /// A table key.
    Key(String),
    /// An array position, counted from 0.
    Index(usize),
}

/// Whether `span` covers `offset`; an empty span covers only its own position.
fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

/// Appends the path to `offset` inside `table`; returns whether anything in it matched.
fn table_path(table: &DeTable<'_>, offset: usize, segments: &mut Vec<Segment>) -> bool {
    for (key, value) in table {
        segments.push(Segment::Key(key.get_ref().to_string()));
        if covers(&key.span(), offset) || value_path(value.get_ref(), offset, segments) {
            return true;
        }
        if covers(&value.span(), offset) {
            return true;
        }
        segments.pop();
    }
    false
}

/// Appends the path to `offset` inside a value's children; returns whether anything matched.
/// Children are searched even when the value's own span does not cover `offset`, because the
/// span of a `[[direction]]` table is only its header.
fn value_path(value: &DeValue<'_>, offset: usize, segments: &mut Vec<Segment>) -> bool {
    match value {
        DeValue::Table(table) => table_path(table, offset, segments),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                segments.push(Segment::Index(index));
                if value_path(item.get_ref(), offset, segments) || covers(&item.span(), offset) {
                    return true;
                }
                segments.pop();
            }
            false
        }
        _ => false,
    }
}
