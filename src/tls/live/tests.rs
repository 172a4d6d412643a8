//! The revocation policy, at the verifiers: what is refused, what is not, and why.

use chrono::{Duration as TimeDelta, Utc};

use super::*;
use crate::tls::dev::TestPki;

/// A node's files in a temporary directory: its certificate from `pki`, the anchors given,
/// and one CRL file.
struct Files {
    dir: tempfile::TempDir,
    sources: TlsSources,
}

fn files(pki: &TestPki, anchors: &str, crl: Option<&[u8]>, grace: Duration) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let (cert, key) = pki
        .issue_county("431322", now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    std::fs::write(dir.path().join("node.pem"), cert).unwrap();
    std::fs::write(dir.path().join("node-key.pem"), key).unwrap();
    std::fs::write(dir.path().join("ca.pem"), anchors).unwrap();
    let mut crls = Vec::new();
    if let Some(crl) = crl {
        std::fs::write(dir.path().join("crl"), crl).unwrap();
        crls.push(dir.path().join("crl"));
    }
    let sources = TlsSources {
        certificate: dir.path().join("node.pem"),
        private_key: dir.path().join("node-key.pem"),
        trust_anchors: dir.path().join("ca.pem"),
        crls,
        operator_trust_anchors: None,
        crl_grace: grace,
    };
    Files { dir, sources }
}

fn material(files: &Files) -> TlsMaterial {
    TlsMaterial::read(&files.sources, County::parse("431322").unwrap()).unwrap()
}

fn peer(pki: &TestPki) -> (String, CertificateDer<'static>) {
    let now = Utc::now();
    let (cert, _) = pki
        .issue_county("430703", now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    (cert, der)
}

fn as_client(material: &TlsMaterial, der: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    material
        .verify_client(Role::PeerClient, der, &[], UnixTime::now())
        .map(|_| ())
}

fn as_server(material: &TlsMaterial, der: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    material
        .verify_server(County::parse("430703").unwrap(), der, &[], UnixTime::now())
        .map(|_| ())
}

fn fresh(pki: &TestPki, revoked: &[&str], number: u64) -> String {
    let now = Utc::now();
    pki.crl_pem(
        revoked,
        now - TimeDelta::days(1),
        now + TimeDelta::days(1),
        number,
    )
    .unwrap()
}

#[test]
fn a_revoked_certificate_is_refused_as_client_and_as_server_others_are_not() {
    let pki = TestPki::new().unwrap();
    let (revoked_pem, revoked) = peer(&pki);
    let (_, other) = peer(&pki);
    let files = files(
        &pki,
        &pki.ca_pem(),
        Some(fresh(&pki, &[&revoked_pem], 1).as_bytes()),
        Duration::ZERO,
    );
    let material = material(&files);
    let refused = Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
    assert_eq!(as_client(&material, &revoked), refused);
    // the server side ignores host names; a revoked certificate must still fail there
    assert_eq!(as_server(&material, &revoked), refused);
    assert_eq!(as_client(&material, &other), Ok(()));
    assert_eq!(as_server(&material, &other), Ok(()));
}

#[test]
fn a_ca_without_a_crl_is_not_checked_and_without_crls_nothing_is() {
    let pki = TestPki::new().unwrap();
    // (a CA of its own name: CRLs are matched to certificates by their issuer's name)
    let other_ca = TestPki::with_common_name("another hancha test CA").unwrap();
    let (_, from_other_ca) = peer(&other_ca);
    let anchors = format!("{}{}", pki.ca_pem(), other_ca.ca_pem());
    let files_with = files(
        &pki,
        &anchors,
        Some(fresh(&pki, &[], 1).as_bytes()),
        Duration::ZERO,
    );
    assert_eq!(as_client(&material(&files_with), &from_other_ca), Ok(()));
    let (revoked_pem, revoked) = peer(&pki);
    let files_without = files(&pki, &pki.ca_pem(), None, Duration::ZERO);
    assert_eq!(as_client(&material(&files_without), &revoked), Ok(()));
    let _ = revoked_pem;
}

#[test]
fn a_stale_crl_is_used_within_the_grace_and_refuses_its_cas_certificates_after() {
    let pki = TestPki::new().unwrap();
    // (a CA of its own name: CRLs are matched to certificates by their issuer's name)
    let other_ca = TestPki::with_common_name("another hancha test CA").unwrap();
    let (_, certificate) = peer(&pki);
    let (_, from_other_ca) = peer(&other_ca);
    let now = Utc::now();
    let stale = pki
        .crl_pem(&[], now - TimeDelta::days(2), now - TimeDelta::hours(1), 1)
        .unwrap();
    let anchors = format!("{}{}", pki.ca_pem(), other_ca.ca_pem());
    let within = files(
        &pki,
        &anchors,
        Some(stale.as_bytes()),
        Duration::from_secs(2 * 3600),
    );
    assert_eq!(as_client(&material(&within), &certificate), Ok(()));
    let past = files(&pki, &anchors, Some(stale.as_bytes()), Duration::from_secs(1800));
    let material = material(&past);
    for verdict in [
        as_client(&material, &certificate),
        as_server(&material, &certificate),
    ] {
        assert!(
            matches!(
                verdict,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ExpiredRevocationListContext { .. }
                ))
            ),
            "{verdict:?}"
        );
    }
    assert_eq!(
        as_client(&material, &from_other_ca),
        Ok(()),
        "another CA's certificates are not affected"
    );
    assert_eq!(material.stale_crls(now.timestamp()).len(), 1);
}

#[test]
fn a_der_crl_is_read_and_the_newest_crl_of_an_issuer_wins() {
    let pki = TestPki::new().unwrap();
    let (revoked_pem, revoked) = peer(&pki);
    let now = Utc::now();
    let older = pki
        .crl_pem(&[], now - TimeDelta::days(3), now + TimeDelta::days(1), 1)
        .unwrap();
    let newer = pki
        .crl_pem(
            &[&revoked_pem],
            now - TimeDelta::days(1),
            now + TimeDelta::days(1),
            2,
        )
        .unwrap();
    let both = format!("{newer}{older}");
    let files = files(&pki, &pki.ca_pem(), Some(both.as_bytes()), Duration::ZERO);
    let material = material(&files);
    assert_eq!(material.crls().len(), 1);
    assert_eq!(material.crls()[0].revoked, 1);
    assert!(as_client(&material, &revoked).is_err());

    let der = CertificateRevocationListDer::from_pem_slice(newer.as_bytes()).unwrap();
    let der_files = self::files(&pki, &pki.ca_pem(), Some(der.as_ref()), Duration::ZERO);
    assert!(as_client(&self::material(&der_files), &revoked).is_err());
}

/// A connection whose handshake was verified against the material before a reload that
/// revokes its certificate, tracked only after that reload closed the revoked connections:
/// tracking it closes it at once. A connection with a certificate not revoked stays open.
#[tokio::test]
async fn a_connection_tracked_after_a_reload_that_revoked_it_is_closed_at_once() {
    use tokio::io::AsyncReadExt as _;

    let pki = TestPki::new().unwrap();
    let (revoked_pem, revoked) = peer(&pki);
    let (_, other) = peer(&pki);
    let files = files(
        &pki,
        &pki.ca_pem(),
        Some(fresh(&pki, &[], 1).as_bytes()),
        Duration::ZERO,
    );
    let live = LiveTls::load(files.sources.clone(), County::parse("431322").unwrap()).unwrap();
    // the handshake: verified against the material of its moment
    let before = live.current();
    assert_eq!(as_client(&before, &revoked), Ok(()));
    // the reload lands before the connection is tracked: nothing to close yet
    std::fs::write(files.dir.path().join("crl"), fresh(&pki, &[&revoked_pem], 2)).unwrap();
    match live.reload(false) {
        ReloadOutcome::Reloaded { closed } => assert!(closed.is_empty()),
        outcome => panic!("reload: {outcome:?}"),
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connect = || async {
        let client = TcpStream::connect(address).await.unwrap();
        let (_server, _) = listener.accept().await.unwrap();
        (TrackedTcp::new(client), _server)
    };
    let (mut late, _late_server) = connect().await;
    let closed = live
        .connections()
        .track(&late, Role::PeerClient, vec![revoked.clone()])
        .expect("the revoked connection is closed when tracked");
    assert_eq!(closed.county, Some(County::parse("430703").unwrap()));
    let error = late.read(&mut [0u8; 1]).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);

    let (kept, _kept_server) = connect().await;
    assert!(
        live.connections()
            .track(&kept, Role::PeerClient, vec![other])
            .is_none()
    );
    assert!(!kept.switch.closed.load(Ordering::SeqCst));
    assert_eq!(live.connections().len(), 2);
}

#[test]
fn a_failed_reload_keeps_the_material_in_force_and_is_not_retried_by_the_watch() {
    let pki = TestPki::new().unwrap();
    let files = files(
        &pki,
        &pki.ca_pem(),
        Some(fresh(&pki, &[], 1).as_bytes()),
        Duration::ZERO,
    );
    let live = LiveTls::load(files.sources.clone(), County::parse("431322").unwrap()).unwrap();
    let before = live.current();
    assert!(matches!(live.reload(false), ReloadOutcome::Unchanged));
    std::fs::write(files.dir.path().join("crl"), "garbage").unwrap();
    assert!(matches!(live.reload(false), ReloadOutcome::Failed { .. }));
    assert!(matches!(live.reload(false), ReloadOutcome::StillFailing));
    assert!(matches!(live.reload(true), ReloadOutcome::Failed { .. }));
    assert!(Arc::ptr_eq(&before, &live.current()), "the old material stays");
    assert!(live.last_failure().is_some());
    std::fs::write(files.dir.path().join("crl"), fresh(&pki, &[], 2)).unwrap();
    assert!(matches!(live.reload(false), ReloadOutcome::Reloaded { .. }));
    assert!(live.last_failure().is_none());
}
