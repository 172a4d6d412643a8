//! The exchange between real county nodes: inquiries answered inline or later, by the registry or
//! by hand, delivered exactly once even when a peer is down.

mod common;

use std::time::Duration;

use common::*;
use hancha::domain::message::{InquiryState, Subject};
use hancha::domain::vocabulary::{AnswerOutcome, InquiryKind, Priority, StatusField, StatusValues};
use hancha::node::{InquiryDraft, ManualAnswer};
use hancha::proto::exchange as pb;

fn inquiry(
    cluster: &Cluster,
    asker: &str,
    responder: &str,
    id: &hancha::domain::resident_id::ResidentId,
) -> pb::Inquiry {
    let agreement_id = format!("{}-{}", asker.min(responder), asker.max(responder));
    pb::Inquiry {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(responder, &agreement_id),
            id: agreement_id,
        }),
        kind: pb::InquiryKind::CertificateVerification as i32,
        priority: pb::Priority::Normal as i32,
        subject: Some(pb::Subject {
            resident_id: id.as_str().to_string(),
            certificate_number: String::new(),
        }),
    }
}

#[tokio::test]
async fn certificate_verification_is_answered_inline_with_exactly_the_agreed_fields() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let woman = synthetic_id(XINHUA, 1);
    let mut person = outflow_person(woman.clone(), XINHUA, DINGCHENG);
    person.status.contraception_status = Some(hancha::domain::vocabulary::ContraceptionStatus::LongActing);
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&[person])
        .await
        .unwrap();

    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let started = std::time::Instant::now();
    let response = client
        .submit_inquiry(pb::SubmitInquiryRequest {
            inquiry: Some(inquiry(&cluster, DINGCHENG, XINHUA, &woman)),
            wait_ms: 2_000,
        })
        .await
        .expect("accepted")
        .into_inner();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered within the wait"
    );
    let accepted = response.accepted.expect("receipt");
    assert!(accepted.due_at.is_some(), "the receipt names the deadline");
    let confirmation = response.confirmation.expect("answered inline");
    assert_eq!(confirmation.outcome, pb::Outcome::Found as i32);
    let mut fields: Vec<&str> = confirmation.fields.keys().map(String::as_str).collect();
    fields.sort();
    // The agreement allows these four (and, as it speaks of certificates, whether the one
    // shown is the holder's); the registry also holds contraception status and township,
    // which must not leave the node.
    assert_eq!(
        fields,
        [
            "certificate_presented",
            "certificate_status",
            "certificate_valid_until",
            "children_count",
            "marital_status"
        ]
    );
    assert_eq!(confirmation.fields["certificate_valid_until"], "2028-05-31");
}

#[tokio::test]
async fn unsettled_inquiry_waits_pending_and_a_manual_answer_reaches_the_asker() {
    let agreement = answered_by_hand(DINGCHENG, XINHUA, XINHUA);
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    let asker = cluster.node(DINGCHENG);
    let responder = cluster.node(XINHUA);
    let subject = Subject {
        resident_id: synthetic_id(XINHUA, 7),
        certificate_number: None,
    };
    let draft = InquiryDraft {
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Urgent,
        subject,
        message_id: None,
    };
    let (queued, new) = asker
        .send_inquiries(common_county(XINHUA), vec![draft])
        .await
        .unwrap();
    assert_eq!(new, 1);
    let inquiry_id = queued[0].message_id;

    let pending = eventually("the responder holds the inquiry as pending", || async {
        responder
            .store()
            .inquiry(inquiry_id)
            .await
            .unwrap()
            .filter(|i| i.state == InquiryState::Pending)
    })
    .await;
    let received = pending.received_at.unwrap();
    assert_eq!(
        pending.due_at.unwrap() - received,
        chrono::Duration::days(15),
        "urgent: 15 days"
    );
    let at_asker = eventually("the asker records the receipt", || async {
        asker
            .store()
            .inquiry(inquiry_id)
            .await
            .unwrap()
            .filter(|i| i.state == InquiryState::Pending)
    })
    .await;
    assert_eq!(
        at_asker.due_at, pending.due_at,
        "both sides know the same deadline"
    );

    let mut fields = StatusValues::default();
    fields.set(StatusField::CertificateStatus, "valid").unwrap();
    responder
        .answer_by_hand(
            inquiry_id,
            ManualAnswer {
                outcome: AnswerOutcome::Found,
                fields,
            },
        )
        .await
        .expect("answered by hand");

    let answered = eventually("the asker's inquiry shows answered", || async {
        asker
            .store()
            .inquiry(inquiry_id)
            .await
            .unwrap()
            .filter(|i| i.state == InquiryState::Answered)
    })
    .await;
    assert_eq!(answered.outcome, Some(AnswerOutcome::Found));
    let confirmation = asker
        .store()
        .confirmation_for(inquiry_id)
        .await
        .unwrap()
        .expect("confirmation stored");
    assert_eq!(
        confirmation.fields.certificate_status.map(|s| s.as_str()),
        Some("valid")
    );
}

#[tokio::test]
async fn manual_answer_with_a_field_outside_the_agreement_is_refused_naming_the_allowed_ones() {
    let agreement = answered_by_hand(DINGCHENG, XINHUA, XINHUA);
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    let subject = Subject {
        resident_id: synthetic_id(XINHUA, 8),
        certificate_number: None,
    };
    let draft = InquiryDraft {
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Normal,
        subject,
        message_id: None,
    };
    let (queued, _) = cluster
        .node(DINGCHENG)
        .send_inquiries(common_county(XINHUA), vec![draft])
        .await
        .unwrap();
    let responder = cluster.node(XINHUA);
    let id = queued[0].message_id;
    eventually("pending at the responder", || async {
        responder.store().inquiry(id).await.unwrap()
    })
    .await;

    let mut fields = StatusValues::default();
    fields.set(StatusField::Pregnant, "true").unwrap();
    let error = responder
        .answer_by_hand(
            id,
            ManualAnswer {
                outcome: AnswerOutcome::Found,
                fields,
            },
        )
        .await
        .expect_err("pregnant is not an agreed field");
    let message = error.to_string();
    assert!(
        message.contains("pregnant") && message.contains("allowed: marital_status"),
        "{message}"
    );
    assert_eq!(
        responder.store().inquiry(id).await.unwrap().unwrap().state,
        InquiryState::Pending,
        "nothing written"
    );
}

pub fn common_county(code: &str) -> hancha::domain::division::CountyCode {
    hancha::domain::division::CountyCode::parse(code).unwrap()
}
