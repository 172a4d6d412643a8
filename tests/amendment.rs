//! An amendment applied on one side first stops nothing: the side that applied it still takes
//! what its peer sends under the version both hold, and what it sends under the new version is
//! held (never refused for good) until the peer applies it too. Every inquiry is answered
//! exactly once.

mod common;

use std::time::Duration;

use common::*;
use hancha::config::Limits;
use hancha::domain::agreement::Agreement;
use hancha::domain::message::Subject;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::InquiryDraft;

const EACH_WAY: u32 = 12;

fn drafts(kind: InquiryKind, registered: &str, from: u32) -> Vec<InquiryDraft> {
    (from..from + EACH_WAY)
        .map(|n| InquiryDraft {
            kind,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: synthetic_id(registered, n),
                certificate_number: None,
            },
            message_id: None,
        })
        .collect()
}

fn version(n: u32) -> Agreement {
    let text = agreement_toml(
        DINGCHENG,
        XINHUA,
        n,
        ("2026-01-01", "2030-12-31"),
        &Terms::default(),
        &Terms::default(),
    );
    Agreement::parse(&text).expect("the test agreement parses")
}

const ANSWERED_ONCE: &str =
    "SELECT count(*) FROM inquiries i WHERE i.direction = 'outbound' AND i.state = 'answered'
     AND (SELECT count(*) FROM confirmations c WHERE c.inquiry_id = i.message_id) = 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_applied_on_one_side_first_refuses_nothing_for_good() {
    let limits = Limits {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(300),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    let v1 = version(1);
    let cluster = Cluster::start_with(&[DINGCHENG, XINHUA], &[v1.source_text().to_string()], limits).await;
    let (dingcheng, xinhua) = (cluster.node(DINGCHENG), cluster.node(XINHUA));

    // 新化县 applies version 2 first.
    let installed = xinhua.install_agreement(&version(2)).await.expect("installed");
    assert!(installed.new_version && installed.warnings.is_empty());

    // 鼎城区, still on version 1, asks: 新化县 honours version 1, which it still holds.
    dingcheng
        .send_inquiries(
            XINHUA.parse().unwrap(),
            drafts(InquiryKind::CertificateVerification, XINHUA, 100),
        )
        .await
        .expect("queued");
    eventually("鼎城区's inquiries under version 1 answered", || async {
        (count(dingcheng, ANSWERED_ONCE).await == i64::from(EACH_WAY)).then_some(())
    })
    .await;

    // 新化县 asks under version 2, which 鼎城区 does not hold yet: held, not refused.
    xinhua
        .send_inquiries(
            DINGCHENG.parse().unwrap(),
            drafts(InquiryKind::OutflowStatus, XINHUA, 200),
        )
        .await
        .expect("queued");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        count(xinhua, "SELECT count(*) FROM inquiries WHERE state = 'rejected'").await,
        0,
        "nothing refused for good"
    );
    assert_eq!(
        count(
            xinhua,
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'queued'"
        )
        .await,
        i64::from(EACH_WAY),
        "held until the versions agree"
    );

    // 鼎城区 applies version 2 too: what was held goes out and is answered, once.
    dingcheng.install_agreement(&version(2)).await.expect("installed");
    eventually("新化县's held inquiries answered", || async {
        (count(xinhua, ANSWERED_ONCE).await == i64::from(EACH_WAY)).then_some(())
    })
    .await;
    for node in [dingcheng, xinhua] {
        assert_eq!(
            count(node, "SELECT count(*) FROM inquiries WHERE state = 'rejected'").await,
            0
        );
        assert_eq!(
            count(node, "SELECT count(*) FROM inquiries").await,
            i64::from(2 * EACH_WAY),
            "each inquiry stored once on each side"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_with_its_agreement_history_in_order_and_leaves_an_expired_version_out() {
    // the directory keeps the history out of order, and an expired "version 3" lingers in it
    let expired = agreement_toml(
        DINGCHENG,
        XINHUA,
        3,
        ("2024-01-01", "2025-12-31"),
        &Terms::default(),
        &Terms::default(),
    );
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
