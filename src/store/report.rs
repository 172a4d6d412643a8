//! The five indicators counted from the registry (`persons`) and the exchange records
//! (`inquiries`, `notices`), per township and for the county, in one statement.
//!
//! What is counted (our reading of the district's definitions; ages are taken on the period's
//! last day, instants are compared in Asia/Shanghai through [`ReportPeriod`]):
//!
//! - **登记率**: numerator the inflow persons of the registry; denominator those plus the
//!   subjects of inbound `outflow_status` inquiries received in the period who are not in the
//!   registry as inflow persons (the origin believes they live here, we have not registered them).
//!   Such subjects have no township, so they count in the county total only.
//! - **办证率**: outflow women aged 15–49; of those, the ones whose certificate is `valid` and not
//!   past its date on the period's last day (no date counts as valid, as in the automatic answer).
//! - **持验证率**: inflow women aged 15–49; of those, the ones an outbound
//!   `certificate_verification` inquiry about was answered `found` at any time before the period
//!   ended.
//! - **流出人口函查率**: outflow persons; of those, the ones an outbound `outflow_status` inquiry
//!   about was answered (any outcome) within the period.
//! - **查环查孕结果通报率**: inflow married women aged 15–49 (the women of 持验证率 whose
//!   registered marital status is `married`); of those, the ones an outbound
//!   `contraception_check` notice about was sent to their county of registration with a check
//!   date (`occurred_on`) within the period. A notice counts once it is recorded for sending
//!   (in the outbox or delivered); a woman with several counts once; notices to another county,
//!   of other kinds or with a check date outside the period count for nobody.
//!
//! The registry holds people as they are now, so a past period is counted against today's
//! registry; only the exchange records are dated.
//!
//! Inquiries erased at the end of their agreement's retention period (see
//! [`crate::store::retention`]) no longer name their subject and count for nobody: a period is
//! counted in full while its inquiries are kept, that is for 流出人口函查率 and 登记率 a period
//! that began less than the retention period ago, and for 持验证率 only verifications answered
//! within the retention period count. Erased notices likewise count for nobody in
//! 查环查孕结果通报率.

use std::collections::BTreeMap;

use super::{Store, StoreError};
use crate::domain::report::{Indicator, Indicators, ReportPeriod};

/// The indicators of every township that has anyone counted, and of the county.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndicatorCounts {
    /// Per township code (as stored), in code order.
    pub townships: BTreeMap<String, Indicators>,
    /// The whole county: every township, plus people without one.
    pub county: Indicators,
}

impl Store {
    /// Counts the five indicators for `period`.
    pub async fn indicator_counts(&self, period: &ReportPeriod) -> Result<IndicatorCounts, StoreError> {
        let birth_dates = period.childbearing_birth_dates();
        let rows: Vec<CountRow> = sqlx::query_as(INDICATORS_SQL)
            .bind(period.start_instant())
            .bind(period.end_instant())
            .bind(*birth_dates.start())
            .bind(*birth_dates.end())
            .bind(period.end())
            .bind(period.start())
            .fetch_all(self.pool())
            .await?;
        let mut counts = IndicatorCounts::default();
        for row in rows {
            let indicators = row.indicators();
            match (row.is_total, row.township) {
                (true, _) => counts.county = indicators,
                (false, Some(township)) => {
                    counts.townships.insert(township, indicators);
                }
                // People without a township: already part of the county total.
                (false, None) => {}
            }
        }
        Ok(counts)
    }
}

/// $1, $2: the period as instants [start, end); $3, $4: the birth dates of ages 15–49 on the last
/// day (inclusive); $5: the last day; $6: the first day.
///
/// `certificate_valid` is the rule of
/// [`holds_valid_certificate`](crate::domain::person::holds_valid_certificate) in SQL.
pub(super) const INDICATORS_SQL: &str = "
WITH verified AS (
    SELECT DISTINCT subject_id FROM inquiries
    WHERE direction = 'outbound' AND kind = 'certificate_verification'
      AND state = 'answered' AND outcome = 'found' AND answered_at < $2 AND subject_id IS NOT NULL
), inquired AS (
    SELECT DISTINCT subject_id FROM inquiries
    WHERE direction = 'outbound' AND kind = 'outflow_status'
      AND state = 'answered' AND answered_at >= $1 AND answered_at < $2 AND subject_id IS NOT NULL
), unregistered AS (
    SELECT DISTINCT subject_id FROM inquiries i
    WHERE direction = 'inbound' AND kind = 'outflow_status'
      AND received_at >= $1 AND received_at < $2 AND subject_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM persons p WHERE p.resident_id = i.subject_id AND p.flow = 'inflow')
), check_reported AS (
    SELECT DISTINCT subject_id, peer_county FROM notices
    WHERE direction = 'outbound' AND kind = 'contraception_check' AND reject_reason IS NULL
      AND occurred_on BETWEEN $6 AND $5 AND subject_id IS NOT NULL
), people AS (
    SELECT township,
           flow = 'inflow' AS inflow,
           flow = 'outflow' AS outflow,
           sex = 'female' AND birth_date BETWEEN $3 AND $4 AS childbearing,
           coalesce(certificate_status = 'valid' AND coalesce(certificate_valid_until >= $5, true), false)
               AS certificate_valid,
           resident_id IN (SELECT subject_id FROM verified) AS verified,
           resident_id IN (SELECT subject_id FROM inquired) AS inquired,
           coalesce(marital_status = 'married', false) AS married,
           -- IN rather than a correlated EXISTS: one hashed set, not a lookup per person
           (resident_id, registered_county) IN (SELECT subject_id, peer_county FROM check_reported) AS check_reported
    FROM persons
), facts AS (
    SELECT township,
           inflow AS registration_due, inflow AS registration_met,
           outflow AND childbearing AS certificate_due, outflow AND childbearing AND certificate_valid AS certificate_met,
           inflow AND childbearing AS verification_due, inflow AND childbearing AND verified AS verification_met,
           outflow AS outflow_inquiry_due, outflow AND inquired AS outflow_inquiry_met,
           inflow AND childbearing AND married AS check_report_due,
           inflow AND childbearing AND married AND check_reported AS check_report_met
    FROM people
    UNION ALL
    SELECT NULL, true, false, false, false, false, false, false, false, false, false FROM unregistered
)
SELECT township,
       GROUPING(township) = 1 AS is_total,
       count(*) FILTER (WHERE registration_met) AS registration_met,
       count(*) FILTER (WHERE registration_due) AS registration_due,
       count(*) FILTER (WHERE certificate_met) AS certificate_met,
       count(*) FILTER (WHERE certificate_due) AS certificate_due,
       count(*) FILTER (WHERE verification_met) AS verification_met,
       count(*) FILTER (WHERE verification_due) AS verification_due,
       count(*) FILTER (WHERE outflow_inquiry_met) AS outflow_inquiry_met,
       count(*) FILTER (WHERE outflow_inquiry_due) AS outflow_inquiry_due,
       count(*) FILTER (WHERE check_report_met) AS check_report_met,
       count(*) FILTER (WHERE check_report_due) AS check_report_due
FROM facts
GROUP BY ROLLUP (township)";

/// One township's counts, or the county's (`is_total`).
#[derive(sqlx::FromRow)]
struct CountRow {
    township: Option<String>,
    is_total: bool,
    registration_met: i64,
    registration_due: i64,
    certificate_met: i64,
    certificate_due: i64,
    verification_met: i64,
    verification_due: i64,
    outflow_inquiry_met: i64,
    outflow_inquiry_due: i64,
    check_report_met: i64,
    check_report_due: i64,
}

impl CountRow {
    fn indicators(&self) -> Indicators {
        // count(*) is never negative.
        let indicator = |met: i64, due: i64| Indicator::new(met.unsigned_abs(), due.unsigned_abs());
        Indicators {
            registration: indicator(self.registration_met, self.registration_due),
            certificate: indicator(self.certificate_met, self.certificate_due),
            verification: indicator(self.verification_met, self.verification_due),
            outflow_inquiry: indicator(self.outflow_inquiry_met, self.outflow_inquiry_due),
            check_report: indicator(self.check_report_met, self.check_report_due),
        }
    }
}
