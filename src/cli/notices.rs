//! `hancha notices`: the notices (信息通报) other counties sent us and what each did in our
//! registry; `apply` and `dismiss` for those that wait for an operator.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::present::{display, explain};
use crate::proto::operator as pb;

/// The list (no subcommand), or `apply` / `dismiss`; the help text is on `cli::Command::Notices`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NoticesArgs {
    #[command(subcommand)]
    command: Option<NoticesCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, Subcommand)]
enum NoticesCommand {
    /// Apply a pending notice to the registry, with the mapping the agreement's "apply" uses.
    /// Exits 1, changing nothing, when it was applied or dismissed before (saying when and by
    /// whom) or the registry cannot take it (saying why).
    Apply(ApplyArgs),
    /// Record that a pending notice was looked at and is not applied, and why; the registry
    /// does not change. Exits 1 when it was applied or dismissed before.
    Dismiss(DismissArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Only notices waiting for an operator.
    #[arg(long)]
    pending: bool,
    /// Only people of this township (9-digit code).
    #[arg(long)]
    township: Option<String>,
    /// At most this many (default 1000).
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// Write one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The notice's message id (see `hancha notices --pending`).
    message_id: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DismissArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The notice's message id (see `hancha notices --pending`).
    message_id: String,
    /// Why it is not applied (kept with the notice).
    #[arg(long)]
    reason: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: NoticesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => list(args.list),
        Some(NoticesCommand::Apply(args)) => apply(args),
        Some(NoticesCommand::Dismiss(args)) => dismiss(args),
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::ListNoticesRequest {
            pending_only: args.pending,
            township: args.township.clone().unwrap_or_default(),
            limit: args.limit,
        };
        let list = client.list_notices(request).await.map_err(explain)?.into_inner();
        if args.json {
            for notice in &list.notices {
                println!("{}", to_json(notice));
            }
        } else if list.notices.is_empty() {
            println!(
                "{}",
                if args.pending {
                    "no notice waits for an operator"
                } else {
                    "no notices received"
                }
            );
        } else {
            println!("{}", table(&list.notices));
            let pending = list.notices.iter().filter(|n| n.state == "pending").count();
            println!(
                "\n{} notices, {pending} waiting for an operator",
                list.notices.len()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::ApplyNoticeRequest {
            message_id: args.message_id.clone(),
        };
        let applied = client.apply_notice(request).await.map_err(explain)?.into_inner();
        let notice = applied.notice.unwrap_or_default();
        if args.json {
            println!("{}", to_json(&notice));
        } else if notice.changed.is_empty() {
            println!(
                "applied: {} (the registry already held what it tells; nothing changed)",
                notice.message_id
            );
        } else {
            println!(
                "applied: {} (changed {})",
                notice.message_id,
                notice.changed.join(", ")
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn dismiss(args: DismissArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::DismissNoticeRequest {
            message_id: args.message_id.clone(),
            reason: args.reason.clone(),
        };
        let dismissed = client
            .dismiss_notice(request)
            .await
            .map_err(explain)?
            .into_inner();
        let notice = dismissed.notice.unwrap_or_default();
        if args.json {
            println!("{}", to_json(&notice));
        } else {
            println!("dismissed: {} ({})", notice.message_id, notice.note);
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn table(notices: &[pb::ReceivedNotice]) -> String {
    let rows: Vec<Vec<String>> = notices
        .iter()
        .map(|notice| {
            vec![
                notice.message_id.clone(),
                display::county(&notice.peer_county),
                notice_kind(&notice.kind),
                notice.subject_masked.clone(),
                display::township(&notice.township),
                notice.occurred_on.clone(),
                display::time(notice.received_at.as_ref()),
                notice.state.clone(),
                if notice.state == "applied" {
                    notice.changed.join(", ")
                } else {
                    notice.note.clone()
                },
            ]
        })
        .collect();
    display::table(
        &[
            "message",
            "from",
            "kind",
            "subject",
            "township",
            "on",
            "received",
            "state",
            "changed / note",
        ],
        &rows,
    )
}

/// `birth 出生通报`.
fn notice_kind(name: &str) -> String {
    match name.parse::<crate::domain::vocabulary::NoticeKind>() {
        Ok(kind) => format!("{} {}", kind.as_str(), kind.label_zh()),
        Err(_) => name.to_string(),
    }
}

fn to_json(notice: &pb::ReceivedNotice) -> serde_json::Value {
    json!({
        "message_id": notice.message_id,
        "peer_county": notice.peer_county,
        "kind": notice.kind,
        "subject": notice.subject_masked,
        "township": notice.township,
        "occurred_on": notice.occurred_on,
        "received_at": display::rfc3339(notice.received_at.as_ref()),
        "feedback_due_at": display::rfc3339(notice.feedback_due_at.as_ref()),
        "effect": notice.effect,
        "state": notice.state,
        "note": notice.note,
        "changed": notice.changed,
        "decided_at": display::rfc3339(notice.decided_at.as_ref()),
        "decided_by": notice.decided_by,
    })
}
