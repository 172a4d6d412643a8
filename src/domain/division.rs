//! Administrative division codes (county, township, village) validated against the embedded
//! national list, so that no part of the node ever holds a code that names no place.
//!
//! The three tiers mirror the service network: a county (县/区) runs a node, townships (乡镇/街道)
//! are where operators work, villages (村/社区) collect the data. The list is the National Bureau
//! of Statistics' 2023 statistical division codes (see `data/divisions/README.md`), embedded in
//! the binary and parsed on first use. Codes of renamed counties are kept in [`COUNTY_RENAMES`]
//! because resident ID numbers issued before a rename still carry them.

mod tables;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use tables::{COUNTY_RENAMES, CountyRename};

/// The only province whose villages are embedded (`villages-hunan.csv`); elsewhere a village
/// code can only be checked as far as its township.
const HUNAN_PROVINCE: &str = "43";

/// Names the cities table uses for "no prefecture in between" (the districts of a municipality,
/// the counties a province administers directly); they are not city names a person would write.
const NOT_A_CITY: &[&str] = &["市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"];

/// Which tier a code belongs to; lets one error variant describe the same mistake at any tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DivisionLevel {
    /// 县级: county, district, county-level city (6 digits).
    County,
    /// 乡级: township, town, street office (9 digits).
    Township,
    /// 村级: village or residents' community (12 digits).
    Village,
}

impl fmt::Display for DivisionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DivisionLevel::County => "county",
            DivisionLevel::Township => "township",
            DivisionLevel::Village => "village",
        })
    }
}

/// Why a division code was refused. Codes name places, not people, so messages quote codes that
/// are in the national list; a value that is not one is described, never quoted (it may be
/// anything a caller put in the field, an ID number included).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivisionError {
    /// The input has the wrong number of characters for its tier.
    #[error("{level} code must be {expected} digits, got {got} {}", characters(*.got))]
    WrongLength {
        /// The tier the caller asked for, which fixes the expected length.
        level: DivisionLevel,
        /// 6, 9 or 12.
        expected: usize,
        /// Counted in characters, not bytes, so the number matches what a person sees.
        got: usize,
    },
    /// A character is not an ASCII digit (full-width digits included).
    #[error("{level} code must be digits only, character {position} is not a digit")]
    NotDigit {
        /// The tier the caller asked for.
        level: DivisionLevel,
        /// 1-based, as a person counts.
        position: usize,
        /// Only the offending character, never the whole input.
        found: char,
    },
    /// Well-formed, but no division of that tier has this code.
    #[error("not a {level}-level division code in the national list")]
    Unknown {
        /// The tier the caller asked for.
        level: DivisionLevel,
        /// The digits as given.
        code: String,
    },
    /// A valid township that lies in another county than the one required.
    #[error("township {township} does not belong to county {county}")]
    TownshipNotInCounty {
        /// The township as parsed.
        township: TownshipCode,
        /// The county it was required to lie in.
        county: CountyCode,
    },
    /// A valid village that lies in another township than the one required.
    #[error("village {village} does not belong to township {township}")]
    VillageNotInTownship {
        /// The village as parsed.
        village: VillageCode,
        /// The township it was required to lie in.
        township: TownshipCode,
    },
}

fn characters(count: usize) -> &'static str {
    if count == 1 { "character" } else { "characters" }
}

/// Checks length and digits, the part of validation every tier shares.
fn ascii_digits<const N: usize>(input: &str, level: DivisionLevel) -> Result<[u8; N], DivisionError> {
    let got = input.chars().count();
    if got != N {
        return Err(DivisionError::WrongLength {
            level,
            expected: N,
            got,
        });
    }
    let mut digits = [0u8; N];
    for (index, (slot, character)) in digits.iter_mut().zip(input.chars()).enumerate() {
        if !character.is_ascii_digit() {
            return Err(DivisionError::NotDigit {
                level,
                position: index + 1,
                found: character,
            });
        }
        *slot = character as u8;
    }
    Ok(digits)
}

/// `Display`, `Debug`, `FromStr` and serde as the plain digit string, identical for the three tiers.
macro_rules! digit_code_impls {
    ($code:ident) => {
        impl $code {
            /// The digits, e.g. for storage and wire messages.
            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.0).expect("division codes hold ASCII digits only")
            }
        }

        impl fmt::Display for $code {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $code {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($code), self.as_str())
            }
        }

        impl FromStr for $code {
            type Err = DivisionError;
            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl Serialize for $code {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        /// Validates like `parse`, so a deserialized value is as trustworthy as a parsed one.
        impl<'de> Deserialize<'de> for $code {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

// === impl CountyCode ===

/// A county-level division (县, 区, 县级市, 旗 …): the unit that runs a node and signs agreements.
///
/// Either a code in today's list or a historical code from [`COUNTY_RENAMES`]. A historical code is
/// kept as given (an ID number or an old record says 430521, and rewriting it silently would
/// falsify the record); [`CountyCode::current`] says which county holds that territory now.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountyCode([u8; 6]);

digit_code_impls!(CountyCode);

impl CountyCode {
    /// Accepts 6 ASCII digits naming a county in today's list or a historical county.
    pub fn parse(input: &str) -> Result<CountyCode, DivisionError> {
        let level = DivisionLevel::County;
        let code = CountyCode(ascii_digits(input, level)?);
        let known = tables::county_level().counties.contains_key(code.as_str())
            || tables::rename_of(code.as_str()).is_some();
        if !known {
            return Err(DivisionError::Unknown {
                level,
                code: code.as_str().to_owned(),
            });
        }
        Ok(code)
    }

    /// The name under this code: today's name, or the historical one ("邵东县") for an old code.
    pub fn name(&self) -> &'static str {
        match tables::rename_of(self.as_str()) {
            Some(rename) => rename.old_name,
            None => tables::county_level()
                .counties
                .get(self.as_str())
                .copied()
                .expect("a parsed county code is in the embedded list"),
        }
    }

    /// The county that holds this territory today: follows renames (430521 → 430582), and is the
    /// identity for a current code.
    pub fn current(&self) -> CountyCode {
        let mut code = self.as_str();
        // Bounded by the table length so that a cycle in the data cannot hang the node.
        for _ in 0..=COUNTY_RENAMES.len() {
            match tables::rename_of(code) {
                Some(rename) => code = rename.new_code,
                None => break,
            }
        }
        CountyCode::parse(code).expect("every rename leads to a county in the embedded list")
    }

    /// Whether this code was abolished by a rename, i.e. is not in today's list.
    pub fn is_historical(&self) -> bool {
        tables::rename_of(self.as_str()).is_some()
    }

    /// The province (省级) name, e.g. "湖南省"; a county always lies in one.
    pub fn province_name(&self) -> &'static str {
        tables::county_level()
            .provinces
            .get(&self.as_str()[..2])
            .copied()
            .expect("every embedded or historical county code starts with a province code")
    }

    /// The prefecture (地级) name, e.g. "常德市"; `None` where no prefecture lies between province
    /// and county (districts of Beijing, Tianjin, Shanghai, Chongqing; counties a province
    /// administers directly such as 仙桃市).
    pub fn city_name(&self) -> Option<&'static str> {
        let name = tables::county_level().cities.get(&self.as_str()[..4]).copied()?;
        (!NOT_A_CITY.contains(&name)).then_some(name)
    }
}

// === impl TownshipCode ===

/// A township-level division (乡, 镇, 街道): where operators work and indicators are broken down.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TownshipCode([u8; 9]);

digit_code_impls!(TownshipCode);

impl TownshipCode {
    /// Accepts 9 ASCII digits naming a township in today's list. Townships of historical counties
    /// are not known and are refused.
    pub fn parse(input: &str) -> Result<TownshipCode, DivisionError> {
        let level = DivisionLevel::Township;
        let code = TownshipCode(ascii_digits(input, level)?);
        if !tables::townships().contains_key(code.as_str()) {
            return Err(DivisionError::Unknown {
                level,
                code: code.as_str().to_owned(),
            });
        }
        Ok(code)
    }

    /// Parses and also requires the township to lie in `county` (or in its successor, for a
    /// historical county): what a node checks before accepting work for one of its townships.
    pub fn parse_within(input: &str, county: CountyCode) -> Result<TownshipCode, DivisionError> {
        let township = TownshipCode::parse(input)?;
        if township.county() != county.current() {
            return Err(DivisionError::TownshipNotInCounty { township, county });
        }
        Ok(township)
    }

    /// The township's name, e.g. "玉霞街道".
    pub fn name(&self) -> &'static str {
        tables::townships()
            .get(self.as_str())
            .copied()
            .expect("a parsed township code is in the embedded list")
    }

    /// The county the township lies in (the first six digits; always a current code).
    pub fn county(&self) -> CountyCode {
        CountyCode::parse(&self.as_str()[..6]).expect("every embedded township lies in a county")
    }
}

// === impl VillageCode ===

/// A village-level division (村委会, 社区居委会): where data about a person is first collected.
///
/// Only Hunan's villages are embedded. A Hunan code must be in that list. Outside Hunan a code
/// is accepted when its first nine digits are a known township and its last three are not `000`
/// (which would denote the township itself); its [`name`](VillageCode::name) is then `None`. The
/// alternative, refusing every village outside Hunan, would stop counties elsewhere from
/// exchanging village-level data at all, while checking the township still catches most typos.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VillageCode([u8; 12]);

digit_code_impls!(VillageCode);

impl VillageCode {
    /// Accepts 12 ASCII digits under the rules in the type's documentation.
    pub fn parse(input: &str) -> Result<VillageCode, DivisionError> {
        let level = DivisionLevel::Village;
        let code = VillageCode(ascii_digits(input, level)?);
        let digits = code.as_str();
        let known = if tables::villages().contains_key(digits) {
            true
        } else {
            !digits.starts_with(HUNAN_PROVINCE)
                && !digits.ends_with("000")
                && tables::townships().contains_key(&digits[..9])
        };
        if !known {
            return Err(DivisionError::Unknown {
                level,
                code: digits.to_owned(),
            });
        }
        Ok(code)
    }

    /// Parses and also requires the village to lie in `township`.
    pub fn parse_within(input: &str, township: TownshipCode) -> Result<VillageCode, DivisionError> {
        let village = VillageCode::parse(input)?;
        if village.township() != township {
            return Err(DivisionError::VillageNotInTownship { village, township });
        }
        Ok(village)
    }

    /// The village's name, e.g. "振兴街社区"; `None` outside Hunan, where no names are embedded.
    pub fn name(&self) -> Option<&'static str> {
        tables::villages().get(self.as_str()).copied()
    }

    /// The township the village lies in (the first nine digits).
    pub fn township(&self) -> TownshipCode {
        TownshipCode::parse(&self.as_str()[..9]).expect("a parsed village lies in a known township")
    }
}

// === lookups ===

/// The full address name an ID number's first six digits stand for, "湖南省常德市鼎城区", for a
/// current or historical county code; `None` for anything else. A city named like its county
/// (东莞市) is not repeated.
pub fn address_name(code6: &str) -> Option<String> {
    let county = CountyCode::parse(code6).ok()?;
    let mut name = county.province_name().to_owned();
    if let Some(city) = county.city_name().filter(|city| *city != county.name()) {
        name.push_str(city);
    }
    name.push_str(county.name());
    Some(name)
}

/// Every township of `county`, in code order. Empty for a historical county: its townships are
/// only known under the successor's codes, so call it with [`CountyCode::current`] if that is
/// what is meant.
pub fn townships_of(county: CountyCode) -> Vec<TownshipCode> {
    tables::codes_under(tables::townships(), county.as_str())
        .map(|code| TownshipCode::parse(code).expect("embedded township codes are valid"))
        .collect()
}

/// Every village of `township`, in code order. Empty outside Hunan, where none are embedded.
pub fn villages_of(township: TownshipCode) -> Vec<VillageCode> {
    tables::codes_under(tables::villages(), township.as_str())
        .map(|code| VillageCode::parse(code).expect("embedded village codes are valid"))
        .collect()
}

#[cfg(test)]
mod tests;
