use super::*;

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).expect("test county code is valid")
}

fn township(code: &str) -> TownshipCode {
    TownshipCode::parse(code).expect("test township code is valid")
}

fn error_message<T: fmt::Debug>(result: Result<T, DivisionError>) -> String {
    result.expect_err("input must be rejected").to_string()
}

// === counties ===

#[test]
fn dingcheng_district_parses_with_its_full_names() {
    let dingcheng = county("430703");
    assert_eq!(dingcheng.as_str(), "430703");
    assert_eq!(dingcheng.to_string(), "430703");
    assert_eq!(format!("{dingcheng:?}"), "CountyCode(430703)");
    assert_eq!(dingcheng.name(), "鼎城区");
    assert_eq!(dingcheng.province_name(), "湖南省");
    assert_eq!(dingcheng.city_name(), Some("常德市"));
    assert!(!dingcheng.is_historical());
    assert_eq!(dingcheng.current(), dingcheng);
}

#[test]
fn shaodong_city_parses_under_its_current_code() {
    let shaodong = county("430582");
    assert_eq!(shaodong.name(), "邵东市");
    assert_eq!(shaodong.city_name(), Some("邵阳市"));
    assert!(!shaodong.is_historical());
}

#[test]
fn historical_shaodong_county_is_kept_as_given_and_leads_to_shaodong_city() {
    let old = county("430521");
    assert_eq!(old.as_str(), "430521");
    assert_eq!(old.name(), "邵东县");
    assert!(old.is_historical());
    assert_eq!(old.current(), county("430582"));
    assert_eq!(old.province_name(), "湖南省");
    assert_eq!(old.city_name(), Some("邵阳市"));
}

#[test]
fn every_rename_leads_from_an_abolished_code_to_a_current_one() {
    let counties = &tables::county_level().counties;
    for rename in COUNTY_RENAMES {
        assert!(
            !counties.contains_key(rename.old_code),
            "{} is still current",
            rename.old_code
        );
        assert!(
            counties.contains_key(rename.new_code),
            "{} is not current",
            rename.new_code
        );
        let old = county(rename.old_code);
        assert_eq!(old.current().as_str(), rename.new_code);
        assert!(!old.current().is_historical());
    }
}

#[test]
fn city_level_code_is_not_a_county() {
    assert_eq!(
        error_message(CountyCode::parse("430700")),
        "not a county-level division code in the national list"
    );
}

#[test]
fn unknown_county_code_is_rejected() {
    assert_eq!(
        error_message(CountyCode::parse("430799")),
        "not a county-level division code in the national list"
    );
}

#[test]
fn county_code_of_wrong_length_is_rejected_with_the_count() {
    let cases = [
        ("43070", "county code must be 6 digits, got 5 characters"),
        ("4307031", "county code must be 6 digits, got 7 characters"),
        ("", "county code must be 6 digits, got 0 characters"),
        ("4", "county code must be 6 digits, got 1 character"),
        // Counted as a person sees them, not in UTF-8 bytes.
        ("鼎城区", "county code must be 6 digits, got 3 characters"),
        (" 430703", "county code must be 6 digits, got 7 characters"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            error_message(CountyCode::parse(input)),
            expected,
            "input {input:?}"
        );
    }
}

#[test]
fn county_code_with_a_non_digit_is_rejected_at_its_position() {
    assert_eq!(
        error_message(CountyCode::parse("43a703")),
        "county code must be digits only, character 3 is not a digit"
    );
    // Full-width digits look right but are not ASCII digits.
    assert_eq!(
        error_message(CountyCode::parse("４30703")),
        "county code must be digits only, character 1 is not a digit"
    );
}

#[test]
fn every_county_in_the_list_parses_and_lies_in_a_province() {
    for row in tables::all_rows("counties") {
        let code = county(row[0]);
        assert_eq!(code.name(), row[1].trim_matches('"'));
        assert_eq!(&row[0][..4], row[2], "city column is the code's prefix");
        assert_eq!(&row[0][..2], row[3], "province column is the code's prefix");
        assert!(!code.province_name().is_empty());
    }
}

#[test]
fn city_name_is_absent_where_no_prefecture_lies_between() {
    assert_eq!(county("110101").city_name(), None);
    assert_eq!(county("429004").city_name(), None);
}

#[test]
fn county_codes_order_like_numbers() {
    assert!(county("110101") < county("430703"));
    assert!(county("430582") < county("430703"));
}

#[test]
fn county_code_round_trips_through_serde_as_a_string() {
    let json = serde_json::to_string(&county("430703")).expect("serializes");
    assert_eq!(json, "\"430703\"");
    let back: CountyCode = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, county("430703"));
}

#[test]
fn deserializing_an_invalid_county_code_fails() {
    let error = serde_json::from_str::<CountyCode>("\"430700\"").expect_err("must fail");
    assert!(
        error
            .to_string()
            .contains("not a county-level division code in the national list")
    );
}

#[test]
fn county_code_parses_with_from_str() {
    assert_eq!("430703".parse::<CountyCode>(), Ok(county("430703")));
    assert!("430700".parse::<CountyCode>().is_err());
}

// === townships ===

#[test]
fn township_of_dingcheng_parses_with_name_and_county() {
    let yuxia = township("430703001");
    assert_eq!(yuxia.name(), "玉霞街道");
    assert_eq!(yuxia.county(), county("430703"));
    assert_eq!(format!("{yuxia:?}"), "TownshipCode(430703001)");
}

#[test]
fn townships_of_dingcheng_are_its_25_townships_in_code_order() {
    let townships = townships_of(county("430703"));
    assert_eq!(townships.len(), 25);
    assert!(townships.iter().all(|t| t.county() == county("430703")));
    assert!(townships.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(townships.contains(&township("430703101")));
}

#[test]
fn townships_of_a_historical_county_are_empty() {
    assert!(townships_of(county("430521")).is_empty());
    assert!(!townships_of(county("430521").current()).is_empty());
}

#[test]
fn township_code_of_wrong_length_or_unknown_is_rejected() {
    assert_eq!(
        error_message(TownshipCode::parse("430703")),
        "township code must be 9 digits, got 6 characters"
    );
    assert_eq!(
        error_message(TownshipCode::parse("4307030x1")),
        "township code must be digits only, character 8 is not a digit"
    );
    assert_eq!(
        error_message(TownshipCode::parse("430703999")),
        "not a township-level division code in the national list"
    );
}

#[test]
fn township_within_another_county_is_rejected() {
    assert_eq!(
        error_message(TownshipCode::parse_within("430703101", county("430582"))),
        "township 430703101 does not belong to county 430582"
    );
    assert_eq!(
        TownshipCode::parse_within("430703101", county("430703")),
        Ok(township("430703101"))
    );
}

#[test]
fn township_of_the_successor_lies_within_the_historical_county() {
    assert!(TownshipCode::parse_within("430582001", county("430521")).is_ok());
}

#[test]
fn every_township_lies_in_the_county_its_code_starts_with() {
    for row in tables::all_rows("townships") {
        assert_eq!(&row[0][..6], row[2], "township {}", row[0]);
        assert_eq!(township(row[0]).county().as_str(), row[2]);
    }
}

// === villages ===

#[test]
fn village_of_dingcheng_parses_with_name_and_township() {
    let village = VillageCode::parse("430703101001").expect("valid village");
    assert_eq!(village.name(), Some("振兴街社区"));
    assert_eq!(village.township(), township("430703101"));
    assert_eq!(village.township().county(), county("430703"));
}

#[test]
fn villages_of_a_dingcheng_township_are_listed_in_code_order() {
    let villages = villages_of(township("430703101"));
    assert_eq!(villages.len(), 11);
    assert!(villages.iter().all(|v| v.township() == township("430703101")));
    assert!(villages.windows(2).all(|pair| pair[0] < pair[1]));
}

#[test]
fn unknown_hunan_village_is_rejected() {
    assert_eq!(
        error_message(VillageCode::parse("430703101999")),
        "not a village-level division code in the national list"
    );
}

#[test]
fn village_outside_hunan_is_checked_as_far_as_its_township() {
    let village = VillageCode::parse("110101001001").expect("known township, no village list");
    assert_eq!(village.name(), None);
    assert_eq!(village.township(), township("110101001"));
    assert!(villages_of(township("110101001")).is_empty());
    assert!(VillageCode::parse("110101999001").is_err(), "unknown township");
    assert!(
        VillageCode::parse("110101001000").is_err(),
        "000 is the township itself"
    );
}

#[test]
fn village_code_of_wrong_length_is_rejected() {
    assert_eq!(
        error_message(VillageCode::parse("430703101")),
        "village code must be 12 digits, got 9 characters"
    );
}

#[test]
fn village_within_another_township_is_rejected() {
    assert_eq!(
        error_message(VillageCode::parse_within("430703101001", township("430703001"))),
        "village 430703101001 does not belong to township 430703001"
    );
}

#[test]
fn every_hunan_village_lies_in_the_township_its_code_starts_with() {
    for row in tables::all_rows("villages") {
        assert_eq!(&row[0][..9], row[2], "village {}", row[0]);
        assert!(VillageCode::parse(row[0]).is_ok(), "village {}", row[0]);
    }
}

// === address names ===

#[test]
fn address_name_spells_province_city_and_county() {
    assert_eq!(address_name("430703").as_deref(), Some("湖南省常德市鼎城区"));
    assert_eq!(address_name("430521").as_deref(), Some("湖南省邵阳市邵东县"));
    assert_eq!(address_name("110101").as_deref(), Some("北京市东城区"));
    assert_eq!(address_name("429004").as_deref(), Some("湖北省仙桃市"));
    assert_eq!(address_name("441900").as_deref(), Some("广东省东莞市"));
}

#[test]
fn address_name_is_absent_for_unknown_codes() {
    assert_eq!(address_name("430799"), None);
    assert_eq!(address_name("4307"), None);
    assert_eq!(address_name("abcdef"), None);
}
