//! `hancha bench scale` at a tiny size: one node, three peer counties answered by the test peer,
//! 2,000 persons imported through `hancha registry import`, a sweep with a clerk alongside and a
//! reconciliation run. It counts its own bookkeeping on the node and at the test peer, and
//! reports every figure. No timing is asserted: the figures depend on the machine.

use assert_cmd::Command;

#[test]
fn scale_benchmark_answers_every_inquiry_exactly_once_and_reports_its_figures() {
    assert!(
        std::env::var("DATABASE_URL").is_ok(),
        "DATABASE_URL must be set (./scripts/test sets it)"
    );
    let output = Command::cargo_bin("hancha")
        .unwrap()
        .args([
            "bench",
            "scale",
            "--peers",
            "3",
            "--persons",
            "2000",
            "--inquiries",
            "600",
            "--differences",
            "40",
            "--json",
        ])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run hancha bench scale");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the benchmark failed ({}):\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().expect("a JSON line");
    let report: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");

    assert_eq!(report["answered_exactly_once"], true, "{report}");
    assert_eq!(report["peers"], 3, "{report}");
    assert_eq!(report["persons"], 2000, "{report}");
    assert_eq!(report["inquiries"], 600, "{report}");
    for figure in [
        "sweep_per_s",
        "clerk_p99_ms",
        "peak_rss_mb",
        "import_per_s",
        "report_s",
        "reconcile_s",
    ] {
        let value = report[figure].as_f64().unwrap_or(-1.0);
        assert!(value > 0.0, "{figure} is {value}: {report}");
    }
    // the clerk asked while the sweep ran, and every single inquiry was answered
    assert!(report["clerk"].as_u64().unwrap() >= 1, "{report}");
    // one connection each way per peer at most, plus the node's database pool
    let peer_connections = report["peer_connections"].as_u64().unwrap();
    assert!((1..=6).contains(&peer_connections), "{report}");
    assert_eq!(
        report["connections"].as_u64().unwrap(),
        peer_connections + report["database_connections"].as_u64().unwrap(),
        "{report}"
    );
    // the reconciliation found exactly the injected differences
    assert_eq!(report["reconcile_found"], 40, "{report}");
    // the import went through the CLI, whose output the benchmark passes on
    assert!(stderr.contains("import: hancha registry import"), "{stderr}");
}
