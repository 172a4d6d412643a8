//! The test harness: real county nodes on 127.0.0.1 port 0, real mutual TLS with certificates
//! minted for the test, each node on its own fresh PostgreSQL database on `DATABASE_URL`, dropped
//! when the test is done with it.
//!
//! # Layout
//!
//! - [`agreements`]: agreement TOML and the terms each direction grants;
//! - [`bad_peers`]: a black-holed peer, one answering `UNAVAILABLE`, one seconds away;
//! - [`balancer`]: a TCP load balancer in front of a county's replicas;
//! - [`people`]: synthetic resident IDs and persons;
//! - [`database`]: fresh databases (dropped on drop) and counting rows;
//! - [`cluster`]: in-process nodes;
//! - [`exactly_once`]: each inquiry received, answered and its answer stored once, both ways;
//! - [`process`]: nodes as `hancha serve` child processes;
//! - [`tls`]: raw TLS and plaintext attempts;
//! - [`operators`]: 鼎城区's operator API over mutual TLS with township offices' certificates;
//! - [`notices`]: notices between 鼎城区 and 新化县 through the operator API;
//! - [`pair`]: the two-county pair of the reconciliation tests;
//! - [`receipts`]: what receipts and the audit log say of refused messages;
//! - [`replicated`]: a private primary with a streaming standby, for the failover tests;
//! - [`webhooks`]: the pair of the webhook tests and answers that give events.
//! - [`web`]: HTTP/1.1 by hand to the web listener;
//! - [`browser`]: headless Chromium over WebDriver, for the console.
//!
//! Everything is re-exported here, so a test file says `use common::*;`.
// Each test binary compiles the whole harness and uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod agreements;
pub mod bad_peers;
pub mod balancer;
pub mod browser;
pub mod cli;
pub mod cluster;
pub mod database;
pub mod exactly_once;
pub mod notices;
pub mod operators;
pub mod pair;
pub mod people;
pub mod process;
pub mod receipts;
pub mod replicated;
pub mod tls;
pub mod web;
pub mod webhooks;

use std::time::Duration;

pub use agreements::*;
pub use bad_peers::*;
pub use balancer::*;
pub use browser::*;
pub use cli::*;
pub use cluster::*;
pub use database::*;
pub use exactly_once::*;
pub use notices::*;
pub use operators::*;
pub use people::*;
pub use process::*;
pub use receipts::*;
pub use replicated::*;
pub use tls::*;
pub use web::*;
pub use webhooks::*;

pub const DINGCHENG: &str = "430703"; // 鼎城区
pub const SHAODONG: &str = "430582"; // 邵东市
pub const XINHUA: &str = "431322"; // 新化县

/// How long a test waits for something that should happen quickly before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, or panics after [`PATIENCE`] with `what`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, PATIENCE, check).await
}

/// [`eventually`] with an explicit patience, for something known to take long (a sweep).
pub async fn eventually_within<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET url` over plain HTTP/1.0: the status line and the body.
pub async fn http_get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("metrics listener reachable");
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response)
        .await
        .expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers and body");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}
