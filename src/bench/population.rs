//! The benchmark's people: a registry of outflow persons at the answering county, and the
//! inquiries the asking county sends about them — every other sweep inquiry about someone the
//! registry does not hold, so that half the answers are `found` (with fields) and half
//! `not_found`; every single inquiry about someone it holds.

use chrono::NaiveDate;

use crate::domain::division::{CountyCode, townships_of};
use crate::domain::message::Subject;
use crate::domain::person::{Flow, Person};
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{CertificateStatus, InquiryKind, MaritalStatus, Priority, StatusValues};
use crate::node::InquiryDraft;

/// Index of the first synthetic person no registry holds.
const UNKNOWN_BASE: u64 = 5_000_000;

/// The people of one benchmark run.
#[derive(Clone, Debug)]
pub struct Population {
    /// The answering county (户籍地 of everyone here).
    origin: CountyCode,
    /// The asking county, where they live.
    destination: CountyCode,
    /// Sweep size.
    sweep: usize,
    /// Single inquiries.
    single: usize,
}

/// What a run expects the answers to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Inquiries in all (sweep and single).
    pub inquiries: u64,
    /// Of which answered `found`.
    pub found: u64,
    /// Of which answered `not_found`.
    pub not_found: u64,
}

impl Population {
    /// `sweep` sweep inquiries and `single` single ones, from `destination` to `origin`.
    pub fn new(origin: CountyCode, destination: CountyCode, sweep: usize, single: usize) -> Population {
        Population {
            origin,
            destination,
            sweep,
            single,
        }
    }

    /// The registry of the answering county: `sweep` outflow persons (at least one), from
    /// index 0.
    pub fn registry(&self) -> impl Iterator<Item = Person> + '_ {
        (0..self.registry_size()).map(|index| self.person(index))
    }

    /// How many persons [`Population::registry`] yields.
    pub fn registry_size(&self) -> u64 {
        self.sweep.max(1) as u64
    }

    /// Sweep inquiry `index`'s subject: registered person `index` when `index` is even, someone
    /// unknown otherwise.
    pub fn sweep_subject(&self, index: usize) -> ResidentId {
        if index % 2 == 0 {
            synthetic_id(self.origin, index as u64)
        } else {
            synthetic_id(self.origin, UNKNOWN_BASE + index as u64)
        }
    }

    /// Single inquiry `index`'s subject: a registered person, not one the sweep asks about
    /// (while the registry has enough of those).
    pub fn single_subject(&self, index: usize) -> ResidentId {
        let person = (2 * index as u64 + 1) % self.registry_size();
        synthetic_id(self.origin, person)
    }

    /// The registry entry of sweep inquiry `index`'s subject, if the registry holds it.
    pub fn sweep_person(&self, index: usize) -> Option<Person> {
        (index % 2 == 0).then(|| self.person(index as u64))
    }

    /// The sweep's inquiries `range`, as drafts.
    pub fn sweep_drafts(&self, range: std::ops::Range<usize>) -> Vec<InquiryDraft> {
        range.map(|index| draft(self.sweep_subject(index))).collect()
    }

    /// Single inquiry `index`, as a draft.
    pub fn single_draft(&self, index: usize) -> InquiryDraft {
        draft(self.single_subject(index))
    }

    /// The answers the run must end with.
    pub fn expected(&self) -> Expected {
        let found = self.sweep.div_ceil(2) as u64 + self.single as u64;
        Expected {
            inquiries: (self.sweep + self.single) as u64,
            found,
            not_found: (self.sweep / 2) as u64,
        }
    }

    fn person(&self, index: u64) -> Person {
        let township = townships_of(self.origin).first().copied();
        Person {
            resident_id: synthetic_id(self.origin, index),
            name: "测试人员".into(),
            flow: Flow::Outflow,
            registered_county: self.origin,
            residence_county: self.destination,
            status: StatusValues {
                marital_status: Some(MaritalStatus::Married),
                certificate_number: Some(format!("{}-{index:08}", self.origin)),
                certificate_valid_until: NaiveDate::from_ymd_opt(2030, 5, 31),
                certificate_status: Some(CertificateStatus::Valid),
                children_count: Some(1),
                pregnant: Some(false),
                registered_since: NaiveDate::from_ymd_opt(2015, 3, 1),
                township,
                ..StatusValues::default()
            },
        }
    }
}

fn draft(resident_id: ResidentId) -> InquiryDraft {
    InquiryDraft {
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Normal,
        subject: Subject {
            resident_id,
            certificate_number: None,
        },
        message_id: None,
    }
}

/// The `index`-th synthetic resident ID registered in `county`: born between 1975 and about
/// 2005, a thousand a day, so that ten million indexes give distinct valid numbers.
pub fn synthetic_id(county: CountyCode, index: u64) -> ResidentId {
    let day = 1 + (index / 1_000) % 28;
    let month = 1 + (index / 28_000) % 12;
    let year = 1975 + index / 336_000;
    let birth = i32::try_from(year)
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, month as u32, day as u32))
        .expect("days 1 to 28 exist in every month");
    ResidentId::synthetic(county, birth, (index % 1_000) as u32).expect("synthetic IDs are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_distinct_valid_and_half_known() {
        let origin = CountyCode::parse("431322").unwrap();
        let destination = CountyCode::parse("430703").unwrap();
        let population = Population::new(origin, destination, 1_001, 10);
        let mut seen = std::collections::HashSet::new();
        for index in 0..1_001 {
            assert!(seen.insert(population.sweep_subject(index)));
        }
        let registry: std::collections::HashSet<ResidentId> =
            population.registry().map(|p| p.resident_id).collect();
        let known = (0..1_001)
            .filter(|&i| registry.contains(&population.sweep_subject(i)))
            .count();
        assert_eq!(known, 501);
        assert!((0..10).all(|i| registry.contains(&population.single_subject(i))));
        assert_eq!(
            population.expected(),
            Expected {
                inquiries: 1_011,
                found: 511,
                not_found: 500
            }
        );
        assert_ne!(synthetic_id(origin, 9_999_999), synthetic_id(origin, 0));
    }
}
