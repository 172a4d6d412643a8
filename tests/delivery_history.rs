//! What happened is easy to see: `hancha show` of an inquiry that could not be delivered lists
//! every failed attempt with its time and error and, while it is queued, when the next attempt
//! is due; once delivered, the attempts stay in its history.

mod common;

use std::time::Duration;

use assert_cmd::Command;
use common::*;
use hancha::config::Limits;
use hancha::domain::message::Subject;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::InquiryDraft;

fn show(cluster: &Cluster, id: &str) -> String {
    let output = Command::cargo_bin("hancha")
        .expect("the hancha binary is built")
        .env("HANCHA_NODE", cluster.operator_address(DINGCHENG).to_string())
        .args(["show", id])
        .output()
        .expect("hancha show runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_lists_every_failed_attempt_and_the_next_one() {
    let limits = Limits {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(80),
        poll_interval: Duration::from_millis(50),
        ..Limits::default()
    };
    let mut cluster =
        Cluster::start_with(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)], limits).await;
    cluster.stop(XINHUA).await;
    let dingcheng = std::sync::Arc::clone(cluster.node(DINGCHENG));
    let (inquiries, _) = dingcheng
        .send_inquiries(
            XINHUA.parse().unwrap(),
            vec![InquiryDraft {
                kind: InquiryKind::CertificateVerification,
                priority: Priority::Normal,
                subject: Subject {
                    resident_id: synthetic_id(XINHUA, 1),
                    certificate_number: None,
                },
                message_id: None,
            }],
        )
        .await
        .expect("queued");
    let id = inquiries[0].message_id.to_string();
    let failed =
        format!("SELECT count(*) FROM audit_log WHERE message_id = '{id}' AND outcome = 'attempt_failed'");
    eventually_within("eight failed attempts", Duration::from_secs(60), || async {
        (count(&dingcheng, &failed).await >= 8).then_some(())
    })
    .await;

    let queued = tokio::task::block_in_place(|| show(&cluster, &id));
    let listed = queued
        .lines()
        .filter(|line| line.contains("attempt_failed"))
        .count();
    assert!(listed >= 8, "every failed attempt is listed:\n{queued}");
    assert!(
        queued.contains("next try"),
        "while queued, the next attempt:\n{queued}"
    );
    assert!(queued.contains("state      queued"), "{queued}");

    cluster.restart(XINHUA).await;
    let delivered = format!("SELECT count(*) FROM inquiries WHERE message_id = '{id}' AND state <> 'queued'");
    eventually_within(
        "delivered once the peer is back",
        Duration::from_secs(60),
        || async { (count(&dingcheng, &delivered).await == 1).then_some(()) },
    )
    .await;
    let done = tokio::task::block_in_place(|| show(&cluster, &id));
    let still_listed = done
        .lines()
        .filter(|line| line.contains("attempt_failed"))
        .count();
    assert!(
        still_listed >= listed,
        "the attempts stay in the history:\n{done}"
    );
    assert!(!done.contains("next try"), "nothing is owed any more:\n{done}");
}
