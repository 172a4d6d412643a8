//! `hancha show`: one inquiry with its history (received, answered, delivered, retries), or one
//! notice with its feedback ([`super::show_notice`]).

use crate::present::explain;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::present::display;
use crate::proto::operator as pb;

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The message id of an inquiry, a notice, or a notice's feedback.
    message_id: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::ShowInquiryRequest {
            message_id: args.message_id.clone(),
        };
        let shown = match client.show_inquiry(request).await {
            Ok(shown) => shown.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                // not an inquiry we hold: perhaps a notice or its feedback
                let request = pb::ShowNoticeRequest {
                    message_id: args.message_id.clone(),
                };
                return match client.show_notice(request).await {
                    Ok(notice) => Ok(super::show_notice::print(&notice.into_inner(), args.json)),
                    Err(other) if other.code() == tonic::Code::NotFound => Err(explain(status)),
                    Err(other) => Err(explain(other)),
                };
            }
            Err(status) => return Err(explain(status)),
        };
        let inquiry = shown.inquiry.clone().unwrap_or_default();
        if args.json {
            let history: Vec<_> = shown
                .history
                .iter()
                .map(|h| json!({ "at": display::rfc3339(h.at.as_ref()), "what": h.what, "detail": h.detail }))
                .collect();
            println!(
                "{}",
                json!({
                    "message_id": inquiry.message_id,
                    "direction": inquiry.direction,
                    "peer_county": inquiry.peer_county,
                    "kind": inquiry.kind,
                    "priority": inquiry.priority,
                    "state": inquiry.state,
                    "outcome": inquiry.outcome,
                    "resident_id": shown.subject_resident_id,
                    "certificate_number": shown.subject_certificate_number,
                    "certificate_presented": shown.certificate_presented,
                    "township": inquiry.township,
                    "received_at": display::rfc3339(inquiry.received_at.as_ref()),
                    "due_at": display::rfc3339(inquiry.due_at.as_ref()),
                    "overdue": inquiry.overdue,
                    "answer_fields": shown.answer_fields,
                    "delivery_attempts": shown.delivery_attempts,
                    "last_delivery_error": shown.last_delivery_error,
                    "next_attempt_at": display::rfc3339(shown.next_attempt_at.as_ref()),
                    "history": history,
                })
            );
            return Ok(ExitCode::SUCCESS);
        }
        let direction = if inquiry.direction == "inbound" {
            "from"
        } else {
            "to"
        };
        println!("inquiry {}", inquiry.message_id);
        println!("  {direction:<10} {}", display::county(&inquiry.peer_county));
        println!(
            "  kind       {} ({})",
            display::kind(&inquiry.kind),
            inquiry.priority
        );
        println!("  subject    {}", shown.subject_resident_id);
        if !shown.subject_certificate_number.is_empty() || !shown.certificate_presented.is_empty() {
            let verdict = display::certificate_presented(&shown.certificate_presented).unwrap_or(
                if inquiry.direction == "inbound" {
                    "the registry does not hold this person: nothing to compare"
                } else {
                    ""
                },
            );
            println!("  certificate shown  {}", shown.subject_certificate_number);
            if !verdict.is_empty() {
                println!("             {verdict}");
            }
        }
        if !inquiry.township.is_empty() {
            println!("  township   {}", display::township(&inquiry.township));
        }
        println!("  agreement  {}", inquiry.agreement_id);
        println!(
            "  state      {}{}",
            inquiry.state,
            if inquiry.overdue { " — OVERDUE" } else { "" }
        );
        println!("  received   {}", display::time(inquiry.received_at.as_ref()));
        println!("  due        {}", display::time(inquiry.due_at.as_ref()));
        if !inquiry.outcome.is_empty() {
            println!("  answer     {}", inquiry.outcome);
            let mut fields: Vec<_> = shown.answer_fields.iter().collect();
            fields.sort();
            for (name, value) in fields {
                println!("    {name:<24} {value}");
            }
        }
        if shown.delivery_attempts > 0 {
            println!(
                "  delivery   {} attempts, last error: {}",
                shown.delivery_attempts, shown.last_delivery_error
            );
        }
        if shown.next_attempt_at.is_some() {
            println!("  next try   {}", display::time(shown.next_attempt_at.as_ref()));
        }
        println!("history");
        for entry in &shown.history {
            println!(
                "  {}  {:<18} {}",
                display::time(entry.at.as_ref()),
                entry.what,
                entry.detail
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
