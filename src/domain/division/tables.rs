//! The embedded division list and the table of county renames: data, parsed once on first use.
//!
//! Each tier has its own lazy table so that a node checking county codes never pays for the
//! 1.6 MB village list. Names borrow from the embedded text (`&'static str`), so the tables hold
//! no copies of it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::LazyLock;

const PROVINCES_CSV: &str = include_str!("../../../data/divisions/provinces.csv");
const CITIES_CSV: &str = include_str!("../../../data/divisions/cities.csv");
const COUNTIES_CSV: &str = include_str!("../../../data/divisions/counties.csv");
const TOWNSHIPS_CSV: &str = include_str!("../../../data/divisions/townships.csv");
const VILLAGES_CSV: &str = include_str!("../../../data/divisions/villages-hunan.csv");

/// A county-level division that was renamed and given a new code, e.g. when a county became a
/// county-level city (撤县设市) or a district (撤县设区).
///
/// The national list only has today's codes, but resident ID numbers and old records keep the
/// code that was valid when they were made, so these old codes must still be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountyRename {
    /// The abolished code, still found at the start of ID numbers issued before the rename.
    pub old_code: &'static str,
    /// The name under the old code, shown for old records instead of today's name.
    pub old_name: &'static str,
    /// The code in today's list that took over the territory.
    pub new_code: &'static str,
    /// The year of the State Council approval, for the reader who wants to check the entry.
    pub year: u16,
}

/// Renames of county-level divisions whose old codes still appear in records. Only entries known
/// for certain are listed; an unknown old code is refused rather than guessed. Add rows here when
/// a partner county's IDs carry an old code.
pub const COUNTY_RENAMES: &[CountyRename] = &[
    CountyRename {
        old_code: "430521",
        old_name: "邵东县",
        new_code: "430582",
        year: 2019,
    },
    CountyRename {
        old_code: "430124",
        old_name: "宁乡县",
        new_code: "430182",
        year: 2017,
    },
    CountyRename {
        old_code: "430122",
        old_name: "望城县",
        new_code: "430112",
        year: 2011,
    },
    CountyRename {
        old_code: "430221",
        old_name: "株洲县",
        new_code: "430212",
        year: 2018,
    },
];

/// The rename that abolished `code`, if it is a historical code.
pub(super) fn rename_of(code: &str) -> Option<&'static CountyRename> {
    COUNTY_RENAMES.iter().find(|rename| rename.old_code == code)
}

/// Provinces, prefectures and counties: small, and needed for every county code.
pub(super) struct CountyLevel {
    /// 2-digit code → name, e.g. "43" → "湖南省".
    pub(super) provinces: HashMap<&'static str, &'static str>,
    /// 4-digit code → name, e.g. "4307" → "常德市" (or a placeholder such as "市辖区").
    pub(super) cities: HashMap<&'static str, &'static str>,
    /// 6-digit code → name, today's list only.
    pub(super) counties: HashMap<&'static str, &'static str>,
}

static COUNTY_LEVEL: LazyLock<CountyLevel> = LazyLock::new(|| CountyLevel {
    provinces: code_name_rows(PROVINCES_CSV).collect(),
    cities: code_name_rows(CITIES_CSV).collect(),
    counties: code_name_rows(COUNTIES_CSV).collect(),
});

// Ordered maps, not hash maps: listing the townships of a county (or villages of a township) is
// a range scan over the codes that start with the parent's code.
static TOWNSHIPS: LazyLock<BTreeMap<&'static str, &'static str>> =
    LazyLock::new(|| code_name_rows(TOWNSHIPS_CSV).collect());
static VILLAGES: LazyLock<BTreeMap<&'static str, &'static str>> =
    LazyLock::new(|| code_name_rows(VILLAGES_CSV).collect());

pub(super) fn county_level() -> &'static CountyLevel {
    &COUNTY_LEVEL
}

/// 9-digit township code → name, all of China.
pub(super) fn townships() -> &'static BTreeMap<&'static str, &'static str> {
    &TOWNSHIPS
}

/// 12-digit village code → name, Hunan only.
pub(super) fn villages() -> &'static BTreeMap<&'static str, &'static str> {
    &VILLAGES
}

/// The codes in `table` that extend `parent` (a parent is a prefix of its children's codes).
pub(super) fn codes_under<'t>(
    table: &'t BTreeMap<&'static str, &'static str>,
    parent: &'t str,
) -> impl Iterator<Item = &'static str> + 't {
    table
        .range::<str, _>((Bound::Excluded(parent), Bound::Unbounded))
        .map(|(code, _)| *code)
        .take_while(move |code| code.starts_with(parent))
}

/// The first two columns (code, quoted name) of every data row. The files are the published
/// list, checked by the tests: no name contains a comma or a quote.
pub(super) fn code_name_rows(csv: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    csv.lines().skip(1).filter(|line| !line.is_empty()).map(|line| {
        let mut fields = line.split(',');
        let code = fields.next().expect("embedded division rows have a code column");
        let name = fields.next().expect("embedded division rows have a name column");
        (code, name.trim_matches('"'))
    })
}

/// Raw rows of a file with every column, for the tests that check the data's invariants.
#[cfg(test)]
pub(super) fn all_rows(file: &str) -> Vec<Vec<&'static str>> {
    let csv = match file {
        "counties" => COUNTIES_CSV,
        "townships" => TOWNSHIPS_CSV,
        "villages" => VILLAGES_CSV,
        other => panic!("no embedded file {other}"),
    };
    csv.lines()
        .skip(1)
        .map(|line| line.split(',').collect())
        .collect()
}
