//! Mutual TLS between county nodes, end to end on real loopback sockets: who may connect, how a
//! peer's county is learned, and what every kind of impostor sees.
//!
//! Each test serves tonic-health over `tls_incoming` on 127.0.0.1:0 with an interceptor that
//! records the county `peer_county` reports, so a test can assert both what the client saw and
//! that the server never handled a request from a refused peer.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use hancha::tls::dev::TestPki;
use hancha::tls::{
    ChannelTimings, County, IdentityError, NodeIdentity, TlsIncoming, TrustAnchors, client_config, connect,
    connect_lazy, county_from_certificate, peer_county, server_config, tls_incoming,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const DINGCHENG: &str = "430703"; // 鼎城区, the asking county in these tests
const SHAODONG: &str = "430582"; // 邵东市, the answering county
const XINHUA: &str = "431322"; // 新化县, a third county nobody here is

/// Every network step of every test finishes well within this, or the test fails.
const STEP: Duration = Duration::from_secs(5);

/// A health server speaking mutual TLS, recording the county of every request it handles.
struct TestServer {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<County>>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl TestServer {
    fn seen(&self) -> Vec<County> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves on a fresh port with the production defaults (`tls_incoming`).
async fn serve_health(identity: &NodeIdentity, anchors: &TrustAnchors) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_health_on(listener, identity, anchors, None)
}

/// Serves on `listener`; `handshake_timeout` overrides the default when a test needs it short.
fn serve_health_on(
    listener: TcpListener,
    identity: &NodeIdentity,
    anchors: &TrustAnchors,
    handshake_timeout: Option<Duration>,
) -> TestServer {
    let address = listener.local_addr().unwrap();
    let config = server_config(identity, anchors).unwrap();
    let incoming = match handshake_timeout {
        None => tls_incoming(listener, config),
        Some(timeout) => TlsIncoming::new(listener, config, timeout),
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&seen);
    let health = InterceptedService::new(health, move |request: tonic::Request<()>| {
        let county = peer_county(&request)?;
        recorder.lock().unwrap().push(county);
        Ok(request)
    });
    let (shutdown, stop) = oneshot::channel::<()>();
    tokio::spawn(
        Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop.await;
            }),
    );
    TestServer {
        address,
        seen,
        shutdown: Some(shutdown),
    }
}

/// The whole error chain in one line, so assertions can name the TLS failure underneath
/// tonic's and hyper's wrappers.
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn health_check(channel: Channel) -> Result<ServingStatus, String> {
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let response = tokio::time::timeout(STEP, HealthClient::new(channel).check(request))
        .await
        .expect("health check hangs")
        .map_err(|status| format!("{:?}: {}", status.code(), chain(&status)))?;
    Ok(response.into_inner().status())
}

/// Connects through `hancha::tls::connect` and asks for health: the path every node uses.
async fn check_over_tls(
    server: &TestServer,
    client: &NodeIdentity,
    anchors: &TrustAnchors,
    expected: &str,
) -> Result<ServingStatus, String> {
    let config = client_config(client, anchors, County::parse(expected).unwrap()).unwrap();
    let channel = tokio::time::timeout(STEP, connect(&server.address.to_string(), config))
        .await
        .expect("connect hangs")
        .map_err(|error| chain(&error))?;
    health_check(channel).await
}

/// A hand-built rustls client (standard WebPKI verification of `localhost`), for the clients
/// `client_config` refuses to build: no certificate, or TLS 1.2. Returns the first error seen
/// while handshaking and then reading.
async fn raw_tls_attempt(address: SocketAddr, config: rustls::ClientConfig) -> std::io::Error {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let attempt = async {
        let mut tls = connector.connect(name, tcp).await?;
        // TLS 1.3: the server judges the client certificate after the client's side of the
        // handshake is done, so its verdict arrives as an alert on the first read.
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        let mut buffer = [0_u8; 64];
        let answered = tls.read(&mut buffer).await?;
        Ok::<_, std::io::Error>(answered)
    };
    match tokio::time::timeout(STEP, attempt).await.expect("raw tls hangs") {
        Ok(bytes) => panic!("expected a TLS alert, the server answered with {bytes} bytes"),
        Err(error) => error,
    }
}

fn raw_client_builder(
    anchors_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(anchors_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
}

fn rustls_alert(error: &std::io::Error) -> Option<rustls::AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

fn first_certificate_der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

struct Mesh {
    pki: TestPki,
    anchors: TrustAnchors,
    shaodong: NodeIdentity,
    dingcheng: NodeIdentity,
}

fn mesh() -> Mesh {
    let pki = TestPki::new().unwrap();
    let anchors = TrustAnchors::from_pem(&pki.ca_pem()).unwrap();
    let shaodong = pki.county_identity(SHAODONG).unwrap();
    let dingcheng = pki.county_identity(DINGCHENG).unwrap();
    Mesh {
        pki,
        anchors,
        shaodong,
        dingcheng,
    }
}

#[tokio::test]
async fn peer_reaches_expected_county_and_server_sees_the_peer_county() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;

    let status = check_over_tls(&server, &mesh.dingcheng, &mesh.anchors, SHAODONG).await;

    assert_eq!(status, Ok(ServingStatus::Serving));
    assert_eq!(server.seen(), vec![County::parse(DINGCHENG).unwrap()]);
}

#[tokio::test]
async fn client_refuses_server_whose_certificate_names_another_county() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;

    let error = check_over_tls(&server, &mesh.dingcheng, &mesh.anchors, XINHUA)
        .await
        .unwrap_err();

    assert!(
        error.contains("CountyMismatch { expected: County(431322), actual: County(430582) }"),
        "{error}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn client_refuses_server_certificate_from_another_ca() {
    let mesh = mesh();
    let foreign_ca = TestPki::with_common_name("some other CA").unwrap();
    let impostor = foreign_ca.county_identity(SHAODONG).unwrap();
    let server = serve_health(&impostor, &mesh.anchors).await;

    let error = check_over_tls(&server, &mesh.dingcheng, &mesh.anchors, SHAODONG)
        .await
        .unwrap_err();

    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "{error}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn server_refuses_client_without_certificate() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;
    let config = raw_client_builder(&mesh.pki.ca_pem(), &[&rustls::version::TLS13]).with_no_client_auth();

    let error = raw_tls_attempt(server.address, config).await;

    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateRequired),
        "{error}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn server_refuses_client_certificate_from_another_ca() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;
    let foreign_ca = TestPki::with_common_name("some other CA").unwrap();
    let stranger = foreign_ca.county_identity(DINGCHENG).unwrap();

    let error = check_over_tls(&server, &stranger, &mesh.anchors, SHAODONG)
        .await
        .unwrap_err();

    assert!(error.contains("received fatal alert: UnknownCA"), "{error}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn server_refuses_client_certificate_from_impostor_ca_with_the_same_name() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;
    // Same subject name as the real CA, different key: the chain is found, the signature fails.
    let impostor_ca = TestPki::new().unwrap();
    let impostor = impostor_ca.county_identity(DINGCHENG).unwrap();

    let error = check_over_tls(&server, &impostor, &mesh.anchors, SHAODONG)
        .await
        .unwrap_err();

    assert!(error.contains("received fatal alert: DecryptError"), "{error}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn server_refuses_expired_client_certificate() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;
    let (cert_pem, key_pem) = mesh
        .pki
        .issue_county(
            DINGCHENG,
            Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap(),
        )
        .unwrap();
    let expired = NodeIdentity::from_pem(&cert_pem, &key_pem).unwrap();

    let error = check_over_tls(&server, &expired, &mesh.anchors, SHAODONG)
        .await
        .unwrap_err();

    assert!(error.contains("CertificateExpired"), "{error}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn server_refuses_client_certificate_that_names_no_county() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;
    let now = Utc::now();
    let (cert_pem, key_pem) = mesh
        .pki
        .issue_node_with_uris(&["urn:hancha:operator:dev"], now, now + chrono::Days::new(1))
        .unwrap();
    // `NodeIdentity` will not even load such a certificate, so build the client by hand.
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let chain = vec![first_certificate_der(&cert_pem).into()];
    let config = raw_client_builder(&mesh.pki.ca_pem(), &[&rustls::version::TLS13])
        .with_client_auth_cert(chain, key)
        .unwrap();

    let error = raw_tls_attempt(server.address, config).await;

    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateUnknown),
        "{error}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn server_refuses_plaintext_http2() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;

    let outcome = match tonic::transport::Endpoint::from_shared(format!("http://{}", server.address))
        .unwrap()
        .connect()
        .await
    {
        Ok(channel) => health_check(channel).await,
        Err(error) => Err(chain(&error)),
    };

    // The server reads HTTP/2's preface as a broken TLS record and hangs up.
    let error = outcome.unwrap_err();
    assert!(
        (error.starts_with("Unknown") || error.starts_with("Unavailable"))
            && error.contains("transport error"),
        "{error}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn server_refuses_tls12_client() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;
    let (cert_pem, key_pem) = mesh
        .pki
        .issue_county(DINGCHENG, Utc::now(), Utc::now() + chrono::Days::new(1))
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = raw_client_builder(&mesh.pki.ca_pem(), &[&rustls::version::TLS12])
        .with_client_auth_cert(vec![first_certificate_der(&cert_pem).into()], key)
        .unwrap();

    let error = raw_tls_attempt(server.address, config).await;

    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::ProtocolVersion),
        "{error}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn silent_connection_does_not_hold_up_other_peers() {
    let mesh = mesh();
    let server = serve_health(&mesh.shaodong, &mesh.anchors).await;
    // Holds its handshake slot open for the full ten-second default.
    let _silent = TcpStream::connect(server.address).await.unwrap();

    let status = tokio::time::timeout(
        Duration::from_secs(2),
        check_over_tls(&server, &mesh.dingcheng, &mesh.anchors, SHAODONG),
    )
    .await
    .expect("a silent connection blocked the accept loop");

    assert_eq!(status, Ok(ServingStatus::Serving));
}

#[tokio::test]
async fn silent_connection_is_dropped_after_the_handshake_timeout() {
    let mesh = mesh();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let timeout = Duration::from_millis(200);
    let server = serve_health_on(listener, &mesh.shaodong, &mesh.anchors, Some(timeout));
    let mut silent = TcpStream::connect(server.address).await.unwrap();
    let connected_at = std::time::Instant::now();

    let mut buffer = [0_u8; 16];
    let read = tokio::time::timeout(STEP, silent.read(&mut buffer))
        .await
        .expect("silent connection was never closed");

    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(connected_at.elapsed() >= timeout);
}

/// A stopped server's port is free the moment `closed` resolves: a node stopped and started
/// again in one process binds its old port at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_is_free_again_once_closed_resolves() {
    let mesh = mesh();
    for _ in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut incoming = tls_incoming(listener, server_config(&mesh.shaodong, &mesh.anchors).unwrap());
        let closed = incoming.closed();
        // a connection in flight keeps the accept loop busy with a handshake when it stops
        let _pending = TcpStream::connect(address).await.unwrap();
        drop(incoming);
        tokio::time::timeout(STEP, closed)
            .await
            .expect("the listener closes once the stream is dropped");
        TcpListener::bind(address).await.expect("the port is free again");
    }
}

#[tokio::test]
async fn lazy_channel_connects_once_the_peer_comes_up() {
    let mesh = mesh();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let config = client_config(&mesh.dingcheng, &mesh.anchors, County::parse(SHAODONG).unwrap()).unwrap();
    let channel = connect_lazy(&address.to_string(), config, ChannelTimings::default()).unwrap();

    let while_down = health_check(channel.clone()).await;
    assert!(
        while_down
            .as_ref()
            .is_err_and(|error| error.starts_with("Unavailable")),
        "{while_down:?}"
    );

    let listener = TcpListener::bind(address).await.unwrap();
    let server = serve_health_on(listener, &mesh.shaodong, &mesh.anchors, None);
    assert_eq!(health_check(channel).await, Ok(ServingStatus::Serving));
    assert_eq!(server.seen(), vec![County::parse(DINGCHENG).unwrap()]);
}

#[test]
fn certificate_without_county_uri_identifies_no_county() {
    let pki = TestPki::new().unwrap();
    let now = Utc::now();
    let (cert_pem, _) = pki
        .issue_node_with_uris(&[], now, now + chrono::Days::new(1))
        .unwrap();

    assert_eq!(
        county_from_certificate(&first_certificate_der(&cert_pem)),
        Err(IdentityError::NoCounty)
    );
}

#[test]
fn certificate_with_two_county_uris_identifies_no_county() {
    let pki = TestPki::new().unwrap();
    let now = Utc::now();
    let (cert_pem, key_pem) = pki
        .issue_node_with_uris(
            &["urn:hancha:county:430703", "urn:hancha:county:430582"],
            now,
            now + chrono::Days::new(1),
        )
        .unwrap();

    assert_eq!(
        county_from_certificate(&first_certificate_der(&cert_pem)),
        Err(IdentityError::SeveralCounties { count: 2 })
    );
    assert!(NodeIdentity::from_pem(&cert_pem, &key_pem).is_err());
}
