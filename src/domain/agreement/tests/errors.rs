//! What a document author sees: every error names its line, column, key path and problem.

use super::*;

fn errors_of(text: &str) -> Vec<AgreementError> {
    match Agreement::parse(text) {
        Ok(_) => panic!("expected errors, the document was accepted"),
        Err(errors) => errors.as_slice().to_vec(),
    }
}

/// The only error of `text`.
fn single_error(text: &str) -> AgreementError {
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn unknown_kind_names_line_column_path_and_allowed_values() {
    let text = base_with(
        "inquiry_kinds = [\"certificate_verification\", \"outflow_status\"]",
        "inquiry_kinds = [\"certificate_verification\", \"foo\"]",
    );
    let error = single_error(&text);
    assert_eq!(
        error.to_string(),
        "line 11, column 46: direction[0].inquiry_kinds: unknown inquiry kind \
         (allowed: certificate_verification, outflow_status)"
    );
}

#[test]
fn unknown_notice_kind_and_field_are_reported_together() {
    let text = base_with(
        "\"contraception_check\", \"birth\"",
        "\"contraception_check\", \"wedding\"",
    )
    .replacen(
        "\"township\", \"registered_since\"",
        "\"township\", \"shoe_size\"",
        1,
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        (errors[0].line, errors[0].path.as_str()),
        (12, "direction[0].notice_kinds")
    );
    assert!(matches!(&errors[0].problem, Problem::UnknownName(name) if name.given == "wedding"));
    assert_eq!(
        (errors[1].line, errors[1].path.as_str()),
        (24, "direction[1].answer_fields")
    );
    assert!(
        errors[1]
            .to_string()
            .contains("unknown status field (allowed: marital_status")
    );
}

#[test]
fn syntax_errors_name_their_line_and_are_all_reported() {
    let text =
        base_with("daily_cap = 20000", "daily_cap = ").replacen("daily_cap = 5000", "daily_cap = [5000", 1);
    let errors = errors_of(&text);
    assert!(errors.len() >= 2, "{errors:#?}");
    assert!(
        errors
            .iter()
            .all(|error| matches!(error.problem, Problem::Syntax { .. }))
    );
    assert_eq!(errors[0].line, 16);
    assert_eq!(errors[0].path, "direction[0].daily_cap");
    assert!(errors.iter().any(|error| error.line >= 26), "{errors:#?}");
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let text = base_with("daily_cap = 5000\n", "daily_cap = 5000\ndaily_limit = 5000\n");
    let error = single_error(&text);
    assert_eq!((error.line, error.column), (27, 1));
    assert_eq!(error.path, "direction[1].daily_limit");
    assert!(
        matches!(&error.problem, Problem::Shape { message } if message.contains("unknown field `daily_limit`"))
    );
}

#[test]
fn unknown_key_inside_an_inline_table_is_named() {
    let text = base_with(
        "reply_days = { normal = 30, urgent = 15 }\nnotice_days",
        "reply_days = { normal = 30, urgnt = 15 }\nnotice_days",
    );
    let error = single_error(&text);
    assert_eq!(
        (error.line, error.path.as_str()),
        (14, "direction[0].reply_days.urgnt")
    );
}

#[test]
fn missing_key_points_at_its_table() {
    let text = base_with("daily_cap = 20000\n", "");
    let error = single_error(&text);
    assert_eq!((error.line, error.path.as_str()), (8, "direction[0]"));
    assert!(error.to_string().contains("missing field `daily_cap`"), "{error}");

    let error = single_error(&base_with("version = 1\n", ""));
    assert_eq!(error.line, 1);
    assert!(error.to_string().contains("missing field `version`"), "{error}");
}

#[test]
fn wrong_type_is_named() {
    let error = single_error(&base_with(
        "automatic_answers = true",
        "automatic_answers = \"yes\"",
    ));
    assert_eq!(
        (error.line, error.path.as_str()),
        (17, "direction[0].automatic_answers")
    );
}

#[test]
fn unknown_county_code_is_named() {
    let error = single_error(&base_with(
        "parties = [\"430703\", \"431322\"]",
        "parties = [\"430703\", \"439999\"]",
    ));
    assert_eq!(
        (error.line, error.column, error.path.as_str()),
        (4, 22, "parties[1]")
    );
    assert!(matches!(error.problem, Problem::UnknownCounty(_)));
}

#[test]
fn party_count_and_same_county_twice_are_refused() {
    let error = single_error(&base_with(
        "parties = [\"430703\", \"431322\"]",
        "parties = [\"430703\"]",
    ));
    assert_eq!(
        (error.line, &error.problem),
        (4, &Problem::PartyCount { count: 1 })
    );

    let text = base_with(
        "parties = [\"430703\", \"431322\"]",
        "parties = [\"430703\", \"430703\"]",
    );
    let errors = errors_of(&text);
    assert_eq!(errors[0].line, 4);
    assert_eq!(
        errors[0].problem,
        Problem::SameCountyTwice {
            county: county("430703")
        }
    );

    // 邵东县 430521 became 邵东市 430582: the same county under two codes.
    let text = SHAODONG.replacen(
        "parties = [\"430703\", \"430582\"]",
        "parties = [\"430521\", \"430582\"]",
        1,
    );
    let errors = errors_of(&text);
    assert!(errors.iter().any(|e| e.problem
        == Problem::SameCountyTwice {
            county: county("430582")
        }));
}

#[test]
fn direction_county_must_be_a_party() {
    let error = single_error(&base_with("from = \"431322\"", "from = \"430582\""));
    assert_eq!((error.line, error.path.as_str()), (20, "direction[1].from"));
    assert_eq!(
        error.to_string(),
        "line 20, column 8: direction[1].from: 430582 (邵东市) is not one of the parties 430703 and 431322"
    );
}

#[test]
fn direction_from_itself_is_refused() {
    let error = single_error(&base_with("to = \"430703\"", "to = \"431322\""));
    assert_eq!((error.line, error.path.as_str()), (21, "direction[1].to"));
    assert_eq!(
        error.problem,
        Problem::FromIsTo {
            county: county("431322")
        }
    );
}

#[test]
fn duplicate_direction_points_at_the_first() {
    let text = base_with(
        "from = \"431322\"\nto = \"430703\"",
        "from = \"430703\"\nto = \"431322\"",
    );
    let error = single_error(&text);
    assert_eq!((error.line, error.path.as_str()), (20, "direction[1]"));
    assert!(
        matches!(error.problem, Problem::DuplicateDirection { first_line: 9, .. }),
        "{error}"
    );
}

#[test]
fn validity_must_not_end_before_it_starts() {
    let error = single_error(&base_with("valid_until = 2028-12-31", "valid_until = 2025-12-31"));
    assert_eq!((error.line, error.path.as_str()), (6, "valid_until"));
    assert_eq!(
        error.to_string(),
        "line 6, column 15: valid_until: valid_until 2025-12-31 is before valid_from 2026-01-01"
    );
}

#[test]
fn validity_dates_must_be_plain_dates() {
    let error = single_error(&base_with(
        "valid_from = 2026-01-01",
        "valid_from = 2026-01-01T00:00:00+08:00",
    ));
    assert_eq!((error.line, &error.problem), (5, &Problem::NotADate));
}

#[test]
fn reply_days_of_zero_and_urgent_longer_than_normal_are_refused() {
    let error = single_error(&base_with(
        "reply_days = { normal = 30, urgent = 15 }\nnotice_days",
        "reply_days = { normal = 0, urgent = 15 }\nnotice_days",
    ));
    assert_eq!(
        (error.line, error.path.as_str()),
        (14, "direction[0].reply_days.normal")
    );
    assert_eq!(
        error.problem,
        Problem::OutOfRange {
            min: 1,
            max: 365,
            found: 0
        }
    );

    let error = single_error(&base_with(
        "reply_days = { normal = 30, urgent = 15 }\nnotice_days",
        "reply_days = { normal = 30, urgent = 45 }\nnotice_days",
    ));
    assert_eq!(
        (error.line, error.path.as_str()),
        (14, "direction[0].reply_days.urgent")
    );
    assert_eq!(
        error.problem,
        Problem::UrgentLongerThanNormal {
            normal: 30,
            urgent: 45
        }
    );
}

#[test]
fn notices_need_notice_days() {
    let error = single_error(&base_with("notice_days = { receipt = 30, feedback = 30 }\n", ""));
    assert_eq!(
        (error.line, error.path.as_str()),
        (12, "direction[0].notice_kinds")
    );
    assert_eq!(error.problem, Problem::MissingNoticeDays);
}

#[test]
fn a_direction_must_allow_something() {
    let error = single_error(&base_with(
        "inquiry_kinds = [\"outflow_status\"]",
        "inquiry_kinds = []",
    ));
    assert_eq!(
        (error.line, error.path.as_str(), &error.problem),
        (19, "direction[1]", &Problem::AllowsNothing)
    );
}

#[test]
fn names_listed_twice_are_refused() {
    let error = single_error(&base_with(
        "[\"township\", \"registered_since\"]",
        "[\"township\", \"township\"]",
    ));
    assert_eq!(
        (error.line, &error.problem),
        (
            24,
            &Problem::ListedTwice {
                name: "township".to_owned()
            }
        )
    );
}

#[test]
fn id_version_title_and_cap_are_checked() {
    let text = base_with("id = \"430703-431322\"", "id = \"430703 431322\"")
        .replacen("version = 1", "version = 0", 1)
        .replacen(
            "title = \"鼎城区—新化县 流动人口服务管理双向协议\"",
            "title = \" \"",
            1,
        )
        .replacen("daily_cap = 5000", "daily_cap = 0", 1);
    let errors = errors_of(&text);
    let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        found,
        [
            (1, "id"),
            (2, "version"),
            (3, "title"),
            (26, "direction[1].daily_cap")
        ]
    );
    assert_eq!(errors[0].problem, Problem::BadId);
    assert_eq!(errors[2].problem, Problem::Empty);
}

#[test]
fn an_agreement_without_directions_is_refused() {
    let head = BASE.split("[[direction]]").next().unwrap();
    let error = single_error(&format!("{head}direction = []\n"));
    assert_eq!(
        (error.line, error.path.as_str(), &error.problem),
        (8, "direction", &Problem::NoDirection)
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = base_with(
        "title = \"鼎城区—新化县 流动人口服务管理双向协议\"",
        "title = \"鼎城区\" version = 2",
    );
    let error = &errors_of(&text)[0];
    assert_eq!((error.line, error.column), (3, 15));
}

#[test]
fn all_errors_render_one_per_line_in_document_order() {
    let text = base_with("valid_until = 2028-12-31", "valid_until = 2025-12-31")
        .replacen(
            "\"outflow_status\"]\nnotice_kinds = [\"contraception_check\"",
            "\"outflow\"]\nnotice_kinds = [\"contraception_check\"",
            1,
        )
        .replacen("daily_cap = 5000", "daily_cap = -1", 1);
    let rendered = Agreement::parse(&text).unwrap_err().to_string();
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines.len(), 3, "{rendered}");
    assert!(lines[0].starts_with("line 6, "), "{rendered}");
    assert!(lines[1].starts_with("line 11, "), "{rendered}");
    assert!(lines[2].starts_with("line 26, "), "{rendered}");
}

#[test]
fn retention_is_required_and_bounded() {
    let missing = errors_of(&base_with("retention_days = 1095\n", ""));
    assert!(
        missing[0].to_string().contains("missing field `retention_days`"),
        "{missing:#?}"
    );
    let error = single_error(&base_with("retention_days = 1095", "retention_days = 0"));
    assert_eq!(
        (error.line, error.path.as_str(), &error.problem),
        (
            7,
            "retention_days",
            &Problem::OutOfRange {
                min: 1,
                max: 3650,
                found: 0
            }
        )
    );
}

/// The first direction allows `contraception_check` and `birth` notices; `notice_fields` goes
/// after its last key (line 17).
fn with_notice_fields(fields: &str) -> String {
    base_with(
        "automatic_answers = true",
        &format!("automatic_answers = true\nnotice_fields = {fields}"),
    )
}

#[test]
fn notice_fields_say_what_each_allowed_kind_may_carry() {
    let agreement = parsed(&with_notice_fields(
        r#"{ birth = ["child_sex", "birth_order"], contraception_check = [] }"#,
    ));
    let direction = agreement.direction(county("430703"), county("431322")).unwrap();
    assert!(direction.may_carry(NoticeField::ChildSex));
    assert!(direction.may_carry(NoticeField::BirthOrder));
    assert!(!direction.may_carry(NoticeField::BirthPlace));
    assert!(!direction.may_carry(NoticeField::CheckResult));
    assert_eq!(direction.notice_fields(NoticeKind::ContraceptionCheck).count(), 0);
    let other = agreement.direction(county("431322"), county("430703")).unwrap();
    assert!(!other.may_carry(NoticeField::ChildSex));
}

#[test]
fn a_notice_field_of_another_kind_or_an_unallowed_kind_is_refused() {
    let error = single_error(&with_notice_fields(r#"{ birth = ["child_sex", "measure"] }"#));
    assert_eq!(
        (error.line, error.path.as_str(), &error.problem),
        (
            18,
            "direction[0].notice_fields.birth",
            &Problem::FieldOfOtherKind {
                field: NoticeField::Measure,
                kind: NoticeKind::Birth
            }
        )
    );
    assert_eq!(
        error.to_string(),
        "line 18, column 41: direction[0].notice_fields.birth: measure is a field of \
         contraception_check notices, not of birth"
    );
    let error = single_error(&with_notice_fields(r#"{ moved_on = ["new_county"] }"#));
    assert_eq!(
        (error.path.as_str(), &error.problem),
        (
            "direction[0].notice_fields.moved_on",
            &Problem::FieldsForKindNotAllowed {
                kind: NoticeKind::MovedOn
            }
        )
    );
    let error = single_error(&with_notice_fields(r#"{ birth = ["weight"] }"#));
    assert!(error.to_string().contains("unknown notice field"), "{error}");
}
