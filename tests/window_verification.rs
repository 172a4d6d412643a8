//! 查证验证 bound to its person: over the real exchange, a verification is about the person its
//! ID names and only that person. A certificate number never finds anyone; it is compared with
//! the number issued to that person, and the answer says so (`certificate_presented`), whether
//! the registry answers or an operator does.

mod common;

use std::time::Duration;

use common::*;
use hancha::domain::division::CountyCode;
use hancha::domain::message::{InquiryState, Subject};
use hancha::domain::person::Person;
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{
    AnswerOutcome, CertificatePresented, InquiryKind, MaritalStatus, Priority, StatusValues,
};
use hancha::node::{InquiryDraft, ManualAnswer};

/// Two women registered in 新化县 and living in 鼎城区, with different certificates and
/// different status, so that an answer about one can never pass for the other.
struct Registry {
    her: ResidentId,
    other: ResidentId,
}

const HER_CERTIFICATE: &str = "HN-431322-2025-0001";
const OTHER_CERTIFICATE: &str = "HN-431322-2025-0002";

async fn registry(cluster: &Cluster) -> Registry {
    let her = synthetic_id(XINHUA, 11);
    let other = synthetic_id(XINHUA, 12);
    let mut her_entry = outflow_person(her.clone(), XINHUA, DINGCHENG);
    her_entry.status.certificate_number = Some(HER_CERTIFICATE.into());
    let mut other_entry: Person = outflow_person(other.clone(), XINHUA, DINGCHENG);
    other_entry.status.certificate_number = Some(OTHER_CERTIFICATE.into());
    other_entry.status.marital_status = Some(MaritalStatus::Divorced);
    other_entry.status.children_count = Some(3);
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&[her_entry, other_entry])
        .await
        .expect("registry written");
    Registry { her, other }
}

fn verification(subject: &ResidentId, shown: Option<&str>) -> InquiryDraft {
    InquiryDraft {
        kind: InquiryKind::CertificateVerification,
        priority: Priority::Normal,
        subject: Subject {
            resident_id: subject.clone(),
            certificate_number: shown.map(String::from),
        },
        message_id: None,
    }
}

/// What 新化县 answers 鼎城区's clerk, inline.
async fn ask(cluster: &Cluster, draft: InquiryDraft) -> (AnswerOutcome, StatusValues) {
    let outcome = cluster
        .node(DINGCHENG)
        .ask(CountyCode::parse(XINHUA).unwrap(), draft, Duration::from_secs(5))
        .await
        .expect("asked");
    assert_eq!(outcome.state, InquiryState::Answered, "{outcome:?}");
    let confirmation = outcome.confirmation.expect("answered inline");
    (confirmation.outcome, confirmation.fields)
}

#[tokio::test]
async fn a_certificate_number_never_finds_a_person_and_a_borrowed_one_is_called_out() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let people = registry(&cluster).await;

    // an unregistered ID with a registered woman's certificate number: nobody, and nothing of hers
    let unregistered = synthetic_id(XINHUA, 99);
    let (outcome, fields) = ask(&cluster, verification(&unregistered, Some(OTHER_CERTIFICATE))).await;
    assert_eq!(outcome, AnswerOutcome::NotFound);
    assert_eq!(
        fields,
        StatusValues::default(),
        "a stranger's status never answers"
    );

    // her ID with the other woman's certificate: about her, and the certificate is not hers
    let (outcome, fields) = ask(&cluster, verification(&people.her, Some(OTHER_CERTIFICATE))).await;
    assert_eq!(outcome, AnswerOutcome::Found);
    assert_eq!(
        fields.certificate_presented,
        Some(CertificatePresented::DoesNotMatch)
    );
    assert_eq!(
        fields.marital_status,
        Some(MaritalStatus::Married),
        "her status, not the other's"
    );
    assert_eq!(fields.children_count, Some(1));

    // her own certificate matches; no certificate shown says so
    let (_, fields) = ask(&cluster, verification(&people.her, Some(HER_CERTIFICATE))).await;
    assert_eq!(fields.certificate_presented, Some(CertificatePresented::Matches));
    let (_, fields) = ask(&cluster, verification(&people.other, None)).await;
    assert_eq!(fields.certificate_presented, Some(CertificatePresented::NotShown));
    assert_eq!(fields.marital_status, Some(MaritalStatus::Divorced));

    // both sides stored what went over the wire
    let stored =
        "SELECT count(*) FROM confirmations WHERE fields->>'certificate_presented' = 'does_not_match'";
    assert_eq!(count(cluster.node(DINGCHENG), stored).await, 1);
    assert_eq!(count(cluster.node(XINHUA), stored).await, 1);
}

#[tokio::test]
async fn an_operator_answering_by_hand_is_told_and_the_answer_says_whether_the_certificate_is_hers() {
    let agreement = answered_by_hand(DINGCHENG, XINHUA, XINHUA);
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    let people = registry(&cluster).await;
    let responder = cluster.node(XINHUA);

    let asked = cluster
        .node(DINGCHENG)
        .ask(
            CountyCode::parse(XINHUA).unwrap(),
            verification(&people.her, Some(OTHER_CERTIFICATE)),
            Duration::from_secs(2),
        )
        .await
        .expect("asked");
    assert_eq!(
        asked.state,
        InquiryState::Pending,
        "left for an operator: {asked:?}"
    );
    let inquiry_id = asked.message_id;
    let shown = eventually("the inquiry reaches 新化县", || async {
        responder.store().inquiry_subject(inquiry_id).await.unwrap()
    })
    .await;
    assert_eq!(
        responder.certificate_presented_here(&shown).await.unwrap(),
        Some(CertificatePresented::DoesNotMatch),
        "the operator's view compares the number shown with the registry"
    );

    // the operator answers `found` without saying anything about the certificate
    let given = responder
        .answer_by_hand(
            inquiry_id,
            ManualAnswer {
                outcome: AnswerOutcome::Found,
                fields: StatusValues {
                    marital_status: Some(MaritalStatus::Married),
                    ..StatusValues::default()
                },
            },
        )
        .await
        .expect("answered");
    assert_eq!(
        given.confirmation.fields.certificate_presented,
        Some(CertificatePresented::DoesNotMatch)
    );
    let arrived = format!(
        "SELECT count(*) FROM confirmations WHERE inquiry_id = '{inquiry_id}' \
         AND fields->>'certificate_presented' = 'does_not_match'"
    );
    eventually("the answer reaches the asker", || async {
        (count(cluster.node(DINGCHENG), &arrived).await == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn certificate_presented_is_never_compared_by_reconciliation() {
    let agreement = hancha::domain::agreement::Agreement::parse(&open_agreement(DINGCHENG, XINHUA))
        .expect("the test agreement parses");
    let direction = agreement.directions().first().expect("a direction");
    assert!(
        direction
            .answer_fields()
            .contains(&hancha::domain::vocabulary::StatusField::CertificatePresented),
        "every agreement that speaks of certificates lets answers say whether the one shown is the holder's"
    );
    assert!(
        !hancha::domain::reconcile::people::compared_fields(&agreement)
            .contains(&hancha::domain::vocabulary::StatusField::CertificatePresented)
    );
}
