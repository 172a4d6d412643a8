//! ④ Notices (信息通报), the other half of 双向管理: 鼎城区 reports the quarter's 查环查孕 results of
//! the 新化县 women living there as one batch, then the birth of one of their children; 新化县's
//! registry takes the check results at receipt (the agreement says so), an operator applies the
//! birth and answers it with feedback (反馈). Everything goes through the operator API, as
//! `hancha notify`, `hancha notices apply` and `hancha feedback` do.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use tonic::transport::Channel;

use super::cluster::Cluster;
use super::population::{Migrant, Population};
use super::{DINGCHENG, XINHUA, thousands};
use crate::domain::person::Person;
use crate::domain::resident_id::Sex;
use crate::domain::time::today_in_china;
use crate::domain::vocabulary::{ContraceptionStatus, MaritalStatus};
use crate::present::explain;
use crate::proto::operator as pb;
use crate::proto::operator::operator_client::OperatorClient;

/// How long the step waits for the notices to be received and settled at 新化县.
const PATIENCE: Duration = Duration::from_secs(30);

/// ④ The quarter's check results as a batch, a birth and its feedback. Returns whether every
/// notice was received and did what the agreement says, and the feedback came back.
pub async fn notices(cluster: &Cluster, population: &Population) -> anyhow::Result<bool> {
    println!("④ 信息通报 notices: 鼎城区 tells 新化县 what happened to its women living in 鼎城区");
    let today = today_in_china();
    let mut dingcheng = cluster.operator(DINGCHENG).await?;
    let mut xinhua = cluster.operator(XINHUA).await?;

    // the quarterly check: 鼎城区 records each result in its own registry and reports it
    let checked: Vec<&Migrant> = population
        .xinhua_in_dingcheng
        .iter()
        .filter(|migrant| migrant.known_at_destination)
        .filter(|migrant| migrant.resident_id.sex() == Sex::Female)
        .filter(|migrant| migrant.status.marital_status == Some(MaritalStatus::Married))
        .filter(|migrant| (15..=49).contains(&migrant.resident_id.age_on(today)))
        .collect();
    let mut recorded: HashMap<String, Person> = HashMap::new();
    for migrant in &checked {
        let mut person = migrant.as_inflow();
        person.status.contraception_date = Some(today);
        person.status.pregnant = Some(migrant.status.pregnant == Some(true));
        recorded.insert(migrant.resident_id.as_str().to_string(), person);
    }
    let persons: Vec<Person> = recorded.values().cloned().collect();
    cluster
        .node(DINGCHENG)
        .store()
        .upsert_persons(&persons)
        .await
        .context("recording the checks at 鼎城区")?;
    println!(
        "  鼎城区's township clinics checked {} married 新化县 women of 15–49 this quarter (查环查孕) and recorded the results;",
        thousands(checked.len() as u64)
    );
    println!(
        "  its office reports them to 新化县 as one batch, as `hancha notify --file results.csv --kind contraception_check` does:"
    );
    let started = Instant::now();
    // eight at a time, as the batch command sends its rows: each call returns once queued
    let requests = checked.iter().map(|migrant| {
        let (result, measure) = check_of(migrant);
        let request = pb::NotifyRequest {
            to_county: XINHUA.into(),
            kind: "contraception_check".into(),
            resident_id: migrant.resident_id.as_str().into(),
            occurred_on: today.to_string(),
            fields: [("check_result", result), ("measure", measure)]
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            ..Default::default()
        };
        let mut client = dingcheng.clone();
        async move { client.notify(request).await }
    });
    let sent: Vec<String> = futures::stream::iter(requests)
        .buffer_unordered(8)
        .map(|result| result.map(|receipt| receipt.into_inner().message_id))
        .try_collect()
        .await
        .map_err(explain)
        .context("reporting the check results")?;
    let applied = wait_until_settled(&mut xinhua, "contraception_check", sent.len()).await?;
    println!(
        "    {} notices queued and delivered in {:.2} s; 新化县 acknowledged each, and the agreement applies check results",
        thousands(sent.len() as u64),
        started.elapsed().as_secs_f64()
    );
    println!(
        "    at receipt: {} of them updated 新化县's registry (contraception date, measure, pregnant), each recorded in its history",
        thousands(applied as u64)
    );
    println!("    (`hancha registry history ID` names the notice that changed each field).");

    // a birth: 鼎城区 registers it and sends a birth notice; 新化县's operator applies it and answers
    let mother = new_mother(population).context("no 新化县 mother both registries hold")?;
    let mut registered = recorded
        .get(mother.resident_id.as_str())
        .cloned()
        .unwrap_or_else(|| mother.as_inflow());
    let children_before = registered.status.children_count.unwrap_or(0);
    registered.status.children_count = Some(children_before + 1);
    registered.status.pregnant = Some(false);
    cluster
        .node(DINGCHENG)
        .store()
        .upsert_persons(&[registered])
        .await
        .context("registering the birth at 鼎城区")?;
    let request = pb::NotifyRequest {
        to_county: XINHUA.into(),
        kind: "birth".into(),
        resident_id: mother.resident_id.as_str().into(),
        occurred_on: today.to_string(),
        fields: [
            ("child_sex", "female".to_string()),
            ("birth_order", (children_before + 1).to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect(),
        wait_ms: 5_000,
        ..Default::default()
    };
    let receipt = dingcheng
        .notify(request)
        .await
        .map_err(explain)
        .context("sending the birth notice")?
        .into_inner();
    println!(
        "  鼎城区's {} office registers the birth of {}'s baby ({}, from 新化县) and sends a birth notice (出生通报):",
        mother.residence.0.name(),
        mother.name,
        mother.resident_id.masked()
    );
    println!(
        "    {}; 新化县 owes feedback by {}",
        receipt.state,
        receipt
            .feedback_due_at
            .as_ref()
            .and_then(|due| chrono::DateTime::from_timestamp(due.seconds, 0))
            .map(|due| due
                .with_timezone(&crate::domain::time::CHINA)
                .date_naive()
                .to_string())
            .unwrap_or_else(|| "—".into())
    );
    wait_until_settled(&mut xinhua, "birth", 0).await?;
    let applied = xinhua
        .apply_notice(pb::ApplyNoticeRequest {
            message_id: receipt.message_id.clone(),
        })
        .await
        .map_err(explain)
        .context("applying the birth notice at 新化县")?
        .into_inner()
        .notice
        .unwrap_or_default();
    println!(
        "    新化县's operator finds it waiting (`hancha notices --pending`) and applies it (`hancha notices apply`): {} changed",
        if applied.changed.is_empty() {
            "nothing".to_string()
        } else {
            applied.changed.join(", ")
        }
    );
    let feedback = xinhua
        .feedback(pb::FeedbackRequest {
            notice_id: receipt.message_id.clone(),
            outcome: "child_counted".into(),
            note: "已录入户籍地育龄妇女信息系统".into(),
            wait_ms: 5_000,
            ..Default::default()
        })
        .await
        .map_err(explain)
        .context("answering the birth notice")?
        .into_inner();
    let shown = wait_for_feedback(&mut dingcheng, &receipt.message_id).await?;
    let back = shown.as_ref().map(|feedback| feedback.outcome.as_str());
    println!(
        "    and answers it (`hancha feedback {} --outcome child_counted`): {}; 鼎城区 holds the feedback: {}",
        receipt.message_id,
        feedback.state,
        back.unwrap_or("✗ not received")
    );
    println!(
        "    Both registries now say {} children: tonight's reconciliation finds her recorded alike.",
        children_before + 1
    );
    println!();
    Ok(applied.state == "applied" && back == Some("child_counted"))
}

/// The check result and measure 鼎城区 reports for `migrant`, from what both registries hold.
fn check_of(migrant: &Migrant) -> (&'static str, &'static str) {
    let result = if migrant.status.pregnant == Some(true) {
        "pregnant"
    } else {
        "normal"
    };
    let measure = match migrant.status.contraception_status {
        Some(ContraceptionStatus::LongActing) => "iud",
        Some(ContraceptionStatus::ShortActing) => "pill",
        _ => "none",
    };
    (result, measure)
}

/// A 新化县 mother both registries hold, the first in the order 新化县's reconciliation plans
/// its inquiries (home township, then ID number).
pub(super) fn new_mother(population: &Population) -> Option<&Migrant> {
    population
        .xinhua_in_dingcheng
        .iter()
        .filter(|migrant| migrant.known_at_destination)
        .filter(|migrant| migrant.resident_id.sex() == Sex::Female)
        .filter(|migrant| migrant.status.marital_status == Some(MaritalStatus::Married))
        .min_by_key(|migrant| (migrant.home.0, migrant.resident_id.as_str()))
}

/// Waits until 新化县 holds at least `count` notices of `kind` from 鼎城区 (one, when `count` is
/// 0); returns how many of them were applied.
async fn wait_until_settled(
    xinhua: &mut OperatorClient<Channel>,
    kind: &str,
    count: usize,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    loop {
        let listed = xinhua
            .list_notices(pb::ListNoticesRequest {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .map_err(explain)?
            .into_inner()
            .notices;
        let of_kind: Vec<&pb::ReceivedNotice> = listed
            .iter()
            .filter(|notice| notice.kind == kind && notice.peer_county == DINGCHENG)
            .collect();
        if of_kind.len() >= count.max(1) || started.elapsed() > PATIENCE {
            return Ok(of_kind.iter().filter(|notice| notice.state == "applied").count());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until 鼎城区 holds the feedback to `notice`.
async fn wait_for_feedback(
    dingcheng: &mut OperatorClient<Channel>,
    notice: &str,
) -> anyhow::Result<Option<pb::FeedbackInfo>> {
    let started = Instant::now();
    loop {
        let shown = dingcheng
            .show_notice(pb::ShowNoticeRequest {
                message_id: notice.to_string(),
            })
            .await
            .map_err(explain)?
            .into_inner();
        if shown.feedback.is_some() || started.elapsed() > PATIENCE {
            return Ok(shown.feedback);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
