//! Notices (信息通报) over `DeliverNotices`: the receiving node acknowledges each one after it is
//! stored, with the feedback deadline for kinds that require feedback, returns the first receipt
//! for a repeat, and refuses (with an audit record, storing nothing) what the agreement does not
//! allow or what cannot be read.

mod common;

use common::*;
use hancha::node::Node;
use hancha::proto::exchange as pb;
use tonic::Code;
use tonic::transport::Channel;

/// A notice of `kind` about `subject` from `sender` to `receiver`, under the agreement the
/// receiver holds.
fn notice(
    cluster: &Cluster,
    sender: &str,
    receiver: &str,
    kind: pb::NoticeKind,
    subject: &str,
) -> pb::Notice {
    let id = format!("{}-{}", sender.min(receiver), sender.max(receiver));
    pb::Notice {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(receiver, &id),
            id,
        }),
        kind: kind as i32,
        subject: Some(pb::Subject {
            resident_id: subject.to_string(),
            certificate_number: String::new(),
        }),
        occurred_on: "2026-03-01".into(),
        fields: Default::default(),
    }
}

/// Sends one batch over `DeliverNotices` and collects every receipt.
async fn deliver(
    client: &mut pb::exchange_client::ExchangeClient<Channel>,
    notices: Vec<pb::Notice>,
) -> Vec<pb::Receipt> {
    let request = tokio_stream::iter(vec![pb::NoticeBatch { notices }]);
    let mut stream = client.deliver_notices(request).await.unwrap().into_inner();
    let mut receipts = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        receipts.extend(batch.receipts);
    }
    receipts
}

async fn stored_notices(node: &Node) -> i64 {
    count(node, "SELECT count(*) FROM notices").await
}

#[tokio::test]
async fn a_notice_is_acknowledged_with_its_feedback_deadline_and_a_repeat_gets_the_first_receipt() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let receiver = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let sent = vec![
        notice(
            &cluster,
            DINGCHENG,
            XINHUA,
            pb::NoticeKind::Birth,
            synthetic_id(XINHUA, 1).as_str(),
        ),
        notice(
            &cluster,
            DINGCHENG,
            XINHUA,
            pb::NoticeKind::Birth,
            synthetic_id(XINHUA, 2).as_str(),
        ),
    ];

    let first = deliver(&mut client, sent.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let again = deliver(&mut client, sent.clone()).await;

    assert_eq!(first.len(), 2);
    for ((wire, first), again) in sent.iter().zip(&first).zip(&again) {
        assert_eq!(first.message_id, wire.message_id);
        assert_eq!(again.message_id, wire.message_id);
        let (first, again) = (accepted(first), accepted(again));
        let received = first.received_at.expect("a receipt time");
        let due = first.due_at.expect("births require feedback");
        assert_eq!(
            due.seconds - received.seconds,
            30 * 24 * 3600,
            "feedback within the agreed 30 days"
        );
        assert_eq!(again, first, "the first receipt again");
    }
    assert_eq!(stored_notices(receiver).await, 2);
    assert!(audited_rejections(receiver).await.is_empty());
}

#[tokio::test]
async fn a_notice_not_allowed_or_unreadable_is_refused_audited_and_not_stored_while_the_rest_is_taken() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let receiver = cluster.node(XINHUA);
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let subject = synthetic_id(XINHUA, 3);
    // The test agreement allows birth notices only.
    let pregnancy = notice(
        &cluster,
        DINGCHENG,
        XINHUA,
        pb::NoticeKind::Pregnancy,
        subject.as_str(),
    );
    let mut garbled = subject.as_str().to_string();
    garbled.replace_range(17.., if garbled.ends_with('0') { "1" } else { "0" });
    let unreadable = notice(&cluster, DINGCHENG, XINHUA, pb::NoticeKind::Birth, &garbled);
    let birth = notice(
        &cluster,
        DINGCHENG,
        XINHUA,
        pb::NoticeKind::Birth,
        subject.as_str(),
    );

    let receipts = deliver(
        &mut client,
        vec![pregnancy.clone(), unreadable.clone(), birth.clone()],
    )
    .await;

    assert_eq!(receipts.len(), 3, "one receipt per notice, in order");
    let denied = rejected(&receipts[0]);
    assert_eq!(denied.code, Code::PermissionDenied as i32, "{denied:?}");
    assert!(denied.reason.contains("pregnancy"), "{denied:?}");
    let invalid = rejected(&receipts[1]);
    assert_eq!(invalid.code, Code::InvalidArgument as i32, "{invalid:?}");
    assert!(
        invalid
            .field_violations
            .iter()
            .any(|violation| violation.field == "notices[1].subject.resident_id"),
        "{invalid:?}"
    );
    assert!(
        !invalid.reason.contains(&garbled),
        "no ID number in a refusal: {invalid:?}"
    );
    assert!(accepted(&receipts[2]).due_at.is_some());

    let audited = audited_rejections(receiver).await;
    assert_eq!(audited.len(), 2, "{audited:#?}");
    assert_eq!(audited[0].peer_county.as_deref(), Some(DINGCHENG));
    assert_eq!(audited[0].message_id, Some(pregnancy.message_id.parse().unwrap()));
    assert_eq!(audited[0].kind.as_deref(), Some("pregnancy"));
    assert_eq!(
        audited[0].agreement_id,
        pregnancy.agreement.as_ref().map(|a| a.id.clone())
    );
    assert!(
        audited[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("PERMISSION_DENIED: ")
    );
    assert_eq!(
        audited[1].message_id,
        Some(unreadable.message_id.parse().unwrap())
    );
    assert!(
        audited[1]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("INVALID_ARGUMENT: ")
    );
    assert!(!audited[1].reason.as_deref().unwrap().contains(&garbled));
    assert_eq!(stored_notices(receiver).await, 1);
}
