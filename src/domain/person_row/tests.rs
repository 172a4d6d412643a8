//! Tests of the parent module.
use super::*;
use crate::domain::division::townships_of;
use crate::domain::vocabulary::{CertificateStatus, MaritalStatus};

const DINGCHENG: &str = "430703";
const XINHUA: &str = "431322";
/// A valid ID number issued in 新化县 (a woman born 1990-05-06).
const ID: &str = "431322199005060026";

fn me() -> CountyCode {
    CountyCode::parse(DINGCHENG).unwrap()
}

fn row(cells: &[(&str, &str)]) -> HashMap<String, String> {
    cells
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn inflow(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut columns = row(&[
        ("resident_id", ID),
        ("name", "刘芳"),
        ("flow", "inflow"),
        ("registered_county", XINHUA),
    ]);
    columns.extend(row(extra));
    columns
}

fn reasons(columns: &HashMap<String, String>) -> Vec<String> {
    person_from_columns(columns, me()).expect_err("the row must be refused")
}

#[test]
fn every_status_field_is_a_column_after_the_identity_columns() {
    let identity = &COLUMNS[..5];
    assert_eq!(
        identity,
        [
            "resident_id",
            "name",
            "flow",
            "registered_county",
            "residence_county"
        ]
    );
    let about_the_person: Vec<&str> = StatusField::ALL
        .iter()
        .filter(|field| !field.describes_an_inquiry())
        .map(|field| field.as_str())
        .collect();
    assert_eq!(&COLUMNS[5..], about_the_person);
    assert!(REQUIRED_COLUMNS.iter().all(|c| identity.contains(c)));
}

#[test]
fn an_inflow_row_lives_here_by_default_and_carries_its_status() {
    let person = person_from_columns(
        &inflow(&[
            ("township", "430703001"),
            ("marital_status", "married"),
            ("certificate_valid_until", "2028-05-31"),
            ("certificate_status", "valid"),
            ("children_count", "1"),
            ("pregnant", "否"),
            ("contraception_date", ""),
        ]),
        me(),
    )
    .unwrap();
    assert_eq!(person.resident_id.as_str(), ID);
    assert_eq!(person.name, "刘芳");
    assert_eq!(person.flow, Flow::Inflow);
    assert_eq!(person.registered_county.as_str(), XINHUA);
    assert_eq!(person.residence_county, me());
    assert_eq!(person.status.township.unwrap().as_str(), "430703001");
    assert_eq!(person.status.marital_status, Some(MaritalStatus::Married));
    assert_eq!(person.status.certificate_status, Some(CertificateStatus::Valid));
    assert_eq!(person.status.children_count, Some(1));
    assert_eq!(person.status.pregnant, Some(false));
    assert_eq!(person.status.contraception_date, None, "an empty cell is absent");
}

#[test]
fn an_outflow_row_is_registered_here_by_default() {
    let columns = row(&[
        ("resident_id", " 43070319900506028x "),
        ("name", "王丽"),
        ("flow", "流出"),
        ("residence_county", XINHUA),
    ]);
    let person = person_from_columns(&columns, me()).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!(person.flow, Flow::Outflow);
    assert_eq!(person.registered_county, me());
    assert_eq!(person.residence_county.as_str(), XINHUA);
    assert!(person.resident_id.as_str().ends_with('X'), "x is read as X");
}

#[test]
fn chinese_and_capitalised_flow_names_are_accepted() {
    for flow in ["流入", "Inflow", "INFLOW"] {
        let person = person_from_columns(&inflow(&[("flow", flow)]), me()).unwrap();
        assert_eq!(person.flow, Flow::Inflow);
    }
    assert_eq!(
        reasons(&inflow(&[("flow", "moved")])),
        ["flow: expected inflow or outflow (also 流入 or 流出)"]
    );
}

#[test]
fn a_bad_id_number_is_explained_without_repeating_it() {
    let wrong_check = "431322199005060025";
    let found = reasons(&inflow(&[("resident_id", wrong_check)]));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with(
            "resident_id: the check character (character 18) does not match the first 17: a typo somewhere"
        ),
        "{found:?}"
    );
    assert!(!found[0].contains(wrong_check));
    assert_eq!(
        reasons(&inflow(&[("resident_id", "4.31322E+17")])),
        [
            "resident_id: shortened to a number by a spreadsheet (like 4.3E+17); format the column as \
          text and export again"
        ]
    );
}

#[test]
fn missing_required_cells_are_all_reported() {
    let found = reasons(&row(&[("pregnant", "true")]));
    assert_eq!(
        found,
        [
            "resident_id: required",
            "name: required",
            "flow: required (inflow or outflow, also 流入 or 流出)",
        ]
    );
}

#[test]
fn every_reason_of_a_row_is_reported_at_once() {
    let found = reasons(&inflow(&[
        ("resident_id", "43132219900506002"),
        ("children_count", "two"),
        ("certificate_valid_until", "31.05.2028"),
    ]));
    assert_eq!(
        found,
        [
            "resident_id: resident id number must be 18 characters, got 17",
            "certificate_valid_until: expected a date as YYYY-MM-DD, for example 2028-05-31",
            "children_count: expected a whole number from 0 to 255",
        ]
    );
}

#[test]
fn an_inflow_person_must_live_here_and_be_registered_elsewhere() {
    assert_eq!(
        reasons(&inflow(&[("residence_county", XINHUA)])),
        ["residence_county: an inflow person lives in this county (430703), not in 431322"]
    );
    assert_eq!(
        reasons(&inflow(&[("registered_county", DINGCHENG)])),
        ["registered_county: an inflow person is registered in another county, not in this one (430703)"]
    );
    let mut no_origin = inflow(&[]);
    no_origin.remove("registered_county");
    assert_eq!(
        reasons(&no_origin),
        ["registered_county: required for an inflow person (the county of registration)"]
    );
}

#[test]
fn an_outflow_person_must_be_registered_here() {
    let columns = row(&[
        ("resident_id", ID),
        ("name", "王丽"),
        ("flow", "outflow"),
        ("registered_county", XINHUA),
        ("residence_county", "430582"),
    ]);
    assert_eq!(
        reasons(&columns),
        ["registered_county: an outflow person is registered in this county (430703), not in 431322"]
    );
}

#[test]
fn a_historical_code_of_this_county_counts_as_this_county() {
    let shaodong_then = CountyCode::parse("430521").unwrap();
    let columns = row(&[
        ("resident_id", ID),
        ("name", "王丽"),
        ("flow", "outflow"),
        ("registered_county", "430521"),
        ("residence_county", DINGCHENG),
    ]);
    let person = person_from_columns(&columns, CountyCode::parse("430582").unwrap()).unwrap();
    assert_eq!(person.registered_county, shaodong_then, "kept as given");
}

#[test]
fn an_unreadable_county_code_is_reported_once() {
    assert_eq!(
        reasons(&inflow(&[("registered_county", "43132")])),
        ["registered_county: county code must be 6 digits, got 5 characters"]
    );
}

#[test]
fn township_and_village_must_lie_in_this_county() {
    let elsewhere = townships_of(CountyCode::parse(XINHUA).unwrap())[0];
    assert_eq!(
        reasons(&inflow(&[("township", elsewhere.as_str())])),
        [format!(
            "township: township {elsewhere} does not belong to county 430703"
        )]
    );
    let found = reasons(&inflow(&[("township", "430703001"), ("village", "430703101001")]));
    assert_eq!(
        found,
        ["village: village 430703101001 does not belong to township 430703001"]
    );
    let village_elsewhere = crate::domain::division::villages_of(elsewhere)[0];
    assert_eq!(
        reasons(&inflow(&[("village", village_elsewhere.as_str())])),
        [format!(
            "village: {village_elsewhere} is not in this county (430703)"
        )]
    );
}

#[test]
fn a_village_without_a_township_gives_the_township() {
    let person = person_from_columns(&inflow(&[("village", "430703101001")]), me()).unwrap();
    assert_eq!(person.status.village.unwrap().as_str(), "430703101001");
    assert_eq!(person.status.township.unwrap().as_str(), "430703101");
}

#[test]
fn names_are_bounded_and_never_echoed() {
    let long = "长".repeat(MAX_NAME_CHARS + 1);
    assert_eq!(
        reasons(&inflow(&[("name", &long)])),
        ["name: longer than 64 characters"]
    );
    assert_eq!(
        reasons(&inflow(&[("name", "刘\n芳")])),
        ["name: contains a control character (a line break or tab)"]
    );
    assert_eq!(reasons(&inflow(&[("name", "  ")])), ["name: required"]);
}

#[test]
fn an_unknown_column_in_a_row_refuses_the_row() {
    let found = reasons(&inflow(&[("shoe_size", "38")]));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("unknown column (allowed: resident_id, name"),
        "{found:?}"
    );
}

#[test]
fn a_header_is_checked_for_unknown_duplicate_and_missing_columns() {
    assert_eq!(check_header(["resident_id", "name", "flow", "village"]), Ok(()));
    let errors = check_header(["resident_id", "name", "shoe_size", "name"]).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].starts_with("header column 3: unknown column (allowed: resident_id, name, flow,"));
    assert!(messages[0].ends_with("township, village)"));
    assert_eq!(messages[1], "column name appears more than once");
    assert_eq!(messages[2], "required column flow is missing");
}

#[test]
fn rows_are_keyed_by_the_id_as_written() {
    assert_eq!(
        resident_id_key(&row(&[("resident_id", " 43070319900506028x ")])).as_deref(),
        Some("43070319900506028X")
    );
    assert_eq!(resident_id_key(&row(&[("resident_id", " ")])), None);
    assert_eq!(resident_id_key(&row(&[("name", "王丽")])), None);
    assert_eq!(
        superseded_reason(9),
        "superseded by line 9, which has the same resident_id"
    );
}
