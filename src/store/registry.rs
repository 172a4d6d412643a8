//! The county's registry of persons (inflow and outflow).

use chrono::{DateTime, Utc};

use super::outbound::corrupt;
use super::{Store, StoreError, Work};
use crate::domain::division::CountyCode;
use crate::domain::person::{Flow, Person};
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::StatusValues;

impl Store {
    /// Inserts or replaces persons, all in one transaction: a batch is written whole or not at
    /// all; what it changes in an entry goes into the registry's history as an import. Returns
    /// how many rows were written.
    pub async fn upsert_persons(&self, persons: &[Person]) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        self.limit(&mut tx, Work::Bulk).await?;
        super::notice_effects::name_change_source_in(&mut tx, "import", None, None).await?;
        let mut written = 0;
        for chunk in persons.chunks(5_000) {
            let text = |f: &dyn Fn(&Person) -> Option<String>| chunk.iter().map(f).collect::<Vec<_>>();
            let result = sqlx::query(
                "INSERT INTO persons (resident_id, name, sex, birth_date, flow, registered_county, residence_county,
                                      township, village, marital_status, certificate_number, certificate_valid_until,
                                      certificate_status, children_count, contraception_status, contraception_date,
                                      pregnant, registered_since, updated_at)
                 SELECT * , now() FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[],
                        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::date[], $13::text[],
                        $14::smallint[], $15::text[], $16::date[], $17::bool[], $18::date[])
                 ON CONFLICT (resident_id) DO UPDATE SET
                    name = excluded.name, sex = excluded.sex, birth_date = excluded.birth_date, flow = excluded.flow,
                    registered_county = excluded.registered_county, residence_county = excluded.residence_county,
                    township = excluded.township, village = excluded.village,
                    marital_status = excluded.marital_status, certificate_number = excluded.certificate_number,
                    certificate_valid_until = excluded.certificate_valid_until,
                    certificate_status = excluded.certificate_status, children_count = excluded.children_count,
                    contraception_status = excluded.contraception_status,
                    contraception_date = excluded.contraception_date, pregnant = excluded.pregnant,
                    registered_since = excluded.registered_since, updated_at = now(),
                    -- the reconciliation digest survives a write that changes nothing it covers
                    -- (a name, an office): re-importing a registry does not make every night a first;
                    -- shared_digest_fields is left alone, a cleared digest is recomputed anyway
                    shared_digest = CASE WHEN (persons.flow, persons.registered_county, persons.residence_county, persons.marital_status,
                                   persons.certificate_number, persons.certificate_valid_until, persons.certificate_status,
                                   persons.children_count, persons.contraception_status, persons.contraception_date,
                                   persons.pregnant, persons.registered_since)
                                  IS NOT DISTINCT FROM
                                  (excluded.flow, excluded.registered_county, excluded.residence_county,
                                   excluded.marital_status, excluded.certificate_number, excluded.certificate_valid_until,
                                   excluded.certificate_status, excluded.children_count, excluded.contraception_status,
                                   excluded.contraception_date, excluded.pregnant, excluded.registered_since) THEN persons.shared_digest END",
            )
            .bind(text(&|p| Some(p.resident_id.as_str().to_string())))
            .bind(text(&|p| Some(p.name.clone())))
            .bind(text(&|p| Some(p.resident_id.sex().as_str().to_string())))
            .bind(chunk.iter().map(|p| p.resident_id.birth_date()).collect::<Vec<_>>())
            .bind(text(&|p| Some(p.flow.as_str().to_string())))
            .bind(text(&|p| Some(p.registered_county.as_str().to_string())))
            .bind(text(&|p| Some(p.residence_county.as_str().to_string())))
            .bind(text(&|p| p.status.township.map(|t| t.as_str().to_string())))
            .bind(text(&|p| p.status.village.map(|v| v.as_str().to_string())))
            .bind(text(&|p| p.status.marital_status.map(|m| m.as_str().to_string())))
            .bind(text(&|p| p.status.certificate_number.clone()))
            .bind(chunk.iter().map(|p| p.status.certificate_valid_until).collect::<Vec<_>>())
            .bind(text(&|p| p.status.certificate_status.map(|s| s.as_str().to_string())))
            .bind(chunk.iter().map(|p| p.status.children_count.map(i16::from)).collect::<Vec<_>>())
            .bind(text(&|p| p.status.contraception_status.map(|s| s.as_str().to_string())))
            .bind(chunk.iter().map(|p| p.status.contraception_date).collect::<Vec<_>>())
            .bind(chunk.iter().map(|p| p.status.pregnant).collect::<Vec<_>>())
            .bind(chunk.iter().map(|p| p.status.registered_since).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            written += result.rows_affected();
        }
        tx.commit().await?;
        Ok(written)
    }

    /// One person by ID number.
    pub async fn person(&self, resident_id: &ResidentId) -> Result<Option<Person>, StoreError> {
        let row: Option<PersonRow> = sqlx::query_as(&format!(
            "SELECT {PERSON_COLUMNS} FROM persons WHERE resident_id = $1"
        ))
        .bind(resident_id.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.map(PersonRow::into_domain).transpose()
    }
}

/// The persons with the given ID numbers, read inside the caller's transaction. A registry is
/// only ever looked up by ID: a certificate number finds no one (see
/// [`answer_from_registry`](crate::domain::person::answer_from_registry)).
pub(crate) async fn persons_by_id_in(
    connection: &mut sqlx::PgConnection,
    resident_ids: &[String],
) -> Result<Vec<Person>, StoreError> {
    let rows: Vec<PersonRow> = sqlx::query_as(&format!(
        "SELECT {PERSON_COLUMNS} FROM persons WHERE resident_id = ANY($1)"
    ))
    .bind(resident_ids)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(PersonRow::into_domain).collect()
}

pub(super) const PERSON_COLUMNS: &str =
    "resident_id, name, flow, registered_county, residence_county, township, village,
    marital_status, certificate_number, certificate_valid_until, certificate_status, children_count,
    contraception_status, contraception_date, pregnant, registered_since, updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct PersonRow {
    resident_id: String,
    name: String,
    flow: String,
    registered_county: String,
    residence_county: String,
    township: Option<String>,
    village: Option<String>,
    marital_status: Option<String>,
    certificate_number: Option<String>,
    certificate_valid_until: Option<chrono::NaiveDate>,
    certificate_status: Option<String>,
    children_count: Option<i16>,
    contraception_status: Option<String>,
    contraception_date: Option<chrono::NaiveDate>,
    pregnant: Option<bool>,
    registered_since: Option<chrono::NaiveDate>,
    pub(super) updated_at: DateTime<Utc>,
}

impl PersonRow {
    pub(super) fn into_domain(self) -> Result<Person, StoreError> {
        Ok(Person {
            resident_id: ResidentId::parse(&self.resident_id).map_err(corrupt)?,
            name: self.name,
            flow: Flow::parse(&self.flow).ok_or_else(|| corrupt(format!("flow {}", self.flow)))?,
            registered_county: CountyCode::parse(&self.registered_county).map_err(corrupt)?,
            residence_county: CountyCode::parse(&self.residence_county).map_err(corrupt)?,
            status: StatusValues {
                marital_status: self
                    .marital_status
                    .map(|v| v.parse())
                    .transpose()
                    .map_err(corrupt)?,
                certificate_number: self.certificate_number,
                certificate_valid_until: self.certificate_valid_until,
                certificate_status: self
                    .certificate_status
                    .map(|v| v.parse())
                    .transpose()
                    .map_err(corrupt)?,
                children_count: self.children_count.map(|c| u8::try_from(c).unwrap_or(u8::MAX)),
                contraception_status: self
                    .contraception_status
                    .map(|v| v.parse())
                    .transpose()
                    .map_err(corrupt)?,
                contraception_date: self.contraception_date,
                pregnant: self.pregnant,
                registered_since: self.registered_since,
                township: self.township.map(|t| t.parse()).transpose().map_err(corrupt)?,
                village: self.village.map(|v| v.parse()).transpose().map_err(corrupt)?,
                // describes an inquiry, never stored with the person
                certificate_presented: None,
            },
        })
    }
}
