use super::*;
use crate::tls::dev::TestPki;
use chrono::Duration;

const HASH: &[u8] = b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn anchors(pki: &TestPki) -> TrustAnchors {
    TrustAnchors::from_pem(&pki.ca_pem()).unwrap()
}

#[test]
fn a_signature_verifies_and_names_its_county() {
    let pki = TestPki::new().unwrap();
    let identity = pki.county_identity("430703").unwrap();
    let signature = sign(&identity, AGREEMENT_PURPOSE, HASH).unwrap();
    assert_eq!(signature.algorithm, Algorithm::EcdsaP256Sha256);
    let verified = verify(&signature, AGREEMENT_PURPOSE, HASH, &anchors(&pki), Utc::now()).unwrap();
    assert_eq!(verified.county.as_str(), "430703");
    assert_eq!(verified.fingerprint.len(), 64);
}

/// The anchors of `pki` with one CRL file in force, `grace` after its `nextUpdate`.
fn anchors_with_crl(pki: &TestPki, crl: &str, grace: std::time::Duration) -> TrustAnchors {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.crl");
    std::fs::write(&path, crl).unwrap();
    let revocation = crate::tls::Revocation::from_files(&[path], grace).unwrap();
    anchors(pki).with_revocation(revocation)
}

#[test]
fn a_signature_by_a_revoked_certificate_is_refused_others_are_not() {
    let pki = TestPki::new().unwrap();
    let stolen = sign(&pki.county_identity("430703").unwrap(), AGREEMENT_PURPOSE, HASH).unwrap();
    let other = sign(&pki.county_identity("431322").unwrap(), AGREEMENT_PURPOSE, HASH).unwrap();
    let now = Utc::now();
    let crl = pki
        .crl_pem(
            &[&stolen.certificate_pem()],
            now - Duration::days(1),
            now + Duration::days(1),
            1,
        )
        .unwrap();
    let anchors = anchors_with_crl(&pki, &crl, std::time::Duration::ZERO);
    match verify(&stolen, AGREEMENT_PURPOSE, HASH, &anchors, now) {
        Err(VerifyError::Untrusted { reason }) => assert!(reason.contains("revoked"), "{reason}"),
        other => panic!("a revoked certificate's signature verified: {other:?}"),
    }
    assert!(verify(&other, AGREEMENT_PURPOSE, HASH, &anchors, now).is_ok());
    // without the CRL (the anchors alone) the same signature verifies: the CRL decides
    assert!(verify(&stolen, AGREEMENT_PURPOSE, HASH, &self::anchors(&pki), now).is_ok());
}

#[test]
fn a_crl_past_next_update_and_grace_refuses_its_cas_signatures() {
    let pki = TestPki::new().unwrap();
    let signature = sign(&pki.county_identity("430703").unwrap(), AGREEMENT_PURPOSE, HASH).unwrap();
    let now = Utc::now();
    let stale = pki
        .crl_pem(&[], now - Duration::days(3), now - Duration::hours(2), 1)
        .unwrap();
    let within_grace = anchors_with_crl(&pki, &stale, std::time::Duration::from_secs(3 * 3600));
    assert!(verify(&signature, AGREEMENT_PURPOSE, HASH, &within_grace, now).is_ok());
    let past_grace = anchors_with_crl(&pki, &stale, std::time::Duration::from_secs(3600));
    match verify(&signature, AGREEMENT_PURPOSE, HASH, &past_grace, now) {
        Err(VerifyError::Untrusted { reason }) => assert!(reason.contains("out of date"), "{reason}"),
        other => panic!("a stale CRL was used: {other:?}"),
    }
}

#[test]
fn a_signature_survives_its_text_form() {
    let pki = TestPki::new().unwrap();
    let identity = pki.county_identity("430582").unwrap();
    let signature = sign(&identity, AGREEMENT_PURPOSE, HASH).unwrap();
    let read = Signature::from_text(
        "430582",
        signature.signed_at,
        signature.algorithm.as_str(),
        &signature.certificate_pem(),
        &signature.value_base64(),
    )
    .unwrap();
    assert_eq!(read, signature);
    assert!(verify(&read, AGREEMENT_PURPOSE, HASH, &anchors(&pki), Utc::now()).is_ok());
}

#[test]
fn a_signature_for_another_purpose_or_content_does_not_match() {
    let pki = TestPki::new().unwrap();
    let identity = pki.county_identity("430703").unwrap();
    let signature = sign(&identity, AUDIT_CHECKPOINT_PURPOSE, HASH).unwrap();
    let anchors = anchors(&pki);
    assert_eq!(
        verify(&signature, AGREEMENT_PURPOSE, HASH, &anchors, Utc::now()),
        Err(VerifyError::Mismatch)
    );
    let signature = sign(&identity, AGREEMENT_PURPOSE, HASH).unwrap();
    assert_eq!(
        verify(
            &signature,
            AGREEMENT_PURPOSE,
            b"another hash",
            &anchors,
            Utc::now()
        ),
        Err(VerifyError::Mismatch)
    );
    let mut moved = signature.clone();
    moved.signed_at -= Duration::minutes(1);
    assert_eq!(
        verify(&moved, AGREEMENT_PURPOSE, HASH, &anchors, Utc::now()),
        Err(VerifyError::Mismatch),
        "the signing time is signed too"
    );
}

#[test]
fn a_certificate_from_another_ca_is_not_trusted() {
    let ours = TestPki::new().unwrap();
    let theirs = TestPki::new().unwrap();
    let identity = theirs.county_identity("430703").unwrap();
    let signature = sign(&identity, AGREEMENT_PURPOSE, HASH).unwrap();
    let refusal = verify(&signature, AGREEMENT_PURPOSE, HASH, &anchors(&ours), Utc::now()).unwrap_err();
    assert!(
        refusal
            .to_string()
            .contains("not issued by a CA this node trusts"),
        "{refusal}"
    );
}

#[test]
fn a_county_stated_against_its_certificate_is_refused() {
    let pki = TestPki::new().unwrap();
    let identity = pki.county_identity("430703").unwrap();
    let mut signature = sign(&identity, AGREEMENT_PURPOSE, HASH).unwrap();
    signature.signer = County::parse("431322").unwrap();
    let refusal = verify(&signature, AGREEMENT_PURPOSE, HASH, &anchors(&pki), Utc::now()).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "the signature says it is by 431322, but its certificate is 430703's"
    );
}

#[test]
fn signing_times_outside_the_certificate_or_in_the_future_are_refused() {
    let pki = TestPki::new().unwrap();
    let identity = pki.county_identity("430703").unwrap();
    let anchors = anchors(&pki);
    let before = sign_at(&identity, AGREEMENT_PURPOSE, HASH, Utc::now() - Duration::days(3)).unwrap();
    assert!(matches!(
        verify(&before, AGREEMENT_PURPOSE, HASH, &anchors, Utc::now()),
        Err(VerifyError::SignedOutsideValidity { .. })
    ));
    let ahead = sign_at(
        &identity,
        AGREEMENT_PURPOSE,
        HASH,
        Utc::now() + Duration::hours(1),
    )
    .unwrap();
    assert!(matches!(
        verify(&ahead, AGREEMENT_PURPOSE, HASH, &anchors, Utc::now()),
        Err(VerifyError::SignedInFuture { .. })
    ));
}

#[test]
fn an_expired_certificate_is_refused_at_verification() {
    let pki = TestPki::new().unwrap();
    let now = Utc::now();
    let (cert, key) = pki
        .issue_county("430703", now - Duration::days(10), now - Duration::days(1))
        .unwrap();
    let identity = NodeIdentity::from_pem(&cert, &key).unwrap();
    let signature = sign_at(&identity, AGREEMENT_PURPOSE, HASH, now - Duration::days(5)).unwrap();
    let refusal = verify(&signature, AGREEMENT_PURPOSE, HASH, &anchors(&pki), now).unwrap_err();
    assert!(refusal.to_string().contains("has expired"), "{refusal}");
    // verified while it was valid, it was good
    assert!(
        verify(
            &signature,
            AGREEMENT_PURPOSE,
            HASH,
            &anchors(&pki),
            now - Duration::days(4)
        )
        .is_ok()
    );
}

#[test]
fn a_certificate_chain_survives_its_concatenated_der_form() {
    let pki = TestPki::new().unwrap();
    let identity = pki.county_identity("430703").unwrap();
    let mut signature = sign(&identity, AUDIT_RESUME_PURPOSE, HASH).unwrap();
    signature
        .certificates
        .push(CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).unwrap());
    let joined = signature.certificates_der();
    assert_eq!(
        certificates_from_der(&joined),
        Some(signature.certificates.clone())
    );
    assert_eq!(certificates_from_der(&joined[..joined.len() - 1]), None);
    assert_eq!(certificates_from_der(b""), None);
    assert_eq!(certificates_from_der(b"\x04\x01x"), None);
}

#[test]
fn a_malformed_purpose_is_refused() {
    let pki = TestPki::new().unwrap();
    let identity = pki.county_identity("430703").unwrap();
    for purpose in ["", "\n", "no newline", "two\nlines\n"] {
        assert!(matches!(
            sign(&identity, purpose, HASH),
            Err(SignError::Purpose(PurposeError))
        ));
    }
}

#[test]
fn text_that_is_not_a_signature_is_refused() {
    let now = Utc::now();
    assert!(matches!(
        Signature::from_text("4307", now, "ed25519", "", ""),
        Err(SignatureFormatError::County(_))
    ));
    assert!(matches!(
        Signature::from_text("430703", now, "md5", "", ""),
        Err(SignatureFormatError::Algorithm { .. })
    ));
    assert!(matches!(
        Signature::from_text("430703", now, "ed25519", "no pem", ""),
        Err(SignatureFormatError::Certificate)
    ));
}
