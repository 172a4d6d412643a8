//! The story's last step: the night's reconciliation (对账) between 新化县 and 鼎城区. Two
//! divergences a county office meets are set up first — 新化县 restores last night's backup and
//! loses answers 鼎城区 had sent (the birth of step ④ reached 新化县 as a notice, so the mother is
//! recorded alike) — then
//! 新化县's node reconciles with 鼎城区 through the operator API, as `hancha reconcile --with`
//! does, and the step shows what was found and what became of it.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use tonic::transport::Channel;
use uuid::Uuid;

use super::cluster::Cluster;
use super::notices::new_mother;
use super::population::{Migrant, Population};
use super::story::outcome_label;
use super::{DINGCHENG, XINHUA, county_name, field_value, thousands};
use crate::domain::division::CountyCode;
use crate::domain::vocabulary::StatusField;
use crate::present::explain;
use crate::proto::operator as pb;
use crate::proto::operator::operator_client::OperatorClient;
use crate::proto::operator::reconcile_progress::Step;

/// Answers 新化县 loses with its backup.
const LOST: u32 = 3;

/// How long the step waits for the re-delivered answers and for the inquiry about the birth.
const PATIENCE: Duration = Duration::from_secs(30);

/// Bytes of one element of a set: what sending the whole set, element by element, costs each.
const ELEMENT_BYTES: u64 = 32;

/// ⑦ The night: 新化县 loses answers; 新化县 reconciles with
/// 鼎城区. Returns whether every lost answer came back.
pub async fn reconcile_overnight(cluster: &Cluster, population: &Population) -> anyhow::Result<bool> {
    println!(
        "⑦ 对账 nightly reconciliation: 新化县 and 鼎城区 compare what they exchanged and whom they share"
    );
    let xinhua_store = cluster.node(XINHUA).store();
    let lost = xinhua_store
        .lose_answers_from(CountyCode::parse(DINGCHENG)?, LOST)
        .await?;
    println!(
        "  In the evening 新化县 restores last night's backup after a disk fault: the last {} answers 鼎城区 sent are",
        lost.len()
    );
    println!("    gone from its database, their inquiries still marked answered (the demo deletes them).");

    let mother = new_mother(population).context("no 新化县 mother both registries hold")?;
    let children = mother.status.children_count.unwrap_or(0) + 1;
    println!(
        "  At night 新化县's node reconciles with 鼎城区 through its operator API (`hancha reconcile --with 430703`):"
    );
    let mut xinhua = cluster.operator(XINHUA).await?;
    let mut dingcheng = cluster.operator(DINGCHENG).await?;
    let started = Instant::now();
    let runs = reconcile_with(&mut xinhua, DINGCHENG).await?;
    let finished = Instant::now();
    let peer_runs = peer_records(&mut dingcheng, &runs).await?;
    for run in &runs {
        print_run(run, peer_runs.get(&run.set));
    }
    println!(
        "    both sets in {:.2} s; each side recorded the run and its differences in one transaction",
        (finished - started).as_secs_f64()
    );

    let restored = wait_for_answers(xinhua_store, &lost, finished).await?;
    if let Some(people) = runs.iter().find(|run| run.set == "shared_people") {
        let cap = cluster.node(XINHUA).reconcile_settings().max_inquiries_per_run;
        let mother = (mother, children);
        report_people(&mut xinhua, people, population, mother, cap, finished).await?;
        report_of_the_peer(&mut dingcheng, &people.run_id).await?;
    }
    println!("  The same by hand, while the nodes run (`hancha demo --keep-running`):");
    let node = cluster.operator_address(XINHUA);
    println!("    hancha reconcile --with {DINGCHENG} --node {node}");
    println!("    hancha reconcile reports --node {node}        (add --csv for the persons, by township)");
    println!();
    Ok(restored)
}

/// Runs both sets with `peer` as `hancha reconcile --with` does; returns each set's run as
/// this side recorded it.
async fn reconcile_with(
    client: &mut OperatorClient<Channel>,
    peer: &str,
) -> anyhow::Result<Vec<pb::ReconcileRun>> {
    let request = pb::ReconcileRequest {
        with_county: peer.to_string(),
    };
    let mut stream = client
        .reconcile(request)
        .await
        .map_err(explain)
        .context("starting the reconciliation")?
        .into_inner();
    let mut runs = Vec::new();
    while let Some(progress) = stream.message().await.map_err(explain).context("reconciling")? {
        if let Some(Step::Done(run)) = progress.step {
            runs.push(run);
        }
    }
    Ok(runs)
}

/// The peer's record of the same runs (what it re-delivered, asked and reported), by set.
async fn peer_records(
    peer: &mut OperatorClient<Channel>,
    runs: &[pb::ReconcileRun],
) -> anyhow::Result<BTreeMap<String, pb::ReconcileRun>> {
    let Some(run_id) = runs.first().map(|run| run.run_id.clone()) else {
        return Ok(BTreeMap::new());
    };
    let request = pb::ListReconcileRunsRequest {
        with_county: XINHUA.into(),
        limit: 10,
    };
    let listed = peer
        .list_reconcile_runs(request)
        .await
        .map_err(explain)?
        .into_inner();
    Ok(listed
        .runs
        .into_iter()
        .filter(|run| run.run_id == run_id && run.role == "responder")
        .map(|run| (run.set.clone(), run))
        .collect())
}

/// Two lines per set: sizes, differences and their cost on the wire; then what each side did.
fn print_run(run: &pb::ReconcileRun, peer: Option<&pb::ReconcileRun>) {
    let whole_set = run.local_size * ELEMENT_BYTES;
    println!(
        "    {:<13} {} here, {} at 鼎城区: {} differences, found with {} on the wire ({} to send every element) in {:.2} s{}",
        run.set.replace('_', " "),
        thousands(run.local_size),
        thousands(run.peer_size),
        thousands(run.differences),
        bytes(run.bytes_sent + run.bytes_received),
        bytes(whole_set),
        run.seconds,
        if run.fell_back {
            " (so many differ that every element was sent)"
        } else {
            ""
        }
    );
    let by_side = |here: u32, there: Option<u32>| {
        let mut sides = Vec::new();
        if here > 0 {
            sides.push(format!("{} by 新化县", thousands(here)));
        }
        match there {
            Some(0) => {}
            Some(there) => sides.push(format!("{} by 鼎城区", thousands(there))),
            None => sides.push("? by 鼎城区".into()),
        }
        if sides.is_empty() {
            "none".to_string()
        } else {
            sides.join(", ")
        }
    };
    println!(
        "    {:<13} re-delivered {}; inquiries opened {}; reported {}",
        "",
        by_side(run.repaired, peer.map(|p| p.repaired)),
        by_side(run.inquiries_opened, peer.map(|p| p.inquiries_opened)),
        by_side(run.reported, peer.map(|p| p.reported)),
    );
}

/// Waits until 新化县 holds an answer again for each of the `lost` inquiries, and says so.
/// `since` is when the run ended.
async fn wait_for_answers(
    store: &crate::store::Store,
    lost: &[Uuid],
    since: Instant,
) -> anyhow::Result<bool> {
    let expected = lost.len() as u64;
    loop {
        let held = store.answers_held_for(lost).await?;
        if held >= expected {
            println!(
                "  The lost answers: 鼎城区, which wrote them, delivered them again; 新化县 holds {held} of the {expected} again, {} ms after the run.",
                since.elapsed().as_millis()
            );
            return Ok(true);
        }
        if since.elapsed() > PATIENCE {
            println!(
                "  ✗ the lost answers did not come back: 新化县 holds {held} of the {expected} after {} s",
                PATIENCE.as_secs()
            );
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 新化县's report of the shared-people run, grouped as a township office would read it, and
/// what became of the inquiry about the mother (with the children 新化县 knows of). `cap` is
/// the most inquiries a run opens; `finished` when the run ended.
async fn report_people(
    xinhua: &mut OperatorClient<Channel>,
    run: &pb::ReconcileRun,
    population: &Population,
    (mother, children_before): (&Migrant, u8),
    cap: usize,
    finished: Instant,
) -> anyhow::Result<()> {
    let request = pb::ListReconcileDifferencesRequest {
        with_county: DINGCHENG.into(),
    };
    let rows: Vec<pb::PersonDifference> = xinhua
        .list_reconcile_differences(request)
        .await
        .map_err(explain)?
        .into_inner()
        .differences
        .into_iter()
        .filter(|row| row.run_id == run.run_id)
        .collect();
    println!(
        "  新化县's report on the people it shares with 鼎城区 (`hancha reconcile reports --csv`, by township):"
    );
    let unregistered: HashSet<&str> = population
        .xinhua_in_dingcheng
        .iter()
        .filter(|migrant| !migrant.known_at_destination)
        .map(|migrant| migrant.resident_id.as_str())
        .collect();
    let unknown: Vec<&pb::PersonDifference> = rows
        .iter()
        .filter(|row| row.difference == "unknown_to_peer")
        .collect();
    if !unknown.is_empty() {
        let from_sweep = unknown
            .iter()
            .filter(|row| unregistered.contains(row.resident_id.as_str()))
            .count();
        let actions = count_actions(&unknown);
        println!(
            "    {} outflow persons 鼎城区 does not know: {} of them the sweep's not-found this afternoon (登记率 < 100%).",
            thousands(unknown.len() as u64),
            if from_sweep == unknown.len() {
                "all".to_string()
            } else {
                thousands(from_sweep as u64)
            }
        );
        let opened = actions.get("inquiry_opened").copied().unwrap_or(0);
        let already = actions.get("already_asked").copied().unwrap_or(0);
        println!(
            "      鼎城区 answered their inquiries not_found this afternoon, which is this very difference: \
             {} already asked (not asked again within the 30-day reply period), {} asked tonight{}.",
            thousands(already),
            thousands(opened),
            match actions.get("over_cap") {
                Some(over) => format!(
                    ", {} in later runs (at most {} inquiries a run)",
                    thousands(*over),
                    thousands(cap as u64)
                ),
                None => String::new(),
            }
        );
    }
    let mother_row = rows
        .iter()
        .find(|row| row.resident_id == mother.resident_id.as_str());
    match mother_row {
        Some(row) if row.difference == "differs" => {
            println!(
                "    ✗ 1 person both know, recorded differently though her birth was notified (2 versions, so 2 differences): {} ({}).",
                mother.name,
                mother.resident_id.masked()
            );
            if row.inquiry_id.is_empty() {
                println!(
                    "      Not asked about in this run ({}): in a later one.",
                    row.action
                );
            } else {
                show_answer(xinhua, &row.inquiry_id, children_before, finished).await?;
            }
        }
        Some(row) => println!(
            "    {} ({}): {}, {}",
            mother.name,
            mother.resident_id.masked(),
            row.difference,
            row.action
        ),
        None => println!(
            "    ✓ {} ({}), whose baby was born in step ④, is recorded alike on both sides ({children_before} children): the birth notice and its feedback kept them in step.",
            mother.name,
            mother.resident_id.masked()
        ),
    }
    let others: Vec<&pb::PersonDifference> = rows
        .iter()
        .filter(|row| row.difference != "unknown_to_peer" && row.resident_id != mother.resident_id.as_str())
        .collect();
    for ((difference, action), count) in count_pairs(&others) {
        println!("    {} more: {difference}, {action}", thousands(count));
    }
    Ok(())
}

/// What the peer's report of the same shared-people run holds: persons only 新化县 knows (of
/// whom 鼎城区 learns a keyed tag, never an ID number) and persons recorded differently.
async fn report_of_the_peer(dingcheng: &mut OperatorClient<Channel>, run_id: &str) -> anyhow::Result<()> {
    let request = pb::ListReconcileDifferencesRequest {
        with_county: XINHUA.into(),
    };
    let rows: Vec<pb::PersonDifference> = dingcheng
        .list_reconcile_differences(request)
        .await
        .map_err(explain)?
        .into_inner()
        .differences
        .into_iter()
        .filter(|row| row.run_id == run_id)
        .collect();
    let count = |difference: &str| rows.iter().filter(|row| row.difference == difference).count() as u64;
    let parts: Vec<String> = [
        (
            "unknown_here",
            "persons only 新化县 knows (a keyed tag each, never an ID number)",
        ),
        ("differs", "recorded differently"),
        ("unknown_to_peer", "only 鼎城区 knows"),
    ]
    .into_iter()
    .filter(|(difference, _)| count(difference) > 0)
    .map(|(difference, meaning)| format!("{} {meaning}", thousands(count(difference))))
    .collect();
    if !parts.is_empty() {
        println!(
            "    鼎城区's report of the same run, for its township offices: {}.",
            parts.join("; ")
        );
    }
    Ok(())
}

/// Waits for 鼎城区's answer to the inquiry the run opened about the mother and shows it.
async fn show_answer(
    xinhua: &mut OperatorClient<Channel>,
    inquiry_id: &str,
    children_before: u8,
    finished: Instant,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let request = pb::ShowInquiryRequest {
            message_id: inquiry_id.to_string(),
        };
        let shown = xinhua.show_inquiry(request).await.map_err(explain)?.into_inner();
        let inquiry = shown.inquiry.unwrap_or_default();
        if inquiry.state == "answered" {
            let field = StatusField::ChildrenCount;
            let children = shown
                .answer_fields
                .get(field.as_str())
                .map(|value| field_value(field, value))
                .unwrap_or_else(|| "not given".into());
            println!(
                "      新化县 asked {} about her (流出人口函查, opened by the run), answered {} ms after the run: {}, {} {children}",
                county_name(DINGCHENG),
                finished.elapsed().as_millis(),
                outcome_label(&inquiry.outcome),
                field.label_zh(),
            );
            println!(
                "      (新化县's registry still says {children_before} until its office records it: the run reports, it does not overwrite)."
            );
            return Ok(());
        }
        if started.elapsed() > PATIENCE {
            println!(
                "      新化县 asked 鼎城区 about her; no answer after {} s (state {})",
                PATIENCE.as_secs(),
                inquiry.state
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows by action.
fn count_actions(rows: &[&pb::PersonDifference]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row.action.clone()).or_insert(0) += 1;
    }
    counts
}

/// Rows by difference and action.
fn count_pairs(rows: &[&pb::PersonDifference]) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts
            .entry((row.difference.clone(), row.action.clone()))
            .or_insert(0) += 1;
    }
    counts
}

/// `312.5 kB`.
fn bytes(count: u64) -> String {
    match count {
        0..1_024 => format!("{count} B"),
        1_024..1_048_576 => format!("{:.1} kB", count as f64 / 1024.0),
        _ => format!("{:.1} MB", count as f64 / 1_048_576.0),
    }
}
