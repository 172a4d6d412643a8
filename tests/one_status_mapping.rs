//! Every refusal a gRPC edge sends goes through one mapping (`src/status.rs`), so that its
//! wording and what it may quote cannot drift between paths; and every refused inbound message
//! is audited through one builder (`AuditEntry::inbound_rejected`). These checks read the
//! sources and fail on a status or a refusal record built by hand anywhere else.

use std::path::{Path, PathBuf};

/// Where building a status by hand is still allowed: the mapping itself; reconciliation's wire
/// code, whose refusals are being moved to typed errors; the benchmark's in-memory peer, which
/// answers only what it does not implement.
const STATUS_EXEMPT: &[&str] = &[
    "src/status.rs",
    "src/exchange/reconcile/",
    "src/node/reconcile/",
    "src/bench/",
];

/// Where an inbound refusal record may be written out by hand: the builder itself, and
/// reconciliation's responder until its wire half moves to the edge.
const AUDIT_EXEMPT: &[&str] = &["src/store/audit.rs", "src/node/reconcile/"];

const STATUS_CONSTRUCTORS: &[&str] = &[
    "Status::new(",
    "Status::with_error_details(",
    "Status::invalid_argument(",
    "Status::internal(",
    "Status::permission_denied(",
    "Status::failed_precondition(",
    "Status::not_found(",
    "Status::unavailable(",
    "Status::aborted(",
    "Status::resource_exhausted(",
    "Status::already_exists(",
    "Status::unimplemented(",
    "Status::unauthenticated(",
    "Status::cancelled(",
    "Status::out_of_range(",
    "Status::deadline_exceeded(",
    "Status::data_loss(",
    "Status::unknown(",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// `file:line: text` for every line of a source file outside `exempt` that contains a needle.
fn occurrences(needles: &[&str], exempt: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if exempt.iter().any(|prefix| relative.starts_with(prefix)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|needle| code.contains(needle)) {
                found.push(format!("{relative}:{}: {code}", number + 1));
            }
        }
    }
    found
}

#[test]
fn no_edge_builds_a_status_by_hand() {
    let found = occurrences(STATUS_CONSTRUCTORS, STATUS_EXEMPT);
    assert!(
        found.is_empty(),
        "refuse with a Rejection and convert it with crate::status (status_of, internal):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_inbound_refusal_is_audited_by_hand() {
    let found = occurrences(&["outcome: \"rejected\""], AUDIT_EXEMPT);
    assert!(
        found.is_empty(),
        "build the record with AuditEntry::inbound_rejected:\n{}",
        found.join("\n")
    );
}
