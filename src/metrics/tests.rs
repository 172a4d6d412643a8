use super::*;
use crate::domain::delivery::Outcome;
use crate::domain::division::CountyCode;
use crate::store::monitoring::DatabaseFigures;

fn peer() -> CountyCode {
    CountyCode::parse("431322").expect("a county in the list")
}

#[test]
fn a_fresh_registry_exposes_build_info_and_the_peer_series_at_zero() {
    let metrics = Metrics::new();
    metrics.register_peer(peer());
    let text = metrics.render();
    assert!(text.contains(&format!(
        "hancha_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(text.contains("hancha_deliveries_total{outcome=\"delivered\",peer=\"431322\"} 0"));
    assert!(text.contains("hancha_ready 0"));
}

#[test]
fn refusals_are_counted_by_the_code_the_peer_gave_and_failed_calls_are_not_refusals() {
    let metrics = Metrics::new();
    let outcomes = [
        Outcome::Final("PERMISSION_DENIED: no agreement allows it".into()),
        Outcome::Retry("RESOURCE_EXHAUSTED: over the daily cap".into()),
        Outcome::Retry("connection reset".into()),
        Outcome::PeerUnreachable("connection refused".into()),
        Outcome::Delivered {
            received_at: None,
            due_at: None,
        },
    ];
    metrics.deliveries(peer(), &outcomes);
    let text = metrics.render();
    assert!(text.contains("hancha_peer_refusals_total{code=\"PERMISSION_DENIED\",peer=\"431322\"} 1"));
    assert!(text.contains("hancha_peer_refusals_total{code=\"RESOURCE_EXHAUSTED\",peer=\"431322\"} 1"));
    assert!(!text.contains("code=\"connection"));
    assert!(text.contains("hancha_delivery_retries_total{peer=\"431322\"} 3"));
    assert!(text.contains("hancha_deliveries_total{outcome=\"refused\",peer=\"431322\"} 1"));
}

#[test]
fn handshake_refusals_name_a_bounded_reason() {
    let reason = |text: &str| handshake_refusal_reason(&io_error(text));
    assert_eq!(reason("invalid peer certificate: Expired"), "certificate_expired");
    assert_eq!(reason("invalid peer certificate: UnknownIssuer"), "unknown_ca");
    assert_eq!(reason("peer sent no certificates"), "no_certificate");
    assert_eq!(
        reason("received corrupt message of type InvalidContentType"),
        "not_tls"
    );
    assert_eq!(reason("something else entirely"), "other");
}

fn io_error(text: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, text.to_string())
}

#[test]
fn webhook_attempts_start_at_zero_and_the_database_figures_replace_the_gauges() {
    use crate::store::monitoring::WebhookFigures;
    let metrics = Metrics::new();
    let text = metrics.render();
    for result in WEBHOOK_RESULTS {
        assert!(text.contains(&format!("hancha_webhook_attempts_total{{result=\"{result}\"}} 0")));
    }
    assert!(text.contains("hancha_webhooks_failing 0"));
    metrics.webhook_attempt("connect");
    let mut figures = DatabaseFigures {
        webhooks: vec![
            WebhookFigures {
                endpoint: "1".into(),
                backlog: 7,
                failing: true,
            },
            WebhookFigures {
                endpoint: "2".into(),
                backlog: 0,
                failing: false,
            },
        ],
        ..DatabaseFigures::default()
    };
    metrics.observe_database(&figures);
    let text = metrics.render();
    assert!(text.contains("hancha_webhook_attempts_total{result=\"connect\"} 1"));
    assert!(text.contains("hancha_webhook_backlog_positions{endpoint=\"1\"} 7"));
    assert!(text.contains("hancha_webhooks_failing 1"));
    // an endpoint removed disappears rather than keep its last backlog
    figures.webhooks.truncate(1);
    figures.webhooks[0].failing = false;
    metrics.observe_database(&figures);
    let text = metrics.render();
    assert!(!text.contains("endpoint=\"2\""));
    assert!(text.contains("hancha_webhooks_failing 0"));
}
