//! `hancha registry history ID`: every recorded change of one registry entry, with its source.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::present::{display, explain};
use crate::proto::operator as pb;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The person's resident ID number.
    #[arg(value_name = "ID")]
    resident_id: String,
    /// Write one JSON object per change instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::RegistryHistoryRequest {
            resident_id: args.resident_id.clone(),
        };
        let history = client
            .registry_history(request)
            .await
            .map_err(explain)?
            .into_inner();
        if args.json {
            for change in &history.changes {
                println!(
                    "{}",
                    json!({
                        "changed_at": display::rfc3339(change.changed_at.as_ref()),
                        "field": change.field,
                        "old_value": change.old_value,
                        "new_value": change.new_value,
                        "source": change.source,
                        "message_id": change.message_id,
                        "changed_by": change.changed_by,
                    })
                );
            }
        } else if history.changes.is_empty() {
            println!("no recorded changes");
        } else {
            let rows: Vec<Vec<String>> = history
                .changes
                .iter()
                .map(|change| {
                    vec![
                        display::time(change.changed_at.as_ref()),
                        change.field.clone(),
                        change.old_value.clone(),
                        change.new_value.clone(),
                        source(change),
                    ]
                })
                .collect();
            println!(
                "{}",
                display::table(&["when", "field", "was", "now", "source"], &rows)
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `notice 0193… (applied by clerk)`, `import`, …
fn source(change: &pb::RegistryChange) -> String {
    let mut text = change.source.clone();
    if !change.message_id.is_empty() {
        text.push(' ');
        text.push_str(&change.message_id);
    }
    if !change.changed_by.is_empty() {
        text.push_str(&format!(" (by {})", change.changed_by));
    }
    text
}
