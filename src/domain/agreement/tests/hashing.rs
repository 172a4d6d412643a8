//! The canonical hash: equal for documents that mean the same, different for any change.

use proptest::prelude::*;

use super::*;

/// `BASE` rewritten by another hand: comments, key order, list order, quoting, an explicit
/// sub-table, parties and directions in the other order. Same terms.
const BASE_REFORMATTED: &str = r#"
# 鼎城区—新化县, as typed in 新化县
title = '鼎城区—新化县 流动人口服务管理双向协议'
parties = [ "431322",
            "430703" ]   # order does not matter
valid_until = 2028-12-31
valid_from  = 2026-01-01
retention_days = 1095  # three years
version = 1
id = "430703-431322"

[[direction]]
automatic_answers = false
daily_cap = 5_000
answer_fields = ["registered_since", "township"]
reply_days = { urgent = 15, normal = 30 }
notice_kinds = [ ]
inquiry_kinds = ["outflow_status"]
to = "430703"
from = "431322"

[[direction]]
to = "431322"
from = "430703"
answer_fields = [
  "marital_status",
  "certificate_valid_until",
  "certificate_number",   # trailing comma below is fine
]
inquiry_kinds = ["outflow_status", "certificate_verification"]
notice_kinds = ["birth", "contraception_check"]
daily_cap = 20000
automatic_answers = true
notice_days.feedback = 30
notice_days.receipt = 30

[direction.reply_days]
normal = 30
urgent = 15
"#;

#[test]
fn hash_ignores_formatting_comments_and_order() {
    let base = parsed(BASE);
    let reformatted = parsed(BASE_REFORMATTED);
    assert_eq!(base.canonical_form(), reformatted.canonical_form());
    assert_eq!(base.canonical_hash(), reformatted.canonical_hash());
    assert_ne!(base.source_text(), reformatted.source_text());
}

#[test]
fn hash_of_base_is_pinned() {
    // If this fails, the canonical form changed: every deployed hash changes with it. Bump
    // `FORMAT` in canonical.rs and update the value here deliberately.
    assert_eq!(
        parsed(BASE).canonical_hash().as_str(),
        "45df4786abf2c0191bdaaac6fc515768194068136d12022bb49f98b6991a22d9"
    );
}

#[test]
fn hash_changes_with_every_term() {
    let changes = [
        ("id = \"430703-431322\"", "id = \"430703-431322-b\""),
        ("version = 1", "version = 2"),
        ("流动人口服务管理双向协议", "流动人口双向协议"),
        ("valid_from = 2026-01-01", "valid_from = 2026-01-02"),
        ("valid_until = 2028-12-31", "valid_until = 2029-12-31"),
        (
            "notice_kinds = [\"contraception_check\", \"birth\"]",
            "notice_kinds = [\"birth\"]",
        ),
        (
            "inquiry_kinds = [\"outflow_status\"]",
            "inquiry_kinds = [\"certificate_verification\"]",
        ),
        (
            "[\"township\", \"registered_since\"]",
            "[\"township\", \"registered_since\", \"village\"]",
        ),
        (
            "notice_days = { receipt = 30, feedback = 30 }",
            "notice_days = { receipt = 30, feedback = 20 }",
        ),
        ("daily_cap = 20000", "daily_cap = 20001"),
        ("automatic_answers = true", "automatic_answers = false"),
        ("retention_days = 1095", "retention_days = 365"),
        (
            "automatic_answers = true",
            "automatic_answers = true\nnotice_fields = { birth = [\"child_sex\"] }",
        ),
        (
            "automatic_answers = true",
            "automatic_answers = true\nnotice_effect = { contraception_check = \"apply\" }",
        ),
    ];
    let mut hashes = BTreeSet::from([parsed(BASE).canonical_hash().clone()]);
    for (old, new) in changes {
        let hash = parsed(&base_with(old, new)).canonical_hash().clone();
        assert!(
            hashes.insert(hash),
            "changing {old:?} to {new:?} left the hash unchanged"
        );
    }
    let urgent_changed = BASE.replacen("urgent = 15", "urgent = 14", 1);
    assert!(hashes.insert(parsed(&urgent_changed).canonical_hash().clone()));
}

#[test]
fn hash_renders_as_64_hex_digits_and_parses_back() {
    let hash = parsed(BASE).canonical_hash().clone();
    assert_eq!(hash.to_string().len(), 64);
    assert!(hash.as_str().chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    assert_eq!(hash.short(), &hash.as_str()[..12]);
    assert_eq!(
        AgreementHash::parse(&hash.as_str().to_ascii_uppercase()),
        Ok(hash.clone())
    );
    let json = serde_json::to_string(&hash).unwrap();
    assert_eq!(serde_json::from_str::<AgreementHash>(&json).unwrap(), hash);
    assert!(AgreementHash::parse(&hash.as_str()[..63]).is_err());
    assert!(AgreementHash::parse(&"g".repeat(64)).is_err());
    assert!(AgreementHash::parse(&"中".repeat(64)).is_err());
}

/// Renders `BASE`'s terms with the given list orders.
fn render(
    parties: &[&str],
    first_inquiries: &[&str],
    first_fields: &[&str],
    first_notices: &[&str],
    directions_reversed: bool,
) -> String {
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|item| format!("\"{item}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let first = format!(
        "[[direction]]\nfrom = \"430703\"\nto = \"431322\"\ninquiry_kinds = [{}]\n\
         notice_kinds = [{}]\nanswer_fields = [{}]\nreply_days = {{ normal = 30, urgent = 15 }}\n\
         notice_days = {{ receipt = 30, feedback = 30 }}\ndaily_cap = 20000\nautomatic_answers = true\n",
        quoted(first_inquiries),
        quoted(first_notices),
        quoted(first_fields),
    );
    let second = "[[direction]]\nfrom = \"431322\"\nto = \"430703\"\ninquiry_kinds = [\"outflow_status\"]\n\
         notice_kinds = []\nanswer_fields = [\"township\", \"registered_since\"]\n\
         reply_days = { normal = 30, urgent = 15 }\ndaily_cap = 5000\nautomatic_answers = false\n";
    let (a, b) = if directions_reversed {
        (second, first.as_str())
    } else {
        (first.as_str(), second)
    };
    format!(
        "id = \"430703-431322\"\nversion = 1\ntitle = \"鼎城区—新化县 流动人口服务管理双向协议\"\n\
         parties = [{}]\nvalid_from = 2026-01-01\nvalid_until = 2028-12-31\nretention_days = 1095\n\n{a}\n{b}",
        quoted(parties),
    )
}

proptest! {
    #[test]
    fn permuting_lists_does_not_change_the_hash(
        parties in Just(vec!["430703", "431322"]).prop_shuffle(),
        inquiries in Just(vec!["certificate_verification", "outflow_status"]).prop_shuffle(),
        fields in Just(vec!["certificate_number", "certificate_valid_until", "marital_status"]).prop_shuffle(),
        notices in Just(vec!["contraception_check", "birth"]).prop_shuffle(),
        directions_reversed in any::<bool>(),
    ) {
        let text = render(&parties, &inquiries, &fields, &notices, directions_reversed);
        let agreement = Agreement::parse(&text).map_err(|errors| TestCaseError::fail(errors.to_string()))?;
        let base = parsed(BASE);
        prop_assert_eq!(agreement.canonical_hash(), base.canonical_hash());
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Agreement::parse(&text);
    }

    #[test]
    fn parsing_mangled_base_never_panics(cut in 0..BASE.len(), insert in "[\\[\\]{}=\",a-z0-9 \n]{0,6}") {
        let mut text = BASE.to_owned();
        let mut at = cut;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, &insert);
        let _ = Agreement::parse(&text);
    }
}
