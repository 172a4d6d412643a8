//! `hancha watch`: the node's events as they happen (answers to our inquiries, inquiries and
//! notices arriving, deadlines passing, refusals, reconciliation runs), one line each, from a
//! cursor. A script keeps the last cursor it handled and passes it back with `--after` to
//! miss nothing and see nothing twice.

use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;

use super::client::{NodeArgs, runtime};
use crate::present::{display, explain};
use crate::proto::operator as pb;

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Resume after this cursor (the last one handled); 0, the default, starts at the first event.
    #[arg(long, default_value_t = 0, conflicts_with = "from_now")]
    after: i64,
    /// Only what happens from now on.
    #[arg(long)]
    from_now: bool,
    /// Only these event types, comma-separated: answer.received, inquiry.received,
    /// inquiry.overdue, inquiry.refused, notice.received, notice.refused, feedback.received,
    /// reconcile.finished.
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Only this township's events (9-digit code).
    #[arg(long)]
    township: Option<String>,
    /// Stop after this many events (default: follow until interrupted).
    #[arg(long)]
    count: Option<u32>,
    /// Stop once no event came for this many seconds (default: follow until interrupted).
    #[arg(long)]
    idle: Option<u32>,
    /// Write one JSON object per line (as webhooks send them) instead of a table line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::WatchRequest {
            after: args.after,
            from_now: args.from_now,
            types: args.types.clone(),
            township: args.township.clone().unwrap_or_default(),
            max_events: args.count.unwrap_or(0),
            idle_seconds: args.idle.unwrap_or(0),
        };
        let mut events = client.watch(request).await.map_err(explain)?.into_inner();
        let mut seen = 0;
        let mut last = args.after;
        while args.count.is_none_or(|count| seen < u64::from(count)) {
            match events.next().await {
                Some(Ok(event)) => {
                    last = event.cursor;
                    if event.r#type.is_empty() {
                        // progress: nothing for this filter up to the cursor
                        continue;
                    }
                    seen += 1;
                    if args.json {
                        println!("{}", to_json(&event));
                    } else {
                        println!("{}", line(&event));
                    }
                }
                Some(Err(status)) => {
                    eprintln!(
                        "the stream broke off after cursor {last}: resume with `hancha watch --after {last}`"
                    );
                    return Err(explain(status));
                }
                None => break,
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One event on a line: cursor, time, type, peer, kind, message, township.
fn line(event: &pb::Event) -> String {
    let dash = |text: &str| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text.to_string()
        }
    };
    format!(
        "{:>8}  {}  {:<18}  {}  {:<24}  {}{}",
        event.cursor,
        display::time(event.at.as_ref()),
        event.r#type,
        if event.peer_county.is_empty() {
            "-".to_string()
        } else {
            display::county(&event.peer_county)
        },
        dash(&event.kind),
        dash(&event.message_id),
        if event.township.is_empty() {
            String::new()
        } else {
            format!("  {}", display::township(&event.township))
        },
    )
}

fn to_json(event: &pb::Event) -> serde_json::Value {
    let text = |value: &str| (!value.is_empty()).then(|| value.to_string());
    serde_json::json!({
        "type": event.r#type,
        "timestamp": display::rfc3339(event.at.as_ref()),
        "data": {
            "id": event.id,
            "cursor": event.cursor.to_string(),
            "county": event.id.split('_').nth(1),
            "peerCounty": text(&event.peer_county),
            "messageId": text(&event.message_id),
            "refersTo": text(&event.refers_to),
            "kind": text(&event.kind),
            "township": text(&event.township),
            "direction": event.direction,
            "outcome": event.outcome,
        }
    })
}
