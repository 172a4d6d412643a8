//! The access policy's decisions, on the example agreement and on principals.

use super::*;

const DINGCHENG: &str = "430703";
const XINHUA: &str = "431322";
const SHAODONG: &str = "430582";

fn example_agreement() -> Agreement {
    Agreement::parse(include_str!("../../../examples/agreements/430703-431322.toml")).expect("example parses")
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

fn values(assignments: &[(StatusField, &str)]) -> StatusValues {
    let mut values = StatusValues::default();
    for &(field, value) in assignments {
        values.set(field, value).unwrap();
    }
    values
}

#[test]
fn an_answer_may_carry_the_agreed_fields() {
    let answer = values(&[
        (StatusField::Pregnant, "no"),
        (StatusField::Township, "431322001"),
    ]);
    assert_eq!(
        check_answer_fields(&example_agreement(), county(DINGCHENG), county(XINHUA), &answer),
        Ok(())
    );
}

#[test]
fn an_answer_with_a_field_outside_the_agreement_is_refused_naming_it_and_the_allowed_ones() {
    let answer = values(&[
        (StatusField::Pregnant, "no"),
        (StatusField::Village, "430703001001"),
    ]);
    let refusal = check_answer_fields(&example_agreement(), county(DINGCHENG), county(XINHUA), &answer)
        .expect_err("village is not agreed");
    assert_eq!(refusal.refused, vec![StatusField::Village]);
    let message = refusal.to_string();
    assert!(
        message.starts_with("fields not allowed by agreement ")
            && message.contains(": village (allowed: marital_status, ")
            && !message.contains("allowed: village"),
        "{message}"
    );
    assert_eq!(refusal.rejection().code, RejectionCode::PermissionDenied);
}

#[test]
fn an_answer_between_counties_the_agreement_has_no_direction_for_may_carry_no_field() {
    let answer = values(&[(StatusField::Pregnant, "no")]);
    let refusal = check_answer_fields(&example_agreement(), county(SHAODONG), county(XINHUA), &answer)
        .expect_err("no direction from 邵东市");
    assert!(
        refusal.to_string().ends_with("pregnant (allowed: none)"),
        "{refusal}"
    );
    assert_eq!(
        check_answer_fields(
            &example_agreement(),
            county(SHAODONG),
            county(XINHUA),
            &StatusValues::default()
        ),
        Ok(())
    );
}

#[test]
fn a_confirmation_is_checked_for_its_sender_and_its_fields() {
    let agreement = example_agreement();
    let book = AgreementBook::new(county(DINGCHENG), [agreement.clone()]);
    let reference = AgreementRef {
        id: agreement.id().to_string(),
        hash: agreement.canonical_hash().as_str().to_string(),
    };
    let agreed = values(&[(StatusField::Pregnant, "no")]);
    assert_eq!(
        book.check_confirmation(county(XINHUA), &reference, &agreed),
        Ok(())
    );

    let outsider = book
        .check_confirmation(county(SHAODONG), &reference, &agreed)
        .expect_err("邵东市 is no party");
    assert_eq!(outsider.code, RejectionCode::PermissionDenied);
    assert!(
        outsider.reason.contains("430582 is not a party"),
        "{}",
        outsider.reason
    );

    let too_much = values(&[(StatusField::Village, "430703001001")]);
    let refused = book
        .check_confirmation(county(XINHUA), &reference, &too_much)
        .expect_err("village is not agreed");
    assert_eq!(refused.code, RejectionCode::PermissionDenied);
    assert!(
        refused.reason.contains("fields not allowed"),
        "{}",
        refused.reason
    );
}

#[test]
fn every_version_held_is_honoured_so_an_amendment_on_one_side_refuses_nothing() {
    let text = include_str!("../../../examples/agreements/430703-431322.toml");
    let v1 = example_agreement();
    let v2 = Agreement::parse(&text.replacen("version = 1", "version = 2", 1)).expect("v2 parses");
    assert_ne!(v1.canonical_hash(), v2.canonical_hash());
    // 新化县 applied the amendment first; 鼎城区 still sends under version 1
    let book = AgreementBook::new(county(XINHUA), [v1.clone(), v2.clone()]);
    let reference = |agreement: &Agreement| AgreementRef {
        id: agreement.id().to_string(),
        hash: agreement.canonical_hash().as_str().to_string(),
    };
    let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 2, 0, 0).unwrap();
    for held in [&v1, &v2] {
        assert_eq!(
            book.pinned(&reference(held)).expect("held").version(),
            held.version()
        );
        let (agreement, _) = book
            .check_inbound(
                county(DINGCHENG),
                &reference(held),
                MessageKind::Inquiry(crate::domain::vocabulary::InquiryKind::CertificateVerification),
                at,
            )
            .expect("an inquiry under any version held is taken");
        assert_eq!(agreement.version(), held.version());
    }
    // a version this node does not hold: not final, it names the one held
    let only_v1 = AgreementBook::new(county(DINGCHENG), [v1]);
    let refusal = only_v1
        .pinned(&reference(&v2))
        .expect_err("version 2 is not held");
    assert_eq!(refusal.code, RejectionCode::FailedPrecondition);
    assert!(
        refusal.reason.contains("this node holds version 1"),
        "{}",
        refusal.reason
    );
}

#[test]
fn a_version_named_by_any_text_is_refused_without_panicking() {
    let agreement = Agreement::parse(include_str!("../../../examples/agreements/430703-431322.toml"))
        .expect("example parses");
    let me = CountyCode::parse("430703").unwrap();
    let book = AgreementBook::new(me, [agreement.clone()]);
    let reference = AgreementRef {
        id: agreement.id().to_string(),
        hash: "版本不明版本不明版本不明版本不明".into(),
    };
    let rejection = book.pinned(&reference).expect_err("an unknown version");
    assert_eq!(rejection.code, RejectionCode::FailedPrecondition);
    assert!(
        rejection
            .reason
            .contains("an unknown version (版本不明版本不明版本不明)"),
        "{}",
        rejection.reason
    );
}

// === principals and authorize ===

fn township_of(code: &str) -> String {
    crate::domain::division::townships_of(county(code))[0]
        .as_str()
        .to_string()
}

fn township_clerk() -> Principal {
    Principal::operator("clerk", county(DINGCHENG), Some(&township_of(DINGCHENG))).unwrap()
}

const EVERY_ACTION: [OperatorAction; 33] = [
    OperatorAction::Ask,
    OperatorAction::Sweep,
    OperatorAction::SweepStatus,
    OperatorAction::ListPending,
    OperatorAction::ShowInquiry,
    OperatorAction::Answer,
    OperatorAction::Withdraw,
    OperatorAction::Notify,
    OperatorAction::Feedback,
    OperatorAction::ShowNotice,
    OperatorAction::ImportPersons,
    OperatorAction::ApplyAgreement,
    OperatorAction::RetireAgreement,
    OperatorAction::ListAgreements,
    OperatorAction::ShowAgreement,
    OperatorAction::Report,
    OperatorAction::IssueReminders,
    OperatorAction::Reconcile,
    OperatorAction::ListReconcileRuns,
    OperatorAction::ListReconcileDifferences,
    OperatorAction::VerifyAudit,
    OperatorAction::AuditPeers,
    OperatorAction::RegistryHistory,
    OperatorAction::ListNotices,
    OperatorAction::ApplyNotice,
    OperatorAction::DismissNotice,
    OperatorAction::Watch,
    OperatorAction::AddWebhook,
    OperatorAction::ListWebhooks,
    OperatorAction::RotateWebhookSecret,
    OperatorAction::RemoveWebhook,
    OperatorAction::ConsoleLogin,
    OperatorAction::ConsoleLogout,
];

#[test]
fn a_county_operator_and_loopback_may_do_everything_county_wide() {
    let operator = Principal::operator("head-office", county(DINGCHENG), None).unwrap();
    let staff = Principal::staff("county-clerk", county(DINGCHENG), None).unwrap();
    let token = Principal::token("county-his", county(DINGCHENG), None).unwrap();
    for principal in [operator, staff, token, Principal::loopback(county(DINGCHENG))] {
        for action in EVERY_ACTION {
            assert_eq!(
                authorize(&principal, action),
                Ok(Scope::County(county(DINGCHENG))),
                "{action}"
            );
        }
    }
}

#[test]
fn a_township_office_does_its_township_work_and_no_county_wide_work() {
    let clerk = township_clerk();
    let township = clerk.township().unwrap();
    for action in EVERY_ACTION {
        let decision = authorize(&clerk, action);
        match action {
            OperatorAction::Sweep
            | OperatorAction::SweepStatus
            | OperatorAction::ImportPersons
            | OperatorAction::ApplyAgreement
            | OperatorAction::RetireAgreement
            | OperatorAction::Withdraw
            | OperatorAction::Notify
            | OperatorAction::Feedback
            | OperatorAction::ShowNotice
            | OperatorAction::Reconcile
            | OperatorAction::VerifyAudit
            | OperatorAction::AuditPeers
            | OperatorAction::AddWebhook
            | OperatorAction::ListWebhooks
            | OperatorAction::RotateWebhookSecret
            | OperatorAction::RemoveWebhook => {
                let refusal = decision.expect_err(action.as_str());
                assert_eq!(refusal.code, RejectionCode::PermissionDenied);
                assert!(
                    refusal.reason.contains("county-wide work") && refusal.reason.contains(township.as_str()),
                    "{}",
                    refusal.reason
                );
            }
            _ => assert_eq!(decision, Ok(Scope::Township(township)), "{action}"),
        }
    }
}

#[test]
fn a_township_scope_covers_its_own_township_only_and_narrows_listings_to_it() {
    let own = township_clerk().township().unwrap();
    let other = crate::domain::division::townships_of(county(DINGCHENG))[1];
    let scope = Scope::Township(own);
    assert!(scope.covers(Some(own)));
    assert!(!scope.covers(Some(other)));
    assert!(
        !scope.covers(None),
        "a subject of no known township is the county's"
    );
    assert_eq!(scope.narrow(None), Ok(Some(own)));
    assert_eq!(scope.narrow(Some(own)), Ok(Some(own)));
    let refusal = scope.narrow(Some(other)).expect_err("another township");
    assert_eq!(refusal.code, RejectionCode::PermissionDenied);
    assert!(!refusal.reason.contains(other.as_str()), "{}", refusal.reason);

    let county_scope = Scope::County(county(DINGCHENG));
    assert!(county_scope.covers(None) && county_scope.covers(Some(other)));
    assert_eq!(county_scope.narrow(Some(other)), Ok(Some(other)));
    assert_eq!(county_scope.narrow(None), Ok(None));
    assert_eq!(county_scope.to_string(), "county:430703");
    assert_eq!(scope.to_string(), format!("township:{own}"));
}

#[test]
fn an_operator_certificate_naming_a_township_of_another_county_is_refused_without_quoting_it() {
    let foreign = township_of(XINHUA);
    let refusal =
        Principal::operator("clerk", county(DINGCHENG), Some(&foreign)).expect_err("新化县's township");
    assert_eq!(refusal.code, RejectionCode::PermissionDenied);
    assert!(
        refusal.reason.contains("township of another county") && refusal.reason.contains(DINGCHENG),
        "{}",
        refusal.reason
    );
    assert!(!refusal.reason.contains(&foreign), "{}", refusal.reason);

    for malformed in ["43070310", "43070310x", "999999999"] {
        let refusal = Principal::operator("clerk", county(DINGCHENG), Some(malformed)).expect_err(malformed);
        assert_eq!(refusal.code, RejectionCode::Unauthenticated);
        assert!(!refusal.reason.contains(malformed), "{}", refusal.reason);
    }
}

#[test]
fn an_operator_name_that_could_be_a_resident_id_never_becomes_a_principal() {
    for name in [
        "11010519491231002X",
        "110105491231002",
        "",
        "two words",
        &"长".repeat(65),
    ] {
        let refusal = Principal::operator(name, county(DINGCHENG), None).expect_err(name);
        assert_eq!(refusal.code, RejectionCode::Unauthenticated);
        assert!(
            name.is_empty() || !refusal.reason.contains(name),
            "{}",
            refusal.reason
        );
    }
    let fine = Principal::operator("王芳.玉霞-01", county(DINGCHENG), None).unwrap();
    assert_eq!(fine.name(), "王芳.玉霞-01");
    assert_eq!(fine.role(), Role::Operator);
    assert_eq!(Principal::loopback(county(DINGCHENG)).role(), Role::Loopback);
}

#[test]
fn a_console_account_is_held_to_exactly_what_an_operator_certificate_of_its_scope_may_do() {
    let township = township_of(DINGCHENG);
    let staff = Principal::staff("clerk", county(DINGCHENG), Some(&township)).unwrap();
    assert_eq!(staff.role(), Role::Staff);
    assert_eq!(staff.role().as_str(), "staff");
    assert_eq!(staff.scope(), township_clerk().scope());
    for action in EVERY_ACTION {
        // both named "clerk": the very same decision, refusal wording included
        assert_eq!(
            authorize(&staff, action),
            authorize(&township_clerk(), action),
            "{action}"
        );
    }
    // the same checks of name and township as a certificate's, naming the console account
    let foreign = township_of(XINHUA);
    let refusal = Principal::staff("clerk", county(DINGCHENG), Some(&foreign)).expect_err("another county");
    assert_eq!(refusal.code, RejectionCode::PermissionDenied);
    assert!(
        refusal.reason.starts_with("the console account"),
        "{}",
        refusal.reason
    );
    for name in ["11010519491231002X", "loopback", "two words"] {
        let refusal = Principal::staff(name, county(DINGCHENG), None).expect_err(name);
        assert_eq!(refusal.code, RejectionCode::Unauthenticated);
    }
}
