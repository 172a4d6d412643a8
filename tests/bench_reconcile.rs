//! `hancha bench reconcile` at small sizes: it reconciles two in-memory sets over real mutual TLS,
//! checks that every method found exactly the injected difference, and reports its figures. The
//! byte counts are asserted (they follow from the protocol); no timing is (it depends on the
//! machine). Needs no database, except `--nodes`, which runs two nodes on the PostgreSQL at
//! `DATABASE_URL`.

use assert_cmd::Command;
use serde_json::Value;

/// Runs the in-memory benchmark with `args` and `--json --runs 1`; returns the last line, parsed.
fn bench(args: &[&str]) -> Value {
    bench_json(&[&["--runs", "1"], args].concat())
}

/// Runs `hancha bench reconcile --json` with `args`; returns the last line, parsed.
fn bench_json(args: &[&str]) -> Value {
    let output = Command::cargo_bin("hancha")
        .unwrap()
        .args(["bench", "reconcile", "--json"])
        .args(args)
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run hancha bench reconcile");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the benchmark failed ({}):\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().expect("a JSON line");
    serde_json::from_str(last).expect("the last line is JSON")
}

fn number(report: &Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is a number: {report}"))
}

#[test]
fn a_small_difference_costs_under_two_and_a_half_symbols_each_and_a_fraction_of_the_baselines() {
    let report = bench(&["--n", "20000", "--d", "100"]);

    assert_eq!(report["n"], 20_000);
    assert_eq!(report["d"], 100);
    assert_eq!(report["fell_back"], false, "{report}");
    for field in [
        "symbols",
        "symbols_per_difference",
        "bytes",
        "seconds",
        "naive_bytes",
        "naive_seconds",
        "merkle_bytes",
        "merkle_round_trips",
        "peak_rss_mb",
    ] {
        assert!(number(&report, field) > 0.0, "{field}: {report}");
    }
    let per_difference = number(&report, "symbols_per_difference");
    assert!(
        (1.0..=2.5).contains(&per_difference),
        "symbols per difference {per_difference}: {report}"
    );
    let bytes = number(&report, "bytes");
    let naive = number(&report, "naive_bytes");
    assert!(naive >= 32.0 * 20_000.0, "naive sends every element: {report}");
    assert!(bytes < naive / 10.0, "IBLT {bytes} vs naive {naive}: {report}");
    assert!(
        number(&report, "merkle_bytes") > bytes,
        "Merkle costs more than IBLT: {report}"
    );
}

#[test]
fn identical_sets_settle_in_the_first_chunk_of_symbols() {
    let report = bench(&["--n", "20000", "--d", "0"]);

    assert_eq!(report["fell_back"], false, "{report}");
    assert!(
        report["symbols_per_difference"].is_null(),
        "no differences to divide by: {report}"
    );
    assert!(number(&report, "symbols") <= 16.0, "{report}");
    assert!(number(&report, "bytes") < 1_500.0, "{report}");
}

#[test]
fn a_difference_as_large_as_the_sets_falls_back_to_sending_every_element() {
    let report = bench(&["--n", "20000", "--d", "20000"]);

    assert_eq!(report["fell_back"], true, "{report}");
    let bytes = number(&report, "bytes");
    let naive = number(&report, "naive_bytes");
    assert!(
        bytes <= 2.2 * naive,
        "falling back costs at most about twice the naive exchange: {bytes} vs {naive}: {report}"
    );
}

#[test]
fn as_many_differences_as_elements_in_small_sets_stays_near_the_naive_cost() {
    let report = bench(&["--n", "1000", "--d", "1000"]);

    let bytes = number(&report, "bytes");
    let naive = number(&report, "naive_bytes");
    assert!(bytes <= 2.2 * naive, "{bytes} vs {naive}: {report}");
}

#[test]
fn refuses_more_differences_than_two_sets_can_hold() {
    Command::cargo_bin("hancha")
        .unwrap()
        .args(["bench", "reconcile", "--n", "10", "--d", "21"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--d 21 does not fit in sets of 10"));
}

#[test]
fn two_nodes_find_the_injected_difference_twice_and_the_second_run_recomputes_only_rewritten_digests() {
    assert!(
        std::env::var("DATABASE_URL").is_ok(),
        "DATABASE_URL must be set (./scripts/test sets it)"
    );
    let report = bench_json(&["--nodes", "--n", "2000", "--d", "20"]);

    assert_eq!(report["n"], 2_000);
    assert_eq!(report["d"], 20);
    assert_eq!(report["differences"], 20, "{report}");
    // 20 elements: 5 persons known differently (twice each), 5 only at each side.
    assert_eq!(
        (
            &report["changed"],
            &report["origin_only"],
            &report["destination_only"]
        ),
        (&Value::from(5), &Value::from(5), &Value::from(5)),
        "{report}"
    );
    for run in ["first_run", "second_run"] {
        let people = &report[run]["people"];
        assert_eq!(people["differences"], 20, "{run}: {report}");
        assert_eq!(people["peer_differences"], 20, "{run}: {report}");
        assert_eq!(
            (&people["local_size"], &people["peer_size"]),
            (&Value::from(2_000), &Value::from(2_000)),
            "{run}: {report}"
        );
        assert_eq!(people["fell_back"], false, "{run}: {report}");
        assert!(number(&report[run], "seconds") > 0.0, "{run}: {report}");
    }
    // The first run computes every digest on both sides; the second only the rewritten persons'.
    assert_eq!(report["first_run"]["digests_to_compute"], 2_000, "{report}");
    assert_eq!(report["first_run"]["peer_digests_to_compute"], 2_000, "{report}");
    assert_eq!(report["second_run"]["digests_to_compute"], 100, "{report}");
    assert_eq!(report["second_run"]["peer_digests_to_compute"], 100, "{report}");
    // The caller is the origin of the 10 persons on its side of the difference: it asks about each.
    assert_eq!(report["first_run"]["people"]["inquiries_opened"], 10, "{report}");
    assert!(
        number(&report["second_run"]["people"], "inquiries_opened") <= number(&report, "inquiry_cap"),
        "{report}"
    );
    for field in [
        "import_seconds",
        "symbols",
        "bytes",
        "peak_rss_mb",
        "responder_peak_rss_mb",
        "read_seconds",
        "key_seconds",
    ] {
        assert!(number(&report, field) > 0.0, "{field}: {report}");
    }
}

#[test]
fn nodes_mode_takes_no_runs_or_seed() {
    Command::cargo_bin("hancha")
        .unwrap()
        .args(["bench", "reconcile", "--nodes", "--runs", "2"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot be used with"));
}
