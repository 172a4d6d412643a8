//! Agreement versions as installed on this node (each version's canonical hash and original
//! text, whether the peer holds it, whether it was retired) and what each peer last said about
//! itself.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::audit::{OperatorAccess, append_operator_access_in};
use super::{Store, StoreError, parsed};
use crate::domain::agreement::VersionState;
use crate::domain::division::CountyCode;
use crate::domain::peer_status::ClockReading;

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
    /// Whether the peer holds it, from its last status; `None` until it has said (or for a
    /// version not installed yet).
    pub held_by_peer: Option<bool>,
    /// When an operator retired it here.
    pub retired_at: Option<DateTime<Utc>>,
    /// Whether every party's signature verified when it was applied.
    pub signed_by_all: bool,
}

/// One county's signature on an installed version, as verified when the version was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSignature {
    /// The county the signature states.
    pub signer_county: CountyCode,
    /// SHA-256 of the signer's certificate (DER), hex; empty when it could not be read.
    pub cert_fingerprint: String,
    /// When it was signed, as signed.
    pub signed_at: DateTime<Utc>,
    /// When this node verified it.
    pub verified_at: DateTime<Utc>,
    /// [`SIGNATURE_VERIFIED`], or why the signature was refused.
    pub outcome: String,
}

/// The outcome recorded for a signature that verified.
pub const SIGNATURE_VERIFIED: &str = "verified";

impl StoredSignature {
    /// Whether it verified.
    pub fn verified(&self) -> bool {
        self.outcome == SIGNATURE_VERIFIED
    }
}

impl StoredAgreement {
    /// What this node knows of the version besides its terms.
    pub fn state(&self) -> VersionState {
        VersionState {
            retired: self.retired_at.is_some(),
            held_by_peer: self.held_by_peer,
            unsigned: !self.signed_by_all,
        }
    }
}

/// The `NOTIFY` channel on which a replica announces that the agreements changed.
pub const AGREEMENTS_CHANGED: &str = "hancha_agreements";

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

    /// Records an agreement version with its signatures as verified now, in one transaction;
    /// installing the same version (same hash) again changes nothing, except that a version
    /// installed without every party's signature takes the text and signatures of a copy that
    /// has them. Returns whether the version was new.
    pub async fn install_agreement(
        &self,
        agreement: &StoredAgreement,
        signatures: &[StoredSignature],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let result = sqlx::query(
            "INSERT INTO agreements (agreement_id, version, hash, peer_county, valid_from, valid_until, source_text,
                                     signed_by_all)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (agreement_id, hash) DO NOTHING",
        )
        .bind(&agreement.agreement_id)
        .bind(agreement.version)
        .bind(&agreement.hash)
        .bind(agreement.peer_county.as_str())
        .bind(agreement.valid_from)
        .bind(agreement.valid_until)
        .bind(&agreement.source_text)
        .bind(agreement.signed_by_all)
        .execute(&mut *tx)
        .await?;
        let new = result.rows_affected() == 1;
        let newly_signed = !new
            && agreement.signed_by_all
            && sqlx::query(
                "UPDATE agreements SET signed_by_all = true, source_text = $3
                 WHERE agreement_id = $1 AND hash = $2 AND NOT signed_by_all",
            )
            .bind(&agreement.agreement_id)
            .bind(&agreement.hash)
            .bind(&agreement.source_text)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        if new || newly_signed {
            for signature in signatures {
                sqlx::query(
                    "INSERT INTO agreement_signatures (agreement_id, hash, signer_county, cert_fingerprint,
                                                       signed_at, verified_at, outcome)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&agreement.agreement_id)
                .bind(&agreement.hash)
                .bind(signature.signer_county.as_str())
                .bind(&signature.cert_fingerprint)
                .bind(signature.signed_at)
                .bind(signature.verified_at)
                .bind(&signature.outcome)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(AGREEMENTS_CHANGED)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Whether the version `hash` of agreement `id` is installed signed by every party; `None`
    /// when it is not installed.
    pub async fn agreement_signed_by_all(&self, id: &str, hash: &str) -> Result<Option<bool>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT signed_by_all FROM agreements WHERE agreement_id = $1 AND hash = $2")
                .bind(id)
                .bind(hash)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The signatures recorded for the version `hash` of agreement `id`, oldest first.
    pub async fn agreement_signatures(
        &self,
        id: &str,
        hash: &str,
    ) -> Result<Vec<StoredSignature>, StoreError> {
        let rows: Vec<SignatureRow> = sqlx::query_as(
            "SELECT signer_county, cert_fingerprint, signed_at, verified_at, outcome
             FROM agreement_signatures WHERE agreement_id = $1 AND hash = $2
             ORDER BY signed_at, signer_county",
        )
        .bind(id)
        .bind(hash)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(StoredSignature {
                    signer_county: parsed(&row.signer_county)?,
                    cert_fingerprint: row.cert_fingerprint,
                    signed_at: row.signed_at,
                    verified_at: row.verified_at,
                    outcome: row.outcome,
                })
            })
            .collect()
    }

    /// A digest of every installed version and what is known of it: when it differs from the
    /// last one a replica saw, another replica changed the agreements (the periodic check
    /// behind `NOTIFY`, which a dropped connection can miss).
    pub async fn agreements_fingerprint(&self) -> Result<String, StoreError> {
        let fingerprint: Option<String> = sqlx::query_scalar(
            "SELECT md5(string_agg(hash || ':' || coalesce(held_by_peer::text, '?') || ':' ||
                                   coalesce(retired_at::text, '-') || ':' || signed_by_all::text,
                                   ',' ORDER BY hash))
             FROM agreements",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(fingerprint.unwrap_or_default())
    }

    /// Every installed version, newest first within each agreement.
    pub async fn agreements(&self) -> Result<Vec<StoredAgreement>, StoreError> {
        let rows: Vec<AgreementRow> = sqlx::query_as(
            "SELECT agreement_id, version, hash, peer_county, valid_from, valid_until, source_text,
                    held_by_peer, retired_at, signed_by_all
             FROM agreements ORDER BY agreement_id, version DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(StoredAgreement {
                    agreement_id: row.agreement_id,
                    version: row.version,
                    hash: row.hash,
                    peer_county: parsed(&row.peer_county)?,
                    valid_from: row.valid_from,
                    valid_until: row.valid_until,
                    source_text: row.source_text,
                    held_by_peer: row.held_by_peer,
                    retired_at: row.retired_at,
                    signed_by_all: row.signed_by_all,
                })
            })
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct SignatureRow {
    signer_county: String,
    cert_fingerprint: String,
    signed_at: DateTime<Utc>,
    verified_at: DateTime<Utc>,
    outcome: String,
}

#[derive(sqlx::FromRow)]
struct AgreementRow {
    agreement_id: String,
    version: i32,
    hash: String,
    peer_county: String,
    valid_from: NaiveDate,
    valid_until: NaiveDate,
    source_text: String,
    held_by_peer: Option<bool>,
    retired_at: Option<DateTime<Utc>>,
    signed_by_all: bool,
}

/// What a peer last said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatusRow {
    /// The peer.
    pub peer_county: CountyCode,
    /// When we last heard its status.
    pub checked_at: DateTime<Utc>,
    /// Its software version.
    pub software_version: String,
    /// Its clock minus ours, in milliseconds.
    pub clock_offset_ms: i64,
    /// The round trip that measured it, when we made the call.
    pub round_trip_ms: Option<i64>,
}

/// A version an operator retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retired {
    /// The other party.
    pub peer_county: CountyCode,
    /// When it was retired (the first time, for a version retired before).
    pub retired_at: DateTime<Utc>,
    /// Whether this call retired it (false: it was retired already).
    pub newly: bool,
}

impl Store {
    /// What this node knows of each installed version besides its terms, by canonical hash
    /// (`unsigned` when not every party's signature verified: whether that matters is the
    /// node's `require_signatures`).
    pub async fn agreement_states(&self) -> Result<HashMap<String, VersionState>, StoreError> {
        let rows: Vec<(String, bool, Option<bool>, bool)> = sqlx::query_as(
            "SELECT hash, retired_at IS NOT NULL, held_by_peer, signed_by_all FROM agreements",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hash, retired, held_by_peer, signed_by_all)| {
                (
                    hash,
                    VersionState {
                        retired,
                        held_by_peer,
                        unsigned: !signed_by_all,
                    },
                )
            })
            .collect())
    }

    /// Records `peer`'s status: which of our versions with it the peer holds (`held`, by hash:
    /// anything else it names matches no row), its software and its clock. When what the peer
    /// holds changed, every message held for a version mismatch with it is released at once
    /// (due now: it goes out under a version both hold, or is held again) and the other
    /// replicas are told, in the same transaction. Returns `None` when nothing changed,
    /// otherwise how many messages were released.
    pub async fn record_peer_status(
        &self,
        peer: CountyCode,
        held: &[String],
        software_version: &str,
        clock: ClockReading,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE agreements SET held_by_peer = (hash = ANY($2))
             WHERE peer_county = $1 AND held_by_peer IS DISTINCT FROM (hash = ANY($2))",
        )
        .bind(peer.as_str())
        .bind(held)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO peer_status (peer_county, checked_at, software_version, clock_offset_ms, round_trip_ms)
             VALUES ($1, now(), $2, $3, $4)
             ON CONFLICT (peer_county) DO UPDATE SET checked_at = now(), software_version = $2,
                 clock_offset_ms = $3, round_trip_ms = $4",
        )
        .bind(peer.as_str())
        .bind(software_version)
        .bind(clock.offset_ms)
        .bind(clock.round_trip_ms)
        .execute(&mut *tx)
        .await?;
        let released = if changed > 0 {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(AGREEMENTS_CHANGED)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE outbox SET held = false, next_attempt_at = now() WHERE peer_county = $1 AND held",
            )
            .bind(peer.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            0
        };
        tx.commit().await?;
        Ok((changed > 0).then_some(released))
    }

    /// The last status of every peer that has told us one.
    pub async fn peer_statuses(&self) -> Result<Vec<PeerStatusRow>, StoreError> {
        let rows: Vec<PeerStatusSql> = sqlx::query_as(
            "SELECT peer_county, checked_at, software_version, clock_offset_ms, round_trip_ms
             FROM peer_status ORDER BY peer_county",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(PeerStatusRow {
                    peer_county: parsed(&row.peer_county)?,
                    checked_at: row.checked_at,
                    software_version: row.software_version,
                    clock_offset_ms: row.clock_offset_ms,
                    round_trip_ms: row.round_trip_ms,
                })
            })
            .collect()
    }

    /// Takes version `version` of agreement `id` out of force, recording who did it (`audit`,
    /// whose principal is kept with the version too) in the same transaction; retiring a retired version changes nothing. `None`
    /// when no such version is installed.
    pub async fn retire_agreement(
        &self,
        id: &str,
        version: i32,
        audit: &OperatorAccess,
    ) -> Result<Option<Retired>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT peer_county, retired_at FROM agreements WHERE agreement_id = $1 AND version = $2 FOR UPDATE",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((peer_county, retired_at)) = row else {
            return Ok(None);
        };
        let retired = match retired_at {
            Some(retired_at) => Retired {
                peer_county: parsed(&peer_county)?,
                retired_at,
                newly: false,
            },
            None => {
                let retired_at: DateTime<Utc> = sqlx::query_scalar(
                    "UPDATE agreements SET retired_at = now(), retired_by = $3
                     WHERE agreement_id = $1 AND version = $2 RETURNING retired_at",
                )
                .bind(id)
                .bind(version)
                .bind(&audit.principal)
                .fetch_one(&mut *tx)
                .await?;
                append_operator_access_in(&mut tx, audit).await?;
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(AGREEMENTS_CHANGED)
                    .execute(&mut *tx)
                    .await?;
                Retired {
                    peer_county: parsed(&peer_county)?,
                    retired_at,
                    newly: true,
                }
            }
        };
        tx.commit().await?;
        Ok(Some(retired))
    }
}

#[derive(sqlx::FromRow)]
struct PeerStatusSql {
    peer_county: String,
    checked_at: DateTime<Utc>,
    software_version: String,
    clock_offset_ms: i64,
    round_trip_ms: Option<i64>,
}

impl Store {
    /// A connection listening on [`AGREEMENTS_CHANGED`]: every replica's announcement that the
    /// agreements changed arrives on it.
    pub async fn agreement_changes(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(self.pool()).await?;
        listener.listen(AGREEMENTS_CHANGED).await?;
        Ok(listener)
    }
}
