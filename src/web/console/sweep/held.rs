//! The sweep files this console has checked, held in memory until their confirmation, and the
//! sending of a confirmed one: read again by the one sweep-file reader, handed to the node a
//! chunk per call, what the node did noted for the progress page and the result file.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::super::layout::Refusal;
use super::super::{Console, Visitor};
use crate::csv_input::sweep::{LinesOfEachId, SweepColumns};
use crate::csv_input::{CsvReader, Decoded, Encoding};
use crate::domain::person_row::repeated_reason;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;

/// Checked files kept for their confirmation (and sweeps sent, for their progress page).
const KEPT_UPLOADS: usize = 8;

/// How long a checked file (full ID numbers) is kept unconfirmed.
pub(super) const HOLD: Duration = Duration::from_secs(30 * 60);

/// Files checked at once; a further upload waits [`CHECK_WAIT`] for its turn, then is refused.
const CONCURRENT_CHECKS: usize = 2;
const CHECK_WAIT: Duration = Duration::from_secs(5);

/// Items per Sweep call.
const CHUNK: usize = 1_000;

/// The checked files and the sweeps sent from this console, each by its own upload id (two
/// uploads of one file, by one person or two, are two entries of one sweep key).
#[derive(Clone, Debug)]
pub struct Uploads {
    held: Arc<Mutex<HashMap<String, Upload>>>,
    checks: Arc<Semaphore>,
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads {
            held: Arc::default(),
            checks: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
        }
    }
}

/// No room to keep another checked file: every kept one is being sent.
#[derive(Debug)]
pub(super) struct Full;

/// One checked file.
#[derive(Clone, Debug)]
pub(super) struct Upload {
    /// Its sweep key: the file under the county and kind.
    pub(super) key: String,
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

impl Upload {
    /// Whether its rows are being handed to the node now.
    fn being_sent(&self) -> bool {
        self.sending.as_ref().is_some_and(|sending| !sending.finished)
    }
}

impl Uploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Upload>> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // checked files not confirmed within HOLD go, with the ID numbers they hold
        held.retain(|_, upload| upload.sending.is_some() || upload.at.elapsed() < HOLD);
        held
    }

    /// A turn to check a file, if one comes within a few seconds.
    pub(super) async fn check_turn(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(CHECK_WAIT, Arc::clone(&self.checks).acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// Keeps a checked file under a new upload id (returned), making room by the oldest entry
    /// not being sent; [`Full`] when every kept entry is being sent.
    pub(super) fn keep(&self, upload: Upload) -> Result<String, Full> {
        let mut held = self.lock();
        while held.len() >= KEPT_UPLOADS {
            let oldest = held
                .iter()
                .filter(|(_, upload)| !upload.being_sent())
                .min_by_key(|(_, upload)| upload.at)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => held.remove(&oldest),
                None => return Err(Full),
            };
        }
        let mut bytes = [0u8; 16];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        let id = hex::encode(bytes);
        held.insert(id.clone(), upload);
        drop(held);
        // forgotten when unconfirmed, even if nobody visits the console again
        let uploads = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(HOLD + Duration::from_secs(1)).await;
            drop(uploads.lock());
        });
        Ok(id)
    }

    /// The sweep `key` as `owner` last uploaded it: the one being sent or sent, else the last
    /// checked.
    pub(super) fn latest(&self, key: &str, owner: &str) -> Option<Upload> {
        self.lock()
            .values()
            .filter(|upload| upload.key == key && upload.owner == owner)
            .max_by_key(|upload| (upload.sending.is_some(), upload.at))
            .cloned()
    }

    /// Marks `owner`'s upload `id` as being sent, in one step under the lock: the upload and
    /// whether this call started it (`false`: already started, by an earlier click).
    pub(super) fn start_sending(&self, id: &str, owner: &str) -> Option<(Upload, bool)> {
        let mut held = self.lock();
        let upload = held.get_mut(id).filter(|upload| upload.owner == owner)?;
        let started = upload.sending.is_none();
        if started {
            upload.sending = Some(Sending::default());
        }
        Some((upload.clone(), started))
    }

    pub(super) fn update(&self, id: &str, change: impl FnOnce(&mut Upload)) {
        if let Some(upload) = self.lock().get_mut(id) {
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

impl Checked {
    /// Rows the node would be asked about.
    pub(super) fn to_send(&self) -> u64 {
        self.rows - self.refused.len() as u64
    }
}

/// Reads the whole file as `hancha sweep` does: the columns, each row's subject, a person named
/// again on a later row (refused, naming the first line). `Err` when the file cannot be used.
/// Blocking (up to [`super::MAX_UPLOAD_BYTES`] decoded, hashed and parsed): run it off the
/// async runtime.
pub(super) fn check(bytes: Bytes, encoding: Encoding) -> Result<Checked, String> {
    let mut reader = CsvReader::new(Cursor::new(bytes), encoding).map_err(|e| e.to_string())?;
    let Some(columns) = SweepColumns::of(reader.headers()) else {
        return Err(format!(
            "no resident_id column (the header has {} columns)",
            reader.headers().len()
        ));
    };
    let mut lines_of_each_id = LinesOfEachId::default();
    let mut refused = Vec::new();
    let mut rows = 0;
    while let Some(record) = reader.next_record().map_err(|e| e.to_string())? {
        rows += 1;
        if let Some(why) = columns.refusal(&record) {
            refused.push((record.line, why));
            continue;
        }
        let person = columns.resident_id_of(&record);
        lines_of_each_id
            .note(person, record.line)
            .map_err(|too_many| too_many.to_string())?;
        if let Some(first) = lines_of_each_id.first_other_than(person, record.line) {
            refused.push((record.line, repeated_reason(first)));
        }
    }
    Ok(Checked {
        decoded_as: reader.decoded_as(),
        rows,
        refused,
        digest: reader.digest().unwrap_or_default(),
    })
}

/// [`check`] off the async runtime.
pub(super) async fn check_apart(bytes: Bytes, encoding: Encoding) -> Result<Checked, String> {
    tokio::task::spawn_blocking(move || check(bytes, encoding))
        .await
        .unwrap_or_else(|_| Err("the file could not be checked".to_owned()))
}

/// Hands every row the check did not refuse to the node, a chunk per call, noting what it did.
pub(super) async fn send_all(console: &Console, visitor: &Visitor, id: &str, upload: Upload) {
    let refused: HashSet<u32> = upload.refused.iter().map(|(line, _)| *line).collect();
    let (bytes, decoded_as) = (upload.bytes.clone(), upload.decoded_as);
    let items = tokio::task::spawn_blocking(move || read_items(bytes, decoded_as, &refused))
        .await
        .unwrap_or_else(|_| Err("the file could not be read again".to_owned()));
    let items = match items {
        Ok(items) => items,
        Err(why) => {
            console.uploads.update(id, |upload| {
                upload.bytes = Bytes::new();
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
            sweep_key: upload.key.clone(),
            items: chunk.to_vec(),
        };
        let swept = console
            .call(visitor, request, |service, request| async move {
                service.sweep(request).await
            })
            .await;
        let stop = swept.is_err();
        console.uploads.update(id, |upload| {
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
    console.uploads.update(id, |upload| {
        upload.bytes = Bytes::new();
        if let Some(sending) = &mut upload.sending {
            sending.finished = true;
        }
    });
}

/// The sweep items of the file's rows not refused by the check.
fn read_items(
    bytes: Bytes,
    decoded_as: Decoded,
    refused: &HashSet<u32>,
) -> Result<Vec<pb::SweepItem>, String> {
    let mut reader = CsvReader::new(Cursor::new(bytes), decoded_as.into()).map_err(|e| e.to_string())?;
    let columns = SweepColumns::of(reader.headers()).ok_or("no resident_id column")?;
    let mut items = Vec::new();
    while let Some(record) = reader.next_record().map_err(|e| e.to_string())? {
        if !refused.contains(&record.line) {
            items.push(columns.item(record));
        }
    }
    Ok(items)
}
