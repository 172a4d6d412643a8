//! The 催办通知书 (reminder notice): who gets one, its reference number and its deadline.
//!
//! The destination checks the certificates of arrivals and chases those without one
//! (《流动人口计划生育工作条例》 Art. 8; DOMAIN.md rule 3). A reminder goes to every inflow woman
//! who must hold a marriage-and-childbearing certificate ([`Person::must_hold_certificate`]) and
//! does not hold one valid on the day of issue ([`holds_valid_certificate`], the same rule as the
//! automatic answer and 办证率), at most once per reporting period.

use std::fmt;

use chrono::{Days, NaiveDate};

use crate::domain::division::CountyCode;
use crate::domain::person::{Flow, Person, certificate_status_on, holds_valid_certificate};
use crate::domain::report::ReportPeriod;
use crate::domain::vocabulary::CertificateStatus;

/// Days from issue to the deadline when the operator names none: the 30 days within which an
/// arrival shows her certificate (Art. 8).
pub const DEFAULT_DEADLINE_DAYS: u32 = 30;

/// The longest deadline an operator may set: a reminder that waits longer than a year is no
/// reminder.
pub const MAX_DEADLINE_DAYS: u32 = 366;

/// Why a person is reminded: what the registry shows of her certificate on the day of issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingCertificate {
    /// The registry holds no certificate for her (`none`, or nothing recorded).
    NotHeld,
    /// Her certificate is past its date, or recorded expired.
    Expired,
    /// Her certificate was revoked.
    Revoked,
}

impl MissingCertificate {
    /// The name stored with the reminder and used in CSV and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            MissingCertificate::NotHeld => "not_held",
            MissingCertificate::Expired => "expired",
            MissingCertificate::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<MissingCertificate> {
        match name {
            "not_held" => Some(MissingCertificate::NotHeld),
            "expired" => Some(MissingCertificate::Expired),
            "revoked" => Some(MissingCertificate::Revoked),
            _ => None,
        }
    }

    /// The reason in the words of the printed notice, after 您 ("you").
    pub const fn label_zh(self) -> &'static str {
        match self {
            MissingCertificate::NotHeld => "尚未提交婚育证明",
            MissingCertificate::Expired => "所持婚育证明已过有效期",
            MissingCertificate::Revoked => "所持婚育证明已被注销",
        }
    }
}

/// Whether `person` gets a reminder on `day`, and why: an inflow woman of childbearing age
/// without a certificate valid on that day. `None` for everyone else.
pub fn needs_reminder(person: &Person, day: NaiveDate) -> Option<MissingCertificate> {
    if person.flow != Flow::Inflow || !person.must_hold_certificate(day) {
        return None;
    }
    if holds_valid_certificate(&person.status, day) {
        return None;
    }
    Some(match certificate_status_on(&person.status, day) {
        Some(CertificateStatus::Expired) => MissingCertificate::Expired,
        Some(CertificateStatus::Revoked) => MissingCertificate::Revoked,
        _ => MissingCertificate::NotHeld,
    })
}

/// The deadline of a reminder issued on `issued_on` with `days` to comply.
pub fn deadline(issued_on: NaiveDate, days: u32) -> NaiveDate {
    issued_on
        .checked_add_days(Days::new(u64::from(days)))
        .expect("a deadline within a year of today exists")
}

/// The number printed on a reminder and used as its file name: the county, the period and the
/// reminder's sequence number in the county's node, `430703-2026Q4-000017`. It names no person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReminderReference {
    /// The issuing county.
    pub county: CountyCode,
    /// The period the reminder counts for.
    pub period: ReportPeriod,
    /// The node's sequence number (unique in the county, not only in the period).
    pub number: u64,
}

impl fmt::Display for ReminderReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:06}", self.county, self.period, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resident_id::ResidentId;
    use crate::domain::vocabulary::StatusValues;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn today() -> NaiveDate {
        date(2026, 12, 1)
    }

    /// A person born on `born`, female unless `male`.
    fn person(born: NaiveDate, male: bool, flow: Flow, status: Option<CertificateStatus>) -> Person {
        let sequence = if male { 3 } else { 2 };
        let id = ResidentId::synthetic(CountyCode::parse("431322").unwrap(), born, sequence).unwrap();
        Person {
            resident_id: id,
            name: "测试".into(),
            flow,
            registered_county: CountyCode::parse("431322").unwrap(),
            residence_county: CountyCode::parse("430703").unwrap(),
            status: StatusValues {
                certificate_status: status,
                certificate_valid_until: Some(date(2028, 5, 31)),
                ..StatusValues::default()
            },
        }
    }

    #[test]
    fn an_inflow_woman_without_a_valid_certificate_is_reminded_with_the_reason() {
        let born = date(1990, 3, 1);
        let cases = [
            (None, Some(MissingCertificate::NotHeld)),
            (Some(CertificateStatus::None), Some(MissingCertificate::NotHeld)),
            (
                Some(CertificateStatus::Expired),
                Some(MissingCertificate::Expired),
            ),
            (
                Some(CertificateStatus::Revoked),
                Some(MissingCertificate::Revoked),
            ),
            (Some(CertificateStatus::Valid), None),
        ];
        for (status, expected) in cases {
            let her = person(born, false, Flow::Inflow, status);
            assert_eq!(needs_reminder(&her, today()), expected, "{status:?}");
        }
    }

    #[test]
    fn a_valid_certificate_past_its_date_is_expired_on_the_day_after() {
        let mut her = person(
            date(1990, 3, 1),
            false,
            Flow::Inflow,
            Some(CertificateStatus::Valid),
        );
        her.status.certificate_valid_until = Some(today());
        assert_eq!(needs_reminder(&her, today()), None, "valid through its last day");
        her.status.certificate_valid_until = today().pred_opt();
        assert_eq!(needs_reminder(&her, today()), Some(MissingCertificate::Expired));
    }

    #[test]
    fn men_outflow_persons_and_women_outside_15_to_49_are_not_reminded() {
        let none = None;
        assert_eq!(
            needs_reminder(&person(date(1990, 3, 1), true, Flow::Inflow, none), today()),
            None
        );
        assert_eq!(
            needs_reminder(&person(date(1990, 3, 1), false, Flow::Outflow, none), today()),
            None
        );
        // 15 today: reminded; 15 tomorrow: not yet. 49 until tomorrow: reminded; 50 today: not.
        let fifteen_today = date(2011, 12, 1);
        assert!(needs_reminder(&person(fifteen_today, false, Flow::Inflow, none), today()).is_some());
        let fifteen_tomorrow = date(2011, 12, 2);
        assert_eq!(
            needs_reminder(&person(fifteen_tomorrow, false, Flow::Inflow, none), today()),
            None
        );
        let fifty_tomorrow = date(1976, 12, 2);
        assert!(needs_reminder(&person(fifty_tomorrow, false, Flow::Inflow, none), today()).is_some());
        let fifty_today = date(1976, 12, 1);
        assert_eq!(
            needs_reminder(&person(fifty_today, false, Flow::Inflow, none), today()),
            None
        );
    }

    #[test]
    fn references_name_the_county_period_and_number_only() {
        let reference = ReminderReference {
            county: CountyCode::parse("430703").unwrap(),
            period: ReportPeriod::parse("2026Q4").unwrap(),
            number: 17,
        };
        assert_eq!(reference.to_string(), "430703-2026Q4-000017");
    }

    #[test]
    fn missing_reasons_round_trip_through_their_stored_names() {
        for reason in [
            MissingCertificate::NotHeld,
            MissingCertificate::Expired,
            MissingCertificate::Revoked,
        ] {
            assert_eq!(MissingCertificate::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(deadline(date(2026, 12, 1), 30), date(2026, 12, 31));
    }
}
