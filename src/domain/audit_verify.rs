//! Checking a stored audit chain against its records: the first place where a record was
//! changed, removed, put in or moved, named by position and record id.

use serde::Serialize;

use super::audit_chain::{AuditFields, ChainHash, ChainPoint, ENCODING_V1_NUMBER};

/// One stored chain position with the record it binds, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEntry {
    /// The position.
    pub position: u64,
    /// The record's id as sealed.
    pub audit_id: i64,
    /// The encoding version it was sealed with.
    pub encoding: i16,
    /// The leaf as sealed.
    pub leaf: ChainHash,
    /// The head before this position as sealed, where one is stored (a block's first position).
    pub head_before: Option<ChainHash>,
    /// The head at this position as sealed, where one is stored (a block's last position).
    pub head: Option<ChainHash>,
    /// The record now, or `None` when no record has that id any more.
    pub record: Option<AuditFields>,
}

/// The first broken place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The chain position, when the break is at one.
    pub position: Option<u64>,
    /// The audit record concerned, when one is.
    pub audit_id: Option<i64>,
    /// What is wrong, for a person.
    pub problem: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.position, self.audit_id) {
            (Some(position), Some(id)) => write!(f, "position {position} (audit record {id}): ")?,
            (Some(position), None) => write!(f, "position {position}: ")?,
            (None, Some(id)) => write!(f, "audit record {id}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.problem)
    }
}

/// The entry after `previous` checked: its record must still encode to the sealed leaf, the
/// leaf must lead from the previous head to the sealed head, and positions must follow on.
/// Returns the point it reaches.
pub fn check_entry(previous: ChainPoint, entry: &ChainEntry) -> Result<ChainPoint, Break> {
    let at = |problem: String| Break {
        position: Some(entry.position),
        audit_id: Some(entry.audit_id),
        problem,
    };
    if entry.position != previous.position + 1 {
        return Err(Break {
            position: Some(previous.position + 1),
            audit_id: None,
            problem: format!(
                "positions {}..{} are missing from the chain",
                previous.position + 1,
                entry.position - 1
            ),
        });
    }
    let Some(record) = &entry.record else {
        return Err(at("the record was removed".into()));
    };
    if entry.encoding != ENCODING_V1_NUMBER {
        return Err(at(format!("unknown encoding version {}", entry.encoding)));
    }
    if record.leaf_v1() != entry.leaf {
        return Err(at("the record was changed since it was sealed".into()));
    }
    let head = previous.head.then(&entry.leaf);
    if entry.head_before.is_some_and(|before| before != previous.head)
        || entry.head.is_some_and(|stored| stored != head)
    {
        return Err(at("the chain hash does not follow from the one before".into()));
    }
    Ok(ChainPoint {
        position: entry.position,
        head,
    })
}

/// What `hancha audit verify` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Chain positions checked against their records.
    pub rows_checked: u64,
    /// Whether nothing is broken.
    pub intact: bool,
    /// The first broken place, if any.
    pub first_broken: Option<Break>,
    /// The last position sealed.
    pub sealed_position: u64,
    /// Records committed but not yet sealed.
    pub pending: u64,
    /// The newest checkpoint: its position, head, time and whether its signature holds.
    pub last_checkpoint: Option<CheckpointSummary>,
}

/// A checkpoint as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointSummary {
    /// Its position.
    pub position: u64,
    /// Its head, hex.
    pub head: String,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// Whether its signature verifies with the county certificate stored with it.
    pub signature_valid: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64) -> AuditFields {
        AuditFields {
            id,
            direction: "local".into(),
            outcome: "read".into(),
            ..AuditFields::default()
        }
    }

    fn entry(previous: ChainHash, position: u64, id: i64) -> ChainEntry {
        let leaf = record(id).leaf_v1();
        ChainEntry {
            position,
            audit_id: id,
            encoding: ENCODING_V1_NUMBER,
            leaf,
            head_before: None,
            head: Some(previous.then(&leaf)),
            record: Some(record(id)),
        }
    }

    #[test]
    fn names_a_changed_a_removed_and_a_moved_record() {
        let start = ChainPoint {
            position: 0,
            head: ChainHash::GENESIS,
        };
        let first = entry(ChainHash::GENESIS, 1, 10);
        let reached = check_entry(start, &first).unwrap();
        assert_eq!(reached.position, 1);

        let mut changed = entry(reached.head, 2, 11);
        changed.record.as_mut().unwrap().outcome = "accepted".into();
        assert!(
            check_entry(reached, &changed)
                .unwrap_err()
                .problem
                .contains("changed")
        );

        let mut removed = entry(reached.head, 2, 11);
        removed.record = None;
        assert!(
            check_entry(reached, &removed)
                .unwrap_err()
                .problem
                .contains("removed")
        );

        let skipped = entry(reached.head, 3, 11);
        assert_eq!(check_entry(reached, &skipped).unwrap_err().position, Some(2));

        let moved = entry(ChainHash([7; 32]), 2, 11);
        let broken = check_entry(reached, &moved).unwrap_err();
        assert!(broken.problem.contains("does not follow"), "{broken}");
        assert_eq!(
            broken.to_string(),
            "position 2 (audit record 11): the chain hash does not follow from the one before"
        );

        // a block's first position carries the head before it, which must be the one reached
        let mut starts_elsewhere = entry(reached.head, 2, 11);
        starts_elsewhere.head = None;
        starts_elsewhere.head_before = Some(ChainHash([7; 32]));
        assert!(check_entry(reached, &starts_elsewhere).is_err());
        starts_elsewhere.head_before = Some(reached.head);
        assert_eq!(
            check_entry(reached, &starts_elsewhere).unwrap().head,
            reached.head.then(&starts_elsewhere.leaf)
        );
    }
}
