//! `hancha show` for a notice (信息通报), either direction, with its feedback (反馈): what
//! `hancha show` prints when the id names a notice or a notice's feedback.

use std::process::ExitCode;

use serde_json::json;

use crate::present::display;
use crate::proto::operator as pb;

/// Prints one notice as `hancha show` does.
pub(super) fn print(shown: &pb::ShowNoticeResponse, as_json: bool) -> ExitCode {
    let notice = shown.notice.clone().unwrap_or_default();
    let feedback = shown.feedback.clone();
    if as_json {
        println!(
            "{}",
            json!({
                "message_id": notice.message_id,
                "type": "notice",
                "direction": notice.direction,
                "peer_county": notice.peer_county,
                "kind": notice.kind,
                "state": notice.state,
                "resident_id": shown.subject_resident_id,
                "occurred_on": notice.occurred_on,
                "fields": shown.fields,
                "received_at": display::rfc3339(notice.received_at.as_ref()),
                "feedback_due_at": display::rfc3339(notice.feedback_due_at.as_ref()),
                "overdue": notice.overdue,
                "reject_reason": shown.reject_reason,
                "delivery_attempts": shown.delivery_attempts,
                "last_delivery_error": shown.last_delivery_error,
                "feedback": feedback.as_ref().map(|f| json!({
                    "message_id": f.message_id,
                    "direction": f.direction,
                    "outcome": f.outcome,
                    "note": f.note,
                    "answered_at": display::rfc3339(f.answered_at.as_ref()),
                    "received_at": display::rfc3339(f.received_at.as_ref()),
                    "state": f.state,
                    "reject_reason": f.reject_reason,
                })),
            })
        );
        return ExitCode::SUCCESS;
    }
    let direction = if notice.direction == "inbound" {
        "from"
    } else {
        "to"
    };
    println!("notice {}", notice.message_id);
    println!("  {direction:<10} {}", display::county(&notice.peer_county));
    println!("  kind       {}", display::kind(&notice.kind));
    println!("  subject    {}", shown.subject_resident_id);
    println!("  date       {}", notice.occurred_on);
    let mut fields: Vec<_> = shown.fields.iter().collect();
    fields.sort();
    for (name, value) in fields {
        println!("  {name:<24} {value}");
    }
    println!("  state      {}", notice.state);
    if notice.received_at.is_some() {
        println!("  received   {}", display::rfc3339(notice.received_at.as_ref()));
    }
    if notice.feedback_due_at.is_some() {
        println!(
            "  feedback due {}{}",
            display::date(notice.feedback_due_at.as_ref()),
            if notice.overdue { "  OVERDUE" } else { "" }
        );
    }
    if !shown.reject_reason.is_empty() {
        println!("  refused    {}", shown.reject_reason);
    }
    if !shown.last_delivery_error.is_empty() || shown.delivery_attempts > 0 {
        println!(
            "  delivery   {} attempts, last error: {}",
            shown.delivery_attempts,
            if shown.last_delivery_error.is_empty() {
                "none"
            } else {
                &shown.last_delivery_error
            }
        );
    }
    match feedback {
        Some(f) => {
            println!(
                "feedback {} ({})",
                f.message_id,
                if f.direction == "outbound" {
                    "ours"
                } else {
                    "theirs"
                }
            );
            println!("  outcome    {}", f.outcome);
            if !f.note.is_empty() {
                println!("  note       {}", f.note);
            }
            println!("  answered   {}", display::rfc3339(f.answered_at.as_ref()));
            println!("  state      {}", f.state);
            if !f.reject_reason.is_empty() {
                println!("  refused    {}", f.reject_reason);
            }
        }
        None if notice.feedback_due_at.is_some() => println!("no feedback yet"),
        None => {}
    }
    ExitCode::SUCCESS
}
