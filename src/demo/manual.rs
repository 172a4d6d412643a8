//! The story's third step: 邵东市 asks 鼎城区 about some of its outflow persons, and because the
//! agreement has 鼎城区 review every answer to 邵东市 (`automatic_answers = false`), the
//! inquiries wait in 鼎城区's pending list until an operator answers them one by one.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::cluster::Cluster;
use super::population::Population;
use super::story::{outcome_label, sweep_status};
use super::{DINGCHENG, SHAODONG, field_value};
use crate::domain::person::Flow;
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::StatusField;
use crate::present::explain;
use crate::proto::operator as pb;

/// How many of its people 邵东市 asks about, and how many of those 鼎城区 has not registered.
const ASKED: usize = 20;
const UNKNOWN_AMONG_ASKED: usize = 2;

/// Lines of the pending list shown, and answers shown one by one before the rest are summed up.
const SHOWN: usize = 5;

/// How long the step waits for messages to travel before giving up.
const PATIENCE: Duration = Duration::from_secs(60);

/// ③ 邵东市 asks; 鼎城区's operator answers by hand from the registry; the answers reach 邵东市.
pub async fn answer_by_hand(cluster: &Cluster, population: &Population) -> anyhow::Result<()> {
    println!("③ 人工答复 answers by hand: 邵东市 asks 鼎城区 about {ASKED} of its outflow persons");
    println!(
        "  The agreement 430703-430582 v2 has 鼎城区 review every answer to 邵东市 (automatic_answers = false)."
    );
    let (known, unknown): (Vec<_>, Vec<_>) = population
        .shaodong_in_dingcheng
        .iter()
        .partition(|migrant| migrant.known_at_destination);
    let asked: Vec<_> = known
        .into_iter()
        .take(ASKED - UNKNOWN_AMONG_ASKED)
        .chain(unknown.into_iter().take(UNKNOWN_AMONG_ASKED))
        .collect();
    let items = asked
        .iter()
        .enumerate()
        .map(|(index, migrant)| pb::SweepItem {
            line: index as u32 + 1,
            resident_id: migrant.resident_id.as_str().to_string(),
            ..Default::default()
        })
        .collect();
    let sweep_key = format!("demo:{SHAODONG}:outflow_status:{}", uuid::Uuid::now_v7());
    let mut shaodong = cluster.operator(SHAODONG).await?;
    let request = pb::SweepRequest {
        to_county: DINGCHENG.into(),
        kind: "outflow_status".into(),
        sweep_key: sweep_key.clone(),
        items,
    };
    let sent = shaodong
        .sweep(request)
        .await
        .map_err(explain)
        .context("sending 邵东市's inquiries")?
        .into_inner()
        .accepted;

    let mut dingcheng = cluster.operator(DINGCHENG).await?;
    let started = Instant::now();
    let pending = loop {
        let request = pb::ListPendingRequest {
            kind: "outflow_status".into(),
            ..Default::default()
        };
        let list = dingcheng
            .list_pending(request)
            .await
            .map_err(explain)?
            .into_inner();
        let from_shaodong: Vec<_> = list
            .inquiries
            .into_iter()
            .filter(|inquiry| inquiry.peer_county == SHAODONG)
            .collect();
        if from_shaodong.len() >= sent as usize {
            break from_shaodong;
        }
        if started.elapsed() > PATIENCE {
            bail!(
                "only {} of {sent} inquiries reached 鼎城区's pending list",
                from_shaodong.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "  鼎城区's pending list (`hancha pending`), first {SHOWN} of {}:",
        pending.len()
    );
    for line in crate::present::pending_table(&pending[..SHOWN.min(pending.len())], false).lines() {
        println!("    {line}");
    }

    println!("  A 鼎城区 operator looks each person up in the county's registry and answers:");
    let mut answered_by_hand = 0u32;
    for (index, inquiry) in pending.iter().enumerate() {
        let shown = dingcheng
            .show_inquiry(pb::ShowInquiryRequest {
                message_id: inquiry.message_id.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner();
        let subject = ResidentId::parse(&shown.subject_resident_id).context("the inquiry's subject")?;
        let person = cluster.node(DINGCHENG).store().person(&subject).await?;
        let registered =
            person.filter(|p| p.flow == Flow::Inflow && p.registered_county.as_str() == SHAODONG);
        // What the agreement lets 邵东市 see and the operator chooses to send: where the
        // person lives and since when.
        let sent_fields = [StatusField::Township, StatusField::RegisteredSince];
        let (outcome, fields, detail) = match &registered {
            Some(person) => {
                let values: Vec<(StatusField, String)> = sent_fields
                    .iter()
                    .filter_map(|field| Some((*field, person.status.get_string(*field)?)))
                    .collect();
                let detail = values
                    .iter()
                    .map(|(field, value)| format!("{} {}", field.label_zh(), field_value(*field, value)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let fields = values
                    .into_iter()
                    .map(|(field, value)| (field.as_str().to_string(), value))
                    .collect();
                ("found", fields, format!(": {detail}"))
            }
            None => ("not_found", Default::default(), String::new()),
        };
        dingcheng
            .answer(pb::AnswerRequest {
                message_id: inquiry.message_id.clone(),
                outcome: outcome.into(),
                fields,
            })
            .await
            .map_err(explain)
            .context("answering by hand")?;
        answered_by_hand += 1;
        if index < SHOWN {
            println!(
                "    {}  {}{detail}",
                inquiry.subject_masked,
                outcome_label(outcome)
            );
        }
    }
    if pending.len() > SHOWN {
        println!("    … and {} more the same way", pending.len() - SHOWN);
    }

    let started = Instant::now();
    let status = loop {
        let status = sweep_status(&mut shaodong, &sweep_key).await?;
        if status.answered >= sent {
            break status;
        }
        if started.elapsed() > PATIENCE {
            bail!("only {} of {sent} answers reached 邵东市", status.answered);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "  {answered_by_hand} pending inquiries answered by hand; all {} answers reached 邵东市 in {:.1} s (found {}, not found {})",
        status.answered,
        started.elapsed().as_secs_f64(),
        status.found,
        status.not_found
    );
    println!();
    Ok(())
}

/// An inquiry left in 鼎城区's pending list for whoever tries the commands, with the answer its
/// registry suggests.
#[derive(Clone, Debug)]
pub struct LeftPending {
    /// The inquiry's id (the same at both counties).
    pub message_id: String,
    /// `--field NAME=VALUE` arguments for a `found` answer from 鼎城区's registry.
    pub fields: Vec<String>,
}

/// With `--keep-running`: 邵东市 asks about a few more of its people, whose inquiries then wait
/// in 鼎城区's pending list for someone to answer with `hancha answer`.
pub async fn leave_for_the_operator(
    cluster: &Cluster,
    population: &Population,
) -> anyhow::Result<Vec<LeftPending>> {
    const LEFT: usize = 3;
    let next: Vec<_> = population
        .shaodong_in_dingcheng
        .iter()
        .filter(|migrant| migrant.known_at_destination)
        .skip(ASKED - UNKNOWN_AMONG_ASKED)
        .take(LEFT)
        .collect();
    let request = pb::SweepRequest {
        to_county: DINGCHENG.into(),
        kind: "outflow_status".into(),
        sweep_key: format!("demo:{SHAODONG}:outflow_status:{}", uuid::Uuid::now_v7()),
        items: next
            .iter()
            .enumerate()
            .map(|(index, migrant)| pb::SweepItem {
                line: index as u32 + 1,
                resident_id: migrant.resident_id.as_str().to_string(),
                ..Default::default()
            })
            .collect(),
    };
    let mut shaodong = cluster.operator(SHAODONG).await?;
    let results = shaodong
        .sweep(request)
        .await
        .map_err(explain)?
        .into_inner()
        .results;
    let mut dingcheng = cluster.operator(DINGCHENG).await?;
    let started = Instant::now();
    loop {
        let list = dingcheng
            .list_pending(pb::ListPendingRequest::default())
            .await
            .map_err(explain)?
            .into_inner();
        let arrived = results
            .iter()
            .filter(|r| list.inquiries.iter().any(|i| i.message_id == r.message_id))
            .count();
        if arrived == results.len() {
            break;
        }
        if started.elapsed() > PATIENCE {
            bail!(
                "only {arrived} of {} inquiries reached 鼎城区's pending list",
                results.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(results
        .into_iter()
        .zip(next)
        .map(|(result, migrant)| {
            let person = migrant.as_inflow();
            let fields = [StatusField::Township, StatusField::RegisteredSince]
                .iter()
                .filter_map(|field| {
                    Some(format!(
                        "{}={}",
                        field.as_str(),
                        person.status.get_string(*field)?
                    ))
                })
                .collect();
            LeftPending {
                message_id: result.message_id,
                fields,
            }
        })
        .collect())
}
