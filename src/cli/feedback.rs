//! `hancha feedback`: the origin county's feedback (反馈) to a notice another county sent it
//! (a birth), sent through the outbox and acknowledged by that county.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::present::{display, explain};
use crate::proto::operator as pb;

const OUTCOMES_HELP: &str = "Outcomes:
  registered           已登记: the birth is entered in our registry
  child_counted        已计入孩次: the child is counted in the mother's record
  township_follow_up   乡镇跟进: the township of registration follows it up
  not_registered_here  查无此人: the person is not registered with us
The note is at most 200 characters and may not hold an ID number. Only a notice that owes
feedback (a birth, under the agreement's notice_days.feedback) is answered, once.";

#[derive(Debug, Args)]
#[command(after_help = OUTCOMES_HELP)]
pub struct FeedbackArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The id of the notice answered (see `hancha pending --notices`).
    #[arg(value_name = "MESSAGE_ID")]
    notice_id: String,
    /// registered, child_counted, township_follow_up or not_registered_here.
    #[arg(long)]
    outcome: String,
    /// A short note (at most 200 characters, no ID number).
    #[arg(long)]
    note: Option<String>,
    /// The feedback's id (UUID v7) chosen by the caller, so that a resend adds nothing.
    #[arg(long, value_name = "UUID")]
    message_id: Option<String>,
    /// How long to wait for the other county's receipt, e.g. 5s (capped by the node).
    #[arg(long, default_value = "5s", value_parser = display::parse_wait)]
    wait: std::time::Duration,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: FeedbackArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::FeedbackRequest {
            notice_id: args.notice_id.clone(),
            outcome: args.outcome.clone(),
            note: args.note.clone().unwrap_or_default(),
            message_id: args.message_id.clone().unwrap_or_default(),
            wait_ms: u32::try_from(args.wait.as_millis()).unwrap_or(u32::MAX),
        };
        let sent = client.feedback(request).await.map_err(explain)?.into_inner();
        if args.json {
            println!(
                "{}",
                json!({
                    "message_id": sent.message_id,
                    "state": sent.state,
                    "received_at": display::rfc3339(sent.received_at.as_ref()),
                    "reject_reason": sent.reject_reason,
                    "repeat": sent.repeat,
                })
            );
        } else {
            let again = if sent.repeat {
                " (given before: its first result)"
            } else {
                ""
            };
            match sent.state.as_str() {
                "delivered" => println!(
                    "feedback received at {}{again} (message {})",
                    display::rfc3339(sent.received_at.as_ref()),
                    sent.message_id
                ),
                "queued" => println!(
                    "feedback queued: delivered when the notice's county can be reached{again} (message {})",
                    sent.message_id
                ),
                _ => println!(
                    "feedback refused: {} (message {})",
                    sent.reject_reason, sent.message_id
                ),
            }
        }
        Ok(if sent.state == "rejected" {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}
