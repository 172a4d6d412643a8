//! Tests of the parent module.
use std::collections::BTreeSet;

use super::*;

/// Checks, for one vocabulary, that every value round-trips through its name, serde uses the
/// same name, and names are unique and in `snake_case`.
fn assert_consistent<T>(all: &[T], names: &[&str])
where
    T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr + Serialize,
    T: for<'de> Deserialize<'de>,
{
    assert_eq!(all.len(), names.len());
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "names must be unique");
    for (&value, &name) in all.iter().zip(names) {
        assert_eq!(value.to_string(), name);
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert!(name.parse::<T>().ok() == Some(value));
        assert_eq!(serde_json::to_string(&value).unwrap(), format!("\"{name}\""));
        let back: T = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(back, value);
    }
}

#[test]
fn every_vocabulary_spells_each_value_one_way() {
    assert_consistent(InquiryKind::ALL, InquiryKind::NAMES);
    assert_consistent(NoticeKind::ALL, NoticeKind::NAMES);
    assert_consistent(Priority::ALL, Priority::NAMES);
    assert_consistent(AnswerOutcome::ALL, AnswerOutcome::NAMES);
    assert_consistent(StatusField::ALL, StatusField::NAMES);
    assert_consistent(MaritalStatus::ALL, MaritalStatus::NAMES);
    assert_consistent(CertificateStatus::ALL, CertificateStatus::NAMES);
    assert_consistent(ContraceptionStatus::ALL, ContraceptionStatus::NAMES);
}

#[test]
fn wire_names_match_the_documented_spellings() {
    assert_eq!(InquiryKind::OutflowStatus.as_str(), "outflow_status");
    assert_eq!(InquiryKind::CertificateVerification.label_zh(), "查证验证");
    assert_eq!(NoticeKind::ContraceptionCheck.as_str(), "contraception_check");
    assert_eq!(NoticeKind::ContraceptionCheck.label_zh(), "查环查孕结果");
    assert_eq!(
        StatusField::CertificateValidUntil.as_str(),
        "certificate_valid_until"
    );
    assert_eq!(ContraceptionStatus::NotApplicable.as_str(), "not_applicable");
}

#[test]
fn unknown_name_lists_the_allowed_names() {
    let error = "foo".parse::<InquiryKind>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown inquiry kind (allowed: certificate_verification, outflow_status)"
    );
    let error = "431322199002300042".parse::<Priority>().unwrap_err().to_string();
    assert_eq!(
        error, "unknown priority (allowed: normal, urgent)",
        "the value given is never echoed"
    );
}

#[test]
fn serde_rejects_unknown_names_with_the_same_message() {
    let error = serde_json::from_str::<StatusField>("\"shoe_size\"").unwrap_err();
    assert!(error.to_string().contains("allowed: marital_status"), "{error}");
}

#[test]
fn only_birth_notices_require_feedback() {
    let needing: Vec<_> = NoticeKind::ALL
        .iter()
        .filter(|kind| kind.requires_feedback())
        .collect();
    assert_eq!(needing, [&NoticeKind::Birth]);
}

#[test]
fn message_kinds_are_named_by_their_inner_kind() {
    let all: Vec<MessageKind> = InquiryKind::ALL
        .iter()
        .map(|&kind| MessageKind::from(kind))
        .chain(NoticeKind::ALL.iter().map(|&kind| MessageKind::from(kind)))
        .collect();
    let names: Vec<&str> = all.iter().map(|kind| kind.as_str()).collect();
    assert_eq!(names, MESSAGE_KIND_NAMES);
    for kind in all {
        assert_eq!(kind.as_str().parse::<MessageKind>(), Ok(kind));
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(serde_json::from_str::<MessageKind>(&json).unwrap(), kind);
    }
    assert_eq!(MessageKind::Notice(NoticeKind::Birth).label_zh(), "出生通报");
    let error = "letter".parse::<MessageKind>().unwrap_err().to_string();
    assert!(
        error.contains("message kind") && error.contains("moved_on"),
        "{error}"
    );
}

fn sample_values() -> StatusValues {
    let mut values = StatusValues::default();
    for (field, text) in [
        (StatusField::MaritalStatus, "married"),
        (StatusField::CertificateNumber, "431322-2025-000123"),
        (StatusField::CertificateValidUntil, "2028-05-31"),
        (StatusField::CertificateStatus, "valid"),
        (StatusField::ChildrenCount, "1"),
        (StatusField::ContraceptionStatus, "long_acting"),
        (StatusField::ContraceptionDate, "2025-11-03"),
        (StatusField::Pregnant, "false"),
        (StatusField::RegisteredSince, "2024-03-15"),
        (StatusField::Township, "430703001"),
        (StatusField::Village, "430703001001"),
        (StatusField::CertificatePresented, "does_not_match"),
    ] {
        values.set(field, text).unwrap();
    }
    values
}

#[test]
fn set_and_get_string_round_trip_every_field() {
    let values = sample_values();
    assert_eq!(values.present_fields().len(), StatusField::ALL.len());
    for &field in StatusField::ALL {
        let text = values.get_string(field).unwrap();
        let mut copy = StatusValues::default();
        copy.set(field, &text).unwrap();
        assert_eq!(copy.get_string(field).as_deref(), Some(text.as_str()));
    }
}

#[test]
fn filtered_keeps_only_the_agreed_fields() {
    let allowed = BTreeSet::from([StatusField::CertificateStatus, StatusField::Pregnant]);
    let filtered = sample_values().filtered(&allowed);
    assert_eq!(filtered.present_fields(), allowed);
    assert_eq!(filtered.certificate_status, Some(CertificateStatus::Valid));
    assert_eq!(filtered.certificate_number, None);
    assert_eq!(
        sample_values().filtered(&BTreeSet::new()),
        StatusValues::default()
    );
}

#[test]
fn set_rejects_bad_values_without_echoing_them() {
    let mut values = StatusValues::default();
    for (field, text) in [
        (StatusField::MaritalStatus, "complicated"),
        (StatusField::CertificateNumber, "has space"),
        (StatusField::CertificateNumber, ""),
        (StatusField::CertificateValidUntil, "2026-02-30"),
        (StatusField::CertificateValidUntil, "31.05.2028"),
        (StatusField::ChildrenCount, "-1"),
        (StatusField::Pregnant, "maybe"),
        (StatusField::Township, "430703999"),
        (StatusField::Village, "999999999999"),
    ] {
        let error = values.set(field, text).unwrap_err().to_string();
        assert!(error.starts_with(&format!("{field}: expected ")), "{error}");
        assert!(text.is_empty() || !error.contains(text), "{error} echoes {text}");
    }
    assert_eq!(values, StatusValues::default(), "failed sets change nothing");
    assert_eq!(
        StatusField::MaritalStatus.value_format(),
        "one of single, married, divorced, widowed"
    );
}

#[test]
fn assignments_name_the_field_and_accept_chinese_yes_no() {
    let mut values = StatusValues::default();
    assert_eq!(
        values.set_assignment(" pregnant = 是 "),
        Ok(StatusField::Pregnant)
    );
    assert_eq!(values.pregnant, Some(true));
    assert_eq!(
        values.set_assignment("pregnant"),
        Err(AssignmentError::MissingEquals)
    );
    let error = values.set_assignment("shoe_size=42").unwrap_err().to_string();
    assert!(error.starts_with("unknown status field"), "{error}");
    let error = values
        .set_assignment("children_count=many")
        .unwrap_err()
        .to_string();
    assert_eq!(error, "children_count: expected a whole number from 0 to 255");
}

#[test]
fn status_values_serialize_with_field_names_and_omit_absent_fields() {
    let mut values = StatusValues::default();
    values.set(StatusField::Township, "430703001").unwrap();
    values
        .set(StatusField::CertificateValidUntil, "2028-05-31")
        .unwrap();
    let json = serde_json::to_string(&values).unwrap();
    assert_eq!(
        json,
        r#"{"certificate_valid_until":"2028-05-31","township":"430703001"}"#
    );
    assert_eq!(serde_json::from_str::<StatusValues>(&json).unwrap(), values);
    assert!(serde_json::from_str::<StatusValues>(r#"{"township":"999999999"}"#).is_err());
    assert!(serde_json::from_str::<StatusValues>(r#"{"shoe_size":1}"#).is_err());
}

#[test]
fn each_fields_value_type_offers_only_values_the_field_accepts() {
    use super::ValueType;
    for &field in StatusField::ALL {
        let mut values = StatusValues::default();
        let example = match field.value_type() {
            ValueType::Choice(names) => {
                assert!(!names.is_empty(), "{field}");
                for name in names {
                    values
                        .set(field, name)
                        .unwrap_or_else(|e| panic!("{field}={name}: {e}"));
                }
                continue;
            }
            ValueType::Date => "2028-05-31",
            ValueType::Count => "3",
            ValueType::YesNo => "true",
            ValueType::Text => "HN-431322-2025-0001",
            ValueType::Township => "430703001",
            ValueType::Village => "430703001001",
        };
        values
            .set(field, example)
            .unwrap_or_else(|e| panic!("{field}={example}: {e}"));
        assert!(field.value_type().allowed_values().is_empty(), "{field}");
    }
}
