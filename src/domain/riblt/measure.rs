//! A timed reconciliation of random sets, for benchmarks and the performance target
//! (10⁶ elements per side, 10³ differences, ≤ 2 symbols per difference, under 5 s).

use std::collections::HashSet;
use std::time::Instant;

use rand::RngCore;

use super::{Decoder, Element, Encoder};

/// The outcome of [`measure`].
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Elements in the remote set.
    pub n: usize,
    /// Elements in exactly one of the two sets.
    pub d: usize,
    /// Coded symbols the remote side sent before the local side had decoded.
    pub symbols: usize,
    /// Wall time of building both ends, encoding both streams and decoding.
    pub seconds: f64,
    /// Whether exactly the true difference was recovered.
    pub correct: bool,
}

impl Measurement {
    /// Coded symbols per differing element (the paper's "overhead"); 0 for d = 0.
    pub fn symbols_per_difference(&self) -> f64 {
        if self.d == 0 {
            0.0
        } else {
            self.symbols as f64 / self.d as f64
        }
    }
}

/// Reconciles two random sets, timed: the remote set holds `n` elements, `d` elements are in
/// exactly one set (⌈d/2⌉ remote-only, ⌊d/2⌋ local-only; needs `d ≤ 2n`), and the rest are
/// shared. The sets are generated before the clock starts; building the encoder and the
/// decoder (single-threaded, one after the other) is inside the measured time.
pub fn measure(n: usize, d: usize) -> Measurement {
    let remote_only_count = d.div_ceil(2);
    let local_only_count = d / 2;
    assert!(remote_only_count <= n, "d = {d} does not fit in n = {n}");
    let mut rng = rand::rng();
    let mut random_element = || {
        let mut element = [0u8; 32];
        rng.fill_bytes(&mut element);
        element
    };
    let shared: Vec<Element> = (0..n - remote_only_count).map(|_| random_element()).collect();
    let remote_only: Vec<Element> = (0..remote_only_count).map(|_| random_element()).collect();
    let local_only: Vec<Element> = (0..local_only_count).map(|_| random_element()).collect();
    let remote_set: Vec<Element> = shared.iter().chain(&remote_only).copied().collect();
    let local_set: Vec<Element> = shared.into_iter().chain(local_only.iter().copied()).collect();

    let started = Instant::now();
    let mut encoder = Encoder::new(remote_set);
    let mut decoder = Decoder::new(local_set);
    let mut consistent = true;
    while !decoder.is_decoded() {
        if decoder.add_remote(encoder.produce_next()).is_err() {
            consistent = false;
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let as_set = |elements: &[Element]| elements.iter().copied().collect::<HashSet<_>>();
    let correct = consistent
        && as_set(decoder.remote_only()) == as_set(&remote_only)
        && as_set(decoder.local_only()) == as_set(&local_only)
        && decoder.remote_only().len() == remote_only.len()
        && decoder.local_only().len() == local_only.len();
    Measurement {
        n,
        d,
        symbols: decoder.symbols_used(),
        seconds,
        correct,
    }
}
