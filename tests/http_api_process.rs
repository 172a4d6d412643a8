//! The web listener of a `hancha serve` process over HTTPS (the `[web.tls]` certificate, TLS
//! 1.3), with API tokens made, listed and revoked by `hancha tokens` against the node's
//! database: a token works from the moment it is made and stops when revoked; the token is
//! printed once and never appears in the node's log or in `tokens list`.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use hancha::config::Limits;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn tokens(config: &std::path::Path, arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hancha"))
        .arg("tokens")
        .args(arguments)
        .arg("--config")
        .arg(config)
        .env_remove("HANCHA_CONFIG")
        .output()
        .expect("run hancha tokens")
}

/// The tests of this file one at a time: each starts `hancha serve` processes on ports found
/// free beforehand, which a test running beside it could take in between.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A TLS 1.3 client trusting only `ca_pem`.
fn trusting(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTPS request to 127.0.0.1 `port`, trusting only `ca_pem` for `localhost`: `Err` when
/// the handshake fails (the listener serves another certificate).
async fn try_https(
    port: u16,
    ca_pem: &str,
    (method, path): (&str, &str),
    token: Option<&str>,
    body: &str,
) -> Result<HttpAnswer, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = trusting(ca_pem)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|error| error.to_string())?;
    let body = (method == "POST").then_some(("application/json", body));
    Ok(request_on(tls, method, path, token, body).await)
}

/// One HTTPS POST to 127.0.0.1 `port`, trusting only `ca_pem` for `localhost`.
async fn https(port: u16, ca_pem: &str, path: &str, token: Option<&str>, body: &str) -> HttpAnswer {
    try_https(port, ca_pem, ("POST", path), token, body)
        .await
        .expect("the TLS handshake with the web listener")
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_made_by_the_cli_open_the_https_api_until_revoked() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (_cluster, mut dingcheng, _) = dingcheng_process_beside_xinhua(&Limits::default()).await;
    let web = free_address();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    std::fs::write(dingcheng.dir().join("web.pem"), &cert_pem).unwrap();
    std::fs::write(
        dingcheng.dir().join("web-key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(&dingcheng.config_path).unwrap();
    config.push_str(&format!(
        "\n[web]\nlisten = \"{web}\"\nrequire_login = true\n[web.tls]\ncert = \"web.pem\"\nkey = \"web-key.pem\"\n"
    ));
    std::fs::write(&dingcheng.config_path, config).unwrap();
    dingcheng.start().await;
    let path = dingcheng.config_path.clone();

    let made = tokens(&path, &["add", "county-his", "--role", "county"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("hct_") && token.len() == 47, "{token}");
    // refusals of the CLI: a name taken, a township of another county, a township without code
    let again = tokens(&path, &["add", "county-his", "--role", "county"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let foreign = tokens(
        &path,
        &["add", "t1", "--role", "township", "--township", "431322101"],
    );
    assert_eq!(
        foreign.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&foreign.stderr)
    );
    let bare = tokens(&path, &["add", "t2", "--role", "township"]);
    assert!(!bare.status.success());

    let listed = https(web.port(), &cert_pem, "/v1/ListAgreements", Some(&token), "{}").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.json()["agreements"].is_array(), "{}", listed.body);
    let anonymous = https(web.port(), &cert_pem, "/v1/ListAgreements", None, "{}").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(anonymous.header("www-authenticate").is_some());

    let list = tokens(&path, &["list", "--json"]);
    assert!(list.status.success());
    let list = String::from_utf8(list.stdout).unwrap();
    let entry: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!(entry["name"], "county-his");
    assert_eq!(entry["scope"], format!("county:{DINGCHENG}"));
    assert!(entry["last_used_at"].is_string(), "{entry}");
    assert!(entry["revoked_at"].is_null());

    let revoked = tokens(&path, &["revoke", "county-his"]);
    assert!(revoked.status.success());
    let refused = https(web.port(), &cert_pem, "/v1/ListAgreements", Some(&token), "{}").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let missing = tokens(&path, &["revoke", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));

    for text in [list, dingcheng.log()] {
        assert!(!text.contains(&token), "the token written out:\n{text}");
        assert!(!text.contains(&token[4..]));
    }
    dingcheng.terminate().await;
}

/// `GET /openapi.json` over HTTPS, trusting only `ca_pem`: `Err` when another certificate is
/// served.
async fn served_certificate(port: u16, ca_pem: &str) -> Result<HttpAnswer, String> {
    try_https(port, ca_pem, ("GET", "/openapi.json"), None, "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_web_certificate_is_served_after_sighup_and_a_broken_one_is_not() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (_cluster, mut dingcheng, _) = dingcheng_process_beside_xinhua(&Limits::default()).await;
    let web = free_address();
    let first = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (
        dingcheng.dir().join("web.pem"),
        dingcheng.dir().join("web-key.pem"),
    );
    std::fs::write(&cert, first.cert.pem()).unwrap();
    std::fs::write(&key, first.signing_key.serialize_pem()).unwrap();
    let mut config = std::fs::read_to_string(&dingcheng.config_path).unwrap();
    config.push_str(&format!(
        "\n[web]\nlisten = \"{web}\"\n[web.tls]\ncert = \"web.pem\"\nkey = \"web-key.pem\"\n"
    ));
    std::fs::write(&dingcheng.config_path, config).unwrap();
    dingcheng.start().await;
    let served = served_certificate(web.port(), &first.cert.pem()).await.unwrap();
    assert_eq!(served.status, 200);

    // renewed on disk: the old one is served until the node is told (or its watch notices)
    let second = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(&cert, second.cert.pem()).unwrap();
    std::fs::write(&key, second.signing_key.serialize_pem()).unwrap();
    dingcheng.signal("HUP");
    eventually("the renewed web certificate served", || async {
        served_certificate(web.port(), &second.cert.pem()).await.ok()
    })
    .await;
    assert!(
        served_certificate(web.port(), &first.cert.pem()).await.is_err(),
        "the old certificate is no longer served"
    );

    // a broken key: the renewed certificate stays in force, and the node says why
    std::fs::write(&key, "not a key").unwrap();
    dingcheng.signal("HUP");
    eventually("the failed reload warned about", || async {
        dingcheng
            .log()
            .contains("web listener certificate reload failed")
            .then_some(())
    })
    .await;
    let still = served_certificate(web.port(), &second.cert.pem()).await.unwrap();
    assert_eq!(still.status, 200);
    assert!(!dingcheng.log().contains("not a key"));
    dingcheng.terminate().await;
}
