use std::collections::BTreeSet;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;

/// Two sets built from shared and one-sided parts, shuffled, with the differences expected.
struct Scenario {
    initiator: Vec<Element>,
    responder: Vec<Element>,
    initiator_only: Vec<Element>,
    responder_only: Vec<Element>,
}

impl Scenario {
    fn random(shared: usize, initiator_only: usize, responder_only: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut draw = |count: usize| -> Vec<Element> {
            let mut elements: Vec<Element> = (0..count).map(|_| rng.random()).collect();
            elements.sort_unstable();
            elements
        };
        let (shared, initiator_only, responder_only) =
            (draw(shared), draw(initiator_only), draw(responder_only));
        let mut initiator = [shared.as_slice(), &initiator_only].concat();
        let mut responder = [shared.as_slice(), &responder_only].concat();
        initiator.shuffle(&mut rng);
        responder.shuffle(&mut rng);
        Scenario {
            initiator,
            responder,
            initiator_only,
            responder_only,
        }
    }

    fn reconcile(&self) -> MerkleOutcome {
        reconcile(&self.initiator, &self.responder)
    }

    fn assert_recovered(&self, outcome: &MerkleOutcome) {
        assert_eq!(outcome.initiator_only, self.initiator_only);
        assert_eq!(outcome.responder_only, self.responder_only);
    }
}

/// Whole bytes in both directions add up, and round trips follow from messages.
fn assert_consistent(outcome: &MerkleOutcome) {
    assert_eq!(outcome.bytes, outcome.initiator_bytes + outcome.responder_bytes);
    assert_eq!(outcome.round_trips, outcome.messages.div_ceil(2));
}

// === what is found ===

#[test]
fn identical_sets_cost_one_root_exchange() {
    for n in [0, 1, 10_000] {
        let scenario = Scenario::random(n, 0, 0, 1);
        let outcome = scenario.reconcile();
        scenario.assert_recovered(&outcome);
        // Size and root one way, "equal" the other.
        assert_eq!(outcome.initiator_bytes, 5 + 8 + 32, "n = {n}");
        assert_eq!(outcome.responder_bytes, 5, "n = {n}");
        assert_eq!((outcome.messages, outcome.round_trips), (2, 1), "n = {n}");
        assert_consistent(&outcome);
    }
}

#[test]
fn recovers_exactly_the_symmetric_difference() {
    for (d, seed) in [(1, 2), (2, 3), (10, 4), (100, 5), (1_000, 6)] {
        let scenario = Scenario::random(20_000, d / 2, d - d / 2, seed);
        let outcome = scenario.reconcile();
        scenario.assert_recovered(&outcome);
        assert_consistent(&outcome);
    }
}

#[test]
fn recovers_sets_with_nothing_in_common() {
    let scenario = Scenario::random(0, 5_000, 4_000, 7);
    let outcome = scenario.reconcile();
    scenario.assert_recovered(&outcome);
    assert_consistent(&outcome);
}

#[test]
fn recovers_when_one_side_is_empty() {
    for (initiator_only, responder_only) in [(0, 3_000), (3_000, 0)] {
        let scenario = Scenario::random(0, initiator_only, responder_only, 8);
        scenario.assert_recovered(&scenario.reconcile());
    }
}

#[test]
fn recovers_across_very_unequal_sizes_where_the_depths_differ() {
    // The initiator's size alone implies depth 1; the larger set's, depth 3.
    assert_eq!((depth_for(100), depth_for(20_100)), (1, 3));
    let scenario = Scenario::random(100, 0, 20_000, 9);
    let outcome = scenario.reconcile();
    scenario.assert_recovered(&outcome);
    let scenario = Scenario::random(20_000, 10, 0, 10);
    scenario.assert_recovered(&scenario.reconcile());
}

#[test]
fn elements_sharing_a_long_prefix_land_in_one_bucket_and_are_still_found() {
    let element = |i: u32| {
        let mut element = [0xAB; 32];
        element[28..].copy_from_slice(&i.to_be_bytes());
        element
    };
    let initiator: Vec<Element> = (0..5_000).map(element).collect();
    let responder: Vec<Element> = (3..5_002).map(element).collect();
    let outcome = reconcile(&initiator, &responder);
    assert_eq!(outcome.initiator_only, [0, 1, 2].map(element));
    assert_eq!(outcome.responder_only, [5_000, 5_001].map(element));
}

#[test]
fn repeated_elements_count_once() {
    let scenario = Scenario::random(1_000, 3, 2, 11);
    let doubled = [scenario.initiator.as_slice(), &scenario.initiator].concat();
    let outcome = reconcile(&doubled, &scenario.responder);
    scenario.assert_recovered(&outcome);
}

// === what it costs ===

#[test]
fn differing_sets_take_one_message_per_level_plus_three() {
    // 10,000 elements: depth 3 (8·16³ = 32,768 ≥ 10,000 > 8·16²).
    assert_eq!(depth_for(10_000), 3);
    let outcome = Scenario::random(10_000, 1, 0, 12).reconcile();
    assert_eq!((outcome.messages, outcome.round_trips), (3 + 3, 3));
}

#[test]
fn a_single_difference_costs_one_path_of_child_hashes() {
    // Depth 3, one element only the responder holds.
    let outcome = Scenario::random(10_000, 0, 1, 13).reconcile();
    let full_level = 4 + 2 + 16 * 32;
    let opening = (5 + 8 + 32) + (5 + 8 + full_level);
    let level_2 = 5 + full_level;
    // The initiator's leaf level: only its non-empty buckets among the 16 (k of them).
    let leaf_level = |k: u64| 5 + 4 + 2 + 32 * k;
    // The responder's differing bucket, b elements, then the empty list of what it lacks.
    let bucket = |b: u64| 5 + 4 + 4 + 32 * b;
    let nothing_lacking = 5 + 4;
    let fixed = opening + level_2 + nothing_lacking;
    let (fewest, most) = (
        fixed + leaf_level(1) + bucket(1),
        fixed + leaf_level(16) + bucket(12),
    );
    assert!(
        (fewest..=most).contains(&outcome.bytes),
        "{} not in {fewest}..={most}",
        outcome.bytes
    );
    assert_eq!(outcome.responder_only.len(), 1);
}

#[test]
fn cost_grows_with_differences_times_depth_not_with_set_size() {
    let n = 100_000;
    let naive = 32 * n as u64;
    let outcome = Scenario::random(n, 5, 5, 14).reconcile();
    // About 10 paths of 4 levels of ≤ 16 hashes: ~20 kB, against 3.2 MB for sending every hash.
    assert!(outcome.bytes < naive / 100, "d = 10 cost {} bytes", outcome.bytes);
    assert!(
        outcome.bytes < 10 * 4 * 600,
        "d = 10 cost {} bytes",
        outcome.bytes
    );
    // A tenth of the set with the same differences is one level less, not a tenth of the bytes.
    let smaller = Scenario::random(n / 10, 5, 5, 15).reconcile();
    assert!(
        outcome.bytes < 2 * smaller.bytes,
        "{} vs {}",
        outcome.bytes,
        smaller.bytes
    );
    // With nothing in common it costs more than both sides sending everything, as it must.
    let disjoint = Scenario::random(0, n / 2, n / 2, 16).reconcile();
    assert!(disjoint.bytes > naive, "{} ≤ {naive}", disjoint.bytes);
}

proptest! {
    #[test]
    fn finds_the_symmetric_difference_of_any_two_small_sets(
        membership in proptest::collection::vec(0u8..3, 0..300),
    ) {
        // Element i is the initiator's (0), the responder's (1) or both sides' (2).
        let element = |i: usize| -> Element { Sha256::digest((i as u64).to_le_bytes()).into() };
        let side = |wanted: u8| -> BTreeSet<Element> {
            membership.iter().enumerate()
                .filter(|(_, m)| **m == wanted || **m == 2)
                .map(|(i, _)| element(i))
                .collect()
        };
        let (initiator, responder) = (side(0), side(1));
        let initiator_vec: Vec<Element> = initiator.iter().copied().collect();
        let responder_vec: Vec<Element> = responder.iter().rev().copied().collect();
        let outcome = reconcile(&initiator_vec, &responder_vec);
        let expected_initiator: Vec<Element> = initiator.difference(&responder).copied().collect();
        let expected_responder: Vec<Element> = responder.difference(&initiator).copied().collect();
        prop_assert_eq!(outcome.initiator_only, expected_initiator);
        prop_assert_eq!(outcome.responder_only, expected_responder);
    }
}
