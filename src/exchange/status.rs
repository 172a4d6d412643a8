//! The one place where refusals become gRPC statuses and receipts. Database and internal causes
//! go to the log; the peer sees only a generic `INTERNAL`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::error;

use crate::domain::policy::{Rejection, RejectionCode};
use crate::proto::exchange as pb;
use crate::store::StoreError;

/// The gRPC code for a refusal class.
pub fn code_of(code: RejectionCode) -> Code {
    match code {
        RejectionCode::InvalidArgument => Code::InvalidArgument,
        RejectionCode::PermissionDenied => Code::PermissionDenied,
        RejectionCode::FailedPrecondition => Code::FailedPrecondition,
        RejectionCode::ResourceExhausted => Code::ResourceExhausted,
        RejectionCode::AlreadyExists => Code::AlreadyExists,
        RejectionCode::NotFound => Code::NotFound,
    }
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
pub fn status_of(rejection: &Rejection) -> Status {
    if rejection.violations.is_empty() {
        return Status::new(code_of(rejection.code), rejection.reason.clone());
    }
    let violations: Vec<tonic_types::FieldViolation> = rejection
        .violations
        .iter()
        .map(|v| tonic_types::FieldViolation::new(v.field.clone(), v.description.clone()))
        .collect();
    Status::with_error_details(
        code_of(rejection.code),
        rejection.reason.clone(),
        ErrorDetails::with_bad_request(violations),
    )
}

/// A refusal as the `Rejected` part of a batch receipt.
pub fn rejected_of(rejection: &Rejection) -> pb::Rejected {
    pb::Rejected {
        code: code_of(rejection.code) as i32,
        reason: rejection.reason.clone(),
        field_violations: rejection
            .violations
            .iter()
            .map(|v| pb::FieldViolation {
                field: v.field.clone(),
                description: v.description.clone(),
            })
            .collect(),
    }
}

/// A store failure: logged here in full, reported to the peer as `INTERNAL` without detail.
pub fn internal(error: StoreError) -> Status {
    error!(%error, "store failure while serving a peer");
    Status::internal("internal error; the message was not stored, retry later")
}
