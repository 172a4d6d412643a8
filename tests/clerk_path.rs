//! The clerk's path (查证验证 at a window): the answer comes back inline, is stored once on each
//! side, and is never sent again once the asker acknowledged it; an answer the asker never
//! acknowledged is delivered in full after the grace period, so nothing is lost.

mod common;

use std::time::Duration;

use common::*;
use hancha::config::Limits;
use hancha::domain::message::{AgreementRef, Inquiry, InquiryState, Subject};
use hancha::domain::vocabulary::{AnswerOutcome, CertificateStatus, InquiryKind, Priority};
use hancha::exchange::convert::inquiry_to_wire;
use hancha::node::InquiryDraft;
use hancha::proto::exchange as pb;

fn draft(subject: &hancha::domain::resident_id::ResidentId) -> InquiryDraft {
    InquiryDraft {
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Normal,
        subject: Subject {
            resident_id: subject.clone(),
            certificate_number: None,
        },
        message_id: None,
    }
}

async fn registered_woman(cluster: &Cluster) -> hancha::domain::resident_id::ResidentId {
    let woman = synthetic_id(XINHUA, 7);
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&[outflow_person(woman.clone(), XINHUA, DINGCHENG)])
        .await
        .expect("registry written");
    woman
}

/// An inquiry from 鼎城区 to 新化县 about `subject`, as 鼎城区's node would write it.
fn inquiry_from_dingcheng(cluster: &Cluster, subject: &hancha::domain::resident_id::ResidentId) -> Inquiry {
    let agreement_id = format!("{DINGCHENG}-{XINHUA}");
    Inquiry {
        message_id: uuid::Uuid::now_v7(),
        agreement: AgreementRef {
            hash: cluster.agreement_hash(DINGCHENG, &agreement_id),
            id: agreement_id,
        },
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Normal,
        subject: Subject {
            resident_id: subject.clone(),
            certificate_number: None,
        },
    }
}

/// Sends `inquiry` to 新化县 as 鼎城区 on the wire, waiting for the inline answer, and never
/// acknowledges it (an asker that went away after the call).
async fn answer_without_acknowledging(cluster: &Cluster, inquiry: &Inquiry) -> pb::StatusConfirmation {
    cluster
        .client(DINGCHENG, XINHUA)
        .await
        .submit_inquiry(pb::SubmitInquiryRequest {
            inquiry: Some(inquiry_to_wire(inquiry)),
            wait_ms: 2_000,
        })
        .await
        .expect("accepted")
        .into_inner()
        .confirmation
        .expect("answered inline")
}

#[tokio::test]
async fn an_inline_answer_is_stored_once_on_each_side_and_never_sent_again() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let woman = registered_woman(&cluster).await;
    let asker = cluster.node(DINGCHENG);
    let responder = cluster.node(XINHUA);

    let outcome = asker
        .ask(
            hancha::domain::division::CountyCode::parse(XINHUA).unwrap(),
            draft(&woman),
            Duration::from_secs(2),
        )
        .await
        .expect("asked");

    assert_eq!(outcome.state, InquiryState::Answered, "{outcome:?}");
    let answer = outcome.confirmation.expect("answered inline");
    assert_eq!(answer.outcome, AnswerOutcome::Found, "{answer:?}");
    assert_eq!(
        answer.fields.certificate_status,
        Some(CertificateStatus::Valid),
        "what the registry holds of her: {answer:?}"
    );
    assert_eq!(answer.fields.children_count, Some(1), "{answer:?}");
    let acknowledged = format!(
        "SELECT count(*) FROM confirmations WHERE message_id = '{}' AND delivered_at IS NOT NULL",
        answer.message_id
    );
    eventually("the responder records the answer as acknowledged", || async {
        (count(responder, &acknowledged).await == 1).then_some(())
    })
    .await;
    assert_eq!(
        count(responder, "SELECT count(*) FROM outbox").await,
        0,
        "nothing is owed any more"
    );
    let by_ack = format!(
        "SELECT count(*) FROM audit_log WHERE message_id = '{}' AND outcome = 'delivered' AND reason LIKE '%acknowledged%'",
        answer.message_id
    );
    assert_eq!(count(responder, &by_ack).await, 1);
    let stored_at_asker = format!(
        "SELECT count(*) FROM audit_log WHERE message_id = '{}' AND outcome = 'accepted'",
        answer.message_id
    );
    assert_eq!(
        count(asker, &stored_at_asker).await,
        1,
        "the asker took the answer once, inline"
    );
    let answered = format!(
        "SELECT count(*) FROM inquiries WHERE message_id = '{}' AND state = 'answered'",
        outcome.message_id
    );
    assert_eq!(count(asker, &answered).await, 1);
    assert_eq!(count(responder, &answered).await, 1);
}

#[tokio::test]
async fn an_answer_the_asker_never_acknowledged_is_delivered_in_full_after_the_grace() {
    let limits = Limits {
        inline_answer_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let cluster =
        Cluster::start_with(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)], limits).await;
    let woman = registered_woman(&cluster).await;
    let asker = cluster.node(DINGCHENG);
    let inquiry = inquiry_from_dingcheng(&cluster, &woman);
    // The asker wrote the inquiry (its worker leaves it alone for an hour), then went away
    // after sending it: the answer came back inline but was never stored or acknowledged.
    asker
        .store()
        .queue_outbound_inquiries(
            XINHUA.parse().unwrap(),
            std::slice::from_ref(&inquiry),
            None,
            None,
            Duration::from_secs(3600),
        )
        .await
        .expect("queued");
    let inline = answer_without_acknowledging(&cluster, &inquiry).await;

    let stored = format!(
        "SELECT count(*) FROM confirmations WHERE message_id = '{}' AND direction = 'inbound'",
        inline.message_id
    );
    eventually(
        "the owed answer reaches the asker after the grace period",
        || async { (count(asker, &stored).await == 1).then_some(()) },
    )
    .await;
    let answered = format!(
        "SELECT count(*) FROM inquiries WHERE message_id = '{}' AND state = 'answered'",
        inquiry.message_id
    );
    assert_eq!(
        count(asker, &answered).await,
        1,
        "the inquiry is answered at the asker"
    );
    let delivered = format!(
        "SELECT count(*) FROM confirmations WHERE message_id = '{}' AND delivered_at IS NOT NULL",
        inline.message_id
    );
    eventually("the responder records the delivery", || async {
        (count(cluster.node(XINHUA), &delivered).await == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn asking_again_with_the_same_id_sends_nothing_and_shows_the_stored_answer() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let woman = registered_woman(&cluster).await;
    let asker = std::sync::Arc::clone(cluster.node(DINGCHENG));
    let xinhua = hancha::domain::division::CountyCode::parse(XINHUA).unwrap();
    let chosen = InquiryDraft {
        message_id: Some(uuid::Uuid::now_v7()),
        ..draft(&woman)
    };

    let first = asker
        .ask(xinhua, chosen.clone(), Duration::from_secs(2))
        .await
        .expect("asked");
    // the peer is down: asking again can only show what is stored, it cannot send
    cluster.stop(XINHUA).await;
    let again = asker
        .ask(xinhua, chosen, Duration::from_secs(2))
        .await
        .expect("asked again");
    cluster.restart(XINHUA).await;

    assert_eq!(first.state, InquiryState::Answered, "{first:?}");
    assert_eq!(again.state, InquiryState::Answered, "{again:?}");
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(
        again.confirmation.map(|c| c.message_id),
        first.confirmation.map(|c| c.message_id),
        "the stored answer, not a second one"
    );
    let received = format!(
        "SELECT count(*) FROM audit_log WHERE message_id = '{}' AND outcome = 'accepted'",
        first.message_id
    );
    assert_eq!(
        count(cluster.node(XINHUA), &received).await,
        1,
        "the peer received the inquiry once"
    );
}

#[tokio::test]
async fn only_the_asker_can_acknowledge_its_answer() {
    let cluster = Cluster::start(
        &[DINGCHENG, XINHUA, SHAODONG],
        &[
            open_agreement(DINGCHENG, XINHUA),
            open_agreement(SHAODONG, XINHUA),
        ],
    )
    .await;
    let woman = registered_woman(&cluster).await;
    let inquiry = inquiry_from_dingcheng(&cluster, &woman);
    let answer = answer_without_acknowledging(&cluster, &inquiry).await;
    let acks = pb::ConfirmationAcks {
        message_ids: vec![answer.message_id.clone()],
    };
    let delivered = format!(
        "SELECT count(*) FROM confirmations WHERE message_id = '{}' AND delivered_at IS NOT NULL",
        answer.message_id
    );

    let by_another = cluster
        .client(SHAODONG, XINHUA)
        .await
        .acknowledge_confirmations(acks.clone())
        .await
        .expect("a reply")
        .into_inner();
    assert!(
        matches!(
            &by_another.receipts[0].result,
            Some(pb::receipt::Result::Rejected(rejected)) if rejected.code == tonic::Code::NotFound as i32
        ),
        "{by_another:?}"
    );
    assert_eq!(
        count(cluster.node(XINHUA), &delivered).await,
        0,
        "still owed to 鼎城区"
    );

    let by_the_asker = cluster
        .client(DINGCHENG, XINHUA)
        .await
        .acknowledge_confirmations(acks)
        .await
        .expect("a reply")
        .into_inner();
    assert!(
        matches!(
            &by_the_asker.receipts[0].result,
            Some(pb::receipt::Result::Accepted(_))
        ),
        "{by_the_asker:?}"
    );
    assert_eq!(count(cluster.node(XINHUA), &delivered).await, 1);
}
