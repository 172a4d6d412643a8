//! The sequencer: positions for committed rows, in commit order, for any append-only table
//! several replicas write at once (the audit log; the event stream will be another).
//!
//! Identity values follow allocation, not commit: a row with a lower id may commit after one
//! with a higher id was already read. So the sequencer orders rows by the id of the transaction
//! that wrote them (a `written_by xid8 DEFAULT pg_current_xact_id()` column), then by row id,
//! and gives positions only to rows whose transaction is older than the oldest transaction
//! still running (`pg_snapshot_xmin` of the statement's own snapshot). Every such transaction
//! has ended, so every row it committed is visible and no row can later appear before the
//! cursor: nothing committed is ever skipped, and positions never change. A long transaction
//! holds sequencing back (not intake) until it ends.
//!
//! One replica sequences a stream at a time: it holds a transaction-scoped advisory lock named
//! after the stream, so a second replica finds it busy and does nothing. The caller stores what it
//! derives from the positions (the audit chain's hashes) in the same transaction, so the
//! cursor and the derived rows commit together.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};

use super::StoreError;

/// A table the sequencer orders: it has `id bigint` and `written_by xid8` columns and an index
/// on `(written_by, id)`, and a row in `sequencer_cursors` named `name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// The cursor's name.
    pub name: &'static str,
    /// The table (a fixed identifier: never from input).
    pub table: &'static str,
    /// The columns read with each row, `id` among them (fixed identifiers: never from input):
    /// the caller gets the rows it sequences in the same statement, not by reading them again.
    pub columns: &'static str,
}

/// The audit log, with the columns the chain binds.
pub const AUDIT_LOG: Stream = Stream {
    name: "audit_log",
    table: "audit_log",
    columns: "id, at, direction, outcome, peer_county, message_id, kind, agreement_id, \
              agreement_hash, reason, principal, principal_scope, action",
};

/// One row given a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequenced<T> {
    /// Its position (1 for the first row ever).
    pub position: i64,
    /// The row's id.
    pub row_id: i64,
    /// The row's [`Stream::columns`].
    pub row: T,
}

/// Gives positions to at most `limit` committed rows of `stream` past its cursor, and moves the
/// cursor past them, inside the caller's transaction `tx`; each comes with its
/// [`Stream::columns`] read as `T`. `None` when another replica holds the cursor (it is
/// sequencing now).
pub async fn next_batch<T>(
    tx: &mut PgConnection,
    stream: Stream,
    limit: i64,
) -> Result<Option<Vec<Sequenced<T>>>, StoreError>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    // one sequencer per stream at a time: a transaction-scoped advisory lock, taken or given
    // up at once; the cursor is read after it, by a statement of its own, so it sees what the
    // previous holder committed
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('hancha sequencer ' || $1))")
            .bind(stream.name)
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Ok(None);
    }
    let (last_position, last_xid, last_id) = cursor(&mut *tx, stream).await?;
    // the visibility snapshot and the xmin come from the same statement; the transaction id
    // is read as text under another name, so that ORDER BY sorts by the id, not by its text
    let rows: Vec<PgRow> = sqlx::query(&format!(
        "SELECT {columns}, written_by::text AS sequencer_written_by FROM {table}
         WHERE written_by < pg_snapshot_xmin(pg_current_snapshot())
           AND (written_by, id) > ($1::xid8, $2)
         ORDER BY written_by, id LIMIT $3",
        columns = stream.columns,
        table = stream.table
    ))
    .bind(&last_xid)
    .bind(last_id)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last_row) = rows.last() else {
        return Ok(Some(Vec::new()));
    };
    let last_row_xid: String = last_row.try_get("sequencer_written_by")?;
    let last_row_id: i64 = last_row.try_get("id")?;
    let sequenced = rows
        .iter()
        .zip(last_position + 1..)
        .map(|(row, position)| {
            Ok(Sequenced {
                position,
                row_id: row.try_get("id")?,
                row: T::from_row(row)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    sqlx::query(
        "UPDATE sequencer_cursors SET next_position = $2, last_xid = $3::xid8, last_id = $4
         WHERE stream = $1",
    )
    .bind(stream.name)
    .bind(last_position + 1 + sequenced.len() as i64)
    .bind(&last_row_xid)
    .bind(last_row_id)
    .execute(&mut *tx)
    .await?;
    Ok(Some(sequenced))
}

/// Where a stream's cursor stands: the last position given, and the `(written_by, id)` of the
/// last row given one (as text).
pub async fn cursor(connection: &mut PgConnection, stream: Stream) -> Result<(i64, String, i64), StoreError> {
    let (next_position, last_xid, last_id): (i64, String, i64) = sqlx::query_as(
        "SELECT next_position, last_xid::text, last_id FROM sequencer_cursors WHERE stream = $1",
    )
    .bind(stream.name)
    .fetch_one(connection)
    .await?;
    Ok((next_position - 1, last_xid, last_id))
}
