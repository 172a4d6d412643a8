//! Where personal data is kept: the one list of the columns that hold it.
//!
//! Whatever must know where a person's data lies walks this list rather than its own: the test
//! that no refused value is ever stored, the schema test that keeps it complete, and the
//! retention of personal data (kept no longer than agreed).

/// A column holding personal data, and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersonalColumn {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: &'static str,
    /// What of a person it holds, for the operator documentation.
    pub holds: &'static str,
}

const fn column(table: &'static str, column: &'static str, holds: &'static str) -> PersonalColumn {
    PersonalColumn { table, column, holds }
}

/// Every column that holds a person's data. A column added to the schema must be listed here or
/// in [`NOT_PERSONAL`] (a schema test fails otherwise).
pub const PERSONAL_COLUMNS: &[PersonalColumn] = &[
    column("persons", "resident_id", "the ID number"),
    column("persons", "name", "the name"),
    column("persons", "sex", "sex"),
    column("persons", "birth_date", "birth date"),
    column("persons", "flow", "whether she lives or is registered here"),
    column("persons", "registered_county", "the county of registration"),
    column("persons", "residence_county", "the county of residence"),
    column("persons", "township", "the responsible township"),
    column("persons", "village", "the responsible village"),
    column("persons", "marital_status", "marital status"),
    column("persons", "certificate_number", "the certificate number"),
    column("persons", "certificate_valid_until", "the certificate's validity"),
    column("persons", "certificate_status", "the certificate's status"),
    column("persons", "children_count", "the number of children"),
    column("persons", "contraception_status", "contraception"),
    column("persons", "contraception_date", "contraception"),
    column("persons", "pregnant", "pregnancy"),
    column("persons", "registered_since", "registration date"),
    column("persons", "shared_digest", "a digest of her shared status"),
    column(
        "persons",
        "shared_digest_fields",
        "which fields that digest covers",
    ),
    column("persons", "updated_at", "when her entry last changed"),
    column("inquiries", "subject_id", "the ID number asked about"),
    column("inquiries", "subject_certificate", "the certificate number shown"),
    column(
        "inquiries",
        "content_digest",
        "a digest of the inquiry, its subject included",
    ),
    column("confirmations", "fields", "the status answered"),
    column(
        "confirmations",
        "content_digest",
        "a digest of the answer, its status included",
    ),
    column("notices", "subject_id", "the ID number notified about"),
    column(
        "notices",
        "occurred_on",
        "the date of the birth, pregnancy or move",
    ),
    column("notices", "body", "the status notified"),
    column(
        "notices",
        "content_digest",
        "a digest of the notice, its subject included",
    ),
    column(
        "reconcile_differences",
        "resident_id",
        "the ID number of a person recorded differently",
    ),
    column("reconcile_differences", "township", "her township"),
    column(
        "reconcile_differences",
        "person_tag",
        "a keyed tag of her ID number",
    ),
];

/// The columns that hold nothing personal, per table (an empty list: the whole table).
/// Messages are named by id, counties and agreements by code, and the audit log never carries a
/// person's data (see [`crate::domain::privacy`]).
pub const NOT_PERSONAL: &[(&str, &[&str])] = &[
    ("agreements", &[]),
    ("daily_volume", &[]),
    ("outbox", &[]),
    ("peer_status", &[]),
    ("audit_log", &[]),
    // the audit chain: positions, hashes of audit records, signed checkpoints and what peers
    // showed of theirs (hashes and certificates of county nodes); resume reasons pass the
    // no-echo rule
    ("audit_chain", &[]),
    ("audit_checkpoints", &[]),
    ("audit_resumes", &[]),
    ("peer_audit_checkpoints", &[]),
    ("sequencer_cursors", &[]),
    ("reconcile_runs", &[]),
    ("_sqlx_migrations", &[]),
    (
        "inquiries",
        &[
            "message_id",
            "direction",
            "peer_county",
            "agreement_id",
            "agreement_hash",
            "kind",
            "priority",
            "state",
            "created_at",
            "received_at",
            "due_at",
            "answered_at",
            "outcome",
            "reject_reason",
            "auto_checked",
            "overdue_at",
            "sweep_key",
            "asked_by_township",
        ],
    ),
    (
        "confirmations",
        &[
            "message_id",
            "inquiry_id",
            "direction",
            "peer_county",
            "agreement_id",
            "agreement_hash",
            "outcome",
            "answered_by",
            "created_at",
            "delivered_at",
        ],
    ),
    (
        "notices",
        &[
            "message_id",
            "direction",
            "peer_county",
            "agreement_id",
            "agreement_hash",
            "kind",
            "created_at",
            "acknowledged_at",
            "feedback_due_at",
        ],
    ),
    (
        "reconcile_differences",
        &[
            "id",
            "run_id",
            "set_name",
            "role",
            "difference",
            "action",
            "message_type",
            "message_id",
            "author_county",
            "flow",
            "inquiry_id",
        ],
    ),
];

/// Whether `table.column` is listed as personal.
pub fn is_personal(table: &str, column: &str) -> bool {
    PERSONAL_COLUMNS
        .iter()
        .any(|listed| listed.table == table && listed.column == column)
}

/// Whether `table.column` is listed as holding nothing personal.
pub fn is_not_personal(table: &str, column: &str) -> bool {
    NOT_PERSONAL
        .iter()
        .any(|(listed, columns)| *listed == table && (columns.is_empty() || columns.contains(&column)))
}
