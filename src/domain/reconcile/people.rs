//! The shared-people set: which fields are compared, and the digest of one person.
//!
//! The two registries hold different aspects of a migrant (the origin the certificate, the
//! destination the contraception checks), so comparing everything would report every person
//! every night. What is compared is what both sides may see under the agreement: the fields
//! answers may carry in *both* directions. The township and village are never compared: each
//! side records its own office (registration on one side, residence on the other). Nor is
//! `certificate_presented`, which describes one inquiry, not the person.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::domain::agreement::Agreement;
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{StatusField, StatusValues};

/// The fields compared for a shared person under `agreement`.
pub fn compared_fields(agreement: &Agreement) -> BTreeSet<StatusField> {
    let mut directions = agreement.directions().iter();
    let Some(first) = directions.next() else {
        return BTreeSet::new();
    };
    let mut fields = first.answer_fields().clone();
    for direction in directions {
        fields = fields.intersection(direction.answer_fields()).copied().collect();
    }
    fields.remove(&StatusField::Township);
    fields.remove(&StatusField::Village);
    fields.retain(|field| !field.describes_an_inquiry());
    fields
}

/// The stored name of a field set, kept beside each person's digest so that a digest made
/// for other fields (the agreement changed) is recomputed rather than compared.
pub fn fields_key(fields: &BTreeSet<StatusField>) -> String {
    fields
        .iter()
        .map(|field| field.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The digest of what a side believes about a shared person: the ID number and the compared
/// fields, each as `name=value` (empty when unknown), in field order.
pub fn person_digest(
    resident_id: &ResidentId,
    status: &StatusValues,
    fields: &BTreeSet<StatusField>,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"hancha/person/v1\n");
    hasher.update(resident_id.as_str().as_bytes());
    for field in fields {
        hasher.update(b"\n");
        hasher.update(field.as_str().as_bytes());
        hasher.update(b"=");
        if let Some(value) = status.get_string(*field) {
            hasher.update(value.as_bytes());
        }
    }
    hasher.finalize().into()
}
