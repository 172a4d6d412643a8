//! The canonical form of an agreement and the hash that pins it.
//!
//! Both counties must be sure they hold the same agreement, while each may keep its own copy of
//! the file with its own comments, layout and key order. So the hash is taken not over the text
//! but over a canonical form: compact JSON with keys in alphabetical order, every list of names
//! sorted by name, parties sorted, directions sorted by (from, to), dates as `YYYY-MM-DD`. Any
//! change of meaning changes the form; nothing else does.
//!
//! The form names its format, `"format":"hancha-agreement/2"`: when the form changes, the new
//! one gets a new format name, so old and new hashes can never collide by accident. Format 2
//! added `retention_days`, the per-kind `notice_fields` and the per-kind `notice_effect` (every
//! allowed kind with its effect, the default written out, so leaving a kind out and naming
//! `"operator"` hash alike); a format-1 document (without `retention_days`) no longer parses, and
//! its counties sign the format-2 version once.
//! Signatures are not part of the form: they sign its hash.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::{Direction, NoticeDays, ReplyDays};
use crate::domain::division::CountyCode;

/// Names the canonical form, so a future change of the form cannot yield equal hashes for
/// different meanings.
const FORMAT: &str = "hancha-agreement/2";

/// The agreement in canonical form. Serde writes struct fields in declaration order, so the
/// fields are declared alphabetically (and the result does not depend on `serde_json`'s map type).
#[derive(Serialize)]
struct CanonicalAgreement<'a> {
    directions: Vec<CanonicalDirection<'a>>,
    format: &'static str,
    id: &'a str,
    parties: [&'a str; 2],
    retention_days: u16,
    title: &'a str,
    valid_from: String,
    valid_until: String,
    version: u32,
}

/// One direction in canonical form; fields alphabetical, see [`CanonicalAgreement`].
#[derive(Serialize)]
struct CanonicalDirection<'a> {
    answer_fields: Vec<&'static str>,
    automatic_answers: bool,
    daily_cap: u32,
    from: &'a str,
    inquiry_kinds: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notice_days: Option<CanonicalNoticeDays>,
    notice_effect: BTreeMap<&'static str, &'static str>,
    notice_fields: BTreeMap<&'static str, Vec<&'static str>>,
    notice_kinds: Vec<&'static str>,
    reply_days: CanonicalReplyDays,
    to: &'a str,
}

/// `reply_days` in canonical form; fields alphabetical.
#[derive(Serialize)]
struct CanonicalReplyDays {
    normal: u16,
    urgent: u16,
}

/// `notice_days` in canonical form; fields alphabetical.
#[derive(Serialize)]
struct CanonicalNoticeDays {
    feedback: u16,
    receipt: u16,
}

/// Names sorted as text, so the form does not depend on the order of enum variants in code.
fn sorted_names(names: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = names.collect();
    names.sort_unstable();
    names
}

fn iso_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// An agreement's content: everything its canonical form covers.
pub(super) struct Content<'a> {
    pub id: &'a str,
    pub version: u32,
    pub title: &'a str,
    pub parties: [CountyCode; 2],
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub retention_days: u16,
    pub directions: &'a [Direction],
}

/// The canonical form (compact JSON) of an agreement's content.
pub(super) fn canonical_form(content: &Content<'_>) -> String {
    let Content {
        id,
        version,
        title,
        parties,
        valid_from,
        valid_until,
        retention_days,
        directions,
    } = *content;
    let mut parties = [parties[0].as_str(), parties[1].as_str()];
    parties.sort_unstable();
    let mut canonical_directions: Vec<CanonicalDirection<'_>> = directions
        .iter()
        .map(|direction| {
            let ReplyDays { normal, urgent } = direction.reply_days;
            CanonicalDirection {
                answer_fields: sorted_names(direction.listed_fields.iter().map(|f| f.as_str())),
                automatic_answers: direction.automatic_answers,
                daily_cap: direction.daily_cap,
                from: direction.from.as_str(),
                inquiry_kinds: sorted_names(direction.inquiry_kinds.iter().map(|k| k.as_str())),
                notice_days: direction
                    .notice_days
                    .map(|NoticeDays { receipt, feedback }| CanonicalNoticeDays { feedback, receipt }),
                notice_effect: direction
                    .notice_effect
                    .iter()
                    .map(|(kind, effect)| (kind.as_str(), effect.as_str()))
                    .collect(),
                notice_fields: direction
                    .notice_fields
                    .iter()
                    .map(|(kind, fields)| (kind.as_str(), sorted_names(fields.iter().map(|f| f.as_str()))))
                    .collect(),
                notice_kinds: sorted_names(direction.notice_kinds.iter().map(|k| k.as_str())),
                reply_days: CanonicalReplyDays { normal, urgent },
                to: direction.to.as_str(),
            }
        })
        .collect();
    canonical_directions.sort_by(|a, b| (a.from, a.to).cmp(&(b.from, b.to)));
    let canonical = CanonicalAgreement {
        directions: canonical_directions,
        format: FORMAT,
        id,
        parties,
        retention_days,
        title,
        valid_from: iso_date(valid_from),
        valid_until: iso_date(valid_until),
        version,
    };
    // Only strings, integers, booleans, arrays and structs: serialization cannot fail.
    serde_json::to_string(&canonical).expect("the canonical form is plain JSON data")
}

// === impl AgreementHash ===

/// The SHA-256 of an agreement's canonical form, as 64 lowercase hex digits.
///
/// Each exchange names the agreement by id and hash; a peer holding a different version sees a
/// different hash and refuses with both named, instead of silently applying other terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgreementHash(String);

/// Text that is not an agreement hash (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an agreement hash is 64 hex digits, got {length} characters{}",
    if *.hex { "" } else { " (not all hex digits)" })]
pub struct AgreementHashError {
    /// How many characters were given.
    pub length: usize,
    /// Whether all of them were hex digits.
    pub hex: bool,
}

impl AgreementHash {
    /// Hashes a canonical form.
    pub(super) fn of(canonical_form: &str) -> Self {
        AgreementHash(hex::encode(Sha256::digest(canonical_form.as_bytes())))
    }

    /// Accepts a hash received from a peer or read from the store: 64 hex digits, either case
    /// (kept in lowercase so that comparisons are exact).
    pub fn parse(text: &str) -> Result<Self, AgreementHashError> {
        let hex = text.chars().all(|c| c.is_ascii_hexdigit());
        let length = text.chars().count();
        if !hex || length != 64 {
            return Err(AgreementHashError { length, hex });
        }
        Ok(AgreementHash(text.to_ascii_lowercase()))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits: enough to tell versions apart in logs and on screens.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for AgreementHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgreementHash {
    type Err = AgreementHashError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for AgreementHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Validates like [`AgreementHash::parse`], so a deserialized hash is as trustworthy as a parsed one.
impl<'de> Deserialize<'de> for AgreementHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}
