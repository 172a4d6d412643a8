//! The sweep files this console has checked, held in memory until their confirmation, and the
//! sending of a confirmed one: read again by the one sweep-file reader, handed to the node a
//! chunk per call, what the node did noted for the progress page and the result file.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;

use super::super::layout::Refusal;
use super::super::{Console, Visitor};
use crate::csv_input::sweep::SweepColumns;
use crate::csv_input::{CsvReader, Decoded, Encoding};
use crate::domain::person_row::repeated_reason;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;

/// Checked files kept for their confirmation; the oldest goes first.
const KEPT_UPLOADS: usize = 8;

/// Items per Sweep call.
const CHUNK: usize = 1_000;

/// The checked files and the sweeps sent from this console, by sweep key.
#[derive(Clone, Debug, Default)]
pub struct Uploads(Arc<Mutex<HashMap<String, Upload>>>);

/// One checked file.
#[derive(Clone, Debug)]
pub(super) struct Upload {
    /// The principal who uploaded it: only they send it.
    pub(super) owner: String,
    /// Its name, as uploaded (shown back to whoever uploaded it).
    pub(super) file_name: String,
    pub(super) to_county: String,
    pub(super) kind: String,
    pub(super) decoded_as: Decoded,
    /// The raw bytes, until sent.
    pub(super) bytes: Bytes,
    /// Rows that are not all empty.
    pub(super) rows: u64,
    /// Rows refused before sending: line, why (never an ID number).
    pub(super) refused: Vec<(u32, String)>,
    /// When it was checked.
    pub(super) at: Instant,
    /// What sending did, once confirmed.
    pub(super) sending: Option<Sending>,
}

/// What sending a checked file did.
#[derive(Clone, Debug, Default)]
pub(super) struct Sending {
    /// Whether every row has been handed to the node.
    pub(super) finished: bool,
    pub(super) accepted: u32,
    pub(super) duplicates: u32,
    /// Rows the node refused: line, why.
    pub(super) refused_by_node: Vec<(u32, String)>,
    /// Each inquiry's line in the file.
    pub(super) lines: HashMap<String, u32>,
    /// Why sending stopped part-way.
    pub(super) failed: Option<String>,
}

impl Uploads {
    pub(super) fn get(&self, key: &str) -> Option<Upload> {
        self.0.lock().expect("uploads lock").get(key).cloned()
    }

    pub(super) fn keep(&self, key: String, upload: Upload) {
        let mut uploads = self.0.lock().expect("uploads lock");
        while uploads.len() >= KEPT_UPLOADS && !uploads.contains_key(&key) {
            let oldest = uploads
                .iter()
                .min_by_key(|(_, upload)| upload.at)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(oldest) => uploads.remove(&oldest),
                None => break,
            };
        }
        uploads.insert(key, upload);
    }

    pub(super) fn update(&self, key: &str, change: impl FnOnce(&mut Upload)) {
        if let Some(upload) = self.0.lock().expect("uploads lock").get_mut(key) {
            change(upload);
        }
    }
}

/// What reading the whole file found.
pub(super) struct Checked {
    pub(super) decoded_as: Decoded,
    pub(super) rows: u64,
    pub(super) refused: Vec<(u32, String)>,
    pub(super) digest: String,
}

/// Reads the whole file as `hancha sweep` does: the columns, each row's subject, a person named
/// again on a later row (refused, naming the first line). `Err` when the file cannot be used.
pub(super) fn check(bytes: Bytes, encoding: Encoding) -> Result<Checked, String> {
    let mut reader = CsvReader::new(Cursor::new(bytes), encoding).map_err(|e| e.to_string())?;
    let Some(columns) = SweepColumns::of(reader.headers()) else {
        return Err(format!(
            "no resident_id column (the header has {} columns)",
            reader.headers().len()
        ));
    };
    let mut first_lines: HashMap<String, u32> = HashMap::new();
    let mut refused = Vec::new();
    let mut rows = 0;
    while let Some(record) = reader.next_record().map_err(|e| e.to_string())? {
        rows += 1;
        if let Some(why) = columns.refusal(&record) {
            refused.push((record.line, why));
            continue;
        }
        let person = columns.resident_id_of(&record).trim().to_ascii_uppercase();
        match first_lines.get(&person) {
            Some(&first) => refused.push((record.line, repeated_reason(first))),
            None => {
                first_lines.insert(person, record.line);
            }
        }
    }
    Ok(Checked {
        decoded_as: reader.decoded_as(),
        rows,
        refused,
        digest: reader.digest().unwrap_or_default(),
    })
}

/// Hands every row the check did not refuse to the node, a chunk per call, noting what it did.
pub(super) async fn send_all(console: &Console, visitor: &Visitor, key: &str, upload: Upload) {
    let refused: HashSet<u32> = upload.refused.iter().map(|(line, _)| *line).collect();
    let items = match read_items(&upload, &refused) {
        Ok(items) => items,
        Err(why) => {
            console.uploads.update(key, |upload| {
                if let Some(sending) = &mut upload.sending {
                    sending.failed = Some(why);
                    sending.finished = true;
                }
            });
            return;
        }
    };
    for chunk in items.chunks(CHUNK) {
        let request = pb::SweepRequest {
            to_county: upload.to_county.clone(),
            kind: upload.kind.clone(),
            sweep_key: key.to_owned(),
            items: chunk.to_vec(),
        };
        let swept = console
            .call(visitor, request, |service, request| async move {
                service.sweep(request).await
            })
            .await;
        let stop = swept.is_err();
        console.uploads.update(key, |upload| {
            let Some(sending) = &mut upload.sending else { return };
            match swept {
                Ok(response) => {
                    sending.accepted += response.accepted;
                    sending.duplicates += response.duplicates;
                    for result in response.results {
                        if result.error.is_empty() {
                            sending.lines.insert(result.message_id, result.line);
                        } else {
                            sending.refused_by_node.push((result.line, result.error));
                        }
                    }
                }
                Err(status) => {
                    let refusal = Refusal::of(&status);
                    sending.failed = Some(format!(
                        "{}: {} — 重新上传同一文件即可续发，已发出的不会重发 upload the same file again to send the rest",
                        refusal.code, refusal.message
                    ));
                }
            }
        });
        if stop {
            break;
        }
    }
    console.uploads.update(key, |upload| {
        upload.bytes = Bytes::new();
        if let Some(sending) = &mut upload.sending {
            sending.finished = true;
        }
    });
}

/// The sweep items of the file's rows not refused by the check.
fn read_items(upload: &Upload, refused: &HashSet<u32>) -> Result<Vec<pb::SweepItem>, String> {
    let mut reader = CsvReader::new(Cursor::new(upload.bytes.clone()), upload.decoded_as.into())
        .map_err(|e| e.to_string())?;
    let columns = SweepColumns::of(reader.headers()).ok_or("no resident_id column")?;
    let mut items = Vec::new();
    while let Some(record) = reader.next_record().map_err(|e| e.to_string())? {
        if !refused.contains(&record.line) {
            items.push(columns.item(record));
        }
    }
    Ok(items)
}
