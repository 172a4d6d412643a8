//! The audit chain as stored: sealing committed records (positions from the
//! [`sequencer`](super::sequencer), hashes from [`crate::domain::audit_chain`]), checkpoints and
//! resume statements, and reading it back to verify or to extend a peer's checkpoint.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::sequencer::{self, AUDIT_LOG};
use super::{Store, StoreError, Work};
use crate::domain::audit_chain::{
    AuditFields, ChainHash, ChainPoint, Checkpoint, ENCODING_V1_NUMBER, ResumeStatement, Signature, Signed,
};
use crate::domain::audit_verify::ChainEntry;

/// What one sealing step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sealing {
    /// Another replica is sealing now.
    Busy,
    /// Sealed this many records; the chain reaches `head` (`None` while it is empty).
    Sealed {
        /// Records sealed in this step.
        records: usize,
        /// Where the chain stands now.
        head: Option<ChainPoint>,
        /// The checkpoint stored with this step, if one was due.
        checkpoint: Option<ChainPoint>,
    },
}

/// Where the newest stored checkpoint stands, for deciding whether another is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointMark {
    /// Its chain position.
    pub position: u64,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
}

impl Store {
    /// Seals at most `limit` committed audit records, in commit order, in one transaction.
    ///
    /// In the same transaction, `checkpoint` is shown the end of the chain and the newest
    /// checkpoint stored; a checkpoint it returns (signed, when one is due) is stored with the
    /// records it covers: one commit per batch, and no checkpoint ever ahead of its chain.
    pub async fn seal_audit(
        &self,
        limit: i64,
        checkpoint: &mut (dyn FnMut(ChainPoint, Option<CheckpointMark>) -> Option<Signed<Checkpoint>> + Send),
    ) -> Result<Sealing, StoreError> {
        let mut tx = self.pool().begin().await?;
        self.limit(&mut tx, Work::Bulk).await?;
        let Some(batch) = sequencer::next_batch::<FieldsRow>(&mut tx, AUDIT_LOG, limit).await? else {
            return Ok(Sealing::Busy);
        };
        let last = last_point(&mut tx).await?;
        let records = batch.len();
        let end = match batch.first() {
            None => last,
            Some(first) => {
                let previous = last.unwrap_or(ChainPoint {
                    position: 0,
                    head: ChainHash::GENESIS,
                });
                if first.position != previous.position as i64 + 1 {
                    return Err(StoreError::Corrupt(format!(
                        "the sequencer gives position {} but the chain ends at {}",
                        first.position, previous.position
                    )));
                }
                Some(append(&mut tx, previous, batch).await?)
            }
        };
        let mut stored = None;
        if let Some(end) = end {
            let mark: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
                "SELECT position, signed_at FROM audit_checkpoints ORDER BY position DESC LIMIT 1",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let mark = mark.map(|(position, signed_at)| CheckpointMark {
                position: position as u64,
                signed_at,
            });
            if let Some(signed) = checkpoint(end, mark) {
                insert_checkpoint(&mut tx, &signed).await?;
                stored = Some(signed.body.point);
            }
        }
        tx.commit().await?;
        Ok(Sealing::Sealed {
            records,
            head: end,
            checkpoint: stored,
        })
    }

    /// Where the chain ends (`None` while nothing is sealed).
    pub async fn audit_chain_end(&self) -> Result<Option<ChainPoint>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        last_point(&mut connection).await
    }

    /// The head at `position`, if the chain has it.
    pub async fn audit_head_at(&self, position: u64) -> Result<Option<ChainHash>, StoreError> {
        if position == 0 {
            return Ok(None);
        }
        let blocks = blocks_over(self.pool(), position - 1, position).await?;
        let Some(block) = blocks.first() else {
            return Ok(None);
        };
        if block.last_position as u64 == position {
            return hash(&block.head).map(Some);
        }
        let mut head = hash(&block.head_before)?;
        for leaf in block.leaves_over(block.first_position as u64 - 1, position)? {
            head = head.then(&leaf);
        }
        Ok(Some(head))
    }

    /// The leaves at positions `after + 1 ..= to`, in order.
    pub async fn audit_leaves(&self, after: u64, to: u64) -> Result<Vec<ChainHash>, StoreError> {
        let mut leaves = Vec::new();
        for block in blocks_over(self.pool(), after, to).await? {
            leaves.extend(block.leaves_over(after, to)?);
        }
        Ok(leaves)
    }

    /// The chain's positions `after + 1 ..= to` that it has, each with the record it binds as it
    /// is now (none when the record is gone).
    pub async fn audit_chain_page(&self, after: u64, to: u64) -> Result<Vec<ChainEntry>, StoreError> {
        let rows: Vec<ChainRow> = sqlx::query_as(
            "SELECT c.position, c.audit_id, c.encoding, c.leaf,
                    CASE WHEN c.position = b.first_position THEN b.head_before END AS head_before,
                    CASE WHEN c.position = b.last_position THEN b.head END AS head,
                    a.id AS record_id, a.at,
                    a.direction, a.outcome, a.peer_county, a.message_id, a.kind, a.agreement_id,
                    a.agreement_hash, a.reason, a.principal, a.principal_scope, a.action
             FROM audit_chain b
             CROSS JOIN LATERAL (
                 SELECT b.first_position + u.ord - 1 AS position, u.audit_id, b.encoding,
                        substring(b.leaves FROM ((u.ord - 1) * 32 + 1)::int FOR 32) AS leaf
                 FROM unnest(b.audit_ids) WITH ORDINALITY AS u(audit_id, ord)
             ) c
             LEFT JOIN audit_log a ON a.id = c.audit_id
             WHERE b.first_position >= (SELECT coalesce(max(first_position), 0) FROM audit_chain
                                        WHERE first_position <= $1 + 1)
               AND b.first_position <= $2 AND b.last_position > $1
               AND c.position > $1 AND c.position <= $2
             ORDER BY c.position",
        )
        .bind(after as i64)
        .bind(to as i64)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ChainRow::entry).collect()
    }

    /// The first position of the first block starting after `position`.
    pub async fn audit_chain_block_after(&self, position: u64) -> Result<Option<u64>, StoreError> {
        let first: Option<i64> =
            sqlx::query_scalar("SELECT min(first_position) FROM audit_chain WHERE first_position > $1")
                .bind(position as i64)
                .fetch_one(self.pool())
                .await?;
        Ok(first.map(|first| first as u64))
    }

    /// The checkpoints' positions and heads, in order (for checking them against the chain).
    pub async fn audit_checkpoint_heads(&self) -> Result<Vec<ChainPoint>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT position, head FROM audit_checkpoints ORDER BY position")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(position, head)| {
                Ok(ChainPoint {
                    position: position as u64,
                    head: hash(&head)?,
                })
            })
            .collect()
    }

    /// A record bound at more than one position (only a hand-made chain has one).
    pub async fn audit_record_chained_twice(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT audit_id FROM audit_chain_positions GROUP BY audit_id HAVING count(*) > 1
             ORDER BY audit_id LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records the sequencer has passed that are not in the chain: put into the sealed part of
    /// the log behind the sealer's back. The lowest ids first, at most `limit`.
    pub async fn audit_records_outside_chain(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        let (_, last_xid, last_id) = sequencer::cursor(&mut connection, AUDIT_LOG).await?;
        Ok(sqlx::query_scalar(
            "SELECT a.id FROM audit_log a
             WHERE (a.written_by, a.id) <= ($1::xid8, $2)
               AND NOT EXISTS (SELECT 1 FROM audit_chain_positions c WHERE c.audit_id = a.id)
             ORDER BY a.id LIMIT $3",
        )
        .bind(&last_xid)
        .bind(last_id)
        .bind(limit)
        .fetch_all(&mut *connection)
        .await?)
    }

    /// The lowest id of an unsealed record that claims to be written by a transaction that has
    /// not started yet (its `written_by` put in by hand, at or past the next transaction id):
    /// the sequencer would wait for it forever, so it would stay outside the chain.
    pub async fn audit_record_from_the_future(&self) -> Result<Option<i64>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        let (_, last_xid, last_id) = sequencer::cursor(&mut connection, AUDIT_LOG).await?;
        Ok(sqlx::query_scalar(
            "SELECT id FROM audit_log
             WHERE (written_by, id) > ($1::xid8, $2)
               AND written_by >= pg_snapshot_xmax(pg_current_snapshot())
             ORDER BY id LIMIT 1",
        )
        .bind(&last_xid)
        .bind(last_id)
        .fetch_optional(&mut *connection)
        .await?)
    }

    /// Committed records not yet sealed, and the age in seconds of the oldest of them.
    pub async fn audit_unsealed(&self) -> Result<(i64, f64), StoreError> {
        let mut connection = self.pool().acquire().await?;
        let (_, last_xid, last_id) = sequencer::cursor(&mut connection, AUDIT_LOG).await?;
        let (count, oldest): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(at))::float8 FROM audit_log
             WHERE (written_by, id) > ($1::xid8, $2)",
        )
        .bind(&last_xid)
        .bind(last_id)
        .fetch_one(&mut *connection)
        .await?;
        Ok((count, oldest.unwrap_or(0.0).max(0.0)))
    }

    /// Stores a signed checkpoint; one already at that position stays (another replica made
    /// the same one).
    pub async fn add_audit_checkpoint(&self, checkpoint: &Signed<Checkpoint>) -> Result<(), StoreError> {
        let mut connection = self.pool().acquire().await?;
        insert_checkpoint(&mut connection, checkpoint).await
    }

    /// The newest checkpoint at a position of at most `at_most` (any, when `None`).
    pub async fn audit_checkpoint(
        &self,
        at_most: Option<u64>,
    ) -> Result<Option<Signed<Checkpoint>>, StoreError> {
        let row: Option<CheckpointRow> = sqlx::query_as(
            "SELECT position, head, signed_at, county, scheme, signature, certificate
             FROM audit_checkpoints WHERE position <= $1 ORDER BY position DESC LIMIT 1",
        )
        .bind(at_most.map_or(i64::MAX, |p| p as i64))
        .fetch_optional(self.pool())
        .await?;
        row.map(CheckpointRow::signed).transpose()
    }

    /// The oldest checkpoint after `position`.
    pub async fn audit_checkpoint_after(
        &self,
        position: u64,
    ) -> Result<Option<Signed<Checkpoint>>, StoreError> {
        let row: Option<CheckpointRow> = sqlx::query_as(
            "SELECT position, head, signed_at, county, scheme, signature, certificate
             FROM audit_checkpoints WHERE position > $1 ORDER BY position LIMIT 1",
        )
        .bind(position as i64)
        .fetch_optional(self.pool())
        .await?;
        row.map(CheckpointRow::signed).transpose()
    }

    /// Stores a signed resume statement with an audit record of it, in one transaction.
    pub async fn add_audit_resume(
        &self,
        resume: &Signed<ResumeStatement>,
        principal: &str,
    ) -> Result<(), StoreError> {
        let body = &resume.body;
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO audit_resumes (from_position, from_head, signed_at, county, reason, scheme, signature, certificate)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(body.from.position as i64)
        .bind(body.from.head.0.to_vec())
        .bind(body.signed_at)
        .bind(&body.county)
        .bind(&body.reason)
        .bind(&resume.signature.scheme)
        .bind(&resume.signature.bytes)
        .bind(&resume.signature.certificate)
        .execute(&mut *tx)
        .await?;
        super::audit::append_operator_access_in(
            &mut tx,
            &super::audit::OperatorAccess {
                principal: principal.to_string(),
                scope: format!("county:{}", body.county),
                action: "audit_resume".into(),
                outcome: "resumed".into(),
                reason: Some(format!(
                    "chain resumed from checkpoint {} (head {}): {}",
                    body.from.position,
                    body.from.head.hex(),
                    body.reason
                )),
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest resume statement, if the chain was ever rewound.
    pub async fn latest_audit_resume(&self) -> Result<Option<Signed<ResumeStatement>>, StoreError> {
        let row: Option<ResumeRow> = sqlx::query_as(
            "SELECT from_position, from_head, signed_at, county, reason, scheme, signature, certificate
             FROM audit_resumes ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Signed {
                body: ResumeStatement {
                    county: row.county,
                    from: ChainPoint {
                        position: row.from_position as u64,
                        head: hash(&row.from_head)?,
                    },
                    signed_at: row.signed_at,
                    reason: row.reason,
                },
                signature: Signature {
                    scheme: row.scheme,
                    bytes: row.signature,
                    certificate: row.certificate,
                },
            })
        })
        .transpose()
    }
}

/// Binds `batch` (positions following `previous`) into the chain; where it ends.
async fn append(
    connection: &mut sqlx::PgConnection,
    previous: ChainPoint,
    batch: Vec<sequencer::Sequenced<FieldsRow>>,
) -> Result<ChainPoint, StoreError> {
    let records = batch.len();
    let mut head = previous.head;
    let mut ids = Vec::with_capacity(records);
    let mut leaves = Vec::with_capacity(records * 32);
    for sequenced in batch {
        let leaf = AuditFields::from(sequenced.row).leaf_v1();
        head = head.then(&leaf);
        ids.push(sequenced.row_id);
        leaves.extend_from_slice(&leaf.0);
    }
    let end = ChainPoint {
        position: previous.position + records as u64,
        head,
    };
    sqlx::query(
        "INSERT INTO audit_chain (first_position, last_position, encoding, audit_ids, leaves, head_before, head)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(previous.position as i64 + 1)
    .bind(end.position as i64)
    .bind(ENCODING_V1_NUMBER)
    .bind(&ids)
    .bind(&leaves)
    .bind(previous.head.0.to_vec())
    .bind(head.0.to_vec())
    .execute(connection)
    .await?;
    Ok(end)
}

/// Stores a signed checkpoint; one already at that position stays.
async fn insert_checkpoint(
    connection: &mut sqlx::PgConnection,
    checkpoint: &Signed<Checkpoint>,
) -> Result<(), StoreError> {
    let body = &checkpoint.body;
    sqlx::query(
        "INSERT INTO audit_checkpoints (position, head, signed_at, county, scheme, signature, certificate)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (position) DO NOTHING",
    )
    .bind(body.point.position as i64)
    .bind(body.point.head.0.to_vec())
    .bind(body.signed_at)
    .bind(&body.county)
    .bind(&checkpoint.signature.scheme)
    .bind(&checkpoint.signature.bytes)
    .bind(&checkpoint.signature.certificate)
    .execute(connection)
    .await?;
    Ok(())
}

/// The last chain position and its head.
async fn last_point(connection: &mut sqlx::PgConnection) -> Result<Option<ChainPoint>, StoreError> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT last_position, head FROM audit_chain ORDER BY first_position DESC LIMIT 1")
            .fetch_optional(connection)
            .await?;
    row.map(|(position, head)| {
        Ok(ChainPoint {
            position: position as u64,
            head: hash(&head)?,
        })
    })
    .transpose()
}

/// A stored hash; anything but 32 bytes means the database was changed outside the node.
pub(crate) fn hash(bytes: &[u8]) -> Result<ChainHash, StoreError> {
    ChainHash::from_slice(bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("a stored hash of {} bytes", bytes.len())))
}

#[derive(sqlx::FromRow)]
struct FieldsRow {
    id: i64,
    at: DateTime<Utc>,
    direction: String,
    outcome: String,
    peer_county: Option<String>,
    message_id: Option<Uuid>,
    kind: Option<String>,
    agreement_id: Option<String>,
    agreement_hash: Option<String>,
    reason: Option<String>,
    principal: Option<String>,
    principal_scope: Option<String>,
    action: Option<String>,
}

impl From<FieldsRow> for AuditFields {
    fn from(row: FieldsRow) -> AuditFields {
        AuditFields {
            id: row.id,
            at_micros: AuditFields::micros(row.at),
            direction: row.direction,
            outcome: row.outcome,
            peer_county: row.peer_county,
            message_id: row.message_id,
            kind: row.kind,
            agreement_id: row.agreement_id,
            agreement_hash: row.agreement_hash,
            reason: row.reason,
            principal: row.principal,
            principal_scope: row.principal_scope,
            action: row.action,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ChainRow {
    position: i64,
    audit_id: i64,
    encoding: i16,
    leaf: Vec<u8>,
    head_before: Option<Vec<u8>>,
    head: Option<Vec<u8>>,
    record_id: Option<i64>,
    at: Option<DateTime<Utc>>,
    direction: Option<String>,
    outcome: Option<String>,
    peer_county: Option<String>,
    message_id: Option<Uuid>,
    kind: Option<String>,
    agreement_id: Option<String>,
    agreement_hash: Option<String>,
    reason: Option<String>,
    principal: Option<String>,
    principal_scope: Option<String>,
    action: Option<String>,
}

impl ChainRow {
    fn entry(self) -> Result<ChainEntry, StoreError> {
        let record = match (self.record_id, self.at, self.direction, self.outcome) {
            (Some(id), Some(at), Some(direction), Some(outcome)) => Some(
                FieldsRow {
                    id,
                    at,
                    direction,
                    outcome,
                    peer_county: self.peer_county,
                    message_id: self.message_id,
                    kind: self.kind,
                    agreement_id: self.agreement_id,
                    agreement_hash: self.agreement_hash,
                    reason: self.reason,
                    principal: self.principal,
                    principal_scope: self.principal_scope,
                    action: self.action,
                }
                .into(),
            ),
            _ => None,
        };
        Ok(ChainEntry {
            position: self.position as u64,
            audit_id: self.audit_id,
            encoding: self.encoding,
            leaf: hash(&self.leaf)?,
            head_before: self.head_before.as_deref().map(hash).transpose()?,
            head: self.head.as_deref().map(hash).transpose()?,
            record,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CheckpointRow {
    pub(crate) position: i64,
    pub(crate) head: Vec<u8>,
    pub(crate) signed_at: DateTime<Utc>,
    pub(crate) county: String,
    pub(crate) scheme: String,
    pub(crate) signature: Vec<u8>,
    pub(crate) certificate: Vec<u8>,
}

impl CheckpointRow {
    pub(crate) fn signed(self) -> Result<Signed<Checkpoint>, StoreError> {
        Ok(Signed {
            body: Checkpoint {
                county: self.county,
                point: ChainPoint {
                    position: self.position as u64,
                    head: hash(&self.head)?,
                },
                signed_at: self.signed_at,
            },
            signature: Signature {
                scheme: self.scheme,
                bytes: self.signature,
                certificate: self.certificate,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
struct ResumeRow {
    from_position: i64,
    from_head: Vec<u8>,
    signed_at: DateTime<Utc>,
    county: String,
    reason: String,
    scheme: String,
    signature: Vec<u8>,
    certificate: Vec<u8>,
}

/// A block of the chain as stored: the positions of one sealing batch.
#[derive(sqlx::FromRow)]
struct BlockRow {
    first_position: i64,
    last_position: i64,
    leaves: Vec<u8>,
    head_before: Vec<u8>,
    head: Vec<u8>,
}

impl BlockRow {
    /// Its leaves at positions `after + 1 ..= to`.
    fn leaves_over(&self, after: u64, to: u64) -> Result<Vec<ChainHash>, StoreError> {
        let first = self.first_position as u64;
        let from = after.max(first - 1) - (first - 1);
        let upto = to.min(self.last_position as u64) - (first - 1);
        (from..upto)
            .map(|index| {
                let start = index as usize * 32;
                self.leaves
                    .get(start..start + 32)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "the audit chain block at position {first} holds fewer leaves than positions"
                        ))
                    })
                    .and_then(hash)
            })
            .collect()
    }
}

/// The blocks holding any of the positions `after + 1 ..= to`, in order.
async fn blocks_over(pool: &sqlx::PgPool, after: u64, to: u64) -> Result<Vec<BlockRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT first_position, last_position, leaves, head_before, head FROM audit_chain
         WHERE first_position >= (SELECT coalesce(max(first_position), 0) FROM audit_chain
                                  WHERE first_position <= $1 + 1)
           AND first_position <= $2 AND last_position > $1
         ORDER BY first_position",
    )
    .bind(after as i64)
    .bind(to as i64)
    .fetch_all(pool)
    .await?)
}
