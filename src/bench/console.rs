//! `hancha bench console`: how fast the web console's first page of the work queue (工作台)
//! renders when many inquiries wait, measured beside the same rows fetched as JSON from the
//! HTTP API (`POST /v1/ListPending`, the same operator call without the page around it).
//!
//! The run: the two nodes of the exchange benchmark ([`Rig`], production durability), the asking
//! county's web listener on loopback, its agreement answering the other county by hand; its
//! registry holds the persons, and `pending` inquiries from the other county wait for its answer (stored through the intake the exchange uses, with
//! deadlines spread so that some are overdue). Then `runs` times, one after the other: `GET
//! /queue` (the whole page read) and the API call; medians and 95th percentiles of each.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;

use super::population::Population;
use super::rig::Rig;
use crate::config::Limits;
use crate::devdb::{Databases, ServerFacts};
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Inquiry, Subject};
use crate::domain::time::today_in_china;
use crate::domain::vocabulary::{InquiryKind, Priority};
use crate::store::inbound::InboundInquiry;

/// The county whose console is measured, and the county whose inquiries wait there.
const CONSOLE: &str = "430703";
const PEER: &str = "431322";

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleOptions {
    /// Inquiries waiting for an answer.
    pub pending: usize,
    /// Requests of each kind; the figures are medians and 95th percentiles.
    pub runs: usize,
}

/// The figures.
#[derive(Clone, Debug, Serialize)]
pub struct ConsoleReport {
    /// Inquiries waiting for an answer.
    pub pending: usize,
    /// Rows on the first page (the operator API's default limit).
    pub rows: usize,
    /// Requests of each kind.
    pub runs: usize,
    /// `GET /queue`, whole page read: median (ms).
    pub page_ms: f64,
    /// … 95th percentile (ms).
    pub page_p95_ms: f64,
    /// The page's size (bytes).
    pub page_bytes: usize,
    /// `POST /v1/ListPending` (the same rows as JSON): median (ms).
    pub api_ms: f64,
    /// … 95th percentile (ms).
    pub api_p95_ms: f64,
    /// page ÷ API, medians.
    pub page_api_ratio: f64,
    /// The target: the first page under 200 ms.
    pub target_ms: f64,
    /// The database server.
    pub postgres: ServerFacts,
    /// CPU cores available to this process.
    pub cores: usize,
}

impl ConsoleReport {
    /// The figures as a table.
    pub fn table(&self) -> String {
        format!(
            "work queue (工作台) with {} inquiries waiting, first page {} rows, {} requests each\n\
             {:<40} {:>9} {:>9}\n\
             {:<40} {:>9.1} {:>9.1}\n\
             {:<40} {:>9.1} {:>9.1}\n\
             page ÷ API (medians) {:.2}; page {} bytes; target: page under {:.0} ms\n\
             PostgreSQL {} ({}), fsync={}, {} cores\n",
            self.pending,
            self.rows,
            self.runs,
            "",
            "median ms",
            "p95 ms",
            "GET /queue (the console's page)",
            self.page_ms,
            self.page_p95_ms,
            "POST /v1/ListPending (the rows as JSON)",
            self.api_ms,
            self.api_p95_ms,
            self.page_api_ratio,
            self.page_bytes,
            self.target_ms,
            self.postgres.version,
            self.postgres.source,
            self.postgres.fsync,
            self.cores,
        )
    }
}

/// Runs the benchmark; `say` receives progress lines.
pub async fn run(options: ConsoleOptions, say: &(dyn Fn(&str) + Sync)) -> anyhow::Result<ConsoleReport> {
    if options.pending == 0 || options.runs == 0 {
        bail!("--pending and --runs must be at least 1");
    }
    let mut databases = Databases::provision("bench").await?;
    let outcome = run_on(&mut databases, options, say).await;
    say("removing the benchmark databases");
    databases.remove().await;
    outcome
}

async fn run_on(
    databases: &mut Databases,
    options: ConsoleOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<ConsoleReport> {
    let postgres = databases.facts().await?;
    let (console, peer) = (CountyCode::parse(CONSOLE)?, CountyCode::parse(PEER)?);
    let node_databases = (databases.create("a").await?, databases.create("b").await?);
    say(&format!(
        "starting {CONSOLE} (this process, with its console) and {PEER}"
    ));
    let rig = Rig::start_with(
        console,
        peer,
        (&node_databases.0, &node_databases.1),
        u32::try_from(options.pending)
            .unwrap_or(u32::MAX)
            .saturating_add(1_000),
        &Limits::default(),
        true,
    )
    .await?;
    let outcome = measure(&rig, peer, options, say).await;
    rig.stop().await;
    let (page, api, rows, page_bytes) = outcome?;
    let (page_ms, page_p95_ms) = (percentile(&page, 0.5), percentile(&page, 0.95));
    let (api_ms, api_p95_ms) = (percentile(&api, 0.5), percentile(&api, 0.95));
    Ok(ConsoleReport {
        pending: options.pending,
        rows,
        runs: options.runs,
        page_ms,
        page_p95_ms,
        page_bytes,
        api_ms,
        api_p95_ms,
        page_api_ratio: page_ms / api_ms.max(f64::EPSILON),
        target_ms: 200.0,
        postgres,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
    })
}

/// Fills the queue and times the requests: (page ms, API ms, rows on the page, page bytes).
async fn measure(
    rig: &Rig,
    peer: CountyCode,
    options: ConsoleOptions,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize, usize)> {
    let running = rig.asker.as_ref().context("the console's node is running")?;
    let web = running
        .web_addr
        .context("the console's node has a web listener")?;
    let store = running.node.store();
    let population = Population::new(peer, CountyCode::parse(CONSOLE)?, options.pending, 0);
    say(&format!("registering {} persons", population.registry_size()));
    let persons: Vec<_> = population.registry().collect();
    for chunk in persons.chunks(2_000) {
        store.upsert_persons(chunk).await?;
    }
    say(&format!(
        "{} inquiries from {PEER} arrive and wait",
        options.pending
    ));
    let agreement = AgreementRef {
        id: rig.agreement.id().to_string(),
        hash: rig.agreement.canonical_hash().as_str().to_string(),
    };
    let now = Utc::now();
    let indices: Vec<usize> = (0..options.pending).collect();
    for chunk in indices.chunks(1_000) {
        let inquiries: Vec<Inquiry> = chunk
            .iter()
            .map(|&index| Inquiry {
                message_id: uuid::Uuid::now_v7(),
                agreement: agreement.clone(),
                kind: InquiryKind::OutflowStatus,
                priority: Priority::Normal,
                subject: Subject {
                    resident_id: population.sweep_subject(index & !1),
                    certificate_number: None,
                },
            })
            .collect();
        let batch: Vec<InboundInquiry<'_>> = inquiries
            .iter()
            .enumerate()
            .map(|(offset, inquiry)| InboundInquiry {
                inquiry,
                // from five days overdue to twenty-five days ahead
                due_at: now + chrono::Duration::hours(((chunk[0] + offset) % 720) as i64 - 120),
                daily_cap: u32::MAX,
            })
            .collect();
        store
            .accept_inbound_inquiries(peer, today_in_china(), &batch, now)
            .await?;
    }
    // warm up: the first requests open connections and fill caches
    let (_, body) = fetch(web, "GET", "/queue", None).await?;
    let rows = String::from_utf8_lossy(&body).matches("data-message-id=").count();
    if rows == 0 {
        bail!("the work queue page lists no inquiry");
    }
    fetch(web, "POST", "/v1/ListPending", Some("{}")).await?;
    say(&format!("timing {} requests of each kind", options.runs));
    let (mut page, mut api) = (Vec::new(), Vec::new());
    let mut page_bytes = 0;
    for _ in 0..options.runs {
        let (took, body) = fetch(web, "GET", "/queue", None).await?;
        let listed = String::from_utf8_lossy(&body).matches("data-message-id=").count();
        if listed != rows {
            bail!(
                "the work queue page listed {listed} inquiries, not {rows}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        page.push(took);
        page_bytes = body.len();
        let (took, _) = fetch(web, "POST", "/v1/ListPending", Some("{}")).await?;
        api.push(took);
    }
    Ok((page, api, rows, page_bytes))
}

/// One request on a new connection, the whole answer read: (ms, body).
async fn fetch(
    web: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(f64, Bytes)> {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(web).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", web.to_string());
    if json.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(Bytes::from(json.unwrap_or_default().to_string())))?;
    let answer = tokio::time::timeout(Duration::from_secs(60), sender.send_request(request))
        .await
        .context("the web listener did not answer in 60 s")??;
    let status = answer.status();
    let body = answer.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{method} {path}: HTTP {status}");
    }
    Ok((started.elapsed().as_secs_f64() * 1_000.0, body))
}

/// The `q` quantile of `values` (nearest rank).
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
