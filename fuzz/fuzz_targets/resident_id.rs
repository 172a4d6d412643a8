//! Bytes (UTF-8 only: ID numbers arrive as text) → `ResidentId::parse`, and the legacy
//! 15-digit conversion.
//!
//! Invariants: nothing panics; an accepted number is 18 characters that `as_str` gives back
//! (upper-cased `x`), whose check character matches the other 17, whose birth date is the
//! calendar date digits 7–14 spell (1900-01-01 to today), and whose sex follows digit 17; it
//! parses again to itself; `Debug` masks it. A refusal never quotes the whole input when the
//! input could be an ID number (13 or more digits): the messages quote at most a fragment
//! (a character, the birth date digits), which the no-echo rule may tighten later.
#![no_main]

use hancha::domain::resident_id::{ResidentId, Sex, check_character, today_in_china};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match ResidentId::parse(input) {
        Ok(id) => check_accepted(input, &id),
        Err(error) => check_refused(input, &error.to_string()),
    }
    match ResidentId::from_legacy_15(input, today_in_china()) {
        Ok(id) => {
            assert_eq!(input.len(), 15);
            assert_eq!(&id.as_str()[..6], &input[..6]);
            assert_eq!(&id.as_str()[6..8], "19");
            assert_eq!(&id.as_str()[8..17], &input[6..]);
            check_accepted(id.as_str(), &id);
        }
        Err(error) => check_refused(input, &error.to_string()),
    }
});

fn check_accepted(input: &str, id: &ResidentId) {
    let text = id.as_str();
    assert_eq!(
        text,
        input.to_ascii_uppercase(),
        "as_str does not give the input back"
    );
    assert_eq!(text.len(), 18);
    let first17: &[u8; 17] = text.as_bytes()[..17].try_into().expect("18 characters");
    assert!(first17.iter().all(u8::is_ascii_digit));
    assert_eq!(text.chars().last(), Some(check_character(first17)));
    let birth = id.birth_date();
    assert_eq!(birth.format("%Y%m%d").to_string(), &text[6..14]);
    assert!(birth >= chrono_date(1900, 1, 1) && birth <= today_in_china());
    let sequence_odd = (text.as_bytes()[16] - b'0') % 2 == 1;
    assert_eq!(id.sex(), if sequence_odd { Sex::Male } else { Sex::Female });
    assert_eq!(ResidentId::parse(text).as_ref(), Ok(id));
    let debug = format!("{id:?}");
    assert!(
        !debug.contains(&text[4..14]),
        "Debug shows the middle digits: {debug}"
    );
    assert_eq!(id.masked().chars().count(), 18);
    let _ = id.age_on(today_in_china());
}

fn check_refused(input: &str, message: &str) {
    if input.bytes().filter(u8::is_ascii_digit).count() >= 13 {
        assert!(
            !message.contains(input),
            "the refusal quotes the input: {message}"
        );
    }
}

fn chrono_date(year: i32, month: u32, day: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(year, month, day).expect("a date")
}
