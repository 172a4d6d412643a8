//! `hancha notify`: one notice (信息通报) to another county — a birth, a pregnancy, a quarterly
//! contraception check result (查环查孕), a departure — checked against the agreement, queued
//! in the outbox and delivered; waits briefly for the other county's receipt.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::csv_input::Encoding;
use crate::present::{display, explain};
use crate::proto::operator as pb;

/// What `--help` adds after the options: the field set of each kind.
const FIELDS_HELP: &str = "Fields per kind (which of them may travel is the agreement's `notice_fields`):
  birth                child_sex (male|female, 男|女), birth_order (1-20), birth_place (text, <= 60 chars)
  pregnancy            pregnancy_weeks (1-45), expected_date (YYYY-MM-DD)
  contraception_check  check_result (normal|pregnant|ring_missing|other),
                       measure (iud|implant|ligation|pill|condom|none)
  moved_on             new_county (six-digit county code)
--date is the day of the event: the birth, the check, the confirmation, the departure.

Sending the same --message-id again returns the first receipt; with other content it is refused.

A batch (e.g. the quarterly 查环查孕 results): --file results.csv --kind contraception_check.
  Columns: resident_id, date (the day of the check, YYYY-MM-DD), one column per field of the
  kind (e.g. check_result, measure; an empty cell leaves the field out), and optional `to` (the
  county to notify). A row without `to`, when --to is not given either, goes to the county the
  person is registered in according to this node's registry (inflow persons only).
  Each row's notice id is derived from its kind, county, resident_id and date, so running the
  same file again, or a new export with the same rows, adds nothing (those rows are counted as
  \"sent before\"). UTF-8 or GBK; bad rows are named by their line.";

#[derive(Debug, Args)]
#[command(after_help = FIELDS_HELP)]
pub struct NotifyArgs {
    #[command(flatten)]
    pub(super) node: NodeArgs,
    /// The county to notify (6-digit code), e.g. 431322 for 新化县. With --file: for rows
    /// without a `to` cell (default: each person's county of registration in the registry).
    #[arg(long, value_name = "COUNTY", required_unless_present = "file")]
    pub(super) to: Option<String>,
    /// birth (出生通报), pregnancy (怀孕通报), contraception_check (查环查孕结果) or moved_on (迁离通报).
    #[arg(long)]
    pub(super) kind: String,
    /// The person's resident ID number (18 characters): the mother, the woman checked, the one who moved.
    #[arg(
        long = "id",
        value_name = "RESIDENT_ID",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    resident_id: Option<String>,
    /// The day it happened, YYYY-MM-DD (default: today, China Standard Time).
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "file")]
    date: Option<String>,
    /// A field of the notice, name=value; repeat for each field.
    #[arg(long = "field", value_name = "NAME=VALUE", value_parser = parse_field, conflicts_with = "file")]
    fields: Vec<(String, String)>,
    /// The notice's id (UUID v7) chosen by the caller, so that a resend adds nothing.
    #[arg(long, value_name = "UUID", conflicts_with = "file")]
    message_id: Option<String>,
    /// A CSV file of notices, one per row (see below); sent one by one.
    #[arg(long, value_name = "CSV")]
    pub(super) file: Option<std::path::PathBuf>,
    /// How the --file is encoded.
    #[arg(long, value_enum, default_value_t = Encoding::Auto, requires = "file")]
    pub(super) encoding: Encoding,
    /// How long to wait for the other county's receipt, e.g. 5s (capped by the node). With
    /// --file: for each row, at most 1s, and no more once a row stays queued.
    #[arg(long, default_value = "5s", value_parser = display::parse_wait)]
    pub(super) wait: std::time::Duration,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

fn parse_field(input: &str) -> Result<(String, String), String> {
    match input.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.to_string())),
        _ => Err("expected NAME=VALUE, e.g. check_result=normal".into()),
    }
}

pub fn run(args: NotifyArgs) -> anyhow::Result<ExitCode> {
    if args.file.is_some() {
        return super::notify_file::run(args);
    }
    let to = args.to.clone().unwrap_or_default();
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::NotifyRequest {
            to_county: to.clone(),
            kind: args.kind.clone(),
            resident_id: args.resident_id.clone().unwrap_or_default(),
            occurred_on: args.date.clone().unwrap_or_default(),
            fields: args.fields.iter().cloned().collect(),
            message_id: args.message_id.clone().unwrap_or_default(),
            wait_ms: u32::try_from(args.wait.as_millis()).unwrap_or(u32::MAX),
            idempotency_key: String::new(),
        };
        let sent = client.notify(request).await.map_err(explain)?.into_inner();
        if args.json {
            println!(
                "{}",
                json!({
                    "message_id": sent.message_id,
                    "state": sent.state,
                    "received_at": display::rfc3339(sent.received_at.as_ref()),
                    "feedback_due_at": display::rfc3339(sent.feedback_due_at.as_ref()),
                    "reject_reason": sent.reject_reason,
                    "repeat": sent.repeat,
                })
            );
        } else {
            print!("{}", render(&to, &sent));
        }
        Ok(if sent.state == "rejected" {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn render(to: &str, sent: &pb::NotifyResponse) -> String {
    let peer = display::county(to);
    let again = if sent.repeat {
        " (sent before: its first receipt)"
    } else {
        ""
    };
    match sent.state.as_str() {
        "delivered" | "answered" => {
            let mut text = format!(
                "received by {peer} at {}{again}\n",
                display::rfc3339(sent.received_at.as_ref())
            );
            if sent.feedback_due_at.is_some() {
                text.push_str(&format!(
                    "  feedback due {}\n",
                    display::date(sent.feedback_due_at.as_ref())
                ));
            }
            text.push_str(&format!("  (message {})\n", sent.message_id));
            text
        }
        "queued" => format!(
            "queued: {peer} has not acknowledged it yet; it is delivered when {peer} can be reached{}{again} (message {})\n",
            if sent.reject_reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", sent.reject_reason)
            },
            sent.message_id
        ),
        _ => format!(
            "refused by {peer}: {} (message {})\n",
            sent.reject_reason, sent.message_id
        ),
    }
}
