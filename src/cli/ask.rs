//! `hancha ask`: one inquiry to another county, answered inline when its registry can, for a
//! clerk with someone waiting at the window.

use crate::present::explain;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::present::display;
use crate::proto::operator as pb;

#[derive(Debug, Args)]
pub struct AskArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The county to ask (6-digit code), e.g. 431322 for 新化县.
    #[arg(long, value_name = "COUNTY")]
    to: String,
    /// certificate_verification (查证验证) or outflow_status (流出人口函查).
    #[arg(long, default_value = "certificate_verification")]
    kind: String,
    /// The person's resident ID number (18 characters).
    #[arg(long = "id", value_name = "ID")]
    resident_id: String,
    /// The certificate number shown, if any.
    #[arg(long)]
    certificate: Option<String>,
    /// Urgent (key subject): the reply deadline is the agreement's urgent one.
    #[arg(long)]
    urgent: bool,
    /// How long to wait for an answer inline, e.g. 2s or 500ms (capped by the node).
    #[arg(long, default_value = "2s", value_parser = display::parse_wait)]
    wait: std::time::Duration,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: AskArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::AskRequest {
            to_county: args.to.clone(),
            kind: args.kind.clone(),
            resident_id: args.resident_id.clone(),
            certificate_number: args.certificate.clone().unwrap_or_default(),
            urgent: args.urgent,
            wait_ms: u32::try_from(args.wait.as_millis()).unwrap_or(u32::MAX),
        };
        let answer = client.ask(request).await.map_err(explain)?.into_inner();
        if args.json {
            println!(
                "{}",
                json!({
                    "message_id": answer.message_id,
                    "state": answer.state,
                    "due_at": display::rfc3339(answer.due_at.as_ref()),
                    "outcome": answer.outcome,
                    "fields": answer.fields,
                    "reject_reason": answer.reject_reason,
                })
            );
        } else {
            print!("{}", render(&args.to, &answer));
        }
        Ok(if answer.state == "rejected" {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn render(to: &str, answer: &pb::AskResponse) -> String {
    let peer = display::county(to);
    match answer.state.as_str() {
        "answered" => {
            let mut text = format!("{peer} answered: {}\n", answer.outcome);
            if let Some(line) = answer
                .fields
                .get("certificate_presented")
                .and_then(|value| display::certificate_presented(value))
            {
                text.push_str(&format!("  {line}\n"));
            }
            let mut fields: Vec<_> = answer.fields.iter().collect();
            fields.sort();
            for (name, value) in fields {
                text.push_str(&format!("  {name:<24} {value}\n"));
            }
            text.push_str(&format!("  (message {})\n", answer.message_id));
            text
        }
        "pending" => format!(
            "deferred, due {}: {peer} accepted the inquiry and will answer later (message {})\n",
            display::date(answer.due_at.as_ref()),
            answer.message_id
        ),
        "queued" if answer.reject_reason.starts_with("held:") => format!(
            "held: the inquiry waits until {peer} and this county hold the same agreement version, then goes out ({}) (message {})\n",
            answer.reject_reason, answer.message_id
        ),
        "queued" => format!(
            "deferred: {peer} cannot be reached now; the inquiry is queued and will be delivered{} (message {})\n",
            if answer.reject_reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", answer.reject_reason)
            },
            answer.message_id
        ),
        _ => format!(
            "refused by {peer}: {} (message {})\n",
            answer.reject_reason, answer.message_id
        ),
    }
}
