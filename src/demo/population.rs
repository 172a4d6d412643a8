//! Synthetic but valid registries for the three counties: resident ID numbers with the origin's
//! address code and a correct check character, real township and village codes, common Hunan
//! names, certificates numbered as their county issues them. People who moved are known to both
//! counties with the same status values, each registry from its own side (outflow at the origin,
//! inflow at the destination, which knows most but not all of them, as in life).

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::{DINGCHENG, SHAODONG, XINHUA};
use crate::domain::division::{CountyCode, TownshipCode, VillageCode, townships_of, villages_of};
use crate::domain::person::{Flow, Person};
use crate::domain::resident_id::{ResidentId, today_in_china};
use crate::domain::vocabulary::{CertificateStatus, ContraceptionStatus, MaritalStatus, StatusValues};

const SURNAMES: &[&str] = &[
    "刘", "李", "陈", "王", "张", "周", "彭", "曾", "邓", "唐", "谭", "胡", "罗", "肖", "杨", "黄", "赵",
    "吴", "易", "贺", "伍", "龙", "向", "袁", "蒋", "段", "邹", "熊", "欧阳", "聂",
];
const WOMEN: &[&str] = &[
    "秀英", "桂英", "丽", "芳", "敏", "静", "婷", "燕", "红霞", "艳", "玲", "娟", "丽娟", "晓燕", "雪梅",
    "春花", "美玲", "佳", "欣怡", "雨婷", "思琪", "小红", "湘君", "梦瑶",
];
const MEN: &[&str] = &[
    "伟", "强", "军", "勇", "杰", "涛", "斌", "超", "明", "磊", "建华", "志强", "海波", "国平", "建军", "文",
    "浩", "宇", "子豪", "俊杰", "湘平", "德明",
];

/// A person who moved from `origin` to `destination`, as both counties know them.
#[derive(Clone, Debug)]
pub struct Migrant {
    /// Their resident ID number (address code of the origin).
    pub resident_id: ResidentId,
    /// Their name.
    pub name: String,
    /// 户籍地.
    pub origin: CountyCode,
    /// 现居住地.
    pub destination: CountyCode,
    /// Status values both counties hold alike (certificate, marriage, children, contraception).
    pub status: StatusValues,
    /// Township and village of registration, the origin's office responsible for them.
    pub home: (TownshipCode, Option<VillageCode>),
    /// Township and village where they live, the destination's office responsible for them.
    pub residence: (TownshipCode, Option<VillageCode>),
    /// Whether the destination has registered them as inflow persons.
    pub known_at_destination: bool,
}

impl Migrant {
    /// The origin's registry entry (流出人口).
    pub fn as_outflow(&self) -> Person {
        self.person(Flow::Outflow, self.home)
    }

    /// The destination's registry entry (流入人口).
    pub fn as_inflow(&self) -> Person {
        self.person(Flow::Inflow, self.residence)
    }

    fn person(&self, flow: Flow, (township, village): (TownshipCode, Option<VillageCode>)) -> Person {
        Person {
            resident_id: self.resident_id.clone(),
            name: self.name.clone(),
            flow,
            registered_county: self.origin,
            residence_county: self.destination,
            status: StatusValues {
                township: Some(township),
                village,
                ..self.status.clone()
            },
        }
    }
}

/// Everyone the demo's counties know, and the groups the story picks from.
#[derive(Debug)]
pub struct Population {
    /// 新化县's outflow persons living in 鼎城区: the subjects of its sweep. The first is the
    /// woman at 鼎城区's window.
    pub xinhua_in_dingcheng: Vec<Migrant>,
    /// 邵东市's outflow persons living in 鼎城区.
    pub shaodong_in_dingcheng: Vec<Migrant>,
    /// 鼎城区's own outflow persons, living in 新化县 and in 邵东市.
    pub dingcheng_outflow: Vec<Migrant>,
}

impl Population {
    /// A population whose 新化县→鼎城区 group has `sweep_size` people; the other groups scale
    /// with it. The same `sweep_size` always gives the same people.
    pub fn generate(sweep_size: usize) -> Population {
        let mut generator = Generator::new(sweep_size as u64);
        let (xinhua, shaodong, dingcheng) = (county(XINHUA), county(SHAODONG), county(DINGCHENG));
        let mut xinhua_in_dingcheng = vec![generator.woman_at_the_window(xinhua, dingcheng)];
        while xinhua_in_dingcheng.len() < sweep_size {
            xinhua_in_dingcheng.push(generator.migrant(xinhua, dingcheng, 0.95));
        }
        let shaodong_in_dingcheng = (0..(sweep_size / 10).max(60))
            .map(|_| generator.migrant(shaodong, dingcheng, 0.92))
            .collect();
        let mut dingcheng_outflow: Vec<Migrant> = (0..(sweep_size / 25).max(40))
            .map(|_| generator.migrant(dingcheng, xinhua, 1.0))
            .collect();
        for _ in 0..(sweep_size / 100).max(20) {
            dingcheng_outflow.push(generator.migrant(dingcheng, shaodong, 1.0));
        }
        Population {
            xinhua_in_dingcheng,
            shaodong_in_dingcheng,
            dingcheng_outflow,
        }
    }

    /// The registry of `county`: its outflow persons, and the inflow persons it knows.
    pub fn registry_of(&self, county: &str) -> Vec<Person> {
        let everyone = self
            .xinhua_in_dingcheng
            .iter()
            .chain(&self.shaodong_in_dingcheng)
            .chain(&self.dingcheng_outflow);
        let mut persons = Vec::new();
        for migrant in everyone {
            if migrant.origin.as_str() == county {
                persons.push(migrant.as_outflow());
            }
            if migrant.destination.as_str() == county && migrant.known_at_destination {
                persons.push(migrant.as_inflow());
            }
        }
        persons
    }

    /// The woman a 鼎城区 clerk meets at the window in the story's first step.
    pub fn woman_at_the_window(&self) -> &Migrant {
        &self.xinhua_in_dingcheng[0]
    }
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).expect("the demo's counties are valid codes")
}

/// Draws people from a seeded random source, so that runs are reproducible.
struct Generator {
    /// The random source.
    rng: StdRng,
    /// ID numbers handed out, so that none repeats.
    used: HashSet<String>,
    /// Certificates issued per (county, year), for their sequence numbers.
    certificates: BTreeMap<(CountyCode, i32), u32>,
    /// Townships with their villages, per county.
    divisions: BTreeMap<CountyCode, Vec<(TownshipCode, Vec<VillageCode>)>>,
    /// Today in China: no birth, certificate or registration after it.
    today: NaiveDate,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        let divisions = [DINGCHENG, SHAODONG, XINHUA]
            .into_iter()
            .map(|code| {
                let code = county(code);
                let townships = townships_of(code)
                    .into_iter()
                    .map(|township| (township, villages_of(township)))
                    .collect();
                (code, townships)
            })
            .collect();
        Generator {
            rng: StdRng::seed_from_u64(0x0043_0703 ^ seed),
            used: HashSet::new(),
            certificates: BTreeMap::new(),
            divisions,
            today: today_in_china(),
        }
    }

    /// A migrant with random traits; the destination knows them with probability `known`.
    fn migrant(&mut self, origin: CountyCode, destination: CountyCode, known: f64) -> Migrant {
        let female = self.rng.random_bool(0.6);
        let birth = self.date_between((1977, 1, 1), (2008, 12, 31));
        let resident_id = self.resident_id(origin, birth, female);
        let age = self.today.year() - birth.year();
        let marital_status = match (age, self.rng.random_range(0..100)) {
            (..22, 0..80) | (22..30, 0..45) | (30.., 0..5) => MaritalStatus::Single,
            (30.., 5..13) => MaritalStatus::Divorced,
            (30.., 13..15) => MaritalStatus::Widowed,
            _ => MaritalStatus::Married,
        };
        let children_count = match (marital_status, self.rng.random_range(0..100)) {
            (MaritalStatus::Single, _) | (_, 0..15) => 0,
            (_, 15..60) => 1,
            (_, 60..95) => 2,
            _ => 3,
        };
        let mut status = StatusValues {
            marital_status: Some(marital_status),
            children_count: Some(children_count),
            registered_since: Some(self.date_between((2014, 1, 1), (2026, 10, 31))),
            ..StatusValues::default()
        };
        if female {
            self.womans_status(origin, &mut status);
        }
        Migrant {
            name: self.name(female),
            resident_id,
            origin,
            destination,
            status,
            home: self.place(origin),
            residence: self.place(destination),
            known_at_destination: self.rng.random_bool(known),
        }
    }

    /// The woman of the domain's first exchange: married, one child, a certificate valid until
    /// 2028-05-31, registered at the destination.
    fn woman_at_the_window(&mut self, origin: CountyCode, destination: CountyCode) -> Migrant {
        let mut migrant = self.migrant(origin, destination, 1.0);
        let birth = NaiveDate::from_ymd_opt(1996, 3, 14).expect("a valid date");
        migrant.resident_id = self.resident_id(origin, birth, true);
        migrant.name = self.name(true);
        migrant.status = StatusValues {
            marital_status: Some(MaritalStatus::Married),
            children_count: Some(1),
            certificate_number: Some(self.certificate_number(origin, 2025)),
            certificate_valid_until: NaiveDate::from_ymd_opt(2028, 5, 31),
            certificate_status: Some(CertificateStatus::Valid),
            contraception_status: Some(ContraceptionStatus::LongActing),
            contraception_date: NaiveDate::from_ymd_opt(2026, 9, 12),
            pregnant: Some(false),
            registered_since: NaiveDate::from_ymd_opt(2025, 7, 3),
            ..StatusValues::default()
        };
        migrant
    }

    /// Certificate, contraception and pregnancy for a woman (all are 15–49 here).
    fn womans_status(&mut self, origin: CountyCode, status: &mut StatusValues) {
        let draw = self.rng.random_range(0..100);
        if draw < 85 {
            // Certificates last three years; one in ten holders let theirs lapse.
            let expired = draw < 9;
            let year = if expired {
                self.rng.random_range(2021..=2022)
            } else {
                self.rng.random_range(2024..=2026)
            };
            let issued = self.date_between((year, 1, 1), (year, 11, 28));
            let until = NaiveDate::from_ymd_opt(year + 3, issued.month(), issued.day())
                .unwrap_or(issued + Duration::days(3 * 365))
                - Duration::days(1);
            status.certificate_number = Some(self.certificate_number(origin, year));
            status.certificate_valid_until = Some(until);
            status.certificate_status = Some(if until < self.today {
                CertificateStatus::Expired
            } else {
                CertificateStatus::Valid
            });
        } else {
            status.certificate_status = Some(CertificateStatus::None);
        }
        let married = status.marital_status == Some(MaritalStatus::Married);
        status.contraception_status = Some(match (married, self.rng.random_range(0..100)) {
            (false, _) => ContraceptionStatus::NotApplicable,
            (true, 0..55) => ContraceptionStatus::LongActing,
            (true, 55..85) => ContraceptionStatus::ShortActing,
            (true, _) => ContraceptionStatus::None,
        });
        if married {
            status.contraception_date = Some(self.date_between((2025, 12, 1), (2026, 11, 20)));
        }
        status.pregnant = Some(married && self.rng.random_bool(0.04));
    }

    /// A fresh ID number: address code, birth date, a sequence whose parity gives the sex
    /// (odd male, even female), and the check character.
    fn resident_id(&mut self, origin: CountyCode, birth: NaiveDate, female: bool) -> ResidentId {
        loop {
            let sequence = self.rng.random_range(0..500) * 2 + u32::from(!female);
            let id = ResidentId::synthetic(origin, birth, sequence).expect("a synthetic ID is valid");
            if self.used.insert(id.as_str().to_string()) {
                return id;
            }
        }
    }

    /// `431322-2024-000123`: county, year of issue, sequence within the year.
    fn certificate_number(&mut self, county: CountyCode, year: i32) -> String {
        let sequence = self.certificates.entry((county, year)).or_insert(0);
        *sequence += 1;
        format!("{}-{year}-{:06}", county.as_str(), *sequence)
    }

    fn name(&mut self, female: bool) -> String {
        let given = if female { WOMEN } else { MEN };
        let surname = SURNAMES.choose(&mut self.rng).expect("surnames");
        let given = given.choose(&mut self.rng).expect("given names");
        format!("{surname}{given}")
    }

    /// A random township of `county` and one of its villages.
    fn place(&mut self, county: CountyCode) -> (TownshipCode, Option<VillageCode>) {
        let (township, villages) = self.divisions[&county]
            .choose(&mut self.rng)
            .expect("every demo county has townships");
        (*township, villages.choose(&mut self.rng).copied())
    }

    /// A random day from `from` to `to`, inclusive, but never after today.
    fn date_between(&mut self, from: (i32, u32, u32), to: (i32, u32, u32)) -> NaiveDate {
        let date = |(y, m, d): (i32, u32, u32)| NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
        let (from, to) = (date(from), date(to).min(self.today));
        let days = (to - from).num_days().max(0);
        from + Duration::days(self.rng.random_range(0..=days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_people_are_consistent_between_their_two_counties() {
        let population = Population::generate(300);
        let xinhua = population.registry_of(XINHUA);
        let dingcheng = population.registry_of(DINGCHENG);
        let known: Vec<&Migrant> = population
            .xinhua_in_dingcheng
            .iter()
            .filter(|m| m.known_at_destination)
            .collect();
        assert!(
            known.len() * 100 >= 300 * 88 && known.len() < 300,
            "{} known",
            known.len()
        );
        for migrant in known {
            let at_origin = xinhua
                .iter()
                .find(|p| p.resident_id == migrant.resident_id)
                .unwrap();
            let here = dingcheng
                .iter()
                .find(|p| p.resident_id == migrant.resident_id)
                .unwrap();
            assert_eq!((at_origin.flow, here.flow), (Flow::Outflow, Flow::Inflow));
            assert_eq!(
                at_origin.status.certificate_number,
                here.status.certificate_number
            );
            assert_eq!(at_origin.status.marital_status, here.status.marital_status);
            assert_eq!(here.status.township.unwrap().county().as_str(), DINGCHENG);
            assert_eq!(at_origin.status.township.unwrap().county().as_str(), XINHUA);
        }
    }

    #[test]
    fn ids_are_unique_and_carry_the_origin_and_sex() {
        let population = Population::generate(2_000);
        let mut seen = HashSet::new();
        for migrant in population
            .xinhua_in_dingcheng
            .iter()
            .chain(&population.dingcheng_outflow)
        {
            assert!(seen.insert(migrant.resident_id.as_str().to_string()));
            assert_eq!(migrant.resident_id.address_code(), migrant.origin.as_str());
            let has_certificate = migrant.status.certificate_number.is_some();
            let female = migrant.resident_id.sex() == crate::domain::resident_id::Sex::Female;
            assert!(!has_certificate || female);
        }
    }

    #[test]
    fn the_same_size_gives_the_same_people() {
        let first = Population::generate(100);
        let second = Population::generate(100);
        assert_eq!(
            first.woman_at_the_window().resident_id,
            second.woman_at_the_window().resident_id
        );
        assert_eq!(first.registry_of(DINGCHENG), second.registry_of(DINGCHENG));
    }
}
