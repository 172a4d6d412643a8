//! Wire ⇄ domain for the audit chain's part of a node's status ([`AuditStatus`]). Sizes are
//! checked here (hashes of 32 bytes, at most [`MAX_EXTENSION_LEAVES`] leaves, bounded
//! certificates and signatures); signatures and the chain rule are the node's business.

use crate::domain::audit_chain::{
    AuditStatus, ChainHash, ChainPoint, Checkpoint, Extension, MAX_EXTENSION_LEAVES, Offer, ResumeStatement,
    Signature, Signed,
};
use crate::domain::message::FieldViolation;
use crate::proto::exchange as pb;

use super::convert::{timestamp_from_wire, timestamp_to_wire};

/// The largest certificate accepted with a signature.
const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;
/// The largest signature accepted.
const MAX_SIGNATURE_BYTES: usize = 1024;
/// The longest resume reason accepted, in bytes.
const MAX_REASON_BYTES: usize = 2000;

/// Our audit status for the wire.
pub fn audit_to_wire(status: &AuditStatus) -> pb::AuditChainStatus {
    let offer = status.offer.as_ref();
    pb::AuditChainStatus {
        checkpoint: offer.map(|offer| {
            let body = &offer.checkpoint.body;
            pb::SignedAuditCheckpoint {
                county: body.county.clone(),
                point: Some(point_to_wire(body.point)),
                signed_at: Some(timestamp_to_wire(body.signed_at)),
                signature: Some(signature_to_wire(&offer.checkpoint.signature)),
            }
        }),
        extension: offer
            .and_then(|offer| offer.extension.as_ref())
            .map(|extension| pb::AuditExtension {
                from_position: extension.from,
                leaves: extension.leaves.iter().map(|leaf| leaf.0.to_vec()).collect(),
            }),
        resume: offer
            .and_then(|offer| offer.resume.as_ref())
            .map(|resume| pb::SignedAuditResume {
                county: resume.body.county.clone(),
                from: Some(point_to_wire(resume.body.from)),
                signed_at: Some(timestamp_to_wire(resume.body.signed_at)),
                reason: resume.body.reason.clone(),
                signature: Some(signature_to_wire(&resume.signature)),
            }),
        holds_yours: status.holds_yours.map(point_to_wire),
    }
}

fn point_to_wire(point: ChainPoint) -> pb::AuditChainPoint {
    pb::AuditChainPoint {
        position: point.position,
        head: point.head.0.to_vec(),
    }
}

fn signature_to_wire(signature: &Signature) -> pb::AuditSignature {
    pb::AuditSignature {
        scheme: signature.scheme.clone(),
        signature: signature.bytes.clone(),
        certificate: signature.certificate.clone(),
    }
}

/// A peer's audit status from the wire, every violation named under `path` (`status.audit`).
pub fn audit_from_wire(
    wire: Option<&pb::AuditChainStatus>,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> AuditStatus {
    let Some(wire) = wire else {
        return AuditStatus::default();
    };
    let before = violations.len();
    let holds_yours = wire
        .holds_yours
        .as_ref()
        .and_then(|point| point_from_wire(point, &format!("{path}.holds_yours"), violations));
    let checkpoint = wire.checkpoint.as_ref().and_then(|checkpoint| {
        let at = format!("{path}.checkpoint");
        let point = required(checkpoint.point.as_ref(), &format!("{at}.point"), violations)
            .and_then(|point| point_from_wire(point, &format!("{at}.point"), violations));
        let signed_at = instant(
            checkpoint.signed_at.as_ref(),
            &format!("{at}.signed_at"),
            violations,
        );
        let signature = required(
            checkpoint.signature.as_ref(),
            &format!("{at}.signature"),
            violations,
        )
        .and_then(|signature| signature_from_wire(signature, &format!("{at}.signature"), violations));
        Some(Signed {
            body: Checkpoint {
                county: county(&checkpoint.county, &format!("{at}.county"), violations)?,
                point: point?,
                signed_at: signed_at?,
            },
            signature: signature?,
        })
    });
    let extension = wire.extension.as_ref().and_then(|extension| {
        let at = format!("{path}.extension.leaves");
        if extension.leaves.len() as u64 > MAX_EXTENSION_LEAVES {
            violations.push(FieldViolation::new(
                at,
                format!(
                    "carries {} leaves; at most {MAX_EXTENSION_LEAVES}",
                    extension.leaves.len()
                ),
            ));
            return None;
        }
        let leaves: Option<Vec<ChainHash>> = extension
            .leaves
            .iter()
            .map(|leaf| ChainHash::from_slice(leaf))
            .collect();
        if leaves.is_none() {
            violations.push(FieldViolation::new(at, "every leaf must be 32 bytes"));
        }
        Some(Extension {
            from: extension.from_position,
            leaves: leaves?,
        })
    });
    let resume = wire.resume.as_ref().and_then(|resume| {
        let at = format!("{path}.resume");
        let from = required(resume.from.as_ref(), &format!("{at}.from"), violations)
            .and_then(|point| point_from_wire(point, &format!("{at}.from"), violations));
        let signed_at = instant(resume.signed_at.as_ref(), &format!("{at}.signed_at"), violations);
        let signature = required(resume.signature.as_ref(), &format!("{at}.signature"), violations)
            .and_then(|signature| signature_from_wire(signature, &format!("{at}.signature"), violations));
        if resume.reason.len() > MAX_REASON_BYTES {
            violations.push(FieldViolation::new(
                format!("{at}.reason"),
                format!("at most {MAX_REASON_BYTES} bytes"),
            ));
            return None;
        }
        Some(Signed {
            body: ResumeStatement {
                county: county(&resume.county, &format!("{at}.county"), violations)?,
                from: from?,
                signed_at: signed_at?,
                reason: resume.reason.clone(),
            },
            signature: signature?,
        })
    });
    if violations.len() > before {
        return AuditStatus::default();
    }
    AuditStatus {
        offer: checkpoint.map(|checkpoint| Offer {
            checkpoint,
            extension,
            resume,
        }),
        holds_yours,
    }
}

fn required<'a, T>(value: Option<&'a T>, path: &str, violations: &mut Vec<FieldViolation>) -> Option<&'a T> {
    if value.is_none() {
        violations.push(FieldViolation::new(path, "is required"));
    }
    value
}

fn instant(
    at: Option<&pbjson_types::Timestamp>,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let instant = at.and_then(timestamp_from_wire);
    if instant.is_none() {
        violations.push(FieldViolation::new(path, "is required, a valid timestamp"));
    }
    instant
}

fn county(code: &str, path: &str, violations: &mut Vec<FieldViolation>) -> Option<String> {
    let valid = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        violations.push(FieldViolation::new(path, "must be 6 digits"));
    }
    valid.then(|| code.to_string())
}

fn point_from_wire(
    point: &pb::AuditChainPoint,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<ChainPoint> {
    let head = ChainHash::from_slice(&point.head);
    if head.is_none() {
        violations.push(FieldViolation::new(format!("{path}.head"), "must be 32 bytes"));
    }
    if point.position == 0 || point.position > i64::MAX as u64 {
        violations.push(FieldViolation::new(
            format!("{path}.position"),
            "must be at least 1",
        ));
        return None;
    }
    Some(ChainPoint {
        position: point.position,
        head: head?,
    })
}

fn signature_from_wire(
    signature: &pb::AuditSignature,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<Signature> {
    let mut ok = true;
    if signature.scheme.is_empty() || signature.scheme.len() > 64 || !signature.scheme.is_ascii() {
        violations.push(FieldViolation::new(
            format!("{path}.scheme"),
            "must be 1–64 ASCII characters",
        ));
        ok = false;
    }
    if signature.signature.is_empty() || signature.signature.len() > MAX_SIGNATURE_BYTES {
        violations.push(FieldViolation::new(
            format!("{path}.signature"),
            format!("must be 1–{MAX_SIGNATURE_BYTES} bytes"),
        ));
        ok = false;
    }
    if signature.certificate.is_empty() || signature.certificate.len() > MAX_CERTIFICATE_BYTES {
        violations.push(FieldViolation::new(
            format!("{path}.certificate"),
            format!("must be 1–{MAX_CERTIFICATE_BYTES} bytes"),
        ));
        ok = false;
    }
    ok.then(|| Signature {
        scheme: signature.scheme.clone(),
        bytes: signature.signature.clone(),
        certificate: signature.certificate.clone(),
    })
}
