//! The Python example for county systems (`examples/python/hancha_client.py`, standard library
//! only) against a real node: it verifies a webhook the node really sent (and refuses it once
//! altered), and follows the event stream over HTTP/JSON, resuming from its stored cursor with
//! exactly the events it had not seen.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use hancha::config::WebListener;
use hancha::proto::operator as pb;

const EXAMPLE: &str = "examples/python/hancha_client.py";

type Deliveries = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receive(State(deliveries): State<Deliveries>, headers: HeaderMap, body: Bytes) -> StatusCode {
    deliveries.lock().unwrap().push((headers, body));
    StatusCode::NO_CONTENT
}

/// Runs the example with `args`; its exit code and standard output.
async fn example(args: Vec<String>) -> (Option<i32>, String, String) {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(EXAMPLE)
            .args(args)
            .output()
            .expect("python3 runs (the example needs nothing but its standard library)")
    })
    .await
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn watch_args(web: SocketAddr, cursor_file: &Path) -> Vec<String> {
    [
        "watch",
        "--url",
        &format!("http://{web}"),
        "--cursor-file",
        cursor_file.to_str().unwrap(),
        "--types",
        "answer.received",
        "--idle",
        "3",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_verifies_a_real_webhook_and_resumes_the_stream_from_its_cursor() {
    let mut cluster = webhook_pair().await;
    cluster
        .restart_with_web(
            DINGCHENG,
            WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login: None,
                tls: None,
            },
        )
        .await;
    let web = cluster.web_address(DINGCHENG);

    // a county system's endpoint, registered for answers
    let deliveries = Deliveries::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hancha", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/hancha", axum::routing::post(receive))
        .with_state(Arc::clone(&deliveries));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let added = cluster
        .operator(DINGCHENG)
        .await
        .add_webhook(pb::AddWebhookRequest {
            url: hook_url,
            event_types: vec!["answer.received".into()],
            ..Default::default()
        })
        .await
        .expect("webhook added")
        .into_inner();

    answers_received(&cluster, 0, 3).await;
    let delivered = eventually_within("three webhooks delivered", Duration::from_secs(60), || async {
        let deliveries = deliveries.lock().unwrap().clone();
        (deliveries.len() >= 3).then_some(deliveries)
    })
    .await;

    // the example verifies the first delivery as received, and refuses it altered
    let dir = tempfile::tempdir().unwrap();
    let (headers, body) = &delivered[0];
    let header_json: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().into()))
        .collect();
    let headers_file = dir.path().join("headers.json");
    std::fs::write(&headers_file, serde_json::Value::Object(header_json).to_string()).unwrap();
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, body).unwrap();
    let verify = |body_file: &Path| {
        [
            "verify",
            "--secret",
            &added.secret,
            "--headers",
            headers_file.to_str().unwrap(),
            "--body",
            body_file.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let (code, out, err) = example(verify(&body_file)).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        out.trim(),
        format!(
            "verified {} answer.received",
            event["data"]["id"].as_str().unwrap()
        )
    );
    let altered = dir.path().join("altered.json");
    let text = String::from_utf8_lossy(body).replace("answer.received", "inquiry.received");
    std::fs::write(&altered, text).unwrap();
    let (code, _, err) = example(verify(&altered)).await;
    assert_eq!(code, Some(1), "an altered body is refused");
    assert!(err.contains("no signature matches"), "{err}");

    // the stream over HTTP/JSON: all three answers, then, resumed, only the two new ones
    let cursor_file = dir.path().join("cursor.txt");
    let (code, out, err) = example(watch_args(web, &cursor_file)).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let first: Vec<&str> = out.lines().collect();
    assert_eq!(first.len(), 3, "{out}");
    assert!(
        first.iter().all(|line| line.contains(" answer.received ")),
        "{out}"
    );
    // the last event's cursor, or past it (progress: the node looked further and found nothing)
    let cursor = std::fs::read_to_string(&cursor_file).unwrap();
    let last_event: i64 = first[2].split(' ').next().unwrap().parse().unwrap();
    assert!(
        cursor.parse::<i64>().unwrap() >= last_event,
        "{cursor} {last_event}"
    );

    answers_received(&cluster, 3, 2).await;
    let (code, out, err) = example(watch_args(web, &cursor_file)).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let second: Vec<&str> = out.lines().collect();
    assert_eq!(second.len(), 2, "exactly the two new answers: {out}");
    for line in &second {
        let at: i64 = line.split(' ').next().unwrap().parse().unwrap();
        assert!(at > cursor.parse::<i64>().unwrap(), "{line} after {cursor}");
        assert!(!first.contains(line));
    }
}
