//! `hancha bench reconcile`: the reconciliation protocol ([`crate::exchange::reconcile`]) between
//! two in-memory sets over a real gRPC stream with mutual TLS on loopback, measured beside the two
//! ways it replaces: sending every element, and comparing Merkle trees.
//!
//! The sets: each holds `n` random 32-byte elements (a seeded `StdRng`, so a seed names the same
//! sets every time); `d` elements are in exactly one of them, ⌈d/2⌉ only in the caller's set and
//! ⌊d/2⌋ only in the peer's (so d = 1 puts the one difference on the caller's side), and the other
//! `n − ⌈d/2⌉` are in both. Each run draws its own sets (seed, seed + 1, …), then
//!
//! 1. **IBLT**: 鼎城区 (430703, this side) calls `Exchange.Reconcile` on 新化县 (431322, an
//!    in-process server with its own certificate) and runs the protocol as a node does, timed
//!    from `begin` until the peer has committed, over a channel opened beforehand (a node keeps
//!    its peer channels open);
//! 2. **naive**: the same stream, with the protocol's fallback taken from the start: every
//!    element of the caller's set is sent, really, and timed the same way;
//! 3. **Merkle**: [`merkle::reconcile`] over the same sets, in memory, bytes counted exactly.
//!
//! Every one of the three must find exactly the injected difference, on both sides where the
//! side learns it; otherwise the run fails, without figures. The figures are medians over the
//! runs, except peak memory, which is the first run's: later runs start with the memory earlier
//! ones (the baselines' hash sets and trees above all) left with the allocator, so their peaks
//! say more about the allocator than about the protocol.
//!
//! With `--nodes`, [`nodes`] measures a real node's run instead: two county nodes, each on its
//! own PostgreSQL, reading their registries' digests, keying them, reconciling and committing.

mod loopback;
mod node_check;
mod node_report;
pub mod nodes;
mod people;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::Serialize;

use self::loopback::{Loopback, run_begin, send_every_element};
use super::{memory, merkle};
use crate::domain::reconcile::DifferenceDetail;
use crate::domain::riblt::Element;
use crate::exchange::reconcile::Responded;
use crate::node::reconcile::{Initiated, initiate};
use crate::peer::reconcile::ReconcilePeer;
use crate::tls::dev::TestPki;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct ReconcileOptions {
    /// Elements in each set.
    pub n: usize,
    /// Elements in exactly one of the two sets.
    pub d: usize,
    /// Runs, each on sets of its own; the figures are medians.
    pub runs: usize,
    /// Seed of the first run's sets.
    pub seed: u64,
}

/// The figures of one run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RunFigures {
    /// The seed of this run's sets.
    pub seed: u64,
    /// Coded symbols the caller sent, the last chunk's overshoot included.
    pub symbols: u64,
    /// Coded symbols the peer took in: until it had decoded, or all of them when the caller
    /// fell back.
    pub symbols_received: u64,
    /// Whether the caller gave up on symbols and sent every element.
    pub fell_back: bool,
    /// Bytes both ways, gRPC framing included.
    pub bytes: u64,
    /// From `begin` until the peer committed (s).
    pub seconds: f64,
    /// Bytes both ways when the caller sends every element.
    pub naive_bytes: u64,
    /// How long that took (s).
    pub naive_seconds: f64,
    /// Bytes both ways of the Merkle-tree exchange.
    pub merkle_bytes: u64,
    /// Its round trips.
    pub merkle_round_trips: u32,
    /// Peak resident memory of this process during the IBLT run (MiB).
    pub peak_rss_mb: f64,
}

/// The figures: medians over the runs unless said otherwise.
#[derive(Clone, Debug, Serialize)]
pub struct ReconcileReport {
    /// Elements in each set.
    pub n: usize,
    /// Elements in exactly one set.
    pub d: usize,
    /// Runs measured.
    pub runs: usize,
    /// Coded symbols sent.
    pub symbols: u64,
    /// Coded symbols the peer took in.
    pub symbols_received: u64,
    /// `symbols ÷ d`; absent when the sets are identical.
    pub symbols_per_difference: Option<f64>,
    /// Bytes both ways, gRPC framing included.
    pub bytes: u64,
    /// From `begin` until the peer committed (s).
    pub seconds: f64,
    /// Whether any run fell back to sending every element.
    pub fell_back: bool,
    /// Bytes both ways of sending every element over the same stream (measured, not computed).
    pub naive_bytes: u64,
    /// How long sending every element took (s).
    pub naive_seconds: f64,
    /// `bytes ÷ naive_bytes`.
    pub bytes_vs_naive: f64,
    /// Bytes both ways of the Merkle-tree exchange (computed in memory, not sent).
    pub merkle_bytes: u64,
    /// Its round trips, each a network round-trip time it would wait.
    pub merkle_round_trips: u32,
    /// The peak of this process during the first IBLT run (MiB): both sides, both sets.
    pub peak_rss_mb: f64,
    /// Whether that peak excludes building the sets (the kernel could reset the peak).
    pub peak_rss_excludes_setup: bool,
    /// CPU cores available to this process.
    pub cores: usize,
    /// Every run's figures.
    pub per_run: Vec<RunFigures>,
}

/// Runs the benchmark; `say` receives progress lines.
pub async fn run(options: ReconcileOptions, say: &(dyn Fn(&str) + Sync)) -> anyhow::Result<ReconcileReport> {
    ensure!(options.n >= 1, "--n must be at least 1");
    ensure!(options.runs >= 1, "--runs must be at least 1");
    ensure!(
        options.d.div_ceil(2) <= options.n,
        "--d {} does not fit in sets of {}: at most 2·n elements can differ",
        options.d,
        options.n
    );
    let pki = TestPki::new().context("minting the benchmark CA")?;
    let mut per_run = Vec::with_capacity(options.runs);
    let mut peak_rss_excludes_setup = false;
    for index in 0..options.runs {
        let seed = options.seed.wrapping_add(index as u64);
        say(&format!(
            "run {}/{}: building two sets of {} elements, {} differing (seed {seed})",
            index + 1,
            options.runs,
            options.n,
            options.d
        ));
        let sets = Sets::generate(options.n, options.d, seed);
        let (figures, reset) = measure(&pki, &sets, seed, say).await?;
        if index == 0 {
            peak_rss_excludes_setup = reset;
        }
        per_run.push(figures);
    }
    Ok(ReconcileReport::from_runs(
        options,
        per_run,
        peak_rss_excludes_setup,
    ))
}

/// One run over `sets`; also returns whether the peak memory could be reset before it.
async fn measure(
    pki: &TestPki,
    sets: &Sets,
    seed: u64,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<(RunFigures, bool)> {
    let mut peer = Loopback::start(pki, Arc::clone(&sets.b)).await?;

    let reset = memory::reset_own_peak();
    let started = Instant::now();
    let mut link = peer
        .client
        .open_reconcile(&run_begin())
        .await
        .context("the IBLT run")?;
    let initiated = initiate(&mut link, &sets.a, |_| DifferenceDetail::default(), |_| {})
        .await
        .context("the IBLT run")?;
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_mb = memory::peak_rss_mb("self").unwrap_or(0.0);
    let responded = peer.committed().await?;
    sets.check(
        "IBLT",
        &initiated.ours_only,
        initiated.theirs_only_count,
        &responded,
    )?;
    say(&format!(
        "IBLT: {} symbols, {} bytes, {seconds:.3} s{}",
        initiated.symbols,
        bytes_of(&initiated),
        if initiated.fell_back { " (fell back)" } else { "" }
    ));

    let started = Instant::now();
    let naive = send_every_element(&mut peer.client, &sets.a)
        .await
        .context("the naive run")?;
    let naive_seconds = started.elapsed().as_secs_f64();
    let naive_responded = peer.committed().await?;
    sets.check(
        "naive",
        &naive.caller_only,
        naive.responder_only,
        &naive_responded,
    )?;
    say(&format!("naive: {} bytes, {naive_seconds:.3} s", naive.bytes));
    peer.stop().await;

    let merkle = merkle::reconcile(&sets.a, &sets.b);
    sets.check_merkle(&merkle)?;
    say(&format!(
        "Merkle: {} bytes, {} round trips",
        merkle.bytes, merkle.round_trips
    ));

    let figures = RunFigures {
        seed,
        symbols: initiated.symbols,
        symbols_received: responded.symbols,
        fell_back: initiated.fell_back,
        bytes: bytes_of(&initiated),
        seconds,
        naive_bytes: naive.bytes,
        naive_seconds,
        merkle_bytes: merkle.bytes,
        merkle_round_trips: merkle.round_trips,
        peak_rss_mb,
    };
    Ok((figures, reset))
}

fn bytes_of(initiated: &Initiated) -> u64 {
    initiated.bytes_sent + initiated.bytes_received
}

// === impl Sets ===

/// The two sets of one run and the difference injected between them.
struct Sets {
    /// The caller's set: the shared elements, then its own ⌈d/2⌉.
    a: Vec<Element>,
    /// The peer's set: the shared elements, then its own ⌊d/2⌋.
    b: Arc<Vec<Element>>,
    /// Where the caller's own elements start in `a`.
    shared: usize,
}

impl Sets {
    fn generate(n: usize, d: usize, seed: u64) -> Sets {
        let shared = n - d.div_ceil(2);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut draw = |count: usize| -> Vec<Element> {
            let mut elements = vec![[0u8; 32]; count];
            for element in &mut elements {
                rng.fill_bytes(element);
            }
            elements
        };
        let a = draw(n);
        let mut b = Vec::with_capacity(shared + d / 2);
        b.extend_from_slice(&a[..shared]);
        b.extend(draw(d / 2));
        Sets {
            a,
            b: Arc::new(b),
            shared,
        }
    }

    fn a_only(&self) -> &[Element] {
        &self.a[self.shared..]
    }

    fn b_only(&self) -> &[Element] {
        &self.b[self.shared..]
    }

    /// Fails unless the caller found exactly its own elements and the count of the peer's, and
    /// the peer exactly its own and the count of the caller's.
    fn check(
        &self,
        what: &str,
        caller_only: &[Element],
        peer_only_count: u64,
        peer: &Responded,
    ) -> anyhow::Result<()> {
        ensure!(
            same_elements(caller_only, self.a_only()),
            "{what}: the caller found {} elements of its own, {} were injected (or not the same ones)",
            caller_only.len(),
            self.a_only().len()
        );
        ensure!(
            same_elements(&peer.ours_only, self.b_only()),
            "{what}: the peer found {} elements of its own, {} were injected (or not the same ones)",
            peer.ours_only.len(),
            self.b_only().len()
        );
        ensure!(
            peer_only_count == self.b_only().len() as u64
                && peer.theirs_only_count == self.a_only().len() as u64,
            "{what}: the sides counted {peer_only_count} and {} elements on the other side, {} and {} were injected",
            peer.theirs_only_count,
            self.b_only().len(),
            self.a_only().len()
        );
        Ok(())
    }

    fn check_merkle(&self, outcome: &merkle::MerkleOutcome) -> anyhow::Result<()> {
        ensure!(
            same_elements(&outcome.initiator_only, self.a_only())
                && same_elements(&outcome.responder_only, self.b_only()),
            "Merkle: found {} and {} elements on the two sides, {} and {} were injected (or not the same ones)",
            outcome.initiator_only.len(),
            outcome.responder_only.len(),
            self.a_only().len(),
            self.b_only().len()
        );
        Ok(())
    }
}

fn same_elements(found: &[Element], injected: &[Element]) -> bool {
    found.len() == injected.len()
        && found.iter().collect::<HashSet<_>>() == injected.iter().collect::<HashSet<_>>()
}

// === impl ReconcileReport ===

impl ReconcileReport {
    fn from_runs(
        options: ReconcileOptions,
        per_run: Vec<RunFigures>,
        peak_rss_excludes_setup: bool,
    ) -> ReconcileReport {
        let median_u64 =
            |field: fn(&RunFigures) -> u64| median(per_run.iter().map(field).collect(), u64::cmp);
        let median_f64 =
            |field: fn(&RunFigures) -> f64| median(per_run.iter().map(field).collect(), f64::total_cmp);
        let symbols = median_u64(|run| run.symbols);
        let bytes = median_u64(|run| run.bytes);
        let naive_bytes = median_u64(|run| run.naive_bytes);
        ReconcileReport {
            n: options.n,
            d: options.d,
            runs: per_run.len(),
            symbols,
            symbols_received: median_u64(|run| run.symbols_received),
            symbols_per_difference: (options.d > 0).then(|| symbols as f64 / options.d as f64),
            bytes,
            seconds: median_f64(|run| run.seconds),
            fell_back: per_run.iter().any(|run| run.fell_back),
            naive_bytes,
            naive_seconds: median_f64(|run| run.naive_seconds),
            bytes_vs_naive: bytes as f64 / naive_bytes as f64,
            merkle_bytes: median_u64(|run| run.merkle_bytes),
            merkle_round_trips: median(
                per_run.iter().map(|run| run.merkle_round_trips).collect(),
                u32::cmp,
            ),
            peak_rss_mb: per_run[0].peak_rss_mb,
            peak_rss_excludes_setup,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            per_run,
        }
    }

    /// The figures as a table for people, with the targets beside them.
    pub fn table(&self) -> String {
        let per_difference = match self.symbols_per_difference {
            Some(ratio) => format!("{ratio:.2}"),
            None => "— (identical sets)".into(),
        };
        let symbols = if self.fell_back {
            format!("{} before falling back", self.symbols)
        } else {
            format!("{} (decoded after {})", self.symbols, self.symbols_received)
        };
        let rows = [
            ("IBLT coded symbols", symbols, ""),
            ("  symbols ÷ differences", per_difference, "≤ 2"),
            ("  bytes on the wire", format!("{}", self.bytes), ""),
            (
                "  seconds",
                format!("{:.3} s", self.seconds),
                "< 5 s at n = 10⁶, d = 10³",
            ),
            ("  fell back to every element", yes_no(self.fell_back).into(), ""),
            (
                "naive: every element, sent",
                format!("{} bytes, {:.3} s", self.naive_bytes, self.naive_seconds),
                "",
            ),
            ("  IBLT bytes ÷ naive", format!("{:.4}", self.bytes_vs_naive), ""),
            (
                "Merkle tree, computed",
                format!(
                    "{} bytes, {} round trips",
                    self.merkle_bytes, self.merkle_round_trips
                ),
                "",
            ),
            (
                "peak memory (both sides)",
                format!("{:.0} MiB", self.peak_rss_mb),
                "",
            ),
        ];
        let mut out = format!(
            "hancha bench reconcile: two sets of {} elements, {} differing (⌈d/2⌉ only in the caller's, \
             ⌊d/2⌋ only in the peer's)\nmedian of {} run(s); {} cores; gRPC with mutual TLS on 127.0.0.1\n\n",
            self.n, self.d, self.runs, self.cores
        );
        for (what, figure, target) in rows {
            let target = if target.is_empty() {
                String::new()
            } else {
                format!("   target {target}")
            };
            out.push_str(&format!("{what:<30} {figure}{target}\n"));
        }
        out.push_str(
            "\nBytes count both directions, gRPC's 5-byte frame headers included, TLS records not.\n\
             Naive is the protocol's own fallback taken from the start, sent and timed over the same stream;\n\
             Merkle is computed in memory (16-ary tree, exact byte count), not sent.\n",
        );
        out.push_str(if self.peak_rss_excludes_setup {
            "Peak memory: this process (caller, peer and both sets) during the first IBLT run.\n"
        } else {
            "Peak memory: this process since it started (the kernel would not reset the peak).\n"
        });
        out
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The middle value (the lower of the two middle ones for an even count).
fn median<T: Copy>(mut values: Vec<T>, order: impl Fn(&T, &T) -> std::cmp::Ordering) -> T {
    values.sort_by(order);
    values[(values.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_share_all_but_the_injected_difference() {
        let sets = Sets::generate(100, 7, 1);
        assert_eq!((sets.a.len(), sets.b.len()), (100, 99));
        assert_eq!((sets.a_only().len(), sets.b_only().len()), (4, 3));
        let a: HashSet<_> = sets.a.iter().collect();
        let b: HashSet<_> = sets.b.iter().collect();
        assert_eq!(a.intersection(&b).count(), 96);
        assert_eq!(Sets::generate(100, 7, 1).a, sets.a, "a seed names the same sets");
    }

    #[test]
    fn one_difference_is_on_the_callers_side() {
        let sets = Sets::generate(10, 1, 3);
        assert_eq!((sets.a_only().len(), sets.b_only().len()), (1, 0));
    }

    #[test]
    fn median_takes_the_middle_run() {
        assert_eq!(median(vec![3.0, 1.0, 2.0], f64::total_cmp), 2.0);
        assert_eq!(median(vec![4u64, 1, 3, 2], u64::cmp), 2);
    }
}
