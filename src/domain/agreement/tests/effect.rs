//! `notice_effect`: what a received notice does at the origin, per direction and kind.

use super::*;
use crate::domain::vocabulary::NoticeEffect;

/// `BASE` with `notice_effect = …` after the first direction's last key (line 18).
fn with_notice_effect(effect: &str) -> String {
    base_with(
        "automatic_answers = true",
        &format!("automatic_answers = true\nnotice_effect = {effect}"),
    )
}

fn single_error(text: &str) -> AgreementError {
    match Agreement::parse(text) {
        Ok(_) => panic!("expected an error"),
        Err(errors) => {
            assert_eq!(errors.as_slice().len(), 1, "{errors}");
            errors.as_slice()[0].clone()
        }
    }
}

#[test]
fn each_allowed_kind_applies_or_waits_as_named_and_waits_when_not_named() {
    let agreement = parsed(&with_notice_effect(r#"{ contraception_check = "apply" }"#));
    let direction = agreement.direction(county("430703"), county("431322")).unwrap();
    assert_eq!(
        direction.notice_effect(NoticeKind::ContraceptionCheck),
        NoticeEffect::Apply
    );
    assert_eq!(direction.notice_effect(NoticeKind::Birth), NoticeEffect::Operator);
    // a kind the direction does not allow never applies
    assert_eq!(
        direction.notice_effect(NoticeKind::MovedOn),
        NoticeEffect::Operator
    );
    let other = agreement.direction(county("431322"), county("430703")).unwrap();
    assert_eq!(
        other.notice_effect(NoticeKind::ContraceptionCheck),
        NoticeEffect::Operator
    );
}

#[test]
fn naming_the_default_hashes_like_leaving_it_out_and_apply_does_not() {
    let absent = parsed(BASE);
    let explicit = parsed(&with_notice_effect(
        r#"{ birth = "operator", contraception_check = "operator" }"#,
    ));
    let applying = parsed(&with_notice_effect(r#"{ birth = "apply" }"#));
    assert_eq!(absent.canonical_hash(), explicit.canonical_hash());
    assert_ne!(absent.canonical_hash(), applying.canonical_hash());
    assert!(
        absent
            .canonical_form()
            .contains(r#""notice_effect":{"birth":"operator","contraception_check":"operator"}"#),
        "{}",
        absent.canonical_form()
    );
}

#[test]
fn an_unknown_effect_is_refused_naming_its_key_path_and_the_allowed_names() {
    let error = single_error(&with_notice_effect(r#"{ birth = "automatic" }"#));
    assert_eq!(
        (error.line, error.path.as_str()),
        (18, "direction[0].notice_effect.birth")
    );
    assert_eq!(
        error.to_string(),
        "line 18, column 27: direction[0].notice_effect.birth: unknown notice effect \
         (allowed: apply, operator)"
    );
}

#[test]
fn an_unknown_kind_or_one_the_direction_does_not_allow_is_refused_by_path() {
    let error = single_error(&with_notice_effect(r#"{ wedding = "apply" }"#));
    assert_eq!(error.path, "direction[0].notice_effect.wedding");
    assert!(error.to_string().contains("unknown notice kind"), "{error}");
    let error = single_error(&with_notice_effect(r#"{ moved_on = "apply" }"#));
    assert_eq!(
        (error.path.as_str(), &error.problem),
        (
            "direction[0].notice_effect.moved_on",
            &Problem::FieldsForKindNotAllowed {
                kind: NoticeKind::MovedOn
            }
        )
    );
    let error = single_error(&with_notice_effect(r#"{ birth = 1 }"#));
    assert!(error.path.contains("notice_effect"), "{error}");
}

#[test]
fn the_shipped_agreements_apply_contraception_checks_and_queue_the_rest() {
    for text in [XINHUA, SHAODONG] {
        let agreement = parsed(text);
        for direction in agreement.directions() {
            for kind in NoticeKind::ALL {
                let expected = if *kind == NoticeKind::ContraceptionCheck
                    && direction.allows_kind(MessageKind::Notice(*kind))
                {
                    NoticeEffect::Apply
                } else {
                    NoticeEffect::Operator
                };
                assert_eq!(direction.notice_effect(*kind), expected, "{kind}");
            }
        }
    }
}
