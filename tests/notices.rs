//! Notices (信息通报) sent, acknowledged and answered between two real nodes over mutual TLS:
//! every kind end to end through the outbox and the peer's receipt; kinds and fields the
//! agreement does not allow refused locally, nothing stored, audited; an idempotent resend; a
//! birth notice and its feedback (反馈), and feedback overdue on both sides. Kill -9 of either
//! node mid-batch, and reconciliation repairing what one side lost, are in
//! `notices_durability.rs`.

mod common;

use common::*;
use hancha::proto::exchange as pb_exchange;
use hancha::proto::operator as pb;
use tonic::Code;

async fn pending_notices(cluster: &Cluster, county: &str, outbound: bool) -> Vec<pb::NoticeSummary> {
    let mut operator = cluster.operator(county).await;
    operator
        .list_pending(pb::ListPendingRequest {
            outbound,
            notices: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notices
}

fn seconds(at: &Option<pbjson_types::Timestamp>) -> i64 {
    at.as_ref().expect("a time").seconds
}

#[tokio::test]
async fn every_notice_kind_travels_end_to_end_and_the_receipt_is_recorded_on_the_sender() {
    let cluster = every_notice_pair().await;
    let sent = [
        (
            "birth",
            vec![
                ("child_sex", "女"),
                ("birth_order", "2"),
                ("birth_place", "鼎城区人民医院"),
            ],
        ),
        (
            "pregnancy",
            vec![("pregnancy_weeks", "12"), ("expected_date", "2027-04-20")],
        ),
        (
            "contraception_check",
            vec![("check_result", "normal"), ("measure", "iud")],
        ),
        ("moved_on", vec![("new_county", "430582")]),
    ];
    for (n, (kind, pairs)) in sent.iter().enumerate() {
        let receipt = notify(&cluster, notify_request(kind, n as u32, pairs))
            .await
            .unwrap();
        assert_eq!(receipt.state, "delivered", "{kind}: {receipt:?}");
        assert!(!receipt.repeat);
        // the receiver's receipt, as the receiver stored it, is what the sender recorded
        let id: uuid::Uuid = receipt.message_id.parse().unwrap();
        let (received, due): (chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>) =
            sqlx::query_as("SELECT acknowledged_at, feedback_due_at FROM notices WHERE message_id = $1 AND direction = 'inbound'")
                .bind(id)
                .fetch_one(&database(cluster.node(XINHUA).store()).await)
                .await
                .unwrap();
        assert_eq!(seconds(&receipt.received_at), received.timestamp(), "{kind}");
        assert_eq!(
            receipt.feedback_due_at.as_ref().map(|t| t.seconds),
            due.map(|d| d.timestamp()),
            "{kind}"
        );
        assert_eq!(due.is_some(), *kind == "birth", "only a birth owes feedback");
        if let Some(due) = due {
            assert_eq!(
                (due - received).num_days(),
                30,
                "the agreement's notice_days.feedback"
            );
        }
        let body: serde_json::Value = sqlx::query_scalar("SELECT body FROM notices WHERE message_id = $1")
            .bind(id)
            .fetch_one(&database(cluster.node(XINHUA).store()).await)
            .await
            .unwrap();
        for (name, value) in pairs {
            let stored = body[*name].as_str().unwrap();
            let expected = if *value == "女" { "female" } else { value };
            assert_eq!(stored, expected, "{kind}.{name}");
        }
    }
    assert_eq!(
        count(
            cluster.node(XINHUA),
            "SELECT count(*) FROM notices WHERE direction = 'inbound'"
        )
        .await,
        4
    );
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM notices WHERE direction = 'outbound' AND acknowledged_at IS NOT NULL"
        )
        .await,
        4
    );
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM outbox").await,
        0
    );
}

#[tokio::test]
async fn kinds_and_fields_the_agreement_does_not_allow_are_refused_locally_and_audited_with_nothing_stored() {
    // 鼎城区 → 新化县: births only, carrying the child's sex only
    let narrow = Terms {
        notice_kinds: &["birth"],
        notice_fields: &[("birth", &["child_sex"])],
        ..Terms::default()
    };
    let agreement = agreement_toml(
        DINGCHENG,
        XINHUA,
        1,
        ("2026-01-01", "2030-12-31"),
        &narrow,
        &Terms::every_notice(),
    );
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;

    let kind = notify(
        &cluster,
        notify_request("pregnancy", 1, &[("pregnancy_weeks", "12")]),
    )
    .await
    .unwrap_err();
    assert_eq!(kind.code(), Code::PermissionDenied, "{kind:?}");
    assert!(kind.message().contains("pregnancy"), "{}", kind.message());

    let field = notify(
        &cluster,
        notify_request("birth", 2, &[("child_sex", "male"), ("birth_place", "医院")]),
    )
    .await
    .unwrap_err();
    assert_eq!(field.code(), Code::PermissionDenied, "{field:?}");
    assert!(
        field.message().contains("birth_place") && field.message().contains("child_sex"),
        "names the field refused and the ones allowed: {}",
        field.message()
    );

    let malformed = notify(&cluster, notify_request("birth", 3, &[("child_sex", "unknown")]))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed:?}");
    assert!(
        malformed.message().contains("fields.child_sex"),
        "{}",
        malformed.message()
    );
    assert!(
        !malformed.message().contains("unknown"),
        "the value is not echoed"
    );

    let bad_id = pb::NotifyRequest {
        resident_id: "430703199001010000".into(),
        ..notify_request("birth", 4, &[])
    };
    let bad_id = notify(&cluster, bad_id).await.unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    assert!(!bad_id.message().contains("430703199001010000"));

    for county in [DINGCHENG, XINHUA] {
        assert_eq!(
            count(cluster.node(county), "SELECT count(*) FROM notices").await,
            0,
            "{county}"
        );
        assert_eq!(
            count(cluster.node(county), "SELECT count(*) FROM outbox").await,
            0,
            "{county}"
        );
    }
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM audit_log WHERE action = 'notify' AND outcome = 'refused'"
        )
        .await,
        4,
        "each refusal is audited"
    );
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM audit_log WHERE action = 'notify' AND outcome = 'refused'
                AND reason LIKE 'PERMISSION_DENIED%'"
        )
        .await,
        2,
        "with its status"
    );
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM audit_log WHERE reason LIKE '%430703199001010000%'"
        )
        .await,
        0,
        "never the ID number"
    );

    // the receiver decides the same way: a field its agreement does not let travel is refused
    // on intake, audited, not stored
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let id = format!("{DINGCHENG}-{XINHUA}");
    let notice = pb_exchange::Notice {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb_exchange::AgreementRef {
            hash: cluster.agreement_hash(XINHUA, &id),
            id,
        }),
        kind: pb_exchange::NoticeKind::Birth as i32,
        subject: Some(pb_exchange::Subject {
            resident_id: synthetic_id(XINHUA, 5).as_str().to_string(),
            certificate_number: String::new(),
        }),
        occurred_on: "2026-10-15".into(),
        fields: fields(&[("birth_order", "1")]),
    };
    let request = tokio_stream::iter(vec![pb_exchange::NoticeBatch {
        notices: vec![notice],
    }]);
    let mut replies = client.deliver_notices(request).await.unwrap().into_inner();
    let receipt = replies.message().await.unwrap().unwrap().receipts.remove(0);
    let Some(pb_exchange::receipt::Result::Rejected(rejected)) = receipt.result else {
        panic!("refused on intake: {receipt:?}");
    };
    assert_eq!(rejected.code, Code::PermissionDenied as i32, "{rejected:?}");
    assert_eq!(rejected.field_violations[0].field, "fields.birth_order");
    assert_eq!(
        count(cluster.node(XINHUA), "SELECT count(*) FROM notices").await,
        0
    );
    assert_eq!(
        count(
            cluster.node(XINHUA),
            "SELECT count(*) FROM audit_log WHERE direction = 'inbound' AND outcome = 'rejected' AND kind = 'birth'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_resent_notice_returns_its_first_receipt_and_the_same_id_with_other_content_is_refused() {
    let cluster = every_notice_pair().await;
    let id = uuid::Uuid::now_v7().to_string();
    let request = pb::NotifyRequest {
        message_id: id.clone(),
        ..notify_request("birth", 7, &[("child_sex", "male"), ("birth_order", "1")])
    };
    let first = notify(&cluster, request.clone()).await.unwrap();
    assert_eq!(first.state, "delivered");
    assert!(!first.repeat);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = notify(&cluster, request.clone()).await.unwrap();
    assert!(again.repeat);
    assert_eq!(again.message_id, id);
    assert_eq!(
        again.received_at, first.received_at,
        "the first receipt, to the microsecond"
    );
    assert_eq!(
        again.feedback_due_at, first.feedback_due_at,
        "the deadline included"
    );

    let other = pb::NotifyRequest {
        fields: fields(&[("child_sex", "female"), ("birth_order", "1")]),
        ..request
    };
    let clash = notify(&cluster, other).await.unwrap_err();
    assert_eq!(clash.code(), Code::AlreadyExists, "{clash:?}");
    assert!(clash.message().contains(&id), "{}", clash.message());
    assert_eq!(
        count(cluster.node(XINHUA), "SELECT count(*) FROM notices").await,
        1
    );
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM notices").await,
        1
    );
}

#[tokio::test]
async fn a_birth_notice_gets_its_feedback_end_to_end_and_overdue_feedback_is_flagged_on_both_sides() {
    let cluster = every_notice_pair().await;
    let birth = notify(
        &cluster,
        notify_request("birth", 11, &[("child_sex", "female"), ("birth_order", "2")]),
    )
    .await
    .unwrap();
    let late = notify(&cluster, notify_request("birth", 12, &[("child_sex", "male")]))
        .await
        .unwrap();
    let check = notify(
        &cluster,
        notify_request("contraception_check", 13, &[("check_result", "normal")]),
    )
    .await
    .unwrap();

    // both sides track the feedback owed, by due date, nothing overdue yet
    let owed = pending_notices(&cluster, XINHUA, false).await;
    let waited = pending_notices(&cluster, DINGCHENG, true).await;
    assert_eq!(owed.len(), 2, "only the births owe feedback: {owed:?}");
    assert_eq!(waited.len(), 2);
    assert!(owed.iter().chain(&waited).all(|n| !n.overdue));
    assert_eq!(
        owed[0].subject_masked.len(),
        18,
        "masked: {}",
        owed[0].subject_masked
    );
    assert!(owed[0].subject_masked.contains("**********"));

    // 新化县 answers the first birth
    let mut xinhua = cluster.operator(XINHUA).await;
    let given = xinhua
        .feedback(pb::FeedbackRequest {
            notice_id: birth.message_id.clone(),
            outcome: "child_counted".into(),
            note: "已入户，孩次已更新".into(),
            message_id: String::new(),
            wait_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(given.state, "delivered", "{given:?}");

    // 鼎城区 holds it, linked to its notice
    let mut dingcheng = cluster.operator(DINGCHENG).await;
    let shown = dingcheng
        .show_notice(pb::ShowNoticeRequest {
            message_id: birth.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let feedback = shown.feedback.expect("the feedback is stored with its notice");
    assert_eq!(feedback.message_id, given.message_id);
    assert_eq!(feedback.direction, "inbound");
    assert_eq!(feedback.outcome, "child_counted");
    assert_eq!(feedback.note, "已入户，孩次已更新");
    assert_eq!(shown.notice.unwrap().state, "answered");
    let by_feedback_id = dingcheng
        .show_notice(pb::ShowNoticeRequest {
            message_id: given.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_feedback_id.notice.unwrap().message_id, birth.message_id);

    // the same feedback again is a repeat; the same id with another outcome is not taken for one
    let again = |outcome: hancha::domain::feedback::FeedbackOutcome| hancha::domain::feedback::Feedback {
        message_id: given.message_id.parse().unwrap(),
        notice_id: birth.message_id.parse().unwrap(),
        agreement: hancha::domain::message::AgreementRef {
            id: format!("{DINGCHENG}-{XINHUA}"),
            hash: cluster.agreement_hash(DINGCHENG, &format!("{DINGCHENG}-{XINHUA}")),
        },
        outcome,
        note: Some("已入户，孩次已更新".into()),
        answered_at: chrono::Utc::now(),
    };
    let xinhua_code = hancha::domain::division::CountyCode::parse(XINHUA).unwrap();
    let store = cluster.node(DINGCHENG).store();
    let same = again(hancha::domain::feedback::FeedbackOutcome::ChildCounted);
    let other = again(hancha::domain::feedback::FeedbackOutcome::NotRegisteredHere);
    let receipts = store
        .accept_inbound_feedback(xinhua_code, &[&same, &other], chrono::Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(
            receipts[0],
            hancha::store::feedback::FeedbackReceipt::Duplicate(_)
        ),
        "{receipts:?}"
    );
    assert!(
        matches!(receipts[1], hancha::store::feedback::FeedbackReceipt::IdTaken),
        "another outcome under the same id is refused, not swallowed: {receipts:?}"
    );

    // refused: a notice not ours to answer, one owing no feedback, one answered already
    let ours = dingcheng
        .feedback(pb::FeedbackRequest {
            notice_id: late.message_id.clone(),
            outcome: "registered".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(ours.code(), Code::NotFound, "{ours:?}");
    let no_feedback = xinhua
        .feedback(pb::FeedbackRequest {
            notice_id: check.message_id.clone(),
            outcome: "registered".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_feedback.code(), Code::FailedPrecondition, "{no_feedback:?}");
    let twice = xinhua
        .feedback(pb::FeedbackRequest {
            notice_id: birth.message_id.clone(),
            outcome: "registered".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists, "{twice:?}");
    assert!(twice.message().contains(&given.message_id));
    let id_in_note = xinhua
        .feedback(pb::FeedbackRequest {
            notice_id: late.message_id.clone(),
            outcome: "registered".into(),
            note: format!("母亲 {}", synthetic_id(XINHUA, 12).as_str()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(id_in_note.code(), Code::InvalidArgument);
    assert!(!id_in_note.message().contains(synthetic_id(XINHUA, 12).as_str()));
    assert_eq!(
        count(cluster.node(XINHUA), "SELECT count(*) FROM feedback").await,
        1
    );
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM feedback").await,
        1
    );

    // the answered birth leaves both lists; the other, past its deadline, is overdue on both
    for county in [DINGCHENG, XINHUA] {
        sqlx::query("UPDATE notices SET feedback_due_at = now() - interval '1 day' WHERE message_id = $1")
            .bind(late.message_id.parse::<uuid::Uuid>().unwrap())
            .execute(&database(cluster.node(county).store()).await)
            .await
            .unwrap();
    }
    let owed = pending_notices(&cluster, XINHUA, false).await;
    let waited = pending_notices(&cluster, DINGCHENG, true).await;
    for (side, list) in [("owed by 新化县", &owed), ("awaited by 鼎城区", &waited)] {
        assert_eq!(list.len(), 1, "{side}: {list:?}");
        assert_eq!(list[0].message_id, late.message_id, "{side}");
        assert!(list[0].overdue, "{side}: flagged overdue");
    }
    let address = cluster.operator_address(XINHUA).to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hancha"))
            .args(["pending", "--notices", "--node", &address])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("OVERDUE") && text.contains(&late.message_id),
        "{text}"
    );
    assert!(text.contains("1 notices, 1 overdue"), "{text}");

    // feedback given again with its own id is its first result
    let again = xinhua
        .feedback(pb::FeedbackRequest {
            notice_id: birth.message_id.clone(),
            outcome: "child_counted".into(),
            note: "已入户，孩次已更新".into(),
            message_id: given.message_id.clone(),
            wait_ms: 1_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.repeat);
    assert_eq!(again.received_at, given.received_at);
}
