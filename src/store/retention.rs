//! Retention (PIPL Art. 19, 47): the personal data of an agreement's exchanges, erased once it is
//! older than the agreement's `retention_days`.
//!
//! What is erased, and how, is read from the one list of personal columns
//! ([`crate::store::personal`]): a message keeps its id, kind, state, times and the keyed tag of
//! its content (made first if it has none and the agreement's key is at hand), and loses its
//! subject and answer. Only closed messages are erased, measured from when they closed:
//!
//! - an inquiry once answered or refused, from its answer (or its creation, when refused),
//!   together with its answer; one still queued or waiting is kept, its purpose not achieved;
//! - a notice once settled, from when it settled: its receipt acknowledged and, when a
//!   feedback deadline was set (kinds that owe feedback, such as a birth), that deadline
//!   passed — the period runs from the later of the two. The node does not record feedback
//!   itself, so the deadline stands for it; a notice without a receipt is kept; its feedback is
//!   erased with it;
//! - nothing still owed to the peer (in the outbox);
//! - a reconciliation difference's ID number and township from the run that found it.
//!
//! Each step erases at most a batch per table in one transaction, rows locked with `SKIP
//! LOCKED`, so replicas sharing the database share the work and erase each row once; every
//! erased row is recorded in `erasures` (table, row, columns, agreement, period, when: never a
//! value), and the step writes one audit record with the counts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::AuditEntry;
use super::personal::{erased_columns, erasure_assignments};
use super::tags::{MESSAGE_TABLES, MessageTable, tag_messages_in};
use super::{Store, StoreError, audit_batch_in};

/// How many rows of each kind one step erased.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    /// Inquiries.
    pub inquiries: u64,
    /// Their answers.
    pub confirmations: u64,
    /// Notices.
    pub notices: u64,
    /// Feedback to those notices, erased with them.
    pub feedback: u64,
    /// Reconciliation differences that named a person.
    pub differences: u64,
}

impl Erased {
    /// Messages erased (inquiries, confirmations, notices and their feedback).
    pub fn messages(&self) -> u64 {
        self.inquiries + self.confirmations + self.notices + self.feedback
    }

    /// Whether nothing was erased.
    pub fn is_empty(&self) -> bool {
        self.messages() + self.differences == 0
    }
}

/// What one step applies to one agreement.
pub struct RetentionRule<'a> {
    /// The agreement.
    pub agreement_id: &'a str,
    /// How many days its exchanges' personal data is kept.
    pub retention_days: u32,
    /// Its reconciliation key's message tag, when this node reconciles it: a message erased
    /// without a tag can no longer be compared with the peer.
    pub tag: Option<&'a MessageTagger<'a>>,
}

/// Makes a message's keyed tag from its content digest.
pub type MessageTagger<'a> = dyn Fn(&[u8; 32]) -> [u8; 32] + Sync + 'a;

/// `MESSAGE_TABLES[i]` by name.
fn message_table(name: &str) -> MessageTable {
    MESSAGE_TABLES
        .into_iter()
        .find(|table| table.table == name)
        .expect("a message table")
}

impl Store {
    /// Erases at most `batch` rows of each kind under `rule` that are older than its period at
    /// `now`; returns how many.
    pub async fn erase_expired(
        &self,
        rule: &RetentionRule<'_>,
        now: DateTime<Utc>,
        batch: i64,
    ) -> Result<Erased, StoreError> {
        let cutoff = now - chrono::Duration::days(i64::from(rule.retention_days));
        let mut tx = self.pool().begin().await?;
        let inquiries: Vec<Uuid> = sqlx::query_scalar(
            "SELECT message_id FROM inquiries i
              WHERE agreement_id = $1 AND erased_at IS NULL AND state IN ('answered', 'rejected')
                AND coalesce(answered_at, created_at) < $2
                AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = i.message_id)
                AND NOT EXISTS (SELECT 1 FROM confirmations c JOIN outbox o ON o.message_id = c.message_id
                                 WHERE c.inquiry_id = i.message_id)
              ORDER BY coalesce(answered_at, created_at)
              LIMIT $3
              FOR UPDATE SKIP LOCKED",
        )
        .bind(rule.agreement_id)
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let confirmations: Vec<Uuid> = sqlx::query_scalar(
            "SELECT message_id FROM confirmations WHERE inquiry_id = ANY($1) AND erased_at IS NULL FOR UPDATE",
        )
        .bind(&inquiries)
        .fetch_all(&mut *tx)
        .await?;
        let notices: Vec<Uuid> = sqlx::query_scalar(
            "SELECT message_id FROM notices n
              WHERE agreement_id = $1 AND erased_at IS NULL
                AND acknowledged_at IS NOT NULL AND greatest(acknowledged_at, feedback_due_at) < $2
                AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = n.message_id)
              ORDER BY greatest(acknowledged_at, feedback_due_at)
              LIMIT $3
              FOR UPDATE SKIP LOCKED",
        )
        .bind(rule.agreement_id)
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let feedback: Vec<Uuid> = sqlx::query_scalar(
            "SELECT message_id FROM feedback f WHERE notice_id = ANY($1) AND erased_at IS NULL
                AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = f.message_id)
                FOR UPDATE",
        )
        .bind(&notices)
        .fetch_all(&mut *tx)
        .await?;
        let mut recorded: Vec<(&'static str, String)> = Vec::new();
        for (table, ids) in [
            ("inquiries", &inquiries),
            ("confirmations", &confirmations),
            ("notices", &notices),
            ("feedback", &feedback),
        ] {
            if ids.is_empty() {
                continue;
            }
            if let Some(tag) = rule.tag {
                tag_messages_in(&mut tx, message_table(table), ids, tag).await?;
            }
            sqlx::query(&format!(
                "UPDATE {table} SET {}, erased_at = $2 WHERE message_id = ANY($1)",
                erasure_assignments(table)
            ))
            .bind(ids)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            recorded.extend(ids.iter().map(|id| (table, id.to_string())));
        }
        if !notices.is_empty() {
            // an operator's note on a notice (why it was dismissed) goes with the notice's content
            sqlx::query(&format!(
                "UPDATE notice_effects SET {} WHERE message_id = ANY($1)",
                erasure_assignments("notice_effects")
            ))
            .bind(&notices)
            .execute(&mut *tx)
            .await?;
        }
        let differences: Vec<i64> = sqlx::query_scalar(
            "SELECT d.id FROM reconcile_differences d
               JOIN reconcile_runs r USING (run_id, set_name, role)
              WHERE r.agreement_id = $1 AND r.finished_at < $2
                AND (d.resident_id IS NOT NULL OR d.township IS NOT NULL)
              ORDER BY d.id
              LIMIT $3
              FOR UPDATE OF d SKIP LOCKED",
        )
        .bind(rule.agreement_id)
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        if !differences.is_empty() {
            sqlx::query(&format!(
                "UPDATE reconcile_differences SET {} WHERE id = ANY($1)",
                erasure_assignments("reconcile_differences")
            ))
            .bind(&differences)
            .execute(&mut *tx)
            .await?;
            recorded.extend(
                differences
                    .iter()
                    .map(|id| ("reconcile_differences", id.to_string())),
            );
        }
        let erased = Erased {
            inquiries: inquiries.len() as u64,
            confirmations: confirmations.len() as u64,
            notices: notices.len() as u64,
            feedback: feedback.len() as u64,
            differences: differences.len() as u64,
        };
        if erased.is_empty() {
            return Ok(erased);
        }
        let (tables, (keys, columns)): (Vec<&str>, (Vec<String>, Vec<String>)) = recorded
            .into_iter()
            .map(|(table, key)| (table, (key, erased_columns(table).join(","))))
            .unzip();
        sqlx::query(
            "INSERT INTO erasures (erased_at, table_name, row_key, columns, agreement_id, retention_days)
             SELECT $1::timestamptz, t.table_name, t.row_key, t.columns, $5::text, $6::integer
               FROM UNNEST($2::text[], $3::text[], $4::text[]) AS t(table_name, row_key, columns)",
        )
        .bind(now)
        .bind(&tables)
        .bind(&keys)
        .bind(&columns)
        .bind(rule.agreement_id)
        .bind(i32::try_from(rule.retention_days).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
        let reason = format!(
            "older than the {} days agreed: {} inquiries, {} answers, {} notices, {} feedback, {} reconciliation differences",
            rule.retention_days,
            erased.inquiries,
            erased.confirmations,
            erased.notices,
            erased.feedback,
            erased.differences
        );
        let entry = AuditEntry {
            direction: "local".into(),
            agreement_id: Some(rule.agreement_id.to_string()),
            outcome: "erased".into(),
            reason: Some(reason),
            ..AuditEntry::default()
        };
        audit_batch_in(&mut tx, std::slice::from_ref(&entry)).await?;
        tx.commit().await?;
        Ok(erased)
    }

    /// When the oldest exchange under agreement `agreement_id` whose personal data is still
    /// kept closed (an inquiry answered or refused, a notice settled), as [`Store::erase_expired`]
    /// measures it: the first to be erased once the retention period has passed. `None` when
    /// there is none.
    pub async fn oldest_kept_exchange(
        &self,
        agreement_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(closed) FROM (
                 SELECT min(coalesce(answered_at, created_at)) AS closed FROM inquiries
                  WHERE agreement_id = $1 AND erased_at IS NULL AND state IN ('answered', 'rejected')
                 UNION ALL
                 SELECT min(greatest(acknowledged_at, feedback_due_at)) FROM notices
                  WHERE agreement_id = $1 AND erased_at IS NULL AND acknowledged_at IS NOT NULL
             ) AS oldest",
        )
        .bind(agreement_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// The agreements under which some personal data is still kept: messages not yet erased,
    /// and reconciliation differences that still name a person. The retention worker erases
    /// under each of them, whether or not the agreement is still in force.
    pub async fn agreements_with_kept_data(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT agreement_id FROM inquiries WHERE erased_at IS NULL
             UNION SELECT agreement_id FROM notices WHERE erased_at IS NULL
             UNION SELECT r.agreement_id FROM reconcile_differences d
                     JOIN reconcile_runs r USING (run_id, set_name, role)
                    WHERE d.resident_id IS NOT NULL OR d.township IS NOT NULL
             ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// How many rows of `table` were erased so far (from the erasure records).
    pub async fn erasures_recorded(&self, table: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM erasures WHERE table_name = $1")
                .bind(table)
                .fetch_one(self.pool())
                .await?,
        )
    }
}
