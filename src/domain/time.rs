//! China time: the one place that knows which calendar and clock a county office reads. Daily
//! caps, agreement validity dates, report periods, reconciliation schedules and birth dates all
//! count in Asia/Shanghai (UTC+8, no daylight saving since 1991), whatever zone the node runs in.
//! The zone database is used rather than a fixed offset, so that no offset is written down.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The zone every county office keeps.
pub const CHINA: Tz = chrono_tz::Asia::Shanghai;

/// Instant `at` on China's wall clock.
pub fn china_time(at: DateTime<Utc>) -> DateTime<Tz> {
    at.with_timezone(&CHINA)
}

/// The calendar day in China at instant `at`.
pub fn china_date(at: DateTime<Utc>) -> NaiveDate {
    china_time(at).date_naive()
}

/// The one overdue rule, for inquiries and for the feedback notices owe: a reply still owed
/// whose deadline has passed. Both sides apply it, so the asker (or notifier) and the one who
/// owes the reply flag the same messages.
pub fn is_overdue(still_owed: bool, due_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    still_owed && due_at.is_some_and(|due| due < now)
}

/// Today's date in China.
pub fn today_in_china() -> NaiveDate {
    china_date(Utc::now())
}

/// Midnight starting `day` in China, as an instant.
pub fn china_midnight(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::MIN);
    match CHINA.from_local_datetime(&local).earliest() {
        Some(midnight) => midnight.with_timezone(&Utc),
        // Midnight fell in a spring-forward gap (summer time, last in 1991): the day began at
        // the first instant after the gap, an hour later by the old clock.
        None => CHINA
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
            .map_or_else(|| local.and_utc(), |start| start.with_timezone(&Utc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_china_day_begins_at_16_00_utc_the_evening_before() {
        assert_eq!(
            china_date(utc("2025-03-31T15:59:59Z")),
            NaiveDate::from_ymd_opt(2025, 3, 31).unwrap()
        );
        assert_eq!(
            china_date(utc("2025-03-31T16:00:00Z")),
            NaiveDate::from_ymd_opt(2025, 4, 1).unwrap()
        );
    }

    #[test]
    fn china_time_shows_the_wall_clock_of_a_county_office() {
        let at = china_time(utc("2025-06-30T18:00:00Z"));
        assert_eq!(at.to_rfc3339(), "2025-07-01T02:00:00+08:00");
    }

    #[test]
    fn midnight_in_china_is_16_00_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        assert_eq!(china_midnight(day), utc("2024-12-31T16:00:00Z"));
        assert_eq!(china_date(china_midnight(day)), day);
    }
}
