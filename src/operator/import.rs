//! Registry import: upserts persons of the county's registry from rows of a file (the rows
//! `hancha registry import` reads from CSV). Each row is checked on its own
//! ([`person_from_columns`]); bad rows come back with their line and reason, good rows are
//! written, all of one request in one transaction, so a row is never half-written.

use std::collections::HashMap;

use tonic::Status;
use tracing::{info, instrument};

use super::access::Caller;
use super::{internal, invalid};
use crate::domain::person::Person;
use crate::domain::person_row::{check_column, person_from_columns, resident_id_key, superseded_reason};
use crate::node::Node;
use crate::proto::operator as pb;

/// The most rows one request may carry: enough for any chunk a client sends (the CLI sends
/// 5,000), small enough that one transaction stays short and one message stays within limits.
pub const MAX_ROWS_PER_REQUEST: usize = 20_000;

/// Checks every row, writes the good ones and reports the bad ones.
///
/// A column name the import does not know refuses the whole request (`INVALID_ARGUMENT`, naming
/// the allowed columns): it is a mistake in the file's header, and importing the rows without it
/// would clear that field for everyone. When several rows have the same resident ID number the
/// last one is imported and the earlier ones are reported as superseded, so the outcome does not
/// depend on where a client cut its file into requests.
#[instrument(skip_all, fields(county = %node.county(), rows = request.rows.len()))]
pub(super) async fn import_persons(
    node: &Node,
    caller: &Caller,
    request: pb::ImportPersonsRequest,
) -> Result<pb::ImportPersonsResponse, Status> {
    let rows = request.rows;
    if rows.len() > MAX_ROWS_PER_REQUEST {
        return Err(invalid(
            "rows",
            format!(
                "at most {MAX_ROWS_PER_REQUEST} rows per request, got {}; send the file in parts",
                rows.len()
            ),
        ));
    }
    if let Some(unknown) = rows
        .iter()
        .flat_map(|row| row.columns.keys())
        .find_map(|name| check_column(name).err())
    {
        return Err(invalid("rows.columns", unknown.to_string()));
    }

    let last_index_of_id: HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .filter_map(|(index, row)| Some((resident_id_key(&row.columns)?, index)))
        .collect();
    let mut persons: Vec<Person> = Vec::with_capacity(rows.len());
    let mut errors: Vec<pb::RowError> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let superseding = resident_id_key(&row.columns)
            .map(|key| last_index_of_id[&key])
            .filter(|&last| last != index);
        if let Some(last) = superseding {
            errors.push(pb::RowError {
                line: row.line,
                reason: superseded_reason(rows[last].line),
            });
            continue;
        }
        match person_from_columns(&row.columns, node.county()) {
            Ok(person) => persons.push(person),
            Err(reasons) => errors.push(pb::RowError {
                line: row.line,
                reason: reasons.join("; "),
            }),
        }
    }

    // recorded before the registry is written: no change without its record
    let requested = crate::store::audit::OperatorAccess {
        reason: Some(format!("{} persons to import", persons.len())),
        ..caller.access("requested")
    };
    caller.audit(node, requested).await?;
    let imported = if persons.is_empty() {
        0
    } else {
        node.store().upsert_persons(&persons).await.map_err(internal)?
    };
    errors.sort_by_key(|error| error.line);
    info!(imported, skipped = errors.len(), "registry rows imported");
    let access = crate::store::audit::OperatorAccess {
        reason: Some(format!(
            "{imported} persons imported, {} rows skipped",
            errors.len()
        )),
        ..caller.access("imported")
    };
    caller.audit(node, access).await?;
    Ok(pb::ImportPersonsResponse {
        imported: u32::try_from(imported).expect("at most MAX_ROWS_PER_REQUEST rows are written"),
        errors,
    })
}
