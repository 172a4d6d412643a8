//! When the nightly reconciliation with a peer county runs: a standard five-field cron expression
//! read on China Standard Time (Asia/Shanghai), so that `0 2 * * *` means 02:00 at the county
//! offices whatever time zone the node's host is set to.
//!
//! The fields are `minute hour day-of-month month day-of-week`. Each is `*`, a number, a range
//! `1-5`, a step `*/15` or `10-50/10`, or a comma-separated list of these; months may be named
//! `JAN`–`DEC` and weekdays `SUN`–`SAT` (in any case), and weekday 7 is Sunday like 0. As in
//! crontab(5), when both day fields are restricted (contain no `*`) a day matches when *either*
//! does: `0 2 1 * MON` runs on the first of every month and on every Monday, while
//! `0 2 */2 * MON` runs on Mondays with an odd date. The shorthands `@hourly`, `@daily` (or
//! `@midnight`), `@weekly`, `@monthly` and `@yearly` (or `@annually`) stand for the usual
//! expressions.
//!
//! Each field is checked here, so that a refusal names the field and what is wrong with it; the
//! `croner` crate then finds the times.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use hancha::domain::schedule::Schedule;
//!
//! let nightly = Schedule::default();
//! assert_eq!(nightly.to_string(), "0 2 * * *");
//! // 02:00 in Shanghai is 18:00 UTC the evening before.
//! let noon = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
//! let next = Utc.with_ymd_and_hms(2026, 3, 1, 18, 0, 0).unwrap();
//! assert_eq!(nightly.next_after(noon), Some(next));
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, FixedOffset, Offset, TimeDelta, TimeZone, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use crate::domain::time::{CHINA, china_time};

/// How far ahead [`Schedule::next_after`] looks before concluding that nothing matches. Eight
/// years, not five, so that `0 0 29 2 *` finds 29 February across 2100, which is no leap year.
const HORIZON: Days = Days::new(8 * 366);

/// Offsets in Asia/Shanghai changed at most twice a year (summer time, last in 1991), so looking
/// at the offset once a day finds every change between two instants.
const OFFSET_PROBE: TimeDelta = TimeDelta::days(1);

/// One of the five fields of an expression, in order, as error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    /// The field's name, its bounds (day-of-week 7 is Sunday again), the names it accepts
    /// (standing for the values from the lower bound on), and what a value looks like.
    fn spec(self) -> (&'static str, u32, u32, &'static [&'static str], &'static str) {
        const MONTHS: &[&str] = &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        const WEEKDAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        match self {
            Field::Minute => ("minute", 0, 59, &[], "a number 0-59"),
            Field::Hour => ("hour", 0, 23, &[], "a number 0-23"),
            Field::DayOfMonth => ("day-of-month", 1, 31, &[], "a number 1-31"),
            Field::Month => ("month", 1, 12, MONTHS, "a number 1-12 or a name JAN-DEC"),
            Field::DayOfWeek => ("day-of-week", 0, 7, WEEKDAYS, "a number 0-7 or a name SUN-SAT"),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec().0)
    }
}

/// Why a schedule was refused; the message names the field and quotes the offending part, so
/// an operator can fix the configuration file from the message alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing but whitespace.
    #[error(
        "schedule is empty; expected 5 fields (minute hour day-of-month month day-of-week) or a \
         shorthand such as @daily"
    )]
    Empty,
    /// Not five fields (and not a single shorthand).
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {found}")]
    FieldCount { found: usize },
    /// `@` followed by something other than the supported shorthands (`@reboot` has no meaning
    /// for a node that runs continuously).
    #[error(
        "unknown shorthand `{shorthand}`; expected @hourly, @daily, @midnight, @weekly, \
         @monthly, @yearly or @annually"
    )]
    UnknownShorthand { shorthand: String },
    /// One field is malformed: which, and how.
    #[error("{field}: {problem}")]
    Field { field: Field, problem: FieldProblem },
    /// An expression our checks accept but the cron evaluator refused; not expected, since it
    /// is handed plain lists of numbers.
    #[error("schedule `{text}` could not be evaluated: {reason}")]
    Evaluator { text: String, reason: String },
}

/// What is wrong within one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// `1,,2` or a trailing comma.
    #[error("`{list}` has an empty list element")]
    EmptyElement { list: String },
    /// Neither digits nor one of the field's names.
    #[error("`{text}` is not {expected}")]
    NotAValue { text: String, expected: &'static str },
    /// Digits, but outside the field's range (kept as written: it may not fit any integer).
    #[error("{value} is out of range {min}-{max}")]
    OutOfRange { value: String, min: u32, max: u32 },
    /// `17-9`: cron ranges do not wrap around.
    #[error("range `{range}` runs backwards; ranges do not wrap around, list both parts instead")]
    Backwards { range: String },
    /// `*/0`, `*/x`.
    #[error("step `{step}` is not a whole number of at least 1")]
    BadStep { step: String },
    /// `5/10`, which some crons read as `5-59/10` and others as `5`: refused rather than guessed.
    #[error("`{element}` has a step but no range; write `{suggestion}` or `*/{step}`")]
    StepWithoutRange {
        element: String,
        suggestion: String,
        step: String,
    },
}

/// A validated cron expression on China Standard Time. The fields are checked here, so that a
/// refusal names the field and what is wrong with it; the `croner` crate finds the times.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Schedule {
    /// The expression as parsed (whitespace collapsed, names upper-case, shorthands lower-case),
    /// so that logs and `config show` print what the operator wrote.
    text: String,
    /// The same schedule for the evaluator: every field written out as the list of values it
    /// stands for, and the day fields combined as crontab(5) has it for the text (see
    /// [`Schedule::from_fields`]), so that no difference between cron dialects can creep in.
    cron: Cron,
}

impl Schedule {
    /// Parses a five-field expression or a shorthand such as `@daily`.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [] => Err(ScheduleError::Empty),
            [shorthand] if shorthand.starts_with('@') => {
                let shorthand = shorthand.to_ascii_lowercase();
                let expression = match shorthand.as_str() {
                    "@hourly" => "0 * * * *",
                    "@daily" | "@midnight" => "0 0 * * *",
                    "@weekly" => "0 0 * * 0",
                    "@monthly" => "0 0 1 * *",
                    "@yearly" | "@annually" => "0 0 1 1 *",
                    _ => return Err(ScheduleError::UnknownShorthand { shorthand }),
                };
                let mut schedule = Schedule::parse(expression)?;
                schedule.text = shorthand;
                Ok(schedule)
            }
            [_, _, _, _, _] => Schedule::from_fields(&fields),
            _ => Err(ScheduleError::FieldCount { found: fields.len() }),
        }
    }

    fn from_fields(fields: &[&str]) -> Result<Schedule, ScheduleError> {
        let mut lists = Vec::with_capacity(5);
        for (field, text) in Field::ALL.into_iter().zip(fields) {
            let values =
                parse_field(field, text).map_err(|problem| ScheduleError::Field { field, problem })?;
            lists.push(values);
        }
        let text = fields
            .iter()
            .map(|f| f.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" ");
        // As in crontab(5), a day field containing `*` (even `*/2`) does not restrict the day;
        // when both do, a day matches when either does. Crons differ on `*/2` (croner reads only
        // a bare `*` as unrestricted), so the rule is decided here and the evaluator told.
        let restricted = |text: &str| !text.contains('*');
        let days_either = restricted(fields[2]) && restricted(fields[4]);
        let evaluated = lists
            .iter()
            .map(|values| list(values))
            .collect::<Vec<_>>()
            .join(" ");
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .dom_and_dow(!days_either)
            .build()
            .parse(&evaluated)
            .map_err(|error| ScheduleError::Evaluator {
                text: text.clone(),
                reason: error.to_string(),
            })?;
        Ok(Schedule { text, cron })
    }

    /// The first instant strictly after `after` at which the Shanghai wall clock shows a
    /// matching minute (second 0), or `None` if there is none within eight years (`0 0 31 2 *`).
    ///
    /// China has kept UTC+8 since 1991; in the summer-time years before, a minute in the hour
    /// skipped each April never fires and one in the hour repeated each September fires twice.
    /// The evaluator is asked on the offset in force, and asked again from the change if the
    /// offset changed before its answer.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // `from` is inclusive from here on: the first whole second that may be the answer.
        let mut from = ceil_to_second(after.checked_add_signed(TimeDelta::nanoseconds(1))?)?;
        let horizon = from.checked_add_days(HORIZON)?;
        loop {
            let offset = offset_at(from);
            let candidate = self
                .cron
                .find_next_occurrence(&from.with_timezone(&offset), true)
                .ok()?
                .with_timezone(&Utc);
            if candidate > horizon {
                return None;
            }
            match first_offset_change(from, candidate, offset) {
                None => return Some(candidate),
                Some(change) => from = change,
            }
        }
    }

    /// Whether the schedule fires in the minute that contains `at`.
    pub fn matches(&self, at: DateTime<Utc>) -> bool {
        let minute = china_time(at).with_second(0).and_then(|t| t.with_nanosecond(0));
        minute.is_some_and(|minute| self.cron.is_time_matching(&minute).unwrap_or(false))
    }
}

/// The values of one field as a cron list (`0,15,30,45`).
fn list(values: &[u32]) -> String {
    values.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The values one field stands for, in order (a weekday 7 as Sunday, 0), or what is wrong with it.
fn parse_field(field: Field, text: &str) -> Result<Vec<u32>, FieldProblem> {
    let (_, min, max, _, _) = field.spec();
    let mut set = std::collections::BTreeSet::new();
    for element in text.split(',') {
        if element.is_empty() {
            return Err(FieldProblem::EmptyElement {
                list: text.to_owned(),
            });
        }
        let (range, step) = match element.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (element, None),
        };
        let (first, last) = if range == "*" {
            (min, max)
        } else if let Some((first, last)) = range.split_once('-') {
            let (first, last) = (value(field, first, element)?, value(field, last, element)?);
            if first > last {
                return Err(FieldProblem::Backwards {
                    range: range.to_owned(),
                });
            }
            (first, last)
        } else {
            let single = value(field, range, element)?;
            if let Some(step) = step {
                return Err(FieldProblem::StepWithoutRange {
                    element: element.to_owned(),
                    suggestion: format!("{range}-{max}/{step}"),
                    step: step.to_owned(),
                });
            }
            (single, single)
        };
        let step = match step {
            None => 1,
            Some(step) => digits(step)
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|&s| s >= 1)
                .ok_or_else(|| FieldProblem::BadStep {
                    step: step.to_owned(),
                })?,
        };
        for v in (first..=last).step_by(step) {
            set.insert(if field == Field::DayOfWeek { v % 7 } else { v });
        }
    }
    Ok(set.into_iter().collect())
}

/// One number or name of `field`; `element` is quoted instead when `text` is empty (`-5`).
fn value(field: Field, text: &str, element: &str) -> Result<u32, FieldProblem> {
    let (_, min, max, names, expected) = field.spec();
    if let Some(digits) = digits(text) {
        return match digits.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(FieldProblem::OutOfRange {
                value: text.to_owned(),
                min,
                max,
            }),
        };
    }
    match names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
        Some(index) => Ok(min + index as u32),
        None => Err(FieldProblem::NotAValue {
            text: if text.is_empty() { element } else { text }.to_owned(),
            expected,
        }),
    }
}

/// `text` if it is one or more ASCII digits (`str::parse` would also take a leading `+`).
fn digits(text: &str) -> Option<&str> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

fn offset_at(instant: DateTime<Utc>) -> FixedOffset {
    CHINA.offset_from_utc_datetime(&instant.naive_utc()).fix()
}

fn ceil_to_second(instant: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let floor = instant.with_nanosecond(0)?;
    if floor == instant {
        Some(floor)
    } else {
        floor.checked_add_signed(TimeDelta::seconds(1))
    }
}

/// The first instant in `(from, to]` at which Shanghai's offset is no longer `offset`, if any:
/// probes daily, then bisects to the second (tz transitions fall on whole seconds).
fn first_offset_change(from: DateTime<Utc>, to: DateTime<Utc>, offset: FixedOffset) -> Option<DateTime<Utc>> {
    let mut probe = from;
    while probe < to {
        let next = probe.checked_add_signed(OFFSET_PROBE).map_or(to, |p| p.min(to));
        if offset_at(next) != offset {
            let (mut same, mut changed) = (probe.timestamp(), next.timestamp() + 1);
            while changed - same > 1 {
                let middle = same + (changed - same) / 2;
                let at = DateTime::from_timestamp(middle, 0)?;
                if offset_at(at) == offset {
                    same = middle;
                } else {
                    changed = middle;
                }
            }
            return DateTime::from_timestamp(changed, 0);
        }
        probe = next;
    }
    None
}

impl Default for Schedule {
    /// 02:00 every night.
    fn default() -> Schedule {
        Schedule::parse("0 2 * * *").expect("the default schedule is valid")
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(text)
    }
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;

    fn try_from(text: String) -> Result<Schedule, ScheduleError> {
        Schedule::parse(&text)
    }
}

impl From<Schedule> for String {
    fn from(schedule: Schedule) -> String {
        schedule.text
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests;
