use super::*;
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::StatusValues;

const HERE: &str = "431322";

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn outflow(status: StatusValues) -> Person {
    Person {
        resident_id: ResidentId::parse("11010519491231002X").unwrap(),
        name: "测试".into(),
        flow: Flow::Outflow,
        registered_county: county(HERE),
        residence_county: county("430703"),
        status,
    }
}

fn notice(kind: NoticeKind, occurred_on: Option<&str>, fields: &[(NoticeField, &str)]) -> ReceivedNotice {
    ReceivedNotice {
        kind,
        occurred_on: occurred_on.map(date),
        fields: fields.iter().map(|(f, v)| (*f, (*v).to_string())).collect(),
        applied_for: None,
    }
}

fn update(notice: &ReceivedNotice, person: &Person) -> Result<RegistryUpdate, NotApplicable> {
    registry_update(notice, Some(person), county(HERE))
}

#[test]
fn a_contraception_check_sets_the_date_the_class_of_measure_and_not_pregnant() {
    let her = outflow(StatusValues {
        contraception_status: Some(ContraceptionStatus::ShortActing),
        contraception_date: Some(date("2026-06-01")),
        pregnant: None,
        ..StatusValues::default()
    });
    let check = notice(
        NoticeKind::ContraceptionCheck,
        Some("2026-09-15"),
        &[
            (NoticeField::Measure, "iud"),
            (NoticeField::CheckResult, "normal"),
        ],
    );
    let update = update(&check, &her).unwrap();
    assert_eq!(update.person.status.contraception_date, Some(date("2026-09-15")));
    assert_eq!(
        update.person.status.contraception_status,
        Some(ContraceptionStatus::LongActing)
    );
    assert_eq!(update.person.status.pregnant, Some(false));
    assert_eq!(
        update.changed,
        ["contraception_status", "contraception_date", "pregnant"]
    );
}

#[test]
fn a_ring_found_missing_without_a_measure_is_no_method_and_a_pregnant_result_is_pregnant() {
    let her = outflow(StatusValues {
        contraception_status: Some(ContraceptionStatus::LongActing),
        ..StatusValues::default()
    });
    let missing = notice(
        NoticeKind::ContraceptionCheck,
        Some("2026-09-15"),
        &[(NoticeField::CheckResult, "ring_missing")],
    );
    let status = update(&missing, &her).unwrap().person.status;
    assert_eq!(status.contraception_status, Some(ContraceptionStatus::None));
    let pregnant = notice(
        NoticeKind::ContraceptionCheck,
        Some("2026-09-15"),
        &[(NoticeField::CheckResult, "pregnant")],
    );
    let status = update(&pregnant, &her).unwrap().person.status;
    assert_eq!(status.pregnant, Some(true));
    assert_eq!(status.contraception_status, Some(ContraceptionStatus::LongActing));
}

#[test]
fn a_check_older_than_the_one_held_changes_nothing() {
    let her = outflow(StatusValues {
        contraception_date: Some(date("2026-10-01")),
        ..StatusValues::default()
    });
    let old = notice(
        NoticeKind::ContraceptionCheck,
        Some("2026-09-15"),
        &[(NoticeField::Measure, "none")],
    );
    let update = update(&old, &her).unwrap();
    assert!(update.changed.is_empty());
    assert_eq!(update.person, her);
}

#[test]
fn a_check_without_a_date_or_with_an_unknown_measure_waits_for_an_operator() {
    let her = outflow(StatusValues::default());
    let undated = notice(NoticeKind::ContraceptionCheck, None, &[]);
    assert_eq!(update(&undated, &her), Err(NotApplicable::NoDate));
    let unknown = notice(
        NoticeKind::ContraceptionCheck,
        Some("2026-09-15"),
        &[(NoticeField::Measure, "prayer")],
    );
    assert_eq!(
        update(&unknown, &her),
        Err(NotApplicable::Unreadable(NoticeField::Measure))
    );
    assert_eq!(
        NotApplicable::Unreadable(NoticeField::Measure).to_string(),
        "measure has a value this county cannot apply",
        "the reason names the field, never the value"
    );
}

#[test]
fn a_birth_counts_the_child_once_by_its_order_or_by_one() {
    let her = outflow(StatusValues {
        children_count: Some(1),
        pregnant: Some(true),
        ..StatusValues::default()
    });
    let birth = notice(NoticeKind::Birth, Some("2026-10-02"), &[]);
    let update_once = update(&birth, &her).unwrap();
    assert_eq!(update_once.person.status.children_count, Some(2));
    assert_eq!(update_once.person.status.pregnant, Some(false));
    assert_eq!(update_once.changed, ["children_count", "pregnant"]);
    let second = notice(
        NoticeKind::Birth,
        Some("2026-10-02"),
        &[(NoticeField::BirthOrder, "2")],
    );
    let by_order = update(&second, &update_once.person).unwrap();
    assert_eq!(
        by_order.person.status.children_count,
        Some(2),
        "the second child, already counted"
    );
    assert!(by_order.changed.is_empty());
}

#[test]
fn a_birth_for_an_unknown_count_needs_its_order() {
    let her = outflow(StatusValues::default());
    let birth = notice(NoticeKind::Birth, Some("2026-10-02"), &[]);
    assert_eq!(update(&birth, &her), Err(NotApplicable::ChildrenCountUnknown));
    let ordered = notice(
        NoticeKind::Birth,
        Some("2026-10-02"),
        &[(NoticeField::BirthOrder, "3")],
    );
    assert_eq!(
        update(&ordered, &her).unwrap().person.status.children_count,
        Some(3)
    );
    let bad = notice(
        NoticeKind::Birth,
        Some("2026-10-02"),
        &[(NoticeField::BirthOrder, "0")],
    );
    assert_eq!(
        update(&bad, &her),
        Err(NotApplicable::Unreadable(NoticeField::BirthOrder))
    );
}

#[test]
fn a_pregnancy_marks_her_pregnant() {
    let her = outflow(StatusValues::default());
    let update = update(&notice(NoticeKind::Pregnancy, None, &[]), &her).unwrap();
    assert_eq!(update.person.status.pregnant, Some(true));
    assert_eq!(update.changed, ["pregnant"]);
}

#[test]
fn a_departure_moves_her_residence_unless_it_is_unknown_or_here() {
    let her = outflow(StatusValues::default());
    let moved = notice(
        NoticeKind::MovedOn,
        Some("2026-10-02"),
        &[(NoticeField::NewCounty, "430582")],
    );
    let update_moved = update(&moved, &her).unwrap();
    assert_eq!(update_moved.person.residence_county, county("430582"));
    assert_eq!(update_moved.changed, ["residence_county"]);
    let unknown = notice(NoticeKind::MovedOn, Some("2026-10-02"), &[]);
    assert_eq!(update(&unknown, &her), Err(NotApplicable::NewCountyUnknown));
    let home = notice(
        NoticeKind::MovedOn,
        Some("2026-10-02"),
        &[(NoticeField::NewCounty, HERE)],
    );
    assert_eq!(update(&home, &her), Err(NotApplicable::MovedHere));
}

#[test]
fn only_an_outflow_person_in_the_registry_is_updated() {
    let pregnancy = notice(NoticeKind::Pregnancy, None, &[]);
    assert_eq!(
        registry_update(&pregnancy, None, county(HERE)),
        Err(NotApplicable::NotInRegistry)
    );
    let mut living_here = outflow(StatusValues::default());
    living_here.flow = Flow::Inflow;
    assert_eq!(update(&pregnancy, &living_here), Err(NotApplicable::NotOutflow));
}

#[test]
fn stored_bodies_are_read_by_notice_field_name() {
    let body = serde_json::json!({
        "measure": "iud",
        "birth_order": 2,
        "contraception_status": "long_acting",
        "check_result": null,
    });
    let fields = fields_from_json(&body);
    assert_eq!(
        fields,
        BTreeMap::from([
            (NoticeField::Measure, "iud".to_string()),
            (NoticeField::BirthOrder, "2".to_string()),
        ])
    );
    assert!(fields_from_json(&serde_json::json!([])).is_empty());
}

#[test]
fn a_notice_applied_at_receipt_changes_only_a_person_living_in_the_sending_county() {
    let her = outflow(StatusValues::default());
    let mut check = notice(
        NoticeKind::ContraceptionCheck,
        Some("2026-10-15"),
        &[(NoticeField::Measure, "iud")],
    );
    check.applied_for = Some(county("430582"));
    assert_eq!(update(&check, &her), Err(NotApplicable::NotLivingWithSender));
    check.applied_for = Some(county("430703"));
    assert!(!update(&check, &her).unwrap().changed.is_empty());
}
