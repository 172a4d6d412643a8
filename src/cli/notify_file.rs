//! `hancha notify --file`: a batch of notices from a CSV file — the quarterly 查环查孕 results —
//! one `Notify` call per row. Each row's notice id is derived from what identifies the notice
//! (kind, county, person, day), so running the file again, or a new export with the same rows,
//! adds nothing: the node returns the first receipt ("sent before").

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::client::runtime;
use super::csv_input::{self, Refusals};
use super::exit::{Exit, NodeUnavailable, UnusableFile};
use super::notify::NotifyArgs;
use crate::csv_input::{Decoded, Record};
use crate::domain::vocabulary::{NoticeField, NoticeKind};
use crate::present::{self as explain, display};
use crate::proto::operator as pb;

/// The longest a row waits for its receipt: a batch is not held up by a slow peer; rows not
/// yet acknowledged are counted as queued and go out when the peer can be reached.
const ROW_WAIT: Duration = Duration::from_secs(1);

/// Rows sent at once: the node's delivery worker batches them for the peer.
const IN_FLIGHT: usize = 16;

/// Where a notice file's columns are, found once from the header.
struct NoticeColumns {
    resident_id: usize,
    date: usize,
    to: Option<usize>,
    /// Each field column of the kind, by its name.
    fields: Vec<(&'static str, usize)>,
}

impl NoticeColumns {
    /// The columns of `headers` for `kind`; a missing `resident_id` or `date` column, or a
    /// column that is none of these (a misspelt field would otherwise be left out unseen), makes
    /// the file unusable.
    fn of(path: &Path, kind: NoticeKind, headers: &[String]) -> Result<Self, UnusableFile> {
        let column = |name: &str| headers.iter().position(|header| header == name);
        let field_names: Vec<&'static str> = NoticeField::of(kind).map(NoticeField::as_str).collect();
        let accepted = || {
            let mut names = vec!["resident_id", "date", "to"];
            names.extend(&field_names);
            names.join(", ")
        };
        let unknown: Vec<String> = headers
            .iter()
            .filter(|h| {
                !["resident_id", "date", "to"].contains(&h.as_str()) && !field_names.contains(&h.as_str())
            })
            .map(|name| name.chars().take(40).collect())
            .collect();
        if !unknown.is_empty() {
            return Err(UnusableFile(format!(
                "{}: columns that are not part of a {} notice: {} (the columns are {})",
                path.display(),
                kind.as_str(),
                csv_input::first_of(&unknown, 8),
                accepted()
            )));
        }
        let required = |name: &str| {
            column(name).ok_or_else(|| {
                UnusableFile(format!(
                    "{}: no {name} column (the columns are {})",
                    path.display(),
                    accepted()
                ))
            })
        };
        Ok(Self {
            resident_id: required("resident_id")?,
            date: required("date")?,
            to: column("to"),
            fields: field_names
                .iter()
                .filter_map(|name| column(name).map(|at| (*name, at)))
                .collect(),
        })
    }
}

fn cell(record: &Record, index: usize) -> &str {
    record.cells.get(index).map_or("", String::as_str)
}

/// What makes a row the same notice again: a digest of kind, county, person and day, sent to
/// our own node as the idempotency key; the node derives the notice id from it under a key of its
/// own, so the id that travels to the peer and into logs reveals nothing of the row. The same row
/// gives the same key in every run and every export; rows that differ in any of these, another.
pub fn row_key(kind: &str, to: &str, resident_id: &str, date: &str) -> String {
    let resident_id = resident_id.trim().to_ascii_uppercase();
    let digest = Sha256::digest(format!(
        "hancha notice\0{kind}\0{}\0{resident_id}\0{}",
        to.trim(),
        date.trim()
    ));
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What became of the rows.
#[derive(Default)]
struct Tally {
    sent: u64,
    sent_before: u64,
    queued: u64,
    refused_by_peer: Refusals,
    rejected: Refusals,
}

pub fn run(args: NotifyArgs) -> anyhow::Result<ExitCode> {
    let path = args.file.clone().expect("run only with --file");
    let kind: NoticeKind = args
        .kind
        .parse()
        .map_err(|error: crate::domain::vocabulary::UnknownName| UnusableFile(format!("--kind: {error}")))?;
    // A first reading of the whole file: an unusable file sends nothing.
    let mut reader = csv_input::open(&path, args.encoding)?;
    let columns = NoticeColumns::of(&path, kind, reader.headers())?;
    let mut rows = 0u64;
    for record in reader.by_ref() {
        record.map_err(|error| csv_input::explain(&path, error))?;
        rows += 1;
    }
    let decoded_as = reader.decoded_as();
    let digest = reader.digest().unwrap_or_default();
    if decoded_as != Decoded::Utf8 && !args.json {
        eprintln!("{}: read as {decoded_as}", path.display());
    }
    let default_to = args.to.clone().unwrap_or_default();
    let mut row_wait = args.wait.min(ROW_WAIT);
    runtime()?.block_on(async {
        let client = args.node.connect().await?;
        let progress = ProgressBar::with_draw_target(Some(rows), ProgressDrawTarget::stderr());
        progress.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} notices sent ({eta} left)").expect("a valid template"),
        );
        if args.json {
            progress.set_draw_target(ProgressDrawTarget::hidden());
        }
        let mut tally = Tally::default();
        let mut reader = csv_input::open(&path, decoded_as)?;
        let mut taken = 0u64;
        // rows go out a few at a time, settled in file order
        let mut in_flight = FuturesOrdered::new();
        let gone_away = |cause: String, taken: u64| {
            progress.abandon();
            anyhow::Error::new(NodeUnavailable(format!(
                "the node at {} went away after {} of {} rows ({cause}); run the same command again to send the rest — nothing is sent twice",
                args.node.address,
                display::thousands(taken),
                display::thousands(rows),
            )))
        };
        for record in reader.by_ref() {
            let Ok(record) = record else {
                progress.abandon();
                bail!(
                    "{} changed while it was read; run the same command again (nothing is sent twice)",
                    path.display()
                );
            };
            progress.inc(1);
            let resident_id = cell(&record, columns.resident_id);
            let date = cell(&record, columns.date);
            let to = columns
                .to
                .map(|at| cell(&record, at))
                .filter(|to| !to.is_empty())
                .unwrap_or(&default_to);
            if date.is_empty() {
                tally.rejected.add(record.line, "date: empty; each row needs the day of the event (YYYY-MM-DD)");
                continue;
            }
            let request = pb::NotifyRequest {
                to_county: to.to_string(),
                kind: kind.as_str().to_string(),
                resident_id: resident_id.to_string(),
                occurred_on: date.to_string(),
                fields: columns
                    .fields
                    .iter()
                    .map(|(name, at)| (name.to_string(), cell(&record, *at).to_string()))
                    .filter(|(_, value)| !value.is_empty())
                    .collect(),
                idempotency_key: row_key(kind.as_str(), to, resident_id, date),
                message_id: String::new(),
                wait_ms: u32::try_from(row_wait.as_millis()).unwrap_or(u32::MAX),
            };
            let mut sender = client.clone();
            let line = record.line;
            in_flight.push_back(async move { (line, sender.notify(request).await) });
            if in_flight.len() >= IN_FLIGHT
                && let Some((line, result)) = in_flight.next().await
            {
                settle(&mut tally, &mut row_wait, &mut taken, line, result).map_err(|gone| gone_away(gone, taken))?;
            }
        }
        while let Some((line, result)) = in_flight.next().await {
            settle(&mut tally, &mut row_wait, &mut taken, line, result).map_err(|gone| gone_away(gone, taken))?;
        }
        progress.finish_and_clear();
        if reader.digest().as_deref() != Some(digest.as_str()) {
            bail!(
                "{} changed while it was read; run the same command again (nothing is sent twice)",
                path.display()
            );
        }
        report(&args, &path, rows, &tally);
        Ok(if tally.rejected.rows() == 0 && tally.refused_by_peer.rows() == 0 {
            Exit::Done
        } else {
            Exit::Refused
        }
        .into())
    })
}

/// Counts one row's answer from the node; `Err` with the cause when the node went away.
fn settle(
    tally: &mut Tally,
    row_wait: &mut Duration,
    taken: &mut u64,
    line: u32,
    result: Result<tonic::Response<pb::NotifyResponse>, tonic::Status>,
) -> Result<(), String> {
    match result {
        Ok(response) => {
            let sent = response.into_inner();
            match sent.state.as_str() {
                "rejected" => tally.refused_by_peer.add(line, &sent.reject_reason),
                "queued" => {
                    tally.queued += 1;
                    // the peer is slow or away: the rest go to the outbox unwaited
                    *row_wait = Duration::ZERO;
                }
                _ if sent.repeat => tally.sent_before += 1,
                _ => tally.sent += 1,
            }
            *taken += 1;
        }
        Err(status) => {
            if let Some(gone) = explain::went_away(&status) {
                return Err(gone.cause.to_string());
            }
            tally.rejected.add(line, &row_reason(status));
        }
    }
    Ok(())
}

/// Why the node refused a row, in one line: its field violations when it names them (the
/// node's message only lists their names), else its message. Never a value from the row.
fn row_reason(status: tonic::Status) -> String {
    use tonic_types::StatusExt;
    let violations: Vec<String> = status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect()
        })
        .unwrap_or_default();
    if violations.is_empty() || !status.message().starts_with("invalid fields") {
        format!("{:#}", explain::explain(status)).replace("\n  ", "; ")
    } else {
        violations.join("; ")
    }
}

fn report(args: &NotifyArgs, path: &Path, rows: u64, tally: &Tally) {
    if args.json {
        let (rejected, rejected_reasons) = tally.rejected.to_json();
        let (refused, refused_reasons) = tally.refused_by_peer.to_json();
        println!(
            "{}",
            json!({
                "file_rows": rows, "sent": tally.sent, "sent_before": tally.sent_before,
                "queued": tally.queued, "refused_by_peer": tally.refused_by_peer.rows(),
                "refused_by_peer_rows": refused, "refused_by_peer_reasons": refused_reasons,
                "rejected_rows": tally.rejected.rows(), "rejected": rejected,
                "rejected_reasons": rejected_reasons,
            })
        );
        return;
    }
    let to = match &args.to {
        Some(to) => display::county(to),
        None => "each person's county".to_string(),
    };
    println!("{} notices of {} to {to}: {rows} rows", args.kind, path.display());
    println!("  sent now             {}", tally.sent);
    println!(
        "  sent before          {} (an earlier run of these rows: nothing added)",
        tally.sent_before
    );
    println!(
        "  queued               {} (not yet acknowledged; delivered when the county can be reached)",
        tally.queued
    );
    println!("  refused by the peer  {}", tally.refused_by_peer.rows());
    for line in tally.refused_by_peer.lines() {
        println!("    {line}");
    }
    println!("  rejected here        {}", tally.rejected.rows());
    for line in tally.rejected.lines() {
        println!("    {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_has_the_same_key_in_every_run_and_another_row_another() {
        let id = row_key(
            "contraception_check",
            "431322",
            "43070319900506028x",
            "2026-09-15",
        );
        assert!(
            !id.contains("28X") && !id.contains("28x"),
            "a digest, not the row"
        );
        assert_eq!(
            id,
            row_key(
                "contraception_check",
                " 431322",
                "43070319900506028X ",
                "2026-09-15"
            )
        );
        assert_ne!(
            id,
            row_key(
                "contraception_check",
                "431322",
                "43070319900506028X",
                "2026-09-16"
            )
        );
        assert_ne!(
            id,
            row_key("pregnancy", "431322", "43070319900506028X", "2026-09-15")
        );
        assert_ne!(
            id,
            row_key("contraception_check", "", "43070319900506028X", "2026-09-15")
        );
    }
}
