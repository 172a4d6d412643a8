//! `hancha pending`: what waits for our answer, ordered by deadline with overdue first — or,
//! with `--outbound`, what we wait for from other counties. With `--notices`, the same for
//! the feedback notices owe ([`super::pending_notices`]).

use crate::present::explain;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::present::display;
use crate::proto::operator as pb;

#[derive(Debug, Args)]
pub struct PendingArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Only those past their deadline.
    #[arg(long)]
    overdue: bool,
    /// Only people of this township (9-digit code).
    #[arg(long)]
    township: Option<String>,
    /// Only this kind: certificate_verification or outflow_status.
    #[arg(long)]
    kind: Option<String>,
    /// What we asked others and still wait for, instead of what we owe.
    #[arg(long)]
    outbound: bool,
    /// Notices owing feedback (births) instead of inquiries: those awaiting our feedback, or
    /// with --outbound the feedback we wait for.
    #[arg(long, conflicts_with_all = ["township", "kind"])]
    notices: bool,
    /// At most this many (default 1000).
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// Write CSV (for a spreadsheet) instead of a table.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Write one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PendingArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::ListPendingRequest {
            outbound: args.outbound,
            overdue_only: args.overdue,
            township: args.township.clone().unwrap_or_default(),
            kind: args.kind.clone().unwrap_or_default(),
            limit: args.limit,
            notices: args.notices,
        };
        let list = client.list_pending(request).await.map_err(explain)?.into_inner();
        if args.notices {
            return super::pending_notices::print(&list.notices, args.outbound, args.json, args.csv);
        }
        if args.json {
            for inquiry in &list.inquiries {
                println!("{}", to_json(inquiry));
            }
        } else if args.csv {
            let mut writer = csv::Writer::from_writer(std::io::stdout());
            writer.write_record(CSV_HEADER)?;
            for inquiry in &list.inquiries {
                writer.write_record(csv_row(inquiry))?;
            }
            writer.flush()?;
        } else if list.inquiries.is_empty() {
            println!(
                "{}",
                if args.outbound {
                    "nothing outstanding from other counties"
                } else {
                    "nothing pending"
                }
            );
        } else {
            println!(
                "{}",
                crate::present::pending_table(&list.inquiries, args.outbound)
            );
            let overdue = list.inquiries.iter().filter(|i| i.overdue).count();
            println!("\n{} inquiries, {overdue} overdue", list.inquiries.len());
        }
        Ok(ExitCode::SUCCESS)
    })
}

const CSV_HEADER: [&str; 11] = [
    "message_id",
    "direction",
    "peer_county",
    "kind",
    "priority",
    "state",
    "subject",
    "township",
    "received_at",
    "due_at",
    "overdue",
];

fn csv_row(inquiry: &pb::InquirySummary) -> Vec<String> {
    vec![
        inquiry.message_id.clone(),
        inquiry.direction.clone(),
        inquiry.peer_county.clone(),
        inquiry.kind.clone(),
        inquiry.priority.clone(),
        inquiry.state.clone(),
        inquiry.subject_masked.clone(),
        inquiry.township.clone(),
        display::rfc3339(inquiry.received_at.as_ref()),
        display::rfc3339(inquiry.due_at.as_ref()),
        inquiry.overdue.to_string(),
    ]
}

fn to_json(inquiry: &pb::InquirySummary) -> serde_json::Value {
    json!({
        "message_id": inquiry.message_id,
        "direction": inquiry.direction,
        "peer_county": inquiry.peer_county,
        "kind": inquiry.kind,
        "priority": inquiry.priority,
        "state": inquiry.state,
        "subject": inquiry.subject_masked,
        "township": inquiry.township,
        "received_at": display::rfc3339(inquiry.received_at.as_ref()),
        "due_at": display::rfc3339(inquiry.due_at.as_ref()),
        "overdue": inquiry.overdue,
    })
}
