//! Keyed content tags of the exchanged messages (migration 0008): made from a row's content
//! digest, computed by the database on demand and never stored, under the agreement's key, which
//! the node holds and the database never sees.
//!
//! A tag is made once, while the content is there: by the reconciliation snapshot for every
//! message without one, and by the retention worker for the rows it is about to erase.

use uuid::Uuid;

use super::outbound::corrupt;
use super::{Store, StoreError};
use crate::domain::division::CountyCode;

/// The four message tables, each with the SQL function of its content digest.
pub(crate) const MESSAGE_TABLES: [MessageTable; 4] = [
    MessageTable {
        table: "inquiries",
        content: "inquiry_content",
        of_a_peer: INQUIRIES_BY_INDEX,
    },
    MessageTable {
        table: "confirmations",
        content: "confirmation_content",
        of_a_peer: "true",
    },
    MessageTable {
        table: "notices",
        content: "notice_content",
        of_a_peer: "true",
    },
    MessageTable {
        table: "feedback",
        content: "feedback_content",
        of_a_peer: "true",
    },
];

/// A table of exchanged messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MessageTable {
    /// Its name.
    pub(crate) table: &'static str,
    /// The SQL function giving a row's content digest (migration 0008).
    pub(crate) content: &'static str,
    /// A condition true of every row, added where one peer's rows are read so that the planner
    /// finds them through the table's indexes (see [`INQUIRIES_BY_INDEX`]).
    pub(crate) of_a_peer: &'static str,
}

/// Every inquiry, in the terms of the indexes that hold them (migration 0022): a closed one
/// (answered or rejected, or any other than the open ones below: `inquiries_peer_closed`, by
/// peer and agreement) or an open one (the
/// work queue's `inquiries_inbound_pending_due` and `inquiries_outbound_open_due`). Always true;
/// a statement reading one peer's inquiries adds it so that the planner reads those three
/// indexes together rather than every inquiry of every peer.
pub(crate) const INQUIRIES_BY_INDEX: &str =
    "(NOT (state = 'pending' OR direction = 'outbound' AND state = 'queued')
      OR direction = 'inbound' AND state = 'pending'
      OR direction = 'outbound' AND state IN ('queued', 'pending'))";

/// Rows tagged per statement.
const TAG_CHUNK: i64 = 5_000;

/// Content digests read, tagged and written back: the row is written only if its content is
/// still the one the digest was made from.
async fn tag_rows_in(
    connection: &mut sqlx::PgConnection,
    table: MessageTable,
    rows: Vec<(Uuid, Vec<u8>)>,
    tag: &(impl Fn(&[u8; 32]) -> [u8; 32] + ?Sized),
) -> Result<usize, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut digests = Vec::with_capacity(rows.len());
    let mut tags = Vec::with_capacity(rows.len());
    for (id, digest) in rows {
        let digest: [u8; 32] = digest
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("content digest length"))?;
        ids.push(id);
        tags.push(tag(&digest).to_vec());
        digests.push(digest.to_vec());
    }
    let MessageTable { table, content, .. } = table;
    let written = sqlx::query(&format!(
        "UPDATE {table} m SET content_tag = t.tag
           FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[]) AS t(id, digest, tag)
          WHERE m.message_id = t.id AND m.content_tag IS NULL AND m.erased_at IS NULL
            AND {content}(m) = t.digest"
    ))
    .bind(&ids)
    .bind(&digests)
    .bind(&tags)
    .execute(&mut *connection)
    .await?;
    Ok(written.rows_affected() as usize)
}

/// Tags the rows `ids` of `table` that have no tag yet (within the caller's transaction, which
/// holds them locked).
pub(crate) async fn tag_messages_in(
    connection: &mut sqlx::PgConnection,
    table: MessageTable,
    ids: &[Uuid],
    tag: &(impl Fn(&[u8; 32]) -> [u8; 32] + ?Sized),
) -> Result<usize, StoreError> {
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(&format!(
        "SELECT message_id, {content}(m) FROM {table} m
          WHERE message_id = ANY($1) AND content_tag IS NULL AND erased_at IS NULL",
        content = table.content,
        table = table.table,
    ))
    .bind(ids)
    .fetch_all(&mut *connection)
    .await?;
    tag_rows_in(connection, table, rows, tag).await
}

impl Store {
    /// Tags every message exchanged with `peer` under `agreement_id` that has none yet (new
    /// since the last run, or its content changed), a chunk at a time; returns how many.
    pub async fn tag_untagged_messages(
        &self,
        peer: CountyCode,
        agreement_id: &str,
        tag: &(impl Fn(&[u8; 32]) -> [u8; 32] + ?Sized),
    ) -> Result<usize, StoreError> {
        let mut tagged = 0;
        for table in MESSAGE_TABLES {
            // In id order from where the last chunk stopped: a row whose content changes while
            // it is tagged is left for the next run rather than read again and again.
            let mut after = Uuid::nil();
            loop {
                let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(&format!(
                    "SELECT message_id, {content}(m) FROM {table} m
                      WHERE peer_county = $1 AND agreement_id = $2 AND content_tag IS NULL
                        AND erased_at IS NULL AND message_id > $3 AND {of_a_peer}
                      ORDER BY message_id LIMIT {TAG_CHUNK}",
                    content = table.content,
                    table = table.table,
                    of_a_peer = table.of_a_peer,
                ))
                .bind(peer.as_str())
                .bind(agreement_id)
                .bind(after)
                .fetch_all(self.pool())
                .await?;
                let Some(&(last, _)) = rows.last() else { break };
                after = last;
                let mut connection = self.pool().acquire().await?;
                tagged += tag_rows_in(&mut connection, table, rows, tag).await?;
            }
        }
        Ok(tagged)
    }
}
