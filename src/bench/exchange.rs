//! `hancha bench exchange`: a sweep and single inquiries between two county nodes, measured side
//! by side with the two limits under them — PostgreSQL alone writing the same rows, and gRPC
//! alone making the same round trips over the same mutual TLS.
//!
//! The run: provision PostgreSQL (fresh databases, production durability unless `DATABASE_URL`
//! says otherwise), start 鼎城区 (430703, asking, in this process) and 新化县 (431322, answering,
//! a child process), fill 新化县's registry, then
//!
//! 1. **sweep**: `N` inquiries queued through the asking node in chunks as the operator API's
//!    sweep does, timed from the first submit until every one is answered at the asker;
//! 2. **sync**: single inquiries, one at a time, through [`Node::ask`](crate::node::Node::ask)
//!    with a two-second wait for the inline answer (the clerk's path);
//! 3. **transport limit**: as many health-check round trips over a mutual-TLS channel;
//! 4. **memory**: each node's peak resident set;
//! 5. **bookkeeping**: both databases counted; any discrepancy fails the run;
//! 6. **storage limit**: the sweep's rows written by PostgreSQL alone, into two fresh databases;
//! 7. **storage floor**: the least an audited exchange of the same inquiries can durably write
//!    ([`crate::store::floor`]), by PostgreSQL alone, into two more.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::cpu::{BackendsMark, CpuMark, CpuSpent, busy_cores, cpu_ratio, postgres_processes};
use super::population::Population;
use super::rig::Rig;
use super::{Latencies, ledger, memory, storage, transport};
use crate::config::Limits;
use crate::devdb::{Databases, ServerFacts};
use crate::domain::division::CountyCode;
use crate::store::Store;

/// 鼎城区: asks.
pub const ASKER: &str = "430703";
/// 新化县: answers.
pub const RESPONDER: &str = "431322";

/// Inquiries queued per call, like a sweep submitted through the operator API.
const SUBMIT_CHUNK: usize = 1_000;

/// How long a single inquiry waits for its inline answer, as `hancha ask` does by default.
const SYNC_WAIT: Duration = Duration::from_secs(2);

/// How often the end of the sweep is looked for.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct ExchangeOptions {
    /// Inquiries in the sweep.
    pub inquiries: usize,
    /// Messages per batch between the nodes (the nodes' `limits.batch_size`), and per batch in
    /// the PostgreSQL-alone run.
    pub batch: usize,
    /// Single inquiries, one at a time.
    pub sync: usize,
}

/// The figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct ExchangeReport {
    /// Inquiries in the sweep.
    pub inquiries: usize,
    /// Batch size.
    pub batch: usize,
    /// Single inquiries made.
    pub sync: usize,
    /// Sweep: first submit until the last answer is stored at the asker (s).
    pub gateway_s: f64,
    /// Sweep throughput end to end.
    pub inquiries_per_s: f64,
    /// PostgreSQL alone writing the same rows on both sides (s).
    pub postgres_only_s: f64,
    /// `gateway_s / postgres_only_s`.
    pub ratio: f64,
    /// The storage floor: PostgreSQL alone writing the least an audited exchange of the same
    /// inquiries can durably write ([`crate::store::floor`]), both sides at once (s).
    pub sweep_floor_s: f64,
    /// `gateway_s / sweep_floor_s`.
    pub sweep_floor_ratio: f64,
    /// CPU the whole machine spent during the sweep, summed over its cores (core-seconds): both
    /// nodes, their PostgreSQL sessions and anything else running. `None` without Linux `/proc`.
    pub sweep_cpu_s: Option<f64>,
    /// Of `sweep_cpu_s`, what the two hancha processes spent (the asking one also drives the
    /// benchmark: it builds and queues the sweep's drafts).
    pub sweep_nodes_cpu_s: Option<f64>,
    /// `sweep_cpu_s / gateway_s`: cores kept busy on average. Near `machine_cpus`, the sweep is
    /// bound by work; well below, by waiting (commits reaching the disk, round trips). `None`
    /// for a sweep under a second ([`super::cpu::SHORTEST_MEASURED_PHASE_S`]).
    pub sweep_busy_cores: Option<f64>,
    /// CPU the whole machine spent while the storage floor was written (core-seconds, over the
    /// same moments as `sweep_floor_s`): its PostgreSQL sessions and client, and whatever else
    /// ran then (autovacuum cleaning the databases written before it, other work on a shared
    /// machine).
    pub floor_cpu_s: Option<f64>,
    /// `floor_cpu_s / sweep_floor_s`: cores the floor kept busy on average; `None` for a floor
    /// under a second.
    pub floor_busy_cores: Option<f64>,
    /// `sweep_cpu_s / floor_cpu_s`: how much more work the sweep is than the floor, whatever
    /// bound each of them. `None` when either was not measured, either phase lasted under a
    /// second, or the floor counted no CPU.
    pub sweep_floor_cpu_ratio: Option<f64>,
    /// Of `sweep_cpu_s`, what PostgreSQL's server processes for the two nodes' databases spent
    /// (core-seconds): every statement the nodes ran — their writes, look-ups, leases, registry
    /// reads — and the benchmark's own check for the sweep's end, every 100 ms. `None` unless
    /// those processes are this machine's ([`super::cpu::postgres_processes`]). A backend that
    /// closed during the sweep is not counted (the pools keep theirs).
    pub sweep_postgres_cpu_s: Option<f64>,
    /// What PostgreSQL's two server processes spent writing the storage floor (core-seconds),
    /// under the same condition.
    pub floor_postgres_cpu_s: Option<f64>,
    /// `sweep_postgres_cpu_s / floor_postgres_cpu_s`: how much more work the exchange is for
    /// PostgreSQL than the floor, on any number of cores (on few, the nodes' own CPU competes
    /// with PostgreSQL's and the time ratio includes it). `None` when either is not measured or
    /// either phase lasted under a second.
    pub sweep_floor_postgres_cpu_ratio: Option<f64>,
    /// The sweep's gRPC round trips (one per batch each way) to a do-nothing handler (s).
    pub transport_s: f64,
    /// How many round trips `transport_s` covers.
    pub transport_round_trips: usize,
    /// One do-nothing round trip, median (ms).
    pub transport_p50_ms: f64,
    /// One do-nothing round trip, 99th percentile (ms).
    pub transport_p99_ms: f64,
    /// A single inquiry with its inline answer, median (ms).
    pub sync_p50_ms: f64,
    /// 99th percentile (ms).
    pub sync_p99_ms: f64,
    /// Slowest (ms).
    pub sync_max_ms: f64,
    /// The floor under a single inquiry: the flushed commits its path must make in sequence
    /// (two at the asker: the inquiry before it leaves, receipt and answer after; one at the
    /// responder: inquiry and answer), each timed on the same database as a bare flushed
    /// commit, median of as many probes as single inquiries (ms).
    pub sync_floor_ms: f64,
    /// `sync_p50_ms / sync_floor_ms`.
    pub sync_p50_ratio: f64,
    /// `sync_p99_ms / sync_floor_ms`.
    pub sync_p99_ratio: f64,
    /// Single inquiries whose answer came inline (the rest arrived later, deferred).
    pub sync_inline: usize,
    /// The larger of the two nodes' peaks (MiB).
    pub peak_rss_mb: f64,
    /// The asking node's peak (MiB): this process, which also runs the benchmark driver.
    pub peak_rss_asker_mb: f64,
    /// The answering node's peak (MiB): its own process.
    pub peak_rss_responder_mb: f64,
    /// Every inquiry accepted, answered and delivered exactly once, counted on both sides.
    pub answered_exactly_once: bool,
    /// Answers `found` (sweep and sync).
    pub found: u64,
    /// Answers `not_found`.
    pub not_found: u64,
    /// The database server.
    pub postgres: ServerFacts,
    /// CPU cores available to this process.
    pub cores: usize,
    /// CPUs of the whole machine (`/proc/stat`), which the `*_cpu_s` figures are summed over;
    /// more than `cores` when this process is confined to some of them.
    pub machine_cpus: Option<usize>,
    /// Memory of the machine (MiB).
    pub memory_mb: u64,
}

/// Runs the benchmark; `say` receives progress lines.
pub async fn run(options: ExchangeOptions, say: &(dyn Fn(&str) + Sync)) -> anyhow::Result<ExchangeReport> {
    if options.inquiries == 0 || options.batch == 0 {
        bail!("--inquiries and --batch must be at least 1");
    }
    let mut databases = Databases::provision("bench").await?;
    let outcome = run_on(&mut databases, options, say).await;
    say("removing the benchmark databases");
    databases.remove().await;
    outcome
}

async fn run_on(
    databases: &mut Databases,
    options: ExchangeOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<ExchangeReport> {
    let facts = databases.facts().await?;
    say(&format!(
        "PostgreSQL {} ({}), fsync={}, synchronous_commit={}",
        facts.version, facts.source, facts.fsync, facts.synchronous_commit
    ));
    let asker = CountyCode::parse(ASKER)?;
    let responder = CountyCode::parse(RESPONDER)?;
    let node_databases = (databases.create("a").await?, databases.create("b").await?);
    let storage_databases = (databases.create("pg_a").await?, databases.create("pg_b").await?);
    let floor_databases = (
        databases.create("floor_a").await?,
        databases.create("floor_b").await?,
    );
    let population = Population::new(responder, asker, options.inquiries, options.sync);
    let expected = population.expected();
    let daily_cap = u32::try_from(expected.inquiries.saturating_mul(2) + 1_000).unwrap_or(10_000_000);
    let limits = Limits {
        batch_size: options.batch,
        ..Limits::default()
    };

    say("starting 430703 (this process) and 431322 (hancha serve) over mutual TLS");
    let rig = Rig::start(
        asker,
        responder,
        (&node_databases.0, &node_databases.1),
        daily_cap.max(1),
        &limits,
    )
    .await?;
    let measured = measure(&rig, &population, options, say).await;
    let measured = match measured {
        Ok(measured) => measured,
        Err(error) => {
            let tail = rig.responder_log_tail();
            rig.stop().await;
            return Err(error.context(format!("431322's log ends with:\n{tail}")));
        }
    };
    rig.stop().await;

    say("storage limit: PostgreSQL alone writing the same rows");
    for url in [&storage_databases.0, &storage_databases.1] {
        let store = Store::connect(url, 1, limits.database_acquire_timeout).await?;
        store.migrate().await?;
        store.close().await;
    }
    let agreement = crate::domain::agreement::Agreement::parse(&measured.agreement_text)
        .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
    let postgres_only = storage::write_sweep(
        (&storage_databases.0, &storage_databases.1),
        &population,
        options.inquiries,
        options.batch,
        asker,
        responder,
        &agreement,
    )
    .await?;

    say("storage floor: PostgreSQL alone writing the least an audited exchange can");
    let floor = storage::write_floor(
        (&floor_databases.0, &floor_databases.1),
        &population,
        options.inquiries,
        options.batch,
        asker,
        responder,
        &agreement,
    )
    .await?;
    let floor_cpu_s = floor.machine_cpu_s;

    let gateway_s = measured.gateway.as_secs_f64();
    let sweep_floor_s = floor.elapsed.as_secs_f64();
    let postgres_only_s = postgres_only.as_secs_f64();
    let sync = Latencies::of(&measured.sync);
    let round_trip = Latencies::of(&measured.round_trips);
    Ok(ExchangeReport {
        inquiries: options.inquiries,
        batch: options.batch,
        sync: options.sync,
        gateway_s,
        inquiries_per_s: options.inquiries as f64 / gateway_s,
        postgres_only_s,
        ratio: gateway_s / postgres_only_s,
        sweep_floor_s,
        sweep_floor_ratio: ratio(gateway_s, sweep_floor_s),
        sweep_cpu_s: measured.sweep_cpu.machine_s,
        sweep_nodes_cpu_s: measured.sweep_cpu.processes_s,
        sweep_busy_cores: busy_cores(measured.sweep_cpu.machine_s, gateway_s),
        floor_cpu_s,
        floor_busy_cores: busy_cores(floor_cpu_s, sweep_floor_s),
        sweep_floor_cpu_ratio: cpu_ratio(
            (measured.sweep_cpu.machine_s, gateway_s),
            (floor_cpu_s, sweep_floor_s),
        ),
        sweep_postgres_cpu_s: measured.sweep_postgres_cpu_s,
        floor_postgres_cpu_s: floor.postgres_cpu_s,
        sweep_floor_postgres_cpu_ratio: cpu_ratio(
            (measured.sweep_postgres_cpu_s, gateway_s),
            (floor.postgres_cpu_s, sweep_floor_s),
        ),
        transport_s: measured.transport.as_secs_f64(),
        transport_round_trips: measured.transport_round_trips,
        transport_p50_ms: round_trip.p50_ms,
        transport_p99_ms: round_trip.p99_ms,
        sync_p50_ms: sync.p50_ms,
        sync_p99_ms: sync.p99_ms,
        sync_max_ms: sync.max_ms,
        sync_floor_ms: measured.sync_floor_ms,
        sync_p50_ratio: ratio(sync.p50_ms, measured.sync_floor_ms),
        sync_p99_ratio: ratio(sync.p99_ms, measured.sync_floor_ms),
        sync_inline: measured.sync_inline,
        peak_rss_mb: measured.rss_asker_mb.max(measured.rss_responder_mb),
        peak_rss_asker_mb: measured.rss_asker_mb,
        peak_rss_responder_mb: measured.rss_responder_mb,
        answered_exactly_once: true,
        found: expected.found,
        not_found: expected.not_found,
        postgres: facts,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        machine_cpus: super::cpu::machine_cpus(),
        memory_mb: machine_memory_mb(),
    })
}

/// `part / whole`, or 0 when nothing was measured.
fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// What the nodes did.
struct Measured {
    /// The sweep, end to end.
    gateway: Duration,
    /// CPU spent during the sweep: the machine's, and the two nodes' processes'.
    sweep_cpu: CpuSpent,
    /// CPU PostgreSQL's server processes for the two nodes' databases spent during the sweep,
    /// when they are this machine's processes.
    sweep_postgres_cpu_s: Option<f64>,
    /// Each single inquiry.
    sync: Vec<Duration>,
    /// How many single inquiries were answered inline.
    sync_inline: usize,
    /// The flushed commits a single inquiry must make, in sequence (ms).
    sync_floor_ms: f64,
    /// The sweep's number of do-nothing round trips, in all.
    transport: Duration,
    /// How many those were.
    transport_round_trips: usize,
    /// Each do-nothing round trip (the sweep's and as many as single inquiries).
    round_trips: Vec<Duration>,
    /// Peak resident memory of the asking node (this process).
    rss_asker_mb: f64,
    /// Peak resident memory of the answering node.
    rss_responder_mb: f64,
    /// The agreement, for the storage limit.
    agreement_text: String,
}

async fn measure(
    rig: &Rig,
    population: &Population,
    options: ExchangeOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Measured> {
    let node = rig.asker();
    let peer = rig.responder_county;
    say(&format!(
        "filling 431322's registry with {} persons",
        population.registry_size()
    ));
    let persons: Vec<_> = population.registry().collect();
    for chunk in persons.chunks(10_000) {
        rig.responder_store.upsert_persons(chunk).await?;
    }
    drop(persons);
    if !memory::reset_own_peak() {
        say("note: cannot reset this process's peak memory; the asker's figure includes the setup");
    }

    say(&format!(
        "sweep: {} inquiries from 430703 to 431322",
        options.inquiries
    ));
    // both nodes or neither: without the responder's pid, no figure for the nodes
    let nodes: Vec<String> = rig
        .responder_pid()
        .map(|pid| vec!["self".to_string(), pid.to_string()])
        .unwrap_or_default();
    let postgres_started = database_backends(rig).await.as_deref().map(BackendsMark::now);
    let cpu_started = CpuMark::now(&nodes);
    let started = Instant::now();
    let mut submitted = 0;
    while submitted < options.inquiries {
        let end = (submitted + SUBMIT_CHUNK).min(options.inquiries);
        node.send_inquiries(peer, population.sweep_drafts(submitted..end))
            .await
            .context("queueing the sweep")?;
        submitted = end;
    }
    let patience = Duration::from_secs(120) + Duration::from_millis(10) * options.inquiries as u32;
    loop {
        if node.store().asker_settled().await? {
            break;
        }
        if started.elapsed() > patience {
            bail!("the sweep did not finish within {patience:?}");
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
    let gateway = started.elapsed();
    let sweep_cpu = CpuMark::now(&nodes).since(&cpu_started);
    let postgres_ended = postgres_started.as_ref().map(BackendsMark::again);
    let sweep_postgres_cpu_s = match (postgres_started, postgres_ended) {
        // the pools may have opened connections meanwhile: their backends count from their start
        // (read a moment later; a listing that fails leaves them out)
        (Some(started), Some(ended)) => {
            let opened = database_backends(rig).await.unwrap_or_default();
            Some(ended.and(BackendsMark::now(&opened)).since(&started))
        }
        _ => None,
    };
    say(&format!("sweep: {:.2} s", gateway.as_secs_f64()));

    say(&format!(
        "sync: {} single inquiries, one at a time, each followed by its floor (the same path's flushed commits, bare, on the same databases)",
        options.sync
    ));
    let mut sync = Vec::with_capacity(options.sync);
    let mut floors = Vec::with_capacity(options.sync.max(1));
    let mut sync_inline = 0;
    for index in 0..options.sync {
        let started = Instant::now();
        let outcome = node
            .ask(peer, population.single_draft(index), SYNC_WAIT)
            .await
            .context("a single inquiry")?;
        sync.push(started.elapsed());
        if outcome.confirmation.is_some() {
            sync_inline += 1;
        }
        // Measured right after, under the same load: two commits at the asker, one at the
        // responder, in sequence as on the path.
        let asker = node.store().time_flushed_commit().await? * 2;
        floors.push(asker + rig.responder_store.time_flushed_commit().await?);
    }
    let sync_floor_ms = Latencies::of(&floors).p50_ms;

    let rss_asker_mb = memory::peak_rss_mb("self").unwrap_or(0.0);
    let rss_responder_mb = rig
        .responder_pid()
        .and_then(|pid| memory::peak_rss_mb(&pid.to_string()))
        .unwrap_or(0.0);

    say("transport limit: health checks over mutual TLS");
    let channel = rig.responder_channel().await?;
    let transport_round_trips = 2 * options.inquiries.div_ceil(options.batch);
    let started = Instant::now();
    let mut round_trips = transport::round_trips(channel.clone(), transport_round_trips).await?;
    let transport = started.elapsed();
    round_trips.extend(transport::round_trips(channel, options.sync).await?);

    say("bookkeeping: counting both databases");
    settle_and_check(rig, population).await?;
    Ok(Measured {
        gateway,
        sweep_cpu,
        sweep_postgres_cpu_s,
        sync,
        sync_inline,
        sync_floor_ms,
        transport,
        transport_round_trips,
        round_trips,
        rss_asker_mb,
        rss_responder_mb,
        agreement_text: rig.agreement.source_text().to_string(),
    })
}

/// The server processes serving the two nodes' databases, when they are processes of this
/// machine ([`postgres_processes`]); `None` otherwise, or when the server could not list them
/// (the figure is optional; the run goes on without it).
async fn database_backends(rig: &Rig) -> Option<Vec<u32>> {
    let mut backends = rig.asker().store().database_backends().await.ok()?;
    backends.extend(rig.responder_store.database_backends().await.ok()?);
    postgres_processes(&backends)
}

/// Waits until both nodes have nothing left to send (answers given inline are also delivered
/// through the outbox, and acknowledgements trail the answers), then counts both sides.
async fn settle_and_check(rig: &Rig, population: &Population) -> anyhow::Result<()> {
    let expected = population.expected();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let asker = rig.asker().store().asker_counts().await?;
        let responder = rig.responder_store.responder_counts().await?;
        match ledger::check(expected, &asker, &responder) {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn machine_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kilobytes| kilobytes / 1024)
        .unwrap_or(0)
}
