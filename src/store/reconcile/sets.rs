//! Reading the two sets: message tags (keyed, kept on the rows, made where missing) and
//! shared-person digests (computed where missing or made for other fields, then stored).

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use uuid::Uuid;

use crate::domain::division::CountyCode;
use crate::domain::division::TownshipCode;
use crate::domain::person::{Flow, Person};
use crate::domain::reconcile::{AskedBefore, MessageType};
use crate::store::outbound::corrupt;
use crate::store::registry::{PERSON_COLUMNS, PersonRow};
use crate::store::tags::INQUIRIES_BY_INDEX;
use crate::store::{Store, StoreError, Work};

/// One exchanged message's digest, as this side holds it.
#[derive(Clone, Debug)]
pub struct MessageDigest {
    /// Inquiry, confirmation, notice or feedback.
    pub message_type: MessageType,
    /// Its id.
    pub message_id: Uuid,
    /// Whether we wrote it (we asked, answered or notified).
    pub ours: bool,
    /// The keyed tag of its content (see migration 0008).
    pub digest: [u8; 32],
    /// Whether its personal data was erased at the end of the retention period: it can be
    /// compared but no longer delivered again.
    pub erased: bool,
}

/// Stale person digests computed and written back per statement.
const REFRESH_CHUNK: usize = 10_000;

/// One shared person's digest, as this side holds it (compact: a county holds up to 10⁶).
#[derive(Clone, Debug)]
pub struct PersonDigest {
    /// The ID number's 18 ASCII characters.
    pub resident_id: [u8; 18],
    /// Outflow (we are the origin) or inflow.
    pub flow: Flow,
    /// The office responsible here.
    pub township: Option<TownshipCode>,
    /// SHA-256 of the ID number and the compared fields.
    pub digest: [u8; 32],
}

/// A shared person's row: ID number, flow, township, digest (absent when cleared by a write).
type SharedPersonRow = (String, String, Option<String>, Option<Vec<u8>>);

/// The tags of the messages exchanged with peer `$1` under agreement `$2`, each marked as
/// ours or theirs and as erased or not ([`Store::message_digests`]).
pub(in crate::store) fn message_digests_sql() -> String {
    format!(
        "SELECT 'inquiry', message_id, direction = 'outbound', content_tag, erased_at IS NOT NULL
           FROM inquiries
          WHERE peer_county = $1 AND agreement_id = $2 AND state <> 'rejected' AND content_tag IS NOT NULL
            AND {INQUIRIES_BY_INDEX}
         UNION ALL
         SELECT 'confirmation', message_id, direction = 'outbound', content_tag, erased_at IS NOT NULL
           FROM confirmations
          WHERE peer_county = $1 AND agreement_id = $2 AND content_tag IS NOT NULL
         UNION ALL
         SELECT 'notice', message_id, direction = 'outbound', content_tag, erased_at IS NOT NULL
           FROM notices
          WHERE peer_county = $1 AND agreement_id = $2 AND content_tag IS NOT NULL AND reject_reason IS NULL
         UNION ALL
         SELECT 'feedback', message_id, direction = 'outbound', content_tag, erased_at IS NOT NULL
           FROM feedback
          WHERE peer_county = $1 AND agreement_id = $2 AND content_tag IS NOT NULL AND reject_reason IS NULL"
    )
}

/// [`Store::asked_before`]'s statement: $1 the peer, $2 since when. The open inquiries are found
/// through the work queue's index, the closed ones since `$2` through `inquiries_peer_closed`
/// (migration 0022); the two conditions together are "open, or since `$2`".
pub(in crate::store) const ASKED_BEFORE_SQL: &str = "SELECT i.subject_id,
        i.state IN ('queued', 'pending')
            OR EXISTS (SELECT 1 FROM reconcile_differences d WHERE d.inquiry_id = i.message_id),
        i.state = 'answered' AND i.outcome = 'not_found'
   FROM inquiries i
  WHERE i.direction = 'outbound' AND i.peer_county = $1 AND i.kind = 'outflow_status'
    AND i.erased_at IS NULL
    AND (i.state IN ('queued', 'pending')
         OR i.created_at >= $2 AND NOT (i.state = 'pending' OR i.direction = 'outbound' AND i.state = 'queued'))";

impl Store {
    /// The tags of every message exchanged with `peer` under agreement `agreement_id`
    /// (inquiries the peer refused never reached it and are left out). Messages without a tag
    /// are tagged first with `tag`; a message erased before it ever had one (its agreement was
    /// not reconciled then) cannot be compared and is left out.
    pub async fn message_digests(
        &self,
        peer: CountyCode,
        agreement_id: &str,
        tag: &(impl Fn(&[u8; 32]) -> [u8; 32] + ?Sized),
    ) -> Result<Vec<MessageDigest>, StoreError> {
        self.tag_untagged_messages(peer, agreement_id, tag).await?;
        let mut tx = self.pool().begin().await?;
        self.limit(&mut tx, Work::Bulk).await?;
        let rows: Vec<(String, Uuid, bool, Vec<u8>, bool)> = sqlx::query_as(&message_digests_sql())
            .bind(peer.as_str())
            .bind(agreement_id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|(message_type, message_id, ours, digest, erased)| {
                Ok(MessageDigest {
                    message_type: MessageType::parse(&message_type).ok_or_else(|| corrupt(&message_type))?,
                    message_id,
                    ours,
                    digest: digest
                        .as_slice()
                        .try_into()
                        .map_err(|_| corrupt("digest length"))?,
                    erased,
                })
            })
            .collect()
    }

    /// The digests of the persons shared with `peer`: our outflow persons living there and our
    /// inflow persons registered there. Digests missing (the person was written since) or made
    /// for other fields are computed first with `digest` and stored, so a run recomputes only
    /// what changed.
    pub async fn shared_person_digests(
        &self,
        peer: CountyCode,
        fields_key: &str,
        digest: impl Fn(&Person) -> [u8; 32],
    ) -> Result<Vec<PersonDigest>, StoreError> {
        const SHARED: &str =
            "((flow = 'outflow' AND residence_county = $1) OR (flow = 'inflow' AND registered_county = $1))";
        // Stale digests first, a chunk at a time in ID order, so memory stays bounded however
        // many a registry import cleared.
        let mut after = String::new();
        loop {
            let rows: Vec<PersonRow> = sqlx::query_as(&format!(
                "SELECT {PERSON_COLUMNS} FROM persons
                  WHERE {SHARED} AND (shared_digest IS NULL OR shared_digest_fields IS DISTINCT FROM $2)
                    AND resident_id > $3
                  ORDER BY resident_id LIMIT {REFRESH_CHUNK}"
            ))
            .bind(peer.as_str())
            .bind(fields_key)
            .bind(&after)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = rows.len().checked_sub(1) else {
                break;
            };
            let mut ids = Vec::with_capacity(rows.len());
            let mut digests = Vec::with_capacity(rows.len());
            let mut versions = Vec::with_capacity(rows.len());
            for (index, row) in rows.into_iter().enumerate() {
                versions.push(row.updated_at);
                let person = row.into_domain()?;
                digests.push(digest(&person).to_vec());
                if index == last {
                    after = person.resident_id.as_str().to_string();
                }
                ids.push(person.resident_id.as_str().to_string());
            }
            // A row written again meanwhile keeps its cleared digest for the next run.
            sqlx::query(
                "UPDATE persons SET shared_digest = t.digest, shared_digest_fields = $4
                   FROM UNNEST($1::text[], $2::bytea[], $3::timestamptz[]) AS t(id, digest, version)
                  WHERE resident_id = t.id AND updated_at = t.version",
            )
            .bind(&ids)
            .bind(&digests)
            .bind(&versions)
            .bind(fields_key)
            .execute(self.pool())
            .await?;
        }
        // Then every digest, converted as the rows arrive rather than held as text.
        let every_digest =
            format!("SELECT resident_id, flow, township, shared_digest FROM persons WHERE {SHARED}");
        let mut tx = self.pool().begin().await?;
        self.limit(&mut tx, Work::Bulk).await?;
        let mut rows = sqlx::query_as::<_, SharedPersonRow>(&every_digest)
            .bind(peer.as_str())
            .fetch(&mut *tx);
        let mut shared = Vec::new();
        while let Some((resident_id, flow, township, digest)) = rows.try_next().await? {
            // A digest cleared by a write since the refresh above: left for the next run.
            let Some(digest) = digest else { continue };
            shared.push(PersonDigest {
                resident_id: resident_id
                    .as_bytes()
                    .try_into()
                    .map_err(|_| corrupt("resident_id length"))?,
                flow: Flow::parse(&flow).ok_or_else(|| corrupt(&flow))?,
                township: township.map(|t| t.parse()).transpose().map_err(corrupt)?,
                digest: digest
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("digest length"))?,
            });
        }
        drop(rows);
        tx.commit().await?;
        Ok(shared)
    }

    /// The outflow inquiries to `peer` that make asking about a person again pointless: those
    /// waiting for an answer, and those since `since` that a reconciliation run opened or that
    /// the peer answered `not_found`.
    pub async fn asked_before(
        &self,
        peer: CountyCode,
        since: DateTime<Utc>,
    ) -> Result<AskedBefore, StoreError> {
        let rows: Vec<(String, bool, bool)> = sqlx::query_as(ASKED_BEFORE_SQL)
            .bind(peer.as_str())
            .bind(since)
            .fetch_all(self.pool())
            .await?;
        let mut asked = AskedBefore::default();
        for (subject, pending_or_reconciled, not_found) in rows {
            if pending_or_reconciled {
                asked.pending_or_reconciled.insert(subject);
            } else if not_found {
                asked.not_found.insert(subject);
            }
        }
        Ok(asked)
    }
}
