//! The reporting period and the arithmetic of the indicators (the district's four targets, all
//! 100%, and the share of check results reported to the origin); what is counted for each lives
//! with the query in [`crate::store::report`].
//!
//! Periods are calendar years, quarters or months in China Standard Time: a period covers its
//! first day from 00:00 to its last day up to 24:00 in Asia/Shanghai, whatever time zone the node
//! runs in, because that is the calendar the county offices report in.

use std::fmt;
use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use crate::domain::time::china_midnight;

/// The ages (in completed years, on the period's last day) of a woman who must hold a
/// marriage-and-childbearing certificate.
pub const CHILDBEARING_AGES: RangeInclusive<u32> = 15..=49;

/// A calendar period a report covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReportPeriod {
    /// A whole year, written `2026`.
    Year(i32),
    /// A quarter (1–4), written `2026Q4`.
    Quarter(i32, u32),
    /// A month (1–12), written `2026-11`.
    Month(i32, u32),
}

impl ReportPeriod {
    /// Parses `2026` (a year), `2026Q4` (a quarter; `q` accepted) or `2026-11` (a month).
    pub fn parse(input: &str) -> Result<ReportPeriod, String> {
        let wrong =
            || "not a period: write a year (2026), a quarter (2026Q4) or a month (2026-11)".to_string();
        let year = |digits: &str| -> Result<i32, String> {
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(wrong());
            }
            let year: i32 = digits.parse().map_err(|_| wrong())?;
            if year < 1900 {
                return Err(format!("year {year} is before any record this node can hold"));
            }
            Ok(year)
        };
        if let Some((digits, quarter)) = input.split_once(['Q', 'q']) {
            let year = year(digits)?;
            return match quarter {
                "1" | "2" | "3" | "4" => {
                    Ok(ReportPeriod::Quarter(year, quarter.parse().map_err(|_| wrong())?))
                }
                _ => Err(format!("quarter must be 1 to 4, got {quarter:?}")),
            };
        }
        if let Some((digits, month)) = input.split_once('-') {
            let year = year(digits)?;
            if month.len() != 2 || !month.bytes().all(|b| b.is_ascii_digit()) {
                return Err(wrong());
            }
            let month: u32 = month.parse().map_err(|_| wrong())?;
            if !(1..=12).contains(&month) {
                return Err(format!("month must be 01 to 12, got {month:02}"));
            }
            return Ok(ReportPeriod::Month(year, month));
        }
        Ok(ReportPeriod::Year(year(input)?))
    }

    /// The quarter `today` falls in: the default period.
    pub fn current_quarter(today: NaiveDate) -> ReportPeriod {
        ReportPeriod::Quarter(today.year(), today.month0() / 3 + 1)
    }

    /// The quarter, month or year just before this one, of the same kind.
    pub fn previous(&self) -> ReportPeriod {
        match *self {
            ReportPeriod::Year(year) => ReportPeriod::Year(year - 1),
            ReportPeriod::Quarter(year, 1) => ReportPeriod::Quarter(year - 1, 4),
            ReportPeriod::Quarter(year, quarter) => ReportPeriod::Quarter(year, quarter - 1),
            ReportPeriod::Month(year, 1) => ReportPeriod::Month(year - 1, 12),
            ReportPeriod::Month(year, month) => ReportPeriod::Month(year, month - 1),
        }
    }

    /// The first day of the period.
    pub fn start(&self) -> NaiveDate {
        let (year, month) = match *self {
            ReportPeriod::Year(year) => (year, 1),
            ReportPeriod::Quarter(year, quarter) => (year, 3 * quarter - 2),
            ReportPeriod::Month(year, month) => (year, month),
        };
        NaiveDate::from_ymd_opt(year, month, 1).expect("a parsed period starts on a real date")
    }

    /// The last day of the period (inclusive).
    pub fn end(&self) -> NaiveDate {
        let months = match self {
            ReportPeriod::Year(_) => 12,
            ReportPeriod::Quarter(..) => 3,
            ReportPeriod::Month(..) => 1,
        };
        let next = self
            .start()
            .checked_add_months(chrono::Months::new(months))
            .expect("a period ends before the end of the calendar");
        next.pred_opt().expect("a period ends after it starts")
    }

    /// How the period is written: `2026`, `2026Q4` or `2026-11`.
    pub fn label(&self) -> String {
        match *self {
            ReportPeriod::Year(year) => format!("{year}"),
            ReportPeriod::Quarter(year, quarter) => format!("{year}Q{quarter}"),
            ReportPeriod::Month(year, month) => format!("{year}-{month:02}"),
        }
    }

    /// The instant the period begins: its first day at 00:00 in Asia/Shanghai.
    pub fn start_instant(&self) -> DateTime<Utc> {
        china_midnight(self.start())
    }

    /// The instant just after the period: the day after its last day at 00:00 in Asia/Shanghai
    /// (exclusive bound).
    pub fn end_instant(&self) -> DateTime<Utc> {
        china_midnight(self.end() + Days::new(1))
    }

    /// The birth dates of the people of childbearing age ([`CHILDBEARING_AGES`]) on the period's
    /// last day, the day the indicators take ages on.
    pub fn childbearing_birth_dates(&self) -> RangeInclusive<NaiveDate> {
        birth_dates_for_ages(CHILDBEARING_AGES, self.end())
    }
}

impl fmt::Display for ReportPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The birth dates of everyone whose age on `on` lies in `ages`, with the rule of
/// [`crate::domain::resident_id::ResidentId::age_on`]: a year older on the birthday, and on
/// 1 March in common years for someone born on 29 February.
pub fn birth_dates_for_ages(ages: RangeInclusive<u32>, on: NaiveDate) -> RangeInclusive<NaiveDate> {
    // Aged at least `n` on `on` ⇔ born on or before the same month and day `n` years earlier
    // (29 February falls back to the 28th in a common year, which is still "on or before").
    let same_day_years_before = |years: u32| {
        let year = on.year() - i32::try_from(years).expect("ages fit in i32");
        NaiveDate::from_ymd_opt(year, on.month(), on.day())
            .or_else(|| NaiveDate::from_ymd_opt(year, on.month(), on.day() - 1))
            .expect("the day before 29 February exists in every year")
    };
    let latest = same_day_years_before(*ages.start());
    // Younger than `max + 1` ⇔ born after that day.
    let earliest = same_day_years_before(ages.end() + 1) + Days::new(1);
    earliest..=latest
}

// === impl Indicator ===

/// One indicator: how many of those who should (the denominator) do (the numerator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Indicator {
    /// Those who meet the target: registered, holding a valid certificate, verified, inquired.
    pub numerator: u64,
    /// Those the target applies to.
    pub denominator: u64,
}

impl Indicator {
    /// An indicator of `numerator` out of `denominator`.
    pub const fn new(numerator: u64, denominator: u64) -> Indicator {
        Indicator {
            numerator,
            denominator,
        }
    }

    /// The rate between 0 and 1; `None` when nobody is concerned (a rate of 0/0 means nothing).
    pub fn rate(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }

    /// The rate as a percentage with one decimal, `96.2%`, or `—` when nobody is concerned.
    ///
    /// Rounded down, never to nearest: the target is 100%, and 1,999 out of 2,000 must not show
    /// as "100.0%".
    pub fn percent(&self) -> String {
        if self.denominator == 0 {
            return "—".to_string();
        }
        let tenths = u128::from(self.numerator) * 1000 / u128::from(self.denominator);
        format!("{}.{}%", tenths / 10, tenths % 10)
    }
}

impl fmt::Display for Indicator {
    /// `96.2% (52/54)` or `— (0/0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}/{})", self.percent(), self.numerator, self.denominator)
    }
}

/// The indicators of one township or of the county.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Indicators {
    /// 登记率: inflow persons registered ÷ inflow persons known.
    pub registration: Indicator,
    /// 办证率: outflow women 15–49 holding a valid certificate ÷ outflow women 15–49.
    pub certificate: Indicator,
    /// 持验证率: inflow women 15–49 whose certificate the origin verified ÷ inflow women 15–49.
    pub verification: Indicator,
    /// 流出人口函查率: outflow persons with an inquiry answered in the period ÷ outflow persons.
    pub outflow_inquiry: Indicator,
    /// 查环查孕结果通报率: inflow married women 15–49 whose quarterly check result (a
    /// `contraception_check` notice dated in the period) was sent to their origin ÷ inflow
    /// married women 15–49.
    pub check_report: Indicator,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resident_id::ResidentId;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn quarters_months_and_years_parse_to_their_first_and_last_days() {
        let cases = [
            ("2026Q4", "2026Q4", date(2026, 10, 1), date(2026, 12, 31)),
            ("2026q1", "2026Q1", date(2026, 1, 1), date(2026, 3, 31)),
            ("2026Q2", "2026Q2", date(2026, 4, 1), date(2026, 6, 30)),
            ("2026-11", "2026-11", date(2026, 11, 1), date(2026, 11, 30)),
            ("2028-02", "2028-02", date(2028, 2, 1), date(2028, 2, 29)),
            ("2027-02", "2027-02", date(2027, 2, 1), date(2027, 2, 28)),
            ("2026", "2026", date(2026, 1, 1), date(2026, 12, 31)),
        ];
        for (input, label, start, end) in cases {
            let period = ReportPeriod::parse(input).unwrap();
            assert_eq!(period.label(), label, "{input}");
            assert_eq!(period.start(), start, "{input}");
            assert_eq!(period.end(), end, "{input}");
        }
    }

    #[test]
    fn malformed_periods_say_what_to_write() {
        for input in [
            "", "26Q4", "2026Q5", "2026Q0", "2026-13", "2026-00", "2026-1", "2026/11", "Q4", "2026 ",
        ] {
            let error = ReportPeriod::parse(input).expect_err(input);
            assert!(
                error.contains("2026Q4") || error.contains("quarter") || error.contains("month"),
                "{input}: {error}"
            );
        }
    }

    #[test]
    fn the_default_period_is_the_quarter_of_today() {
        assert_eq!(ReportPeriod::current_quarter(date(2026, 11, 5)).label(), "2026Q4");
        assert_eq!(ReportPeriod::current_quarter(date(2026, 1, 1)).label(), "2026Q1");
        assert_eq!(ReportPeriod::current_quarter(date(2026, 6, 30)).label(), "2026Q2");
        assert_eq!(ReportPeriod::current_quarter(date(2026, 7, 1)).label(), "2026Q3");
    }

    #[test]
    fn the_previous_period_crosses_year_ends() {
        let previous = |input: &str| ReportPeriod::parse(input).unwrap().previous().label();
        assert_eq!(previous("2026Q1"), "2025Q4");
        assert_eq!(previous("2026Q4"), "2026Q3");
        assert_eq!(previous("2026-01"), "2025-12");
        assert_eq!(previous("2026"), "2025");
    }

    #[test]
    fn a_period_runs_from_midnight_to_china_midnight() {
        let period = ReportPeriod::parse("2026Q4").unwrap();
        assert_eq!(period.start_instant().to_rfc3339(), "2026-09-30T16:00:00+00:00");
        assert_eq!(period.end_instant().to_rfc3339(), "2026-12-31T16:00:00+00:00");
    }

    #[test]
    fn childbearing_age_is_15_to_49_on_the_last_day() {
        let period = ReportPeriod::parse("2026Q4").unwrap();
        assert_eq!(
            period.childbearing_birth_dates(),
            date(1977, 1, 1)..=date(2011, 12, 31)
        );
    }

    #[test]
    fn birth_date_bounds_agree_with_age_on_every_day_including_29_february() {
        // Every reference day over four years, against every birth date around both bounds.
        let mut on = date(2027, 1, 1);
        while on <= date(2030, 12, 31) {
            let bounds = birth_dates_for_ages(CHILDBEARING_AGES, on);
            for anchor in [*bounds.start(), *bounds.end()] {
                let mut born = anchor - Days::new(40);
                while born <= anchor + Days::new(40) {
                    let id = id_born(born);
                    assert_eq!(
                        bounds.contains(&born),
                        CHILDBEARING_AGES.contains(&id.age_on(on)),
                        "born {born}, on {on}"
                    );
                    born = born + Days::new(1);
                }
            }
            on = on + Days::new(1);
        }
    }

    fn id_born(born: NaiveDate) -> ResidentId {
        let first17 = format!("431322{}002", born.format("%Y%m%d"));
        let digits: [u8; 17] = first17.as_bytes().try_into().unwrap();
        let check = crate::domain::resident_id::check_character(&digits);
        ResidentId::parse_on(&format!("{first17}{check}"), date(2100, 1, 1)).unwrap()
    }

    #[test]
    fn rates_are_rounded_down_so_only_everyone_shows_as_100_percent() {
        assert_eq!(Indicator::new(52, 54).to_string(), "96.2% (52/54)");
        assert_eq!(Indicator::new(1999, 2000).percent(), "99.9%");
        assert_eq!(Indicator::new(3, 3).percent(), "100.0%");
        assert_eq!(Indicator::new(0, 7).percent(), "0.0%");
        assert_eq!(Indicator::new(0, 0).to_string(), "— (0/0)");
        assert_eq!(Indicator::new(0, 0).rate(), None);
        assert_eq!(Indicator::new(1, 4).rate(), Some(0.25));
    }
}
