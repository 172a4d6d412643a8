//! Monitoring as an operator sees it: two real nodes exchange inquiries, each serves `/metrics`
//! on its own listener, the scrape passes `promtool check metrics`, and the figures an operator
//! watches moved. The ready-made alert rules pass `promtool check rules`, and the Grafana
//! dashboard names only metrics a node exports.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use hancha::domain::division::CountyCode;
use hancha::domain::message::Subject;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::InquiryDraft;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INQUIRIES: u32 = 3;

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).expect("a county in the list")
}

async fn scrape(cluster: &Cluster, county: &str) -> String {
    let (status, body) = http_get(&cluster.metrics_url(county)).await;
    assert!(status.contains("200"), "scrape of {county}: {status}\n{body}");
    body
}

/// The value of the sample named exactly `series` (name and labels as exposed), summed over
/// none: the exposition has each series once.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "promtool is missing: install Debian's `prometheus` package (./scripts/test does so as root)"
    );
    Command::new("promtool")
}

fn promtool_check_metrics(text: &str) {
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("scrape written to promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The metric names a scrape exposes (histograms by their base name too).
fn exposed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .flat_map(|name| {
            [
                name.to_string(),
                format!("{name}_bucket"),
                format!("{name}_count"),
                format!("{name}_sum"),
            ]
        })
        .collect()
}

/// Every `hancha_…` name in `text`.
fn hancha_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("hancha_") {
        let start = at + found;
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .map_or(text.len(), |length| start + length);
        let preceded_by_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !preceded_by_word {
            names.insert(text[start..end].trim_end_matches('_').to_string());
        }
        at = end;
    }
    names
}

/// Two nodes that exchanged a few inquiries, reconciled once, and saw one plaintext client on
/// 新化县's peer port.
async fn busy_pair() -> Cluster {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let asker = cluster.node(DINGCHENG);
    for n in 0..INQUIRIES {
        let person = synthetic_id(XINHUA, 100 + n);
        cluster
            .node(XINHUA)
            .store()
            .upsert_persons(&[outflow_person(person.clone(), XINHUA, DINGCHENG)])
            .await
            .expect("registry written");
        let draft = InquiryDraft {
            kind: InquiryKind::CertificateVerification,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: person,
                certificate_number: None,
            },
            message_id: None,
        };
        asker
            .ask(county(XINHUA), draft, Duration::from_secs(2))
            .await
            .expect("asked");
    }
    asker
        .reconcile_with(county(XINHUA), |_| {})
        .await
        .expect("reconciled");
    // A peer's inquiry under an agreement 新化县 does not hold: refused and counted.
    let stranger = hancha::domain::message::Inquiry {
        message_id: uuid::Uuid::now_v7(),
        agreement: hancha::domain::message::AgreementRef {
            id: format!("{DINGCHENG}-{XINHUA}"),
            hash: "0".repeat(64),
        },
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Normal,
        subject: Subject {
            resident_id: synthetic_id(XINHUA, 999),
            certificate_number: None,
        },
    };
    let refused = cluster
        .client(DINGCHENG, XINHUA)
        .await
        .submit_inquiry(hancha::proto::exchange::SubmitInquiryRequest {
            inquiry: Some(hancha::exchange::convert::inquiry_to_wire(&stranger)),
            wait_ms: 0,
        })
        .await;
    assert!(refused.is_err(), "an unknown agreement is refused");
    let mut plaintext = tokio::net::TcpStream::connect(cluster.address(XINHUA))
        .await
        .expect("peer port reachable");
    plaintext
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("written");
    let mut ignored = Vec::new();
    let _ = plaintext.read_to_end(&mut ignored).await;
    cluster
}

#[tokio::test]
async fn a_scrape_passes_promtool_and_shows_what_the_nodes_did() {
    let cluster = busy_pair().await;
    let asker = scrape(&cluster, DINGCHENG).await;
    let mut responder = scrape(&cluster, XINHUA).await;
    for _ in 0..50 {
        if sample(
            &responder,
            "hancha_tls_handshakes_refused_total{listener=\"peer\",reason=\"not_tls\"}",
        )
        .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        responder = scrape(&cluster, XINHUA).await;
    }
    promtool_check_metrics(&asker);
    promtool_check_metrics(&responder);

    let at_least = |text: &str, series: &str, least: f64| {
        let value = sample(text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"));
        assert!(value >= least, "{series} = {value}, expected at least {least}");
    };
    let n = f64::from(INQUIRIES);
    at_least(
        &asker,
        &format!("hancha_deliveries_total{{outcome=\"delivered\",peer=\"{XINHUA}\"}}"),
        n,
    );
    at_least(&asker, "hancha_clerk_ask_seconds_count", n);
    at_least(&asker, "hancha_peer_round_trip_seconds_count", n);
    at_least(
        &asker,
        &format!("hancha_reconcile_runs_total{{outcome=\"completed\",peer=\"{XINHUA}\"}}"),
        2.0,
    );
    at_least(&responder, "hancha_inbound_accepted_total{kind=\"inquiry\"}", n);
    at_least(&responder, "hancha_auto_answers_total", n);
    let refused: f64 = responder
        .lines()
        .filter(|line| line.starts_with("hancha_inbound_refused_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused >= 1.0, "the refused inquiry is counted:\n{responder}");
    at_least(
        &responder,
        "hancha_tls_handshakes_refused_total{listener=\"peer\",reason=\"not_tls\"}",
        1.0,
    );
    for text in [&asker, &responder] {
        at_least(
            text,
            &format!("hancha_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
            1.0,
        );
        at_least(text, "hancha_ready", 1.0);
        at_least(text, "hancha_database_pool_max_connections", 1.0);
    }
    // Every inquiry was answered inline and acknowledged: nothing open, nothing overdue.
    assert_eq!(
        sample(&asker, "hancha_inquiries_overdue{direction=\"inbound\"}"),
        Some(0.0)
    );
    let last_reconciled = sample(
        &responder,
        &format!("hancha_reconcile_last_completed_timestamp_seconds{{peer=\"{DINGCHENG}\"}}"),
    )
    .expect("the responder knows when the pair last reconciled");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - last_reconciled).abs() < 600.0,
        "last reconciled at {last_reconciled}, now {now}"
    );
    let expiry = sample(
        &asker,
        &format!("hancha_certificate_expiry_timestamp_seconds{{certificate=\"own\",county=\"{DINGCHENG}\"}}"),
    )
    .expect("own certificate expiry exposed");
    assert!(
        expiry > now && expiry < now + 20.0 * 365.0 * 86400.0,
        "notAfter {expiry} is not a plausible future time (now {now})"
    );
    // the peer's, as it presented it calling for the status exchange
    let peer_expiry = sample(
        &asker,
        &format!("hancha_certificate_expiry_timestamp_seconds{{certificate=\"peer\",county=\"{XINHUA}\"}}"),
    )
    .expect("the peer's certificate expiry exposed");
    assert!(peer_expiry > now, "{peer_expiry}");
}

#[test]
fn the_alert_rules_pass_promtool() {
    let output = promtool()
        .args(["check", "rules"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/prometheus/hancha-alerts.yml"
        ))
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The rules' own unit tests with series data: an alert fires when it should, and not before
/// (`deploy/prometheus/hancha-alerts.test.yml`).
#[test]
fn the_alert_rules_fire_when_they_should() {
    let output = promtool()
        .args(["test", "rules"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/prometheus/hancha-alerts.test.yml"
        ))
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_name_only_metrics_a_node_exports() {
    let cluster = busy_pair().await;
    let mut exported = exposed_names(&scrape(&cluster, DINGCHENG).await);
    exported.extend(exposed_names(&scrape(&cluster, XINHUA).await));

    let dashboard_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/hancha-dashboard.json"
    ))
    .expect("dashboard readable");
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).expect("dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "only {} panels", panels.len());
    let mut expressions = String::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("each panel has targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            expressions.push_str(target["expr"].as_str().expect("a PromQL expression"));
            expressions.push('\n');
        }
    }
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/hancha-alerts.yml"
    ))
    .expect("rules readable");
    let rule_expressions: String = rules
        .split("expr:")
        .skip(1)
        .map(|rest| rest.split("for:").next().unwrap_or_default())
        .collect();
    for (file, text) in [("dashboard", &expressions), ("alert rules", &rule_expressions)] {
        let named = hancha_names(text);
        assert!(named.len() >= 5, "{file} names only {named:?}");
        let unknown: Vec<_> = named.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics no node exports: {unknown:?}"
        );
    }
    let shown = hancha_names(&expressions);
    for needed in [
        "hancha_outbox_messages",
        "hancha_deliveries_total",
        "hancha_inquiries_overdue",
        "hancha_certificate_expiry_timestamp_seconds",
        "hancha_reconcile_last_completed_timestamp_seconds",
        "hancha_ready",
    ] {
        assert!(shown.contains(needed), "the dashboard does not show {needed}");
    }
}
