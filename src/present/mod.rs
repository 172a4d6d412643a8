//! Presentation shared by the CLI and the demo: how hancha shows things to people (times in
//! China, counties and townships with their names, tables) and how an operator reads a refusal.
//! Below both, so neither imports the other.

pub mod display;
pub mod reconcile;
pub mod reminder;
pub mod report;

use display::table;

use crate::proto::operator as pb;

/// A call that failed because the node went away (its connection broke, or could not be made
/// again), not because the node refused it: whoever called can run it again once the node serves.
#[derive(Debug, thiserror::Error)]
#[error("the node went away before it answered ({cause})")]
pub struct NodeWentAway {
    /// What the connection said, at its root (e.g. "Connection refused (os error 111)").
    pub cause: String,
}

/// Whether `status` says the node went away rather than refusing: a status the client made
/// itself from a broken or refused connection (tonic's "transport error"). An `UNAVAILABLE` the
/// node itself sent is not one: it is the node saying something it needs (a peer county) cannot
/// be reached, which the node's message names.
pub fn went_away(status: &tonic::Status) -> Option<NodeWentAway> {
    use std::error::Error;
    let mut source: Option<&(dyn Error + 'static)> = status.source();
    let mut from_connection = false;
    let mut cause = status.message().to_string();
    while let Some(error) = source {
        from_connection |= error.is::<tonic::transport::Error>() || error.is::<std::io::Error>();
        cause = error.to_string();
        source = error.source();
    }
    from_connection.then_some(NodeWentAway { cause })
}

/// A gRPC error as an operator reads it: the message, then each field violation on its own line;
/// a node that went away becomes [`NodeWentAway`].
pub fn explain(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    if let Some(gone) = went_away(&status) {
        return anyhow::Error::new(gone);
    }
    let mut text = status.message().to_string();
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            let line = format!("{}: {}", violation.field, violation.description);
            if !text.contains(&line) {
                text.push_str(&format!("\n  {line}"));
            }
        }
    }
    anyhow::anyhow!("{text}")
}

/// The pending list as a table, as `hancha pending` prints it (the demo shows it too).
pub fn pending_table(inquiries: &[pb::InquirySummary], outbound: bool) -> String {
    let peer_header = if outbound { "asked" } else { "from" };
    let rows: Vec<Vec<String>> = inquiries
        .iter()
        .map(|i| {
            vec![
                if i.overdue {
                    "OVERDUE".into()
                } else {
                    String::new()
                },
                display::date(i.due_at.as_ref()),
                display::county(&i.peer_county),
                display::kind(&i.kind),
                if i.priority == "urgent" {
                    "urgent 紧急".into()
                } else {
                    "normal".into()
                },
                i.subject_masked.clone(),
                display::township(&i.township),
                i.message_id.clone(),
            ]
        })
        .collect();
    table(
        &[
            "",
            "due",
            peer_header,
            "kind",
            "priority",
            "subject",
            "township",
            "message",
        ],
        &rows,
    )
}
