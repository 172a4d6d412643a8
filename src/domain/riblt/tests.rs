//! Reconciliation end to end: an encoder's stream decoded against another set.

use std::collections::HashSet;

use proptest::prelude::*;
use rand::RngCore;

use super::*;

/// A cap on the symbols a reconciliation of `d` differences may take before the test fails.
///
/// It is far above the typical cost (1.35–1.45·d for large d, a few symbols for tiny d)
/// because the cost has a polynomial tail: the last two unrecovered elements stay together in
/// coded symbol `i` with probability about `1 − 4/i`, so needing more than `k` symbols has
/// probability of order `k⁻⁴`. Measured over 20,000 runs: d = 2 took up to 51 symbols,
/// d = 30 up to 317. At this cap a spurious failure has probability below 10⁻⁷ per run.
fn symbol_budget(d: usize) -> usize {
    64 * (d + 16)
}

fn random_elements(count: usize) -> Vec<Element> {
    let mut rng = rand::rng();
    (0..count)
        .map(|_| {
            let mut element = [0u8; 32];
            rng.fill_bytes(&mut element);
            element
        })
        .collect()
}

/// What one reconciliation recovered, and at what cost.
struct Outcome {
    remote_only: HashSet<Element>,
    local_only: HashSet<Element>,
    symbols: usize,
}

/// Streams `remote` into a decoder of `local` until decoded, failing past the budget.
fn reconcile(remote: &[Element], local: &[Element], budget: usize) -> Outcome {
    let mut encoder = Encoder::new(remote.iter().copied());
    let mut decoder = Decoder::new(local.iter().copied());
    while !decoder.is_decoded() {
        assert!(
            decoder.symbols_used() < budget,
            "not decoded after {budget} symbols"
        );
        decoder
            .add_remote(encoder.produce_next())
            .expect("an honest stream is consistent");
    }
    // Each element is recovered once.
    let remote_only: HashSet<Element> = decoder.remote_only().iter().copied().collect();
    let local_only: HashSet<Element> = decoder.local_only().iter().copied().collect();
    assert_eq!(
        remote_only.len(),
        decoder.remote_only().len(),
        "duplicate recovery"
    );
    assert_eq!(local_only.len(), decoder.local_only().len(), "duplicate recovery");
    Outcome {
        remote_only,
        local_only,
        symbols: decoder.symbols_used(),
    }
}

/// Two sets sharing `shared` elements, with the given numbers of elements only on each side.
struct Scenario {
    remote: Vec<Element>,
    local: Vec<Element>,
    remote_only: HashSet<Element>,
    local_only: HashSet<Element>,
}

impl Scenario {
    fn random(shared: usize, remote_only: usize, local_only: usize) -> Self {
        let shared = random_elements(shared);
        Self::from_parts(shared, random_elements(remote_only), random_elements(local_only))
    }

    fn from_parts(shared: Vec<Element>, remote_only: Vec<Element>, local_only: Vec<Element>) -> Self {
        Self {
            remote: shared.iter().chain(&remote_only).copied().collect(),
            local: shared.iter().chain(&local_only).copied().collect(),
            remote_only: remote_only.into_iter().collect(),
            local_only: local_only.into_iter().collect(),
        }
    }

    fn d(&self) -> usize {
        self.remote_only.len() + self.local_only.len()
    }
}

#[test]
fn identical_sets_decode_after_exactly_one_symbol() {
    let scenario = Scenario::random(1000, 0, 0);
    let outcome = reconcile(&scenario.remote, &scenario.local, 1);
    assert_eq!(outcome.symbols, 1);
    assert!(outcome.remote_only.is_empty() && outcome.local_only.is_empty());
}

#[test]
fn two_empty_sets_decode_after_exactly_one_symbol() {
    assert_eq!(reconcile(&[], &[], 1).symbols, 1);
}

#[test]
fn one_difference_decodes_from_the_first_symbol_alone() {
    for (remote_only, local_only) in [(1, 0), (0, 1)] {
        let scenario = Scenario::random(1000, remote_only, local_only);
        let outcome = reconcile(&scenario.remote, &scenario.local, 1);
        assert_eq!(outcome.symbols, 1);
        assert_eq!(outcome.remote_only, scenario.remote_only);
        assert_eq!(outcome.local_only, scenario.local_only);
    }
}

#[test]
fn a_few_differences_decode_within_a_handful_of_symbols() {
    let trials = 200;
    let d = 3;
    let mut symbols = 0;
    let mut worst = 0;
    for _ in 0..trials {
        let scenario = Scenario::random(500, 2, 1);
        let outcome = reconcile(&scenario.remote, &scenario.local, symbol_budget(d));
        assert_eq!(outcome.remote_only, scenario.remote_only);
        assert_eq!(outcome.local_only, scenario.local_only);
        symbols += outcome.symbols;
        worst = worst.max(outcome.symbols);
    }
    let mean = symbols as f64 / trials as f64;
    eprintln!("d = {d}: {mean:.2} symbols on average, at most {worst}, over {trials} trials");
    // Measured mean ≈ 5.2; the bound leaves room for the heavy tail (see `symbol_budget`).
    assert!(mean <= 3.0 * d as f64, "{mean} symbols on average for d = {d}");
}

#[test]
fn large_differences_cost_at_most_two_symbols_each() {
    let trials = 5;
    let d = 1000;
    let mut symbols = 0;
    for _ in 0..trials {
        let scenario = Scenario::random(10_000 - d / 2, d / 2, d / 2);
        let outcome = reconcile(&scenario.remote, &scenario.local, symbol_budget(d));
        assert_eq!(outcome.remote_only, scenario.remote_only);
        assert_eq!(outcome.local_only, scenario.local_only);
        symbols += outcome.symbols;
    }
    let per_difference = symbols as f64 / (trials * d) as f64;
    eprintln!("n = 10000, d = {d}: {per_difference:.3} symbols per difference over {trials} trials");
    assert!(per_difference <= 2.0, "{per_difference} symbols per difference");
}

#[test]
fn one_sided_differences_decode() {
    let remote_superset = Scenario::random(2000, 300, 0);
    let outcome = reconcile(
        &remote_superset.remote,
        &remote_superset.local,
        symbol_budget(300),
    );
    assert_eq!(outcome.remote_only, remote_superset.remote_only);
    assert!(outcome.local_only.is_empty());

    let remote_empty = Scenario::random(0, 0, 300);
    let outcome = reconcile(&remote_empty.remote, &remote_empty.local, symbol_budget(300));
    assert!(outcome.remote_only.is_empty());
    assert_eq!(outcome.local_only, remote_empty.local_only);
}

#[test]
fn symbols_after_decoding_change_nothing() {
    // Recovered elements must be peeled from symbols that arrive after their recovery too;
    // otherwise a later symbol holding only a recovered element would recover it again.
    let scenario = Scenario::random(500, 40, 40);
    let mut encoder = Encoder::new(scenario.remote.iter().copied());
    let mut decoder = Decoder::new(scenario.local.iter().copied());
    while !decoder.is_decoded() {
        decoder.add_remote(encoder.produce_next()).expect("consistent");
    }
    let (remote_only, local_only) = (decoder.remote_only().len(), decoder.local_only().len());
    for _ in 0..300 {
        decoder.add_remote(encoder.produce_next()).expect("consistent");
        assert!(decoder.is_decoded());
    }
    assert_eq!(decoder.remote_only().len(), remote_only);
    assert_eq!(decoder.local_only().len(), local_only);
}

#[test]
fn local_symbols_prepared_ahead_change_nothing() {
    let scenario = Scenario::random(2_000, 60, 45);
    let decode = |prepare: &[usize]| {
        let mut encoder = Encoder::new(scenario.remote.iter().copied());
        let mut decoder = Decoder::new(scenario.local.iter().copied());
        let mut steps = prepare.iter();
        while !decoder.is_decoded() {
            if let Some(&count) = steps.next() {
                decoder.prepare(count);
            }
            decoder.add_remote(encoder.produce_next()).expect("consistent");
        }
        let mut remote_only = decoder.remote_only().to_vec();
        let mut local_only = decoder.local_only().to_vec();
        remote_only.sort_unstable();
        local_only.sort_unstable();
        (decoder.symbols_used(), remote_only, local_only)
    };
    let plain = decode(&[]);
    assert_eq!(plain.1.len() + plain.2.len(), scenario.d());
    assert_eq!(decode(&[16, 0, 0, 40, 1, 500]), plain);
}

#[test]
fn decodes_symbols_that_crossed_the_wire() {
    let scenario = Scenario::random(300, 25, 25);
    let mut encoder = Encoder::new(scenario.remote.iter().copied());
    let mut decoder = Decoder::new(scenario.local.iter().copied());
    while !decoder.is_decoded() {
        assert!(decoder.symbols_used() < symbol_budget(50));
        let bytes = encoder.produce_next().to_bytes();
        let symbol = CodedSymbol::from_bytes(&bytes).expect("own encoding parses");
        decoder.add_remote(symbol).expect("consistent");
    }
    let remote_only: HashSet<Element> = decoder.remote_only().iter().copied().collect();
    assert_eq!(remote_only, scenario.remote_only);
}

#[test]
fn refuses_a_stream_that_recovers_more_elements_than_symbols() {
    // A forged stream: symbol 0 holds x alone, symbol 1 holds nothing although x maps there.
    // Peeling would flip x between "remote only" and "local only" forever.
    let x = random_elements(40)
        .into_iter()
        .find(|element| IndexSequence::new(checksum(element)).nth(1) == Some(1))
        .expect("an element maps to index 1 with probability 2/3");
    let mut pure = CodedSymbol::EMPTY;
    pure.apply(&x, checksum(&x), 1);
    let mut decoder = Decoder::new([]);
    decoder
        .add_remote(pure)
        .expect("one recovered element from one symbol");
    assert!(decoder.is_decoded());
    let error = decoder
        .add_remote(CodedSymbol::EMPTY)
        .expect_err("x cannot be both remote-only and local-only");
    assert_eq!(error.symbols, 2);
    assert!(!decoder.is_decoded());
    assert_eq!(decoder.add_remote(CodedSymbol::EMPTY), Err(error));
}

fn arbitrary_symbol() -> impl Strategy<Value = CodedSymbol> {
    // Mostly well-formed pure symbols (to drive peeling), some arbitrary garbage.
    prop_oneof![
        any::<[u8; 32]>().prop_map(|sum| CodedSymbol {
            sum,
            checksum: checksum(&sum),
            count: 1,
        }),
        any::<[u8; 32]>().prop_map(|sum| CodedSymbol {
            sum,
            checksum: checksum(&sum),
            count: -1,
        }),
        Just(CodedSymbol::EMPTY),
        (any::<[u8; 32]>(), any::<u64>(), any::<i64>())
            .prop_map(|(sum, checksum, count)| { CodedSymbol { sum, checksum, count } }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn recovers_exactly_the_symmetric_difference(
        shared in prop::collection::vec(any::<[u8; 32]>(), 0..300),
        remote_only in prop::collection::vec(any::<[u8; 32]>(), 0..300),
        local_only in prop::collection::vec(any::<[u8; 32]>(), 0..300),
    ) {
        // Random 32-byte strings are distinct except with negligible probability, but shrinking
        // can make them collide; such cases are not sets and are discarded.
        let total = shared.len() + remote_only.len() + local_only.len();
        let distinct: HashSet<&Element> = shared.iter().chain(&remote_only).chain(&local_only).collect();
        prop_assume!(distinct.len() == total);
        let scenario = Scenario::from_parts(shared, remote_only, local_only);
        let outcome = reconcile(&scenario.remote, &scenario.local, symbol_budget(scenario.d()));
        prop_assert_eq!(&outcome.remote_only, &scenario.remote_only);
        prop_assert_eq!(&outcome.local_only, &scenario.local_only);
    }

    #[test]
    fn hostile_streams_neither_panic_nor_run_away(
        local in prop::collection::vec(any::<[u8; 32]>(), 0..50),
        stream in prop::collection::vec(arbitrary_symbol(), 0..60),
    ) {
        let mut decoder = Decoder::new(local);
        for symbol in stream {
            if decoder.add_remote(symbol).is_err() {
                break;
            }
            prop_assert!(decoder.remote_only().len() + decoder.local_only().len() <= decoder.symbols_used());
        }
    }
}
