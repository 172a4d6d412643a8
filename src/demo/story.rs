//! The story's first two steps, each through the operator API as a county's own systems would
//! call it: a certificate checked at a township window (查证验证), and a quarterly sweep (清查)
//! during which the sweeping county's node goes down for maintenance and comes back.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tonic::transport::Channel;

use super::cluster::Cluster;
use super::population::Population;
use super::{DINGCHENG, XINHUA, field_value, thousands};
use crate::domain::vocabulary::StatusField;
use crate::proto::operator as pb;
use crate::proto::operator::operator_client::OperatorClient;

/// Inquiries per `Sweep` call, as `hancha sweep` sends them.
const SWEEP_CHUNK: usize = 1_000;

/// How long the sweeping county's node stays down.
const MAINTENANCE: Duration = Duration::from_secs(2);

/// The progress bar's message while answers arrive.
const ANSWERS_BACK: &str = "answers back at 新化县";

/// How long a sweep may take before the demo gives up on it.
const SWEEP_PATIENCE: Duration = Duration::from_secs(180);

/// What the window step leaves for later steps to point at.
#[derive(Clone, Debug)]
pub struct WindowOutcome {
    /// The inquiry's id at 鼎城区, for `hancha show`.
    pub message_id: String,
}

/// ① A clerk at a 鼎城区 township window verifies a 新化县 woman's certificate, waiting for the
/// answer inline.
pub async fn verify_at_the_window(
    cluster: &Cluster,
    population: &Population,
) -> anyhow::Result<WindowOutcome> {
    let woman = population.woman_at_the_window();
    let certificate = woman.status.certificate_number.clone().unwrap_or_default();
    println!("① 查证验证 certificate verification at a township window");
    println!(
        "  A clerk at the {} window in 鼎城区 serves {} (ID {}), registered in 新化县,",
        woman.residence.0.name(),
        woman.name,
        woman.resident_id.masked()
    );
    println!("  who shows her 婚育证明 No. {certificate}. 鼎城区's node asks 新化县's (wait 2 s):");
    let mut dingcheng = cluster.operator(DINGCHENG).await?;
    let request_template = pb::AskRequest {
        to_county: XINHUA.into(),
        kind: "certificate_verification".into(),
        resident_id: woman.resident_id.as_str().to_string(),
        certificate_number: certificate.clone(),
        urgent: false,
        wait_ms: 2_000,
    };
    let request = request_template.clone();
    let answer = ask_and_show(&mut dingcheng, request).await?;

    // The next woman in line shows the same certificate: a borrowed one is called out.
    let next_in_line = population
        .xinhua_in_dingcheng
        .iter()
        .skip(1)
        .find(|migrant| migrant.resident_id.sex() == crate::domain::resident_id::Sex::Female);
    if let Some(next) = next_in_line {
        println!(
            "  Next in line, {} (ID {}) shows the same certificate No. {certificate}:",
            next.name,
            next.resident_id.masked()
        );
        let borrowed = pb::AskRequest {
            resident_id: next.resident_id.as_str().to_string(),
            certificate_number: certificate.clone(),
            ..request_template.clone()
        };
        ask_and_show(&mut dingcheng, borrowed).await?;
    }
    println!();
    Ok(WindowOutcome {
        message_id: answer.message_id,
    })
}

/// Asks 新化县 on the clerk's behalf and prints the answer as the window sees it: whether the
/// certificate shown is the person's first, then the fields.
async fn ask_and_show(
    dingcheng: &mut crate::proto::operator::operator_client::OperatorClient<tonic::transport::Channel>,
    request: pb::AskRequest,
) -> anyhow::Result<pb::AskResponse> {
    let started = Instant::now();
    let answer = dingcheng
        .ask(request)
        .await
        .map_err(crate::present::explain)
        .context("asking 新化县")?
        .into_inner();
    let latency = started.elapsed().as_secs_f64() * 1000.0;
    if answer.state == "answered" {
        println!(
            "  新化县 answered inline in {latency:.1} ms (mutual TLS 1.3, agreement 430703-431322): {}",
            outcome_label(&answer.outcome)
        );
        if let Some(line) = answer
            .fields
            .get(StatusField::CertificatePresented.as_str())
            .and_then(|value| crate::present::display::certificate_presented(value))
        {
            println!("    {line}");
        }
        for field in StatusField::ALL {
            if let Some(value) = answer.fields.get(field.as_str()) {
                println!(
                    "    {:<24} {:<10} {}",
                    field.as_str(),
                    field.label_zh(),
                    field_value(*field, value)
                );
            }
        }
    } else {
        println!(
            "  not answered inline (state {}{}) after {latency:.1} ms",
            answer.state,
            if answer.reject_reason.is_empty() {
                String::new()
            } else {
                format!(": {}", answer.reject_reason)
            }
        );
    }
    Ok(answer)
}

/// ② 新化县 sweeps its outflow persons living in 鼎城区, stopping and restarting its node once
/// about a third of the answers are back.
pub async fn sweep_with_maintenance(cluster: &mut Cluster, population: &Population) -> anyhow::Result<()> {
    let subjects = &population.xinhua_in_dingcheng;
    let size = subjects.len() as u32;
    println!(
        "② 清查 sweep: 新化县 asks 鼎城区 about its {} outflow persons living there",
        thousands(size)
    );
    let items: Vec<pb::SweepItem> = subjects
        .iter()
        .enumerate()
        .map(|(index, migrant)| pb::SweepItem {
            line: index as u32 + 1,
            resident_id: migrant.resident_id.as_str().to_string(),
            certificate_number: String::new(),
            // Pregnant women are key subjects: the agreement's urgent deadline applies.
            urgent: migrant.status.pregnant == Some(true),
        })
        .collect();
    let sweep_key = format!("demo:{XINHUA}:outflow_status:{}", uuid::Uuid::now_v7());
    let mut xinhua = cluster.operator(XINHUA).await?;
    let started = Instant::now();
    let mut accepted = 0;
    for chunk in items.chunks(SWEEP_CHUNK) {
        let request = pb::SweepRequest {
            to_county: DINGCHENG.into(),
            kind: "outflow_status".into(),
            sweep_key: sweep_key.clone(),
            items: chunk.to_vec(),
        };
        let response = xinhua
            .sweep(request)
            .await
            .map_err(crate::present::explain)
            .context("submitting the sweep")?
            .into_inner();
        accepted += response.accepted;
    }
    let urgent = items.iter().filter(|item| item.urgent).count() as u32;
    println!(
        "  {} inquiries (流出人口函查) submitted in {} of up to {} ({} urgent: pregnant, 15-day deadline) in {:.1} s",
        thousands(accepted),
        match items.len().div_ceil(SWEEP_CHUNK) {
            1 => "1 call".to_string(),
            calls => format!("{calls} calls"),
        },
        thousands(SWEEP_CHUNK as u64),
        urgent,
        started.elapsed().as_secs_f64()
    );

    let progress = ProgressBar::with_draw_target(Some(u64::from(size)), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("  {bar:30} {pos}/{len} {wide_msg}").expect("a valid template"),
    );
    progress.set_message(ANSWERS_BACK);
    let mut maintained = false;
    let status = loop {
        let status = sweep_status(&mut xinhua, &sweep_key).await?;
        progress.set_position(u64::from(status.answered));
        let settled = status.answered + status.rejected >= size;
        // The maintenance stop happens once, at about a third; should the sweep outrun the
        // polling (a tiny sweep on a fast machine), it happens anyway, after the last answer.
        if !maintained && (status.answered >= size / 3 || settled) {
            maintained = true;
            maintenance(cluster, &progress, status.answered, size).await?;
            xinhua = cluster.operator(XINHUA).await?;
            continue;
        }
        if settled {
            break status;
        }
        if started.elapsed() > SWEEP_PATIENCE {
            progress.finish_and_clear();
            bail!(
                "the sweep did not finish within {} s: {} answered, {} pending, {} queued",
                SWEEP_PATIENCE.as_secs(),
                status.answered,
                status.pending,
                status.queued
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    progress.finish_and_clear();
    println!(
        "  sweep answered {}/{} in {:.1} s: found {} (registered in 鼎城区), not found {} (not registered there: 登记率 < 100%)",
        thousands(status.answered),
        thousands(size),
        started.elapsed().as_secs_f64(),
        thousands(status.found),
        thousands(status.not_found)
    );
    if status.rejected > 0 {
        println!("  refused by 鼎城区: {}", status.rejected);
    }
    println!();
    Ok(())
}

/// Stops 新化县's node gracefully, keeps it down for [`MAINTENANCE`] while showing what 鼎城区
/// holds for it, and starts it again on the same port and database.
async fn maintenance(
    cluster: &mut Cluster,
    progress: &ProgressBar,
    answered: u32,
    size: u32,
) -> anyhow::Result<()> {
    progress.suspend(|| {
        println!(
            "  {} of {} answered: stopping 新化县's node for maintenance (graceful stop)",
            thousands(answered),
            thousands(size)
        )
    });
    // Kept to read the stopped node's outbox: its database stays up.
    let xinhua = std::sync::Arc::clone(cluster.node(XINHUA));
    let stopping = Instant::now();
    cluster.stop(XINHUA).await;
    let stopped_in = stopping.elapsed().as_secs_f64();
    let unsent = outbox_for(xinhua.store(), DINGCHENG).await?;
    drop(xinhua);
    progress.suspend(|| {
        println!(
            "  新化县 stopped in {stopped_in:.1} s; 鼎城区 answers on and keeps the confirmations for it"
        )
    });
    let until = Instant::now() + MAINTENANCE;
    let mut waiting = 0;
    loop {
        waiting = outbox_for(cluster.node(DINGCHENG).store(), XINHUA)
            .await?
            .max(waiting);
        progress.set_message(format!("新化县 down, {} wait at 鼎城区", thousands(waiting)));
        if Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.restart(XINHUA).await?;
    progress.set_message(ANSWERS_BACK);
    let also = if unsent > 0 {
        format!(
            ", 新化县 sends the {} inquiries that waited in its own",
            thousands(unsent)
        )
    } else {
        String::new()
    };
    progress.suspend(|| {
        println!(
            "  新化县 restarted on the same port and database after {:.0} s: 鼎城区 delivers the {} confirmations that waited in its outbox{also}",
            MAINTENANCE.as_secs_f64(),
            thousands(waiting)
        )
    });
    Ok(())
}

/// Messages waiting in a node's outbox for `peer`.
async fn outbox_for(store: &crate::store::Store, peer: &str) -> anyhow::Result<u64> {
    let depth = store.outbox_depth().await?;
    Ok(depth
        .into_iter()
        .find(|(p, _)| p.as_str() == peer)
        .map(|(_, count)| count.unsigned_abs())
        .unwrap_or(0))
}

/// A sweep's state at the county that sent it.
pub async fn sweep_status(
    client: &mut OperatorClient<Channel>,
    sweep_key: &str,
) -> anyhow::Result<pb::SweepStatusResponse> {
    let request = pb::SweepStatusRequest {
        sweep_key: sweep_key.to_string(),
        list_inquiries: false,
    };
    Ok(client
        .sweep_status(request)
        .await
        .map_err(crate::present::explain)?
        .into_inner())
}

/// `found 查到`.
pub fn outcome_label(outcome: &str) -> String {
    match outcome.parse::<crate::domain::vocabulary::AnswerOutcome>() {
        Ok(parsed) => format!("{outcome} {}", parsed.label_zh()),
        Err(_) => outcome.to_string(),
    }
}
