//! The message vocabulary both counties share: what may be asked, what may be told, and the
//! status fields an answer can carry.
//!
//! Every name here is part of three contracts at once — the wire, the database and the agreement
//! TOML — so each enum has exactly one spelling (`as_str`, snake_case), used by all three, and a
//! Chinese label (`label_zh`) for the people who read reports and operator screens. Parsing a
//! name that is not in the vocabulary fails with an error listing the allowed names, because the
//! person who wrote it (an operator, or an agreement author) needs to know what to write instead.
//!
//! The status values of a person ([`StatusValues`]) live here too: they are what an answer
//! carries, and [`StatusValues::filtered`] is where data minimisation happens.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::division::{TownshipCode, VillageCode};

/// A name that is not part of the vocabulary it was parsed as.
///
/// It names the vocabulary and lists every allowed name, so an operator or agreement author can
/// correct the input without reading the source. The rejected text is echoed (escaped and
/// shortened), which is safe: vocabulary names are never personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} \"{}\" (allowed: {})", shorten(given), allowed.join(", "))]
pub struct UnknownName {
    /// Which vocabulary was expected ("inquiry kind", "status field", …), for the message.
    pub what: &'static str,
    /// The text that was given, so the message can show what was wrong.
    pub given: String,
    /// Every name the vocabulary accepts, so the message can show what would be right.
    pub allowed: &'static [&'static str],
}

/// Escapes control characters and cuts long input, so an error message stays one short line.
fn shorten(given: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut shown: String = given.chars().take(MAX_CHARS).collect();
    if given.chars().count() > MAX_CHARS {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

/// Declares a vocabulary enum: the variants with their wire name and Chinese label, plus
/// `ALL`, `NAMES`, `as_str`, `label_zh`, `Display`, `FromStr` and serde through the wire name.
///
/// Serde goes through `as_str`/`FromStr` (not derive) so that the wire, the database and the
/// agreement TOML can never disagree on a spelling, and a bad name gets the same helpful error
/// everywhere.
macro_rules! vocabulary_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident => $wire:literal, $zh:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order: for iterating, listing and exhaustive tests.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// Every wire name, in the order of `ALL`: what error messages offer as allowed.
            pub const NAMES: &'static [&'static str] = &[ $( $wire, )+ ];

            /// The one spelling used on the wire, in the database and in agreement TOML.
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $wire, )+ }
            }

            /// The Chinese term, for operator screens and reports.
            pub const fn label_zh(self) -> &'static str {
                match self { $( Self::$variant => $zh, )+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(given: &str) -> Result<Self, Self::Err> {
                match given {
                    $( $wire => Ok(Self::$variant), )+
                    _ => Err(UnknownName {
                        what: $what,
                        given: given.to_owned(),
                        allowed: Self::NAMES,
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let given = String::deserialize(deserializer)?;
                given.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

vocabulary_enum! {
    /// What one county may ask another (函查). Each kind is allowed or not per direction by the
    /// agreement.
    pub enum InquiryKind ("inquiry kind") {
        /// The destination checks a marriage-and-childbearing certificate with the issuing
        /// (origin) county.
        CertificateVerification => "certificate_verification", "查证验证";
        /// The origin asks the destination to confirm an outflow person's residence and status.
        OutflowStatus => "outflow_status", "流出人口函查";
    }
}

vocabulary_enum! {
    /// What one county tells another without being asked (信息通报). Each needs a receipt; some
    /// also need feedback (see [`NoticeKind::requires_feedback`]).
    pub enum NoticeKind ("notice kind") {
        /// A child was born to a migrant resident; the origin must confirm and feed back.
        Birth => "birth", "出生通报";
        /// A migrant resident is pregnant: she becomes a "key" subject for urgent handling.
        Pregnancy => "pregnancy", "怀孕通报";
        /// The result of the quarterly contraception and pregnancy check at the destination,
        /// which spares the person a trip home (Art. 13).
        ContraceptionCheck => "contraception_check", "查环查孕结果";
        /// The person has left the destination, so the origin can update its outflow records.
        MovedOn => "moved_on", "迁离通报";
    }
}

impl NoticeKind {
    /// Whether the receiver owes feedback (反馈) besides the receipt.
    ///
    /// Only the flag lives here; how many days the receiver has for the receipt and for the
    /// feedback is agreement content, because regulations and agreements change.
    pub const fn requires_feedback(self) -> bool {
        matches!(self, Self::Birth)
    }
}

vocabulary_enum! {
    /// How soon an inquiry must be answered. The day counts belong to the agreement; "urgent" is
    /// for key subjects such as currently pregnant women.
    pub enum Priority ("priority") {
        /// The ordinary deadline (30 days in the current agreements).
        Normal => "normal", "一般";
        /// The short deadline for key subjects (15 days in the current agreements).
        Urgent => "urgent", "紧急";
    }
}

vocabulary_enum! {
    /// How an inquiry was settled, so the asker can tell "no such person" from "ask better" and
    /// from "not allowed".
    pub enum AnswerOutcome ("answer outcome") {
        /// Exactly one person matched; the answer carries the agreed fields.
        Found => "found", "查到";
        /// Nobody matched the attributes given.
        NotFound => "not_found", "查无此人";
        /// Several people matched; the asker must send more attributes to single one out.
        Ambiguous => "ambiguous", "信息不足需补充";
        /// The responder's policy forbids answering (for example, the agreement does not cover it).
        Refused => "refused", "按规定不予答复";
    }
}

vocabulary_enum! {
    /// A piece of status an answer can carry. Agreements list, per direction, which of these the
    /// responder may disclose; everything else is filtered out before sending.
    pub enum StatusField ("status field") {
        /// Marital status, because certificates and childbearing rules depend on it.
        MaritalStatus => "marital_status", "婚姻状况";
        /// The number of the marriage-and-childbearing certificate, to match the one shown.
        CertificateNumber => "certificate_number", "婚育证明编号";
        /// The last day the certificate is valid (certificates last three years).
        CertificateValidUntil => "certificate_valid_until", "婚育证明有效期至";
        /// Whether the certificate is valid, expired, revoked, or was never issued.
        CertificateStatus => "certificate_status", "婚育证明状态";
        /// How many children the person has.
        ChildrenCount => "children_count", "子女数";
        /// The contraception method class, which decides whether she is a key subject.
        ContraceptionStatus => "contraception_status", "避孕节育情况";
        /// When the contraception status was last established.
        ContraceptionDate => "contraception_date", "避孕节育措施日期";
        /// Whether the person is currently pregnant (makes her a key subject).
        Pregnant => "pregnant", "是否怀孕";
        /// Since when the person is registered at her current address.
        RegisteredSince => "registered_since", "登记日期";
        /// The township (9-digit code) responsible for the person.
        Township => "township", "乡镇（街道）";
        /// The village or community (12-digit code) responsible for the person.
        Village => "village", "村（社区）";
    }
}

vocabulary_enum! {
    /// Values of [`StatusField::MaritalStatus`].
    pub enum MaritalStatus ("marital status") {
        /// Never married.
        Single => "single", "未婚";
        /// Currently married.
        Married => "married", "已婚";
        /// Divorced and not remarried.
        Divorced => "divorced", "离婚";
        /// Widowed and not remarried.
        Widowed => "widowed", "丧偶";
    }
}

vocabulary_enum! {
    /// Values of [`StatusField::CertificateStatus`].
    pub enum CertificateStatus ("certificate status") {
        /// Issued and within its validity period.
        Valid => "valid", "有效";
        /// Issued, but past its validity period.
        Expired => "expired", "已过期";
        /// Withdrawn by the issuing county.
        Revoked => "revoked", "已注销";
        /// Never issued: the person holds no certificate.
        None => "none", "未办证";
    }
}

vocabulary_enum! {
    /// Values of [`StatusField::ContraceptionStatus`]: the classes that decide whether a person
    /// is a key subject (no long-acting contraception).
    pub enum ContraceptionStatus ("contraception status") {
        /// A long-acting method (IUD, implant, sterilisation).
        LongActing => "long_acting", "长效措施";
        /// A short-acting method.
        ShortActing => "short_acting", "短效措施";
        /// No method.
        None => "none", "未采取措施";
        /// Not applicable (for example, outside childbearing age).
        NotApplicable => "not_applicable", "不适用";
    }
}

/// Any message the exchange carries: an inquiry or a notice.
///
/// Agreements allow kinds per direction for both at once, and denials name the kind, so one type
/// covers both. The wire names of inquiry and notice kinds never overlap, so a `MessageKind` is
/// spelled by its inner kind's name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// A question that expects an answer (函查).
    Inquiry(InquiryKind),
    /// A notice that expects a receipt and perhaps feedback (信息通报).
    Notice(NoticeKind),
}

impl MessageKind {
    /// The inner kind's wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inquiry(kind) => kind.as_str(),
            Self::Notice(kind) => kind.as_str(),
        }
    }

    /// The inner kind's Chinese term.
    pub const fn label_zh(self) -> &'static str {
        match self {
            Self::Inquiry(kind) => kind.label_zh(),
            Self::Notice(kind) => kind.label_zh(),
        }
    }
}

impl From<InquiryKind> for MessageKind {
    fn from(kind: InquiryKind) -> Self {
        Self::Inquiry(kind)
    }
}

impl From<NoticeKind> for MessageKind {
    fn from(kind: NoticeKind) -> Self {
        Self::Notice(kind)
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every message kind name, inquiries first: the allowed list for [`MessageKind::from_str`].
const MESSAGE_KIND_NAMES: &[&str] = &[
    "certificate_verification",
    "outflow_status",
    "birth",
    "pregnancy",
    "contraception_check",
    "moved_on",
];

impl FromStr for MessageKind {
    type Err = UnknownName;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        if let Ok(kind) = given.parse::<InquiryKind>() {
            return Ok(Self::Inquiry(kind));
        }
        if let Ok(kind) = given.parse::<NoticeKind>() {
            return Ok(Self::Notice(kind));
        }
        Err(UnknownName {
            what: "message kind",
            given: given.to_owned(),
            allowed: MESSAGE_KIND_NAMES,
        })
    }
}

impl Serialize for MessageKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let given = String::deserialize(deserializer)?;
        given.parse().map_err(serde::de::Error::custom)
    }
}

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
    /// How a value of this field is written in operator input and shown by
    /// [`StatusValues::get_string`]: for help texts and error messages.
    pub fn value_format(self) -> String {
        match self {
            Self::MaritalStatus => one_of(MaritalStatus::NAMES),
            Self::CertificateStatus => one_of(CertificateStatus::NAMES),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks, for one vocabulary, that every value round-trips through its name, serde uses the
    /// same name, and names are unique and in `snake_case`.
    fn assert_consistent<T>(all: &[T], names: &[&str])
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr + Serialize,
        T: for<'de> Deserialize<'de>,
    {
        assert_eq!(all.len(), names.len());
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "names must be unique");
        for (&value, &name) in all.iter().zip(names) {
            assert_eq!(value.to_string(), name);
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(name.parse::<T>().ok() == Some(value));
            assert_eq!(serde_json::to_string(&value).unwrap(), format!("\"{name}\""));
            let back: T = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn every_vocabulary_spells_each_value_one_way() {
        assert_consistent(InquiryKind::ALL, InquiryKind::NAMES);
        assert_consistent(NoticeKind::ALL, NoticeKind::NAMES);
        assert_consistent(Priority::ALL, Priority::NAMES);
        assert_consistent(AnswerOutcome::ALL, AnswerOutcome::NAMES);
        assert_consistent(StatusField::ALL, StatusField::NAMES);
        assert_consistent(MaritalStatus::ALL, MaritalStatus::NAMES);
        assert_consistent(CertificateStatus::ALL, CertificateStatus::NAMES);
        assert_consistent(ContraceptionStatus::ALL, ContraceptionStatus::NAMES);
    }

    #[test]
    fn wire_names_match_the_documented_spellings() {
        assert_eq!(InquiryKind::OutflowStatus.as_str(), "outflow_status");
        assert_eq!(InquiryKind::CertificateVerification.label_zh(), "查证验证");
        assert_eq!(NoticeKind::ContraceptionCheck.as_str(), "contraception_check");
        assert_eq!(NoticeKind::ContraceptionCheck.label_zh(), "查环查孕结果");
        assert_eq!(
            StatusField::CertificateValidUntil.as_str(),
            "certificate_valid_until"
        );
        assert_eq!(ContraceptionStatus::NotApplicable.as_str(), "not_applicable");
    }

    #[test]
    fn unknown_name_lists_the_allowed_names() {
        let error = "foo".parse::<InquiryKind>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown inquiry kind \"foo\" (allowed: certificate_verification, outflow_status)"
        );
        let error = "a\nvery long name that goes on and on and on and on and on"
            .parse::<Priority>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("a\\nvery long"), "{error}");
        assert!(error.contains('…') && !error.contains("on and on and on and on and on"));
    }

    #[test]
    fn serde_rejects_unknown_names_with_the_same_message() {
        let error = serde_json::from_str::<StatusField>("\"shoe_size\"").unwrap_err();
        assert!(error.to_string().contains("allowed: marital_status"), "{error}");
    }

    #[test]
    fn only_birth_notices_require_feedback() {
        let needing: Vec<_> = NoticeKind::ALL
            .iter()
            .filter(|kind| kind.requires_feedback())
            .collect();
        assert_eq!(needing, [&NoticeKind::Birth]);
    }

    #[test]
    fn message_kinds_are_named_by_their_inner_kind() {
        let all: Vec<MessageKind> = InquiryKind::ALL
            .iter()
            .map(|&kind| MessageKind::from(kind))
            .chain(NoticeKind::ALL.iter().map(|&kind| MessageKind::from(kind)))
            .collect();
        let names: Vec<&str> = all.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names, MESSAGE_KIND_NAMES);
        for kind in all {
            assert_eq!(kind.as_str().parse::<MessageKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<MessageKind>(&json).unwrap(), kind);
        }
        assert_eq!(MessageKind::Notice(NoticeKind::Birth).label_zh(), "出生通报");
        let error = "letter".parse::<MessageKind>().unwrap_err().to_string();
        assert!(
            error.contains("message kind") && error.contains("moved_on"),
            "{error}"
        );
    }

    fn sample_values() -> StatusValues {
        let mut values = StatusValues::default();
        for (field, text) in [
            (StatusField::MaritalStatus, "married"),
            (StatusField::CertificateNumber, "431322-2025-000123"),
            (StatusField::CertificateValidUntil, "2028-05-31"),
            (StatusField::CertificateStatus, "valid"),
            (StatusField::ChildrenCount, "1"),
            (StatusField::ContraceptionStatus, "long_acting"),
            (StatusField::ContraceptionDate, "2025-11-03"),
            (StatusField::Pregnant, "false"),
            (StatusField::RegisteredSince, "2024-03-15"),
            (StatusField::Township, "430703001"),
            (StatusField::Village, "430703001001"),
        ] {
            values.set(field, text).unwrap();
        }
        values
    }

    #[test]
    fn set_and_get_string_round_trip_every_field() {
        let values = sample_values();
        assert_eq!(values.present_fields().len(), StatusField::ALL.len());
        for &field in StatusField::ALL {
            let text = values.get_string(field).unwrap();
            let mut copy = StatusValues::default();
            copy.set(field, &text).unwrap();
            assert_eq!(copy.get_string(field).as_deref(), Some(text.as_str()));
        }
    }

    #[test]
    fn filtered_keeps_only_the_agreed_fields() {
        let allowed = BTreeSet::from([StatusField::CertificateStatus, StatusField::Pregnant]);
        let filtered = sample_values().filtered(&allowed);
        assert_eq!(filtered.present_fields(), allowed);
        assert_eq!(filtered.certificate_status, Some(CertificateStatus::Valid));
        assert_eq!(filtered.certificate_number, None);
        assert_eq!(
            sample_values().filtered(&BTreeSet::new()),
            StatusValues::default()
        );
    }

    #[test]
    fn set_rejects_bad_values_without_echoing_them() {
        let mut values = StatusValues::default();
        for (field, text) in [
            (StatusField::MaritalStatus, "complicated"),
            (StatusField::CertificateNumber, "has space"),
            (StatusField::CertificateNumber, ""),
            (StatusField::CertificateValidUntil, "2026-02-30"),
            (StatusField::CertificateValidUntil, "31.05.2028"),
            (StatusField::ChildrenCount, "-1"),
            (StatusField::Pregnant, "maybe"),
            (StatusField::Township, "430703999"),
            (StatusField::Village, "999999999999"),
        ] {
            let error = values.set(field, text).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{field}: expected ")), "{error}");
            assert!(text.is_empty() || !error.contains(text), "{error} echoes {text}");
        }
        assert_eq!(values, StatusValues::default(), "failed sets change nothing");
        assert_eq!(
            StatusField::MaritalStatus.value_format(),
            "one of single, married, divorced, widowed"
        );
    }

    #[test]
    fn assignments_name_the_field_and_accept_chinese_yes_no() {
        let mut values = StatusValues::default();
        assert_eq!(
            values.set_assignment(" pregnant = 是 "),
            Ok(StatusField::Pregnant)
        );
        assert_eq!(values.pregnant, Some(true));
        assert_eq!(
            values.set_assignment("pregnant"),
            Err(AssignmentError::MissingEquals)
        );
        let error = values.set_assignment("shoe_size=42").unwrap_err().to_string();
        assert!(error.starts_with("unknown status field \"shoe_size\""), "{error}");
        let error = values
            .set_assignment("children_count=many")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "children_count: expected a whole number from 0 to 255");
    }

    #[test]
    fn status_values_serialize_with_field_names_and_omit_absent_fields() {
        let mut values = StatusValues::default();
        values.set(StatusField::Township, "430703001").unwrap();
        values
            .set(StatusField::CertificateValidUntil, "2028-05-31")
            .unwrap();
        let json = serde_json::to_string(&values).unwrap();
        assert_eq!(
            json,
            r#"{"certificate_valid_until":"2028-05-31","township":"430703001"}"#
        );
        assert_eq!(serde_json::from_str::<StatusValues>(&json).unwrap(), values);
        assert!(serde_json::from_str::<StatusValues>(r#"{"township":"999999999"}"#).is_err());
        assert!(serde_json::from_str::<StatusValues>(r#"{"shoe_size":1}"#).is_err());
    }
}
