//! `hancha webhooks`: the county systems' endpoints that events are pushed to (README
//! "Webhooks (推送)"): add one (its signing secret printed once), list them with how delivery
//! goes, rotate a secret, remove one.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::client::{NodeArgs, runtime};
use crate::present::display;
use crate::present::explain;
use crate::proto::operator as pb;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint: from now on, every event it wants is POSTed to it, one per
    /// request, in order, signed per Standard Webhooks (webhook-id, webhook-timestamp,
    /// webhook-signature), retried until it answers 2xx.
    ///
    /// Delivery starts at the event stream's head: events that happened before are not sent.
    /// The URL must be https:// (http:// only to this machine: 127.0.0.0/8, ::1, localhost).
    /// The signing secret is printed once, here: give it to the receiving system, it is never
    /// shown again (`hancha webhooks rotate` makes a new one).
    Add(AddArgs),
    /// The endpoints: events and township wanted, cursor against the head (the backlog), last
    /// status or error, failed attempts and the next one, "undeliverable since …" while
    /// failing, the secrets' fingerprints and the latest attempts.
    List(ListArgs),
    /// Give an endpoint a new signing secret, printed once. The old secret keeps signing until
    /// the overlap ends (both signatures are sent meanwhile), so the receiver switches in its
    /// own time.
    Rotate(RotateArgs),
    /// Stop delivering to an endpoint and forget its secrets.
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Where events are POSTed (https://host[:port]/path).
    url: String,
    /// Only these event types, comma-separated (answer.received, inquiry.received,
    /// inquiry.overdue, inquiry.refused, notice.received, notice.refused, feedback.received,
    /// reconcile.finished); default: every type.
    #[arg(long, value_delimiter = ',', value_name = "TYPE,...")]
    events: Vec<String>,
    /// Only this township's events (9-digit code); default: the whole county.
    #[arg(long, value_name = "CODE")]
    township: Option<String>,
    #[command(flatten)]
    secret: GivenSecret,
}

/// `--secret`, for `add` and `rotate`.
#[derive(Debug, Args)]
pub struct GivenSecret {
    /// Use this signing secret (whsec_ and base64 of 24 to 64 bytes) instead of a new one, e.g.
    /// one the receiving system already holds. Prefer the variable to the option: a command
    /// line is visible to the machine's other users.
    #[arg(
        long = "secret",
        env = "HANCHA_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "whsec_..."
    )]
    secret: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The endpoint (see `hancha webhooks list`).
    id: u64,
    /// How long the old secret keeps signing beside the new one (at most 30 days).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    overlap: Duration,
    #[command(flatten)]
    secret: GivenSecret,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The endpoint (see `hancha webhooks list`).
    id: u64,
    /// Do it: events from now on are not sent to it, and its secrets are forgotten.
    #[arg(long)]
    yes: bool,
}

pub fn run(command: WebhooksCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            WebhooksCommand::Add(args) => add(args).await,
            WebhooksCommand::List(args) => list(args).await,
            WebhooksCommand::Rotate(args) => rotate(args).await,
            WebhooksCommand::Remove(args) => remove(args).await,
        }
    })
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let mut client = args.node.connect().await?;
    let added = client
        .add_webhook(pb::AddWebhookRequest {
            url: args.url,
            event_types: args.events,
            township: args.township.unwrap_or_default(),
            secret: args.secret.secret.unwrap_or_default(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    let webhook = added.webhook.unwrap_or_default();
    println!("webhook {} registered: {}", webhook.id, webhook.url);
    println!(
        "events {} from position {} on (earlier events are not sent)",
        events(&webhook.event_types),
        webhook.cursor
    );
    println!("signing secret (shown this once; give it to the receiving system):");
    println!("{}", added.secret);
    Ok(ExitCode::SUCCESS)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut client = args.node.connect().await?;
    let listed = client
        .list_webhooks(pb::ListWebhooksRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    if listed.webhooks.is_empty() {
        println!("no webhooks (add one with `hancha webhooks add URL`)");
    }
    for webhook in &listed.webhooks {
        print!("{}", describe(webhook, listed.head));
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let mut client = args.node.connect().await?;
    let rotated = client
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            id: args.id,
            overlap_seconds: args.overlap.as_secs().max(1),
            secret: args.secret.secret.unwrap_or_default(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    println!(
        "webhook {}: new signing secret; the old one signs beside it until {}",
        args.id,
        display::time(rotated.old_secrets_expire_at.as_ref())
    );
    println!("signing secret (shown this once; give it to the receiving system):");
    println!("{}", rotated.secret);
    Ok(ExitCode::SUCCESS)
}

async fn remove(args: RemoveArgs) -> anyhow::Result<ExitCode> {
    if !args.yes {
        bail!(
            "removing webhook {} stops its deliveries and forgets its secrets: run again with --yes",
            args.id
        );
    }
    let mut client = args.node.connect().await?;
    let removed = client
        .remove_webhook(pb::RemoveWebhookRequest { id: args.id })
        .await
        .map_err(explain)?
        .into_inner();
    println!("webhook {} removed: {}", args.id, removed.url);
    Ok(ExitCode::SUCCESS)
}

fn events(types: &[String]) -> String {
    if types.is_empty() {
        "all".to_string()
    } else {
        types.join(", ")
    }
}

/// One endpoint as `list` prints it.
fn describe(webhook: &pb::Webhook, head: u64) -> String {
    let mut lines = vec![format!("webhook {}  {}", webhook.id, webhook.url)];
    lines.push(format!("  events        {}", events(&webhook.event_types)));
    lines.push(format!(
        "  township      {}",
        if webhook.township.is_empty() {
            "the whole county".to_string()
        } else {
            display::township(&webhook.township)
        }
    ));
    lines.push(format!(
        "  delivered     {} (cursor {}, head {}: backlog {} positions)",
        webhook.delivered,
        webhook.cursor,
        head,
        head.saturating_sub(webhook.cursor)
    ));
    if webhook.last_success_at.is_some() {
        lines.push(format!(
            "  last success  {}",
            display::time(webhook.last_success_at.as_ref())
        ));
    }
    match &webhook.failing_since {
        Some(since) => {
            lines.push(format!(
                "  FAILING       undeliverable since {} ({} failed attempts at the next event)",
                display::time(Some(since)),
                webhook.attempts
            ));
            lines.push(format!("  last error    {}", webhook.last_error));
            lines.push(format!(
                "  next attempt  {}",
                display::time(webhook.next_attempt_at.as_ref())
            ));
        }
        None if webhook.last_status != 0 => {
            lines.push(format!(
                "  status        ok (last answer {})",
                webhook.last_status
            ));
        }
        None => lines.push("  status        nothing sent yet".to_string()),
    }
    let secrets: Vec<String> = webhook
        .secrets
        .iter()
        .map(|secret| match &secret.expires_at {
            Some(until) => format!("{} (until {})", secret.fingerprint, display::time(Some(until))),
            None => secret.fingerprint.clone(),
        })
        .collect();
    lines.push(format!("  secrets       {}", secrets.join(", ")));
    lines.push(format!(
        "  registered    {} by {}",
        display::time(webhook.created_at.as_ref()),
        webhook.created_by
    ));
    for attempt in &webhook.recent_attempts {
        lines.push(format!(
            "    {}  position {}  {}{}  {} ms{}",
            display::time(attempt.at.as_ref()),
            attempt.position,
            attempt.result,
            if attempt.status == 0 {
                String::new()
            } else {
                format!(" {}", attempt.status)
            },
            attempt.elapsed_ms,
            if attempt.error.is_empty() {
                String::new()
            } else {
                format!("  {}", attempt.error)
            }
        ));
    }
    lines.push(String::new());
    lines.join("\n") + "\n"
}
