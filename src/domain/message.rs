//! The messages counties exchange: inquiries (函查), status confirmations (反馈) and notices
//! (信息通报), each validated before anything else sees it, and the inquiry state machine.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{
    AnswerOutcome, InquiryKind, NoticeKind, NoticeValues, Priority, StatusValues, UnknownName,
};

/// Longest certificate number accepted; real ones are about 20 characters.
pub const MAX_CERTIFICATE_NUMBER_CHARS: usize = 64;

/// One field of a message that failed validation, named by its path (e.g.
/// `inquiries[3].subject.resident_id`). The description never repeats the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the offending field, as the sender named it on the wire.
    pub field: String,
    /// What is wrong, precise enough to fix.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Which agreement a message travels under: its id and the canonical hash the sender holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AgreementRef {
    /// The agreement's stable id, e.g. `430703-431322`.
    pub id: String,
    /// SHA-256 of the agreement's canonical form, 64 lowercase hex characters.
    pub hash: String,
}

impl AgreementRef {
    /// Validates id and hash shapes, collecting violations under `prefix`.
    pub fn parse(
        id: &str,
        hash: &str,
        prefix: &str,
        violations: &mut Vec<FieldViolation>,
    ) -> Option<AgreementRef> {
        let mut ok = true;
        if id.is_empty() || id.len() > 100 {
            violations.push(FieldViolation::new(
                format!("{prefix}.id"),
                "must be 1 to 100 characters",
            ));
            ok = false;
        }
        if hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            violations.push(FieldViolation::new(
                format!("{prefix}.hash"),
                "must be 64 lowercase hex characters",
            ));
            ok = false;
        }
        ok.then(|| AgreementRef {
            id: id.to_string(),
            hash: hash.to_string(),
        })
    }
}

/// Parses an author-chosen message id, which must be a UUID v7 (time-ordered).
pub fn parse_message_id(input: &str, field: &str, violations: &mut Vec<FieldViolation>) -> Option<Uuid> {
    match Uuid::parse_str(input) {
        Ok(id) if id.get_version_num() == 7 => Some(id),
        Ok(_) => {
            violations.push(FieldViolation::new(field, "must be a UUID version 7"));
            None
        }
        Err(_) => {
            violations.push(FieldViolation::new(field, "must be a UUID (version 7)"));
            None
        }
    }
}

/// The person a message is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The person's resident ID number; never logged in clear.
    pub resident_id: ResidentId,
    /// The certificate number shown at the window, when the inquiry is about one.
    pub certificate_number: Option<String>,
}

impl Subject {
    /// Validates the subject's fields, collecting violations under `prefix`.
    pub fn parse(
        resident_id: &str,
        certificate_number: &str,
        prefix: &str,
        violations: &mut Vec<FieldViolation>,
    ) -> Option<Subject> {
        let resident_id = match ResidentId::parse(resident_id) {
            Ok(id) => Some(id),
            Err(error) => {
                violations.push(FieldViolation::new(
                    format!("{prefix}.resident_id"),
                    error.to_string(),
                ));
                None
            }
        };
        let certificate_number = certificate_number.trim();
        let certificate_ok = certificate_number.chars().count() <= MAX_CERTIFICATE_NUMBER_CHARS
            && certificate_number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !certificate_ok {
            violations.push(FieldViolation::new(
                format!("{prefix}.certificate_number"),
                format!("at most {MAX_CERTIFICATE_NUMBER_CHARS} characters of letters, digits and '-'"),
            ));
        }
        let resident_id = resident_id?;
        if !certificate_ok {
            return None;
        }
        Some(Subject {
            resident_id,
            certificate_number: (!certificate_number.is_empty()).then(|| certificate_number.to_string()),
        })
    }
}

/// The receipt for an accepted inquiry or notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// When we accepted it (the first time, for a repeat).
    pub received_at: DateTime<Utc>,
    /// Reply deadline under the agreement.
    pub due_at: Option<DateTime<Utc>>,
}

/// One message as it came off the wire: valid, or its field violations (with the message id
/// when it could be read, for the audit record).
pub type Incoming<T> = Result<T, (Option<uuid::Uuid>, Vec<FieldViolation>)>;

/// An inquiry as its author wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inquiry {
    /// Author-chosen UUID v7; the key that makes delivery idempotent.
    pub message_id: Uuid,
    /// The agreement it is asked under.
    pub agreement: AgreementRef,
    /// What is asked.
    pub kind: InquiryKind,
    /// Urgent for key subjects; decides the reply deadline.
    pub priority: Priority,
    /// Whom it is about.
    pub subject: Subject,
}

/// An answer to an inquiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// Author-chosen UUID v7 of the confirmation itself.
    pub message_id: Uuid,
    /// The inquiry it answers.
    pub inquiry_id: Uuid,
    /// The agreement the inquiry was asked under.
    pub agreement: AgreementRef,
    /// Found, not found, ambiguous or refused.
    pub outcome: AnswerOutcome,
    /// Only the fields the agreement lets the asker see.
    pub fields: StatusValues,
    /// When the answer was given.
    pub answered_at: DateTime<Utc>,
}

/// A notice (信息通报).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Author-chosen UUID v7.
    pub message_id: Uuid,
    /// The agreement it is sent under.
    pub agreement: AgreementRef,
    /// What happened.
    pub kind: NoticeKind,
    /// To whom.
    pub subject: Subject,
    /// When it happened, if known.
    pub occurred_on: Option<NaiveDate>,
    /// What the notice tells besides its date, as the agreement lets it travel.
    pub fields: NoticeValues,
}

/// Where an inquiry stands, on either side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InquiryState {
    /// Outbound only: written locally, not yet accepted by the peer.
    Queued,
    /// Accepted by the responder and waiting for an answer.
    Pending,
    /// A confirmation exists.
    Answered,
    /// The responder refused it (no agreement, cap, malformed, ...).
    Rejected,
}

impl InquiryState {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            InquiryState::Queued => "queued",
            InquiryState::Pending => "pending",
            InquiryState::Answered => "answered",
            InquiryState::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<InquiryState> {
        [
            InquiryState::Queued,
            InquiryState::Pending,
            InquiryState::Answered,
            InquiryState::Rejected,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }

    /// Whether an answer may still be given. Answered and rejected inquiries are final, so a
    /// second answer (a retry, a second operator) can never overwrite the first.
    pub fn can_be_answered(self) -> bool {
        matches!(self, InquiryState::Queued | InquiryState::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_must_be_uuid_v7() {
        let mut violations = Vec::new();
        assert!(parse_message_id(&Uuid::now_v7().to_string(), "message_id", &mut violations).is_some());
        assert!(parse_message_id(&Uuid::new_v4().to_string(), "message_id", &mut violations).is_none());
        assert!(parse_message_id("not-a-uuid", "message_id", &mut violations).is_none());
        assert_eq!(violations.len(), 2);
        assert!(violations.iter().all(|v| v.field == "message_id"));
    }

    #[test]
    fn subject_violations_name_the_field_without_echoing_the_number() {
        let mut violations = Vec::new();
        let subject = Subject::parse("110105194912310021", "", "inquiry.subject", &mut violations);
        assert!(subject.is_none());
        assert_eq!(violations[0].field, "inquiry.subject.resident_id");
        assert!(
            violations[0]
                .description
                .contains("check character (character 18) does not match"),
            "{:?}",
            violations[0]
        );
        assert!(!violations[0].description.contains("110105194912310021"));
        assert!(
            !violations[0].description.contains('X'),
            "not even the check character the number calls for: {:?}",
            violations[0]
        );
    }

    #[test]
    fn subject_accepts_a_valid_id_and_certificate_number() {
        let mut violations = Vec::new();
        let subject = Subject::parse("11010519491231002x", "431322-2025-0001", "s", &mut violations).unwrap();
        assert!(violations.is_empty());
        assert_eq!(subject.resident_id.as_str(), "11010519491231002X");
        assert_eq!(subject.certificate_number.as_deref(), Some("431322-2025-0001"));
    }

    #[test]
    fn agreement_ref_requires_a_full_hash() {
        let mut violations = Vec::new();
        assert!(AgreementRef::parse("430703-431322", "abc", "agreement", &mut violations).is_none());
        assert_eq!(violations[0].field, "agreement.hash");
    }

    #[test]
    fn answered_and_rejected_inquiries_are_final() {
        assert!(InquiryState::Pending.can_be_answered());
        assert!(!InquiryState::Answered.can_be_answered());
        assert!(!InquiryState::Rejected.can_be_answered());
        for state in [
            InquiryState::Queued,
            InquiryState::Pending,
            InquiryState::Answered,
            InquiryState::Rejected,
        ] {
            assert_eq!(InquiryState::parse(state.as_str()), Some(state));
        }
    }
}

/// The four kinds of message two counties exchange; the outbox, reconciliation and reports
/// name them by [`MessageType::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// 函查.
    Inquiry,
    /// 反馈.
    Confirmation,
    /// 信息通报.
    Notice,
    /// 反馈 to a notice.
    Feedback,
}

impl MessageType {
    /// The name stored in the outbox and the reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Inquiry => "inquiry",
            MessageType::Confirmation => "confirmation",
            MessageType::Notice => "notice",
            MessageType::Feedback => "feedback",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<MessageType> {
        match name {
            "inquiry" => Some(MessageType::Inquiry),
            "confirmation" => Some(MessageType::Confirmation),
            "notice" => Some(MessageType::Notice),
            "feedback" => Some(MessageType::Feedback),
            _ => None,
        }
    }
}

impl std::str::FromStr for MessageType {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        MessageType::parse(name).ok_or_else(|| UnknownName {
            what: "message type",
            given: name.to_owned(),
            allowed: &["inquiry", "confirmation", "notice", "feedback"],
        })
    }
}

impl std::fmt::Display for InquiryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InquiryState {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        InquiryState::parse(name).ok_or_else(|| UnknownName {
            what: "inquiry state",
            given: name.to_owned(),
            allowed: &["queued", "pending", "answered", "rejected"],
        })
    }
}

/// Which way a message travels, seen from this node: the store keeps both directions in one
/// table, and most questions are about one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// A peer sent it to us.
    Inbound,
    /// We sent (or are sending) it to a peer.
    Outbound,
}

impl Direction {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Direction {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "inbound" => Ok(Direction::Inbound),
            "outbound" => Ok(Direction::Outbound),
            _ => Err(UnknownName {
                what: "direction",
                given: name.to_owned(),
                allowed: &["inbound", "outbound"],
            }),
        }
    }
}
