//! One side's set for a run, read from the store and keyed: the elements, and what each one
//! stands for, so the difference can be named and acted on.

use crate::domain::agreement::Agreement;
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::person::Flow;
use crate::domain::reconcile::people::{compared_fields, fields_key, person_digest};
use crate::domain::reconcile::{DifferenceDetail, MessageRef, PersonSide, ReconcileKey, ReconcileSet};
use crate::domain::resident_id::ResidentId;
use crate::domain::riblt::Element;
use crate::store::reconcile::PersonDigest;
use crate::store::{Store, StoreError};

/// What an element stands for.
#[derive(Clone, Debug)]
enum Item {
    /// A message, and whether its personal data was erased (it can no longer be re-delivered).
    Message(MessageRef, bool),
    /// A shared person as read (the ID number is parsed, and its tag computed, only for the
    /// few persons in the difference).
    Person(SharedPerson),
}

/// A shared person, compactly: 10⁶ of them are held during a run.
#[derive(Clone, Copy, Debug)]
struct SharedPerson {
    resident_id: [u8; 18],
    flow: Flow,
    township: Option<TownshipCode>,
}

/// One set, as this side holds it when the run starts.
///
/// Elements are kept sorted, with what each stands for at the same index: a lookup is a binary
/// search, and the memory is the elements plus one row each, nothing more.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Which set.
    pub(crate) set: ReconcileSet,
    /// The keyed elements, sorted.
    pub(crate) elements: Vec<Element>,
    /// What `elements[i]` stands for.
    items: Vec<Item>,
    /// The key, for the tags of persons in the difference.
    key: ReconcileKey,
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
        let mut keyed: Vec<(Element, Item)> = match set {
            ReconcileSet::Messages => store
                .message_digests(peer, agreement.id(), &|digest| key.message_tag(digest))
                .await?
                .into_iter()
                .map(|row| {
                    let message = MessageRef {
                        message_type: row.message_type,
                        message_id: row.message_id,
                        author: if row.ours { me } else { peer },
                    };
                    (key.element(set, &row.digest), Item::Message(message, row.erased))
                })
                .collect(),
            ReconcileSet::SharedPeople => {
                let fields = compared_fields(agreement);
                store
                    .shared_person_digests(peer, &fields_key(&fields), |person| {
                        person_digest(&person.resident_id, &person.status, &fields)
                    })
                    .await?
                    .into_iter()
                    .map(|row: PersonDigest| {
                        let person = SharedPerson {
                            resident_id: row.resident_id,
                            flow: row.flow,
                            township: row.township,
                        };
                        (key.element(set, &row.digest), Item::Person(person))
                    })
                    .collect()
            }
        };
        keyed.sort_unstable_by_key(|(element, _)| *element);
        let (elements, items) = keyed.into_iter().unzip();
        Ok(Snapshot {
            set,
            elements,
            items,
            key: key.clone(),
        })
    }

    fn item(&self, element: &Element) -> Option<&Item> {
        let index = self.elements.binary_search(element).ok()?;
        self.items.get(index)
    }

    /// The messages among `elements` (ours).
    pub(crate) fn messages(&self, elements: &[Element]) -> Vec<MessageRef> {
        elements
            .iter()
            .filter_map(|element| match self.item(element) {
                Some(Item::Message(message, _)) => Some(*message),
                _ => None,
            })
            .collect()
    }

    /// The messages among `elements` (ours) whose personal data was erased.
    pub(crate) fn erased_messages(&self, elements: &[Element]) -> Vec<MessageRef> {
        elements
            .iter()
            .filter_map(|element| match self.item(element) {
                Some(Item::Message(message, true)) => Some(*message),
                _ => None,
            })
            .collect()
    }

    /// The persons among `elements` (ours), with their tags.
    pub(crate) fn people(&self, elements: &[Element]) -> Result<Vec<PersonSide>, StoreError> {
        elements
            .iter()
            .filter_map(|element| match self.item(element) {
                Some(Item::Person(row)) => Some(row),
                _ => None,
            })
            .map(|row| {
                let resident_id = std::str::from_utf8(&row.resident_id)
                    .ok()
                    .and_then(|text| ResidentId::parse(text).ok())
                    .ok_or_else(|| StoreError::Corrupt("a stored ID number no longer parses".into()))?;
                Ok(PersonSide {
                    tag: self.key.person_tag(&resident_id),
                    resident_id,
                    flow: row.flow,
                    township: row.township,
                })
            })
            .collect()
    }

    /// Names our part of the difference for the peer: message references, or person tags
    /// (never ID numbers). A stored ID number that no longer parses is left out (and the run
    /// fails when it comes to plan).
    pub(crate) fn describe(&self, ours_only: &[Element]) -> DifferenceDetail {
        DifferenceDetail {
            messages: self.messages(ours_only),
            person_tags: self
                .people(ours_only)
                .unwrap_or_default()
                .iter()
                .map(|person| person.tag)
                .collect(),
        }
    }
}
