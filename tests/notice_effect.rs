//! What a notice received at the origin does there: under `notice_effect = "apply"` a
//! contraception check result updates the origin's registry as it is stored, and the registry's
//! history names the notice; a birth under the default (`operator`) changes nothing until an
//! operator applies it, is applied at most once, and can be dismissed with a reason instead.
//! Notices travel between two real nodes over mutual TLS (`DeliverNotices` with the sender's
//! client certificate); the operator calls go through the origin's operator API. Also: a
//! repeated notice keeps the feedback deadline of its first receipt, checked at the store with
//! the two receipts a day apart.

mod common;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::*;
use hancha::domain::message::{AgreementRef, Notice, Subject};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{NoticeEffect, NoticeKind, NoticeValues, StatusValues};
use hancha::proto::exchange as pb;
use hancha::proto::operator as op;
use hancha::store::notices::{InboundNotice, NoticeReceipt};
use tonic::Code;
use tonic::transport::Channel;

/// 鼎城区 (where she lives) notifies 新化县 (where she is registered) of every kind; 新化县's
/// registry takes contraception check results at once, the rest waits for an operator.
fn effect_agreement() -> String {
    signed(&format!(
        r#"id = "{DINGCHENG}-{XINHUA}"
version = 1
title = "test agreement"
parties = ["{DINGCHENG}", "{XINHUA}"]
valid_from = 2026-01-01
valid_until = 2030-12-31
retention_days = 1095

[[direction]]
from = "{DINGCHENG}"
to = "{XINHUA}"
inquiry_kinds = ["certificate_verification"]
notice_kinds = ["birth", "pregnancy", "contraception_check", "moved_on"]
answer_fields = ["certificate_status"]
reply_days = {{ normal = 30, urgent = 15 }}
notice_days = {{ receipt = 30, feedback = 30 }}
daily_cap = 20000
automatic_answers = true
notice_effect = {{ contraception_check = "apply" }}

[[direction]]
from = "{XINHUA}"
to = "{DINGCHENG}"
inquiry_kinds = ["outflow_status"]
notice_kinds = []
answer_fields = ["township"]
reply_days = {{ normal = 30, urgent = 15 }}
daily_cap = 20000
automatic_answers = true
"#
    ))
}

/// A notice of `kind` about `subject` from 鼎城区 to 新化县.
fn notice(cluster: &Cluster, kind: pb::NoticeKind, subject: &ResidentId, occurred_on: &str) -> pb::Notice {
    let id = format!("{DINGCHENG}-{XINHUA}");
    pb::Notice {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(XINHUA, &id),
            id,
        }),
        kind: kind as i32,
        subject: Some(pb::Subject {
            resident_id: subject.as_str().to_owned(),
            certificate_number: String::new(),
        }),
        occurred_on: occurred_on.into(),
        fields: Default::default(),
    }
}

/// Delivers one batch over `DeliverNotices` as 鼎城区 and returns the receipts.
async fn deliver(cluster: &Cluster, notices: Vec<pb::Notice>) -> Vec<pb::Receipt> {
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let request = tokio_stream::iter(vec![pb::NoticeBatch { notices }]);
    let mut stream = client.deliver_notices(request).await.unwrap().into_inner();
    let mut receipts = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        receipts.extend(batch.receipts);
    }
    receipts
}

/// The `n`-th 新化县 woman living in 鼎城区, in 新化县's registry with one child.
async fn registered(cluster: &Cluster, n: u32) -> ResidentId {
    let id = synthetic_id(XINHUA, n);
    let person = outflow_person(id.clone(), XINHUA, DINGCHENG);
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&[person])
        .await
        .unwrap();
    id
}

async fn status(cluster: &Cluster, id: &ResidentId) -> StatusValues {
    let person = cluster.node(XINHUA).store().person(id).await.unwrap();
    person.expect("in the registry").status
}

async fn history(
    operator: &mut op::operator_client::OperatorClient<Channel>,
    id: &ResidentId,
) -> Vec<op::RegistryChange> {
    operator
        .registry_history(op::RegistryHistoryRequest {
            resident_id: id.as_str().to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .changes
}

async fn listed(
    operator: &mut op::operator_client::OperatorClient<Channel>,
    pending_only: bool,
) -> Vec<op::ReceivedNotice> {
    operator
        .list_notices(op::ListNoticesRequest {
            pending_only,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notices
}

#[tokio::test]
async fn a_contraception_check_under_apply_updates_the_origin_registry_and_the_history_names_it() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[effect_agreement()]).await;
    let her = registered(&cluster, 1).await;
    let stranger = synthetic_id(XINHUA, 2);
    let mut operator = cluster.operator(XINHUA).await;
    let check = notice(&cluster, pb::NoticeKind::ContraceptionCheck, &her, "2026-09-15");
    let unknown = notice(
        &cluster,
        pb::NoticeKind::ContraceptionCheck,
        &stranger,
        "2026-09-15",
    );

    let receipts = deliver(&cluster, vec![check.clone(), unknown.clone()]).await;

    assert_eq!(receipts.len(), 2);
    accepted(&receipts[0]);
    accepted(&receipts[1]);
    assert_eq!(
        status(&cluster, &her).await.contraception_date,
        NaiveDate::from_ymd_opt(2026, 9, 15),
        "the registry took the check as it was stored"
    );
    let changes = history(&mut operator, &her).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].field, "contraception_date");
    assert_eq!(changes[0].old_value, "");
    assert_eq!(changes[0].new_value, "2026-09-15");
    assert_eq!(changes[0].source, "notice");
    assert_eq!(
        changes[0].message_id, check.message_id,
        "the history names the notice"
    );
    assert_eq!(changes[0].changed_by, "", "applied on receipt, by no operator");

    let notices = listed(&mut operator, false).await;
    let applied = notices.iter().find(|n| n.message_id == check.message_id).unwrap();
    assert_eq!(
        (applied.effect.as_str(), applied.state.as_str()),
        ("apply", "applied")
    );
    assert_eq!(applied.changed, ["contraception_date"]);
    // a person the registry does not hold: nothing changes, the notice waits with the reason
    let waiting = listed(&mut operator, true).await;
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    assert_eq!(waiting[0].message_id, unknown.message_id);
    assert_eq!(waiting[0].note, "the person is not in this county's registry");
    assert!(!waiting[0].subject_masked.contains(stranger.as_str()));

    // the same notice again: its first receipt, and the registry is not touched twice
    let again = deliver(&cluster, vec![check.clone()]).await;
    assert_eq!(accepted(&again[0]), accepted(&receipts[0]));
    assert_eq!(history(&mut operator, &her).await.len(), 1);
}

#[tokio::test]
async fn a_birth_under_operator_waits_is_applied_once_by_hand_or_dismissed_with_a_reason() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[effect_agreement()]).await;
    let mother = registered(&cluster, 3).await;
    let other = registered(&cluster, 4).await;
    let mut operator = cluster.operator(XINHUA).await;
    let birth = notice(&cluster, pb::NoticeKind::Birth, &mother, "2026-10-02");
    let other_birth = notice(&cluster, pb::NoticeKind::Birth, &other, "2026-10-03");
    let receipts = deliver(&cluster, vec![birth.clone(), other_birth.clone()]).await;
    let first_due = accepted(&receipts[0]).due_at.expect("a birth owes feedback");

    // nothing changes until an operator applies it
    assert_eq!(status(&cluster, &mother).await.children_count, Some(1));
    assert!(history(&mut operator, &mother).await.is_empty());
    let waiting = listed(&mut operator, true).await;
    assert_eq!(
        waiting.iter().map(|n| n.message_id.as_str()).collect::<Vec<_>>(),
        [birth.message_id.as_str(), other_birth.message_id.as_str()]
    );
    assert!(
        waiting
            .iter()
            .all(|n| n.effect == "operator" && n.state == "pending")
    );

    let applied = operator
        .apply_notice(op::ApplyNoticeRequest {
            message_id: birth.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .notice
        .unwrap();
    assert_eq!(applied.state, "applied");
    assert_eq!(applied.changed, ["children_count"]);
    assert_eq!(applied.decided_by, "loopback");
    assert_eq!(status(&cluster, &mother).await.children_count, Some(2));
    let changes = history(&mut operator, &mother).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(
        (
            changes[0].field.as_str(),
            changes[0].old_value.as_str(),
            changes[0].new_value.as_str()
        ),
        ("children_count", "1", "2")
    );
    assert_eq!(changes[0].message_id, birth.message_id);
    assert_eq!(changes[0].changed_by, "loopback");

    // applying it again is refused, saying so, and counts the child once
    let twice = operator
        .apply_notice(op::ApplyNoticeRequest {
            message_id: birth.message_id.clone(),
        })
        .await
        .expect_err("a notice is applied once");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(
        twice.message().contains("was applied at") && twice.message().contains("nothing changed"),
        "{}",
        twice.message()
    );
    assert_eq!(status(&cluster, &mother).await.children_count, Some(2));
    assert_eq!(history(&mut operator, &mother).await.len(), 1);

    // the repeated notice keeps its first receipt (and deadline) and is not applied again
    let again = deliver(&cluster, vec![birth.clone()]).await;
    assert_eq!(accepted(&again[0]).due_at.as_ref(), Some(&first_due));
    assert_eq!(status(&cluster, &mother).await.children_count, Some(2));

    // the other is dismissed: recorded with its reason, the registry untouched
    let no_reason = operator
        .dismiss_notice(op::DismissNoticeRequest {
            message_id: other_birth.message_id.clone(),
            reason: " ".into(),
        })
        .await
        .expect_err("a reason is required");
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let dismissed = operator
        .dismiss_notice(op::DismissNoticeRequest {
            message_id: other_birth.message_id.clone(),
            reason: "registered by the township already".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .notice
        .unwrap();
    assert_eq!(
        (dismissed.state.as_str(), dismissed.note.as_str()),
        ("dismissed", "registered by the township already")
    );
    assert_eq!(status(&cluster, &other).await.children_count, Some(1));
    assert!(history(&mut operator, &other).await.is_empty());
    let after_dismissal = operator
        .apply_notice(op::ApplyNoticeRequest {
            message_id: other_birth.message_id.clone(),
        })
        .await
        .expect_err("a dismissed notice is not applied");
    assert_eq!(after_dismissal.code(), Code::FailedPrecondition);
    assert!(after_dismissal.message().contains("was dismissed at"));
    assert!(listed(&mut operator, true).await.is_empty());

    let unknown = operator
        .apply_notice(op::ApplyNoticeRequest {
            message_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("no such notice");
    assert_eq!(unknown.code(), Code::NotFound);
    let audit = cluster
        .node(XINHUA)
        .store()
        .recent_operator_access(50)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|record| record.access.action == "apply_notice"
            && record.access.outcome == "applied"
            && record.access.message_id.map(|id| id.to_string()) == Some(birth.message_id.clone())),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|record| record.access.action == "dismiss_notice" && record.access.outcome == "dismissed"),
        "{audit:#?}"
    );
}

#[tokio::test]
async fn a_registry_import_that_changes_an_entry_is_in_its_history_as_an_import() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[effect_agreement()]).await;
    let her = registered(&cluster, 5).await;
    let mut changed = outflow_person(her.clone(), XINHUA, DINGCHENG);
    changed.status.children_count = Some(2);
    let store = cluster.node(XINHUA).store();
    store.upsert_persons(&[changed.clone()]).await.unwrap();
    store.upsert_persons(&[changed]).await.unwrap();

    let changes = history(&mut cluster.operator(XINHUA).await, &her).await;
    assert_eq!(
        changes.len(),
        1,
        "an unchanged import records nothing: {changes:#?}"
    );
    assert_eq!(
        (
            changes[0].field.as_str(),
            changes[0].source.as_str(),
            changes[0].new_value.as_str()
        ),
        ("children_count", "import", "2")
    );
}

#[tokio::test]
async fn a_repeated_birth_notice_keeps_the_feedback_deadline_of_its_first_receipt() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[effect_agreement()]).await;
    let store = cluster.node(XINHUA).store();
    let id = format!("{DINGCHENG}-{XINHUA}");
    let birth = Notice {
        message_id: uuid::Uuid::now_v7(),
        agreement: AgreementRef {
            hash: cluster.agreement_hash(XINHUA, &id),
            id,
        },
        kind: NoticeKind::Birth,
        subject: Subject {
            resident_id: synthetic_id(XINHUA, 6),
            certificate_number: None,
        },
        occurred_on: NaiveDate::from_ymd_opt(2026, 10, 2),
        fields: NoticeValues::default(),
    };
    let sender = hancha::domain::division::CountyCode::parse(DINGCHENG).unwrap();
    let here = hancha::domain::division::CountyCode::parse(XINHUA).unwrap();
    let first_at = Utc.with_ymd_and_hms(2026, 10, 5, 8, 0, 0).unwrap();
    let repeat_at = first_at + Duration::days(1);
    let receive = |at: chrono::DateTime<Utc>| {
        let batch = [InboundNotice {
            notice: &birth,
            feedback_due_at: Some(at + Duration::days(30)),
            effect: NoticeEffect::Operator,
        }];
        async move {
            store
                .accept_inbound_notices(sender, here, &batch, at)
                .await
                .unwrap()
        }
    };

    let first = receive(first_at).await;
    let repeat = receive(repeat_at).await;

    let deadline = first_at + Duration::days(30);
    assert_eq!(
        first,
        [NoticeReceipt::Accepted {
            received_at: first_at,
            feedback_due_at: Some(deadline)
        }]
    );
    assert_eq!(
        repeat,
        [NoticeReceipt::Duplicate {
            received_at: first_at,
            feedback_due_at: Some(deadline)
        }],
        "the repeat a day later gets the first receipt's deadline, not one from its own arrival"
    );
    assert_eq!(
        count(
            cluster.node(XINHUA),
            "SELECT count(*) FROM notice_effects WHERE state = 'pending'"
        )
        .await,
        1,
        "one effect, from the first receipt"
    );
}

#[tokio::test]
async fn a_township_office_sees_and_settles_the_notices_about_its_own_people_only() {
    let offices = TownshipOffices::start().await;
    let cluster = &offices.cluster;
    // 新化县 notifies 鼎城区 of births to the two women living in 鼎城区's townships A and B
    let id = format!("{DINGCHENG}-{XINHUA}");
    let birth = |subject: &ResidentId| pb::Notice {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(DINGCHENG, &id),
            id: id.clone(),
        }),
        kind: pb::NoticeKind::Birth as i32,
        subject: Some(pb::Subject {
            resident_id: subject.as_str().to_owned(),
            certificate_number: String::new(),
        }),
        occurred_on: "2026-10-02".into(),
        fields: Default::default(),
    };
    let (birth_a, birth_b) = (birth(&offices.person_a), birth(&offices.person_b));
    let mut client = cluster.client(XINHUA, DINGCHENG).await;
    let request = tokio_stream::iter(vec![pb::NoticeBatch {
        notices: vec![birth_a.clone(), birth_b.clone()],
    }]);
    let mut stream = client.deliver_notices(request).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}
    let clerk = offices.township_operator("clerk-a", &[offices.township_a.as_str()]);
    let mut office_a = offices.client(&clerk).await;

    let seen = listed(&mut office_a, true).await;
    assert_eq!(
        seen.iter().map(|n| n.message_id.as_str()).collect::<Vec<_>>(),
        [birth_a.message_id.as_str()],
        "only township A's"
    );
    let other = office_a
        .dismiss_notice(op::DismissNoticeRequest {
            message_id: birth_b.message_id.clone(),
            reason: "not ours".into(),
        })
        .await
        .expect_err("township B's notice is not township A's to settle");
    assert_eq!(other.code(), Code::NotFound);
    assert_eq!(
        other.message(),
        format!("no notice {} was received", birth_b.message_id),
        "worded as for a notice never received"
    );
    // she lives here (inflow): a birth notice is for the county she is registered in
    let own = office_a
        .apply_notice(op::ApplyNoticeRequest {
            message_id: birth_a.message_id.clone(),
        })
        .await
        .expect_err("not an outflow person of 鼎城区");
    assert_eq!(own.code(), Code::FailedPrecondition);
    assert!(
        own.message().contains("not registered here as living elsewhere"),
        "{}",
        own.message()
    );
    let history_b = office_a
        .registry_history(op::RegistryHistoryRequest {
            resident_id: offices.person_b.as_str().to_owned(),
        })
        .await
        .expect_err("township B's person");
    assert_eq!(history_b.code(), Code::NotFound);
    assert!(!history_b.message().contains(offices.person_b.as_str()));
    let mut county = offices.client(&offices.county_operator("head-office")).await;
    assert_eq!(listed(&mut county, true).await.len(), 2);
}

/// A contraception check as the sender's notice fields carry it (`check_result`, `measure`),
/// stored as received and waiting for an operator: stored here behind the node's back, since
/// this version's wire carries status fields only.
#[tokio::test]
async fn a_waiting_check_applied_by_hand_takes_the_measure_and_the_result_it_carries() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[effect_agreement()]).await;
    let her = registered(&cluster, 7).await;
    let message_id = uuid::Uuid::now_v7();
    let pool = database(cluster.node(XINHUA).store()).await;
    let id = format!("{DINGCHENG}-{XINHUA}");
    sqlx::query(
        "INSERT INTO notices (message_id, direction, peer_county, agreement_id, agreement_hash, kind,
                              subject_id, occurred_on, body, acknowledged_at)
         VALUES ($1, 'inbound', $2, $3, $4, 'contraception_check', $5, '2026-09-15',
                 '{\"check_result\": \"normal\", \"measure\": \"iud\"}', now())",
    )
    .bind(message_id)
    .bind(DINGCHENG)
    .bind(&id)
    .bind(cluster.agreement_hash(XINHUA, &id))
    .bind(her.as_str())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO notice_effects (message_id, effect, state) VALUES ($1, 'operator', 'pending')")
        .bind(message_id)
        .execute(&pool)
        .await
        .unwrap();
    let mut operator = cluster.operator(XINHUA).await;

    let applied = operator
        .apply_notice(op::ApplyNoticeRequest {
            message_id: message_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .notice
        .unwrap();

    assert_eq!(
        applied.changed,
        ["contraception_status", "contraception_date"],
        "she was not pregnant before either"
    );
    let status = status(&cluster, &her).await;
    assert_eq!(
        status.contraception_status,
        Some(hancha::domain::vocabulary::ContraceptionStatus::LongActing)
    );
    assert_eq!(status.contraception_date, NaiveDate::from_ymd_opt(2026, 9, 15));
    assert_eq!(status.pregnant, Some(false));
    let fields: Vec<String> = history(&mut operator, &her)
        .await
        .into_iter()
        .map(|change| format!("{}={}", change.field, change.new_value))
        .collect();
    assert_eq!(
        fields,
        [
            "contraception_status=long_acting",
            "contraception_date=2026-09-15"
        ]
    );
}
