//! Which coded symbols an element is added to, and the 64-bit checksum that tells a pure coded
//! symbol from a mixed one. Both sides of a reconciliation must compute exactly the same values,
//! so everything here is a pure function of the element's bytes.
//!
//! # The mapping
//!
//! The paper maps a source symbol to coded symbol `i` with probability `ρ(i) = 1 / (1 + α·i)`,
//! `α = 1/2`, i.e. `ρ(i) = 2 / (i + 2)`, independently for every `i`. Index 0 gets every element
//! (`ρ(0) = 1`), which is what makes coded symbol 0 the "everything recovered" witness.
//!
//! Deciding index by index would cost `O(n)` per coded symbol. Instead each element walks from
//! one index it maps to straight to the next one. Given that it maps to `i`, the chance that it
//! maps to none of `i+1 ..= j` telescopes:
//!
//! ```text
//! P(next > j | current = i) = ∏_{k=i+1}^{j} (1 − 2/(k+2)) = ∏ k/(k+2) = (i+1)(i+2) / ((j+1)(j+2))
//! ```
//!
//! Inverse-transform sampling with `u` uniform in `(0, 1]`: the next index is the smallest `j > i`
//! with `(i+1)(i+2) / ((j+1)(j+2)) ≤ u`, i.e. `(j+1)(j+2) = (j+1.5)² − 0.25 ≥ (i+1)(i+2)/u`:
//!
//! ```text
//! next = ⌈ √((i+1)(i+2)/u + 0.25) − 1.5 ⌉        (and at least i + 1)
//! ```
//!
//! This is the exact form of the paper's `⌈(i + 1.5)/√u − 1.5⌉` (which replaces `(i+1)(i+2)` by
//! `(i+1.5)²`); with it the marginal probability of mapping to `i` is exactly `2/(i+2)`.
//!
//! `u` comes from a counter-mode generator keyed by the element's checksum and counted by the
//! current index, so the walk needs no stored generator state: `(checksum, current index)` is
//! the whole iterator. The arithmetic uses only IEEE-754 operations that are correctly rounded
//! (`*`, `/`, `+`, `sqrt`, `ceil`), so every platform computes the same indices.

use super::Element;

/// Seeds of the checksum mix (digits of π), so that the checksum of an all-zero element is not 0.
const CHECKSUM_KEYS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// The golden-ratio increment of SplitMix64: consecutive counters land far apart.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Separates the generator's key from the checksum it is derived from.
const MAPPING_SALT: u64 = 0x4528_21e6_38d0_1377;

/// 2⁻⁵³: turns the top 53 bits of a draw into a float in `[0, 1)`.
const UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// The 64-bit checksum of an element, summed (XOR) into every coded symbol the element maps to.
///
/// A coded symbol whose count is ±1 is *pure* (holds exactly one element) when its checksum is
/// the checksum of its sum. For that test to reject mixed symbols the function must not be
/// XOR-linear (a linear one would make every ±1 symbol look pure), so the 32 bytes are combined
/// with two 64×64→128-bit multiplications (nonlinear over GF(2)) and a SplitMix64 finaliser.
///
/// Why not SHA-256: it would dominate encoding, which evaluates this function about
/// `2·n·ln(symbols)` times (≈14 million for n = 10⁶). A cryptographic hash is not needed because
/// elements are already HMAC-SHA256 outputs under the agreement's secret: uniformly random to
/// anyone without it, so a mixed symbol passes the test with probability about 2⁻⁶⁴. A peer that
/// holds the secret could craft a false "pure" symbol, but such a peer can simply lie about its
/// set; the decoder bounds the work a lying stream can cause (see [`super::Decoder`]).
pub fn checksum(element: &Element) -> u64 {
    checksum_of_words(&element_words(element))
}

/// [`checksum`] of the element whose [`element_words`] are `words`.
#[inline]
pub(crate) fn checksum_of_words(words: &[u64; 4]) -> u64 {
    let mixed = folded_multiply(words[0] ^ CHECKSUM_KEYS[0], words[1] ^ CHECKSUM_KEYS[1])
        ^ folded_multiply(words[2] ^ CHECKSUM_KEYS[2], words[3] ^ CHECKSUM_KEYS[3]);
    splitmix_finalise(mixed)
}

/// The element as four little-endian 64-bit words.
#[inline]
pub(crate) fn element_words(element: &Element) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, bytes) in words.iter_mut().zip(element.chunks_exact(8)) {
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        *word = u64::from_le_bytes(array);
    }
    words
}

/// The index of the next coded symbol an element maps to after `current`, for the element
/// whose [`checksum`] is `key`. Strictly greater than `current` (saturating at `u64::MAX`, an
/// index no stream reaches).
#[inline]
pub fn next_index(key: u64, current: u64) -> u64 {
    let draw = splitmix_finalise(
        (key ^ MAPPING_SALT).wrapping_add(current.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)),
    );
    // In (0, 1]: never 0, so the division below is finite.
    let uniform = ((draw >> 11) as f64 + 1.0) * UNIT;
    let i = current as f64;
    let next = ((i + 1.0) * (i + 2.0) / uniform + 0.25).sqrt() - 1.5;
    // The max covers u = 1 exactly, where the formula gives `current` itself.
    ceil_to_u64(next).max(current.saturating_add(1))
}

/// The indices an element maps to, in increasing order, starting at 0.
#[derive(Debug, Clone)]
pub struct IndexSequence {
    /// The element's checksum, which keys its walk.
    key: u64,
    /// The index the sequence yields next.
    upcoming: u64,
}

impl IndexSequence {
    /// The sequence of the element whose checksum is `key`.
    pub fn new(key: u64) -> Self {
        Self { key, upcoming: 0 }
    }

    /// The index [`Iterator::next`] would return, without advancing.
    pub fn peek(&self) -> u64 {
        self.upcoming
    }
}

impl Iterator for IndexSequence {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let index = self.upcoming;
        self.upcoming = next_index(self.key, index);
        Some(index)
    }
}

/// `⌈x⌉` for `x ≥ 0`, saturating at `u64::MAX`. `f64::ceil` is a libm call on baseline x86-64
/// (no SSE4.1), which cost a few percent of encoding.
fn ceil_to_u64(x: f64) -> u64 {
    // `as` truncates toward zero and saturates; every f64 ≥ 2⁵³ is already an integer.
    let truncated = x as u64;
    if (truncated as f64) < x {
        truncated.saturating_add(1)
    } else {
        truncated
    }
}

/// The XOR of both halves of the full 128-bit product.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The output function of SplitMix64 (Steele, Lea, Flood 2014): a bijection with full avalanche.
fn splitmix_finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap deterministic stream of keys for the statistical tests.
    fn keys(count: u64) -> impl Iterator<Item = u64> {
        (0..count).map(|k| splitmix_finalise(k.wrapping_mul(GOLDEN_GAMMA)))
    }

    #[test]
    fn every_element_maps_to_index_zero_first() {
        for key in keys(1000) {
            assert_eq!(IndexSequence::new(key).next(), Some(0));
        }
    }

    #[test]
    fn indices_strictly_increase() {
        for key in keys(1000) {
            let indices: Vec<u64> = IndexSequence::new(key).take(40).collect();
            assert!(indices.windows(2).all(|pair| pair[0] < pair[1]), "{indices:?}");
        }
    }

    #[test]
    fn mapping_probability_is_two_over_i_plus_two() {
        // ρ(i) = 2/(i+2); with 200,000 elements the standard error at ρ = 2/3 is about 0.001.
        let elements = 200_000;
        let probes = [1u64, 2, 3, 10, 50, 200];
        let mut hits = [0u32; 6];
        for key in keys(elements) {
            let mut sequence = IndexSequence::new(key);
            while sequence.peek() <= 200 {
                let index = sequence.next().expect("infinite");
                if let Some(slot) = probes.iter().position(|&probe| probe == index) {
                    hits[slot] += 1;
                }
            }
        }
        for (probe, hit) in probes.iter().zip(hits) {
            let measured = f64::from(hit) / elements as f64;
            let expected = 2.0 / (*probe as f64 + 2.0);
            let tolerance = 5.0 * (expected * (1.0 - expected) / elements as f64).sqrt() + 1e-4;
            assert!(
                (measured - expected).abs() < tolerance,
                "index {probe}: measured {measured:.5}, expected {expected:.5}"
            );
        }
    }

    #[test]
    fn next_index_depends_only_on_key_and_current_index() {
        let key = checksum(&[7; 32]);
        assert_eq!(next_index(key, 12), next_index(key, 12));
        let walked: Vec<u64> = IndexSequence::new(key).take(10).collect();
        let restarted: Vec<u64> = std::iter::successors(Some(0), |&i| Some(next_index(key, i)))
            .take(10)
            .collect();
        assert_eq!(walked, restarted);
    }

    #[test]
    fn next_index_saturates_instead_of_overflowing() {
        assert_eq!(next_index(1, u64::MAX), u64::MAX);
        assert!(next_index(1, u64::MAX - 1) == u64::MAX);
    }

    #[test]
    fn ceil_matches_the_float_ceiling() {
        for x in [0.0, 0.2, 1.0, 1.5, 2.999, 1e15 + 0.5, 9e15, 1.8e19] {
            assert_eq!(ceil_to_u64(x), x.ceil() as u64, "{x}");
        }
        assert_eq!(ceil_to_u64(1e30), u64::MAX);
    }

    #[test]
    fn checksum_is_not_xor_linear() {
        let a = [0x11; 32];
        let b = [0x5a; 32];
        let mut both = a;
        for (x, y) in both.iter_mut().zip(b) {
            *x ^= y;
        }
        assert_ne!(checksum(&a) ^ checksum(&b), checksum(&both));
        assert_ne!(checksum(&[0; 32]), 0);
    }
}
