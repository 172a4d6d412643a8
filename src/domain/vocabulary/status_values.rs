//! The status values of one person, as answers and notices carry them.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{
    CertificatePresented, CertificateStatus, ContraceptionStatus, MaritalStatus, StatusField, UnknownName,
};
use crate::domain::division::{TownshipCode, VillageCode};

// === impl StatusValues ===

/// The status of one person as an answer or a notice carries it: one optional value per
/// [`StatusField`].
///
/// Every field is optional because no answer carries everything: the responder knows only some
/// fields, and the agreement lets each direction see only some (see [`StatusValues::filtered`]).
/// The serde form (JSON in the database) uses the field names of [`StatusField`] and omits
/// absent fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusValues {
    /// [`StatusField::MaritalStatus`]: decides which certificate rules apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marital_status: Option<MaritalStatus>,
    /// [`StatusField::CertificateNumber`]: lets the destination match the certificate shown at
    /// its window against the one the origin issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_number: Option<String>,
    /// [`StatusField::CertificateValidUntil`]: the last day the certificate is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_valid_until: Option<NaiveDate>,
    /// [`StatusField::CertificateStatus`]: the verification verdict itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_status: Option<CertificateStatus>,
    /// [`StatusField::ChildrenCount`]: childbearing status as the certificate records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children_count: Option<u8>,
    /// [`StatusField::ContraceptionStatus`]: decides whether the person is a key subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contraception_status: Option<ContraceptionStatus>,
    /// [`StatusField::ContraceptionDate`]: when the contraception status was last established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contraception_date: Option<NaiveDate>,
    /// [`StatusField::Pregnant`]: makes the person a key subject with urgent deadlines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pregnant: Option<bool>,
    /// [`StatusField::RegisteredSince`]: since when the person is registered at her address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_since: Option<NaiveDate>,
    /// [`StatusField::Township`]: the township responsible for the person, so the asker can
    /// route follow-ups and count indicators per township.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub township: Option<TownshipCode>,
    /// [`StatusField::Village`]: the village or community responsible for the person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub village: Option<VillageCode>,
    /// [`StatusField::CertificatePresented`]: whether the certificate shown at the asker's
    /// window belongs to the person the ID names. Set by the responder for each inquiry; a
    /// registry never stores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_presented: Option<CertificatePresented>,
}

/// An operator's value for a status field that does not fit the field's format.
///
/// It names the field and the expected format but never repeats the value: the value may be a
/// person's data, and errors must not echo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: expected {}", field.value_format())]
pub struct FieldValueError {
    /// The field whose value was rejected.
    pub field: StatusField,
}

/// An operator's `name=value` input that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// The input has no `=`, so it names no field and value.
    #[error("expected name=value, for example marital_status=married")]
    MissingEquals,
    /// The name before `=` is not a status field.
    #[error(transparent)]
    UnknownField(#[from] UnknownName),
    /// The value after `=` does not fit the field.
    #[error(transparent)]
    Value(#[from] FieldValueError),
}

impl StatusField {
    /// Whether the field describes one inquiry rather than the person
    /// ([`StatusField::CertificatePresented`]): a registry never holds it, an import file has
    /// no column for it, and reconciliation never compares it.
    pub const fn describes_an_inquiry(self) -> bool {
        matches!(self, Self::CertificatePresented)
    }

    /// How a value of this field is written in operator input and shown by
    /// [`StatusValues::get_string`]: for help texts and error messages.
    pub fn value_format(self) -> String {
        match self {
            Self::MaritalStatus => one_of(MaritalStatus::NAMES),
            Self::CertificateStatus => one_of(CertificateStatus::NAMES),
            Self::CertificatePresented => one_of(CertificatePresented::NAMES),
            Self::ContraceptionStatus => one_of(ContraceptionStatus::NAMES),
            Self::CertificateNumber => {
                format!("1 to {MAX_CERTIFICATE_NUMBER_CHARS} characters without spaces")
            }
            Self::CertificateValidUntil | Self::ContraceptionDate | Self::RegisteredSince => {
                "a date as YYYY-MM-DD, for example 2028-05-31".to_owned()
            }
            Self::ChildrenCount => "a whole number from 0 to 255".to_owned(),
            Self::Pregnant => "true or false (also yes/no, 是/否)".to_owned(),
            Self::Township => {
                "a 9-digit township code from the national list, for example 430703001".to_owned()
            }
            Self::Village => {
                "a 12-digit village code from the national list, for example 430703001001".to_owned()
            }
        }
    }
}

/// What kind of value a status field holds: what a form offers for it (a choice of names, a
/// date picker, a number), in step with what [`StatusValues::set`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// One of these names.
    Choice(&'static [&'static str]),
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A whole number from 0 to 255.
    Count,
    /// Yes or no.
    YesNo,
    /// Free text without spaces (a certificate number).
    Text,
    /// A 9-digit township code.
    Township,
    /// A 12-digit village code.
    Village,
}

impl ValueType {
    /// Its name on the operator API (`choice`, `date`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Choice(_) => "choice",
            Self::Date => "date",
            Self::Count => "count",
            Self::YesNo => "yes_no",
            Self::Text => "text",
            Self::Township => "township",
            Self::Village => "village",
        }
    }

    /// The names a choice allows (empty for any other type).
    pub const fn allowed_values(self) -> &'static [&'static str] {
        match self {
            Self::Choice(names) => names,
            _ => &[],
        }
    }
}

impl StatusField {
    /// What kind of value the field holds.
    pub const fn value_type(self) -> ValueType {
        match self {
            Self::MaritalStatus => ValueType::Choice(MaritalStatus::NAMES),
            Self::CertificateStatus => ValueType::Choice(CertificateStatus::NAMES),
            Self::CertificatePresented => ValueType::Choice(CertificatePresented::NAMES),
            Self::ContraceptionStatus => ValueType::Choice(ContraceptionStatus::NAMES),
            Self::CertificateNumber => ValueType::Text,
            Self::CertificateValidUntil | Self::ContraceptionDate | Self::RegisteredSince => ValueType::Date,
            Self::ChildrenCount => ValueType::Count,
            Self::Pregnant => ValueType::YesNo,
            Self::Township => ValueType::Township,
            Self::Village => ValueType::Village,
        }
    }
}

/// Renders an enumeration's names as an expected format.
fn one_of(names: &[&str]) -> String {
    format!("one of {}", names.join(", "))
}

/// The longest certificate number accepted: longer than any real one, short enough that a
/// pasted paragraph is caught.
const MAX_CERTIFICATE_NUMBER_CHARS: usize = 64;

impl StatusValues {
    /// A copy holding only the fields in `allowed`: data minimisation, applied by the sender
    /// to every answer so that a direction sees only what its agreement lets it see.
    pub fn filtered(&self, allowed: &BTreeSet<StatusField>) -> StatusValues {
        let mut kept = self.clone();
        for &field in StatusField::ALL {
            if !allowed.contains(&field) {
                kept.clear(field);
            }
        }
        kept
    }

    /// The fields that hold a value: to check an answer against the agreed fields, and to show
    /// an operator what is still missing.
    pub fn present_fields(&self) -> BTreeSet<StatusField> {
        StatusField::ALL
            .iter()
            .copied()
            .filter(|&field| self.is_present(field))
            .collect()
    }

    /// Whether `field` holds a value.
    pub fn is_present(&self, field: StatusField) -> bool {
        match field {
            StatusField::MaritalStatus => self.marital_status.is_some(),
            StatusField::CertificateNumber => self.certificate_number.is_some(),
            StatusField::CertificateValidUntil => self.certificate_valid_until.is_some(),
            StatusField::CertificateStatus => self.certificate_status.is_some(),
            StatusField::ChildrenCount => self.children_count.is_some(),
            StatusField::ContraceptionStatus => self.contraception_status.is_some(),
            StatusField::ContraceptionDate => self.contraception_date.is_some(),
            StatusField::Pregnant => self.pregnant.is_some(),
            StatusField::RegisteredSince => self.registered_since.is_some(),
            StatusField::Township => self.township.is_some(),
            StatusField::Village => self.village.is_some(),
            StatusField::CertificatePresented => self.certificate_presented.is_some(),
        }
    }

    /// Removes the value of `field`, for filtering and for an operator correcting an answer.
    pub fn clear(&mut self, field: StatusField) {
        match field {
            StatusField::MaritalStatus => self.marital_status = None,
            StatusField::CertificateNumber => self.certificate_number = None,
            StatusField::CertificateValidUntil => self.certificate_valid_until = None,
            StatusField::CertificateStatus => self.certificate_status = None,
            StatusField::ChildrenCount => self.children_count = None,
            StatusField::ContraceptionStatus => self.contraception_status = None,
            StatusField::ContraceptionDate => self.contraception_date = None,
            StatusField::Pregnant => self.pregnant = None,
            StatusField::RegisteredSince => self.registered_since = None,
            StatusField::Township => self.township = None,
            StatusField::Village => self.village = None,
            StatusField::CertificatePresented => self.certificate_presented = None,
        }
    }

    /// Sets `field` from an operator's text (surrounding spaces ignored), in the format
    /// [`StatusField::value_format`] describes. On error the field keeps its old value.
    pub fn set(&mut self, field: StatusField, value: &str) -> Result<(), FieldValueError> {
        let value = value.trim();
        let invalid = FieldValueError { field };
        match field {
            StatusField::MaritalStatus => {
                self.marital_status = Some(value.parse().map_err(|_| invalid)?);
            }
            StatusField::CertificateNumber => {
                let fits = (1..=MAX_CERTIFICATE_NUMBER_CHARS).contains(&value.chars().count())
                    && !value.chars().any(|c| c.is_whitespace() || c.is_control());
                if !fits {
                    return Err(invalid);
                }
                self.certificate_number = Some(value.to_owned());
            }
            StatusField::CertificateValidUntil => {
                self.certificate_valid_until = Some(parse_date(value).ok_or(invalid)?);
            }
            StatusField::CertificateStatus => {
                self.certificate_status = Some(value.parse().map_err(|_| invalid)?);
            }
            StatusField::ChildrenCount => {
                self.children_count = Some(value.parse().map_err(|_| invalid)?);
            }
            StatusField::ContraceptionStatus => {
                self.contraception_status = Some(value.parse().map_err(|_| invalid)?);
            }
            StatusField::ContraceptionDate => {
                self.contraception_date = Some(parse_date(value).ok_or(invalid)?);
            }
            StatusField::Pregnant => self.pregnant = Some(parse_yes_no(value).ok_or(invalid)?),
            StatusField::RegisteredSince => {
                self.registered_since = Some(parse_date(value).ok_or(invalid)?);
            }
            StatusField::Township => {
                self.township = Some(TownshipCode::parse(value).map_err(|_| invalid)?);
            }
            StatusField::Village => {
                self.village = Some(VillageCode::parse(value).map_err(|_| invalid)?);
            }
            StatusField::CertificatePresented => {
                self.certificate_presented = Some(value.parse().map_err(|_| invalid)?);
            }
        }
        Ok(())
    }

    /// Applies an operator's `name=value` input (for example `pregnant=no`) and returns the field
    /// it set, so a command line can take answers as a list of assignments.
    pub fn set_assignment(&mut self, input: &str) -> Result<StatusField, AssignmentError> {
        let (name, value) = input.split_once('=').ok_or(AssignmentError::MissingEquals)?;
        let field: StatusField = name.trim().parse()?;
        self.set(field, value)?;
        Ok(field)
    }

    /// The value of `field` as text, in the same format [`StatusValues::set`] accepts, for
    /// display; `None` when the field holds no value.
    pub fn get_string(&self, field: StatusField) -> Option<String> {
        match field {
            StatusField::MaritalStatus => self.marital_status.map(|v| v.as_str().to_owned()),
            StatusField::CertificateNumber => self.certificate_number.clone(),
            StatusField::CertificateValidUntil => self.certificate_valid_until.map(format_date),
            StatusField::CertificateStatus => self.certificate_status.map(|v| v.as_str().to_owned()),
            StatusField::ChildrenCount => self.children_count.map(|v| v.to_string()),
            StatusField::ContraceptionStatus => self.contraception_status.map(|v| v.as_str().to_owned()),
            StatusField::ContraceptionDate => self.contraception_date.map(format_date),
            StatusField::Pregnant => self.pregnant.map(|v| v.to_string()),
            StatusField::RegisteredSince => self.registered_since.map(format_date),
            StatusField::Township => self.township.map(|v| v.as_str().to_owned()),
            StatusField::Village => self.village.map(|v| v.as_str().to_owned()),
            StatusField::CertificatePresented => self.certificate_presented.map(|v| v.as_str().to_owned()),
        }
    }
}

/// Parses a calendar date written as `YYYY-MM-DD` (ISO 8601, the only format operators are
/// shown), rejecting impossible dates such as 2026-02-30.
fn parse_date(value: &str) -> Option<NaiveDate> {
    let well_formed = value.len() == 10
        && value.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !well_formed {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// Formats a date the way [`parse_date`] reads it.
fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Parses the yes/no answers operators type, in English or Chinese.
fn parse_yes_no(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "是" => Some(true),
        "false" | "no" | "n" | "0" | "否" => Some(false),
        _ => None,
    }
}
