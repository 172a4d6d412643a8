//! `hancha pending --notices`: the notices awaiting our feedback by due date, or with
//! `--outbound` the feedback we wait for; overdue ones flagged as inquiries are.

use std::process::ExitCode;

use serde_json::json;

use crate::present::display::{self, table};
use crate::proto::operator as pb;

/// Prints the notices of a pending list in the format asked for.
pub(super) fn print(
    notices: &[pb::NoticeSummary],
    outbound: bool,
    as_json: bool,
    as_csv: bool,
) -> anyhow::Result<ExitCode> {
    if as_json {
        for notice in notices {
            println!("{}", to_json(notice));
        }
    } else if as_csv {
        let mut writer = csv::Writer::from_writer(std::io::stdout());
        writer.write_record(CSV_HEADER)?;
        for notice in notices {
            writer.write_record(csv_row(notice))?;
        }
        writer.flush()?;
    } else if notices.is_empty() {
        println!(
            "{}",
            if outbound {
                "no feedback outstanding from other counties"
            } else {
                "no notice awaits our feedback"
            }
        );
    } else {
        let peer_header = if outbound { "sent to" } else { "from" };
        let rows: Vec<Vec<String>> = notices
            .iter()
            .map(|n| {
                vec![
                    if n.overdue {
                        "OVERDUE".into()
                    } else {
                        String::new()
                    },
                    display::date(n.feedback_due_at.as_ref()),
                    display::county(&n.peer_county),
                    display::kind(&n.kind),
                    n.occurred_on.clone(),
                    n.subject_masked.clone(),
                    n.message_id.clone(),
                ]
            })
            .collect();
        println!(
            "{}",
            table(
                &[
                    "",
                    "feedback due",
                    peer_header,
                    "kind",
                    "date",
                    "subject",
                    "notice"
                ],
                &rows
            )
        );
        let overdue = notices.iter().filter(|n| n.overdue).count();
        println!("\n{} notices, {overdue} overdue", notices.len());
    }
    Ok(ExitCode::SUCCESS)
}

const CSV_HEADER: [&str; 9] = [
    "message_id",
    "direction",
    "peer_county",
    "kind",
    "occurred_on",
    "subject",
    "received_at",
    "feedback_due_at",
    "overdue",
];

fn csv_row(notice: &pb::NoticeSummary) -> Vec<String> {
    vec![
        notice.message_id.clone(),
        notice.direction.clone(),
        notice.peer_county.clone(),
        notice.kind.clone(),
        notice.occurred_on.clone(),
        notice.subject_masked.clone(),
        display::rfc3339(notice.received_at.as_ref()),
        display::rfc3339(notice.feedback_due_at.as_ref()),
        notice.overdue.to_string(),
    ]
}

fn to_json(notice: &pb::NoticeSummary) -> serde_json::Value {
    json!({
        "message_id": notice.message_id,
        "direction": notice.direction,
        "peer_county": notice.peer_county,
        "kind": notice.kind,
        "state": notice.state,
        "occurred_on": notice.occurred_on,
        "subject": notice.subject_masked,
        "received_at": display::rfc3339(notice.received_at.as_ref()),
        "feedback_due_at": display::rfc3339(notice.feedback_due_at.as_ref()),
        "overdue": notice.overdue,
    })
}
