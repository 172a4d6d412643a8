//! One side's set for a run, read from the store and keyed: the elements, and what each one
//! stands for, so the difference can be named and acted on.

use std::collections::HashMap;

use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::reconcile::people::{compared_fields, fields_key, person_digest};
use crate::domain::reconcile::{DifferenceDetail, MessageRef, PersonSide, ReconcileKey, ReconcileSet};
use crate::domain::resident_id::ResidentId;
use crate::domain::riblt::Element;
use crate::store::{Store, StoreError};

/// What an element stands for.
#[derive(Clone, Debug)]
enum Item {
    Message(MessageRef),
    Person(PersonSide),
}

/// One set, as this side holds it when the run starts.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Which set.
    pub(crate) set: ReconcileSet,
    /// The keyed elements, in the order read.
    pub(crate) elements: Vec<Element>,
    /// Element → what it stands for.
    items: HashMap<Element, Item>,
}

impl Snapshot {
    /// Reads and keys `set` as shared with `peer` under `agreement`.
    pub(crate) async fn load(
        store: &Store,
        me: CountyCode,
        peer: CountyCode,
        agreement: &Agreement,
        key: &ReconcileKey,
        set: ReconcileSet,
    ) -> Result<Snapshot, StoreError> {
        let mut items = HashMap::new();
        let mut elements = Vec::new();
        match set {
            ReconcileSet::Messages => {
                for row in store.message_digests(peer.as_str(), agreement.id()).await? {
                    let element = key.element(set, &row.digest);
                    let message = MessageRef {
                        message_type: row.message_type,
                        message_id: row.message_id,
                        author: if row.ours { me } else { peer },
                    };
                    elements.push(element);
                    items.insert(element, Item::Message(message));
                }
            }
            ReconcileSet::SharedPeople => {
                let fields = compared_fields(agreement);
                let rows = store
                    .shared_person_digests(peer.as_str(), &fields_key(&fields), |person| {
                        person_digest(&person.resident_id, &person.status, &fields)
                    })
                    .await?;
                for row in rows {
                    let resident_id = ResidentId::parse(&row.resident_id)
                        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
                    let element = key.element(set, &row.digest);
                    let person = PersonSide {
                        tag: key.person_tag(&resident_id),
                        resident_id,
                        flow: row.flow,
                        township: row.township,
                    };
                    elements.push(element);
                    items.insert(element, Item::Person(person));
                }
            }
        }
        Ok(Snapshot { set, elements, items })
    }

    /// The messages among `elements` (ours).
    pub(crate) fn messages(&self, elements: &[Element]) -> Vec<MessageRef> {
        elements
            .iter()
            .filter_map(|element| match self.items.get(element) {
                Some(Item::Message(message)) => Some(*message),
                _ => None,
            })
            .collect()
    }

    /// The persons among `elements` (ours).
    pub(crate) fn people(&self, elements: &[Element]) -> Vec<PersonSide> {
        elements
            .iter()
            .filter_map(|element| match self.items.get(element) {
                Some(Item::Person(person)) => Some(person.clone()),
                _ => None,
            })
            .collect()
    }

    /// Names our part of the difference for the peer: message references, or person tags
    /// (never ID numbers).
    pub(crate) fn describe(&self, ours_only: &[Element]) -> DifferenceDetail {
        DifferenceDetail {
            messages: self.messages(ours_only),
            person_tags: self.people(ours_only).iter().map(|person| person.tag).collect(),
        }
    }
}
