//! The committed development certificates in `certs-dev/` load, name the county their file name
//! says, and let two development nodes talk. Fails when the directory is regenerated partially or
//! a file is edited by hand.

use std::path::{Path, PathBuf};

use hancha::tls::{
    County, IdentityError, LoadError, NodeIdentity, TrustAnchors, client_config, connect, server_config,
    tls_incoming,
};
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const DEV_COUNTIES: [&str; 3] = ["430703", "430582", "431322"];

fn certs_dev() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-dev")
}

fn dev_identity(county: &str) -> NodeIdentity {
    let dir = certs_dev();
    NodeIdentity::from_pem_files(
        &dir.join(format!("{county}.pem")),
        &dir.join(format!("{county}-key.pem")),
    )
    .unwrap_or_else(|error| panic!("certs-dev/{county}.pem: {error:?}"))
}

#[test]
fn every_development_certificate_names_the_county_of_its_file() {
    for county in DEV_COUNTIES {
        assert_eq!(dev_identity(county).county().as_str(), county);
    }
}

#[test]
fn operator_certificate_is_not_a_county_identity() {
    let dir = certs_dev();
    let loaded = NodeIdentity::from_pem_files(&dir.join("operator.pem"), &dir.join("operator-key.pem"));
    assert!(
        matches!(loaded, Err(LoadError::Identity(IdentityError::NoCounty))),
        "{loaded:?}"
    );
}

#[tokio::test]
async fn two_development_nodes_complete_mutual_tls() {
    let anchors = TrustAnchors::from_pem_file(&certs_dev().join("ca.pem")).unwrap();
    let shaodong = dev_identity("430582");
    let dingcheng = dev_identity("430703");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let incoming = tls_incoming(listener, server_config(&shaodong, &anchors).unwrap());
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming),
    );

    let config = client_config(&dingcheng, &anchors, County::parse("430582").unwrap()).unwrap();
    let channel = connect(&address.to_string(), config).await.unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();

    assert_eq!(response.into_inner().status(), ServingStatus::Serving);
}
