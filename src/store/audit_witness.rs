//! What each peer showed us of its audit chain (the last checkpoint it proved, forks, rewinds),
//! and what it holds of ours.

use chrono::{DateTime, Utc};

use super::audit_chain::{CheckpointRow, hash};
use super::{Store, StoreError};
use crate::domain::audit_chain::{ChainPoint, Checkpoint, Held, Signed};
use crate::domain::division::CountyCode;

/// One peer's row, for `hancha audit peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerWitness {
    /// The peer.
    pub peer: String,
    /// Its checkpoint we hold.
    pub held: Option<Signed<Checkpoint>>,
    /// When we last accepted one.
    pub received_at: Option<DateTime<Utc>>,
    /// When we accepted its last resume statement (its signing time).
    pub resumed_at: Option<DateTime<Utc>>,
    /// When its history stopped extending what it showed before, and how.
    pub fork: Option<(DateTime<Utc>, String)>,
    /// Which checkpoint of ours it holds.
    pub holds_ours: Option<ChainPoint>,
    /// Since when its newest checkpoints came without proof, over how many exchanges in a row,
    /// and why the last one was not proven.
    pub unproven: Option<Unproven>,
}

/// A peer's checkpoints shown without the leaves that prove them, exchange after exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unproven {
    /// The first exchange of the streak.
    pub since: DateTime<Utc>,
    /// Exchanges in the streak.
    pub exchanges: u32,
    /// Why the last offer was not proven.
    pub detail: String,
}

impl Store {
    /// What we hold of `peer`'s chain.
    pub async fn held_peer_checkpoint(&self, peer: CountyCode) -> Result<Option<Held>, StoreError> {
        Ok(self
            .peer_witness(Some(peer))
            .await?
            .into_iter()
            .next()
            .and_then(|witness| {
                witness.held.map(|held| Held {
                    checkpoint: held.body,
                    resumed_at: witness.resumed_at,
                })
            }))
    }

    /// Holds `checkpoint` of `peer` from now on (it was proven to extend the one held, or is
    /// the first); `resumed_at` when a resume statement was accepted with it. Clears a fork.
    pub async fn hold_peer_checkpoint(
        &self,
        peer: CountyCode,
        checkpoint: &Signed<Checkpoint>,
        resumed_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let body = &checkpoint.body;
        sqlx::query(
            "INSERT INTO peer_audit_checkpoints AS p
                (peer_county, position, head, signed_at, scheme, signature, certificate, received_at, resumed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8)
             ON CONFLICT (peer_county) DO UPDATE SET position = $2, head = $3, signed_at = $4,
                scheme = $5, signature = $6, certificate = $7, received_at = now(),
                resumed_at = coalesce($8, p.resumed_at), fork_at = NULL, fork_detail = NULL,
                unproven_since = NULL, unproven_exchanges = 0, unproven_detail = NULL",
        )
        .bind(peer.as_str())
        .bind(body.point.position as i64)
        .bind(body.point.head.0.to_vec())
        .bind(body.signed_at)
        .bind(&checkpoint.signature.scheme)
        .bind(&checkpoint.signature.bytes)
        .bind(&checkpoint.signature.certificate)
        .bind(resumed_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that `peer`'s history no longer extends what it showed before; `true` when this
    /// is news (no fork was recorded since the last checkpoint we accepted).
    pub async fn record_peer_fork(&self, peer: CountyCode, detail: &str) -> Result<bool, StoreError> {
        let news: Option<bool> = sqlx::query_scalar(
            "INSERT INTO peer_audit_checkpoints AS p (peer_county, fork_at, fork_detail)
             VALUES ($1, now(), $2)
             ON CONFLICT (peer_county) DO UPDATE SET fork_at = coalesce(p.fork_at, now()), fork_detail = $2
             RETURNING fork_at = now()",
        )
        .bind(peer.as_str())
        .bind(detail)
        .fetch_optional(self.pool())
        .await?;
        Ok(news.unwrap_or(false))
    }

    /// Counts one more exchange in which `peer`'s newest checkpoint came without its proof;
    /// returns the streak (its start is kept from the first exchange).
    pub async fn record_peer_unproven(&self, peer: CountyCode, detail: &str) -> Result<Unproven, StoreError> {
        let (since, exchanges): (DateTime<Utc>, i32) = sqlx::query_as(
            "INSERT INTO peer_audit_checkpoints AS p
                (peer_county, unproven_since, unproven_exchanges, unproven_detail)
             VALUES ($1, now(), 1, $2)
             ON CONFLICT (peer_county) DO UPDATE SET
                unproven_since = coalesce(p.unproven_since, now()),
                unproven_exchanges = p.unproven_exchanges + 1, unproven_detail = $2
             RETURNING unproven_since, unproven_exchanges",
        )
        .bind(peer.as_str())
        .bind(detail)
        .fetch_one(self.pool())
        .await?;
        Ok(Unproven {
            since,
            exchanges: exchanges.max(0) as u32,
            detail: detail.to_owned(),
        })
    }

    /// Ends `peer`'s unproven streak (it showed the checkpoint we hold).
    pub async fn clear_peer_unproven(&self, peer: CountyCode) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE peer_audit_checkpoints SET unproven_since = NULL, unproven_exchanges = 0,
                unproven_detail = NULL WHERE peer_county = $1 AND unproven_since IS NOT NULL",
        )
        .bind(peer.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records which checkpoint of ours `peer` holds.
    pub async fn record_peer_holds_ours(
        &self,
        peer: CountyCode,
        point: ChainPoint,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO peer_audit_checkpoints (peer_county, holds_position, holds_head) VALUES ($1, $2, $3)
             ON CONFLICT (peer_county) DO UPDATE SET holds_position = $2, holds_head = $3",
        )
        .bind(peer.as_str())
        .bind(point.position as i64)
        .bind(point.head.0.to_vec())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every peer's row (or `peer`'s), by county.
    pub async fn peer_witness(&self, peer: Option<CountyCode>) -> Result<Vec<PeerWitness>, StoreError> {
        let rows: Vec<WitnessRow> = sqlx::query_as(
            "SELECT peer_county, position, head, signed_at, scheme, signature, certificate, received_at,
                    resumed_at, fork_at, fork_detail, holds_position, holds_head,
                    unproven_since, unproven_exchanges, unproven_detail
             FROM peer_audit_checkpoints WHERE $1::text IS NULL OR peer_county = $1 ORDER BY peer_county",
        )
        .bind(peer.map(|peer| peer.as_str().to_string()))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(WitnessRow::witness).collect()
    }
}

#[derive(sqlx::FromRow)]
struct WitnessRow {
    peer_county: String,
    position: Option<i64>,
    head: Option<Vec<u8>>,
    signed_at: Option<DateTime<Utc>>,
    scheme: Option<String>,
    signature: Option<Vec<u8>>,
    certificate: Option<Vec<u8>>,
    received_at: Option<DateTime<Utc>>,
    resumed_at: Option<DateTime<Utc>>,
    fork_at: Option<DateTime<Utc>>,
    fork_detail: Option<String>,
    holds_position: Option<i64>,
    holds_head: Option<Vec<u8>>,
    unproven_since: Option<DateTime<Utc>>,
    unproven_exchanges: i32,
    unproven_detail: Option<String>,
}

impl WitnessRow {
    fn witness(self) -> Result<PeerWitness, StoreError> {
        let held = match (
            self.position,
            self.head,
            self.signed_at,
            self.scheme,
            self.signature,
            self.certificate,
        ) {
            (
                Some(position),
                Some(head),
                Some(signed_at),
                Some(scheme),
                Some(signature),
                Some(certificate),
            ) => Some(
                CheckpointRow {
                    position,
                    head,
                    signed_at,
                    county: self.peer_county.clone(),
                    scheme,
                    signature,
                    certificate,
                }
                .signed()?,
            ),
            _ => None,
        };
        let holds_ours = match (self.holds_position, self.holds_head) {
            (Some(position), Some(head)) => Some(ChainPoint {
                position: position as u64,
                head: hash(&head)?,
            }),
            _ => None,
        };
        Ok(PeerWitness {
            peer: self.peer_county,
            held,
            received_at: self.received_at,
            resumed_at: self.resumed_at,
            fork: self.fork_at.zip(self.fork_detail),
            holds_ours,
            unproven: self.unproven_since.map(|since| Unproven {
                since,
                exchanges: self.unproven_exchanges.max(0) as u32,
                detail: self.unproven_detail.unwrap_or_default(),
            }),
        })
    }
}
