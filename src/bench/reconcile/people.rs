//! The shared persons of `hancha bench reconcile --nodes`: people registered in the origin county
//! (鼎城区, which holds them as outflow persons) who live in the destination county (新化县,
//! which holds them as inflow persons), and the difference injected between the two registries.
//!
//! Of the `d` element differences, ⌊d/4⌋ persons are known differently (the destination records
//! another children count, a compared field), each counting twice, once per version; of the rest,
//! ⌈·/2⌉ persons are only in the origin's registry and ⌊·/2⌋ only in the destination's, as the
//! in-memory benchmark splits its sets. Person `i` has synthetic ID number `i` of the origin:
//!
//! | indexes                          | origin | destination          |
//! |----------------------------------|--------|----------------------|
//! | `0 .. changed`                   | yes    | yes, one more child  |
//! | `changed .. n − origin_only`     | yes    | yes, the same        |
//! | `n − origin_only .. n`           | yes    | no                   |
//! | `n .. n + destination_only`      | no     | yes                  |

use std::collections::BTreeSet;
use std::ops::Range;

use anyhow::ensure;
use chrono::NaiveDate;

use crate::bench::population::synthetic_id;
use crate::domain::division::{CountyCode, townships_of};
use crate::domain::person::{Flow, Person};
use crate::domain::vocabulary::{CertificateStatus, MaritalStatus, StatusValues};

/// The name every synthetic person is registered under.
const NAME: &str = "测试人员";

/// The name a rewrite between the two runs gives (not a compared field: the digest is cleared
/// by the write and recomputed the same).
const CORRECTED_NAME: &str = "测试人员（更正）";

/// The two registries of one `--nodes` run.
#[derive(Clone, Copy, Debug)]
pub struct SharedPeople {
    /// Where the persons are registered: the asking node.
    pub origin: CountyCode,
    /// Where they live: the answering node.
    pub destination: CountyCode,
    /// Persons in the origin's set.
    pub n: usize,
    /// Element differences injected.
    pub d: usize,
    /// Persons both know, differently (indexes `0 .. changed`).
    pub changed: usize,
    /// Persons only the origin knows.
    pub origin_only: usize,
    /// Persons only the destination knows.
    pub destination_only: usize,
}

/// Which registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The origin's: outflow persons.
    Origin,
    /// The destination's: inflow persons.
    Destination,
}

impl SharedPeople {
    /// Registries of `n` persons at the origin differing in `d` elements; fails when `d` does
    /// not fit in `n`.
    pub fn new(
        origin: CountyCode,
        destination: CountyCode,
        n: usize,
        d: usize,
    ) -> anyhow::Result<SharedPeople> {
        let changed = d / 4;
        let rest = d - 2 * changed;
        let people = SharedPeople {
            origin,
            destination,
            n,
            d,
            changed,
            origin_only: rest.div_ceil(2),
            destination_only: rest / 2,
        };
        ensure!(
            people.changed + people.origin_only <= n,
            "--d {d} does not fit in registries of {n} shared persons: at most about 2·n elements can differ"
        );
        Ok(people)
    }

    /// How many persons `side`'s set holds.
    pub fn size(&self, side: Side) -> usize {
        match side {
            Side::Origin => self.n,
            Side::Destination => self.n - self.origin_only + self.destination_only,
        }
    }

    /// The person indexes `side` holds, as ranges (the second empty for the origin).
    pub fn ranges(&self, side: Side) -> [Range<usize>; 2] {
        match side {
            Side::Origin => [0..self.n, self.n..self.n],
            Side::Destination => [
                0..self.n - self.origin_only,
                self.n..self.n + self.destination_only,
            ],
        }
    }

    /// `side`'s persons `indexes`, ready to import.
    pub fn persons(&self, side: Side, indexes: Range<usize>) -> Vec<Person> {
        indexes.map(|index| self.person(side, index, NAME)).collect()
    }

    /// Up to `count` persons both hold the same, with a corrected name and registration date on
    /// both sides alike: rewritten between the runs, their digests are computed again and come
    /// out equal on both sides.
    pub fn rewritten(&self, side: Side, count: usize) -> Vec<Person> {
        let end = (self.changed + count).min(self.n - self.origin_only);
        (self.changed..end)
            .map(|index| {
                // A correction both registries make alike: it clears the stored digest (a status
                // field changed) without making a difference.
                let mut person = self.person(side, index, CORRECTED_NAME);
                person.status.registered_since = NaiveDate::from_ymd_opt(2016, 3, 1);
                person
            })
            .collect()
    }

    /// The ID numbers of the persons both hold differently.
    pub fn changed_ids(&self) -> BTreeSet<String> {
        self.ids(0..self.changed)
    }

    /// The ID numbers of the persons only `side` holds.
    pub fn only_ids(&self, side: Side) -> BTreeSet<String> {
        match side {
            Side::Origin => self.ids(self.n - self.origin_only..self.n),
            Side::Destination => self.ids(self.n..self.n + self.destination_only),
        }
    }

    /// How many persons only the other side holds.
    pub fn only_count(&self, side: Side) -> usize {
        match side {
            Side::Origin => self.origin_only,
            Side::Destination => self.destination_only,
        }
    }

    fn ids(&self, indexes: Range<usize>) -> BTreeSet<String> {
        indexes
            .map(|index| synthetic_id(self.origin, index as u64).as_str().to_string())
            .collect()
    }

    fn person(&self, side: Side, index: usize, name: &str) -> Person {
        let (flow, office) = match side {
            Side::Origin => (Flow::Outflow, self.origin),
            Side::Destination => (Flow::Inflow, self.destination),
        };
        let children = if side == Side::Destination && index < self.changed {
            2
        } else {
            1
        };
        Person {
            resident_id: synthetic_id(self.origin, index as u64),
            name: name.into(),
            flow,
            registered_county: self.origin,
            residence_county: self.destination,
            status: StatusValues {
                marital_status: Some(MaritalStatus::Married),
                certificate_number: Some(format!("{}-{index:08}", self.origin)),
                certificate_valid_until: NaiveDate::from_ymd_opt(2030, 5, 31),
                certificate_status: Some(CertificateStatus::Valid),
                children_count: Some(children),
                pregnant: Some(false),
                registered_since: NaiveDate::from_ymd_opt(2015, 3, 1),
                township: townships_of(office).first().copied(),
                ..StatusValues::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::reconcile::people::person_digest;
    use crate::domain::vocabulary::StatusField;

    fn people(n: usize, d: usize) -> SharedPeople {
        let origin = CountyCode::parse("430703").unwrap();
        let destination = CountyCode::parse("431322").unwrap();
        SharedPeople::new(origin, destination, n, d).unwrap()
    }

    /// Digest → ID of every person `side` holds, compared on the benchmark agreement's fields.
    fn digests(people: &SharedPeople, side: Side) -> HashMap<[u8; 32], String> {
        let fields: BTreeSet<StatusField> = [
            StatusField::MaritalStatus,
            StatusField::CertificateNumber,
            StatusField::CertificateValidUntil,
            StatusField::CertificateStatus,
            StatusField::ChildrenCount,
            StatusField::Pregnant,
            StatusField::RegisteredSince,
        ]
        .into();
        people
            .ranges(side)
            .into_iter()
            .flat_map(|range| people.persons(side, range))
            .map(|person| {
                let digest = person_digest(&person.resident_id, &person.status, &fields);
                (digest, person.resident_id.as_str().to_string())
            })
            .collect()
    }

    #[test]
    fn the_registries_differ_in_exactly_d_elements_split_as_announced() {
        let people = people(1_000, 20);
        assert_eq!(
            (people.changed, people.origin_only, people.destination_only),
            (5, 5, 5)
        );
        assert_eq!(
            (people.size(Side::Origin), people.size(Side::Destination)),
            (1_000, 1_000)
        );
        let origin = digests(&people, Side::Origin);
        let destination = digests(&people, Side::Destination);
        let origin_only: BTreeSet<String> = origin
            .iter()
            .filter(|(digest, _)| !destination.contains_key(*digest))
            .map(|(_, id)| id.clone())
            .collect();
        let destination_only: BTreeSet<String> = destination
            .iter()
            .filter(|(digest, _)| !origin.contains_key(*digest))
            .map(|(_, id)| id.clone())
            .collect();
        assert_eq!(origin_only.len() + destination_only.len(), 20);
        let changed = people.changed_ids();
        assert_eq!(
            origin_only,
            changed.union(&people.only_ids(Side::Origin)).cloned().collect()
        );
        assert_eq!(
            destination_only,
            changed
                .union(&people.only_ids(Side::Destination))
                .cloned()
                .collect()
        );
    }

    #[test]
    fn small_differences_fall_on_the_origins_side_first() {
        let one = people(10, 1);
        assert_eq!((one.changed, one.origin_only, one.destination_only), (0, 1, 0));
        let three = people(10, 3);
        assert_eq!(
            (three.changed, three.origin_only, three.destination_only),
            (0, 2, 1)
        );
    }

    #[test]
    fn rewritten_persons_are_held_the_same_on_both_sides() {
        let people = people(1_000, 20);
        let rewritten = people.rewritten(Side::Origin, 100);
        assert_eq!(rewritten.len(), 100);
        let differing = people.changed_ids();
        assert!(
            rewritten
                .iter()
                .all(|person| !differing.contains(person.resident_id.as_str()))
        );
        assert_eq!(people.rewritten(Side::Origin, 5_000).len(), 1_000 - 5 - 5);
    }

    #[test]
    fn refuses_a_difference_larger_than_the_registries() {
        let origin = CountyCode::parse("430703").unwrap();
        let destination = CountyCode::parse("431322").unwrap();
        let error = SharedPeople::new(origin, destination, 10, 41).unwrap_err();
        assert!(error.to_string().contains("--d 41 does not fit"), "{error}");
    }
}
