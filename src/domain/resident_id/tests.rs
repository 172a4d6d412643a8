use proptest::prelude::*;

use super::*;

/// A fixed "today", so that tests do not depend on the clock.
fn today() -> NaiveDate {
    date(2026, 1, 1)
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("test date is valid")
}

fn rejection(input: &str) -> String {
    ResidentId::parse_on(input, today())
        .expect_err("input must be rejected")
        .to_string()
}

fn valid(input: &str) -> ResidentId {
    ResidentId::parse_on(input, today()).expect("test id is valid")
}

/// Appends the computed check character to 17 digits.
fn with_check_character(first17: &str) -> String {
    let bytes: &[u8; 17] = first17.as_bytes().try_into().expect("17 ASCII digits");
    format!("{first17}{}", check_character(bytes))
}

// === accepted ===

#[test]
fn standard_example_with_check_character_x_is_valid() {
    let id = valid("11010519491231002X");
    assert_eq!(id.as_str(), "11010519491231002X");
    assert_eq!(id.birth_date(), date(1949, 12, 31));
    assert_eq!(id.sex(), Sex::Female);
    assert_eq!(id.address_code(), "110105");
    assert_eq!(id.address_name().as_deref(), Some("北京市朝阳区"));
}

#[test]
fn lowercase_x_is_accepted_and_normalised() {
    assert_eq!(valid("11010519491231002x").as_str(), "11010519491231002X");
}

#[test]
fn odd_sequence_digit_means_male() {
    let id = valid(&with_check_character("43070319800101001"));
    assert_eq!(id.sex(), Sex::Male);
    assert_eq!((id.sex().as_str(), id.sex().label_zh()), ("male", "男"));
    assert_eq!((Sex::Female.as_str(), Sex::Female.label_zh()), ("female", "女"));
}

#[test]
fn historical_address_code_is_accepted_and_named() {
    let id = valid(&with_check_character("43052119900615002"));
    assert_eq!(id.address_name().as_deref(), Some("湖南省邵阳市邵东县"));
}

#[test]
fn unknown_address_code_in_a_real_province_is_accepted_without_a_name() {
    let id = valid(&with_check_character("43079919900615002"));
    assert_eq!(id.address_name(), None);
}

#[test]
fn birth_date_of_today_and_of_1900_01_01_are_accepted() {
    assert!(ResidentId::parse_on(&with_check_character("43070320260101002"), today()).is_ok());
    assert!(ResidentId::parse_on(&with_check_character("43070319000101002"), today()).is_ok());
}

#[test]
fn parse_uses_todays_date_in_china() {
    assert!(ResidentId::parse("11010519491231002X").is_ok());
    let tomorrow = today_in_china().succ_opt().expect("tomorrow exists");
    let first17 = format!("43070{}{}002", 3, tomorrow.format("%Y%m%d"));
    assert!(matches!(
        ResidentId::parse(&with_check_character(&first17)),
        Err(ResidentIdError::FutureBirthDate { .. })
    ));
}

// === rejected, one test per reason ===

#[test]
fn wrong_check_character_is_rejected_with_the_expected_one() {
    assert_eq!(
        rejection("110105194912310021"),
        "the check character (character 18) does not match the first 17: a typo somewhere"
    );
}

#[test]
fn wrong_length_is_rejected_with_the_count() {
    assert_eq!(
        rejection("11010519491231002"),
        "resident id number must be 18 characters, got 17"
    );
    assert_eq!(rejection(""), "resident id number must be 18 characters, got 0");
    assert_eq!(
        rejection("11010519491231002X1"),
        "resident id number must be 18 characters, got 19"
    );
}

#[test]
fn surrounding_whitespace_is_rejected_not_trimmed() {
    for input in [
        " 11010519491231002X",
        "11010519491231002X\n",
        "\t11010519491231002X",
    ] {
        assert_eq!(
            rejection(input),
            "resident id number has leading or trailing whitespace"
        );
    }
}

#[test]
fn non_digit_is_rejected_at_its_position() {
    assert_eq!(rejection("1101a519491231002X"), "character 5 is not a digit");
    assert_eq!(rejection("1101051949123100X2"), "character 17 is not a digit");
    assert_eq!(
        rejection("11010519491231002Y"),
        "character 18 is not a digit or X"
    );
    assert_eq!(rejection("１1010519491231002X"), "character 1 is not a digit");
}

#[test]
fn legacy_15_digit_number_is_rejected_pointing_to_the_explicit_conversion() {
    let message = rejection("110105491231002");
    assert!(message.contains("legacy 15-digit format"), "{message}");
    assert!(message.contains("explicit"), "{message}");
}

#[test]
fn unknown_province_is_rejected() {
    assert_eq!(
        rejection(&with_check_character("99010519491231002")),
        "the province code (characters 1–2) does not exist"
    );
    assert_eq!(
        rejection(&with_check_character("09010519491231002")),
        "the province code (characters 1–2) does not exist"
    );
}

#[test]
fn impossible_birth_date_is_rejected() {
    assert_eq!(
        rejection(&with_check_character("11010519490231002")),
        "the birth date (characters 7–14) is not a calendar date"
    );
    assert_eq!(
        rejection(&with_check_character("11010519491301002")),
        "the birth date (characters 7–14) is not a calendar date"
    );
}

#[test]
fn future_birth_date_is_rejected() {
    assert_eq!(
        rejection(&with_check_character("43070320260102002")),
        "the birth date (characters 7–14) is in the future"
    );
}

#[test]
fn birth_date_before_1900_is_rejected() {
    assert_eq!(
        rejection(&with_check_character("43070318991231002")),
        "the birth date (characters 7–14) is before 1900-01-01"
    );
}

#[test]
fn errors_do_not_echo_the_number() {
    let input = "110105194912310021";
    let message = rejection(input);
    assert!(
        !message.contains(input) && !message.contains("1101051949"),
        "{message}"
    );
}

// === legacy conversion ===

#[test]
fn legacy_number_converts_explicitly_with_century_and_check_character() {
    let id = ResidentId::from_legacy_15("110105491231002", today()).expect("convertible");
    assert_eq!(id.as_str(), "11010519491231002X");
}

#[test]
fn legacy_conversion_rejects_bad_input() {
    let error = |input| {
        ResidentId::from_legacy_15(input, today())
            .expect_err("rejected")
            .to_string()
    };
    assert_eq!(
        error("11010519491231002X"),
        "legacy resident id number must be 15 digits, got 18 characters"
    );
    assert_eq!(error("11010549123a002"), "character 12 is not a digit");
    assert_eq!(
        error("110105490231002"),
        "the birth date (characters 7–14) is not a calendar date"
    );
    assert_eq!(
        error(" 10105491231002"),
        "resident id number has leading or trailing whitespace"
    );
}

// === output ===

#[test]
fn debug_masks_the_number_and_display_prints_it() {
    let id = valid(&with_check_character("43070319800101123"));
    assert_eq!(id.masked().len(), 18);
    assert_eq!(&id.masked()[4..14], "**********");
    assert_eq!(format!("{id:?}"), format!("ResidentId({})", id.masked()));
    assert_eq!(id.to_string(), id.as_str());
}

#[test]
fn masked_keeps_first_and_last_four() {
    assert_eq!(valid("11010519491231002X").masked(), "1101**********002X");
    assert_eq!(
        format!("{:?}", valid("11010519491231002X")),
        "ResidentId(1101**********002X)"
    );
}

#[test]
fn serde_uses_the_string_and_validates_on_the_way_in() {
    let id = valid("11010519491231002X");
    assert_eq!(
        serde_json::to_string(&id).expect("serializes"),
        "\"11010519491231002X\""
    );
    let back: ResidentId = serde_json::from_str("\"11010519491231002x\"").expect("valid");
    assert_eq!(back, id);
    let error = serde_json::from_str::<ResidentId>("\"110105194912310021\"").expect_err("invalid");
    assert!(
        error
            .to_string()
            .contains("the check character (character 18) does not match the first 17: a typo somewhere")
    );
}

#[test]
fn age_counts_completed_years() {
    let id = valid("11010519491231002X");
    assert_eq!(id.age_on(date(1949, 12, 31)), 0);
    assert_eq!(id.age_on(date(1950, 12, 30)), 0);
    assert_eq!(id.age_on(date(1950, 12, 31)), 1);
    assert_eq!(id.age_on(date(2025, 6, 1)), 75);
    assert_eq!(id.age_on(date(1900, 1, 1)), 0, "before birth");
    let leap = valid(&with_check_character("43070320000229002"));
    assert_eq!(leap.age_on(date(2001, 2, 28)), 0);
    assert_eq!(leap.age_on(date(2001, 3, 1)), 1);
}

// === properties ===

const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54,
    61, 62, 63, 64, 65, 71, 81, 82,
];

/// A valid ID with its birth date and sequence, so properties can check what parsing recovers.
fn valid_ids() -> impl Strategy<Value = (String, NaiveDate, u16)> {
    let first = date(1900, 1, 1);
    let span = (date(2025, 12, 31) - first).num_days();
    (
        prop::sample::select(PROVINCES),
        0..10_000u16,
        0..=span,
        0..1000u16,
    )
        .prop_map(move |(province, area, offset, sequence)| {
            let birth = first + chrono::Duration::days(offset);
            let first17 = format!("{province:02}{area:04}{}{sequence:03}", birth.format("%Y%m%d"));
            (with_check_character(&first17), birth, sequence)
        })
}

const ALPHABET: [char; 11] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'X'];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_valid_ids_are_accepted_and_round_trip((input, birth, sequence) in valid_ids()) {
        let id = ResidentId::parse_on(&input, today()).expect("generated id is valid");
        prop_assert_eq!(id.as_str(), input.as_str());
        prop_assert_eq!(id.birth_date(), birth);
        let expected_sex = if sequence % 2 == 1 { Sex::Male } else { Sex::Female };
        prop_assert_eq!(id.sex(), expected_sex);
        let debug = format!("{id:?}");
        prop_assert!(!debug.contains(&input[4..14]), "debug leaks the middle: {}", debug);
    }

    #[test]
    fn every_single_substitution_is_rejected((input, _, _) in valid_ids()) {
        let original: Vec<char> = input.chars().collect();
        for position in 0..original.len() {
            for &replacement in ALPHABET.iter().filter(|&&c| c != original[position]) {
                let mut changed = original.clone();
                changed[position] = replacement;
                let changed: String = changed.into_iter().collect();
                let result = ResidentId::parse_on(&changed, today());
                prop_assert!(result.is_err(), "{} accepted", changed);
                let message = result.expect_err("checked above").to_string();
                prop_assert!(!message.contains(&changed), "error echoes the input: {}", message);
            }
        }
    }

    #[test]
    fn every_adjacent_transposition_is_rejected((input, _, _) in valid_ids()) {
        let original: Vec<char> = input.chars().collect();
        for position in 0..original.len() - 1 {
            if original[position] == original[position + 1] {
                continue;
            }
            let mut changed = original.clone();
            changed.swap(position, position + 1);
            let changed: String = changed.into_iter().collect();
            prop_assert!(ResidentId::parse_on(&changed, today()).is_err(), "{} accepted", changed);
        }
    }

    #[test]
    fn legacy_conversion_matches_the_18_character_form((input, birth, _) in valid_ids()) {
        prop_assume!(birth.year() < 2000);
        let legacy = format!("{}{}", &input[..6], &input[8..17]);
        let converted = ResidentId::from_legacy_15(&legacy, today()).expect("convertible");
        prop_assert_eq!(converted.as_str(), input.as_str());
    }
}

#[test]
fn synthetic_ids_are_valid_and_say_what_they_were_made_from() {
    let county = crate::domain::division::CountyCode::parse("430703").unwrap();
    let id = ResidentId::synthetic(county, date(1990, 3, 9), 1_042).unwrap();
    assert_eq!(&id.as_str()[..17], "43070319900309042");
    assert_eq!(ResidentId::parse(id.as_str()), Ok(id.clone()));
    assert_eq!(id.sex(), Sex::Female);
    assert_eq!(id.birth_date(), date(1990, 3, 9));
    assert!(ResidentId::synthetic(county, date(1899, 12, 31), 1).is_err());
}

#[test]
fn a_check_character_completes_seventeen_digits() {
    assert_eq!(
        ResidentId::with_check_character("11010519491231002")
            .unwrap()
            .as_str(),
        "11010519491231002X"
    );
    assert!(ResidentId::with_check_character("1101051949123100").is_err());
    assert!(ResidentId::with_check_character("1101051949123100a").is_err());
}
