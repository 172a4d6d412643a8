//! The benchmark's own bookkeeping: after the run, both databases are counted, and every
//! inquiry must have been accepted once, answered once, with the outcome its subject calls for,
//! and its answer delivered once — otherwise the run fails and no figure is reported.
//!
//! The counting SQL lives here rather than in the store: it checks the store from outside.

use anyhow::bail;
use sqlx::PgPool;

use super::population::Expected;

/// What the asking county's database holds after a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AskerCounts {
    /// Our inquiries.
    pub inquiries: i64,
    /// Of which answered.
    pub answered: i64,
    /// Of which answered `found`.
    pub found: i64,
    /// Of which answered `not_found`.
    pub not_found: i64,
    /// Confirmations received.
    pub confirmations: i64,
    /// Inquiries with no confirmation stored.
    pub unconfirmed: i64,
    /// Outbox entries left.
    pub outbox: i64,
    /// Audit records of confirmations accepted (one per first delivery; repeats add none).
    pub confirmations_audited: i64,
}

/// What the answering county's database holds after a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ResponderCounts {
    /// Inquiries received.
    pub inquiries: i64,
    /// Of which answered.
    pub answered: i64,
    /// Of which answered `found`.
    pub found: i64,
    /// Of which answered `not_found`.
    pub not_found: i64,
    /// Confirmations written.
    pub confirmations: i64,
    /// Of which acknowledged by the asker.
    pub delivered: i64,
    /// Outbox entries left.
    pub outbox: i64,
    /// Audit records of inquiries accepted (one per first delivery; repeats add none).
    pub inquiries_audited: i64,
    /// Inquiries counted against the daily cap.
    pub daily_volume: i64,
}

/// Whether the asking node has nothing left to wait for: no outbox entry, and no inquiry of ours
/// accepted but unanswered. (An inquiry not yet accepted keeps its outbox entry.) Both through
/// an index, so that asking often costs the nodes' database next to nothing.
pub async fn asker_settled(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM inquiries WHERE state = 'pending' AND direction = 'outbound')
            AND NOT EXISTS (SELECT 1 FROM outbox WHERE peer_county > '' AND next_attempt_at > '-infinity')",
    )
    .fetch_one(pool)
    .await
}

/// Counts the asking county's database.
pub async fn asker_counts(pool: &PgPool) -> Result<AskerCounts, sqlx::Error> {
    sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM inquiries WHERE direction = 'outbound') AS inquiries,
           (SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered') AS answered,
           (SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND outcome = 'found') AS found,
           (SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND outcome = 'not_found') AS not_found,
           (SELECT count(*) FROM confirmations WHERE direction = 'inbound') AS confirmations,
           (SELECT count(*) FROM inquiries i WHERE i.direction = 'outbound'
               AND NOT EXISTS (SELECT 1 FROM confirmations c WHERE c.inquiry_id = i.message_id)) AS unconfirmed,
           (SELECT count(*) FROM outbox) AS outbox,
           (SELECT count(*) FROM audit_log
               WHERE direction = 'inbound' AND kind = 'confirmation' AND outcome = 'accepted') AS confirmations_audited",
    )
    .fetch_one(pool)
    .await
}

/// Counts the answering county's database.
pub async fn responder_counts(pool: &PgPool) -> Result<ResponderCounts, sqlx::Error> {
    sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM inquiries WHERE direction = 'inbound') AS inquiries,
           (SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND state = 'answered') AS answered,
           (SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND outcome = 'found') AS found,
           (SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND outcome = 'not_found') AS not_found,
           (SELECT count(*) FROM confirmations WHERE direction = 'outbound') AS confirmations,
           (SELECT count(*) FROM confirmations WHERE direction = 'outbound' AND delivered_at IS NOT NULL)
               AS delivered,
           (SELECT count(*) FROM outbox) AS outbox,
           (SELECT count(*) FROM audit_log
               WHERE direction = 'inbound' AND kind <> 'confirmation' AND outcome = 'accepted') AS inquiries_audited,
           (SELECT coalesce(sum(inquiries), 0)::bigint FROM daily_volume) AS daily_volume",
    )
    .fetch_one(pool)
    .await
}

/// Fails, naming every discrepancy, unless both sides show each inquiry answered exactly once
/// with the expected outcomes.
pub fn check(expected: Expected, asker: &AskerCounts, responder: &ResponderCounts) -> anyhow::Result<()> {
    let n = i64::try_from(expected.inquiries)?;
    let found = i64::try_from(expected.found)?;
    let not_found = i64::try_from(expected.not_found)?;
    let checks = [
        ("asker: inquiries sent", asker.inquiries, n),
        ("asker: inquiries answered", asker.answered, n),
        ("asker: answered found", asker.found, found),
        ("asker: answered not_found", asker.not_found, not_found),
        ("asker: confirmations stored", asker.confirmations, n),
        ("asker: inquiries without a confirmation", asker.unconfirmed, 0),
        ("asker: outbox entries left", asker.outbox, 0),
        (
            "asker: confirmations accepted (audit)",
            asker.confirmations_audited,
            n,
        ),
        ("responder: inquiries received", responder.inquiries, n),
        ("responder: inquiries answered", responder.answered, n),
        ("responder: answered found", responder.found, found),
        ("responder: answered not_found", responder.not_found, not_found),
        ("responder: confirmations written", responder.confirmations, n),
        ("responder: confirmations delivered", responder.delivered, n),
        ("responder: outbox entries left", responder.outbox, 0),
        (
            "responder: inquiries accepted (audit)",
            responder.inquiries_audited,
            n,
        ),
        ("responder: daily volume counted", responder.daily_volume, n),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("  {what}: {got}, expected {want}"))
        .collect();
    if !wrong.is_empty() {
        bail!(
            "bookkeeping failed: not every inquiry was answered exactly once\n{}",
            wrong.join("\n")
        );
    }
    Ok(())
}
