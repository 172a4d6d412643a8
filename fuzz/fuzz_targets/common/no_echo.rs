//! The no-echo check the targets share: a refusal never quotes a request value that failed
//! validation (src/domain/privacy.rs).
//!
//! Checked by shape, not by looking for the value in the text: a message with every run of
//! digits replaced by `N` must be one of the fixed messages the code can give. A substring test
//! is not enough: libFuzzer learns the wording of a message from the comparisons of such a test
//! and soon sends a piece of it (`haracter 1 is n`) as the value.

// Each target uses the parts it needs.
#![allow(dead_code)]

use hancha::domain::resident_id::ResidentIdError;
use hancha::domain::vocabulary::{FieldValueError, StatusField};

/// `text` with every run of ASCII digits replaced by `N`.
pub fn shape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// The shapes of every `ResidentIdError` message. Built from the variants with stand-in values,
/// so a message that showed a variant's value (the character found, the birth date digits) would
/// not have one of these shapes for other values.
pub fn resident_id_shapes() -> Vec<String> {
    let date = chrono::NaiveDate::from_ymd_opt(1899, 12, 31).expect("a date");
    [
        ResidentIdError::SurroundingWhitespace,
        ResidentIdError::WrongLength { got: 0 },
        ResidentIdError::Legacy15,
        ResidentIdError::LegacyWrongLength { got: 0 },
        ResidentIdError::UnexpectedCharacter {
            position: 1,
            found: 'Q',
            expected: "a digit",
        },
        ResidentIdError::UnexpectedCharacter {
            position: 18,
            found: 'Q',
            expected: "a digit or X",
        },
        ResidentIdError::UnknownProvince { code: 99 },
        ResidentIdError::ImpossibleBirthDate {
            digits: "QQQQQQQQ".to_owned(),
        },
        ResidentIdError::FutureBirthDate { date },
        ResidentIdError::BirthDateTooEarly { date },
        ResidentIdError::WrongCheckCharacter {
            found: 'Q',
            expected: 'Z',
        },
    ]
    .iter()
    .map(|error| shape(&error.to_string()))
    .collect()
}

/// The shapes of the status-field messages: an unknown name (which lists the names) and a value
/// that does not fit each field (which names the field and its format).
pub fn status_field_shapes() -> Vec<String> {
    let unknown = "Q".parse::<StatusField>().expect_err("not a status field");
    std::iter::once(shape(&unknown.to_string()))
        .chain(
            StatusField::ALL
                .iter()
                .map(|&field| shape(&FieldValueError { field }.to_string())),
        )
        .collect()
}
