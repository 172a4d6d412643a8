use std::collections::HashSet;

use uuid::Uuid;

use super::pacing::{fall_back_to_elements, next_chunk, symbol_limit};
use super::people::{compared_fields, fields_key, person_digest};
use super::*;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::person::Flow;
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{StatusField, StatusValues};

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

/// A valid ID number from its first 17 digits (the check character is computed).
fn id(text: &str) -> ResidentId {
    ResidentId::with_check_character(&text[..17]).unwrap()
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

#[test]
fn a_short_secret_is_refused_without_quoting_it() {
    let error = ReconcileKey::new(b"hunter2").unwrap_err();
    assert_eq!(error, SecretError::TooShort(7));
    assert!(!error.to_string().contains("hunter2"));
    assert_eq!(
        format!("{:?}", ReconcileKey::new(SECRET).unwrap()),
        "ReconcileKey(<redacted>)"
    );
}

#[test]
fn elements_depend_on_the_key_and_the_set() {
    let key = ReconcileKey::new(SECRET).unwrap();
    let other = ReconcileKey::new(b"another secret of thirty-two bytes!!").unwrap();
    let digest = [7u8; 32];
    assert_eq!(
        key.element(ReconcileSet::Messages, &digest),
        key.element(ReconcileSet::Messages, &digest)
    );
    assert_ne!(
        key.element(ReconcileSet::Messages, &digest),
        other.element(ReconcileSet::Messages, &digest)
    );
    assert_ne!(
        key.element(ReconcileSet::Messages, &digest),
        key.element(ReconcileSet::SharedPeople, &digest)
    );
}

fn agreement() -> Agreement {
    Agreement::parse(include_str!("../../../examples/agreements/430703-430582.toml")).unwrap()
}

#[test]
fn compared_fields_are_those_answered_both_ways_without_offices() {
    let fields = compared_fields(&agreement());
    let names: Vec<&str> = fields.iter().map(|field| field.as_str()).collect();
    assert_eq!(
        names,
        ["marital_status", "children_count", "contraception_status"]
    );
    assert_eq!(
        fields_key(&fields),
        "marital_status,children_count,contraception_status"
    );
}

#[test]
fn the_person_digest_changes_with_compared_fields_only() {
    let fields = compared_fields(&agreement());
    let person = id("430703199001011233");
    let mut status = StatusValues::default();
    status.set(StatusField::MaritalStatus, "married").unwrap();
    let before = person_digest(&person, &status, &fields);
    let township = crate::domain::division::townships_of(county("430703"))[0];
    status.set(StatusField::Township, township.as_str()).unwrap();
    status
        .set(StatusField::CertificateNumber, "431322-2024-00017")
        .unwrap();
    assert_eq!(
        person_digest(&person, &status, &fields),
        before,
        "fields not compared leave it alone"
    );
    status.set(StatusField::ChildrenCount, "1").unwrap();
    assert_ne!(person_digest(&person, &status, &fields), before);
    assert_ne!(
        person_digest(&id("430703199001011241"), &StatusValues::default(), &fields),
        before
    );
}

#[test]
fn chunks_start_small_and_grow_with_what_was_sent() {
    assert_eq!(next_chunk(0), pacing::FIRST_CHUNK);
    assert_eq!(next_chunk(800), 100);
    assert_eq!(next_chunk(10_000_000), pacing::MAX_CHUNK);
    assert!(!fall_back_to_elements(2_000, 250, 1_000_000));
    assert!(fall_back_to_elements(800_000, 4096, 1_000_000));
    // The most an honest sender sends before falling back: every element's bytes in symbols.
    let honest_most = 1_000_000 * pacing::ELEMENT_BYTES / crate::domain::riblt::symbol::MAX_ENCODED_LEN;
    assert!(symbol_limit(1_000_000) > honest_most + pacing::MAX_CHUNK);
}

fn message(message_type: MessageType, author: &str, n: u128) -> MessageRef {
    MessageRef {
        message_type,
        message_id: Uuid::from_u128(n),
        author: county(author),
    }
}

#[test]
fn the_author_redelivers_and_the_other_side_waits() {
    let me = county("430582");
    let lost_confirmation = message(MessageType::Confirmation, "430582", 1);
    let their_notice = message(MessageType::Notice, "430703", 2);
    let plans = plan_messages(me, &[lost_confirmation], &[their_notice]);
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].message, lost_confirmation);
    assert_eq!(plans[0].difference, MessageDifference::MissingAtPeer);
    assert_eq!(plans[0].repair, MessageRepair::Redeliver);
    assert_eq!(plans[1].difference, MessageDifference::MissingHere);
    assert_eq!(plans[1].repair, MessageRepair::AwaitPeer);
}

#[test]
fn divergent_and_self_lost_messages_are_reported() {
    let me = county("430582");
    let divergent = message(MessageType::Inquiry, "430703", 3);
    let lost_by_me = message(MessageType::Inquiry, "430582", 4);
    let lost_by_peer = message(MessageType::Notice, "430703", 5);
    let plans = plan_messages(me, &[divergent, lost_by_peer], &[divergent, lost_by_me]);
    let repairs: Vec<_> = plans
        .iter()
        .map(|plan| (plan.message.message_id, plan.difference, plan.repair))
        .collect();
    assert!(repairs.contains(&(
        divergent.message_id,
        MessageDifference::Divergent,
        MessageRepair::Report
    )));
    assert!(repairs.contains(&(
        lost_by_me.message_id,
        MessageDifference::MissingHere,
        MessageRepair::Report
    )));
    assert!(repairs.contains(&(
        lost_by_peer.message_id,
        MessageDifference::MissingAtPeer,
        MessageRepair::Report
    )));
    assert_eq!(plans.len(), 3, "a divergent message is one difference, not two");
}

fn person(text: &str, flow: Flow, tag: u8) -> PersonSide {
    PersonSide {
        resident_id: id(text),
        flow,
        township: None,
        tag: [tag; 32],
    }
}

#[test]
fn a_recent_not_found_answer_covers_an_unknown_person_but_not_a_different_one() {
    let unknown = person("430703199001011233", Flow::Outflow, 1);
    let different = person("430703199001011241", Flow::Outflow, 2);
    let asked = AskedBefore {
        pending_or_reconciled: HashSet::new(),
        not_found: [
            unknown.resident_id.as_str().to_string(),
            different.resident_id.as_str().to_string(),
        ]
        .into(),
    };
    let plans = plan_people(&[unknown, different], &[[2; 32]], true, &asked, 10);
    let actions: Vec<_> = plans.iter().map(|plan| (plan.difference, plan.action)).collect();
    assert_eq!(
        actions,
        [
            (PersonDifference::UnknownToPeer, PersonAction::AlreadyAsked),
            (PersonDifference::Differs, PersonAction::InquiryOpened),
        ]
    );
}

#[test]
fn the_origin_asks_within_the_cap_and_reports_the_rest() {
    let ours = [
        person("430703199001011233", Flow::Outflow, 1),
        person("430703199001011241", Flow::Outflow, 2),
        person("430703199001011268", Flow::Outflow, 3),
        person("430703199001011276", Flow::Inflow, 4),
    ];
    let asked = AskedBefore {
        pending_or_reconciled: [id("430703199001011268").as_str().to_string()].into(),
        not_found: HashSet::new(),
    };
    let plans = plan_people(&ours, &[[2; 32], [9; 32]], true, &asked, 1);
    let summary: Vec<_> = plans
        .iter()
        .map(|plan| (plan.tag[0], plan.difference, plan.action))
        .collect();
    assert_eq!(
        summary,
        [
            (1, PersonDifference::UnknownToPeer, PersonAction::InquiryOpened),
            (2, PersonDifference::Differs, PersonAction::OverCap),
            (3, PersonDifference::UnknownToPeer, PersonAction::AlreadyAsked),
            (4, PersonDifference::UnknownToPeer, PersonAction::Reported),
            (9, PersonDifference::UnknownHere, PersonAction::Reported),
        ]
    );
    let without_permission = plan_people(&ours, &[], false, &AskedBefore::default(), 10);
    assert!(
        without_permission
            .iter()
            .all(|plan| plan.action == PersonAction::Reported)
    );
}
