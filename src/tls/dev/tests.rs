use super::*;
use crate::tls::{TrustAnchors, county_from_certificate};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[test]
fn generates_loadable_development_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let written = generate_dev_certs(dir.path(), &["430703", "431322"]).unwrap();
    assert_eq!(written.len(), 12);

    let identity =
        NodeIdentity::from_pem_files(&dir.path().join("431322.pem"), &dir.path().join("431322-key.pem"))
            .unwrap();
    assert_eq!(identity.county().as_str(), "431322");
    assert_eq!(
        TrustAnchors::from_pem_file(&dir.path().join("ca.pem"))
            .unwrap()
            .len(),
        1
    );

    let operator_pem = fs::read_to_string(dir.path().join("operator.pem")).unwrap();
    let operator_der = CertificateDer::from_pem_slice(operator_pem.as_bytes()).unwrap();
    assert_eq!(
        county_from_certificate(&operator_der),
        Err(IdentityError::NoCounty),
        "an operator certificate must never pass as a county"
    );
}

#[test]
fn reissues_a_county_certificate_from_an_existing_development_ca() {
    let dir = tempfile::tempdir().unwrap();
    generate_dev_certs(dir.path(), &["430582"]).unwrap();
    let read = |file: &str| fs::read_to_string(dir.path().join(file)).unwrap();
    let now = Utc::now();
    let (cert, key) = issue_dev_county(
        &read("ca.pem"),
        &read("ca-key.pem"),
        "430582",
        now - Duration::hours(1),
        now + Duration::days(365),
    )
    .unwrap();
    assert_ne!(cert, read("430582.pem"), "a new certificate");
    let identity = NodeIdentity::from_pem(&cert, &key).unwrap();
    assert_eq!(identity.county().as_str(), "430582");
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    let ca = CertificateDer::from_pem_slice(read("ca.pem").as_bytes()).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
    assert_eq!(parsed.issuer(), ca.subject(), "issued by the existing CA");
    let anchors = TrustAnchors::from_pem(&read("ca.pem")).unwrap();
    crate::tls::client_config(&identity, &anchors, County::parse("430703").unwrap())
        .expect("usable as a node identity");
}

#[test]
fn issues_a_township_operator_from_the_development_operator_ca() {
    let dir = tempfile::tempdir().unwrap();
    generate_dev_certs(dir.path(), &["430703"]).unwrap();
    let (cert, key) = issue_dev_operator(dir.path(), "yuxia", Some("430703101")).unwrap();
    assert_eq!(cert, dir.path().join("operator-yuxia.pem"));
    assert_eq!(key, dir.path().join("operator-yuxia-key.pem"));
    let pem = fs::read_to_string(&cert).unwrap();
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let identity = crate::tls::operator_from_certificate(&der).unwrap();
    assert_eq!(identity.name, "yuxia");
    assert_eq!(identity.township.as_deref(), Some("430703101"));
    assert!(
        NodeIdentity::from_pem_files(&cert, &key).is_err(),
        "names no county"
    );
}

#[test]
fn revoking_adds_to_the_issuing_cas_list_once_and_keeps_what_it_held() {
    use x509_parser::revocation_list::CertificateRevocationList;
    let dir = tempfile::tempdir().unwrap();
    generate_dev_certs(dir.path(), &["430703", "431322"]).unwrap();
    let serials = |file: &str| {
        let pem = fs::read_to_string(dir.path().join(file)).unwrap();
        let der = <rustls::pki_types::CertificateRevocationListDer<'_> as PemObject>::from_pem_slice(
            pem.as_bytes(),
        )
        .unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        let number = crl.crl_number().map(ToString::to_string).unwrap_or_default();
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| hex::encode(r.raw_serial()))
            .collect();
        (serials, number)
    };
    assert_eq!(serials(COUNTY_CRL), (vec![], "1".to_string()));
    let first = revoke_dev(dir.path(), &[dir.path().join("431322.pem")], Duration::days(7)).unwrap();
    assert_eq!(first.crls, vec![dir.path().join(COUNTY_CRL)]);
    let serial_431322 = first.revoked[0].1.clone();
    assert_eq!(
        serials(COUNTY_CRL),
        (vec![serial_431322.clone()], "2".to_string())
    );
    let second = revoke_dev(
        dir.path(),
        &[
            dir.path().join("431322.pem"),
            dir.path().join("430703.pem"),
            dir.path().join("operator.pem"),
        ],
        Duration::days(7),
    )
    .unwrap();
    assert_eq!(second.crls.len(), 2);
    let (county, number) = serials(COUNTY_CRL);
    assert_eq!(number, "3");
    assert_eq!(county.len(), 2, "431322 once, and 430703");
    assert!(county.contains(&serial_431322));
    assert_eq!(serials(OPERATOR_CRL).0.len(), 1);
    let refused = revoke_dev(dir.path(), &[dir.path().join("ca.pem")], Duration::days(7));
    assert!(matches!(refused, Err(DevCertError::Revoke { .. })), "{refused:?}");
    let foreign = TestPki::new().unwrap();
    let now = Utc::now();
    let (cert, _) = foreign
        .issue_county("430703", now, now + Duration::days(1))
        .unwrap();
    fs::write(dir.path().join("foreign.pem"), cert).unwrap();
    let refused = revoke_dev(dir.path(), &[dir.path().join("foreign.pem")], Duration::days(7));
    assert!(matches!(refused, Err(DevCertError::Revoke { .. })), "{refused:?}");
}

#[test]
fn refuses_malformed_county_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("certs");
    let result = generate_dev_certs(&target, &["430703", "4307"]);
    assert!(matches!(result, Err(DevCertError::County(_))));
    assert!(!target.exists());
}
