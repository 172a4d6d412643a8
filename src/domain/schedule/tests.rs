use chrono::{Datelike, NaiveDateTime};
use proptest::prelude::*;

use super::*;

fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .single()
        .expect("test instant is valid")
}

/// An instant given by the Shanghai wall clock (outside the summer-time years: UTC+8).
fn cst(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    utc(year, month, day, hour, minute) - TimeDelta::hours(8)
}

fn schedule(text: &str) -> Schedule {
    Schedule::parse(text).expect("test schedule is valid")
}

fn rejection(text: &str) -> String {
    Schedule::parse(text)
        .expect_err("schedule must be rejected")
        .to_string()
}

/// The next `count` firings after `after`.
fn firings(text: &str, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let schedule = schedule(text);
    std::iter::successors(schedule.next_after(after), |&t| schedule.next_after(t))
        .take(count)
        .collect()
}

// === the default ===

#[test]
fn default_is_two_in_the_morning_china_time() {
    assert_eq!(Schedule::default().to_string(), "0 2 * * *");
    assert_eq!(Schedule::default(), schedule("0 2 * * *"));
}

#[test]
fn default_fires_at_18_00_utc_the_same_day_before_then_and_the_next_day_after() {
    let nightly = Schedule::default();
    assert_eq!(
        nightly.next_after(utc(2026, 3, 1, 9, 30)),
        Some(utc(2026, 3, 1, 18, 0))
    );
    assert_eq!(
        nightly.next_after(utc(2026, 3, 1, 18, 0)),
        Some(utc(2026, 3, 2, 18, 0))
    );
    assert_eq!(
        nightly.next_after(utc(2026, 3, 1, 19, 0)),
        Some(utc(2026, 3, 2, 18, 0))
    );
    let just_before = utc(2026, 3, 1, 17, 59) + TimeDelta::seconds(59);
    assert_eq!(nightly.next_after(just_before), Some(utc(2026, 3, 1, 18, 0)));
}

#[test]
fn next_after_is_strictly_after_even_within_the_matching_minute() {
    let every_minute = schedule("* * * * *");
    let at = utc(2026, 5, 5, 5, 5);
    assert_eq!(every_minute.next_after(at), Some(utc(2026, 5, 5, 5, 6)));
    let mid_minute = at + TimeDelta::milliseconds(1);
    assert_eq!(every_minute.next_after(mid_minute), Some(utc(2026, 5, 5, 5, 6)));
}

// === field syntax ===

#[test]
fn steps_lists_and_ranges_select_the_written_minutes() {
    let after = cst(2026, 1, 1, 0, 0);
    let quarter_hours = firings("*/15 * * * *", after, 4);
    assert_eq!(
        quarter_hours,
        [15, 30, 45, 60].map(|m| after + TimeDelta::minutes(m))
    );
    let stepped_range = firings("10-50/10 9 * * *", after, 6);
    let expected = [10, 20, 30, 40, 50].map(|m| cst(2026, 1, 1, 9, m));
    assert_eq!(stepped_range[..5], expected);
    assert_eq!(stepped_range[5], cst(2026, 1, 2, 9, 10));
    let list = firings("0 1,15 * * *", after, 3);
    assert_eq!(
        list,
        [
            cst(2026, 1, 1, 1, 0),
            cst(2026, 1, 1, 15, 0),
            cst(2026, 1, 2, 1, 0)
        ]
    );
    let range = firings("30 22-23,0-1 * * *", cst(2026, 1, 1, 12, 0), 4);
    let expected = [cst(2026, 1, 1, 22, 30), cst(2026, 1, 1, 23, 30)];
    assert_eq!(range[..2], expected);
    assert_eq!(range[2..], [cst(2026, 1, 2, 0, 30), cst(2026, 1, 2, 1, 30)]);
}

#[test]
fn month_and_weekday_names_are_accepted_in_any_case() {
    let after = cst(2026, 2, 10, 0, 0);
    assert_eq!(
        firings("0 9 1 jan,Jul *", after, 2),
        [cst(2026, 7, 1, 9, 0), cst(2027, 1, 1, 9, 0)]
    );
    // 2026-02-10 is a Tuesday.
    let weekdays = firings("0 2 * * Mon-FRI", after, 5);
    let days = [10, 11, 12, 13, 16].map(|day| cst(2026, 2, day, 2, 0));
    assert_eq!(weekdays, days);
    assert_eq!(schedule("0 2 * * mon-fri").to_string(), "0 2 * * MON-FRI");
}

#[test]
fn weekday_zero_and_seven_are_both_sunday() {
    // 2026-02-10 is a Tuesday.
    let after = cst(2026, 2, 10, 0, 0);
    let sundays = [cst(2026, 2, 15, 3, 0), cst(2026, 2, 22, 3, 0)];
    for text in ["0 3 * * 0", "0 3 * * 7", "0 3 * * SUN"] {
        assert_eq!(firings(text, after, 2), sundays, "{text}");
    }
    let weekend = [(2, 14), (2, 15), (2, 21), (2, 22)].map(|(m, d)| cst(2026, m, d, 3, 0));
    assert_eq!(firings("0 3 * * 6-7", after, 4), weekend);
}

#[test]
fn restricted_day_of_month_and_weekday_match_when_either_does() {
    // The 10th (a Tuesday in February 2026), and every Friday.
    let either = firings("0 2 10 * FRI", cst(2026, 2, 1, 0, 0), 6);
    let days = [(2, 6), (2, 10), (2, 13), (2, 20), (2, 27), (3, 6)];
    assert_eq!(either, days.map(|(month, day)| cst(2026, month, day, 2, 0)));
    // 2026-07-01 is a Wednesday.
    let first_or_monday = firings("0 2 1 * MON", cst(2026, 6, 27, 0, 0), 3);
    let days = [(6, 29), (7, 1), (7, 6)];
    assert_eq!(
        first_or_monday,
        days.map(|(month, day)| cst(2026, month, day, 2, 0))
    );
}

#[test]
fn a_day_field_containing_a_star_is_unrestricted_so_both_must_match() {
    // Odd dates that are Mondays: as crontab(5) has it, `*/2` is not a restriction.
    let both = firings("0 2 */2 * MON", cst(2026, 6, 1, 12, 0), 3);
    assert_eq!(
        both,
        [(6, 15), (6, 29), (7, 13)].map(|(m, d)| cst(2026, m, d, 2, 0))
    );
}

#[test]
fn shorthands_stand_for_their_expressions_and_print_as_written() {
    for (shorthand, expression) in [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@MIDNIGHT", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
    ] {
        let after = cst(2026, 4, 4, 4, 4);
        assert_eq!(
            firings(shorthand, after, 3),
            firings(expression, after, 3),
            "{shorthand}"
        );
        assert_eq!(schedule(shorthand).to_string(), shorthand.to_ascii_lowercase());
    }
}

#[test]
fn display_is_the_normalized_text_and_parses_back() {
    let parsed = schedule("  0   2\t*  * sun ");
    assert_eq!(parsed.to_string(), "0 2 * * SUN");
    assert_eq!(parsed.to_string().parse::<Schedule>(), Ok(parsed));
}

#[test]
fn a_config_file_holds_a_schedule_as_a_string() {
    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    struct Agreement {
        #[serde(default)]
        reconcile_at: Schedule,
    }
    let read: Agreement = toml::from_str("reconcile_at = \"30 3 * * MON\"").expect("valid");
    assert_eq!(read.reconcile_at, schedule("30 3 * * MON"));
    let defaulted: Agreement = toml::from_str("").expect("valid");
    assert_eq!(defaulted.reconcile_at, Schedule::default());
    let written = toml::to_string(&read).expect("serializable");
    assert_eq!(written.trim(), "reconcile_at = \"30 3 * * MON\"");
    let refused =
        toml::from_str::<Agreement>("reconcile_at = \"0 24 * * *\"").expect_err("hour 24 is refused");
    assert!(
        refused.to_string().contains("hour: 24 is out of range 0-23"),
        "{refused}"
    );
}

// === never, and far ahead ===

#[test]
fn dates_that_never_exist_give_none() {
    let after = utc(2026, 1, 1, 0, 0);
    for text in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
        assert_eq!(schedule(text).next_after(after), None, "{text}");
    }
}

#[test]
fn leap_day_is_found_across_a_century_that_skips_it() {
    let leap_day = schedule("0 0 29 2 *");
    assert_eq!(
        leap_day.next_after(utc(2026, 1, 1, 0, 0)),
        Some(cst(2028, 2, 29, 0, 0))
    );
    assert_eq!(
        leap_day.next_after(utc(2096, 3, 1, 0, 0)),
        Some(cst(2104, 2, 29, 0, 0))
    );
}

// === the time zone's history ===

#[test]
fn summer_time_years_use_the_offset_in_force() {
    // Summer 1987: UTC+9, so 02:00 is 17:00 UTC.
    let nightly = Schedule::default();
    assert_eq!(
        nightly.next_after(utc(1987, 7, 1, 0, 0)),
        Some(utc(1987, 7, 1, 17, 0))
    );
    // 1987-04-12 02:00 became 03:00: no 02:30 that night.
    let skipped = schedule("30 2 * * *").next_after(utc(1987, 4, 11, 12, 0));
    assert_eq!(skipped, Some(utc(1987, 4, 12, 17, 30)));
    // 1987-09-13 02:00 (UTC+9) went back to 01:00 (UTC+8): 01:30 came twice.
    let repeated = firings("30 1 * * *", utc(1987, 9, 12, 12, 0), 3);
    let twice = [utc(1987, 9, 12, 16, 30), utc(1987, 9, 12, 17, 30)];
    assert_eq!(repeated, [twice[0], twice[1], utc(1987, 9, 13, 17, 30)]);
}

// === errors ===

#[test]
fn every_refusal_names_the_field_and_the_problem() {
    let cases = [
        (
            "",
            "schedule is empty; expected 5 fields (minute hour day-of-month month day-of-week) or a shorthand such as @daily",
        ),
        (
            "0 2 *",
            "expected 5 fields (minute hour day-of-month month day-of-week), found 3",
        ),
        (
            "0 2 * * * 2026",
            "expected 5 fields (minute hour day-of-month month day-of-week), found 6",
        ),
        (
            "@reboot",
            "unknown shorthand `@reboot`; expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually",
        ),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month: 32 is out of range 1-31"),
        ("0 0 * 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
        ("99999999999 * * * *", "minute: 99999999999 is out of range 0-59"),
        ("x * * * *", "minute: `x` is not a number 0-59"),
        ("0 MON * * *", "hour: `MON` is not a number 0-23"),
        (
            "0 0 * FOO *",
            "month: `FOO` is not a number 1-12 or a name JAN-DEC",
        ),
        (
            "0 0 * * funday",
            "day-of-week: `funday` is not a number 0-7 or a name SUN-SAT",
        ),
        ("-5 * * * *", "minute: `-5` is not a number 0-59"),
        ("+5 * * * *", "minute: `+5` is not a number 0-59"),
        ("0 0 ? * *", "day-of-month: `?` is not a number 1-31"),
        ("1,,2 * * * *", "minute: `1,,2` has an empty list element"),
        ("0 0 1, * *", "day-of-month: `1,` has an empty list element"),
        (
            "0 17-9 * * *",
            "hour: range `17-9` runs backwards; ranges do not wrap around, list both parts instead",
        ),
        (
            "0 0 * * FRI-MON",
            "day-of-week: range `FRI-MON` runs backwards; ranges do not wrap around, list both parts instead",
        ),
        (
            "*/0 * * * *",
            "minute: step `0` is not a whole number of at least 1",
        ),
        (
            "0 */x * * *",
            "hour: step `x` is not a whole number of at least 1",
        ),
        (
            "0 1-5/ * * *",
            "hour: step `` is not a whole number of at least 1",
        ),
        (
            "5/10 * * * *",
            "minute: `5/10` has a step but no range; write `5-59/10` or `*/10`",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(rejection(text), message, "{text:?}");
    }
}

#[test]
fn refusals_carry_the_field_for_callers_that_match_on_it() {
    let error = Schedule::parse("0 24 * * *").expect_err("hour 24 is refused");
    let ScheduleError::Field { field, problem } = error else {
        panic!("expected a field error, got {error:?}");
    };
    assert_eq!(field, Field::Hour);
    let value = "24".to_owned();
    assert_eq!(
        problem,
        FieldProblem::OutOfRange {
            value,
            min: 0,
            max: 23
        }
    );
}

// === property: the answer is the first match ===

/// A field's text with the values it stands for, written out by hand so the property below
/// judges matches without the parser.
type Choice = (&'static str, Vec<u32>);

fn field(choices: Vec<Choice>) -> impl Strategy<Value = Choice> {
    proptest::sample::select(choices)
}

/// Expressions that fire at least every few months, so the minutes between can be checked.
fn expression() -> impl Strategy<Value = [Choice; 5]> {
    let minute = field(vec![
        ("*", (0..60).collect()),
        ("*/15", vec![0, 15, 30, 45]),
        ("0", vec![0]),
        ("0,30", vec![0, 30]),
        ("10-50/10", vec![10, 20, 30, 40, 50]),
        ("5-9", (5..=9).collect()),
        ("59", vec![59]),
    ]);
    let hour = field(vec![
        ("*", (0..24).collect()),
        ("2", vec![2]),
        ("*/6", vec![0, 6, 12, 18]),
        ("9-17", (9..=17).collect()),
        ("0,12", vec![0, 12]),
        ("22-23", vec![22, 23]),
    ]);
    let day_of_month = field(vec![
        ("*", (1..=31).collect()),
        ("1", vec![1]),
        ("1-7", (1..=7).collect()),
        ("*/2", (1..=31).step_by(2).collect()),
        ("15,28", vec![15, 28]),
        ("31", vec![31]),
    ]);
    let month = field(vec![
        ("*", (1..=12).collect()),
        ("*/2", vec![1, 3, 5, 7, 9, 11]),
        ("MAR-AUG", (3..=8).collect()),
    ]);
    let day_of_week = field(vec![
        ("*", (0..7).collect()),
        ("MON-FRI", (1..=5).collect()),
        ("0", vec![0]),
        ("6,7", vec![6, 0]),
        ("sun", vec![0]),
        ("*/3", vec![0, 3, 6]),
    ]);
    (minute, hour, day_of_month, month, day_of_week).prop_map(|(a, b, c, d, e)| [a, b, c, d, e])
}

fn reference_matches(fields: &[Choice; 5], local: NaiveDateTime) -> bool {
    let [minute, hour, day_of_month, month, day_of_week] = fields;
    let by_date = day_of_month.1.contains(&local.day());
    let by_weekday = day_of_week.1.contains(&local.weekday().num_days_from_sunday());
    let either = !day_of_month.0.contains('*') && !day_of_week.0.contains('*');
    let day = if either {
        by_date || by_weekday
    } else {
        by_date && by_weekday
    };
    minute.1.contains(&local.minute())
        && hour.1.contains(&local.hour())
        && month.1.contains(&local.month())
        && day
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn next_after_is_the_first_matching_minute_after_the_input(
        fields in expression(),
        // 1980–2100, summer-time years included, at any second.
        seconds in 315_532_800i64..4_102_444_800,
        nanos in 0u32..1_000_000_000,
    ) {
        let text = fields.iter().map(|(text, _)| *text).collect::<Vec<_>>().join(" ");
        let after = DateTime::from_timestamp(seconds, nanos).expect("in range");
        let next = schedule(&text).next_after(after).expect("these expressions always fire");
        prop_assert!(next > after);
        prop_assert_eq!(next.timestamp() % 60, 0);
        prop_assert_eq!(next.timestamp_subsec_nanos(), 0);
        let local = |t: DateTime<Utc>| china_time(t).naive_local();
        prop_assert!(reference_matches(&fields, local(next)), "{text} at {}", local(next));
        prop_assert!(schedule(&text).matches(next));
        let first_minute = DateTime::from_timestamp(seconds - seconds.rem_euclid(60) + 60, 0)
            .expect("in range");
        let mut minute = first_minute;
        while minute < next {
            prop_assert!(!reference_matches(&fields, local(minute)), "{text}: {} missed", local(minute));
            minute += TimeDelta::minutes(1);
        }
    }
}
