//! One row of a registry import file (a CSV exported by a township's or county's own system),
//! checked and turned into a [`Person`], with every reason a row is refused.
//!
//! # Columns
//!
//! The header row names the columns, in any order; names are matched after trimming spaces and
//! ASCII case. An empty cell is an absent value. Importing a row replaces everything stored
//! about that person, so an empty cell clears what was stored for that field.
//!
//! | column | required | value |
//! |---|---|---|
//! | `resident_id` | yes | 18-character resident ID number (公民身份号码); a lowercase `x` is read as `X` |
//! | `name` | yes | the name as registered, at most 64 characters |
//! | `flow` | yes | `inflow` (流入: lives here, registered elsewhere) or `outflow` (流出: registered here, lives elsewhere); `流入` and `流出` are accepted too |
//! | `registered_county` | inflow: yes; outflow: no | 6-digit code of the county of registration (户籍地). For an outflow person it is this node's county, which is also the default; for an inflow person it must be another county |
//! | `residence_county` | inflow: no; outflow: yes | 6-digit code of the county of residence (现居住地). For an inflow person it is this node's county, which is also the default; for an outflow person it must be another county |
//! | `township` | no | 9-digit township (乡镇/街道) in this node's county: where an inflow person lives, or where an outflow person is registered. When empty and `village` is given, it is taken from the village |
//! | `village` | no | 12-digit village or community (村/社区) code in `township` |
//! | `marital_status` | no | `single`, `married`, `divorced` or `widowed` |
//! | `certificate_number` | no | marriage-and-childbearing certificate number, 1–64 characters without spaces |
//! | `certificate_valid_until` | no | date `YYYY-MM-DD` |
//! | `certificate_status` | no | `valid`, `expired`, `revoked` or `none` |
//! | `children_count` | no | whole number 0–255 |
//! | `contraception_status` | no | `long_acting`, `short_acting`, `none` or `not_applicable` |
//! | `contraception_date` | no | date `YYYY-MM-DD` |
//! | `pregnant` | no | `true`/`false` (also `yes`/`no`, `1`/`0`, `是`/`否`) |
//! | `registered_since` | no | date `YYYY-MM-DD` |
//!
//! Any other column refuses the whole file ([`check_header`]): a misspelt column would otherwise
//! silently clear that field for everyone in the file.
//!
//! Reasons never repeat a resident ID number or a name: they go to operators' screens, logs and
//! scripts, and the line number already says which row is meant. Division codes and vocabulary
//! names name places and categories, not people, so they may be quoted.

use std::collections::{BTreeSet, HashMap};

use crate::domain::division::{CountyCode, TownshipCode, VillageCode};
use crate::domain::person::{Flow, Person};
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{StatusField, StatusValues, UnknownName};

/// Every column an import file may have: the person's identity columns, then the status fields
/// by their [`StatusField`] names except those that describe an inquiry (a unit test keeps the
/// two lists in step).
pub const COLUMNS: &[&str] = &[
    "resident_id",
    "name",
    "flow",
    "registered_county",
    "residence_county",
    "marital_status",
    "certificate_number",
    "certificate_valid_until",
    "certificate_status",
    "children_count",
    "contraception_status",
    "contraception_date",
    "pregnant",
    "registered_since",
    "township",
    "village",
];

/// Columns without which no row of the file could be imported.
pub const REQUIRED_COLUMNS: &[&str] = &["resident_id", "name", "flow"];

/// The longest name accepted: longer than any registered name (transliterated minority names
/// included), short enough that a shifted column (a pasted address) is caught.
pub const MAX_NAME_CHARS: usize = 64;

/// What is wrong with a file's header row; any of these refuses the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A column that is not in [`COLUMNS`], by its position in the header (1-based); the
    /// message lists the allowed ones and never quotes the name (it could be anything).
    #[error("header column {position}: {error}")]
    Unknown {
        /// Where in the header, counted from 1.
        position: usize,
        /// The name and what was allowed.
        error: UnknownName,
    },
    /// The same column twice: which of the two cells counts would be a guess.
    #[error("column {0} appears more than once")]
    Duplicate(String),
    /// A column of [`REQUIRED_COLUMNS`] is missing.
    #[error("required column {0} is missing")]
    Missing(&'static str),
}

/// Checks one column name against [`COLUMNS`].
pub fn check_column(name: &str) -> Result<(), UnknownName> {
    if COLUMNS.contains(&name) {
        return Ok(());
    }
    Err(UnknownName {
        what: "column",
        given: name.to_owned(),
        allowed: COLUMNS,
    })
}

/// Checks a file's header row: every column known, none twice, the required ones present.
/// Returns every problem, in header order, then the missing columns.
pub fn check_header<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), Vec<HeaderError>> {
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, name) in names.into_iter().enumerate() {
        if let Err(error) = check_column(name) {
            errors.push(HeaderError::Unknown {
                position: index + 1,
                error,
            });
        } else if !seen.insert(name) {
            errors.push(HeaderError::Duplicate(name.to_owned()));
        }
    }
    for required in REQUIRED_COLUMNS {
        if !seen.contains(required) {
            errors.push(HeaderError::Missing(required));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// The row's resident ID number as written (trimmed, `x` as `X`), unvalidated: the key by which
/// a later row of a file supersedes an earlier one, whether or not either is valid.
pub fn resident_id_key(columns: &HashMap<String, String>) -> Option<String> {
    let cell = columns.get("resident_id")?.trim();
    (!cell.is_empty()).then(|| cell.to_ascii_uppercase())
}

/// The reason given for a row that a later row with the same resident ID number replaces.
pub fn superseded_reason(later_line: u32) -> String {
    format!("superseded by line {later_line}, which has the same resident_id")
}

/// The reason given for a sweep row that names a person an earlier row of the file names: the
/// first row is the one asked about.
pub fn repeated_reason(first_line: u32) -> String {
    format!("the same person is already on line {first_line}")
}

/// Checks one row (column name → cell) and builds the person it describes, as seen by the node
/// of county `me`; on failure returns every reason, each starting with the column it is about.
pub fn person_from_columns(columns: &HashMap<String, String>, me: CountyCode) -> Result<Person, Vec<String>> {
    let mut reasons = Vec::new();
    let mut names: Vec<&str> = columns.keys().map(String::as_str).collect();
    names.sort_unstable();
    reasons.extend(
        names
            .into_iter()
            .filter_map(|name| check_column(name).err())
            .map(|error| error.to_string()),
    );
    let cell = |name: &str| {
        columns
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    };

    let resident_id = match cell("resident_id") {
        None => {
            reasons.push("resident_id: required".to_owned());
            None
        }
        Some(text) => match ResidentId::parse(text) {
            Ok(id) => Some(id),
            Err(_) if looks_like_scientific_notation(text) => {
                reasons.push(
                    "resident_id: shortened to a number by a spreadsheet (like 4.3E+17); format the \
                     column as text and export again"
                        .to_owned(),
                );
                None
            }
            Err(error) => {
                reasons.push(format!("resident_id: {error}"));
                None
            }
        },
    };

    let name = match cell("name") {
        None => {
            reasons.push("name: required".to_owned());
            None
        }
        Some(text) if text.chars().count() > MAX_NAME_CHARS => {
            reasons.push(format!("name: longer than {MAX_NAME_CHARS} characters"));
            None
        }
        Some(text) if text.chars().any(char::is_control) => {
            reasons.push("name: contains a control character (a line break or tab)".to_owned());
            None
        }
        Some(text) => Some(text.to_owned()),
    };

    let flow = match cell("flow") {
        None => {
            reasons.push("flow: required (inflow or outflow, also 流入 or 流出)".to_owned());
            None
        }
        Some(text) => {
            let flow = parse_flow(text);
            if flow.is_none() {
                reasons.push("flow: expected inflow or outflow (also 流入 or 流出)".to_owned());
            }
            flow
        }
    };

    // `Err(())`: the cell holds no county code, already reported.
    let mut county = |column: &str| -> Result<Option<CountyCode>, ()> {
        cell(column).map(CountyCode::parse).transpose().map_err(|error| {
            reasons.push(format!("{column}: {error}"));
        })
    };
    let registered = county("registered_county");
    let residence = county("residence_county");
    let counties = match (flow, registered, residence) {
        (Some(flow), Ok(registered), Ok(residence)) => counties_for(flow, me, registered, residence)
            .map_err(|reason| reasons.push(reason))
            .ok(),
        _ => None,
    };

    let mut status = StatusValues::default();
    for &field in StatusField::ALL {
        if matches!(field, StatusField::Township | StatusField::Village) || field.describes_an_inquiry() {
            continue;
        }
        if let Some(text) = cell(field.as_str())
            && let Err(error) = status.set(field, text)
        {
            reasons.push(error.to_string());
        }
    }
    match township_and_village(cell("township"), cell("village"), me) {
        Ok((township, village)) => {
            status.township = township;
            status.village = village;
        }
        Err(reason) => reasons.push(reason),
    }

    match (resident_id, name, flow, counties) {
        (Some(resident_id), Some(name), Some(flow), Some((registered_county, residence_county)))
            if reasons.is_empty() =>
        {
            Ok(Person {
                resident_id,
                name,
                flow,
                registered_county,
                residence_county,
                status,
            })
        }
        _ => Err(reasons),
    }
}

/// Applies the flow's rule to the two counties: the one the flow ties to this county
/// (residence for inflow, registration for outflow) must be this county and defaults to it; the
/// other is required and must be another county. Compared through renames, so a historical code
/// of this county counts as this county.
fn counties_for(
    flow: Flow,
    me: CountyCode,
    registered: Option<CountyCode>,
    residence: Option<CountyCode>,
) -> Result<(CountyCode, CountyCode), String> {
    let here = |county: CountyCode| county.current() == me.current();
    match flow {
        Flow::Inflow => {
            let residence = residence.unwrap_or(me);
            if !here(residence) {
                return Err(format!(
                    "residence_county: an inflow person lives in this county ({me}), not in {residence}"
                ));
            }
            let Some(registered) = registered else {
                return Err(
                    "registered_county: required for an inflow person (the county of registration)"
                        .to_owned(),
                );
            };
            if here(registered) {
                return Err(format!(
                    "registered_county: an inflow person is registered in another county, not in this one ({me})"
                ));
            }
            Ok((registered, residence))
        }
        Flow::Outflow => {
            let registered = registered.unwrap_or(me);
            if !here(registered) {
                return Err(format!(
                    "registered_county: an outflow person is registered in this county ({me}), not in {registered}"
                ));
            }
            let Some(residence) = residence else {
                return Err(
                    "residence_county: required for an outflow person (the county of residence)".to_owned(),
                );
            };
            if here(residence) {
                return Err(format!(
                    "residence_county: an outflow person lives in another county, not in this one ({me})"
                ));
            }
            Ok((registered, residence))
        }
    }
}

/// The township must lie in this county and the village in the township; a village without a
/// township gives the township.
fn township_and_village(
    township: Option<&str>,
    village: Option<&str>,
    me: CountyCode,
) -> Result<(Option<TownshipCode>, Option<VillageCode>), String> {
    let township = township
        .map(|text| TownshipCode::parse_within(text, me))
        .transpose()
        .map_err(|error| format!("township: {error}"))?;
    let Some(village_text) = village else {
        return Ok((township, None));
    };
    let village = match township {
        Some(township) => VillageCode::parse_within(village_text, township),
        None => VillageCode::parse(village_text),
    }
    .map_err(|error| format!("village: {error}"))?;
    let township = match township {
        Some(township) => township,
        None => {
            let township = village.township();
            if township.county() != me.current() {
                return Err(format!("village: {village} is not in this county ({me})"));
            }
            township
        }
    };
    Ok((Some(township), Some(village)))
}

/// `inflow`/`outflow` in any ASCII case, or 流入/流出.
fn parse_flow(text: &str) -> Option<Flow> {
    match text {
        "流入" => Some(Flow::Inflow),
        "流出" => Some(Flow::Outflow),
        _ => Flow::parse(&text.to_ascii_lowercase()),
    }
}

/// Whether a cell looks like a spreadsheet's rendering of a long number (`4.30703E+17`), the
/// usual fate of an ID column not formatted as text.
fn looks_like_scientific_notation(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    let Some((mantissa, exponent)) = upper.split_once("E+") else {
        return false;
    };
    !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !exponent.is_empty()
        && exponent.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests;
