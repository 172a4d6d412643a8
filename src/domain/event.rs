//! Events a county system is told about as they happen (`Watch`, webhooks): what arrived, what
//! fell due, what finished. Each event is an audit record already sealed into the audit chain,
//! seen through a filter: its cursor is the record's chain position, so events follow commit
//! order, survive restarts, read the same from every replica, and exist only because the record
//! does. An event names messages by id and never carries a person's data: a county system that
//! needs the answer asks for it (`ShowInquiry`), under its own principal and audit record.

use std::fmt;
use std::str::FromStr;

/// The kinds of event, by their stable wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A peer answered one of our inquiries (its confirmation was accepted).
    AnswerReceived,
    /// A peer's inquiry arrived and waits for our answer (unless the registry answers it).
    InquiryReceived,
    /// An inquiry passed its reply deadline unanswered: ours to answer, or the peer's.
    InquiryOverdue,
    /// A peer refused one of our inquiries: no answer will come.
    InquiryRefused,
    /// A peer's notice (信息通报) arrived.
    NoticeReceived,
    /// A peer refused one of our notices.
    NoticeRefused,
    /// A peer's feedback (反馈) on one of our notices arrived.
    FeedbackReceived,
    /// A reconciliation run with a peer finished (or broke off).
    ReconcileFinished,
}

impl EventType {
    /// Every event type, in the order documentation lists them.
    pub const ALL: [EventType; 8] = [
        EventType::AnswerReceived,
        EventType::InquiryReceived,
        EventType::InquiryOverdue,
        EventType::InquiryRefused,
        EventType::NoticeReceived,
        EventType::NoticeRefused,
        EventType::FeedbackReceived,
        EventType::ReconcileFinished,
    ];

    /// The wire name (`answer.received`, ...), as Standard Webhooks' `type` and the filters use.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::AnswerReceived => "answer.received",
            EventType::InquiryReceived => "inquiry.received",
            EventType::InquiryOverdue => "inquiry.overdue",
            EventType::InquiryRefused => "inquiry.refused",
            EventType::NoticeReceived => "notice.received",
            EventType::NoticeRefused => "notice.refused",
            EventType::FeedbackReceived => "feedback.received",
            EventType::ReconcileFinished => "reconcile.finished",
        }
    }

    /// Whether a township office may see events of this type for its own township: a
    /// reconciliation run is the county office's.
    pub const fn has_township(self) -> bool {
        !matches!(self, EventType::ReconcileFinished)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an event type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type (known: {})", known_types())]
pub struct UnknownEventType;

fn known_types() -> String {
    EventType::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(name: &str) -> Result<EventType, UnknownEventType> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or(UnknownEventType)
    }
}

/// Parses a list of type names; an empty list means every type. Names are never echoed back in
/// the error (they are input).
pub fn parse_types<S: AsRef<str>>(names: &[S]) -> Result<Vec<EventType>, UnknownEventType> {
    if names.is_empty() {
        return Ok(EventType::ALL.to_vec());
    }
    let mut types = names
        .iter()
        .map(|name| name.as_ref().parse())
        .collect::<Result<Vec<EventType>, _>>()?;
    types.sort();
    types.dedup();
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>(), Ok(kind));
        }
        assert_eq!("answer".parse::<EventType>(), Err(UnknownEventType));
    }

    #[test]
    fn an_empty_filter_is_every_type_and_duplicates_collapse() {
        assert_eq!(parse_types::<&str>(&[]).unwrap(), EventType::ALL.to_vec());
        assert_eq!(
            parse_types(&["notice.received", "answer.received", "notice.received"]).unwrap(),
            vec![EventType::AnswerReceived, EventType::NoticeReceived]
        );
        let error = parse_types(&["110101199003074578"]).unwrap_err().to_string();
        assert!(!error.contains("110101199003074578"), "{error}");
        assert!(error.contains("answer.received"), "{error}");
    }
}
