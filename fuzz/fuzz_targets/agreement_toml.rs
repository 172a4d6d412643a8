//! Bytes (UTF-8 only: `hancha agreement check` and the node read agreements as text) → the
//! agreement parser, `Agreement::parse`.
//!
//! Invariants: nothing panics; a refusal lists at least one error, each at a real line and
//! column, in document order; an accepted agreement keeps the promises of the format (two
//! different parties, 1 or 2 directions between them, valid_from ≤ valid_until, urgent ≤ normal)
//! and of its canonical form (compact JSON naming the format, hashed with SHA-256 to the
//! agreement's hash, which reads back as itself; the same text parses to the same form again).
//! The canonical form is JSON, not TOML, so it is not re-parsed as an agreement.
#![no_main]

use hancha::domain::agreement::{Agreement, AgreementHash};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Agreement::parse(text) {
        Ok(agreement) => check_accepted(text, &agreement),
        Err(errors) => {
            let errors = errors.as_slice();
            assert!(!errors.is_empty(), "a refusal without an error");
            let lines = text.split('\n').count();
            for error in errors {
                assert!(
                    error.line >= 1 && error.line <= lines,
                    "{error} is outside the text"
                );
                assert!(error.column >= 1, "{error} has no column");
                let _ = error.to_string();
            }
            assert!(
                errors
                    .windows(2)
                    .all(|pair| (pair[0].line, pair[0].column) <= (pair[1].line, pair[1].column)),
                "errors out of document order"
            );
        }
    }
});

fn check_accepted(text: &str, agreement: &Agreement) {
    let [first, second] = agreement.parties();
    assert_ne!(first.current(), second.current(), "one county twice");
    assert!(agreement.valid_from() <= agreement.valid_until());
    let directions = agreement.directions();
    assert!(
        (1..=2).contains(&directions.len()),
        "{} directions",
        directions.len()
    );
    for direction in directions {
        assert_ne!(direction.from().current(), direction.to().current());
        assert!(agreement.is_party(direction.from()) && agreement.is_party(direction.to()));
        let days = direction.reply_days();
        assert!(days.urgent <= days.normal);
        let _ = direction.summary();
    }
    let _ = agreement.summary();

    let form = agreement.canonical_form();
    let json: serde_json::Value = serde_json::from_str(form).expect("the canonical form is JSON");
    assert_eq!(json["format"], "hancha-agreement/2");
    assert_eq!(
        serde_json::to_string(&json).expect("JSON"),
        form,
        "the form is compact, keys sorted"
    );
    let hash = agreement.canonical_hash();
    assert_eq!(hash.as_str(), hex(&Sha256::digest(form.as_bytes())));
    assert_eq!(AgreementHash::parse(hash.as_str()).as_ref(), Ok(hash));

    let again = Agreement::parse(agreement.source_text()).expect("the same text parses again");
    assert_eq!(again.canonical_form(), form);
    assert_eq!(agreement.source_text(), text);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
