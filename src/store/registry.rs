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
    ///
    /// The rows go in at PostgreSQL's bulk rate: `COPY` into a temporary staging table (the
    /// connection's own, emptied at commit), then one `INSERT … SELECT … ON CONFLICT` into
    /// `persons` per [`COPY_CHUNK`] rows.
    pub async fn upsert_persons(&self, persons: &[Person]) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        self.limit(&mut tx, Work::Bulk).await?;
        super::notice_effects::name_change_source_in(&mut tx, "import", None, None).await?;
        // once per connection; a no-op (with a notice nobody reads) afterwards
        sqlx::query(
            "CREATE TEMPORARY TABLE IF NOT EXISTS persons_import (
                resident_id text, name text, sex text, birth_date date, flow text,
                registered_county text, residence_county text, township text, village text,
                marital_status text, certificate_number text, certificate_valid_until date,
                certificate_status text, children_count smallint, contraception_status text,
                contraception_date date, pregnant boolean, registered_since date
             ) ON COMMIT DELETE ROWS",
        )
        .execute(&mut *tx)
        .await?;
        let mut written = 0;
        let mut text = Vec::with_capacity(COPY_CHUNK.min(persons.len()) * 200);
        for chunk in persons.chunks(COPY_CHUNK) {
            text.clear();
            for person in chunk {
                copy_row(&mut text, person);
            }
            let mut copy = tx.copy_in_raw("COPY persons_import FROM STDIN").await?;
            if let Err(error) = copy.send(text.as_slice()).await {
                let _ = copy.abort("the rows could not be sent").await;
                return Err(error.into());
            }
            copy.finish().await?;
            let result = sqlx::query(
                "INSERT INTO persons (resident_id, name, sex, birth_date, flow, registered_county, residence_county,
                                      township, village, marital_status, certificate_number, certificate_valid_until,
                                      certificate_status, children_count, contraception_status, contraception_date,
                                      pregnant, registered_since, updated_at)
                 SELECT *, now() FROM persons_import
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
            .execute(&mut *tx)
            .await?;
            written += result.rows_affected();
            sqlx::query("TRUNCATE persons_import").execute(&mut *tx).await?;
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

/// Rows per `COPY` and upsert statement of [`Store::upsert_persons`]: large enough that the
/// per-statement cost vanishes, small enough that the staging table stays in memory.
const COPY_CHUNK: usize = 20_000;

/// Appends `person` to `out` as one row of `COPY … FROM STDIN` text format, in the staging
/// table's column order.
fn copy_row(out: &mut Vec<u8>, person: &Person) {
    let status = &person.status;
    let date = |date: Option<chrono::NaiveDate>| date.map(|d| d.format("%Y-%m-%d").to_string());
    let fields: [Option<String>; 18] = [
        Some(person.resident_id.as_str().to_string()),
        Some(person.name.clone()),
        Some(person.resident_id.sex().as_str().to_string()),
        Some(person.resident_id.birth_date().format("%Y-%m-%d").to_string()),
        Some(person.flow.as_str().to_string()),
        Some(person.registered_county.as_str().to_string()),
        Some(person.residence_county.as_str().to_string()),
        status.township.map(|t| t.as_str().to_string()),
        status.village.map(|v| v.as_str().to_string()),
        status.marital_status.map(|m| m.as_str().to_string()),
        status.certificate_number.clone(),
        date(status.certificate_valid_until),
        status.certificate_status.map(|s| s.as_str().to_string()),
        status.children_count.map(|c| c.to_string()),
        status.contraception_status.map(|s| s.as_str().to_string()),
        date(status.contraception_date),
        status.pregnant.map(|p| if p { "t" } else { "f" }.to_string()),
        date(status.registered_since),
    ];
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(b'\t');
        }
        match field {
            None => out.extend_from_slice(b"\\N"),
            Some(value) => copy_escape(out, value),
        }
    }
    out.push(b'\n');
}

/// `value` escaped for `COPY` text format: backslash, tab, newline and carriage return.
fn copy_escape(out: &mut Vec<u8>, value: &str) {
    for &byte in value.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

/// The persons with the given ID numbers, read inside the caller's transaction. A registry is
/// only ever looked up by ID: a certificate number finds no one (see
/// [`answer_from_registry`](crate::domain::person::answer_from_registry)).
pub(crate) async fn persons_by_id_in(
    connection: &mut sqlx::PgConnection,
    resident_ids: &[String],
) -> Result<Vec<Person>, StoreError> {
    let rows: Vec<PersonRow> = sqlx::query_as(&persons_by_id_sql())
        .bind(resident_ids)
        .fetch_all(connection)
        .await?;
    rows.into_iter().map(PersonRow::into_domain).collect()
}

/// The answer's lookup ([`persons_by_id_in`]): $1 the ID numbers.
pub(super) fn persons_by_id_sql() -> String {
    format!("SELECT {PERSON_COLUMNS} FROM persons WHERE resident_id = ANY($1)")
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

#[cfg(test)]
mod tests {
    use super::copy_escape;

    #[test]
    fn copy_text_escapes_what_would_end_a_field_or_row() {
        let mut out = Vec::new();
        copy_escape(&mut out, "a\tb\nc\rd\\e 张三 \\N");
        assert_eq!(out, "a\\tb\\nc\\rd\\\\e 张三 \\\\N".as_bytes());
    }
}
