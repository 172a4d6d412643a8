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

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that is not part of the vocabulary it was parsed as.
///
/// It names the vocabulary and lists every allowed name, so an operator or agreement author can
/// correct the input without reading the source. The rejected text is never echoed: whatever a
/// caller put in the field (an ID number included) failed to validate, so the message describes
/// it and the field path or line number says where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} (allowed: {})", allowed.join(", "))]
pub struct UnknownName {
    /// Which vocabulary was expected ("inquiry kind", "status field", …), for the message.
    pub what: &'static str,
    /// The text that was given, for callers that show it back to whoever typed it.
    pub given: String,
    /// Every name the vocabulary accepts, so the message can show what would be right.
    pub allowed: &'static [&'static str],
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
    /// What a notice may tell besides its kind, its subject and the day it happened
    /// (`occurred_on`: the birth, the check, the day the pregnancy was confirmed, the departure).
    /// Each field belongs to one notice kind ([`NoticeField::kind`]); the agreement lists, per
    /// direction and kind, which of them may travel (`notice_fields`), and a notice carrying any
    /// other is refused.
    pub enum NoticeField ("notice field") {
        /// `birth`: the child's sex, `male` or `female` (男 / 女 accepted).
        ChildSex => "child_sex", "婴儿性别";
        /// `birth`: the mother's how-manieth child this is (1–20).
        BirthOrder => "birth_order", "孩次";
        /// `birth`: where the child was born: a hospital or the township, as text (≤ 60 characters).
        BirthPlace => "birth_place", "出生地点";
        /// `pregnancy`: completed weeks of pregnancy when it was confirmed (1–45).
        PregnancyWeeks => "pregnancy_weeks", "孕周";
        /// `pregnancy`: the expected date of delivery, `YYYY-MM-DD`.
        ExpectedDate => "expected_date", "预产期";
        /// `contraception_check`: the result: `normal`, `pregnant`, `ring_missing`, `other`.
        CheckResult => "check_result", "查环查孕结果";
        /// `contraception_check`: the measure in use: `iud`, `implant`, `ligation`, `pill`, `condom`, `none`.
        Measure => "measure", "避孕措施";
        /// `moved_on`: the county she moved to, when known (a six-digit code).
        NewCounty => "new_county", "迁往县";
    }
}

impl NoticeField {
    /// The notice kind the field belongs to.
    pub const fn kind(self) -> NoticeKind {
        match self {
            Self::ChildSex | Self::BirthOrder | Self::BirthPlace => NoticeKind::Birth,
            Self::PregnancyWeeks | Self::ExpectedDate => NoticeKind::Pregnancy,
            Self::CheckResult | Self::Measure => NoticeKind::ContraceptionCheck,
            Self::NewCounty => NoticeKind::MovedOn,
        }
    }

    /// The fields of `kind`, in declaration order.
    pub fn of(kind: NoticeKind) -> impl Iterator<Item = NoticeField> {
        Self::ALL
            .iter()
            .copied()
            .filter(move |field| field.kind() == kind)
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
        /// Whether the certificate number shown at the asker's window is the one issued to the
        /// person the ID names. It describes the inquiry, not the person: every direction that
        /// may carry a certificate field may carry it, and reconciliation never compares it.
        CertificatePresented => "certificate_presented", "所示证明是否本人";
    }
}

vocabulary_enum! {
    /// Values of [`StatusField::CertificatePresented`]: the certificate number shown at the
    /// window, compared with the one the registry holds for the person the ID names. A number
    /// never finds a person; it is only compared.
    pub enum CertificatePresented ("certificate presented") {
        /// The number shown is the one issued to this person.
        Matches => "matches", "与本人证明相符";
        /// The number shown was NOT issued to this person (another person's, or none known).
        DoesNotMatch => "does_not_match", "非本人证明";
        /// No number was shown (the inquiry named only the ID).
        NotShown => "not_shown", "未出示证明";
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

mod effect;
mod notice_values;
mod status_values;
pub use effect::NoticeEffect;
pub use notice_values::{CHECK_RESULTS, MAX_PLACE_CHARS, MEASURES, NoticeValues};
pub use status_values::{AssignmentError, FieldValueError, StatusValues, ValueType};

#[cfg(test)]
mod tests;
