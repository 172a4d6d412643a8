//! The benchmark's own bookkeeping: after the run, both databases are counted, and every
//! inquiry must have been accepted once, answered once, with the outcome its subject calls for,
//! and its answer delivered once — otherwise the run fails and no figure is reported.
//!
//! The counting SQL is the store's (`store::inspect`): it checks the store from outside.

use anyhow::bail;

use super::population::Expected;
pub use crate::store::inspect::{AskerCounts, ResponderCounts};

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
