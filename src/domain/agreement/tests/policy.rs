//! The policy checks the exchange relies on: who may send what, when, and by when it is due.

use chrono::TimeZone;

use super::*;
use crate::domain::vocabulary::StatusValues;

fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, second)
        .unwrap()
}

const VERIFY: MessageKind = MessageKind::Inquiry(InquiryKind::CertificateVerification);
const OUTFLOW: MessageKind = MessageKind::Inquiry(InquiryKind::OutflowStatus);
const BIRTH: MessageKind = MessageKind::Notice(NoticeKind::Birth);

#[test]
fn allows_an_agreed_kind_within_validity() {
    let agreement = parsed(XINHUA);
    let at = utc(2026, 6, 1, 9, 0, 0);
    let direction = agreement
        .allows(county("430703"), county("431322"), VERIFY, at)
        .unwrap();
    assert_eq!(
        (direction.from(), direction.to()),
        (county("430703"), county("431322"))
    );
    assert!(
        agreement
            .allows(county("430703"), county("431322"), BIRTH, at)
            .is_ok()
    );
}

#[test]
fn rejects_a_county_that_is_not_a_party() {
    let agreement = parsed(XINHUA);
    let at = utc(2026, 6, 1, 9, 0, 0);
    let stranger = county("430582");
    assert_eq!(
        agreement
            .allows(stranger, county("431322"), VERIFY, at)
            .unwrap_err(),
        Denial::NotAParty { county: stranger }
    );
    assert_eq!(
        agreement
            .allows(county("431322"), stranger, VERIFY, at)
            .unwrap_err(),
        Denial::NotAParty { county: stranger }
    );
}

#[test]
fn rejects_a_direction_the_agreement_does_not_have() {
    let one_way = BASE.split("\n[[direction]]\nfrom = \"431322\"").next().unwrap();
    let agreement = parsed(one_way);
    let at = utc(2026, 6, 1, 9, 0, 0);
    let (dingcheng, xinhua) = (county("430703"), county("431322"));
    assert_eq!(
        agreement.allows(xinhua, dingcheng, OUTFLOW, at).unwrap_err(),
        Denial::NoDirection {
            from: xinhua,
            to: dingcheng
        }
    );
    assert_eq!(
        agreement.allows(dingcheng, dingcheng, OUTFLOW, at).unwrap_err(),
        Denial::NoDirection {
            from: dingcheng,
            to: dingcheng
        }
    );
}

#[test]
fn validity_follows_china_standard_time_days() {
    let agreement = parsed(XINHUA);
    let (dingcheng, xinhua) = (county("430703"), county("431322"));
    let first_day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let last_day = NaiveDate::from_ymd_opt(2028, 12, 31).unwrap();
    // 2026-01-01 00:00 in Beijing is 2025-12-31 16:00 UTC.
    let just_before = utc(2025, 12, 31, 15, 59, 59);
    assert_eq!(
        agreement
            .allows(dingcheng, xinhua, VERIFY, just_before)
            .unwrap_err(),
        Denial::NotYetValid { from: first_day }
    );
    assert!(!agreement.is_valid_at(just_before));
    assert!(
        agreement
            .allows(dingcheng, xinhua, VERIFY, utc(2025, 12, 31, 16, 0, 0))
            .is_ok()
    );
    assert!(agreement.is_valid_at(utc(2028, 12, 31, 15, 59, 59)));
    let just_after = utc(2028, 12, 31, 16, 0, 0);
    assert_eq!(
        agreement
            .allows(dingcheng, xinhua, VERIFY, just_after)
            .unwrap_err(),
        Denial::Expired { until: last_day }
    );
    assert!(!agreement.is_valid_at(just_after));
}

#[test]
fn rejects_a_kind_the_direction_does_not_allow_and_lists_what_it_allows() {
    let agreement = parsed(SHAODONG);
    let at = utc(2026, 6, 1, 9, 0, 0);
    let denial = agreement
        .allows(county("430582"), county("430703"), VERIFY, at)
        .unwrap_err();
    assert_eq!(
        denial,
        Denial::KindNotAllowed {
            kind: VERIFY,
            allowed: vec![OUTFLOW]
        }
    );
    assert_eq!(
        denial.to_string(),
        "the agreement does not allow certificate_verification in this direction (allowed: outflow_status)"
    );
    let denial = agreement
        .allows(county("430582"), county("430703"), BIRTH, at)
        .unwrap_err();
    assert!(matches!(denial, Denial::KindNotAllowed { kind: BIRTH, .. }));
}

#[test]
fn historical_county_codes_match_their_successor() {
    let agreement = parsed(SHAODONG);
    let (old_shaodong, shaodong, dingcheng) = (county("430521"), county("430582"), county("430703"));
    let at = utc(2026, 6, 1, 9, 0, 0);
    assert!(agreement.allows(old_shaodong, dingcheng, OUTFLOW, at).is_ok());
    assert!(agreement.is_party(old_shaodong));
    assert_eq!(agreement.peer_of(old_shaodong), Some(dingcheng));
    assert_eq!(agreement.peer_of(dingcheng), Some(shaodong));
    assert_eq!(agreement.peer_of(county("431322")), None);
    assert!(agreement.direction(dingcheng, old_shaodong).is_some());
}

#[test]
fn deadlines_add_the_agreed_days_to_receipt() {
    let agreement = parsed(XINHUA);
    let direction = agreement.direction(county("431322"), county("430703")).unwrap();
    let received = utc(2026, 3, 1, 2, 30, 0);
    assert_eq!(
        direction.deadline(received, Priority::Normal),
        utc(2026, 3, 31, 2, 30, 0)
    );
    assert_eq!(
        direction.deadline(received, Priority::Urgent),
        utc(2026, 3, 16, 2, 30, 0)
    );
    assert_eq!(
        direction.deadline(DateTime::<Utc>::MAX_UTC, Priority::Normal),
        DateTime::<Utc>::MAX_UTC
    );
}

#[test]
fn birth_notices_owe_feedback_and_others_only_a_receipt() {
    let agreement = parsed(XINHUA);
    let direction = agreement.direction(county("430703"), county("431322")).unwrap();
    let received = utc(2026, 3, 1, 2, 30, 0);
    let birth = direction.notice_deadlines(NoticeKind::Birth, received).unwrap();
    assert_eq!(birth.receipt, utc(2026, 3, 31, 2, 30, 0));
    assert_eq!(birth.feedback, Some(utc(2026, 3, 31, 2, 30, 0)));
    let moved_on = direction.notice_deadlines(NoticeKind::MovedOn, received).unwrap();
    assert_eq!(moved_on.feedback, None);

    let shaodong = parsed(SHAODONG);
    let no_notices = shaodong.direction(county("430582"), county("430703")).unwrap();
    assert_eq!(no_notices.notice_deadlines(NoticeKind::Birth, received), None);
}

#[test]
fn answers_are_filtered_to_the_agreed_fields() {
    let agreement = parsed(SHAODONG);
    let direction = agreement.direction(county("430703"), county("430582")).unwrap();
    let mut everything = StatusValues::default();
    everything.set(StatusField::CertificateStatus, "valid").unwrap();
    everything.set(StatusField::Township, "430703001").unwrap();
    everything.set(StatusField::Pregnant, "no").unwrap();
    let sent = everything.filtered(direction.answer_fields());
    assert_eq!(
        sent.present_fields(),
        BTreeSet::from([StatusField::CertificateStatus])
    );
}
