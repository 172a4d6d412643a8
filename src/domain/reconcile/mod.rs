//! Reconciliation (对账): what the two counties of an agreement compare each night, and what
//! they do about the differences. Pure rules; the wire protocol lives in
//! `exchange::reconcile` and `peer::reconcile`, the run in `node::reconcile`.
//!
//! Two sets per agreement are compared with rateless IBLTs ([`crate::domain::riblt`]):
//!
//! - **messages**: every inquiry, confirmation and notice the pair exchanged, each as a keyed
//!   tag of its id and content ([`ReconcileKey::message_tag`]), made once while the content is
//!   there and kept when the message's personal data is erased at the end of the agreed
//!   retention period, so that the set does not change when one side erases before the other;
//!   a difference is a lost or divergent message ([`MessageRef`]).
//! - **shared people**: the persons both counties should know, each as a digest of the ID
//!   number and the status fields both sides may see ([`people`]); a difference is a person one
//!   side does not know, or knows differently.
//!
//! Every element is keyed ([`ReconcileKey`]) with the agreement's secret, so a captured sketch
//! cannot be matched against a dictionary of ID numbers.
//!
//! # Layout
//!
//! - [`key`]: the agreement secret and the keyed elements and tags.
//! - [`pacing`]: how many coded symbols to send next, and when sending every element is cheaper.
//! - [`people`]: the fields compared for a shared person and the person digest.
//! - [`plan`]: from the decoded difference to repairs and reports.
//! - [`protocol`]: the protocol's messages, as the node sends and receives them.

pub mod key;
pub mod pacing;
pub mod people;
pub mod plan;
pub mod protocol;

#[cfg(test)]
mod tests;

pub use key::{ReconcileKey, SecretError};
pub use plan::{
    AskedBefore, MessageDifference, MessagePlan, MessageRef, MessageRepair, MessageType, PersonAction,
    PersonDifference, PersonPlan, PersonSide, plan_messages, plan_people, report_erased,
};

/// What one side holds of a decoded difference, named so the other side can act on it:
/// message references (ids are not personal data), and keyed tags of ID numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DifferenceDetail {
    /// The messages, for the messages set.
    pub messages: Vec<MessageRef>,
    /// The persons' tags ([`ReconcileKey::person_tag`]), for the shared-people set.
    pub person_tags: Vec<[u8; 32]>,
}

/// Which of the two sets a run compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReconcileSet {
    /// Inquiries, confirmations and notices exchanged under the agreement.
    Messages,
    /// The persons both counties should know.
    SharedPeople,
}

impl ReconcileSet {
    /// Both sets, in the order a run compares them.
    pub const ALL: [ReconcileSet; 2] = [ReconcileSet::Messages, ReconcileSet::SharedPeople];

    /// The name stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReconcileSet::Messages => "messages",
            ReconcileSet::SharedPeople => "shared_people",
        }
    }

    /// The domain-separation label hashed into every element of the set, so that an element of
    /// one set can never be taken for an element of the other.
    pub(crate) const fn label(self) -> &'static [u8] {
        match self {
            ReconcileSet::Messages => b"hancha/reconcile/messages/v2",
            ReconcileSet::SharedPeople => b"hancha/reconcile/people/v1",
        }
    }
}

impl std::str::FromStr for ReconcileSet {
    type Err = crate::domain::vocabulary::UnknownName;

    /// Parses a stored name.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "messages" => Ok(ReconcileSet::Messages),
            "shared_people" => Ok(ReconcileSet::SharedPeople),
            _ => Err(crate::domain::vocabulary::UnknownName {
                what: "reconciliation set",
                given: name.to_owned(),
                allowed: &["messages", "shared_people"],
            }),
        }
    }
}

impl std::fmt::Display for ReconcileSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
