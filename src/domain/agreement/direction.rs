//! One direction of an agreement: what one county may send the other, on what terms, and the
//! deadlines that follow from them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::division::CountyCode;
use crate::domain::vocabulary::{
    InquiryKind, MessageKind, NoticeEffect, NoticeField, NoticeKind, Priority, StatusField,
};

/// What one county may send the other under an agreement, and on what terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direction {
    /// The asker, and the sender of notices.
    pub(super) from: CountyCode,
    /// The responder, and the receiver of notices.
    pub(super) to: CountyCode,
    /// The inquiries `from` may send.
    pub(super) inquiry_kinds: BTreeSet<InquiryKind>,
    /// The notices `from` may send.
    pub(super) notice_kinds: BTreeSet<NoticeKind>,
    /// The fields `to` may disclose in answers to `from` (data minimisation), as the agreement
    /// lists them: what its canonical form and summary show.
    pub(super) listed_fields: BTreeSet<StatusField>,
    /// `listed_fields` with what they imply ([`implied_fields`]): what answers may carry.
    pub(super) answer_fields: BTreeSet<StatusField>,
    /// Per notice kind, the fields a notice of that kind from `from` may carry (besides its
    /// date); a kind allowed but not listed carries none.
    pub(super) notice_fields: BTreeMap<NoticeKind, BTreeSet<NoticeField>>,
    /// Per notice kind `from` may send, what a received notice does at `to`: every allowed
    /// kind is present, those the document does not name as [`NoticeEffect::Operator`].
    pub(super) notice_effect: BTreeMap<NoticeKind, NoticeEffect>,
    /// Days `to` has to answer an inquiry.
    pub(super) reply_days: ReplyDays,
    /// Days `to` has to acknowledge a notice and to feed back; `None` when no notices are allowed.
    pub(super) notice_days: Option<NoticeDays>,
    /// The most messages `from` may send `to` per day, to protect the responder's operators.
    pub(super) daily_cap: u32,
    /// Whether `to` may answer from its register without an operator.
    pub(super) automatic_answers: bool,
}

/// Reply deadlines for inquiries, in days after receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyDays {
    /// For ordinary inquiries (30 in the current agreements).
    pub normal: u16,
    /// For key subjects (15 in the current agreements); never longer than `normal`.
    pub urgent: u16,
}

impl ReplyDays {
    /// The days allowed for an inquiry of `priority`.
    pub fn for_priority(self, priority: Priority) -> u16 {
        match priority {
            Priority::Normal => self.normal,
            Priority::Urgent => self.urgent,
        }
    }
}

/// Deadlines for notices, in days after receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeDays {
    /// To acknowledge any notice.
    pub receipt: u16,
    /// To feed back on notices whose kind requires it ([`NoticeKind::requires_feedback`]).
    pub feedback: u16,
}

/// When the receiver of one notice owes what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeDeadlines {
    /// When the receipt is due.
    pub receipt: DateTime<Utc>,
    /// When the feedback is due; `None` for kinds that need no feedback.
    pub feedback: Option<DateTime<Utc>>,
}

/// The fields an answer may carry under a direction that lists `listed`: the listed ones, and
/// [`StatusField::CertificatePresented`] wherever any certificate field is listed. That field
/// describes the inquiry (was the number shown this person's?) and is how a window learns that
/// a borrowed certificate is not the holder's, so every agreement that speaks of certificates
/// carries it. It discloses one thing only: whether the number shown is hers. A peer could test
/// a guessed number with it, one inquiry per guess, within the direction's daily cap and in
/// its audit log; it never names another person.
pub(super) fn implied_fields(listed: &BTreeSet<StatusField>) -> BTreeSet<StatusField> {
    let mut allowed = listed.clone();
    let speaks_of_certificates = [
        StatusField::CertificateNumber,
        StatusField::CertificateValidUntil,
        StatusField::CertificateStatus,
    ]
    .iter()
    .any(|field| listed.contains(field));
    if speaks_of_certificates {
        allowed.insert(StatusField::CertificatePresented);
    }
    allowed
}

/// Joins kinds for a message; "none" for an empty list.
pub(super) fn names(kinds: &[MessageKind]) -> String {
    if kinds.is_empty() {
        return "none".to_owned();
    }
    kinds
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `at + days`, saturating instead of overflowing on absurd timestamps.
fn add_days(at: DateTime<Utc>, days: u16) -> DateTime<Utc> {
    at.checked_add_signed(TimeDelta::days(i64::from(days)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

// === impl Direction ===

impl Direction {
    /// The asker, and the sender of notices.
    pub fn from(&self) -> CountyCode {
        self.from
    }

    /// The responder, and the receiver of notices.
    pub fn to(&self) -> CountyCode {
        self.to
    }

    /// The inquiries `from` may send.
    pub fn inquiry_kinds(&self) -> &BTreeSet<InquiryKind> {
        &self.inquiry_kinds
    }

    /// The notices `from` may send.
    pub fn notice_kinds(&self) -> &BTreeSet<NoticeKind> {
        &self.notice_kinds
    }

    /// The fields a notice of `kind` may carry in this direction (empty when the kind is not
    /// allowed or the agreement lists none for it).
    pub fn notice_fields(&self, kind: NoticeKind) -> impl Iterator<Item = NoticeField> + '_ {
        self.notice_fields.get(&kind).into_iter().flatten().copied()
    }

    /// Whether a notice in this direction may carry `field` (its kind allowed and the field
    /// listed for it).
    pub fn may_carry(&self, field: NoticeField) -> bool {
        self.notice_kinds.contains(&field.kind())
            && self
                .notice_fields
                .get(&field.kind())
                .is_some_and(|fields| fields.contains(&field))
    }

    /// Every kind allowed, inquiries first: what a denial lists as allowed.
    pub fn message_kinds(&self) -> Vec<MessageKind> {
        let inquiries = self.inquiry_kinds.iter().map(|&kind| MessageKind::Inquiry(kind));
        let notices = self.notice_kinds.iter().map(|&kind| MessageKind::Notice(kind));
        inquiries.chain(notices).collect()
    }

    /// Whether this direction allows `kind`.
    pub fn allows_kind(&self, kind: MessageKind) -> bool {
        match kind {
            MessageKind::Inquiry(kind) => self.inquiry_kinds.contains(&kind),
            MessageKind::Notice(kind) => self.notice_kinds.contains(&kind),
        }
    }

    /// The fields `to` may disclose in answers to `from`: pass to
    /// [`StatusValues::filtered`](crate::domain::vocabulary::StatusValues::filtered) before
    /// sending. Besides the listed fields, this includes what they imply
    /// ([`StatusField::CertificatePresented`] wherever a certificate field is listed).
    pub fn answer_fields(&self) -> &BTreeSet<StatusField> {
        &self.answer_fields
    }

    /// The reply deadlines in days.
    pub fn reply_days(&self) -> ReplyDays {
        self.reply_days
    }

    /// The notice deadlines in days; `None` when the direction allows no notices.
    pub fn notice_days(&self) -> Option<NoticeDays> {
        self.notice_days
    }

    /// When the answer to an inquiry of `priority` received at `received_at` is due:
    /// `received_at` plus the agreed number of days.
    pub fn deadline(&self, received_at: DateTime<Utc>, priority: Priority) -> DateTime<Utc> {
        add_days(received_at, self.reply_days.for_priority(priority))
    }

    /// When the receipt (and, for kinds that require it, the feedback) for a notice of `kind`
    /// received at `received_at` is due; `None` when this direction does not allow `kind`.
    pub fn notice_deadlines(&self, kind: NoticeKind, received_at: DateTime<Utc>) -> Option<NoticeDeadlines> {
        if !self.notice_kinds.contains(&kind) {
            return None;
        }
        let days = self.notice_days?;
        Some(NoticeDeadlines {
            receipt: add_days(received_at, days.receipt),
            feedback: kind
                .requires_feedback()
                .then(|| add_days(received_at, days.feedback)),
        })
    }

    /// What a notice of `kind` received under this direction does at the receiver:
    /// [`NoticeEffect::Operator`] for a kind the agreement does not name (or does not allow).
    pub fn notice_effect(&self, kind: NoticeKind) -> NoticeEffect {
        self.notice_effect.get(&kind).copied().unwrap_or_default()
    }

    /// The most messages `from` may send `to` per day.
    pub fn daily_cap(&self) -> u32 {
        self.daily_cap
    }

    /// Whether `to` may answer from its register without an operator.
    pub fn automatic_answers(&self) -> bool {
        self.automatic_answers
    }

    /// One line describing the direction, for [`Agreement::summary`](super::Agreement::summary).
    pub fn summary(&self) -> String {
        let kinds = names(&self.message_kinds());
        let fields: Vec<&str> = self.listed_fields.iter().map(|field| field.as_str()).collect();
        let ReplyDays { normal, urgent } = self.reply_days;
        let answering = if self.automatic_answers {
            "automatic"
        } else {
            "by an operator"
        };
        let applied: Vec<&str> = self
            .notice_effect
            .iter()
            .filter(|(_, effect)| **effect == NoticeEffect::Apply)
            .map(|(kind, _)| kind.as_str())
            .collect();
        let notices = if self.notice_kinds.is_empty() {
            String::new()
        } else if applied.is_empty() {
            "; notices wait for an operator".to_owned()
        } else {
            format!("; notices applied on receipt: {}", applied.join(", "))
        };
        format!(
            "{} {} → {} {}: {kinds}; answers carry {}; reply within {normal} days ({urgent} urgent); \
             at most {} per day; answers {answering}{notices}",
            self.from,
            self.from.name(),
            self.to,
            self.to.name(),
            if fields.is_empty() {
                "no fields".to_owned()
            } else {
                fields.join(", ")
            },
            self.daily_cap,
        )
    }
}
