//! `hancha bench exchange` at a tiny size: it runs end to end against the PostgreSQL at
//! `DATABASE_URL`, counts its own bookkeeping on both nodes, and reports every figure. No timing
//! is asserted: the figures depend on the machine.

use assert_cmd::Command;

#[test]
fn exchange_benchmark_answers_every_inquiry_exactly_once_and_reports_its_figures() {
    assert!(
        std::env::var("DATABASE_URL").is_ok(),
        "DATABASE_URL must be set (./scripts/test sets it)"
    );
    let output = Command::cargo_bin("hancha")
        .unwrap()
        .args([
            "bench",
            "exchange",
            "--inquiries",
            "200",
            "--sync",
            "50",
            "--json",
        ])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run hancha bench exchange");
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
    assert_eq!(report["inquiries"], 200);
    assert_eq!(report["sync"], 50);
    assert_eq!(
        report["sync_inline"], 50,
        "every single inquiry answered inline: {report}"
    );
    // 200 sweep inquiries, half about registered persons, and 50 single ones about registered
    // persons.
    assert_eq!(report["found"], 150);
    assert_eq!(report["not_found"], 100);
    for field in [
        "inquiries_per_s",
        "gateway_s",
        "postgres_only_s",
        "ratio",
        "sweep_floor_s",
        "sweep_floor_ratio",
        "sync_p50_ms",
        "sync_p99_ms",
        "sync_max_ms",
        "sync_floor_ms",
        "sync_p50_ratio",
        "sync_p99_ratio",
        "transport_s",
        "transport_p50_ms",
        "peak_rss_mb",
        "peak_rss_asker_mb",
        "peak_rss_responder_mb",
    ] {
        let value = report[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} is a number: {report}"));
        assert!(value > 0.0, "{field} = {value}");
    }
    // CPU is read from /proc on Linux, where the suite runs: the sweep's whole-machine figure
    // includes the two nodes' own, and the floor's is there even when a tiny floor rounds to 0
    let machine = report["sweep_cpu_s"].as_f64().expect("sweep_cpu_s is a number");
    let nodes = report["sweep_nodes_cpu_s"]
        .as_f64()
        .expect("sweep_nodes_cpu_s is a number");
    assert!(nodes > 0.0, "the nodes worked during the sweep: {report}");
    // both counters tick 100 times a second, read a moment apart
    assert!(
        machine + 0.05 >= nodes,
        "the machine's CPU includes the nodes': {report}"
    );
    assert!(
        report["floor_cpu_s"].as_f64().is_some_and(|cpu| cpu >= 0.0),
        "{report}"
    );
    // cores kept busy, and CPU ratios, only for phases of a second or more (the tiny run's
    // phases are shorter on any machine but a very slow one)
    let cpus = report["machine_cpus"].as_f64().expect("machine_cpus is a number");
    let gateway_s = report["gateway_s"].as_f64().expect("gateway_s");
    let floor_s = report["sweep_floor_s"].as_f64().expect("sweep_floor_s");
    for (field, phases_s) in [
        ("sweep_busy_cores", gateway_s),
        ("floor_busy_cores", floor_s),
        ("sweep_floor_cpu_ratio", gateway_s.min(floor_s)),
        ("sweep_floor_postgres_cpu_ratio", gateway_s.min(floor_s)),
    ] {
        let value = report
            .get(field)
            .unwrap_or_else(|| panic!("{field} reported: {report}"));
        if phases_s < 1.0 {
            assert!(value.is_null(), "{field} for a phase of {phases_s} s: {report}");
        }
    }
    if let Some(busy) = report["sweep_busy_cores"].as_f64() {
        assert!(
            busy > 0.0 && busy <= cpus + 0.5,
            "{busy} of {cpus} CPUs busy over {gateway_s} s: {report}"
        );
    }
    // PostgreSQL's own share, read from its server processes: over a Unix socket (the suite's
    // own cluster) the server is on this machine and must be measured
    let over_a_socket = std::env::var("DATABASE_URL").is_ok_and(|url| url.contains("host=/"));
    let postgres = report["sweep_postgres_cpu_s"].as_f64();
    if over_a_socket {
        assert!(postgres.is_some(), "PostgreSQL's CPU measured: {report}");
        assert!(
            report["floor_postgres_cpu_s"].is_number(),
            "the floor's PostgreSQL CPU measured: {report}"
        );
    }
    if let Some(postgres) = postgres {
        // (a tiny sweep's share is a few ticks of /proc's counters, possibly none;
        // tests/postgres_cpu.rs checks the reading itself on work that lasts)
        assert!(
            postgres >= 0.0 && machine + 0.1 >= nodes + postgres,
            "the machine's CPU includes the nodes' and PostgreSQL's: {report}"
        );
    }
    assert!(
        stderr.contains("bench: sweep"),
        "progress goes to stderr: {stderr}"
    );
}

#[test]
fn exchange_benchmark_refuses_a_batch_larger_than_a_peer_accepts() {
    Command::cargo_bin("hancha")
        .unwrap()
        .args(["bench", "exchange", "--batch", "5000"])
        .assert()
        .code(2);
}
