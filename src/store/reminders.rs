//! The 催办通知书 issued, at most one per person and period (`reminders`), and the registry's
//! inflow persons they are chosen from. Who gets one is decided in
//! [`crate::domain::reminder::needs_reminder`], not here.

use chrono::{DateTime, NaiveDate, Utc};

use super::outbound::corrupt;
use super::registry::{PERSON_COLUMNS, PersonRow};
use super::{Store, StoreError};
use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::person::Person;
use crate::domain::reminder::MissingCertificate;
use crate::domain::report::ReportPeriod;
use crate::domain::resident_id::ResidentId;

/// A reminder to issue: the person, the office she is to report to and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReminder {
    /// Who is reminded.
    pub resident_id: ResidentId,
    /// Her township (where she lives), if the registry has one.
    pub township: Option<TownshipCode>,
    /// 户籍地: the county that issues her certificate.
    pub origin_county: CountyCode,
    /// What the registry shows of her certificate today.
    pub missing: MissingCertificate,
}

/// A reminder as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedReminder {
    /// The node's sequence number, part of the printed reference.
    pub number: u64,
    /// Who was reminded.
    pub resident_id: ResidentId,
    /// Her township when it was issued.
    pub township: Option<TownshipCode>,
    /// 户籍地 when it was issued.
    pub origin_county: CountyCode,
    /// Why she was reminded.
    pub missing: MissingCertificate,
    /// When.
    pub issued_at: DateTime<Utc>,
    /// The operator principal that issued it.
    pub issued_by: String,
    /// The day by which she is to bring her certificate.
    pub deadline: NaiveDate,
    /// Issued by this call; `false` for one an earlier call issued in the same period.
    pub issued_now: bool,
}

impl Store {
    /// The registry's inflow persons, of one township or of the whole county (`None`: those
    /// without a township too), in ID order.
    pub async fn inflow_persons(&self, township: Option<&TownshipCode>) -> Result<Vec<Person>, StoreError> {
        let rows: Vec<PersonRow> = sqlx::query_as(&format!(
            "SELECT {PERSON_COLUMNS} FROM persons
             WHERE flow = 'inflow' AND ($1::text IS NULL OR township = $1)
             ORDER BY resident_id"
        ))
        .bind(township.map(TownshipCode::as_str))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(PersonRow::into_domain).collect()
    }

    /// Records a reminder in `period` for each of `wanted` who has none in it yet, all in one
    /// statement (nothing is half recorded), issued by `issued_by` with `deadline`. Returns the
    /// reminders issued now and those of `wanted` issued earlier in the period (`issued_now`
    /// false), in reference order.
    pub async fn issue_reminders(
        &self,
        period: &ReportPeriod,
        wanted: &[NewReminder],
        issued_by: &str,
        deadline: NaiveDate,
    ) -> Result<Vec<IssuedReminder>, StoreError> {
        let column = |value: &dyn Fn(&NewReminder) -> Option<String>| -> Vec<Option<String>> {
            wanted.iter().map(value).collect()
        };
        let rows: Vec<ReminderRow> = sqlx::query_as(ISSUE_SQL)
            .bind(column(&|w| Some(w.resident_id.as_str().to_string())))
            .bind(column(&|w| w.township.map(|t| t.as_str().to_string())))
            .bind(column(&|w| Some(w.origin_county.as_str().to_string())))
            .bind(column(&|w| Some(w.missing.as_str().to_string())))
            .bind(period.label())
            .bind(issued_by)
            .bind(deadline)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(ReminderRow::into_domain).collect()
    }

    /// How many reminders were issued in `period`, of one township or of the whole county.
    pub async fn reminders_in_period(
        &self,
        period: &ReportPeriod,
        township: Option<&TownshipCode>,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM reminders WHERE period = $1 AND ($2::text IS NULL OR township = $2)",
        )
        .bind(period.label())
        .bind(township.map(TownshipCode::as_str))
        .fetch_one(self.pool())
        .await?;
        Ok(count.unsigned_abs())
    }
}

/// $1–$4: the wanted reminders as parallel arrays (ID, township, origin, missing); $5 the period;
/// $6 issued by; $7 the deadline. The outer SELECT on `reminders` sees the table as it was before the INSERT, so it finds exactly
/// the earlier ones.
const ISSUE_SQL: &str = "
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        AS w(resident_id, township, origin_county, missing)
), inserted AS (
    INSERT INTO reminders (resident_id, period, township, origin_county, missing, issued_by, deadline)
    SELECT resident_id, $5, township, origin_county, missing, $6, $7 FROM wanted
    ON CONFLICT (resident_id, period) DO NOTHING
    RETURNING number, resident_id, township, origin_county, missing, issued_at, issued_by, deadline,
              true AS issued_now
)
SELECT * FROM inserted
UNION ALL
SELECT r.number, r.resident_id, r.township, r.origin_county, r.missing, r.issued_at, r.issued_by,
       r.deadline, false
FROM reminders r JOIN wanted w USING (resident_id)
WHERE r.period = $5
ORDER BY number";

#[derive(sqlx::FromRow)]
struct ReminderRow {
    number: i64,
    resident_id: String,
    township: Option<String>,
    origin_county: String,
    missing: String,
    issued_at: DateTime<Utc>,
    issued_by: String,
    deadline: NaiveDate,
    issued_now: bool,
}

impl ReminderRow {
    fn into_domain(self) -> Result<IssuedReminder, StoreError> {
        Ok(IssuedReminder {
            number: self.number.unsigned_abs(),
            resident_id: ResidentId::parse(&self.resident_id).map_err(corrupt)?,
            township: self
                .township
                .map(|code| TownshipCode::parse(&code))
                .transpose()
                .map_err(corrupt)?,
            origin_county: CountyCode::parse(&self.origin_county).map_err(corrupt)?,
            missing: MissingCertificate::parse(&self.missing)
                .ok_or_else(|| corrupt(format!("missing {}", self.missing)))?,
            issued_at: self.issued_at,
            issued_by: self.issued_by,
            deadline: self.deadline,
            issued_now: self.issued_now,
        })
    }
}
