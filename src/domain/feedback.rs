//! Feedback (反馈) to a notice: the origin county's answer to a notice that owes one (a birth,
//! under the agreement's `notice_days.feedback`). A message of its own, authored by the
//! notice's receiver, linked to the notice, sent through the outbox and acknowledged by the
//! notice's sender like every message. Its content is small on purpose: an outcome from a
//! fixed list and a short note that may not hold an ID number.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::message::{AgreementRef, FieldViolation};
use super::privacy::holds_id_number;

/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// What the origin did about the notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedbackOutcome {
    /// The event is entered in the origin's registry (已登记).
    Registered,
    /// The child is counted in the mother's record (已计入孩次).
    ChildCounted,
    /// The township of registration follows it up (乡镇跟进).
    TownshipFollowUp,
    /// The person is not registered with the origin (查无此人).
    NotRegisteredHere,
}

impl FeedbackOutcome {
    /// Every outcome, in the order the CLI lists them.
    pub const ALL: [FeedbackOutcome; 4] = [
        FeedbackOutcome::Registered,
        FeedbackOutcome::ChildCounted,
        FeedbackOutcome::TownshipFollowUp,
        FeedbackOutcome::NotRegisteredHere,
    ];

    /// The one spelling: wire, database, CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedbackOutcome::Registered => "registered",
            FeedbackOutcome::ChildCounted => "child_counted",
            FeedbackOutcome::TownshipFollowUp => "township_follow_up",
            FeedbackOutcome::NotRegisteredHere => "not_registered_here",
        }
    }

    /// The Chinese term for operator screens.
    pub const fn label_zh(self) -> &'static str {
        match self {
            FeedbackOutcome::Registered => "已登记",
            FeedbackOutcome::ChildCounted => "已计入孩次",
            FeedbackOutcome::TownshipFollowUp => "乡镇跟进",
            FeedbackOutcome::NotRegisteredHere => "查无此人",
        }
    }

    /// Parses a name; the error lists the allowed ones.
    pub fn parse(name: &str) -> Result<FeedbackOutcome, String> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|o| o.as_str()).collect();
                format!("must be one of: {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for FeedbackOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a feedback note: at most [`MAX_NOTE_CHARS`] characters, no control characters other
/// than line breaks, no ID number. An empty note is no note.
pub fn parse_note(note: &str, field: &str) -> Result<Option<String>, FieldViolation> {
    let note = note.trim();
    if note.is_empty() {
        return Ok(None);
    }
    let refuse = |why: String| Err(FieldViolation::new(field, why));
    if note.chars().count() > MAX_NOTE_CHARS {
        return refuse(format!("must be at most {MAX_NOTE_CHARS} characters"));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return refuse("must not hold control characters".into());
    }
    if holds_id_number(note) {
        return refuse("must not hold an ID number".into());
    }
    Ok(Some(note.to_string()))
}

/// One feedback message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feedback {
    /// Author-chosen UUID v7: the key that makes delivery idempotent.
    pub message_id: Uuid,
    /// The notice it answers.
    pub notice_id: Uuid,
    /// The notice's agreement (feedback travels under it).
    pub agreement: AgreementRef,
    /// What the origin did.
    pub outcome: FeedbackOutcome,
    /// A short note, checked by [`parse_note`].
    pub note: Option<String>,
    /// When it was given.
    pub answered_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_short_and_holds_no_id_number() {
        assert_eq!(parse_note("  ", "note"), Ok(None));
        assert_eq!(parse_note("已入户", "note"), Ok(Some("已入户".into())));
        let long = "长".repeat(MAX_NOTE_CHARS + 1);
        assert!(parse_note(&long, "note").is_err());
        let refused = parse_note("母亲 43070319900101002X", "note").unwrap_err();
        assert_eq!(refused.description, "must not hold an ID number");
        assert!(!refused.description.contains("4307"));
    }

    #[test]
    fn outcomes_parse_by_their_one_spelling() {
        for outcome in FeedbackOutcome::ALL {
            assert_eq!(FeedbackOutcome::parse(outcome.as_str()), Ok(outcome));
        }
        assert!(FeedbackOutcome::parse("done").unwrap_err().contains("registered"));
    }
}
