//! Resident ID numbers (公民身份号码, GB 11643-1999), validated so that a typo is caught at the
//! window instead of sending an inquiry about nobody, and masked so that they never reach a log.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::division::{self, CountyCode};

/// ISO 7064 MOD 11-2 weights of the first 17 characters (2^(18-i) mod 11).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each value of the weighted sum modulo 11.
const CHECK_CHARACTERS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The 15-digit numbers (before 1999) had no century; everyone holding one was born in the 1900s.
const LEGACY_CENTURY: &str = "19";

/// Birth dates before this are taken as typing errors: nobody alive was born earlier.
const EARLIEST_BIRTH_DATE: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");

/// Whether digits 1–2 name a province-level division that issues ID numbers (71, 81 and 82 are
/// for residents of Taiwan, Hong Kong and Macao).
fn is_issuing_province(code: u8) -> bool {
    matches!(code, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82)
}

/// The check character (`0`–`9` or `X`) for the first 17 characters of an ID number.
///
/// Every byte must be an ASCII digit; [`ResidentId::parse`] checks that before calling this.
pub fn check_character(first17: &[u8; 17]) -> char {
    debug_assert!(
        first17.iter().all(u8::is_ascii_digit),
        "check_character needs 17 digits"
    );
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit.wrapping_sub(b'0')) * weight)
        .sum();
    CHECK_CHARACTERS[(sum % 11) as usize]
}

/// Today's date in China, whatever time zone the node runs in: a birth date is "in the future"
/// relative to the calendar of the office that issued the number.
pub use super::time::today_in_china;

/// Why an ID number was refused. Messages describe the offending part by its position and never
/// quote any of the number (not even a fragment: a birth date or the expected check character
/// is personal too), because they may be returned to a peer county. The variants keep the
/// values for callers that show them to the person who typed the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    /// Leading or trailing whitespace. Refused rather than trimmed: it usually means a field was
    /// pasted or split wrongly, and the caller should fix that at its edge, not rely on us.
    #[error("resident id number has leading or trailing whitespace")]
    SurroundingWhitespace,
    /// Not 18 characters (counted as characters, not bytes).
    #[error("resident id number must be 18 characters, got {got}")]
    WrongLength {
        /// How many characters the input had.
        got: usize,
    },
    /// Fifteen digits: a pre-1999 number, which is only converted on explicit request.
    #[error(
        "resident id number has the legacy 15-digit format; it is only accepted after an explicit \
         conversion to 18 characters (e.g. hancha id check --convert-legacy)"
    )]
    Legacy15,
    /// Input to the legacy conversion that is not 15 characters.
    #[error("legacy resident id number must be 15 digits, got {got} characters")]
    LegacyWrongLength {
        /// How many characters the input had.
        got: usize,
    },
    /// A character other than a digit (or, last, `X`).
    #[error("character {position} is not {expected}")]
    UnexpectedCharacter {
        /// 1-based, as a person counts.
        position: usize,
        /// Only the offending character.
        found: char,
        /// "a digit", or "a digit or X" for the check character.
        expected: &'static str,
    },
    /// Digits 1–2 are not a province that issues ID numbers.
    #[error("the province code (characters 1–2) does not exist")]
    UnknownProvince {
        /// Digits 1–2 as a number.
        code: u8,
    },
    /// Digits 7–14 are not a date (e.g. 19490231).
    #[error("the birth date (characters 7–14) is not a calendar date")]
    ImpossibleBirthDate {
        /// Digits 7–14 as given.
        digits: String,
    },
    /// The birth date is after today (in China).
    #[error("the birth date (characters 7–14) is in the future")]
    FutureBirthDate {
        /// The date digits 7–14 spell.
        date: NaiveDate,
    },
    /// The birth date is before 1900-01-01.
    #[error("the birth date (characters 7–14) is before 1900-01-01")]
    BirthDateTooEarly {
        /// The date digits 7–14 spell.
        date: NaiveDate,
    },
    /// The 18th character does not match the other 17: a typo somewhere.
    #[error("the check character (character 18) does not match the first 17: a typo somewhere")]
    WrongCheckCharacter {
        /// The character given (upper-cased).
        found: char,
        /// The character the first 17 call for.
        expected: char,
    },
}

impl ResidentIdError {
    /// What exactly was wrong, quoting the offending part: only for the person who typed the
    /// number (`hancha id check`), never for a peer, an audit record or a log, which get the
    /// message alone.
    pub fn detail_for_the_typist(&self) -> Option<String> {
        match self {
            Self::UnexpectedCharacter { found, .. } => Some(format!("found {found:?}")),
            Self::UnknownProvince { code } => Some(format!("province {code:02}")),
            Self::ImpossibleBirthDate { digits } => Some(format!("read {digits}")),
            Self::FutureBirthDate { date } | Self::BirthDateTooEarly { date } => Some(format!("read {date}")),
            Self::WrongCheckCharacter { found, expected } => {
                Some(format!("it is {found}, the first 17 call for {expected}"))
            }
            _ => None,
        }
    }
}

/// Sex as encoded by the sequence code (digit 17): odd for men, even for women.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    /// 男.
    Male,
    /// 女.
    Female,
}

impl Sex {
    /// "male" or "female", for machine-readable output.
    pub fn as_str(&self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }

    /// "男" or "女", as printed on forms for operators.
    pub fn label_zh(&self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl ResidentId ===

/// A valid 18-character resident ID number, check character upper-case.
///
/// `Debug` masks the number, so a struct holding one can be logged safely; `Display` prints it in
/// full and is for deliberate output to an operator only. Not `Copy`, so that copies are visible.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentId([u8; 18]);

impl ResidentId {
    /// Validates against today's date in China; see [`ResidentId::parse_on`] for the rules.
    pub fn parse(input: &str) -> Result<ResidentId, ResidentIdError> {
        ResidentId::parse_on(input, today_in_china())
    }

    /// Validates `input` as of `today`: exactly 18 characters with no surrounding whitespace, 17
    /// digits and a check character (`x` accepted as `X`), an issuing province, a calendar birth
    /// date between 1900-01-01 and `today`, and a matching check character. The address code
    /// (digits 1–6) may be historical, so it is not required to be in today's division list.
    /// A 15-digit number is refused: use [`ResidentId::from_legacy_15`] deliberately.
    pub fn parse_on(input: &str, today: NaiveDate) -> Result<ResidentId, ResidentIdError> {
        if input.trim() != input {
            return Err(ResidentIdError::SurroundingWhitespace);
        }
        let got = input.chars().count();
        if got == 15 && input.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ResidentIdError::Legacy15);
        }
        if got != 18 {
            return Err(ResidentIdError::WrongLength { got });
        }
        let mut characters = [0u8; 18];
        for (index, (slot, character)) in characters.iter_mut().zip(input.chars()).enumerate() {
            let is_check_position = index == 17;
            *slot = match character {
                '0'..='9' => character as u8,
                'X' | 'x' if is_check_position => b'X',
                _ => {
                    let expected = if is_check_position {
                        "a digit or X"
                    } else {
                        "a digit"
                    };
                    let position = index + 1;
                    return Err(ResidentIdError::UnexpectedCharacter {
                        position,
                        found: character,
                        expected,
                    });
                }
            };
        }
        let province = (characters[0] - b'0') * 10 + (characters[1] - b'0');
        if !is_issuing_province(province) {
            return Err(ResidentIdError::UnknownProvince { code: province });
        }
        let id = ResidentId(characters);
        let date = id.try_birth_date()?;
        if date < EARLIEST_BIRTH_DATE {
            return Err(ResidentIdError::BirthDateTooEarly { date });
        }
        if date > today {
            return Err(ResidentIdError::FutureBirthDate { date });
        }
        let first17: &[u8; 17] = characters[..17].try_into().expect("18 characters have 17 first");
        let expected = check_character(first17);
        let found = char::from(characters[17]);
        if found != expected {
            return Err(ResidentIdError::WrongCheckCharacter { found, expected });
        }
        Ok(id)
    }

    /// Converts a pre-1999 15-digit number: inserts the century "19" after the address code,
    /// computes the check character, then validates the result as of `today` like
    /// [`ResidentId::parse_on`]. Never done implicitly, because the result is a number the person
    /// may never have been issued, and an operator should know when one was made up this way.
    pub fn from_legacy_15(input: &str, today: NaiveDate) -> Result<ResidentId, ResidentIdError> {
        if input.trim() != input {
            return Err(ResidentIdError::SurroundingWhitespace);
        }
        let got = input.chars().count();
        if got != 15 {
            return Err(ResidentIdError::LegacyWrongLength { got });
        }
        if let Some((index, found)) = input.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            let position = index + 1;
            return Err(ResidentIdError::UnexpectedCharacter {
                position,
                found,
                expected: "a digit",
            });
        }
        let mut first17 = [0u8; 17];
        first17[..6].copy_from_slice(&input.as_bytes()[..6]);
        first17[6..8].copy_from_slice(LEGACY_CENTURY.as_bytes());
        first17[8..].copy_from_slice(&input.as_bytes()[6..]);
        let mut converted = String::with_capacity(18);
        converted.extend(first17.iter().map(|&byte| char::from(byte)));
        converted.push(check_character(&first17));
        ResidentId::parse_on(&converted, today)
    }

    /// Completes 17 digits with their check character and validates the result like
    /// [`ResidentId::parse`]: how test fixtures write a number by its meaningful parts.
    pub fn with_check_character(first17: &str) -> Result<ResidentId, ResidentIdError> {
        let Ok(digits) = <&[u8; 17]>::try_from(first17.as_bytes()) else {
            return Err(ResidentIdError::WrongLength {
                got: first17.chars().count() + 1,
            });
        };
        if let Some((index, found)) = first17.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(ResidentIdError::UnexpectedCharacter {
                position: index + 1,
                found,
                expected: "a digit",
            });
        }
        ResidentId::parse(&format!("{first17}{}", check_character(digits)))
    }

    /// A made-up but valid number for the demo, the benchmarks and the tests: issued in
    /// `address`, born on `birth`, with the order code `sequence % 1000` (odd for men, even for
    /// women) and its check character. Fails only for a birth date before 1900 or after today.
    pub fn synthetic(
        address: CountyCode,
        birth: NaiveDate,
        sequence: u32,
    ) -> Result<ResidentId, ResidentIdError> {
        let first17 = format!(
            "{}{}{:03}",
            address.as_str(),
            birth.format("%Y%m%d"),
            sequence % 1_000
        );
        ResidentId::with_check_character(&first17)
    }

    /// The full number, for storage and wire messages. Never log it; log [`ResidentId::masked`].
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a resident id holds ASCII characters only")
    }

    /// The first 4 and last 4 characters with the rest starred (`4307**********123X`): enough for
    /// an operator to tell records apart, too little to identify a person.
    pub fn masked(&self) -> String {
        let text = self.as_str();
        format!("{}{}{}", &text[..4], "*".repeat(10), &text[14..])
    }

    /// The date of birth (digits 7–14).
    pub fn birth_date(&self) -> NaiveDate {
        self.try_birth_date()
            .expect("a parsed resident id has a valid birth date")
    }

    /// Sex from the sequence code (digit 17): odd is male, even is female.
    pub fn sex(&self) -> Sex {
        if (self.0[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Digits 1–6: the county where the number was issued, possibly a historical code.
    pub fn address_code(&self) -> &str {
        &self.as_str()[..6]
    }

    /// "湖南省常德市鼎城区" when the address code is a known current or historical county.
    pub fn address_name(&self) -> Option<String> {
        division::address_name(self.address_code())
    }

    /// Age in completed years on `date`; 0 before the birth date. Someone born on 29 February
    /// becomes a year older on 1 March in common years.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        let birth = self.birth_date();
        let had_birthday = (date.month(), date.day()) >= (birth.month(), birth.day());
        let years = date.year() - birth.year() - i32::from(!had_birthday);
        u32::try_from(years).unwrap_or(0)
    }

    fn try_birth_date(&self) -> Result<NaiveDate, ResidentIdError> {
        let digits = &self.as_str()[6..14];
        let number = |range: std::ops::Range<usize>| -> u32 {
            digits[range]
                .bytes()
                .fold(0, |value, byte| value * 10 + u32::from(byte - b'0'))
        };
        let year = i32::try_from(number(0..4)).expect("four digits fit in i32");
        NaiveDate::from_ymd_opt(year, number(4..6), number(6..8)).ok_or_else(|| {
            ResidentIdError::ImpossibleBirthDate {
                digits: digits.to_owned(),
            }
        })
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

/// The full number: deliberate output to an operator only.
impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResidentId {
    type Err = ResidentIdError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        ResidentId::parse(input)
    }
}

impl Serialize for ResidentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Validates like [`ResidentId::parse`] (as of today in China).
impl<'de> Deserialize<'de> for ResidentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ResidentId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
