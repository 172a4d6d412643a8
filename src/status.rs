//! The one place where refusals become gRPC statuses and receipts, for every gRPC edge (the
//! peer exchange and the operator API alike). Edges refuse with a typed [`Rejection`] and convert
//! it here ([`status_of`], or `?` through `From<Rejection> for Status`), so the wording of every
//! refusal passes one function. Database and internal causes go to the log; the caller sees
//! only a generic `INTERNAL` ([`internal`]).

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::error;

use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::privacy::without_id_numbers;
use crate::proto::exchange as pb;

/// The gRPC code for a refusal class.
pub fn code_of(code: RejectionCode) -> Code {
    match code {
        RejectionCode::InvalidArgument => Code::InvalidArgument,
        RejectionCode::PermissionDenied => Code::PermissionDenied,
        RejectionCode::FailedPrecondition => Code::FailedPrecondition,
        RejectionCode::ResourceExhausted => Code::ResourceExhausted,
        RejectionCode::AlreadyExists => Code::AlreadyExists,
        RejectionCode::NotFound => Code::NotFound,
        RejectionCode::Aborted => Code::Aborted,
        RejectionCode::Cancelled => Code::Cancelled,
        RejectionCode::Unavailable => Code::Unavailable,
        RejectionCode::Unauthenticated => Code::Unauthenticated,
    }
}

/// What a peer's status means for a message we sent, read back by the peer client: the
/// refusal classes a receiver refuses a message with ([`code_of`] of them), or `None` for a
/// status that is no refusal of the message (the peer unavailable, the call cancelled or
/// aborted, an internal failure): those are tried again.
pub fn refusal_of(code: Code) -> Option<RejectionCode> {
    Some(match code {
        Code::InvalidArgument => RejectionCode::InvalidArgument,
        Code::PermissionDenied => RejectionCode::PermissionDenied,
        Code::FailedPrecondition => RejectionCode::FailedPrecondition,
        Code::ResourceExhausted => RejectionCode::ResourceExhausted,
        Code::AlreadyExists => RejectionCode::AlreadyExists,
        Code::NotFound => RejectionCode::NotFound,
        _ => return None,
    })
}

/// The names of every code but `OK`, in code order: what a refusal can be called (a bounded
/// metrics label, the error schema of the HTTP API).
pub fn refusal_code_names() -> impl Iterator<Item = &'static str> {
    (1..=16).map(|code| code_name(Code::from_i32(code)))
}

/// The canonical name of a gRPC code (`PERMISSION_DENIED`), as audit reasons spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A refusal as a gRPC status, with google.rpc.BadRequest field violations when it has them.
/// Every text passes the no-echo rule ([`without_id_numbers`]): the typed errors never quote a
/// value that failed validation, and whatever slipped through looking like an ID number is
/// withheld here, the one place every refusal leaves by.
pub fn status_of(rejection: &Rejection) -> Status {
    let reason = said(&rejection.reason);
    if rejection.violations.is_empty() {
        return Status::new(code_of(rejection.code), reason);
    }
    let violations: Vec<tonic_types::FieldViolation> = rejection
        .violations
        .iter()
        .map(|v| tonic_types::FieldViolation::new(said(&v.field), said(&v.description)))
        .collect();
    Status::with_error_details(
        code_of(rejection.code),
        reason,
        ErrorDetails::with_bad_request(violations),
    )
}

/// A text as it may leave: anything that looks like an ID number withheld.
fn said(text: &str) -> String {
    without_id_numbers(text).into_owned()
}

impl From<Rejection> for Status {
    fn from(rejection: Rejection) -> Status {
        status_of(&rejection)
    }
}

/// A refusal as the `Rejected` part of a batch receipt.
pub fn rejected_of(rejection: &Rejection) -> pb::Rejected {
    pb::Rejected {
        code: code_of(rejection.code) as i32,
        reason: said(&rejection.reason),
        field_violations: rejection
            .violations
            .iter()
            .map(|v| pb::FieldViolation {
                field: said(&v.field),
                description: said(&v.description),
            })
            .collect(),
    }
}

/// A failure of ours (the database, mostly), not a refusal: logged here in full, reported as
/// `INTERNAL` without detail. Retrying is safe: every message is idempotent on its id.
pub fn internal(error: impl std::fmt::Display) -> Status {
    error!(%error, "internal failure while serving a call");
    Status::internal("internal error; retry later (the cause is in the node's log)")
}

/// `DEADLINE_EXCEEDED`: a call took longer than the node allows (the HTTP edge's bound on a call;
/// the gRPC server's own timeout makes the same status).
pub fn timed_out(what: &str) -> Status {
    Status::deadline_exceeded(format!("{what} took longer than the node's limits.rpc_timeout"))
}

/// `DEADLINE_EXCEEDED` for a call of ours to a peer that did not answer within `limit`,
/// connecting included (a peer that accepts TCP and then says nothing).
pub fn no_answer(limit: std::time::Duration) -> Status {
    Status::deadline_exceeded(format!("the peer did not answer within {limit:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_code_names_are_the_sixteen_codes_but_ok() {
        let names: Vec<&str> = refusal_code_names().collect();
        assert_eq!(names.len(), 16);
        assert_eq!(names[0], "CANCELLED");
        assert_eq!(names[15], "UNAUTHENTICATED");
        assert!(!names.contains(&"OK") && !names.contains(&"UNKNOWN_CODE"));
    }

    #[test]
    fn a_refusal_keeps_its_code_and_reason() {
        let status = status_of(&Rejection::new(RejectionCode::Aborted, "a run is in progress"));
        assert_eq!(status.code(), Code::Aborted);
        assert_eq!(status.message(), "a run is in progress");
        let status: Status =
            Rejection::new(RejectionCode::Unauthenticated, "no verified client certificate").into();
        assert_eq!(status.code(), Code::Unauthenticated);
    }

    #[test]
    fn a_refused_field_goes_back_as_a_bad_request_violation() {
        let status = status_of(&Rejection::invalid_field("with_county", "must be 6 digits"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "with_county: must be 6 digits");
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("a bad request").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "with_county");
        assert_eq!(violations[0].description, "must be 6 digits");
    }

    #[test]
    fn a_value_that_slipped_into_a_refusal_looking_like_an_id_number_is_withheld() {
        let mut rejection =
            Rejection::invalid_field("fields.43132219890230004X", "unknown 43132219890230004X");
        rejection.reason = "no agreement 43132219890230004X is held".into();
        let status = status_of(&rejection);
        assert_eq!(status.message(), "no agreement [withheld] is held");
        let details = status.get_error_details();
        let violation = &details.bad_request().expect("a bad request").field_violations[0];
        assert_eq!(violation.field, "fields.[withheld]");
        assert_eq!(violation.description, "unknown [withheld]");
        let rejected = rejected_of(&rejection);
        assert!(!format!("{rejected:?}").contains("43132219890230004X"));
    }

    #[test]
    fn an_internal_failure_tells_the_caller_nothing_of_its_cause() {
        let status = internal("connection to 10.0.0.5 refused: password authentication failed");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("10.0.0.5"), "{}", status.message());
    }

    #[test]
    fn a_refusal_read_back_is_the_class_it_was_sent_as() {
        for code in RejectionCode::MESSAGE_REFUSALS {
            assert_eq!(refusal_of(code_of(code)), Some(code));
        }
        for retried in [Code::Unavailable, Code::Cancelled, Code::Aborted, Code::Internal] {
            assert_eq!(refusal_of(retried), None);
        }
    }

    #[test]
    fn every_refusal_class_is_named_as_its_status_code() {
        for code in RejectionCode::MESSAGE_REFUSALS.into_iter().chain([
            RejectionCode::Aborted,
            RejectionCode::Unavailable,
            RejectionCode::Unauthenticated,
        ]) {
            assert_eq!(code.as_str(), code_name(code_of(code)));
        }
    }
}
