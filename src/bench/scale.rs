//! `hancha bench scale`: one node with P peer counties and N persons, measured in one run.
//!
//! The node under test is 鼎城区 (430703), a real node in this process on its own PostgreSQL
//! database (provisioned as `bench exchange` does). Its P peers are the test peer ([`peer`]):
//! one set of tasks answering as P counties, each with its own certificate and listener and its
//! own signed agreement with the node, without a database — so that what grows with P is the
//! node's cost, not P PostgreSQL pools on the same cores. The run:
//!
//! 1. **import**: a CSV file of N inflow persons (registered round-robin in the P counties) through
//!    the real import path — `hancha registry import` as a child process, over the operator API,
//!    into the store's COPY;
//! 2. **report**: the quarter's indicators (`Store::indicator_counts`) over those N persons;
//! 3. **sweep**: I inquiries spread over the P peers, queued as the operator API's sweep does,
//!    from the first submit until every answer is stored; meanwhile a clerk asks single
//!    inquiries of the first peer one at a time (2 s inline wait), and the node's connections
//!    (peer TCP connections both ways and PostgreSQL connections) are sampled;
//! 4. **bookkeeping**: the node's database and the test peer's tallies must show every inquiry
//!    received once, answered once and its answer stored once;
//! 5. **reconciliation**: `bench reconcile --nodes` at N shared persons with D differences (two
//!    real nodes, as reconciliation needs a real peer), first night and second.

mod import;
pub mod peer;
mod report;

pub use report::ScaleReport;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use self::peer::{NodeAddress, TestPeers};
use super::population::synthetic_id;
use super::reconcile::nodes::{self, NodesOptions};
use super::rig::{agreement_toml, write_node_files};
use super::{Latencies, memory};
use crate::config::{Limits, NodeConfig, OperatorListener, ReconcileConfig};
use crate::devdb::Databases;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::message::Subject;
use crate::domain::report::ReportPeriod;
use crate::domain::vocabulary::{InquiryKind, Priority};
use crate::node::InquiryDraft;
use crate::tls::TrustAnchors;
use crate::tls::dev::TestPki;

/// 鼎城区: the node under test.
pub const NODE: &str = "430703";

/// Inquiries queued per call, as the operator API's sweep does.
const SUBMIT_CHUNK: usize = 1_000;

/// How long a clerk's single inquiry waits for its inline answer (`hancha ask`'s default).
const CLERK_WAIT: Duration = Duration::from_secs(2);

/// How often connections are counted and the end of the sweep looked for.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The first synthetic index of the clerk's subjects (the sweep's are below).
const CLERK_BASE: u64 = 9_000_000;

/// Every county in the national list, in code order.
const COUNTIES_CSV: &str = include_str!("../../data/divisions/counties.csv");

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct ScaleOptions {
    /// Peer counties.
    pub peers: usize,
    /// Persons imported.
    pub persons: usize,
    /// Sweep inquiries, spread evenly over the peers.
    pub inquiries: usize,
    /// Differences between the two registries of the reconciliation run.
    pub differences: usize,
}

/// The first `count` counties of the national list other than `me`.
pub fn peer_counties(me: CountyCode, count: usize) -> anyhow::Result<Vec<CountyCode>> {
    let counties: Vec<CountyCode> = COUNTIES_CSV
        .lines()
        .skip(1)
        .filter_map(|line| CountyCode::parse(line.split(',').next()?).ok())
        .filter(|county| *county != me)
        .take(count)
        .collect();
    ensure!(
        counties.len() == count,
        "--peers: at most {} counties",
        counties.len()
    );
    Ok(counties)
}

/// Runs the benchmark; `say` receives progress lines.
pub async fn run(options: ScaleOptions, say: &(dyn Fn(&str) + Sync)) -> anyhow::Result<ScaleReport> {
    ensure!(options.peers >= 1, "--peers must be at least 1");
    ensure!(options.persons >= 1, "--persons must be at least 1");
    let mut databases = Databases::provision("bench").await?;
    let scratch = std::env::temp_dir().join(format!(
        "hancha-bench-scale-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let outcome = run_on(&mut databases, &scratch, options, say).await;
    say("removing the benchmark databases");
    databases.remove().await;
    let _ = std::fs::remove_dir_all(&scratch);
    let mut report = outcome?;

    say(&format!(
        "reconciliation: {} shared persons, {} differences, between two nodes (bench reconcile --nodes)",
        options.persons, options.differences
    ));
    let reconciled = nodes::run(
        NodesOptions {
            n: options.persons,
            d: options.differences,
        },
        say,
    )
    .await
    .context("the reconciliation run")?;
    report.reconcile_s = reconciled.first_run_seconds;
    report.reconcile_second_s = reconciled.second_run_seconds;
    report.reconcile_found = reconciled.differences;
    report.reconcile_peak_rss_mb = reconciled.peak_rss_mb;
    Ok(report)
}

async fn run_on(
    databases: &mut Databases,
    scratch: &Path,
    options: ScaleOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<ScaleReport> {
    let facts = databases.facts().await?;
    say(&format!(
        "PostgreSQL {} ({}), fsync={}, synchronous_commit={}",
        facts.version, facts.source, facts.fsync, facts.synchronous_commit
    ));
    let me = CountyCode::parse(NODE)?;
    let peers = peer_counties(me, options.peers)?;
    let database = databases.create("scale").await?;

    say(&format!(
        "minting certificates and signing {} agreements",
        options.peers
    ));
    let pki = TestPki::new().context("minting the benchmark CA")?;
    let anchors = TrustAnchors::from_pem(&pki.ca_pem())?;
    let per_peer = options.inquiries.div_ceil(options.peers);
    let daily_cap = u32::try_from(per_peer * 2 + 10_000).unwrap_or(u32::MAX);
    let mut agreements = Vec::with_capacity(peers.len());
    let mut texts = Vec::with_capacity(peers.len());
    for &peer in &peers {
        let mut text = agreement_toml(me, peer, daily_cap, false);
        for county in [me, peer] {
            let identity = pki.county_identity(county.as_str())?;
            text = crate::node::sign_agreement(&text, &identity, chrono::Utc::now())
                .context("signing a benchmark agreement")?;
        }
        let agreement = Agreement::parse(&text)
            .map_err(|errors| anyhow::anyhow!("a benchmark agreement is invalid: {errors:?}"))?;
        agreements.push(agreement);
        texts.push(text);
    }
    let tls = write_node_files(scratch, &pki, me, &texts[0])?;
    let agreements_dir = scratch.join(me.as_str()).join("agreements");
    for (index, text) in texts.iter().enumerate().skip(1) {
        std::fs::write(agreements_dir.join(format!("bench-{index}.toml")), text)?;
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let node_address = listener.local_addr()?;
    say(&format!(
        "starting the test peer: {} counties, each with its own listener and certificate",
        options.peers
    ));
    let mut counties = Vec::with_capacity(peers.len());
    for (&peer, agreement) in peers.iter().zip(agreements) {
        counties.push((peer, pki.county_identity(peer.as_str())?, agreement));
    }
    let test_peers = TestPeers::start(
        counties,
        &anchors,
        NodeAddress {
            county: me,
            address: node_address,
        },
    )
    .await?;

    let config = NodeConfig {
        county: me,
        listen: node_address,
        database_url: database.clone(),
        database_urls: Vec::new(),
        database_pool_size: 10,
        tls,
        agreements_dir,
        require_signatures: true,
        operator: OperatorListener {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            trust_anchors: None,
        },
        metrics: crate::config::MetricsListener {
            listen: "127.0.0.1:0".parse().expect("an address"),
        },
        web: crate::config::WebListener {
            listen: None,
            require_login: None,
            tls: None,
        },
        peers: test_peers
            .counties
            .iter()
            .map(|(county, address, _)| (county.to_string(), address.to_string()))
            .collect(),
        limits: Limits::default(),
        reconcile: ReconcileConfig::default(),
        warnings: Vec::new(),
    };
    say("starting 430703 (this process)");
    let running = crate::app::start(&config, listener)
        .await
        .context("starting the node under test")?;
    let measured = measure(&running, &test_peers, &peers, scratch, options, say).await;
    running.stop().await;
    test_peers.stop().await;
    let measured = measured?;

    Ok(ScaleReport {
        peers: options.peers,
        persons: options.persons,
        inquiries: measured.inquiries,
        sweep_s: measured.sweep.as_secs_f64(),
        sweep_per_s: measured.inquiries as f64 / measured.sweep.as_secs_f64(),
        clerk: measured.clerk.len(),
        clerk_inline: measured.clerk_inline,
        clerk_p50_ms: Latencies::of(&measured.clerk).p50_ms,
        clerk_p99_ms: Latencies::of(&measured.clerk).p99_ms,
        peak_rss_mb: measured.peak_rss_mb,
        rss_before_sweep_mb: measured.rss_before_sweep_mb,
        connections: measured.peer_connections + measured.database_connections,
        peer_connections: measured.peer_connections,
        database_connections: measured.database_connections,
        import_per_s: options.persons as f64 / measured.import.as_secs_f64(),
        import_s: measured.import.as_secs_f64(),
        report_s: measured.report.as_secs_f64(),
        reconcile_s: 0.0,
        reconcile_second_s: 0.0,
        reconcile_differences: options.differences,
        reconcile_found: 0,
        reconcile_peak_rss_mb: 0.0,
        answered_exactly_once: true,
        resent: measured.resent,
        postgres: facts,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    })
}

/// What the run measured on the node.
struct Measured {
    import: Duration,
    report: Duration,
    inquiries: usize,
    sweep: Duration,
    clerk: Vec<Duration>,
    clerk_inline: usize,
    rss_before_sweep_mb: f64,
    peak_rss_mb: f64,
    peer_connections: u64,
    database_connections: u64,
    resent: u64,
}

async fn measure(
    running: &crate::app::RunningNode,
    test_peers: &TestPeers,
    peers: &[CountyCode],
    scratch: &Path,
    options: ScaleOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Measured> {
    let node = Arc::clone(&running.node);
    let me = node.county();

    // 1. import
    let file = scratch.join("registry.csv");
    say(&format!(
        "writing {} persons to {}",
        options.persons,
        file.display()
    ));
    import::write_registry(&file, me, peers, options.persons)?;
    say("import: hancha registry import over the operator API");
    let started = Instant::now();
    import::import_registry(&file, running.operator_addr, options.persons).await?;
    let import = started.elapsed();
    let _ = std::fs::remove_file(&file);
    say(&format!(
        "import: {:.2} s = {:.0} persons/s",
        import.as_secs_f64(),
        options.persons as f64 / import.as_secs_f64()
    ));

    // 2. report
    let period = ReportPeriod::current_quarter(chrono::Utc::now().date_naive());
    let started = Instant::now();
    let counts = node.store().indicator_counts(&period).await?;
    let report = started.elapsed();
    ensure!(
        counts.county.registration.denominator == options.persons as u64,
        "the report counts {} inflow persons, expected {}",
        counts.county.registration.denominator,
        options.persons
    );
    say(&format!("indicator report: {:.3} s", report.as_secs_f64()));

    // 3. sweep, with the clerk and the sampler alongside
    let per_peer = options.inquiries.div_ceil(peers.len());
    let inquiries = per_peer * peers.len();
    let ports: Vec<u16> = test_peers
        .counties
        .iter()
        .map(|(_, address, _)| address.port())
        .chain([running.local_addr.port()])
        .collect();
    let rss_before_sweep_mb = memory::rss_mb("self").unwrap_or(0.0);
    memory::reset_own_peak();
    say(&format!(
        "sweep: {inquiries} inquiries to {} peers ({per_peer} each), a clerk asking {} meanwhile",
        peers.len(),
        peers[0]
    ));
    let done = Arc::new(AtomicBool::new(false));
    let clerk = {
        let node = Arc::clone(&node);
        let done = Arc::clone(&done);
        let peer = peers[0];
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut inline = 0;
            let mut index = 0;
            while !done.load(Ordering::Relaxed) {
                let draft = draft(synthetic_id(peer, CLERK_BASE + index));
                index += 1;
                let started = Instant::now();
                let outcome = node.ask(peer, draft, CLERK_WAIT).await;
                samples.push(started.elapsed());
                match outcome {
                    Ok(outcome) if outcome.confirmation.is_some() => inline += 1,
                    Ok(_) => {}
                    Err(error) => return Err(anyhow::anyhow!("a clerk's single inquiry: {error}")),
                }
            }
            Ok((samples, inline))
        })
    };
    let started = Instant::now();
    for offset in (0..per_peer).step_by(SUBMIT_CHUNK) {
        let end = (offset + SUBMIT_CHUNK).min(per_peer);
        for &peer in peers {
            let drafts = (offset..end)
                .map(|index| draft(synthetic_id(peer, index as u64)))
                .collect();
            node.send_inquiries(peer, drafts)
                .await
                .context("queueing the sweep")?;
        }
    }
    let patience = Duration::from_secs(120) + Duration::from_millis(20) * inquiries as u32;
    let (mut peer_connections, mut database_connections) = (0, 0);
    loop {
        peer_connections = peer_connections.max(tcp_connections_to(&ports));
        database_connections = database_connections.max(node.store().database_connections().await?);
        // the clerk's inquiries count too: settled means nothing left of either
        if started.elapsed() > SAMPLE_EVERY && node.store().asker_settled().await? {
            break;
        }
        if started.elapsed() > patience {
            done.store(true, Ordering::Relaxed);
            bail!("the sweep did not finish within {patience:?}");
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    done.store(true, Ordering::Relaxed);
    let (clerk, clerk_inline) = clerk.await??;
    // the clerk's last inquiry may have been answered after the sweep's end was seen
    while !node.store().asker_settled().await? {
        if started.elapsed() > patience {
            bail!("the clerk's last inquiries did not settle within {patience:?}");
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let sweep = started.elapsed();
    let peak_rss_mb = memory::peak_rss_mb("self").unwrap_or(0.0);
    say(&format!(
        "sweep: {:.2} s; clerk: {} single inquiries",
        sweep.as_secs_f64(),
        clerk.len()
    ));

    // 4. bookkeeping
    let expected = (inquiries + clerk.len()) as u64;
    let resent = settle_and_check(&node, test_peers, expected, clerk.len() as u64).await?;
    Ok(Measured {
        import,
        report,
        inquiries,
        sweep,
        clerk,
        clerk_inline,
        rss_before_sweep_mb,
        peak_rss_mb,
        peer_connections,
        database_connections,
        resent,
    })
}

/// Waits for the node and the test peer to agree that each of `expected` inquiries was received
/// once and answered once, `clerk` of them possibly inline; returns how many the peer received
/// again.
async fn settle_and_check(
    node: &crate::node::Node,
    test_peers: &TestPeers,
    expected: u64,
    clerk: u64,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = node.store().asker_counts().await?;
        let (received, repeated, delivered, inline, refused) = test_peers.totals();
        let n = i64::try_from(expected)?;
        let checks = [
            ("node: inquiries sent", counts.inquiries, n),
            ("node: inquiries answered", counts.answered, n),
            ("node: confirmations stored", counts.confirmations, n),
            ("node: inquiries without a confirmation", counts.unconfirmed, 0),
            ("node: outbox entries left", counts.outbox, 0),
            (
                "node: confirmations accepted (audit)",
                counts.confirmations_audited,
                n,
            ),
            ("peer: distinct inquiries received", i64::try_from(received)?, n),
            (
                "peer: answers delivered or given inline",
                i64::try_from(delivered + inline)?,
                n,
            ),
            ("peer: answers refused by the node", i64::try_from(refused)?, 0),
        ];
        let wrong: Vec<String> = checks
            .iter()
            .filter(|(_, got, want)| got != want)
            .map(|(what, got, want)| format!("  {what}: {got}, expected {want}"))
            .collect();
        if wrong.is_empty() {
            ensure!(
                inline <= clerk,
                "more inline answers ({inline}) than single inquiries ({clerk})"
            );
            return Ok(repeated);
        }
        if Instant::now() > deadline {
            bail!(
                "bookkeeping failed: not every inquiry was answered exactly once\n{}",
                wrong.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A certificate verification about `resident_id`, as the sweep and the clerk send it.
fn draft(resident_id: crate::domain::resident_id::ResidentId) -> InquiryDraft {
    InquiryDraft {
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Normal,
        subject: Subject {
            resident_id,
            certificate_number: None,
        },
        message_id: None,
    }
}

/// Established TCP connections (IPv4 and IPv6) whose remote port is one of `ports`: with the
/// peers' and the node's listening ports, each connection between the node and a peer once (its
/// connecting end).
fn tcp_connections_to(ports: &[u16]) -> u64 {
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state)) = (fields.get(2), fields.get(3)) else {
                continue;
            };
            let port = remote
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            if *state == "01" && port.is_some_and(|port| ports.contains(&port)) {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_distinct_counties_other_than_the_node() {
        let me = CountyCode::parse(NODE).unwrap();
        let peers = peer_counties(me, 1_000).unwrap();
        let distinct: std::collections::HashSet<_> = peers.iter().collect();
        assert_eq!(distinct.len(), 1_000);
        assert!(!peers.contains(&me));
        assert!(peer_counties(me, 100_000).is_err());
    }
}
