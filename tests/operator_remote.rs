//! The operator API in remote mode: when `operator.trust_anchors` is set, the node serves the
//! operator API over mutual TLS 1.3 with its own certificate, and only clients holding an
//! operator certificate from the operator CA get in. Driven through the `hancha` binary as a
//! remote operator runs it (`--operator-cert --operator-key --node-ca --node-county`); every
//! refusal says why in one line: the TLS alert of a handshake the node refused (expired, unknown
//! CA), or the status of a call the node refused after it (not an operator certificate, a
//! township of another county).
//!
//! Remote mode is chosen by `operator.trust_anchors` being set, not by the listen address
//! (`spawn_operator_api`); a non-loopback address without trust anchors is refused at start. So
//! these tests listen on 127.0.0.1 with trust anchors, which runs exactly the remote code path
//! without needing a non-loopback interface in the sandbox.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::{Duration as TimeDelta, Utc};
use common::*;
use hancha::domain::division::CountyCode;
use hancha::tls::dev::TestPki;

/// A cluster where 鼎城区's operator API runs in remote mode, one inquiry from 新化县 waits in
/// 鼎城区 for an answer by hand, and the certificates an operator might hold lie in `files`.
struct RemoteOperator {
    /// Held so the nodes keep running for the whole test.
    cluster: Cluster,
    /// 鼎城区's operator API address (TLS).
    address: SocketAddr,
    /// The message id of the inquiry pending at 鼎城区.
    pending_id: String,
    files: Files,
}

/// Paths of the PEM files the tests hand to the CLI.
struct Files {
    /// The CA that issued the county nodes' certificates (what `--node-ca` names).
    node_ca: PathBuf,
    /// An operator certificate and key from the operator CA 鼎城区 trusts.
    operator: (PathBuf, PathBuf),
    /// An operator certificate and key from an unrelated operator CA.
    foreign_operator: (PathBuf, PathBuf),
    /// 新化县's county node certificate and key (from the county CA, not the operator CA).
    county_node: (PathBuf, PathBuf),
    /// A county certificate issued by the operator CA itself: what a misconfigured or
    /// compromised operator CA could hand out.
    county_from_operator_ca: (PathBuf, PathBuf),
    /// An operator certificate from the right CA that expired yesterday.
    expired_operator: (PathBuf, PathBuf),
    /// An operator certificate from the right CA for a township office of 新化县.
    foreign_township_operator: (PathBuf, PathBuf),
}

async fn remote_operator() -> RemoteOperator {
    let agreement = answered_by_hand(DINGCHENG, XINHUA, DINGCHENG);
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    let dir = cluster.path().to_path_buf();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let now = Utc::now();
    let (from, until) = (now - TimeDelta::hours(1), now + TimeDelta::days(1));
    let operator_ca = TestPki::with_common_name("hancha test operator CA").unwrap();
    let (cert, key) = operator_ca.issue_operator("clerk", from, until).unwrap();
    let operator = (write("operator.pem", &cert), write("operator-key.pem", &key));
    let foreign_ca = TestPki::with_common_name("hancha foreign operator CA").unwrap();
    let (cert, key) = foreign_ca.issue_operator("clerk", from, until).unwrap();
    let foreign_operator = (
        write("foreign-operator.pem", &cert),
        write("foreign-operator-key.pem", &key),
    );
    let (cert, key) = operator_ca.issue_county(XINHUA, from, until).unwrap();
    let county_from_operator_ca = (
        write("county-from-operator-ca.pem", &cert),
        write("county-from-operator-ca-key.pem", &key),
    );
    let (cert, key) = operator_ca
        .issue_operator("clerk", now - TimeDelta::days(30), now - TimeDelta::days(1))
        .unwrap();
    let expired_operator = (
        write("expired-operator.pem", &cert),
        write("expired-operator-key.pem", &key),
    );
    let xinhua_township =
        hancha::domain::division::townships_of(CountyCode::parse(XINHUA).unwrap())[0].to_string();
    let (cert, key) = operator_ca
        .issue_township_operator("clerk", &[&xinhua_township], from, until)
        .unwrap();
    let foreign_township_operator = (
        write("foreign-township-operator.pem", &cert),
        write("foreign-township-operator-key.pem", &key),
    );
    let operator_anchors = write("operator-ca.pem", &operator_ca.ca_pem());
    let files = Files {
        node_ca: dir.join("ca.pem"),
        operator,
        foreign_operator,
        county_node: (
            dir.join(XINHUA).join("node.pem"),
            dir.join(XINHUA).join("node-key.pem"),
        ),
        county_from_operator_ca,
        expired_operator,
        foreign_township_operator,
    };

    // 鼎城区 restarts with its operator API in remote mode, on the same database.
    cluster
        .restart_with_operator_anchors(DINGCHENG, operator_anchors)
        .await;
    let address = cluster.operator_address(DINGCHENG);

    let subject = hancha::domain::message::Subject {
        resident_id: synthetic_id(XINHUA, 11),
        certificate_number: None,
    };
    let draft = hancha::node::InquiryDraft {
        kind: hancha::domain::vocabulary::InquiryKind::OutflowStatus,
        priority: hancha::domain::vocabulary::Priority::Normal,
        subject,
        message_id: None,
    };
    let (queued, _) = cluster
        .node(XINHUA)
        .send_inquiries(CountyCode::parse(DINGCHENG).unwrap(), vec![draft])
        .await
        .unwrap();
    let message_id = queued[0].message_id;
    let responder = cluster.node(DINGCHENG);
    eventually("pending at 鼎城区", || async {
        responder.store().inquiry(message_id).await.unwrap()
    })
    .await;
    RemoteOperator {
        cluster,
        address,
        pending_id: message_id.to_string(),
        files,
    }
}

/// `hancha pending --json` against `address` over mutual TLS, presenting `certificate` and
/// expecting the node to prove `node_county`.
fn pending_over_tls(
    address: SocketAddr,
    certificate: &(PathBuf, PathBuf),
    node_ca: &Path,
    node_county: &str,
) -> Command {
    let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
    command.env_remove("HANCHA_NODE").args([
        "pending".as_ref(),
        "--json".as_ref(),
        "--node".as_ref(),
        address.to_string().as_ref(),
        "--operator-cert".as_ref(),
        certificate.0.as_os_str(),
        "--operator-key".as_ref(),
        certificate.1.as_os_str(),
        "--node-ca".as_ref(),
        node_ca.as_os_str(),
        "--node-county".as_ref(),
        std::ffi::OsStr::new(node_county),
    ]);
    command
}

/// Runs `command` off the async runtime (the nodes live on it) and returns its output.
async fn run(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("hancha runs"))
        .await
        .unwrap()
}

fn assert_refused(output: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !output.status.success(),
        "{what}: expected a failure, got {output:?}"
    );
    assert!(
        output.stdout.is_empty(),
        "{what}: no data may reach a refused client, got stdout {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!stderr.trim().is_empty(), "{what}: the failure must say why");
    stderr
}

/// Presenting `certificate`, the CLI gets nothing and prints one line saying `why`.
async fn cli_refused_saying(
    remote: &RemoteOperator,
    certificate: &(PathBuf, PathBuf),
    what: &str,
    why: &str,
) {
    let files = &remote.files;
    let output = run(pending_over_tls(
        remote.address,
        certificate,
        &files.node_ca,
        DINGCHENG,
    ))
    .await;
    let stderr = assert_refused(&output, what);
    assert!(stderr.contains(why), "{what}: expected {why:?} in {stderr:?}");
    assert!(!stderr.contains("operation was canceled"), "{what}: {stderr:?}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{what}: one line, got {stderr:?}"
    );
}

/// Presenting `certificate`, the CLI gets nothing and says `why`, and on the wire the node
/// refuses the handshake with `alert`.
async fn refused_at_handshake(
    remote: &RemoteOperator,
    certificate: &(PathBuf, PathBuf),
    what: &str,
    alert: rustls::AlertDescription,
    why: &str,
) {
    let files = &remote.files;
    cli_refused_saying(remote, certificate, what, why).await;

    let node_ca = std::fs::read_to_string(&files.node_ca).unwrap();
    let cert = std::fs::read_to_string(&certificate.0).unwrap();
    let key = std::fs::read_to_string(&certificate.1).unwrap();
    let client = raw_tls_client(&node_ca, &[&rustls::version::TLS13], Some((&cert, &key)));
    let (_, error) = raw_tls_attempt(remote.address, client).await;
    assert_eq!(rustls_alert(&error), Some(alert), "{what}: {error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_with_a_certificate_from_the_operator_ca_lists_what_is_pending() {
    let remote = remote_operator().await;
    let files = &remote.files;
    let output = run(pending_over_tls(
        remote.address,
        &files.operator,
        &files.node_ca,
        DINGCHENG,
    ))
    .await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["message_id"], remote.pending_id);
    assert_eq!(lines[0]["peer_county"], XINHUA);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_api_in_remote_mode_refuses_plaintext_clients() {
    let remote = remote_operator().await;
    // What an operator gets who forgets the certificate flags: the loopback-style plaintext client.
    let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
    command
        .env_remove("HANCHA_NODE")
        .args(["pending", "--json", "--node", &remote.address.to_string()]);
    let output = run(command).await;
    assert_refused(&output, "plaintext client");
    // And on the wire: plaintext HTTP/2 gets no HTTP/2 answer.
    plaintext_attempt(remote.address).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_api_in_remote_mode_refuses_a_tls_client_without_a_certificate() {
    let remote = remote_operator().await;
    let node_ca = std::fs::read_to_string(&remote.files.node_ca).unwrap();
    let client = raw_tls_client(&node_ca, &[&rustls::version::TLS13], None);
    let (_, error) = raw_tls_attempt(remote.address, client).await;
    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateRequired),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_api_in_remote_mode_refuses_an_operator_certificate_from_another_ca() {
    let remote = remote_operator().await;
    refused_at_handshake(
        &remote,
        &remote.files.foreign_operator,
        "operator certificate from another CA",
        rustls::AlertDescription::UnknownCA,
        "the node refused this operator certificate during the TLS handshake: it is not signed by a CA the node trusts",
    )
    .await;
}

/// A county node's own certificate, from the county CA the operator CA is not.
#[tokio::test(flavor = "multi_thread")]
async fn operator_api_in_remote_mode_refuses_a_county_node_certificate() {
    let remote = remote_operator().await;
    refused_at_handshake(
        &remote,
        &remote.files.county_node,
        "county node certificate",
        rustls::AlertDescription::UnknownCA,
        "is not signed by a CA the node trusts",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_client_refuses_a_node_that_proves_another_county() {
    let remote = remote_operator().await;
    let files = &remote.files;
    // 鼎城区's node, but the operator expects 新化县.
    let output = run(pending_over_tls(
        remote.address,
        &files.operator,
        &files.node_ca,
        XINHUA,
    ))
    .await;
    assert_refused(&output, "node of another county");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The refusal names both the county expected and the one the node proved.
    assert!(stderr.contains(XINHUA) && stderr.contains(DINGCHENG), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_api_refuses_an_expired_operator_certificate_and_the_cli_says_it_expired() {
    let remote = remote_operator().await;
    refused_at_handshake(
        &remote,
        &remote.files.expired_operator,
        "expired operator certificate",
        rustls::AlertDescription::CertificateExpired,
        "the node refused this operator certificate during the TLS handshake: it has expired",
    )
    .await;
    let audited = "SELECT count(*) FROM audit_log \
                   WHERE reason LIKE 'UNAUTHENTICATED: operator listener: tls handshake failed from %'";
    eventually("the refused handshake is audited", || async {
        (count(remote.cluster.node(DINGCHENG), audited).await >= 1).then_some(())
    })
    .await;
}

/// A valid certificate from the operator CA that names a county, not an operator: the handshake
/// completes and every call is refused, saying why.
#[tokio::test(flavor = "multi_thread")]
async fn operator_api_refuses_a_county_certificate_even_from_the_operator_ca_saying_why() {
    let remote = remote_operator().await;
    cli_refused_saying(
        &remote,
        &remote.files.county_from_operator_ca,
        "county certificate from the operator CA",
        "error: the client certificate is not an operator certificate",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_api_refuses_a_township_office_of_another_county_saying_why() {
    let remote = remote_operator().await;
    cli_refused_saying(
        &remote,
        &remote.files.foreign_township_operator,
        "township of another county",
        "error: the operator certificate names a township of another county: this node serves 430703",
    )
    .await;
}
