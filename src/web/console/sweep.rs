//! 清查 — a sweep from the console: upload a CSV file (UTF-8 or GBK), see the rows it refuses by
//! line before anything is sent, confirm, then follow the answers as they come and download the
//! result per row.
//!
//! The file is read by the one sweep-file reader the command line uses
//! ([`crate::csv_input::sweep`]): the same columns, the same refusals, the same sweep key (the
//! file's SHA-256 under the county and kind), so a file uploaded twice, or also swept from the
//! command line, asks nobody twice. Between the check and the confirmation the checked file is
//! kept here in memory, keyed by its sweep key and owned by whoever uploaded it (a few files at
//! most, each under [`MAX_UPLOAD_BYTES`]): the confirmation is one click, with no second upload.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Form;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Refusal, Section, form_token, page, refused_page, term};
use super::window::county_name;
use super::{Console, Visitor, forms};
use crate::csv_input::sweep::{SweepColumns, sweep_key};
use crate::csv_input::{CsvReader, Decoded, Encoding};
use crate::domain::person_row::repeated_reason;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;

/// The largest file the console takes (about 300,000 rows); a larger sweep is for
/// `hancha sweep`.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Checked files kept for their confirmation; the oldest goes first.
const KEPT_UPLOADS: usize = 8;

/// Items per Sweep call.
const CHUNK: usize = 1_000;

/// Refused rows listed on the page; the rest are counted.
const LISTED_REFUSALS: usize = 500;

const TITLE: &str = "清查 Sweep";

/// The routes of this section.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route(
            "/sweep",
            get(form)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + 64 * 1024)),
        )
        .route("/sweep/send", post(send))
        .route("/sweep/{key}", get(progress))
        .route("/sweep/{key}/status.json", get(status_json))
        .route("/sweep/{key}/result.csv", get(result_csv))
}

/// The checked files and the sweeps sent from this console, by sweep key.
#[derive(Clone, Debug, Default)]
pub struct Uploads(Arc<Mutex<HashMap<String, Upload>>>);

/// One checked file.
#[derive(Clone, Debug)]
struct Upload {
    /// The principal who uploaded it: only they send it.
    owner: String,
    /// Its name, as uploaded (shown back to whoever uploaded it).
    file_name: String,
    to_county: String,
    kind: String,
    decoded_as: Decoded,
    /// The raw bytes, until sent.
    bytes: Bytes,
    /// Rows that are not all empty.
    rows: u64,
    /// Rows refused before sending: line, why (never an ID number).
    refused: Vec<(u32, String)>,
    /// When it was checked.
    at: Instant,
    /// What sending did, once confirmed.
    sending: Option<Sending>,
}

/// What sending a checked file did.
#[derive(Clone, Debug, Default)]
struct Sending {
    /// Whether every row has been handed to the node.
    finished: bool,
    accepted: u32,
    duplicates: u32,
    /// Rows the node refused: line, why.
    refused_by_node: Vec<(u32, String)>,
    /// Each inquiry's line in the file.
    lines: HashMap<String, u32>,
    /// Why sending stopped part-way.
    failed: Option<String>,
}

impl Uploads {
    fn get(&self, key: &str) -> Option<Upload> {
        self.0.lock().expect("uploads lock").get(key).cloned()
    }

    fn keep(&self, key: String, upload: Upload) {
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

    fn update(&self, key: &str, change: impl FnOnce(&mut Upload)) {
        if let Some(upload) = self.0.lock().expect("uploads lock").get_mut(key) {
            change(upload);
        }
    }
}

/// `GET /sweep`: the upload form.
async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visitor = match console.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let peers = match peers(&console, &visitor).await {
        Ok(peers) => peers,
        Err(status) => return refused_page(&visitor, Section::Sweep, TITLE, &status),
    };
    page(
        &visitor,
        Section::Sweep,
        TITLE,
        upload_form(&visitor, &peers, &Chosen::default(), None),
    )
    .into_response()
}

/// What the upload form chose.
#[derive(Clone, Debug, Default)]
struct Chosen {
    to_county: String,
    kind: String,
    encoding: String,
}

/// `POST /sweep` (multipart): checks the file and asks to confirm; nothing is sent yet.
async fn upload(State(console): State<Console>, headers: HeaderMap, mut multipart: Multipart) -> Response {
    let visitor = match console.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let mut token = String::new();
    let mut chosen = Chosen::default();
    let mut file: Option<(String, Bytes)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                let why = format!("上传未完成 the upload could not be read: {}", error.body_text());
                return (
                    error.status(),
                    page(
                        &visitor,
                        Section::Sweep,
                        TITLE,
                        html! { p.refusal #upload-error { (why) } },
                    ),
                )
                    .into_response();
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().unwrap_or_default().to_owned();
        let value = match field.bytes().await {
            Ok(value) => value,
            Err(error) => {
                let why = format!(
                    "文件过大或上传中断 the file is larger than {} MiB or the upload broke off ({}); use hancha sweep for larger files",
                    MAX_UPLOAD_BYTES / (1024 * 1024),
                    error.body_text()
                );
                return (
                    error.status(),
                    page(
                        &visitor,
                        Section::Sweep,
                        TITLE,
                        html! { p.refusal #upload-error { (why) } },
                    ),
                )
                    .into_response();
            }
        };
        let text = || String::from_utf8_lossy(&value).trim().to_owned();
        match name.as_str() {
            "_csrf" => token = text(),
            "to_county" => chosen.to_county = text(),
            "kind" => chosen.kind = text(),
            "encoding" => chosen.encoding = text(),
            "file" => file = Some((file_name.chars().take(120).collect(), value)),
            _ => {}
        }
    }
    if !console.form_token_ok(&visitor, &token) {
        return forms::forbidden(&visitor, Section::Sweep, TITLE);
    }
    let peers = match peers(&console, &visitor).await {
        Ok(peers) => peers,
        Err(status) => return refused_page(&visitor, Section::Sweep, TITLE, &status),
    };
    let mut refusal = Refusal {
        code: "INVALID_ARGUMENT",
        message: "未检查 the file was not checked".into(),
        ..Refusal::default()
    };
    if !peers.contains(&chosen.to_county) {
        refusal.fields.insert(
            "to_county".into(),
            "choose a county with an agreement in force".into(),
        );
    }
    if chosen
        .kind
        .parse::<crate::domain::vocabulary::InquiryKind>()
        .is_err()
    {
        refusal.fields.insert("kind".into(), "choose a kind".into());
    }
    let encoding = match chosen.encoding.as_str() {
        "utf-8" => Encoding::Utf8,
        "gbk" => Encoding::Gbk,
        _ => Encoding::Auto,
    };
    let checked = match &file {
        Some((_, bytes)) if !bytes.is_empty() => match check(bytes.clone(), encoding) {
            Ok(checked) => Some(checked),
            Err(why) => {
                refusal.fields.insert("file".into(), why);
                None
            }
        },
        _ => {
            refusal.fields.insert("file".into(), "choose a CSV file".into());
            None
        }
    };
    let (Some(checked), true) = (checked, refusal.fields.is_empty()) else {
        let body = upload_form(&visitor, &peers, &chosen, Some(&refusal));
        return (
            StatusCode::BAD_REQUEST,
            page(&visitor, Section::Sweep, TITLE, body),
        )
            .into_response();
    };
    let (file_name, bytes) = file.unwrap_or_default();
    let key = sweep_key(&chosen.to_county, &chosen.kind, &checked.digest);
    let upload = Upload {
        owner: visitor.principal.name().to_owned(),
        file_name,
        to_county: chosen.to_county,
        kind: chosen.kind,
        decoded_as: checked.decoded_as,
        bytes,
        rows: checked.rows,
        refused: checked.refused,
        at: Instant::now(),
        sending: None,
    };
    let body = confirm_body(&visitor, &key, &upload);
    console.uploads.keep(key, upload);
    page(&visitor, Section::Sweep, TITLE, body).into_response()
}

/// What reading the whole file found.
struct Checked {
    decoded_as: Decoded,
    rows: u64,
    refused: Vec<(u32, String)>,
    digest: String,
}

/// Reads the whole file as `hancha sweep` does: the columns, each row's subject, a person named
/// again on a later row (refused, naming the first line). `Err` when the file cannot be used.
fn check(bytes: Bytes, encoding: Encoding) -> Result<Checked, String> {
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

/// `POST /sweep/send`: sends a checked file (in the background) and shows its progress.
async fn send(State(console): State<Console>, headers: HeaderMap, Form(posted): Form<SendForm>) -> Response {
    let visitor = match console.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    if !console.form_token_ok(&visitor, &posted._csrf) {
        return forms::forbidden(&visitor, Section::Sweep, TITLE);
    }
    let key = posted.sweep_key;
    let Some(upload) = console
        .uploads
        .get(&key)
        .filter(|upload| upload.owner == visitor.principal.name())
    else {
        let body = html! {
            p.refusal #upload-gone { "这份文件已不在服务器上（已过时或已发出），请重新上传。 The checked file is no longer here: upload it again (nothing is sent twice)." }
            p { a href="/sweep" { "重新上传 upload again" } }
        };
        return (StatusCode::NOT_FOUND, page(&visitor, Section::Sweep, TITLE, body)).into_response();
    };
    if upload.sending.is_none() {
        console
            .uploads
            .update(&key, |upload| upload.sending = Some(Sending::default()));
        let console = console.clone();
        let key = key.clone();
        tokio::spawn(async move { send_all(&console, &visitor, &key, upload).await });
    }
    Redirect::to(&format!("/sweep/{}", path_segment(&key))).into_response()
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
struct SendForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    sweep_key: String,
}

/// Hands every row the check did not refuse to the node, a chunk per call, noting what it did.
async fn send_all(console: &Console, visitor: &Visitor, key: &str, upload: Upload) {
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

/// `GET /sweep/{key}`: the sweep's progress, live.
async fn progress(State(console): State<Console>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let visitor = match console.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let status = match sweep_status(&console, &visitor, &key, false).await {
        Ok(status) => status,
        Err(status) => return refused_page(&visitor, Section::Sweep, TITLE, &status),
    };
    let upload = console.uploads.get(&key);
    let figures = Figures::of(&status, upload.as_ref());
    let encoded = path_segment(&key);
    let body = html! {
        @if let Some(upload) = &upload {
            p { "文件 file " strong { (upload.file_name) } " → " (county_name(&upload.to_county)) " · " (term(&upload.kind)) }
        }
        div.panel #sweep-progress data-poll={ "/sweep/" (encoded) "/status.json" } {
            progress max=(figures.total.max(1)) value=(figures.total - figures.waiting) {}
            div.counts {
                span { "共 total " strong data-count="total" { (figures.total) } }
                span { "已答复 answered " strong data-count="answered" { (figures.answered) } }
                span { "查到 found " strong data-count="found" { (figures.found) } }
                span { "待答复 pending " strong data-count="pending" { (figures.pending) } }
                span { "待发送 queued " strong data-count="queued" { (figures.queued) } }
                span { "被拒收 refused " strong.bad data-count="refused" { (figures.refused) } }
            }
            p.hint #sweep-done { @if figures.done { "已全部答复 all settled." } @else { "每 2 秒更新 updates every 2 s." } }
        }
        @if let Some(sending) = upload.as_ref().and_then(|u| u.sending.as_ref()) {
            p #sweep-sent {
                "本次发出 sent now " strong { (sending.accepted) } " · 此前已发 already sent " (sending.duplicates)
                @if !sending.finished { " · 发送中 sending…" }
            }
            @if let Some(failed) = &sending.failed { p.refusal #sweep-failed { (failed) } }
            @if !sending.refused_by_node.is_empty() { (refusals_table("sweep-refused-by-node", &sending.refused_by_node)) }
        }
        @if let Some(upload) = &upload && !upload.refused.is_empty() {
            h2 { "未发出的行 Rows refused here (" (upload.refused.len()) ")" }
            (refusals_table("sweep-refused", &upload.refused))
        }
        p { a.button #sweep-result href={ "/sweep/" (encoded) "/result.csv" } download { "下载结果 download the result (CSV)" } }
    };
    page(&visitor, Section::Sweep, TITLE, body).into_response()
}

/// The figures the progress page shows and polls.
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct Figures {
    /// Inquiries of the sweep.
    total: u32,
    answered: u32,
    found: u32,
    /// Accepted by the peer, waiting for its answer.
    pending: u32,
    /// Not yet accepted by the peer.
    queued: u32,
    /// Refused by the peer.
    refused: u32,
    /// Pending or queued.
    waiting: u32,
    /// Every row handed to the node and nothing waits.
    done: bool,
}

impl Figures {
    fn of(status: &pb::SweepStatusResponse, upload: Option<&Upload>) -> Figures {
        let still_sending = upload
            .and_then(|upload| upload.sending.as_ref())
            .is_some_and(|sending| !sending.finished);
        let waiting = status.queued + status.pending;
        Figures {
            total: status.queued + status.pending + status.answered + status.rejected,
            answered: status.answered,
            found: status.found,
            pending: status.pending,
            queued: status.queued,
            refused: status.rejected,
            waiting,
            done: waiting == 0 && !still_sending,
        }
    }
}

/// `GET /sweep/{key}/status.json`.
async fn status_json(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let visitor = match console.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    match sweep_status(&console, &visitor, &key, false).await {
        Ok(status) => {
            let figures = Figures::of(&status, console.uploads.get(&key).as_ref());
            let json = serde_json::to_string(&figures).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                json,
            )
                .into_response()
        }
        Err(status) => {
            let refusal = Refusal::of(&status);
            let json = serde_json::json!({ "code": refusal.code, "message": refusal.message });
            (
                crate::web::api::http_status_of(status.code()),
                [(header::CONTENT_TYPE, "application/json")],
                json.to_string(),
            )
                .into_response()
        }
    }
}

/// `GET /sweep/{key}/result.csv`: one row per inquiry of the sweep (its line in the file when
/// this console sent it, the masked ID, state, outcome), then the rows refused here.
async fn result_csv(State(console): State<Console>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let visitor = match console.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let status = match sweep_status(&console, &visitor, &key, true).await {
        Ok(status) => status,
        Err(status) => return refused_page(&visitor, Section::Sweep, TITLE, &status),
    };
    let upload = console.uploads.get(&key);
    let lines = upload.as_ref().and_then(|u| u.sending.as_ref()).map(|s| &s.lines);
    let mut rows: BTreeMap<(u32, usize), String> = BTreeMap::new();
    for (index, inquiry) in status.inquiries.iter().enumerate() {
        let line = lines
            .and_then(|lines| lines.get(&inquiry.message_id))
            .copied()
            .unwrap_or(0);
        let due = crate::present::display::rfc3339(inquiry.due_at.as_ref());
        let cells = [
            line_cell(line),
            inquiry.subject_masked.clone(),
            inquiry.message_id.clone(),
            inquiry.state.clone(),
            inquiry.outcome.clone(),
            due,
            String::new(),
        ];
        rows.insert((line, index), csv_row(&cells));
    }
    if let Some(upload) = &upload {
        let refused_by_node = upload.sending.iter().flat_map(|s| s.refused_by_node.iter());
        for (index, (line, why)) in upload.refused.iter().chain(refused_by_node).enumerate() {
            let cells = [
                line.to_string(),
                String::new(),
                String::new(),
                "refused_here".to_owned(),
                String::new(),
                String::new(),
                why.clone(),
            ];
            rows.insert((*line, status.inquiries.len() + index), csv_row(&cells));
        }
    }
    let mut text = String::from("line,subject_masked,message_id,state,outcome,due_at,reason\n");
    for row in rows.values() {
        text.push_str(row);
    }
    let digest = key.rsplit(':').next().unwrap_or_default();
    let file_name = format!("sweep-{}.csv", &digest[..digest.len().min(12)]);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        text,
    )
        .into_response()
}

fn line_cell(line: u32) -> String {
    if line == 0 {
        String::new()
    } else {
        line.to_string()
    }
}

/// One CSV line, each cell quoted when it needs to be.
fn csv_row(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|cell| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}

async fn sweep_status(
    console: &Console,
    visitor: &Visitor,
    key: &str,
    list_inquiries: bool,
) -> Result<pb::SweepStatusResponse, tonic::Status> {
    let request = pb::SweepStatusRequest {
        sweep_key: key.to_owned(),
        list_inquiries,
    };
    console
        .call(visitor, request, |service, request| async move {
            service.sweep_status(request).await
        })
        .await
}

async fn peers(console: &Console, visitor: &Visitor) -> Result<Vec<String>, tonic::Status> {
    let listed = console
        .call(
            visitor,
            pb::ListAgreementsRequest {},
            |service, request| async move { service.list_agreements(request).await },
        )
        .await?;
    let mut peers: Vec<String> = listed
        .agreements
        .into_iter()
        .filter(|agreement| agreement.in_force)
        .map(|agreement| agreement.peer_county)
        .collect();
    peers.sort();
    peers.dedup();
    Ok(peers)
}

/// A sweep key in a path: `:` is fine in a path segment, and the rest is digits, letters and `_`.
fn path_segment(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '_')
        .collect()
}

fn upload_form(visitor: &Visitor, peers: &[String], chosen: &Chosen, refusal: Option<&Refusal>) -> Markup {
    let why = |field: &str| {
        refusal
            .and_then(|refusal| refusal.field(field))
            .map(str::to_owned)
    };
    html! {
        @if let Some(refusal) = refusal { (refusal.render()) }
        form.panel #sweep-form method="post" action="/sweep" enctype="multipart/form-data" {
            (form_token(visitor))
            label { "对方县 county to ask"
                select #sweep-to name="to_county" required {
                    @for peer in peers {
                        option value=(peer) selected[chosen.to_county == *peer] { (county_name(peer)) }
                    }
                }
            }
            @if let Some(why) = why("to_county") { span.field-error data-for="to_county" { (why) } }
            " "
            label { "类别 kind"
                select #sweep-kind name="kind" {
                    @for kind in ["outflow_status", "certificate_verification"] {
                        option value=(kind) selected[chosen.kind == kind] { (term(kind)) " " (kind) }
                    }
                }
            }
            @if let Some(why) = why("kind") { span.field-error data-for="kind" { (why) } }
            " "
            label { "编码 encoding"
                select #sweep-encoding name="encoding" {
                    option value="auto" selected[chosen.encoding.is_empty() || chosen.encoding == "auto"] { "自动 auto (UTF-8 / GBK)" }
                    option value="utf-8" selected[chosen.encoding == "utf-8"] { "UTF-8" }
                    option value="gbk" selected[chosen.encoding == "gbk"] { "GBK" }
                }
            }
            " "
            label { "CSV 文件 file"
                input #sweep-file type="file" name="file" accept=".csv,text/csv" required;
            }
            @if let Some(why) = why("file") { span.field-error #sweep-file-error data-for="file" { (why) } }
            " "
            button #sweep-check type="submit" { "检查 check the file" }
            p.hint {
                "列：resident_id（必需），certificate_number、urgent（可选）。先检查，确认后才发出；同一文件再传不会重复发出。"
                " Columns: resident_id, optional certificate_number and urgent. Checked first, sent only when you confirm; the same file again sends nothing twice. At most "
                (MAX_UPLOAD_BYTES / (1024 * 1024)) " MiB."
            }
        }
    }
}

fn confirm_body(visitor: &Visitor, key: &str, upload: &Upload) -> Markup {
    let to_send = upload.rows - upload.refused.len() as u64;
    html! {
        dl.facts #sweep-checked {
            dt { "文件 file" } dd { (upload.file_name) }
            dt { "编码 read as" } dd #sweep-decoded-as { (upload.decoded_as.as_str()) }
            dt { "对方县 county" } dd { (county_name(&upload.to_county)) }
            dt { "类别 kind" } dd { (term(&upload.kind)) }
            dt { "行数 rows" } dd #sweep-rows { (upload.rows) }
            dt { "将发出 to send" } dd #sweep-to-send { (to_send) }
            dt { "不发出 refused" } dd #sweep-refused-count { (upload.refused.len()) }
        }
        @if !upload.refused.is_empty() {
            h2 { "以下行不发出 Rows refused (by line)" }
            (refusals_table("sweep-refused", &upload.refused))
        }
        form.panel #sweep-confirm method="post" action="/sweep/send" {
            (form_token(visitor))
            input type="hidden" name="sweep_key" value=(key);
            button #sweep-send type="submit" { "确认发出 send " (to_send) " inquiries" }
            " " a href="/sweep" { "取消 cancel" }
            p.hint { "已按此文件发出过的人不会重复发出。 Persons already asked with this file are not asked again." }
        }
    }
}

fn refusals_table(id: &str, refused: &[(u32, String)]) -> Markup {
    let mut sorted: Vec<&(u32, String)> = refused.iter().collect();
    sorted.sort_by_key(|(line, _)| *line);
    html! {
        table id=(id) {
            thead { tr { th.num { "行 line" } th { "原因 reason" } } }
            tbody {
                @for (line, why) in sorted.iter().take(LISTED_REFUSALS) {
                    tr data-line=(line) { td.num { (line) } td { (why) } }
                }
            }
        }
        @if sorted.len() > LISTED_REFUSALS {
            p.hint { "另有 " (sorted.len() - LISTED_REFUSALS) " 行 and more rows (see the result CSV)" }
        }
    }
}
