//! What a peer sees when the exchange refuses it, and what the refusing node keeps: every refusal
//! has its precise gRPC code, leaves an audit record, and stores nothing else — from connections
//! refused during the TLS handshake to single inquiries over the daily cap.

mod common;

use chrono::{Duration as TimeDelta, Utc};
use common::*;
use hancha::config::Limits;
use hancha::domain::resident_id::ResidentId;
use hancha::node::Node;
use hancha::proto::exchange as pb;
use hancha::store::audit::AuditEntry;
use hancha::tls::dev::TestPki;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// The id of the test agreement between `a` and `b` (as `agreement_toml` names it).
fn agreement_id(a: &str, b: &str) -> String {
    format!("{a}-{b}")
}

/// A well-formed certificate verification inquiry under `agreement` (`(id, hash)`).
fn inquiry_under(agreement: (&str, &str), subject: &ResidentId) -> pb::Inquiry {
    pb::Inquiry {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            id: agreement.0.to_string(),
            hash: agreement.1.to_string(),
        }),
        kind: pb::InquiryKind::CertificateVerification as i32,
        priority: pb::Priority::Normal as i32,
        subject: Some(pb::Subject {
            resident_id: subject.as_str().to_string(),
            certificate_number: String::new(),
        }),
    }
}

/// A well-formed inquiry from `asker` to `responder` under the agreement the responder holds.
fn inquiry(cluster: &Cluster, asker: &str, responder: &str, n: u32) -> pb::Inquiry {
    let id = agreement_id(asker.min(responder), asker.max(responder));
    let hash = cluster.agreement_hash(responder, &id);
    inquiry_under((&id, &hash), &synthetic_id(responder, n))
}

/// Sends one batch over `SubmitInquiries` and collects every receipt, or the stream's error.
async fn submit_batch(
    client: &mut pb::exchange_client::ExchangeClient<Channel>,
    inquiries: Vec<pb::Inquiry>,
) -> Result<Vec<pb::Receipt>, tonic::Status> {
    let request = tokio_stream::iter(vec![pb::InquiryBatch {
        inquiries,
        ..Default::default()
    }]);
    let mut stream = client.submit_inquiries(request).await?.into_inner();
    let mut receipts = Vec::new();
    while let Some(batch) = stream.message().await? {
        receipts.extend(batch.receipts);
    }
    Ok(receipts)
}

/// Sends one inquiry over `SubmitInquiry` without waiting for an answer.
async fn submit_one(
    client: &mut pb::exchange_client::ExchangeClient<Channel>,
    inquiry: pb::Inquiry,
) -> Result<pb::SubmitInquiryResponse, tonic::Status> {
    client
        .submit_inquiry(pb::SubmitInquiryRequest {
            inquiry: Some(inquiry),
            wait_ms: 0,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The only rejection of a message audited on `node` (a status exchange the nodes themselves
/// refused while one side held no agreement yet is not one).
async fn the_audited_rejection(node: &Node) -> AuditEntry {
    let mut rejections: Vec<AuditEntry> = audited_rejections(node)
        .await
        .into_iter()
        .filter(|entry| entry.kind.as_deref() != Some("peer_status"))
        .collect();
    assert_eq!(rejections.len(), 1, "{rejections:#?}");
    rejections.remove(0)
}

async fn stored_inquiries(node: &Node) -> i64 {
    count(node, "SELECT count(*) FROM inquiries").await
}

// === refused during the TLS handshake ===

#[tokio::test]
async fn rejects_client_without_certificate_during_the_handshake_and_audits_it() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;
    let config = raw_tls_client(&cluster.pki.ca_pem(), &[&rustls::version::TLS13], None);

    let (client, error) = raw_tls_attempt(cluster.address(XINHUA), config).await;

    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateRequired),
        "{error}"
    );
    let entry = cluster.handshake_audit(XINHUA, client).await;
    assert_eq!(entry.peer_county, None);
    assert_eq!(entry.direction, "inbound");
    assert!(
        entry.reason.as_deref().unwrap().contains("no certificates"),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(cluster.node(XINHUA)).await, 0);
}

#[tokio::test]
async fn rejects_client_certificate_from_another_ca_during_the_handshake_and_audits_it() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;
    let now = Utc::now();
    // A CA nobody here trusts, and one that even copies the trusted CA's name.
    let cases = [
        (
            TestPki::with_common_name("another province's CA").unwrap(),
            rustls::AlertDescription::UnknownCA,
            "UnknownIssuer",
        ),
        (
            TestPki::new().unwrap(),
            rustls::AlertDescription::DecryptError,
            "BadSignature",
        ),
    ];
    for (foreign_ca, alert, reason) in cases {
        let (cert, key) = foreign_ca
            .issue_county(DINGCHENG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
            .unwrap();
        let config = raw_tls_client(
            &cluster.pki.ca_pem(),
            &[&rustls::version::TLS13],
            Some((&cert, &key)),
        );

        let (client, error) = raw_tls_attempt(cluster.address(XINHUA), config).await;

        assert_eq!(rustls_alert(&error), Some(alert), "{error}");
        let entry = cluster.handshake_audit(XINHUA, client).await;
        assert_eq!(entry.peer_county, None, "an unverified certificate names nobody");
        assert!(entry.reason.as_deref().unwrap().contains(reason), "{entry:?}");
    }
    assert_eq!(audited_rejections(cluster.node(XINHUA)).await.len(), 2);
    assert_eq!(stored_inquiries(cluster.node(XINHUA)).await, 0);
}

#[tokio::test]
async fn rejects_expired_client_certificate_during_the_handshake_and_audits_it() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;
    let now = Utc::now();
    let (cert, key) = cluster
        .pki
        .issue_county(DINGCHENG, now - TimeDelta::days(400), now - TimeDelta::days(1))
        .unwrap();
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS13],
        Some((&cert, &key)),
    );

    let (client, error) = raw_tls_attempt(cluster.address(XINHUA), config).await;

    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateExpired),
        "{error}"
    );
    let entry = cluster.handshake_audit(XINHUA, client).await;
    assert_eq!(entry.peer_county, None);
    assert!(entry.reason.as_deref().unwrap().contains("expired"), "{entry:?}");
    assert_eq!(stored_inquiries(cluster.node(XINHUA)).await, 0);
}

#[tokio::test]
async fn rejects_plaintext_connection_and_audits_it() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;

    let client = plaintext_attempt(cluster.address(XINHUA)).await;

    let entry = cluster.handshake_audit(XINHUA, client).await;
    assert_eq!(entry.peer_county, None);
    assert!(
        entry.reason.as_deref().unwrap().contains("corrupt message"),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(cluster.node(XINHUA)).await, 0);
}

#[tokio::test]
async fn rejects_tls12_connection_and_audits_it() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;
    let now = Utc::now();
    let (cert, key) = cluster
        .pki
        .issue_county(DINGCHENG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS12],
        Some((&cert, &key)),
    );

    let (client, error) = raw_tls_attempt(cluster.address(XINHUA), config).await;

    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::ProtocolVersion),
        "{error}"
    );
    let entry = cluster.handshake_audit(XINHUA, client).await;
    assert_eq!(entry.peer_county, None);
    assert!(
        entry.reason.as_deref().unwrap().contains("incompatible"),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(cluster.node(XINHUA)).await, 0);
}

#[tokio::test]
async fn client_that_connects_and_leaves_is_not_audited() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;

    drop(
        tokio::net::TcpStream::connect(cluster.address(XINHUA))
            .await
            .unwrap(),
    );
    // A refused handshake afterwards, so the test knows the listener has handled both.
    let (client, _) = raw_tls_attempt(
        cluster.address(XINHUA),
        raw_tls_client(&cluster.pki.ca_pem(), &[&rustls::version::TLS13], None),
    )
    .await;
    cluster.handshake_audit(XINHUA, client).await;

    let rejections = audited_rejections(cluster.node(XINHUA)).await;
    assert_eq!(rejections.len(), 1, "only the refused handshake: {rejections:#?}");
}

// === refused by the agreement ===

#[tokio::test]
async fn rejects_inquiry_under_an_agreement_the_caller_is_not_party_to() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let responder = cluster.node(XINHUA);
    // 邵东市's own, valid certificate, naming the agreement between 鼎城区 and 新化县.
    let mut client = cluster.client(SHAODONG, XINHUA).await;
    let id = agreement_id(DINGCHENG, XINHUA);
    let hash = cluster.agreement_hash(XINHUA, &id);
    let sent = inquiry_under((&id, &hash), &synthetic_id(XINHUA, 1));

    let status = submit_one(&mut client, sent.clone()).await.unwrap_err();

    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("430582 is not a party"), "{status:?}");
    let entry = the_audited_rejection(responder).await;
    assert_eq!(
        entry.peer_county.as_deref(),
        Some(SHAODONG),
        "from the certificate"
    );
    assert_eq!(entry.direction, "inbound");
    assert_eq!(entry.message_id, Some(sent.message_id.parse().unwrap()));
    assert_eq!(entry.kind.as_deref(), Some("certificate_verification"));
    assert_eq!(entry.agreement_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        entry.reason.as_deref(),
        Some("PERMISSION_DENIED: 430582 is not a party to this agreement")
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn rejects_peer_without_agreement() {
    let cluster = Cluster::start(
        &[DINGCHENG, SHAODONG, XINHUA],
        &[open_agreement(DINGCHENG, XINHUA)],
    )
    .await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(SHAODONG, XINHUA).await;
    let made_up = agreement_id(SHAODONG, XINHUA);
    let sent = inquiry_under((&made_up, &"ab".repeat(32)), &synthetic_id(XINHUA, 2));

    let receipts = submit_batch(&mut client, vec![sent.clone()]).await.unwrap();

    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].message_id, sent.message_id);
    let refusal = rejected(&receipts[0]);
    assert_eq!(refusal.code, Code::PermissionDenied as i32, "{refusal:?}");
    assert_eq!(refusal.reason, "the agreement named is not held by 431322");
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.peer_county.as_deref(), Some(SHAODONG));
    assert_eq!(entry.message_id, Some(sent.message_id.parse().unwrap()));
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .starts_with("PERMISSION_DENIED: the agreement named is not held"),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn rejects_inquiry_under_an_expired_agreement() {
    let expired = open_agreement_version(1, ("2024-01-01", "2025-12-31"));
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], std::slice::from_ref(&expired)).await;
    cluster.install_as_once_valid(&expired).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;

    let status = submit_one(&mut client, inquiry(&cluster, DINGCHENG, XINHUA, 3))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("expired after 2025-12-31"),
        "{status:?}"
    );
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.peer_county.as_deref(), Some(DINGCHENG));
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .starts_with("PERMISSION_DENIED: ")
            && entry.reason.as_deref().unwrap().contains("expired"),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn an_expired_version_while_a_newer_one_is_in_force_is_a_version_mismatch_not_a_refusal() {
    let expired = open_agreement_version(1, ("2024-01-01", "2025-12-31"));
    let current = open_agreement_version(2, ("2026-01-01", "2030-12-31"));
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], std::slice::from_ref(&current)).await;
    cluster.install_as_once_valid(&expired).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let old = hancha::domain::agreement::Agreement::parse(&expired).unwrap();
    let id = agreement_id(DINGCHENG, XINHUA);

    let status = submit_one(
        &mut client,
        inquiry_under((&id, old.canonical_hash().as_str()), &synthetic_id(XINHUA, 4)),
    )
    .await
    .unwrap_err();

    // the sender holds the message and sends it again under version 2: never refused for good
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status
            .message()
            .contains("version 1: the agreement expired after 2025-12-31")
            && status.message().contains("holds version 2"),
        "{status:?}"
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn a_county_without_an_agreement_learns_nothing_from_peer_status() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let mut stranger = cluster.client(SHAODONG, XINHUA).await;
    let status = stranger
        .peer_status(pb::PeerStatusRequest {
            status: Some(pb::NodeStatus {
                agreement_versions: vec![],
                software_version: "hancha 0.1.0".into(),
                clock: Some(pbjson_types::Timestamp {
                    seconds: Utc::now().timestamp(),
                    nanos: 0,
                }),
                audit: None,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let refused: Vec<AuditEntry> = audited_rejections(cluster.node(XINHUA))
        .await
        .into_iter()
        .filter(|entry| entry.peer_county.as_deref() == Some(SHAODONG))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].kind.as_deref(), Some("peer_status"));
    assert_eq!(
        count(
            cluster.node(XINHUA),
            &format!("SELECT count(*) FROM peer_status WHERE peer_county = '{SHAODONG}'")
        )
        .await,
        0,
        "nothing recorded"
    );
}

#[tokio::test]
async fn rejects_inquiry_kind_the_direction_does_not_allow() {
    let outflow_only = Terms {
        inquiry_kinds: &["outflow_status"],
        ..Terms::default()
    };
    let agreement = agreement_toml(
        DINGCHENG,
        XINHUA,
        1,
        ("2026-01-01", "2030-12-31"),
        &outflow_only,
        &Terms::default(),
    );
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let sent = inquiry(&cluster, DINGCHENG, XINHUA, 4);
    assert_eq!(sent.kind, pb::InquiryKind::CertificateVerification as i32);

    let receipts = submit_batch(&mut client, vec![sent]).await.unwrap();

    let refusal = rejected(&receipts[0]);
    assert_eq!(refusal.code, Code::PermissionDenied as i32, "{refusal:?}");
    assert!(
        refusal.reason.contains("does not allow certificate_verification")
            && refusal.reason.contains("allowed: outflow_status"),
        "{refusal:?}"
    );
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.peer_county.as_deref(), Some(DINGCHENG));
    assert_eq!(entry.kind.as_deref(), Some("certificate_verification"));
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .starts_with("PERMISSION_DENIED: "),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn rejects_agreement_hash_mismatch_naming_both_versions() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let id = agreement_id(DINGCHENG, XINHUA);
    let held = cluster.agreement_hash(XINHUA, &id);
    let other = "0123456789abcdef".repeat(4);
    assert_ne!(held, other);
    let sent = inquiry_under((&id, &other), &synthetic_id(XINHUA, 5));

    let receipts = submit_batch(&mut client, vec![sent.clone()]).await.unwrap();

    let refusal = rejected(&receipts[0]);
    assert_eq!(refusal.code, Code::FailedPrecondition as i32, "{refusal:?}");
    assert_eq!(
        refusal.reason,
        format!(
            "agreement {id}: the message names an unknown version ({}), this node holds version 1 ({})",
            &other[..12],
            &held[..12]
        )
    );
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.agreement_hash.as_deref(), Some(other.as_str()));
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .starts_with("FAILED_PRECONDITION: "),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn rejects_inquiries_over_the_daily_cap() {
    let capped = Terms {
        daily_cap: 3,
        automatic_answers: false,
        ..Terms::default()
    };
    let agreement = agreement_toml(
        DINGCHENG,
        XINHUA,
        1,
        ("2026-01-01", "2030-12-31"),
        &capped,
        &Terms::default(),
    );
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let sent: Vec<pb::Inquiry> = (10..15)
        .map(|n| inquiry(&cluster, DINGCHENG, XINHUA, n))
        .collect();

    let receipts = submit_batch(&mut client, sent.clone()).await.unwrap();

    assert_eq!(receipts.len(), 5);
    for receipt in &receipts[..3] {
        accepted(receipt);
    }
    for receipt in &receipts[3..] {
        let refusal = rejected(receipt);
        assert_eq!(refusal.code, Code::ResourceExhausted as i32, "{refusal:?}");
        assert!(refusal.reason.contains("daily cap of 3"), "{refusal:?}");
    }
    let rejections = audited_rejections(responder).await;
    assert_eq!(rejections.len(), 2, "{rejections:#?}");
    for (entry, wire) in rejections.iter().zip(&sent[3..]) {
        assert_eq!(entry.message_id, Some(wire.message_id.parse().unwrap()));
        assert_eq!(entry.peer_county.as_deref(), Some(DINGCHENG));
        assert!(
            entry
                .reason
                .as_deref()
                .unwrap()
                .starts_with("RESOURCE_EXHAUSTED: "),
            "{entry:?}"
        );
    }
    assert_eq!(stored_inquiries(responder).await, 3);
}

// === refused as malformed ===

#[tokio::test]
async fn rejects_malformed_resident_id_without_echoing_it() {
    const BAD_ID: &str = "110105194912310021";
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let mut sent = inquiry(&cluster, DINGCHENG, XINHUA, 6);
    sent.subject.as_mut().unwrap().resident_id = BAD_ID.into();

    let status = submit_one(&mut client, sent.clone()).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad_request = status.get_details_bad_request().expect("BadRequest details");
    assert_eq!(bad_request.field_violations.len(), 1, "{bad_request:?}");
    let violation = &bad_request.field_violations[0];
    assert_eq!(violation.field, "inquiry.subject.resident_id");
    assert!(
        violation
            .description
            .contains("check character (character 18) does not match"),
        "{violation:?}"
    );
    assert!(
        !violation.description.contains('X'),
        "not even the check character the number calls for: {violation:?}"
    );
    assert!(!status.message().contains(BAD_ID), "{status:?}");
    assert!(
        !String::from_utf8_lossy(status.details()).contains(&BAD_ID[..17]),
        "the details echo the ID number"
    );
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.message_id, Some(sent.message_id.parse().unwrap()));
    assert_eq!(
        entry.reason.as_deref(),
        Some("INVALID_ARGUMENT: invalid fields: inquiry.subject.resident_id")
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn rejects_unknown_inquiry_kind_value() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let mut sent = inquiry(&cluster, DINGCHENG, XINHUA, 7);
    sent.kind = 99;

    let status = submit_one(&mut client, sent).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad_request = status.get_details_bad_request().expect("BadRequest details");
    let fields: Vec<(&str, &str)> = bad_request
        .field_violations
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    assert_eq!(fields, [("inquiry.kind", "unknown value 99")]);
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.peer_county.as_deref(), Some(DINGCHENG));
    assert!(
        entry.reason.as_deref().unwrap().starts_with("INVALID_ARGUMENT: "),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

// === refused for size ===

fn small_limits() -> Limits {
    Limits {
        max_batch_messages: 10,
        batch_size: 10,
        max_message_bytes: 64 * 1024,
        retry_initial: std::time::Duration::from_millis(50),
        retry_max: std::time::Duration::from_millis(500),
        poll_interval: std::time::Duration::from_millis(100),
        ..Limits::default()
    }
}

#[tokio::test]
async fn rejects_batch_with_more_messages_than_the_limit() {
    let cluster = Cluster::start_with(
        &[DINGCHENG, XINHUA],
        &[open_agreement(DINGCHENG, XINHUA)],
        small_limits(),
    )
    .await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let sent: Vec<pb::Inquiry> = (20..31)
        .map(|n| inquiry(&cluster, DINGCHENG, XINHUA, n))
        .collect();

    let status = submit_batch(&mut client, sent).await.unwrap_err();

    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.message(), "batch of 11 messages exceeds the limit of 10");
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.peer_county.as_deref(), Some(DINGCHENG));
    assert_eq!(entry.kind.as_deref(), Some("inquiry_batch"));
    assert_eq!(
        entry.reason.as_deref(),
        Some("RESOURCE_EXHAUSTED: batch of 11 messages exceeds the limit of 10")
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

#[tokio::test]
async fn rejects_message_larger_than_the_byte_limit() {
    let cluster = Cluster::start_with(
        &[DINGCHENG, XINHUA],
        &[open_agreement(DINGCHENG, XINHUA)],
        small_limits(),
    )
    .await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    // Ten inquiries (within the count limit) padded past 64 KiB on the wire.
    let sent: Vec<pb::Inquiry> = (40..50)
        .map(|n| {
            let mut inquiry = inquiry(&cluster, DINGCHENG, XINHUA, n);
            inquiry.subject.as_mut().unwrap().certificate_number = "A".repeat(8 * 1024);
            inquiry
        })
        .collect();

    let status = submit_batch(&mut client, sent).await.unwrap_err();

    assert!(
        matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{status:?}"
    );
    let entry = the_audited_rejection(responder).await;
    assert_eq!(entry.peer_county.as_deref(), Some(DINGCHENG));
    assert_eq!(entry.kind.as_deref(), Some("inquiry_batch"));
    assert!(
        entry.reason.as_deref().unwrap().contains("65536 bytes"),
        "{entry:?}"
    );
    assert_eq!(stored_inquiries(responder).await, 0);
}

// === repeats and unknown references ===

#[tokio::test]
async fn resending_a_batch_returns_the_first_receipts_and_stores_each_inquiry_once() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let responder = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let sent: Vec<pb::Inquiry> = (50..53)
        .map(|n| inquiry(&cluster, DINGCHENG, XINHUA, n))
        .collect();

    let first = submit_batch(&mut client, sent.clone()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let again = submit_batch(&mut client, sent.clone()).await.unwrap();

    assert_eq!(first.len(), 3);
    for (first, again) in first.iter().zip(&again) {
        assert_eq!(again.message_id, first.message_id);
        let (first, again) = (accepted(first), accepted(again));
        assert!(first.received_at.is_some() && first.due_at.is_some());
        assert_eq!(again.received_at, first.received_at, "the first receipt");
        assert_eq!(again.due_at, first.due_at, "the first deadline");
    }
    assert_eq!(stored_inquiries(responder).await, 3);
    assert!(audited_rejections(responder).await.is_empty());
}

#[tokio::test]
async fn rejects_confirmation_for_an_unknown_inquiry() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let asker = cluster.node(DINGCHENG);
    let id = agreement_id(DINGCHENG, XINHUA);
    let confirmation = pb::StatusConfirmation {
        message_id: uuid::Uuid::now_v7().to_string(),
        inquiry_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(DINGCHENG, &id),
            id: id.clone(),
        }),
        outcome: pb::Outcome::Found as i32,
        fields: [("certificate_status".to_string(), "valid".to_string())].into(),
        answered_at: None,
    };
    let mut client = cluster.client(XINHUA, DINGCHENG).await;

    let request = tokio_stream::iter(vec![pb::ConfirmationBatch {
        confirmations: vec![confirmation.clone()],
    }]);
    let mut stream = client.deliver_confirmations(request).await.unwrap().into_inner();
    let mut receipts = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        receipts.extend(batch.receipts);
    }

    assert_eq!(receipts.len(), 1);
    let refusal = rejected(&receipts[0]);
    assert_eq!(refusal.code, Code::NotFound as i32, "{refusal:?}");
    let entry = the_audited_rejection(asker).await;
    assert_eq!(entry.peer_county.as_deref(), Some(XINHUA));
    assert_eq!(entry.message_id, Some(confirmation.message_id.parse().unwrap()));
    assert!(
        entry.reason.as_deref().unwrap().starts_with("NOT_FOUND: "),
        "{entry:?}"
    );
    assert_eq!(count(asker, "SELECT count(*) FROM confirmations").await, 0);
    assert_eq!(stored_inquiries(asker).await, 0);
}
