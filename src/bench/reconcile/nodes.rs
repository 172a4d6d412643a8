//! `hancha bench reconcile --nodes`: a real node's run, from PostgreSQL to PostgreSQL.
//!
//! The in-memory benchmark measures the protocol; a night's run also reads the county's digests
//! from its database, keys them, and commits the repairs. Here 鼎城区 (430703, this process)
//! and 新化县 (431322, a `hancha serve` child) run on their own fresh databases, over the
//! exchange benchmark's `Rig`, with the registries of `SharedPeople`:
//!
//! 1. **import**: both registries written through [`Store::upsert_persons`] in chunks, timed
//!    on its own (an import is not part of reconciliation), then `VACUUM (ANALYZE)`, as
//!    autovacuum would before the night;
//! 2. **first run**: [`Node::reconcile_with`](crate::node::Node::reconcile_with) on both sets;
//!    every person's digest is computed and stored on both sides;
//! 3. a few persons rewritten on each side (a status field corrected alike on both sides), `VACUUM (ANALYZE)`;
//! 4. **second run**: the stored digests are read; only the rewritten persons' are computed;
//! 5. 430703's set read and keyed once more on its own, to split where the loading time goes.
//!
//! Each run is timed in phases from the run's progress reports. Both runs must find exactly the
//! injected difference on both sides, person by person, open no more outflow inquiries than the
//! cap, and leave no digest uncomputed; otherwise the benchmark fails without figures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use super::node_check::check;
pub use super::node_report::NodesReport;
use super::node_report::{NodeRun, PeopleRun};
use super::people::{SharedPeople, Side};
use crate::bench::exchange::{ASKER, RESPONDER};
use crate::bench::memory;
use crate::bench::rig::Rig;
use crate::config::Limits;
use crate::devdb::{Databases, ServerFacts};
use crate::domain::division::CountyCode;
use crate::domain::reconcile::ReconcileSet;
use crate::domain::reconcile::people::{compared_fields, fields_key, person_digest};
use crate::domain::riblt::Element;
use crate::node::reconcile::{Progress, RunProgress, SetSummary};
use crate::store::Store;
use crate::store::reconcile::PersonDigest;

/// Persons per import call, as a registry import would send them.
pub(super) const IMPORT_CHUNK: usize = 10_000;

/// Persons rewritten on each side between the two runs.
const REWRITTEN: usize = 100;

/// Outflow inquiries the responder accepts a day: above anything the runs open.
const DAILY_CAP: u32 = 100_000;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct NodesOptions {
    /// Persons in the origin's set.
    pub n: usize,
    /// Element differences between the two sets.
    pub d: usize,
}

/// Runs the benchmark; `say` receives progress lines.
pub async fn run(options: NodesOptions, say: &(dyn Fn(&str) + Sync)) -> anyhow::Result<NodesReport> {
    ensure!(options.n >= 1, "--n must be at least 1");
    let people = SharedPeople::new(
        CountyCode::parse(ASKER)?,
        CountyCode::parse(RESPONDER)?,
        options.n,
        options.d,
    )?;
    let mut databases = Databases::provision("bench").await?;
    let outcome = run_on(&mut databases, &people, say).await;
    say("removing the benchmark databases");
    databases.remove().await;
    outcome
}

async fn run_on(
    databases: &mut Databases,
    people: &SharedPeople,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<NodesReport> {
    let facts = databases.facts().await?;
    say(&format!(
        "PostgreSQL {} ({}), fsync={}, synchronous_commit={}",
        facts.version, facts.source, facts.fsync, facts.synchronous_commit
    ));
    let node_databases = (databases.create("a").await?, databases.create("b").await?);
    say("starting 430703 (this process) and 431322 (hancha serve) over mutual TLS");
    let rig = Rig::start(
        people.origin,
        people.destination,
        (&node_databases.0, &node_databases.1),
        DAILY_CAP,
        &Limits::default(),
    )
    .await?;
    let measured = measure(&rig, people, facts, say).await;
    let tail = rig.responder_log_tail();
    rig.stop().await;
    measured.with_context(|| format!("431322's log ends with:\n{tail}"))
}

async fn measure(
    rig: &Rig,
    people: &SharedPeople,
    facts: ServerFacts,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<NodesReport> {
    let asker = rig.asker().store().clone();
    let responder = rig.responder_store.clone();
    let fields = fields_key(&compared_fields(&rig.agreement));

    say(&format!(
        "importing {} persons into 430703 and {} into 431322, {IMPORT_CHUNK} a call",
        people.size(Side::Origin),
        people.size(Side::Destination)
    ));
    let started = Instant::now();
    let imports = (
        tokio::spawn(import(asker.clone(), *people, Side::Origin)),
        tokio::spawn(import(responder.clone(), *people, Side::Destination)),
    );
    imports.0.await??;
    imports.1.await??;
    let import_seconds = started.elapsed().as_secs_f64();
    say(&format!("import: {import_seconds:.1} s"));
    vacuum(&asker, &responder).await?;

    let (first, first_asked) = reconcile_once(rig, people, &fields, "first", say).await?;

    say(&format!(
        "rewriting {REWRITTEN} persons on each side (a status field corrected alike on both sides)"
    ));
    let rewrites = (
        people.rewritten(Side::Origin, REWRITTEN),
        people.rewritten(Side::Destination, REWRITTEN),
    );
    let rewritten = rewrites.0.len();
    asker.upsert_persons(&rewrites.0).await?;
    responder.upsert_persons(&rewrites.1).await?;
    vacuum(&asker, &responder).await?;

    let (mut second, second_asked) = reconcile_once(rig, people, &fields, "second", say).await?;
    second.reasked = second_asked.intersection(&first_asked).count();
    ensure!(
        (second.digests_to_compute, second.peer_digests_to_compute) == (rewritten as u64, rewritten as u64),
        "the second run had {} and {} digests to compute, {rewritten} persons were rewritten on each side",
        second.digests_to_compute,
        second.peer_digests_to_compute
    );

    say("430703's set once more, read and keyed on its own");
    let anatomy = anatomy(rig, people).await?;
    Ok(NodesReport::new(
        people,
        import_seconds,
        rewritten,
        rig.asker().reconcile_settings().max_inquiries_per_run,
        anatomy,
        [first, second],
        facts,
    ))
}

/// Writes `side`'s registry in chunks.
async fn import(store: Store, people: SharedPeople, side: Side) -> anyhow::Result<()> {
    for range in people.ranges(side) {
        let mut start = range.start;
        while start < range.end {
            let end = (start + IMPORT_CHUNK).min(range.end);
            store
                .upsert_persons(&people.persons(side, start..end))
                .await
                .context("importing persons")?;
            start = end;
        }
    }
    Ok(())
}

/// `VACUUM (ANALYZE) persons` on both sides: what autovacuum would have done between an import
/// and the night, so that each run starts from the same state whatever autovacuum is up to.
async fn vacuum(asker: &Store, responder: &Store) -> anyhow::Result<()> {
    for store in [asker, responder] {
        store.vacuum_persons().await.context("vacuuming persons")?;
    }
    Ok(())
}

/// Persons whose digest is missing or made for other fields: what the next run computes.
async fn digests_to_compute(store: &Store, fields: &str) -> anyhow::Result<u64> {
    Ok(store.persons_without_digest_for(fields).await?)
}

/// Resets the peak resident set of process `pid` (a child of ours), as
/// [`memory::reset_own_peak`] does for this one; whether the kernel took it.
fn reset_peak(pid: &str) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// One `reconcile_with` from 430703, timed in phases and checked; also returns the persons it
/// opened an outflow inquiry about.
async fn reconcile_once(
    rig: &Rig,
    people: &SharedPeople,
    fields: &str,
    name: &'static str,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<(NodeRun, BTreeSet<String>)> {
    let asker = rig.asker().store();
    let digests_before = (
        digests_to_compute(asker, fields).await?,
        digests_to_compute(&rig.responder_store, fields).await?,
    );
    say(&format!(
        "{name} run: 430703 reconciles with 431322 ({} and {} digests to compute)",
        digests_before.0, digests_before.1
    ));
    let responder_pid = rig.responder_pid().map(|pid| pid.to_string());
    let own_peak_reset = memory::reset_own_peak();
    let responder_peak_reset = responder_pid.as_deref().is_some_and(reset_peak);
    // Just reset, the peaks are the resident sets the run starts from.
    let rss_at_start_mb = memory::peak_rss_mb("self").unwrap_or(0.0);
    let responder_rss_at_start_mb = responder_pid
        .as_deref()
        .and_then(memory::peak_rss_mb)
        .unwrap_or(0.0);

    let mut events: Vec<(Instant, RunProgress)> = Vec::new();
    let started = Instant::now();
    let summaries = rig
        .asker()
        .reconcile_with(rig.responder_county, |step| events.push((Instant::now(), step)))
        .await
        .with_context(|| format!("the {name} run"))?;
    let ended = Instant::now();
    let peak_rss_mb = memory::peak_rss_mb("self").unwrap_or(0.0);
    let responder_peak_rss_mb = responder_pid
        .as_deref()
        .and_then(memory::peak_rss_mb)
        .unwrap_or(0.0);

    let summary_of = |set: ReconcileSet| {
        summaries
            .iter()
            .find(|summary| summary.record.set_name == set.as_str())
            .with_context(|| format!("the {name} run reported no {set} set"))
    };
    let messages = summary_of(ReconcileSet::Messages)?;
    let shared = summary_of(ReconcileSet::SharedPeople)?;
    let phases = Phases::of(&events, started, messages, shared, ended)?;
    let checked = check(rig, people, shared, name == "first").await?;
    let digests_after = (
        digests_to_compute(asker, fields).await?,
        digests_to_compute(&rig.responder_store, fields).await?,
    );
    ensure!(
        digests_after == (0, 0),
        "after the {name} run, {} and {} persons still had no digest",
        digests_after.0,
        digests_after.1
    );

    let run = NodeRun {
        seconds: (ended - started).as_secs_f64(),
        digests_to_compute: digests_before.0,
        peer_digests_to_compute: digests_before.1,
        messages_seconds: messages.seconds,
        people: PeopleRun {
            local_size: shared.record.local_size,
            peer_size: shared.record.peer_size,
            differences: shared.record.differences,
            peer_differences: checked.responder_differences,
            symbols: shared.record.symbols,
            fell_back: shared.record.fell_back,
            bytes_sent: shared.record.bytes_sent,
            bytes_received: shared.record.bytes_received,
            seconds: shared.seconds,
            load_seconds: phases.load,
            peer_load_seconds: phases.peer_load,
            protocol_seconds: phases.protocol,
            commit_seconds: phases.commit,
            after_seconds: phases.after,
            inquiries_opened: shared.committed.inquiries_opened,
            reported: shared.committed.reported,
            peer_reported: shared.peer_reported,
        },
        rss_at_start_mb,
        responder_rss_at_start_mb,
        peak_rss_mb,
        responder_peak_rss_mb,
        peak_rss_per_run: own_peak_reset && responder_peak_reset,
        reasked: 0,
    };
    say(&format!(
        "{name} run: {:.2} s; shared people {:.2} s (read + key {:.2} s, 431322 until ready {:.2} s, \
         protocol {:.2} s, commit {:.2} s), {} differences, {} symbols",
        run.seconds,
        run.people.seconds,
        phases.load,
        phases.peer_load,
        phases.protocol,
        phases.commit,
        run.people.differences,
        run.people.symbols
    ));
    Ok((run, checked.asked))
}

/// Where the shared-people set's time went, from the progress reports of the run.
struct Phases {
    /// Reading and keying our set (computing and storing the missing digests first).
    load: f64,
    /// From `begin` until the peer was ready: it read and keyed its set.
    peer_load: f64,
    /// Coding, sending and decoding symbols.
    protocol: f64,
    /// Naming the difference, the peer's commit, then ours.
    commit: f64,
    /// After the set: dropping it, releasing the lock.
    after: f64,
}

impl Phases {
    /// The run began with the messages set, and the shared-people set right after it (only the
    /// lock is taken first: one query); each set's summary says how long it took, and the
    /// progress reports mark the phases in between.
    fn of(
        events: &[(Instant, RunProgress)],
        started: Instant,
        messages: &SetSummary,
        shared: &SetSummary,
        ended: Instant,
    ) -> anyhow::Result<Phases> {
        let set = ReconcileSet::SharedPeople;
        let at = |wanted: fn(&Progress) -> bool| {
            events.iter().find_map(|(when, event)| match event {
                RunProgress::Exchange { set: of, progress } if *of == set && wanted(progress) => Some(*when),
                _ => None,
            })
        };
        let loaded = events
            .iter()
            .find_map(|(when, event)| {
                matches!(event, RunProgress::Loaded { set: of, .. } if *of == set).then_some(*when)
            })
            .context("no report that the shared-people set was loaded")?;
        let ready =
            at(|p| matches!(p, Progress::Ready { .. })).context("no report that the peer was ready")?;
        let decoded = at(|p| matches!(p, Progress::Decoded { .. })).context("no report of the decoding")?;
        let set_started = started + Duration::from_secs_f64(messages.seconds);
        let set_ended = set_started + Duration::from_secs_f64(shared.seconds);
        let seconds = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64();
        Ok(Phases {
            load: seconds(set_started, loaded),
            peer_load: seconds(loaded, ready),
            protocol: seconds(ready, decoded),
            commit: seconds(decoded, set_ended),
            after: seconds(set_ended, ended),
        })
    }
}

/// What loading 430703's set is made of, measured on its own after the runs (every digest
/// stored): the read, and the keying with its sort, as the node's snapshot does them; and, in
/// memory, the SHA-256 digests a first run computes for every person.
pub struct Anatomy {
    /// Reading the stored digests of the shared persons (s).
    pub read_seconds: f64,
    /// Keying them (HMAC-SHA256) and sorting (s).
    pub key_seconds: f64,
    /// Computing every person's digest from its fields, in memory (s).
    pub digest_seconds: f64,
}

async fn anatomy(rig: &Rig, people: &SharedPeople) -> anyhow::Result<Anatomy> {
    let fields = compared_fields(&rig.agreement);
    let key = rig.reconcile_key();
    let started = Instant::now();
    let rows = rig
        .asker()
        .store()
        .shared_person_digests(people.destination, &fields_key(&fields), |person| {
            person_digest(&person.resident_id, &person.status, &fields)
        })
        .await?;
    let read_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut keyed: Vec<(Element, PersonDigest)> = rows
        .into_iter()
        .map(|row| (key.element(ReconcileSet::SharedPeople, &row.digest), row))
        .collect();
    keyed.sort_unstable_by_key(|(element, _)| *element);
    let (elements, items): (Vec<Element>, Vec<PersonDigest>) = keyed.into_iter().unzip();
    let key_seconds = started.elapsed().as_secs_f64();
    ensure!(
        elements.len() == people.size(Side::Origin) && items.len() == elements.len(),
        "read {} persons, {} are shared",
        elements.len(),
        people.size(Side::Origin)
    );

    let mut digest_seconds = 0.0;
    let mut start = 0;
    while start < people.n {
        let end = (start + IMPORT_CHUNK).min(people.n);
        let persons = people.persons(Side::Origin, start..end);
        let started = Instant::now();
        for person in &persons {
            std::hint::black_box(person_digest(&person.resident_id, &person.status, &fields));
        }
        digest_seconds += started.elapsed().as_secs_f64();
        start = end;
    }
    Ok(Anatomy {
        read_seconds,
        key_seconds,
        digest_seconds,
    })
}
