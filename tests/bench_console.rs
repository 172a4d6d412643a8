//! `hancha bench console` at a tiny size: it fills the work queue, finds every waiting inquiry on
//! the console's first page, and reports its figures. No timing is asserted: the figures depend
//! on the machine.

use assert_cmd::Command;

#[test]
fn console_benchmark_renders_the_work_queue_and_reports_its_figures() {
    assert!(
        std::env::var("DATABASE_URL").is_ok(),
        "DATABASE_URL must be set (./scripts/test sets it)"
    );
    let output = Command::cargo_bin("hancha")
        .unwrap()
        .args(["bench", "console", "--pending", "120", "--runs", "3", "--json"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run hancha bench console");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the benchmark failed ({}):\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().expect("a JSON line");
    let report: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(report["pending"], 120);
    assert_eq!(
        report["rows"], 120,
        "every waiting inquiry on the first page: {report}"
    );
    assert_eq!(report["runs"], 3);
    for field in ["page_ms", "page_p95_ms", "api_ms", "api_p95_ms", "page_api_ratio"] {
        let value = report[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} missing: {report}"));
        assert!(value > 0.0, "{field} = {value}");
    }
    assert!(report["page_bytes"].as_u64().unwrap() > 10_000, "{report}");
}
