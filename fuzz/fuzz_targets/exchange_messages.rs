//! Bytes → every request message the peer listener (`hancha.exchange.v1.Exchange`) accepts,
//! decoded with prost and run through the conversion and validation the server runs
//! (`exchange::convert`, the reconciliation `begin` and chunk readers). The first byte chooses
//! the message type.
//!
//! Invariants: nothing panics; a refused message comes back as field violations (at least one,
//! each under the message's path) that make an `INVALID_ARGUMENT` rejection; an accepted message
//! survives wire → domain → wire → domain unchanged; and no refusal quotes a request text (an
//! ID number, a certificate number, an id, a hash, a date, a status field's name or value): a
//! violation's field is a field of the message (a status field by its own name, never the key
//! it was sent as) and its description, with digit runs as `N`, is one of the fixed messages;
//! the same for a reconciliation `begin` or difference detail refusal. The only numbers are
//! lengths, positions, limits and an enum number out of range (`unknown value 17`, which
//! tests/exchange_rejections.rs expects). See FUZZING.md.
#![no_main]

#[path = "common/no_echo.rs"]
mod no_echo;

use hancha::domain::message::FieldViolation;
use hancha::domain::policy::{Rejection, RejectionCode};
use hancha::domain::reconcile::DifferenceDetail;
use hancha::domain::reconcile::pacing::MAX_CHUNK;
use hancha::domain::riblt::{CodedSymbol, Decoder};
use hancha::domain::vocabulary::StatusField;
use hancha::exchange::convert::{
    confirmation_from_wire, confirmation_to_wire, inquiry_from_wire, inquiry_to_wire, notice_from_wire,
};
use hancha::exchange::reconcile::{add_detail_part, begin_from_wire, elements_from_bytes};
use hancha::proto::exchange as pb;
use hancha::status::{rejected_of, status_of};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => {
            if let Ok(batch) = pb::InquiryBatch::decode(bytes) {
                for (index, wire) in batch.inquiries.iter().enumerate() {
                    check_inquiry(wire, &format!("inquiries[{index}]"));
                }
            }
        }
        1 => {
            if let Ok(request) = pb::SubmitInquiryRequest::decode(bytes) {
                check_inquiry(&request.inquiry.unwrap_or_default(), "inquiry");
            }
        }
        2 => {
            if let Ok(batch) = pb::ConfirmationBatch::decode(bytes) {
                for (index, wire) in batch.confirmations.iter().enumerate() {
                    check_confirmation(wire, &format!("confirmations[{index}]"));
                }
            }
        }
        3 => {
            if let Ok(batch) = pb::NoticeBatch::decode(bytes) {
                for (index, wire) in batch.notices.iter().enumerate() {
                    check_notice(wire, &format!("notices[{index}]"));
                }
            }
        }
        4 => {
            // The server reads acknowledgement ids inline (exchange/server.rs).
            if let Ok(acks) = pb::ConfirmationAcks::decode(bytes) {
                for id in &acks.message_ids {
                    let _ = id.parse::<uuid::Uuid>();
                }
            }
        }
        _ => {
            if let Ok(request) = pb::ReconcileRequest::decode(bytes) {
                check_reconcile_step(request);
            }
        }
    }
});

fn check_inquiry(wire: &pb::Inquiry, path: &str) {
    match inquiry_from_wire(wire, path) {
        Ok(inquiry) => {
            let again = inquiry_from_wire(&inquiry_to_wire(&inquiry), path);
            assert_eq!(again, Ok(inquiry), "an accepted inquiry changes on the way back");
        }
        Err(violations) => check_refusal(violations, path),
    }
}

fn check_confirmation(wire: &pb::StatusConfirmation, path: &str) {
    match confirmation_from_wire(wire, path) {
        Ok(confirmation) => {
            let again = confirmation_from_wire(&confirmation_to_wire(&confirmation), path);
            assert_eq!(
                again,
                Ok(confirmation),
                "an accepted confirmation changes on the way back"
            );
        }
        Err(violations) => check_refusal(violations, path),
    }
}

fn check_notice(wire: &pb::Notice, path: &str) {
    if let Err(violations) = notice_from_wire(wire, path) {
        check_refusal(violations, path);
    }
}

/// Where a violation may point, below the message's path: the fields themselves, never a value
/// (a status field by its own name, not the text it was sent as).
const FIELDS: &[&str] = &[
    "message_id",
    "inquiry_id",
    "agreement",
    "agreement.id",
    "agreement.hash",
    "kind",
    "priority",
    "outcome",
    "subject",
    "subject.resident_id",
    "subject.certificate_number",
    "occurred_on",
    "fields",
];

/// The shapes (digit runs as `N`) of every description `exchange::convert` and
/// `domain::message` give: fixed texts, enum numbers, and the resident ID and status field
/// messages. Nothing else, so no description can hold a request text.
fn description_shapes() -> &'static Vec<String> {
    static SHAPES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SHAPES.get_or_init(|| {
        [
            "required",
            "unknown value N",
            "unknown value -N",
            "must be a UUID version N",
            "must be a UUID (version N)",
            "must be N to N characters",
            "must be N lowercase hex characters",
            "at most N characters of letters, digits and '-'",
            "must be a date YYYY-MM-DD",
        ]
        .iter()
        .map(|text| (*text).to_owned())
        .chain(no_echo::resident_id_shapes())
        .chain(no_echo::status_field_shapes())
        .collect()
    })
}

/// A refusal as the server sends it: violations under `path` that make an `INVALID_ARGUMENT`
/// rejection, each naming a field of the message (no value) and described in one of the fixed
/// shapes (no value either: the only numbers are lengths, positions and enum numbers).
fn check_refusal(violations: Vec<FieldViolation>, path: &str) {
    assert!(!violations.is_empty(), "a refusal without a field violation");
    for violation in &violations {
        let below = violation
            .field
            .strip_prefix(path)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or_else(|| panic!("violation {:?} is not under {path}", violation.field));
        let named = FIELDS.contains(&below)
            || below
                .strip_prefix("fields.")
                .is_some_and(|name| StatusField::NAMES.contains(&name));
        assert!(
            named,
            "violation field {:?} is not a field's path",
            violation.field
        );
        assert!(
            description_shapes().contains(&no_echo::shape(&violation.description)),
            "violation description {:?} is not one of the fixed messages",
            violation.description
        );
    }
    let rejection = Rejection::invalid(violations);
    assert_eq!(rejection.code, RejectionCode::InvalidArgument);
    let rejected = rejected_of(&rejection);
    assert_eq!(rejected.code, INVALID_ARGUMENT);
    assert_eq!(rejected.field_violations.len(), rejection.violations.len());
    assert_eq!(status_of(&rejection).code() as i32, INVALID_ARGUMENT);
}

/// google.rpc.Code INVALID_ARGUMENT.
const INVALID_ARGUMENT: i32 = 3;

/// One step of a `Reconcile` stream, read as the responder reads it.
fn check_reconcile_step(request: pb::ReconcileRequest) {
    use pb::reconcile_request::Step;
    match request.step {
        None => {}
        Some(Step::Begin(begin)) => {
            if let Err(rejection) = begin_from_wire(&begin) {
                assert_eq!(rejection.code, RejectionCode::InvalidArgument);
                let _ = status_of(&rejection);
                let shape = no_echo::shape(&rejection.reason);
                assert!(
                    [
                        "begin.run_id: not a UUID",
                        "begin.set_size: exceeds the largest set a county holds (N)",
                        "begin.set: must be messages or shared_people",
                        "begin.agreement: required",
                    ]
                    .contains(&shape.as_str()),
                    "begin refusal {:?} is not one of the fixed messages",
                    rejection.reason
                );
            }
        }
        Some(Step::Symbols(chunk)) => {
            // As `add_chunk` in exchange/reconcile/responder.rs, after its count check, against a
            // small local set.
            if chunk.count == 0 || chunk.count as usize > MAX_CHUNK {
                return;
            }
            let local = chunk
                .symbols
                .chunks_exact(32)
                .take(usize::from(chunk.symbols.first().copied().unwrap_or(0) % 4));
            let mut decoder = Decoder::new(
                local
                    .map(|element| <[u8; 32]>::try_from(element).expect("chunks of 32"))
                    .collect::<std::collections::BTreeSet<_>>(),
            );
            let mut rest = chunk.symbols.as_slice();
            for _ in 0..chunk.count {
                let Ok((symbol, tail)) = CodedSymbol::decode_prefix(rest) else {
                    break;
                };
                rest = tail;
                if decoder.add_remote(symbol).is_err() || decoder.is_decoded() {
                    break;
                }
            }
        }
        Some(Step::Elements(chunk)) => {
            if let Ok(elements) = elements_from_bytes(&chunk.elements, "elements.elements") {
                assert_eq!(elements.len() * 32, chunk.elements.len());
            }
        }
        Some(Step::Detail(part)) => {
            let mut detail = DifferenceDetail::default();
            if let Err(reason) = add_detail_part(&mut detail, part) {
                assert!(
                    detail_shapes().contains(&no_echo::shape(&reason)),
                    "detail refusal {reason:?} is not one of the fixed messages"
                );
            }
        }
    }
}

/// The shapes of the refusals of a difference detail part: a reference's type, id or author
/// county (described by `DivisionError`, which quotes no code that is not in the list), or a
/// tag's length.
fn detail_shapes() -> &'static Vec<String> {
    use hancha::domain::division::{DivisionError, DivisionLevel};
    static SHAPES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SHAPES.get_or_init(|| {
        let level = DivisionLevel::County;
        let county = [
            DivisionError::WrongLength {
                level,
                expected: 6,
                got: 1,
            },
            DivisionError::WrongLength {
                level,
                expected: 6,
                got: 7,
            },
            DivisionError::NotDigit {
                level,
                position: 1,
                found: 'Q',
            },
            DivisionError::Unknown {
                level,
                code: "QQQQQQ".to_owned(),
            },
        ];
        [
            "type: must be inquiry, confirmation or notice".to_owned(),
            "message_id: not a UUID".to_owned(),
        ]
        .into_iter()
        .chain(county.iter().map(|error| format!("author_county: {error}")))
        .map(|problem| no_echo::shape(&format!("detail.messages[0]: {problem}")))
        .chain(std::iter::once(no_echo::shape(
            "detail.person_tags[0]: a tag is 32 bytes, found 0",
        )))
        .collect()
    })
}
