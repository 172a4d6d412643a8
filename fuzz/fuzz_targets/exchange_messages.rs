//! Bytes → every request message the peer listener (`hancha.exchange.v1.Exchange`) accepts,
//! decoded with prost and run through the conversion and validation the server runs
//! (`exchange::convert`, the reconciliation `begin` and chunk readers). The first byte chooses
//! the message type.
//!
//! Invariants: nothing panics; a refused message comes back as field violations (at least one,
//! each under the message's path) that make an `INVALID_ARGUMENT` rejection; an accepted message
//! survives wire → domain → wire → domain unchanged; and no refusal quotes a request value that
//! could hold a resident ID number (13 or more digits), except the name of an unknown status
//! field, which the current wording still quotes (see FUZZING.md).
#![no_main]

use hancha::domain::message::FieldViolation;
use hancha::domain::policy::{Rejection, RejectionCode};
use hancha::domain::reconcile::DifferenceDetail;
use hancha::domain::reconcile::pacing::MAX_CHUNK;
use hancha::domain::riblt::{CodedSymbol, Decoder};
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
        Err(violations) => {
            let mut values = vec![wire.message_id.as_str()];
            if let Some(agreement) = &wire.agreement {
                values.extend([agreement.id.as_str(), agreement.hash.as_str()]);
            }
            if let Some(subject) = &wire.subject {
                values.extend([subject.resident_id.as_str(), subject.certificate_number.as_str()]);
            }
            check_refusal(violations, path, &values);
        }
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
        Err(violations) => {
            let mut values = vec![wire.message_id.as_str(), wire.inquiry_id.as_str()];
            if let Some(agreement) = &wire.agreement {
                values.extend([agreement.id.as_str(), agreement.hash.as_str()]);
            }
            values.extend(wire.fields.values().map(String::as_str));
            check_refusal(violations, path, &values);
        }
    }
}

fn check_notice(wire: &pb::Notice, path: &str) {
    if let Err(violations) = notice_from_wire(wire, path) {
        let mut values = vec![wire.message_id.as_str(), wire.occurred_on.as_str()];
        if let Some(agreement) = &wire.agreement {
            values.extend([agreement.id.as_str(), agreement.hash.as_str()]);
        }
        if let Some(subject) = &wire.subject {
            values.extend([subject.resident_id.as_str(), subject.certificate_number.as_str()]);
        }
        values.extend(wire.fields.values().map(String::as_str));
        check_refusal(violations, path, &values);
    }
}

/// A refusal as the server sends it: violations under `path` that make an `INVALID_ARGUMENT`
/// rejection, quoting none of `values` that could hold a resident ID number.
fn check_refusal(violations: Vec<FieldViolation>, path: &str, values: &[&str]) {
    assert!(!violations.is_empty(), "a refusal without a field violation");
    for violation in &violations {
        assert!(
            violation.field.starts_with(path),
            "violation {:?} is not under {path}",
            violation.field
        );
    }
    // The name of an unknown status field is still quoted (`unknown status field "…"`).
    let unknown_field_name = format!("{path}.fields");
    let quotable: Vec<&FieldViolation> = violations
        .iter()
        .filter(|violation| violation.field != unknown_field_name)
        .collect();
    for value in values.iter().filter(|value| could_hold_an_id(value)) {
        for violation in &quotable {
            assert!(
                !violation.description.contains(value) && !violation.field.contains(value),
                "violation {violation:?} quotes a request value"
            );
        }
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

/// 13 or more ASCII digits: a resident ID number (or most of one) could be in it. No fixed
/// description holds more than 10 digits, so such a value in a description was quoted.
fn could_hold_an_id(value: &str) -> bool {
    value.bytes().filter(u8::is_ascii_digit).count() >= 13
}

/// One step of a `Reconcile` stream, read as the responder reads it.
fn check_reconcile_step(request: pb::ReconcileRequest) {
    use pb::reconcile_request::Step;
    match request.step {
        None => {}
        Some(Step::Begin(begin)) => {
            if let Err(rejection) = begin_from_wire(&begin) {
                assert_eq!(rejection.code, RejectionCode::InvalidArgument);
                let _ = status_of(&rejection);
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
            let _ = add_detail_part(&mut detail, part);
        }
    }
}
