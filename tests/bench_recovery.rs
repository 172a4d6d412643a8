//! `hancha bench recovery` at a tiny size: it runs end to end against the PostgreSQL at
//! `DATABASE_URL` (a peer killed and started again) and reports every figure. No timing is
//! asserted: the figures depend on the machine.

use assert_cmd::Command;

#[test]
fn recovery_benchmark_drains_the_backlog_after_an_outage_and_reports_its_figures() {
    assert!(
        std::env::var("DATABASE_URL").is_ok(),
        "DATABASE_URL must be set (./scripts/test sets it)"
    );
    let output = Command::cargo_bin("hancha")
        .unwrap()
        .args([
            "bench",
            "recovery",
            "--inquiries",
            "300",
            "--outage",
            "3",
            "--json",
        ])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run hancha bench recovery");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the benchmark failed ({}):\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().expect("a JSON line");
    let report: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(report["inquiries"], 300);
    for field in [
        "normal_s",
        "normal_per_s",
        "first_delivery_s",
        "drain_s",
        "drain_per_s",
        "drain_ratio",
    ] {
        let value = report[field].as_f64().unwrap_or(-1.0);
        assert!(value > 0.0, "{field} = {value}: {report}");
    }
    assert!(
        report["failed_probes"].as_u64().is_some_and(|n| n >= 1),
        "the outage was noticed by the probes: {report}"
    );
}
