//! Signed agreements: a node applies a version only when every party's signature verifies
//! against its trust anchors, says precisely why when one does not, records the outcome, and
//! keeps a version in force once applied even when a signer's certificate expires later; the
//! anchors are those in force, so a CA added by a reload of the TLS material counts at once.

mod common;

use std::time::Duration;

use chrono::Utc;
use hancha::domain::agreement::{Agreement, Stage};
use hancha::domain::division::CountyCode;
use hancha::node::{InstallError, signature_table};
use hancha::tls::NodeIdentity;
use hancha::tls::dev::TestPki;
use hancha::tls::signing::{AGREEMENT_PURPOSE, sign};

use common::{
    Cluster, DINGCHENG, SHAODONG, XINHUA, eventually, open_agreement_version, sign_as, signer, signing_pki,
    unsigned,
};

const ID: &str = "430703-431322";
const VALID: (&str, &str) = ("2026-01-01", "2030-12-31");

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

/// Version `n` of the test agreement between 鼎城区 and 新化县 with no signature.
fn bare(n: u32) -> String {
    unsigned(&open_agreement_version(n, VALID))
}

async fn cluster() -> Cluster {
    Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement_version(1, VALID)]).await
}

/// Applies `text` on 鼎城区 as `agreement apply` does; returns why it was refused, after
/// checking nothing was written.
async fn refusal(cluster: &Cluster, text: &str) -> String {
    let node = cluster.node(DINGCHENG);
    let agreement = Agreement::parse(text).expect("the variant parses");
    let reason = match node.install_agreement(&agreement).await {
        Err(InstallError::Unsigned(unsigned)) => unsigned.to_string(),
        other => panic!("expected a refusal for its signatures, got {other:?}"),
    };
    let versions = node.store().installed_versions(ID).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1],
        "nothing written"
    );
    assert!(
        node.agreements()
            .with_peer(county(XINHUA))
            .all(|a| a.version() == 1),
        "nothing put in force"
    );
    reason
}

#[tokio::test]
async fn a_version_missing_a_partys_signature_is_refused_naming_the_party() {
    let cluster = cluster().await;
    let text = sign_as(&bare(2), &signer(DINGCHENG));
    let reason = refusal(&cluster, &text).await;
    assert_eq!(
        reason,
        "agreement 430703-431322 version 2 is not signed by every party: 431322 新化县 has not signed it \
         (`hancha agreement sign` with its certificate and key)"
    );
    let reason = refusal(&cluster, &bare(2)).await;
    assert!(
        reason.contains("430703 鼎城区 has not signed it")
            && reason.contains("431322 新化县 has not signed it"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_signature_by_a_county_that_is_not_a_party_is_refused() {
    let cluster = cluster().await;
    let text = sign_as(&bare(2), &signer(DINGCHENG));
    let agreement = Agreement::parse(&text).unwrap();
    // a valid signature over this very version, by 邵东市's certificate from a trusted CA
    let stranger = sign(&signer(SHAODONG), AGREEMENT_PURPOSE, agreement.signed_content()).unwrap();
    let text = format!("{text}\n{}", signature_table(&stranger));
    let reason = refusal(&cluster, &text).await;
    assert!(reason.contains("the signature by 430582 (line "), "{reason}");
    assert!(
        reason.contains("is not a party's: the parties are 430703 and 431322"),
        "{reason}"
    );
    assert!(reason.contains("431322 新化县 has not signed it"), "{reason}");
}

#[tokio::test]
async fn a_partys_signature_with_a_certificate_from_another_ca_is_refused() {
    let cluster = cluster().await;
    let foreign = TestPki::with_common_name("some other CA").unwrap();
    let xinhua_elsewhere = foreign.county_identity(XINHUA).unwrap();
    let text = sign_as(&sign_as(&bare(2), &signer(DINGCHENG)), &xinhua_elsewhere);
    let reason = refusal(&cluster, &text).await;
    assert!(
        reason.contains("the signature by 431322 (line ")
            && reason.contains(
                "is refused: the signer's certificate is not trusted here: it was not issued by a CA this \
                 node trusts"
            ),
        "{reason}"
    );
}

#[tokio::test]
async fn signatures_over_another_version_are_refused() {
    let cluster = cluster().await;
    // version 3 as both signed it; its signature tables pasted under version 2's terms
    let three = open_agreement_version(3, VALID);
    let tables = &three[unsigned(&three).len()..];
    let text = format!("{}{tables}", bare(2));
    let reason = refusal(&cluster, &text).await;
    assert!(
        reason.contains("the signature by 430703 (line ")
            && reason.contains("the signature by 431322 (line "),
        "{reason}"
    );
    assert!(
        reason.contains(
            "is refused: the signature does not match: it was made over other content (altered, or another \
             version) or by another key"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn a_file_altered_after_signing_is_refused() {
    let cluster = cluster().await;
    let signed = open_agreement_version(2, VALID);
    let tampered = signed.replacen("daily_cap = 20000", "daily_cap = 90000", 1);
    assert_ne!(tampered, signed);
    let reason = refusal(&cluster, &tampered).await;
    assert!(reason.contains("the signature does not match"), "{reason}");
    assert!(
        !reason.contains("has not signed"),
        "both signed, neither over these terms: {reason}"
    );
}

#[tokio::test]
async fn a_version_signed_by_both_parties_is_applied_recorded_and_used() {
    let cluster = cluster().await;
    let agreement = Agreement::parse(&open_agreement_version(2, VALID)).unwrap();
    for (code, peer) in [(DINGCHENG, XINHUA), (XINHUA, DINGCHENG)] {
        let installed = cluster
            .node(code)
            .install_agreement(&agreement)
            .await
            .expect("applied");
        assert!(installed.new_version);
        assert!(installed.warnings.is_empty(), "{:?}", installed.warnings);
        let recorded = cluster
            .node(code)
            .store()
            .agreement_signatures(ID, agreement.canonical_hash().as_str())
            .await
            .unwrap();
        let mut signers: Vec<String> = recorded.iter().map(|s| s.signer_county.to_string()).collect();
        signers.sort();
        assert_eq!(signers, vec![DINGCHENG, XINHUA]);
        assert!(
            recorded
                .iter()
                .all(|s| s.verified() && s.cert_fingerprint.len() == 64)
        );
        let _ = peer;
    }
    for (code, peer) in [(DINGCHENG, XINHUA), (XINHUA, DINGCHENG)] {
        eventually("messages go under the signed version 2", || async {
            let sending = cluster
                .node(code)
                .agreements()
                .sending_with(county(peer), Utc::now())
                .map(|a| a.version());
            (sending == Some(2)).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_version_stays_in_force_after_a_signers_certificate_expires() {
    let mut cluster = cluster().await;
    let now = Utc::now();
    let (cert, key) = signing_pki()
        .issue_county(
            XINHUA,
            now - chrono::Duration::hours(1),
            now + chrono::Duration::seconds(3),
        )
        .unwrap();
    let short_lived = NodeIdentity::from_pem(&cert, &key).unwrap();
    let text = sign_as(&sign_as(&bare(2), &signer(DINGCHENG)), &short_lived);
    let agreement = Agreement::parse(&text).unwrap();
    cluster
        .node(DINGCHENG)
        .install_agreement(&agreement)
        .await
        .expect("applied while the certificate was valid");

    tokio::time::sleep(Duration::from_secs(4)).await;
    // the certificate has expired (新化县 renewed it): checked afresh, the signature fails ...
    let report = cluster
        .node(DINGCHENG)
        .agreement_signatures()
        .examine(&agreement, Utc::now());
    assert!(report.verdict.is_err());
    // ... but the version was verified when applied: applying it again changes nothing, and it
    // is still held after a restart
    let again = cluster
        .node(DINGCHENG)
        .install_agreement(&agreement)
        .await
        .expect("no refusal");
    assert!(!again.new_version);
    cluster.stop(DINGCHENG).await;
    cluster.restart(DINGCHENG).await;
    let node = cluster.node(DINGCHENG);
    assert!(
        node.agreements()
            .with_peer(county(XINHUA))
            .any(|a| a.version() == 2),
        "version 2 still held after the restart"
    );
    let state = node.agreements().state_of(agreement.canonical_hash().as_str());
    assert!(!state.unsigned);
}

#[tokio::test]
async fn an_unsigned_version_installed_without_the_requirement_is_never_used_once_it_holds() {
    let mut cluster = cluster().await;
    cluster.stop(DINGCHENG).await;
    cluster
        .members
        .get_mut(DINGCHENG)
        .unwrap()
        .config
        .require_signatures = false;
    cluster.restart(DINGCHENG).await;
    let text = sign_as(&bare(2), &signer(DINGCHENG));
    let agreement = Agreement::parse(&text).unwrap();
    let installed = cluster
        .node(DINGCHENG)
        .install_agreement(&agreement)
        .await
        .expect("installed without the requirement");
    assert!(
        installed.warnings[0].contains("431322 新化县 has not signed it")
            && installed.warnings[0].contains("require_signatures is off"),
        "{:?}",
        installed.warnings
    );
    assert!(
        cluster
            .node(DINGCHENG)
            .agreements()
            .with_peer(county(XINHUA))
            .any(|a| a.version() == 2)
    );

    // signatures required again: version 2 is not loaded, never sent under
    cluster.stop(DINGCHENG).await;
    cluster
        .members
        .get_mut(DINGCHENG)
        .unwrap()
        .config
        .require_signatures = true;
    cluster.restart(DINGCHENG).await;
    let node = cluster.node(DINGCHENG);
    assert!(
        node.agreements()
            .with_peer(county(XINHUA))
            .all(|a| a.version() == 1)
    );
    assert_eq!(
        node.agreements()
            .sending_with(county(XINHUA), Utc::now())
            .map(|a| a.version()),
        Some(1)
    );
    let states = node.version_states().await.unwrap();
    let state = states[agreement.canonical_hash().as_str()];
    assert!(state.unsigned);
    assert_eq!(
        Stage::of(&agreement, state, hancha::node::china_date(Utc::now())),
        Stage::Unsigned
    );

    // the copy both signed completes it
    let signed = sign_as(&text, &signer(XINHUA));
    node.install_agreement(&Agreement::parse(&signed).unwrap())
        .await
        .expect("completed by the signed copy");
    assert!(
        node.agreements()
            .with_peer(county(XINHUA))
            .any(|a| a.version() == 2)
    );
    assert!(!node.version_states().await.unwrap()[agreement.canonical_hash().as_str()].unsigned);
}

#[tokio::test]
async fn signatures_are_checked_against_the_trust_anchors_in_force_after_a_reload() {
    let cluster = cluster().await;
    let foreign = TestPki::with_common_name("a CA trusted from today").unwrap();
    let text = sign_as(
        &sign_as(&bare(2), &signer(DINGCHENG)),
        &foreign.county_identity(XINHUA).unwrap(),
    );
    let reason = refusal(&cluster, &text).await;
    assert!(reason.contains("not issued by a CA this node trusts"), "{reason}");

    // 鼎城区 adds the CA to its trust anchors and reloads its TLS material, without a restart
    let anchors_file = &cluster.members[DINGCHENG].config.tls.trust_anchors;
    let mut anchors = std::fs::read_to_string(anchors_file).unwrap();
    anchors.push_str(&foreign.ca_pem());
    std::fs::write(anchors_file, anchors).unwrap();
    let running = cluster.members[DINGCHENG].running.as_ref().expect("running");
    let outcome = running.reload_tls(true).await;
    assert!(
        matches!(outcome, hancha::tls::ReloadOutcome::Reloaded { .. }),
        "{outcome:?}"
    );
    let installed = cluster
        .node(DINGCHENG)
        .install_agreement(&Agreement::parse(&text).unwrap())
        .await
        .expect("applied: the signature verifies against the anchors in force");
    assert!(installed.new_version);
}

#[tokio::test]
async fn a_signature_made_with_a_revoked_certificate_is_refused_naming_the_revocation() {
    let mut cluster = cluster().await;
    let now = Utc::now();
    // 新化县's key was stolen: its signing CA revokes the certificate, and 鼎城区 lists that
    // CA's CRL in tls.crls
    let (cert, key) = signing_pki()
        .issue_county(
            XINHUA,
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(1),
        )
        .unwrap();
    let stolen = NodeIdentity::from_pem(&cert, &key).unwrap();
    let crl = cluster.path().join("signers.crl");
    std::fs::write(
        &crl,
        signing_pki()
            .crl_pem(
                &[&cert],
                now - chrono::Duration::days(1),
                now + chrono::Duration::days(1),
                1,
            )
            .unwrap(),
    )
    .unwrap();
    cluster.stop(DINGCHENG).await;
    cluster.members.get_mut(DINGCHENG).unwrap().config.tls.crls = vec![crl];
    cluster.restart(DINGCHENG).await;

    let text = sign_as(&sign_as(&bare(2), &signer(DINGCHENG)), &stolen);
    let reason = refusal(&cluster, &text).await;
    assert!(reason.contains(XINHUA), "{reason}");
    assert!(
        reason.contains("the signer's certificate is not trusted here: it is revoked"),
        "{reason}"
    );

    // a party's certificate that the CRL does not list still signs
    let installed = cluster
        .node(DINGCHENG)
        .install_agreement(
            &Agreement::parse(&sign_as(&sign_as(&bare(2), &signer(DINGCHENG)), &signer(XINHUA))).unwrap(),
        )
        .await
        .expect("applied: a certificate the CRL does not list");
    assert!(installed.new_version);
}
