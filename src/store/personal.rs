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
    /// What the retention worker does to it once its row is past the agreed period.
    pub at_retention: AtRetention,
}

/// What becomes of a personal column when its row is past the agreement's retention period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtRetention {
    /// Kept: the county's own registry (not exchange data), or a keyed tag that names nothing
    /// without the key.
    Kept,
    /// Set to NULL.
    Cleared,
    /// Replaced by an empty JSON object (the column may not be NULL).
    Emptied,
}

impl AtRetention {
    /// The SQL value erasure writes, if it writes one.
    const fn erased_value(self) -> Option<&'static str> {
        match self {
            AtRetention::Kept => None,
            AtRetention::Cleared => Some("NULL"),
            AtRetention::Emptied => Some("'{}'::jsonb"),
        }
    }
}

const fn column(table: &'static str, column: &'static str, holds: &'static str) -> PersonalColumn {
    PersonalColumn {
        table,
        column,
        holds,
        at_retention: AtRetention::Kept,
    }
}

/// A column erased at retention: set to NULL.
const fn cleared(table: &'static str, column: &'static str, holds: &'static str) -> PersonalColumn {
    PersonalColumn {
        table,
        column,
        holds,
        at_retention: AtRetention::Cleared,
    }
}

/// A JSON column erased at retention: emptied.
const fn emptied(table: &'static str, column: &'static str, holds: &'static str) -> PersonalColumn {
    PersonalColumn {
        table,
        column,
        holds,
        at_retention: AtRetention::Emptied,
    }
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
    column(
        "registry_history",
        "resident_id",
        "the ID number of a registry entry that changed",
    ),
    column("registry_history", "old_value", "a status value she had"),
    column("registry_history", "new_value", "a status value she has"),
    // why a received notice waits (names no person) or the operator's reason for dismissing
    // it, which might: erased with the notice
    cleared(
        "notice_effects",
        "note",
        "an operator's note on a notice about her",
    ),
    cleared("inquiries", "subject_id", "the ID number asked about"),
    cleared("inquiries", "subject_certificate", "the certificate number shown"),
    column(
        "inquiries",
        "content_tag",
        "a tag of the inquiry keyed with the agreement's secret",
    ),
    emptied("confirmations", "fields", "the status answered"),
    column(
        "confirmations",
        "content_tag",
        "a tag of the answer keyed with the agreement's secret",
    ),
    cleared("notices", "subject_id", "the ID number notified about"),
    cleared(
        "notices",
        "occurred_on",
        "the date of the birth, pregnancy or move",
    ),
    emptied("notices", "body", "the status notified"),
    column(
        "notices",
        "content_tag",
        "a tag of the notice keyed with the agreement's secret",
    ),
    cleared("feedback", "note", "a note on what the origin did about a notice"),
    column(
        "feedback",
        "content_tag",
        "a tag of the feedback keyed with the agreement's secret",
    ),
    cleared(
        "reconcile_differences",
        "resident_id",
        "the ID number of a person recorded differently",
    ),
    cleared("reconcile_differences", "township", "her township"),
    column(
        "reconcile_differences",
        "person_tag",
        "a keyed tag of her ID number",
    ),
    // the county's own record of the 催办通知书 it issued, kept like the registry
    column("reminders", "resident_id", "the ID number of a woman reminded"),
    column("reminders", "township", "the township office she reports to"),
    column("reminders", "origin_county", "her county of registration"),
    column("reminders", "missing", "what she lacked of her certificate"),
];

/// The columns that hold nothing personal, per table (an empty list: the whole table).
/// Messages are named by id, counties and agreements by code, and the audit log never carries a
/// person's data (see [`crate::domain::privacy`]).
pub const NOT_PERSONAL: &[(&str, &[&str])] = &[
    ("agreements", &[]),
    ("agreement_signatures", &[]),
    ("daily_volume", &[]),
    ("outbox", &[]),
    ("peer_status", &[]),
    ("audit_log", &[]),
    // the audit chain: positions, hashes of audit records, signed checkpoints and what peers
    // showed of theirs (hashes and certificates of county nodes); resume reasons pass the
    // no-echo rule
    ("audit_chain", &[]),
    ("audit_chain_positions", &[]),
    ("audit_checkpoints", &[]),
    ("audit_resumes", &[]),
    ("peer_audit_checkpoints", &[]),
    ("sequencer_cursors", &[]),
    ("reconcile_runs", &[]),
    ("erasures", &[]),
    ("node_secrets", &["name", "value"]),
    // county systems' webhook endpoints: URLs, filters, signing secrets, delivery state; the
    // events they are sent name messages by id only
    ("webhook_endpoints", &[]),
    ("webhook_secrets", &[]),
    ("webhook_attempts", &[]),
    // the county systems' API tokens: names of systems (never resident ID numbers, like
    // operator names), townships, SHA-256 of the tokens, times
    (
        "api_tokens",
        &[
            "name",
            "token_sha256",
            "township",
            "created_at",
            "revoked_at",
            "last_used_at",
        ],
    ),
    // the console's staff accounts and sessions: staff names (like operator names, never
    // resident ID numbers), townships, Argon2id hashes, SHA-256 of session secrets, times
    ("console_accounts", &[]),
    ("console_sessions", &[]),
    (
        "reminders",
        &["number", "period", "issued_at", "issued_by", "deadline"],
    ),
    (
        "registry_history",
        &["id", "field", "changed_at", "source", "message_id", "changed_by"],
    ),
    (
        "notice_effects",
        &[
            "message_id",
            "effect",
            "state",
            "changed",
            "decided_at",
            "decided_by",
        ],
    ),
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
            "erased_at",
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
            "erased_at",
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
            "reject_reason",
            "erased_at",
        ],
    ),
    (
        "feedback",
        &[
            "message_id",
            "notice_id",
            "direction",
            "peer_county",
            "agreement_id",
            "agreement_hash",
            "outcome",
            "answered_at",
            "created_at",
            "acknowledged_at",
            "reject_reason",
            "erased_at",
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

/// The columns of `table` that erasure changes, in list order.
pub fn erased_columns(table: &str) -> Vec<&'static str> {
    PERSONAL_COLUMNS
        .iter()
        .filter(|listed| listed.table == table && listed.at_retention != AtRetention::Kept)
        .map(|listed| listed.column)
        .collect()
}

/// The `SET` list that erases `table`'s personal columns (`col = NULL, …`), walked from
/// [`PERSONAL_COLUMNS`]; empty when the table has nothing to erase.
pub fn erasure_assignments(table: &str) -> String {
    PERSONAL_COLUMNS
        .iter()
        .filter(|listed| listed.table == table)
        .filter_map(|listed| {
            listed
                .at_retention
                .erased_value()
                .map(|value| format!("{} = {value}", listed.column))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_clears_the_subjects_and_empties_the_answers_and_keeps_the_tags() {
        assert_eq!(
            erasure_assignments("inquiries"),
            "subject_id = NULL, subject_certificate = NULL"
        );
        assert_eq!(erasure_assignments("confirmations"), "fields = '{}'::jsonb");
        assert_eq!(
            erasure_assignments("notices"),
            "subject_id = NULL, occurred_on = NULL, body = '{}'::jsonb"
        );
        assert_eq!(
            erased_columns("reconcile_differences"),
            ["resident_id", "township"]
        );
        assert_eq!(erasure_assignments("notice_effects"), "note = NULL");
        assert!(
            erasure_assignments("persons").is_empty(),
            "the registry is the county's own"
        );
    }
}
