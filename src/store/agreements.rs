//! Agreement versions as installed on this node: each version's canonical hash and original text.

use chrono::NaiveDate;

use super::{Store, StoreError, parsed};
use crate::domain::division::CountyCode;

/// One installed agreement version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAgreement {
    /// Stable id both counties use.
    pub agreement_id: String,
    /// Version number from the document.
    pub version: i32,
    /// Canonical SHA-256, hex.
    pub hash: String,
    /// The other party.
    pub peer_county: CountyCode,
    /// First day of validity.
    pub valid_from: NaiveDate,
    /// Last day of validity.
    pub valid_until: NaiveDate,
    /// The document as signed.
    pub source_text: String,
}

impl Store {
    /// The versions installed of agreement `id`, by number and hash: what
    /// [`admit`](crate::domain::agreement::admit) weighs a new version against.
    pub async fn installed_versions(
        &self,
        id: &str,
    ) -> Result<Vec<crate::domain::agreement::InstalledVersion>, StoreError> {
        let rows: Vec<(i32, String)> =
            sqlx::query_as("SELECT version, hash FROM agreements WHERE agreement_id = $1")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(version, hash)| crate::domain::agreement::InstalledVersion {
                version: u32::try_from(version).unwrap_or(0),
                hash,
            })
            .collect())
    }

    /// Records an agreement version; installing the same version (same hash) again changes
    /// nothing. Returns whether it was new.
    pub async fn install_agreement(&self, agreement: &StoredAgreement) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO agreements (agreement_id, version, hash, peer_county, valid_from, valid_until, source_text)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (agreement_id, hash) DO NOTHING",
        )
        .bind(&agreement.agreement_id)
        .bind(agreement.version)
        .bind(&agreement.hash)
        .bind(agreement.peer_county.as_str())
        .bind(agreement.valid_from)
        .bind(agreement.valid_until)
        .bind(&agreement.source_text)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Every installed version, newest first within each agreement.
    pub async fn agreements(&self) -> Result<Vec<StoredAgreement>, StoreError> {
        let rows: Vec<(String, i32, String, String, NaiveDate, NaiveDate, String)> = sqlx::query_as(
            "SELECT agreement_id, version, hash, peer_county, valid_from, valid_until, source_text
             FROM agreements ORDER BY agreement_id, version DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(
                |(agreement_id, version, hash, peer_county, valid_from, valid_until, source_text)| {
                    Ok(StoredAgreement {
                        agreement_id,
                        version,
                        hash,
                        peer_county: parsed(&peer_county)?,
                        valid_from,
                        valid_until,
                        source_text,
                    })
                },
            )
            .collect()
    }
}
