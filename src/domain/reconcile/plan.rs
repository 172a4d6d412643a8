//! From a decoded difference to what each side does: re-deliver, open an inquiry, or report.
//!
//! Both sides see the same difference (each names what it holds of it), and each plans only
//! its own part: the author of a message re-delivers it; the origin of a person asks about
//! them. Planning is pure so that both sides, and the tests, agree on it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use uuid::Uuid;

use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::person::Flow;
use crate::domain::resident_id::ResidentId;

pub use crate::domain::message::MessageType;

/// One message, as either side names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRef {
    /// Inquiry, confirmation or notice.
    pub message_type: MessageType,
    /// The id its author chose.
    pub message_id: Uuid,
    /// The county that wrote it: only the author can re-deliver it.
    pub author: CountyCode,
}

/// How one message differs between the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageDifference {
    /// We hold it; the peer does not.
    MissingAtPeer,
    /// The peer holds it; we do not.
    MissingHere,
    /// Both hold it with different content.
    Divergent,
}

impl MessageDifference {
    /// The name stored in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageDifference::MissingAtPeer => "missing_at_peer",
            MessageDifference::MissingHere => "missing_here",
            MessageDifference::Divergent => "divergent",
        }
    }
}

/// What this side does about one message difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageRepair {
    /// We wrote it and the peer lacks it: deliver it again (receipt is idempotent on the id).
    Redeliver,
    /// The peer wrote it and will deliver it again; nothing to do here.
    AwaitPeer,
    /// No side can repair it automatically (an author lost its own message, or the contents
    /// diverge): reported for an operator.
    Report,
}

impl MessageRepair {
    /// The name stored in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageRepair::Redeliver => "redelivered",
            MessageRepair::AwaitPeer => "awaiting_peer",
            MessageRepair::Report => "reported",
        }
    }
}

/// One planned message repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessagePlan {
    /// The message.
    pub message: MessageRef,
    /// How it differs.
    pub difference: MessageDifference,
    /// What we do.
    pub repair: MessageRepair,
}

/// Plans this side's part of a message difference. `ours` are the messages only we hold (in
/// the version we hold), `theirs` the ones the peer named.
pub fn plan_messages(me: CountyCode, ours: &[MessageRef], theirs: &[MessageRef]) -> Vec<MessagePlan> {
    let key = |message: &MessageRef| (message.message_type, message.message_id);
    let their_keys: HashSet<_> = theirs.iter().map(key).collect();
    let our_keys: HashSet<_> = ours.iter().map(key).collect();
    let mut plans = Vec::with_capacity(ours.len() + theirs.len());
    for message in ours {
        let divergent = their_keys.contains(&key(message));
        let difference = if divergent {
            MessageDifference::Divergent
        } else {
            MessageDifference::MissingAtPeer
        };
        let repair = if divergent || message.author.current() != me.current() {
            MessageRepair::Report
        } else {
            MessageRepair::Redeliver
        };
        plans.push(MessagePlan {
            message: *message,
            difference,
            repair,
        });
    }
    for message in theirs.iter().filter(|message| !our_keys.contains(&key(message))) {
        let repair = if message.author.current() == me.current() {
            MessageRepair::Report
        } else {
            MessageRepair::AwaitPeer
        };
        plans.push(MessagePlan {
            message: *message,
            difference: MessageDifference::MissingHere,
            repair,
        });
    }
    plans.sort();
    plans
}

/// A message whose personal data we erased at the end of the agreed retention period cannot be
/// delivered again: where the plan would re-deliver one of `erased`, it is reported instead.
pub fn report_erased(plans: &mut [MessagePlan], erased: &[MessageRef]) {
    for plan in plans.iter_mut() {
        if plan.repair == MessageRepair::Redeliver && erased.contains(&plan.message) {
            plan.repair = MessageRepair::Report;
        }
    }
}

/// A shared person as this side holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonSide {
    /// The ID number (stays on this side; only its keyed tag crosses).
    pub resident_id: ResidentId,
    /// Outflow (we are the origin) or inflow (we are the destination).
    pub flow: Flow,
    /// The township office responsible for the person here.
    pub township: Option<TownshipCode>,
    /// The keyed tag of the ID number.
    pub tag: [u8; 32],
}

/// How one person differs between the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PersonDifference {
    /// We know the person; the peer does not.
    UnknownToPeer,
    /// Both know the person, with different status.
    Differs,
    /// The peer knows a person we do not (we only learn a tag).
    UnknownHere,
}

impl PersonDifference {
    /// The name stored in reports and the CSV export.
    pub const fn as_str(self) -> &'static str {
        match self {
            PersonDifference::UnknownToPeer => "unknown_to_peer",
            PersonDifference::Differs => "differs",
            PersonDifference::UnknownHere => "unknown_here",
        }
    }
}

impl std::str::FromStr for PersonDifference {
    type Err = crate::domain::vocabulary::UnknownName;

    /// Parses a stored name.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "unknown_to_peer" => Ok(PersonDifference::UnknownToPeer),
            "differs" => Ok(PersonDifference::Differs),
            "unknown_here" => Ok(PersonDifference::UnknownHere),
            _ => Err(crate::domain::vocabulary::UnknownName {
                what: "person difference",
                given: name.to_owned(),
                allowed: &["unknown_to_peer", "differs", "unknown_here"],
            }),
        }
    }
}

/// What this side does about one person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PersonAction {
    /// An outflow inquiry (流出人口函查) is opened to the peer.
    InquiryOpened,
    /// An outflow inquiry would be opened but the run's cap was reached; next run.
    OverCap,
    /// Asking again would only repeat an inquiry (see [`AskedBefore`]); nothing new.
    AlreadyAsked,
    /// Reported only (we are not the origin, or the agreement allows no outflow inquiry).
    Reported,
}

impl PersonAction {
    /// The name stored in reports and the CSV export.
    pub const fn as_str(self) -> &'static str {
        match self {
            PersonAction::InquiryOpened => "inquiry_opened",
            PersonAction::OverCap => "over_cap",
            PersonAction::AlreadyAsked => "already_asked",
            PersonAction::Reported => "reported",
        }
    }
}

impl std::str::FromStr for PersonAction {
    type Err = crate::domain::vocabulary::UnknownName;

    /// Parses a stored name.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "inquiry_opened" => Ok(PersonAction::InquiryOpened),
            "over_cap" => Ok(PersonAction::OverCap),
            "already_asked" => Ok(PersonAction::AlreadyAsked),
            "reported" => Ok(PersonAction::Reported),
            _ => Err(crate::domain::vocabulary::UnknownName {
                what: "person action",
                given: name.to_owned(),
                allowed: &["inquiry_opened", "over_cap", "already_asked", "reported"],
            }),
        }
    }
}

/// The outflow inquiries to the peer that make asking about a person again pointless.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AskedBefore {
    /// Subjects with an inquiry still waiting for its answer, or opened by reconciliation within
    /// the reply period (a difference that outlives the answer is for an operator, not for a
    /// nightly repeat).
    pub pending_or_reconciled: HashSet<String>,
    /// Subjects the peer answered `not_found` within the reply period: it said it does not know
    /// them, which is exactly the difference.
    pub not_found: HashSet<String>,
}

impl AskedBefore {
    /// Whether asking about `resident_id` for `difference` would only repeat an inquiry.
    pub fn covers(&self, resident_id: &str, difference: PersonDifference) -> bool {
        self.pending_or_reconciled.contains(resident_id)
            || (difference == PersonDifference::UnknownToPeer && self.not_found.contains(resident_id))
    }
}

/// One planned person action. `person` is `None` for a person only the peer knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonPlan {
    /// The person, when we know them.
    pub person: Option<PersonSide>,
    /// The tag both sides compared.
    pub tag: [u8; 32],
    /// How they differ.
    pub difference: PersonDifference,
    /// What we do.
    pub action: PersonAction,
}

/// Plans this side's part of a shared-people difference. `ours` are the persons whose digest
/// only we hold, `their_tags` the tags the peer named. `may_ask` says whether the agreement
/// lets us send outflow inquiries to the peer; `asked` says whom asking again would only repeat;
/// at most `cap` new inquiries are planned, in township and ID order.
pub fn plan_people(
    ours: &[PersonSide],
    their_tags: &[[u8; 32]],
    may_ask: bool,
    asked: &AskedBefore,
    cap: usize,
) -> Vec<PersonPlan> {
    let their: BTreeSet<[u8; 32]> = their_tags.iter().copied().collect();
    let our_tags: HashSet<[u8; 32]> = ours.iter().map(|person| person.tag).collect();
    let mut ordered: BTreeMap<(Option<TownshipCode>, &str), &PersonSide> = BTreeMap::new();
    for person in ours {
        ordered.insert((person.township, person.resident_id.as_str()), person);
    }
    let mut opened = 0;
    let mut plans = Vec::with_capacity(ours.len() + their.len());
    for person in ordered.into_values() {
        let difference = if their.contains(&person.tag) {
            PersonDifference::Differs
        } else {
            PersonDifference::UnknownToPeer
        };
        let action = if person.flow != Flow::Outflow || !may_ask {
            PersonAction::Reported
        } else if asked.covers(person.resident_id.as_str(), difference) {
            PersonAction::AlreadyAsked
        } else if opened < cap {
            opened += 1;
            PersonAction::InquiryOpened
        } else {
            PersonAction::OverCap
        };
        plans.push(PersonPlan {
            person: Some(person.clone()),
            tag: person.tag,
            difference,
            action,
        });
    }
    for tag in their.into_iter().filter(|tag| !our_tags.contains(tag)) {
        plans.push(PersonPlan {
            person: None,
            tag,
            difference: PersonDifference::UnknownHere,
            action: PersonAction::Reported,
        });
    }
    plans
}
