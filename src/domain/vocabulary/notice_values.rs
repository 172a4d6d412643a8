//! What one notice tells besides its kind, subject and date: the values of its
//! [`NoticeField`]s, each checked for its own form. Which of them may travel is the agreement's
//! decision ([`crate::domain::policy::check_notice_fields`]); that a value is well formed is
//! decided here, once, for the sender before anything is stored and for the receiver on intake.
//!
//! | field | values |
//! |---|---|
//! | `child_sex` | `male` or `female` (男 / 女 accepted and stored as `male` / `female`) |
//! | `birth_order` | a whole number 1–20 |
//! | `birth_place` | text, at most 60 characters, no ID number, no control characters |
//! | `pregnancy_weeks` | a whole number 1–45 |
//! | `expected_date` | `YYYY-MM-DD` |
//! | `check_result` | `normal`, `pregnant`, `ring_missing`, `other` |
//! | `measure` | `iud`, `implant`, `ligation`, `pill`, `condom`, `none` |
//! | `new_county` | a county code of the embedded division list (six digits) |

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use super::{NoticeField, NoticeKind};
use crate::domain::division::CountyCode;
use crate::domain::message::FieldViolation;
use crate::domain::privacy::holds_id_number;

/// The results a contraception check reports.
pub const CHECK_RESULTS: &[&str] = &["normal", "pregnant", "ring_missing", "other"];
/// The contraceptive measures a contraception check reports.
pub const MEASURES: &[&str] = &["iud", "implant", "ligation", "pill", "condom", "none"];
/// The longest `birth_place`, in characters.
pub const MAX_PLACE_CHARS: usize = 60;

/// The checked field values of one notice, each in its one stored spelling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoticeValues(BTreeMap<NoticeField, String>);

impl NoticeValues {
    /// Checks `pairs` (field name, value) for a notice of `kind`: every name a field of that
    /// kind, every value of its field's form. Violations name the field under `path` and say
    /// what is expected, never what was given.
    pub fn parse<'a>(
        kind: NoticeKind,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        path: &str,
    ) -> Result<NoticeValues, Vec<FieldViolation>> {
        let mut values = BTreeMap::new();
        let mut violations = Vec::new();
        for (name, value) in pairs {
            let field = match name.parse::<NoticeField>() {
                Ok(field) => field,
                Err(error) => {
                    violations.push(FieldViolation::new(path, error.to_string()));
                    continue;
                }
            };
            let at = format!("{path}.{field}");
            if field.kind() != kind {
                violations.push(FieldViolation::new(
                    at,
                    format!(
                        "belongs to a {} notice, not {} (fields of {}: {})",
                        field.kind(),
                        kind,
                        kind,
                        names(kind)
                    ),
                ));
                continue;
            }
            match normalized(field, value) {
                Ok(value) => {
                    if values.insert(field, value).is_some() {
                        violations.push(FieldViolation::new(at, "given twice"));
                    }
                }
                Err(expected) => violations.push(FieldViolation::new(at, expected)),
            }
        }
        if violations.is_empty() {
            Ok(NoticeValues(values))
        } else {
            Err(violations)
        }
    }

    /// The fields present.
    pub fn fields(&self) -> impl Iterator<Item = NoticeField> + '_ {
        self.0.keys().copied()
    }

    /// One field's value.
    pub fn get(&self, field: NoticeField) -> Option<&str> {
        self.0.get(&field).map(String::as_str)
    }

    /// (name, value) pairs, for the wire and for display.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.0
            .iter()
            .map(|(field, value)| (field.as_str(), value.as_str()))
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for NoticeValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, &str> = self.pairs().collect();
        map.serialize(serializer)
    }
}

/// The names of `kind`'s fields, for messages.
fn names(kind: NoticeKind) -> String {
    let names: Vec<&str> = NoticeField::of(kind).map(NoticeField::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `value` in its stored spelling, or what the field expects.
fn normalized(field: NoticeField, value: &str) -> Result<String, String> {
    let value = value.trim();
    match field {
        NoticeField::ChildSex => match value {
            "male" | "男" => Ok("male".into()),
            "female" | "女" => Ok("female".into()),
            _ => Err("must be male or female (男 or 女)".into()),
        },
        NoticeField::BirthOrder => whole_number(value, 1, 20),
        NoticeField::PregnancyWeeks => whole_number(value, 1, 45),
        NoticeField::ExpectedDate => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(|date| date.to_string())
            .map_err(|_| "must be a date YYYY-MM-DD".into()),
        NoticeField::CheckResult => one_of(value, CHECK_RESULTS),
        NoticeField::Measure => one_of(value, MEASURES),
        NoticeField::NewCounty => CountyCode::parse(value)
            .map(|county| county.as_str().to_string())
            .map_err(|_| "must be the six-digit code of a county in the division list".into()),
        NoticeField::BirthPlace => {
            if value.is_empty() {
                Err("must not be empty".into())
            } else if value.chars().count() > MAX_PLACE_CHARS {
                Err(format!("must be at most {MAX_PLACE_CHARS} characters"))
            } else if value.chars().any(char::is_control) {
                Err("must not hold control characters".into())
            } else if holds_id_number(value) {
                Err("must not hold an ID number".into())
            } else {
                Ok(value.to_string())
            }
        }
    }
}

fn whole_number(value: &str, low: u32, high: u32) -> Result<String, String> {
    match value.parse::<u32>() {
        Ok(n) if (low..=high).contains(&n) => Ok(n.to_string()),
        _ => Err(format!("must be a whole number from {low} to {high}")),
    }
}

fn one_of(value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(format!("must be one of: {}", allowed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: NoticeKind, pairs: &[(&str, &str)]) -> Result<NoticeValues, Vec<FieldViolation>> {
        NoticeValues::parse(kind, pairs.iter().copied(), "fields")
    }

    #[test]
    fn each_field_is_checked_for_its_form_and_stored_in_one_spelling() {
        let birth = parse(
            NoticeKind::Birth,
            &[
                ("child_sex", "女"),
                ("birth_order", "02"),
                ("birth_place", "鼎城区人民医院"),
            ],
        )
        .unwrap();
        assert_eq!(birth.get(NoticeField::ChildSex), Some("female"));
        assert_eq!(birth.get(NoticeField::BirthOrder), Some("2"));
        let moved = parse(NoticeKind::MovedOn, &[("new_county", "431322")]).unwrap();
        assert_eq!(moved.get(NoticeField::NewCounty), Some("431322"));
    }

    #[test]
    fn malformed_values_are_named_by_field_without_echoing_them() {
        let refused = parse(
            NoticeKind::Pregnancy,
            &[("pregnancy_weeks", "46"), ("expected_date", "2026-13-01")],
        )
        .unwrap_err();
        let fields: Vec<&str> = refused.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["fields.pregnancy_weeks", "fields.expected_date"]);
        assert!(refused.iter().all(|v| !v.description.contains("46")));
        let refused = parse(NoticeKind::Birth, &[("birth_place", "43070319900101002X 家")]).unwrap_err();
        assert_eq!(refused[0].description, "must not hold an ID number");
        assert!(parse(NoticeKind::MovedOn, &[("new_county", "999999")]).is_err());
        assert!(parse(NoticeKind::ContraceptionCheck, &[("measure", "magic")]).is_err());
    }

    #[test]
    fn a_field_of_another_kind_is_refused() {
        let refused = parse(NoticeKind::Birth, &[("check_result", "normal")]).unwrap_err();
        assert_eq!(refused[0].field, "fields.check_result");
        assert!(refused[0].description.contains("contraception_check"));
    }
}
