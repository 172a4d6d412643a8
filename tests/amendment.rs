//! An amendment applied on one side first stops nothing: the two nodes tell each other which
//! versions they hold (PeerStatus), each sends under the newest version both hold, a receiver
//! takes what comes under any version it holds, and a message the peer refused for a version
//! mismatch is held (never refused for good) and goes out as soon as the peer holds its
//! version. Every inquiry is answered exactly once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use hancha::config::Limits;
use hancha::domain::agreement::Agreement;
use hancha::domain::vocabulary::InquiryKind;
use hancha::node::Node;
use hancha::proto::exchange as xpb;
use hancha::proto::operator as pb;
use tonic_types::StatusExt;

const EACH_WAY: u32 = 12;

/// [`EACH_WAY`] inquiries about the synthetic persons from `from` on.
fn drafts(kind: InquiryKind, registered: &str, from: u32) -> Vec<hancha::node::InquiryDraft> {
    inquiry_drafts(kind, registered, from..from + EACH_WAY)
}

fn version(n: u32) -> Agreement {
    agreement_version(n)
}

const ANSWERED_ONCE: &str =
    "SELECT count(*) FROM inquiries i WHERE i.direction = 'outbound' AND i.state = 'answered'
     AND (SELECT count(*) FROM confirmations c WHERE c.inquiry_id = i.message_id) = 1";

/// Short retries, so that anything held or retried would show within the test.
fn quick() -> Limits {
    Limits {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(300),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    }
}

/// Waits until `node` knows its peer holds `held` versions of the agreement.
async fn peer_known_to_hold(node: &Node, held: i64) {
    eventually("the peer's status recorded", || async {
        (count(node, "SELECT count(*) FROM agreements WHERE held_by_peer").await == held).then_some(())
    })
    .await;
}

const ROUNDS: u32 = 8;

/// A sweep that goes on throughout: a batch of [`EACH_WAY`] inquiries every 150 ms.
fn sweep_throughout(
    node: Arc<Node>,
    peer: &str,
    kind: InquiryKind,
    registered: &'static str,
    base: u32,
) -> tokio::task::JoinHandle<()> {
    let peer = peer.parse().unwrap();
    tokio::spawn(async move {
        for round in 0..ROUNDS {
            node.send_inquiries(peer, drafts(kind, registered, base + round * EACH_WAY))
                .await
                .expect("queued");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_applied_on_one_side_then_the_other_during_a_sweep_stops_nothing() {
    let v1 = version(1);
    let cluster = Cluster::start_with(&[DINGCHENG, XINHUA], &[v1.source_text().to_string()], quick()).await;
    let (dingcheng, xinhua) = (cluster.node(DINGCHENG), cluster.node(XINHUA));
    peer_known_to_hold(dingcheng, 1).await;
    peer_known_to_hold(xinhua, 1).await;

    // both sides sweep throughout
    let sweeps = [
        sweep_throughout(
            Arc::clone(dingcheng),
            XINHUA,
            InquiryKind::CertificateVerification,
            XINHUA,
            1_000,
        ),
        sweep_throughout(
            Arc::clone(xinhua),
            DINGCHENG,
            InquiryKind::OutflowStatus,
            XINHUA,
            5_000,
        ),
    ];

    // 新化县 applies version 2 first: it keeps sending under version 1, which both hold
    tokio::time::sleep(Duration::from_millis(300)).await;
    xinhua.install_agreement(&version(2)).await.expect("installed");
    let v2 = version(2).canonical_hash().as_str().to_string();
    eventually("新化县 learns 鼎城区 does not hold version 2", || async {
        let sql = format!("SELECT count(*) FROM agreements WHERE hash = '{v2}' AND held_by_peer = false");
        (count(xinhua, &sql).await == 1).then_some(())
    })
    .await;
    assert_eq!(
        xinhua
            .agreements()
            .sending_with(DINGCHENG.parse().unwrap(), chrono::Utc::now())
            .map(|a| a.version()),
        Some(1),
        "sent under the newest version both hold"
    );

    // then 鼎城区 applies it: both send under version 2 from then on
    tokio::time::sleep(Duration::from_millis(300)).await;
    dingcheng.install_agreement(&version(2)).await.expect("installed");
    for (node, peer) in [(dingcheng, XINHUA), (xinhua, DINGCHENG)] {
        eventually("both send under version 2", || async {
            let sending = node
                .agreements()
                .sending_with(peer.parse().unwrap(), chrono::Utc::now())
                .map(|a| a.version());
            (sending == Some(2)).then_some(())
        })
        .await;
    }
    for sweep in sweeps {
        sweep.await.expect("the sweep ran");
    }
    // one more batch each, after both hold version 2
    dingcheng
        .send_inquiries(
            XINHUA.parse().unwrap(),
            drafts(InquiryKind::CertificateVerification, XINHUA, 9_000),
        )
        .await
        .expect("queued");
    xinhua
        .send_inquiries(
            DINGCHENG.parse().unwrap(),
            drafts(InquiryKind::OutflowStatus, XINHUA, 9_500),
        )
        .await
        .expect("queued");

    let asked = i64::from((ROUNDS + 1) * EACH_WAY);
    for node in [dingcheng, xinhua] {
        eventually_within(
            "every inquiry answered exactly once",
            Duration::from_secs(60),
            || async { (count(node, ANSWERED_ONCE).await == asked).then_some(()) },
        )
        .await;
        assert_eq!(
            count(node, "SELECT count(*) FROM inquiries WHERE state = 'rejected'").await,
            0
        );
        assert_eq!(
            count(node, "SELECT count(*) FROM inquiries").await,
            2 * asked,
            "each stored once"
        );
        assert_eq!(
            count(node, "SELECT count(*) FROM audit_log WHERE outcome = 'held'").await,
            0,
            "nothing was sent under a version the peer did not hold"
        );
        let under_v2 = format!(
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND agreement_hash = '{v2}'"
        );
        assert!(
            count(node, &under_v2).await >= i64::from(EACH_WAY),
            "the last batch went under version 2"
        );
        let under_v1 = format!(
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND agreement_hash <> '{v2}'"
        );
        assert!(
            count(node, &under_v1).await >= i64::from(EACH_WAY),
            "the first ones went under version 1"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_held_for_a_version_goes_out_as_soon_as_the_peer_holds_it() {
    // retries so slow that only the release can deliver a held message within the test
    let limits = Limits {
        retry_max: Duration::from_secs(600),
        ..quick()
    };
    let cluster = Cluster::start_with(
        &[DINGCHENG, XINHUA],
        &[version(1).source_text().to_string()],
        limits,
    )
    .await;
    let (dingcheng, xinhua) = (cluster.node(DINGCHENG), cluster.node(XINHUA));
    peer_known_to_hold(xinhua, 1).await;

    // 新化县 applies version 2 and retires version 1: it may send only under version 2, which
    // 鼎城区 does not hold yet
    xinhua.install_agreement(&version(2)).await.expect("installed");
    let mut operator = cluster.operator(XINHUA).await;
    let retired = operator
        .retire_agreement(pb::RetireAgreementRequest {
            id: version(1).id().to_string(),
            version: 1,
        })
        .await
        .expect("retired")
        .into_inner();
    assert!(retired.newly_retired);
    assert_eq!(retired.agreement.as_ref().unwrap().stage, "retired");
    assert!(
        retired.warnings.is_empty(),
        "version 2 is still valid: {:?}",
        retired.warnings
    );
    assert_eq!(
        count(
            xinhua,
            "SELECT count(*) FROM audit_log WHERE action = 'retire_agreement' AND outcome = 'retired'"
        )
        .await,
        1,
        "the retirement is on the audit log"
    );
    let again = operator
        .retire_agreement(pb::RetireAgreementRequest {
            id: version(1).id().to_string(),
            version: 1,
        })
        .await
        .expect("retired again")
        .into_inner();
    assert!(!again.newly_retired, "retiring twice changes nothing");
    let unknown = operator
        .retire_agreement(pb::RetireAgreementRequest {
            id: version(1).id().to_string(),
            version: 7,
        })
        .await
        .expect_err("no version 7");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    xinhua
        .send_inquiries(
            DINGCHENG.parse().unwrap(),
            drafts(InquiryKind::OutflowStatus, XINHUA, 700),
        )
        .await
        .expect("queued");
    eventually("held at 新化县, named after the version they wait for", || async {
        let held = count(
            xinhua,
            "SELECT count(*) FROM outbox WHERE held AND last_error LIKE 'held: waiting for 430703 to hold agreement % version 2 %'",
        )
        .await;
        (held == i64::from(EACH_WAY)).then_some(())
    })
    .await;
    assert_eq!(
        count(xinhua, "SELECT count(*) FROM inquiries WHERE state = 'rejected'").await,
        0
    );

    // 鼎城区, holding only version 1, which 新化县 retired, asks too: held as well
    dingcheng
        .send_inquiries(
            XINHUA.parse().unwrap(),
            drafts(InquiryKind::CertificateVerification, XINHUA, 800),
        )
        .await
        .expect("queued");
    eventually("held at 鼎城区", || async {
        (count(dingcheng, "SELECT count(*) FROM outbox WHERE held").await == i64::from(EACH_WAY))
            .then_some(())
    })
    .await;

    // 新化县's operator withdraws one of its held inquiries: it is never sent
    let held: uuid::Uuid =
        sqlx::query_scalar("SELECT message_id FROM outbox WHERE held ORDER BY message_id LIMIT 1")
            .fetch_one(&database(xinhua.store()).await)
            .await
            .unwrap();
    let withdrawn = operator
        .withdraw(pb::WithdrawRequest {
            message_id: held.to_string(),
        })
        .await
        .expect("withdrawn")
        .into_inner();
    assert!(
        withdrawn.reason.starts_with("withdrawn by loopback"),
        "{withdrawn:?}"
    );
    let not_ours = operator
        .withdraw(pb::WithdrawRequest {
            message_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("no such inquiry");
    assert_eq!(not_ours.code(), tonic::Code::NotFound);

    // 鼎城区 applies version 2: the held inquiries go out at once, not after the retry delay
    dingcheng.install_agreement(&version(2)).await.expect("installed");
    eventually("the held inquiries answered, once", || async {
        (count(xinhua, ANSWERED_ONCE).await == i64::from(EACH_WAY) - 1).then_some(())
    })
    .await;
    assert_eq!(count(xinhua, "SELECT count(*) FROM outbox WHERE held").await, 0);
    let withdrawn_row = format!(
        "SELECT count(*) FROM inquiries WHERE message_id = '{held}' AND state = 'rejected'
         AND reject_reason LIKE 'withdrawn by loopback%'"
    );
    assert_eq!(count(xinhua, &withdrawn_row).await, 1, "withdrawn, not sent");
    assert_eq!(
        count(
            dingcheng,
            &format!("SELECT count(*) FROM inquiries WHERE message_id = '{held}'")
        )
        .await,
        0,
        "the peer never received it"
    );
    assert_eq!(
        count(
            xinhua,
            "SELECT count(*) FROM audit_log WHERE action = 'withdraw' AND outcome = 'withdrawn'"
        )
        .await,
        1
    );
    // an inquiry already answered is not withdrawn
    let answered: uuid::Uuid = sqlx::query_scalar(
        "SELECT message_id FROM inquiries WHERE direction = 'outbound' AND state = 'answered' LIMIT 1",
    )
    .fetch_one(&database(xinhua.store()).await)
    .await
    .unwrap();
    let too_late = operator
        .withdraw(pb::WithdrawRequest {
            message_id: answered.to_string(),
        })
        .await
        .expect_err("answered already");
    assert_eq!(too_late.code(), tonic::Code::FailedPrecondition);
    assert!(
        too_late.message().contains("is answered, not held"),
        "{too_late:?}"
    );

    // what 鼎城区 asked under version 1 meanwhile moved to version 2 and went out too
    eventually("鼎城区's inquiries answered under version 2", || async {
        (count(dingcheng, ANSWERED_ONCE).await == i64::from(EACH_WAY)).then_some(())
    })
    .await;
    let v2 = version(2).canonical_hash().as_str().to_string();
    let under_v2 =
        format!("SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND agreement_hash = '{v2}'");
    assert_eq!(count(dingcheng, &under_v2).await, i64::from(EACH_WAY));
    assert_eq!(
        count(
            dingcheng,
            "SELECT count(*) FROM audit_log WHERE outcome = 'moved_to_version'"
        )
        .await,
        i64::from(EACH_WAY),
        "each move is on the audit log"
    );

    // the list says where each version stands, here and at the peer
    let list = operator
        .list_agreements(pb::ListAgreementsRequest {})
        .await
        .expect("listed")
        .into_inner();
    let stage = |n: u32| {
        let info = list.agreements.iter().find(|a| a.version == n).expect("listed");
        (info.stage.as_str(), info.held_by_peer.as_str(), info.sending)
    };
    assert_eq!(stage(1), ("retired", "yes", false));
    assert_eq!(stage(2), ("in_force", "yes", true));
    let peer = list
        .peers
        .iter()
        .find(|p| p.peer_county == DINGCHENG)
        .expect("the peer's status");
    assert_eq!(peer.software_version, hancha::node::SOFTWARE_VERSION);
    assert!(
        !peer.clock_skewed && peer.clock_offset_ms.abs() < 2_000,
        "{peer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_status_with_a_skewed_clock_is_recorded_and_flagged_and_a_malformed_one_refused() {
    // 邵东市 has an agreement with 鼎城区 but runs no node here: nothing but this test tells
    // 鼎城区 its status
    let with_shaodong = open_agreement(DINGCHENG, SHAODONG);
    let cluster = Cluster::start(
        &[DINGCHENG, XINHUA],
        &[version(1).source_text().to_string(), with_shaodong.clone()],
    )
    .await;
    let dingcheng = cluster.node(DINGCHENG);
    let v1 = Agreement::parse(&with_shaodong).expect("the agreement parses");

    // 邵东市's identity, its clock 30 s ahead, holding the agreement
    let mut as_shaodong = cluster.client(SHAODONG, DINGCHENG).await;
    let status = |clock: chrono::DateTime<chrono::Utc>, hash: &str| xpb::PeerStatusRequest {
        status: Some(xpb::NodeStatus {
            agreement_versions: vec![xpb::HeldVersion {
                agreement_id: v1.id().to_string(),
                version: 1,
                hash: hash.to_string(),
            }],
            software_version: "hancha 9.9.9-test".into(),
            clock: Some(pbjson_types::Timestamp {
                seconds: clock.timestamp(),
                nanos: 0,
            }),
            audit: None,
        }),
    };
    let ahead = chrono::Utc::now() + chrono::Duration::seconds(30);
    let ours = as_shaodong
        .peer_status(status(ahead, v1.canonical_hash().as_str()))
        .await
        .expect("status exchanged")
        .into_inner()
        .status
        .expect("our status");
    assert_eq!(ours.agreement_versions.len(), 1);
    assert_eq!(ours.agreement_versions[0].hash, v1.canonical_hash().as_str());
    assert_eq!(ours.software_version, hancha::node::SOFTWARE_VERSION);

    let list = cluster
        .operator(DINGCHENG)
        .await
        .list_agreements(pb::ListAgreementsRequest {})
        .await
        .expect("listed")
        .into_inner();
    let peer = list
        .peers
        .iter()
        .find(|p| p.peer_county == SHAODONG)
        .expect("the peer's status");
    assert!(peer.clock_skewed, "{peer:?}");
    assert!((28_000..=32_000).contains(&peer.clock_offset_ms), "{peer:?}");
    assert_eq!(peer.software_version, "hancha 9.9.9-test");

    // a malformed status: a precise refusal, audited, nothing recorded
    let refusal = as_shaodong
        .peer_status(status(chrono::Utc::now(), "not-a-hash"))
        .await
        .expect_err("refused");
    assert_eq!(refusal.code(), tonic::Code::InvalidArgument);
    let bad_request = refusal.get_details_bad_request().expect("BadRequest details");
    assert_eq!(
        bad_request
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        ["status.agreement_versions[0].hash"]
    );
    assert_eq!(
        count(
            dingcheng,
            "SELECT count(*) FROM audit_log WHERE kind = 'peer_status' AND outcome = 'rejected'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            dingcheng,
            &format!("SELECT count(*) FROM agreements WHERE peer_county = '{SHAODONG}' AND held_by_peer")
        )
        .await,
        1,
        "the refused status changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_with_its_agreement_history_in_order_and_leaves_an_expired_version_out() {
    // the directory keeps the history out of order, and an expired "version 3" lingers in it
    let expired = open_agreement_version(3, ("2024-01-01", "2025-12-31"));
    let files = [
        version(2).source_text().to_string(),
        version(1).source_text().to_string(),
        expired,
    ];
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &files).await;
    for county in [DINGCHENG, XINHUA] {
        let node = cluster.node(county);
        assert_eq!(
            count(node, "SELECT count(*) FROM agreements WHERE version IN (1, 2)").await,
            2,
            "the history is installed in version order"
        );
        assert_eq!(
            count(node, "SELECT count(*) FROM agreements WHERE version = 3").await,
            0,
            "an expired version is never put in force"
        );
    }
    // and the exchange goes on under version 2
    let outcome = cluster
        .node(DINGCHENG)
        .ask(
            XINHUA.parse().unwrap(),
            drafts(InquiryKind::CertificateVerification, XINHUA, 300).remove(0),
            Duration::from_secs(2),
        )
        .await
        .expect("asked");
    assert_eq!(
        outcome.state,
        hancha::domain::message::InquiryState::Answered,
        "{outcome:?}"
    );
}
