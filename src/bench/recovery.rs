//! `hancha bench recovery`: how fast a backlog drains to a peer that comes back after an
//! outage, against how fast the same number of inquiries goes to it in normal running.
//!
//! The run: provision PostgreSQL as `bench exchange` does, start 鼎城区 (430703, asking, in
//! this process) and 新化县 (431322, answering, a `hancha serve` child) with production limits,
//! then
//!
//! 1. **normal**: `N` inquiries queued in one transaction, timed from then until 新化县 holds
//!    every one (the asker's outbox to it empty);
//! 2. **outage**: 新化县 killed with SIGKILL, another `N` inquiries queued, the outage held for
//!    `--outage` seconds (the asker's circuit to 新化县 opens, its probes fail);
//! 3. **recovery**: 新化县 started again; from the moment it serves, the time to the first
//!    delivery (what a probe takes to find it) and from then the time until the backlog is
//!    delivered, as a rate beside the normal one;
//! 4. **normal again**: another `N` as in 1, so that the drain is compared with normal running
//!    on both sides of it (the machine's load drifts); the normal rate is that of the mean time.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::population::Population;
use super::rig::Rig;
use crate::config::Limits;
use crate::devdb::{Databases, ServerFacts};
use crate::domain::division::CountyCode;
use crate::domain::message::MessageType;
use crate::node::Node;

/// 鼎城区: asks.
pub const ASKER: &str = "430703";
/// 新化县: answers, and goes away for a while.
pub const RESPONDER: &str = "431322";

/// Inquiries queued per call, like a sweep submitted through the operator API.
const SUBMIT_CHUNK: usize = 1_000;

/// How often the backlog is counted.
const POLL: Duration = Duration::from_millis(20);

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryOptions {
    /// Inquiries in the normal run, and in the backlog the outage builds.
    pub inquiries: usize,
    /// How long the peer stays away.
    pub outage: Duration,
}

/// The figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryReport {
    /// Inquiries in each phase.
    pub inquiries: usize,
    /// How long the peer was away (s).
    pub outage_s: f64,
    /// Normal running: queued (in one transaction) until all delivered (s), the mean of the run
    /// before the outage and the one after the recovery.
    pub normal_s: f64,
    /// The normal run before the outage (s).
    pub normal_before_s: f64,
    /// The normal run after the recovery (s).
    pub normal_after_s: f64,
    /// Normal running, inquiries delivered per second.
    pub normal_per_s: f64,
    /// From the peer serving again to the first delivery of the backlog (s).
    pub first_delivery_s: f64,
    /// From the first delivery to the whole backlog delivered (s).
    pub drain_s: f64,
    /// The backlog's inquiries delivered per second after the outage.
    pub drain_per_s: f64,
    /// `drain_per_s / normal_per_s`: the target is at least 0.8.
    pub drain_ratio: f64,
    /// Probes of the peer that failed during the outage.
    pub failed_probes: u64,
    /// The limits' longest wait between probes (s).
    pub probe_max_s: f64,
    /// The database server.
    pub postgres: ServerFacts,
    /// CPU cores available to this process.
    pub cores: usize,
}

impl RecoveryReport {
    /// The figures as a table for people, with the target beside them.
    pub fn table(&self) -> String {
        format!(
            "backlog of {} inquiries to a peer away for {:.0} s\n\
             {:<44} {:>10.2} s  {:>8.0}/s  (before {:.2} s, after {:.2} s)\n\
             {:<44} {:>10.2} s  (probes every ≤ {:.0} s; {} failed)\n\
             {:<44} {:>10.2} s  {:>8.0}/s\n\
             {:<44} {:>10.2}     target ≥ 0.80\n\
             PostgreSQL {} ({}), fsync={}, {} cores\n",
            self.inquiries,
            self.outage_s,
            "normal running: queued → all delivered",
            self.normal_s,
            self.normal_per_s,
            self.normal_before_s,
            self.normal_after_s,
            "after the outage: peer back → first delivery",
            self.first_delivery_s,
            self.probe_max_s,
            self.failed_probes,
            "  first delivery → backlog delivered",
            self.drain_s,
            self.drain_per_s,
            "drain rate ÷ normal rate",
            self.drain_ratio,
            self.postgres.version,
            self.postgres.source,
            self.postgres.fsync,
            self.cores,
        )
    }
}

/// Runs the benchmark; `say` receives progress lines.
pub async fn run(options: RecoveryOptions, say: &(dyn Fn(&str) + Sync)) -> anyhow::Result<RecoveryReport> {
    if options.inquiries == 0 {
        bail!("--inquiries must be at least 1");
    }
    let mut databases = Databases::provision("bench").await?;
    let outcome = run_on(&mut databases, options, say).await;
    say("removing the benchmark databases");
    databases.remove().await;
    outcome
}

async fn run_on(
    databases: &mut Databases,
    options: RecoveryOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<RecoveryReport> {
    let facts = databases.facts().await?;
    say(&format!(
        "PostgreSQL {} ({}), fsync={}, synchronous_commit={}",
        facts.version, facts.source, facts.fsync, facts.synchronous_commit
    ));
    let asker = CountyCode::parse(ASKER)?;
    let responder = CountyCode::parse(RESPONDER)?;
    let node_databases = (databases.create("a").await?, databases.create("b").await?);
    let population = Population::new(responder, asker, options.inquiries * 3, 0);
    let daily_cap = u32::try_from(options.inquiries.saturating_mul(4) + 1_000).unwrap_or(10_000_000);
    let limits = Limits::default();
    say("starting 430703 (this process) and 431322 (hancha serve) over mutual TLS");
    let mut rig = Rig::start(
        asker,
        responder,
        (&node_databases.0, &node_databases.1),
        daily_cap,
        &limits,
    )
    .await?;
    let measured = measure(&mut rig, &population, options, say).await;
    let measured = match measured {
        Ok(measured) => measured,
        Err(error) => {
            let tail = rig.responder_log_tail();
            rig.stop().await;
            return Err(error.context(format!("431322's log ends with:\n{tail}")));
        }
    };
    rig.stop().await;
    let count = options.inquiries as f64;
    let normal = (measured.normal + measured.normal_after) / 2;
    let normal_per_s = count / normal.as_secs_f64();
    let drain_per_s = count / measured.drain.as_secs_f64().max(1e-3);
    Ok(RecoveryReport {
        inquiries: options.inquiries,
        outage_s: options.outage.as_secs_f64(),
        normal_s: normal.as_secs_f64(),
        normal_before_s: measured.normal.as_secs_f64(),
        normal_after_s: measured.normal_after.as_secs_f64(),
        normal_per_s,
        first_delivery_s: measured.first_delivery.as_secs_f64(),
        drain_s: measured.drain.as_secs_f64(),
        drain_per_s,
        drain_ratio: drain_per_s / normal_per_s,
        failed_probes: measured.failed_probes,
        probe_max_s: limits.probe_max.as_secs_f64(),
        postgres: facts,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    })
}

/// What the run measured.
struct Measured {
    normal: Duration,
    normal_after: Duration,
    first_delivery: Duration,
    drain: Duration,
    failed_probes: u64,
}

async fn measure(
    rig: &mut Rig,
    population: &Population,
    options: RecoveryOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Measured> {
    let node = std::sync::Arc::clone(rig.asker());
    let peer = rig.responder_county;
    let n = options.inquiries;
    let patience = Duration::from_secs(120) + Duration::from_millis(10) * n as u32;

    say(&format!("normal: {n} inquiries from 430703 to 431322"));
    // queued in one transaction, so that what is timed is the delivery alone, as for the
    // backlog (queued during the outage)
    node.send_inquiries(peer, population.sweep_drafts(0..n))
        .await
        .context("queueing inquiries")?;
    let started = Instant::now();
    wait_until(&node, peer, patience, |waiting| waiting == 0).await?;
    let normal = started.elapsed();
    say(&format!("normal: {:.2} s", normal.as_secs_f64()));

    say(&format!(
        "outage: 431322 killed; {n} inquiries queued; back in {:.0} s",
        options.outage.as_secs_f64()
    ));
    rig.kill_responder().await?;
    let probes_before = failed_probes(&node, peer);
    queue(&node, peer, population, n..2 * n).await?;
    tokio::time::sleep(options.outage).await;
    if !node.circuit(peer).is_open() {
        bail!("the circuit to 431322 did not open during the outage");
    }
    let failed = failed_probes(&node, peer) - probes_before;
    rig.restart_responder().await?;
    let back = Instant::now();
    say("recovery: 431322 serves again");
    wait_until(&node, peer, patience, |waiting| waiting < n as i64).await?;
    let first_delivery = back.elapsed();
    wait_until(&node, peer, patience, |waiting| waiting == 0).await?;
    let drain = back.elapsed() - first_delivery;
    say(&format!(
        "recovery: first delivery after {:.2} s, backlog delivered {:.2} s later",
        first_delivery.as_secs_f64(),
        drain.as_secs_f64()
    ));

    // normal running once more, after the recovery: the machine's load drifts, and the drain is
    // compared with both
    say(&format!("normal again: {n} inquiries from 430703 to 431322"));
    node.send_inquiries(peer, population.sweep_drafts(2 * n..3 * n))
        .await
        .context("queueing inquiries")?;
    let started = Instant::now();
    wait_until(&node, peer, patience, |waiting| waiting == 0).await?;
    let normal_after = started.elapsed();
    say(&format!("normal again: {:.2} s", normal_after.as_secs_f64()));
    Ok(Measured {
        normal,
        normal_after,
        first_delivery,
        drain,
        failed_probes: failed,
    })
}

/// Queues the population's sweep inquiries `range` in chunks.
async fn queue(
    node: &Node,
    peer: CountyCode,
    population: &Population,
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let mut at = range.start;
    while at < range.end {
        let end = (at + SUBMIT_CHUNK).min(range.end);
        node.send_inquiries(peer, population.sweep_drafts(at..end))
            .await
            .context("queueing inquiries")?;
        at = end;
    }
    Ok(())
}

/// Waits until the number of inquiries waiting in the outbox for `peer` satisfies `done`.
async fn wait_until(
    node: &Node,
    peer: CountyCode,
    patience: Duration,
    done: impl Fn(i64) -> bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if done(node.store().outbox_waiting(peer, MessageType::Inquiry).await?) {
            return Ok(());
        }
        if started.elapsed() > patience {
            bail!("the inquiries to {peer} were not delivered within {patience:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Failed probes of `peer` so far, from the node's metrics.
fn failed_probes(node: &Node, peer: CountyCode) -> u64 {
    let series = format!("hancha_peer_probes_total{{peer=\"{peer}\",result=\"unreachable\"}} ");
    node.metrics()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}
