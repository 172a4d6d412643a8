//! 清查 — a sweep from the console: upload a CSV file (UTF-8 or GBK), see the rows it refuses by
//! line before anything is sent, confirm, then follow the answers as they come and download the
//! result per row.
//!
//! The file is read by the one sweep-file reader the command line uses
//! ([`crate::csv_input::sweep`]): the same columns, the same refusals, the same sweep key (the
//! file's SHA-256 under the county and kind), so a file uploaded twice, or also swept from the
//! command line, asks nobody twice. Between the check and the confirmation the checked file is
//! kept here in memory under an upload id of its own, owned by whoever uploaded it (a few files
//! at most, each under [`MAX_UPLOAD_BYTES`], for [`held::HOLD`] at most): the confirmation is one
//! click, with no second upload. Sweeps are county-wide work: a township office is refused
//! before its file is read, as the API refuses it. The console takes files of at most
//! [`MAX_SWEEP_LISTED`] rows to send, so that its result file lists every inquiry.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Form;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::layout::{Refusal, Section, page, refused_page, term};
use super::{Console, Visitor, forms};
use crate::csv_input::Encoding;
use crate::csv_input::sweep::sweep_key;
use crate::domain::policy::{OperatorAction, authorize};
use crate::operator::MAX_SWEEP_LISTED;
use crate::present::display;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;

mod held;
mod render;

pub use held::Uploads;
use held::{Upload, check_apart, send_all};
use render::{confirm_body, line_cell, refusals_table, upload_form};

/// The largest file the console takes; a larger sweep, or one of more than [`MAX_SWEEP_LISTED`]
/// rows to send, is for `hancha sweep`.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

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

/// `GET /sweep`: the upload form.
async fn form(State(console): State<Console>, visitor: Visitor) -> Response {
    if let Some(refused) = refused_here(&console, &visitor).await {
        return refused;
    }
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
pub(super) struct Chosen {
    pub(super) to_county: String,
    pub(super) kind: String,
    pub(super) encoding: String,
}

/// `POST /sweep` (multipart): checks the file and asks to confirm; nothing is sent yet.
async fn upload(State(console): State<Console>, visitor: Visitor, mut multipart: Multipart) -> Response {
    // refused before a byte of the file is read, as the API refuses it
    if let Some(refused) = refused_here(&console, &visitor).await {
        return refused;
    }
    let Some(_turn) = console.uploads.check_turn().await else {
        return busy(
            &visitor,
            "正在检查其他文件，请稍后再传。 Other files are being checked: upload again in a moment.",
        );
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
        Some((_, bytes)) if !bytes.is_empty() => match check_apart(bytes.clone(), encoding).await {
            Ok(checked) if checked.to_send() > MAX_SWEEP_LISTED as u64 => {
                refusal.fields.insert(
                    "file".into(),
                    format!(
                        "{} rows to send, more than the console takes ({MAX_SWEEP_LISTED}); larger files: hancha sweep",
                        checked.to_send()
                    ),
                );
                None
            }
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
        key: key.clone(),
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
    let Ok(id) = console.uploads.keep(upload.clone()) else {
        return busy(
            &visitor,
            "服务器上的文件都在发送中，请等其中一份发完再传。 Every file held here is being sent: upload again when one has finished.",
        );
    };
    let body = confirm_body(&visitor, &id, &key, &upload);
    page(&visitor, Section::Sweep, TITLE, body).into_response()
}

/// `POST /sweep/send`: sends a checked file (in the background) and shows its progress.
async fn send(State(console): State<Console>, visitor: Visitor, Form(posted): Form<SendForm>) -> Response {
    if !console.form_token_ok(&visitor, &posted._csrf) {
        return forms::forbidden(&visitor, Section::Sweep, TITLE);
    }
    let Some((upload, started)) = console
        .uploads
        .start_sending(&posted.upload, visitor.principal.name())
    else {
        let body = html! {
            p.refusal #upload-gone { "这份文件已不在服务器上（已过时或已发出），请重新上传。 The checked file is no longer here: upload it again (nothing is sent twice)." }
            p { a href="/sweep" { "重新上传 upload again" } }
        };
        return (StatusCode::NOT_FOUND, page(&visitor, Section::Sweep, TITLE, body)).into_response();
    };
    let progress = format!("/sweep/{}", path_segment(&upload.key));
    if started {
        let console = console.clone();
        let id = posted.upload;
        tokio::spawn(async move { send_all(&console, &visitor, &id, upload).await });
    }
    Redirect::to(&progress).into_response()
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
struct SendForm {
    #[serde(default)]
    _csrf: String,
    /// The upload id of the checked file.
    #[serde(default)]
    upload: String,
}

/// `GET /sweep/{key}`: the sweep's progress, live.
async fn progress(State(console): State<Console>, visitor: Visitor, Path(key): Path<String>) -> Response {
    let status = match sweep_status(&console, &visitor, &key, false).await {
        Ok(status) => status,
        Err(status) => return refused_page(&visitor, Section::Sweep, TITLE, &status),
    };
    let upload = console.uploads.latest(&key, visitor.principal.name());
    let figures = Figures::of(&status, upload.as_ref());
    let encoded = path_segment(&key);
    let body = html! {
        @if let Some(upload) = &upload {
            p { "文件 file " strong { (upload.file_name) } " → " (display::county(&upload.to_county)) " · " (term(&upload.kind)) }
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
            p.hint #sweep-done data-when-done="已全部答复 all settled." { @if figures.done { "已全部答复 all settled." } @else { "每 2 秒更新 updates every 2 s." } }
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
async fn status_json(State(console): State<Console>, visitor: Visitor, Path(key): Path<String>) -> Response {
    match sweep_status(&console, &visitor, &key, false).await {
        Ok(status) => {
            let upload = console.uploads.latest(&key, visitor.principal.name());
            let figures = Figures::of(&status, upload.as_ref());
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
async fn result_csv(State(console): State<Console>, visitor: Visitor, Path(key): Path<String>) -> Response {
    let status = match sweep_status(&console, &visitor, &key, true).await {
        Ok(status) => status,
        Err(status) => return refused_page(&visitor, Section::Sweep, TITLE, &status),
    };
    let upload = console.uploads.latest(&key, visitor.principal.name());
    let lines = upload.as_ref().and_then(|u| u.sending.as_ref()).map(|s| &s.lines);
    let mut rows: BTreeMap<(u32, usize), [String; 7]> = BTreeMap::new();
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
        rows.insert((line, index), cells);
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
            rows.insert((*line, status.inquiries.len() + index), cells);
        }
    }
    // a sweep of more inquiries than SweepStatus lists (sent from the command line) is listed
    // in part: the file says so on its last row rather than end as though complete
    let total = u64::from(status.queued)
        + u64::from(status.pending)
        + u64::from(status.answered)
        + u64::from(status.rejected);
    let listed = status.inquiries.len() as u64;
    let incomplete = (listed < total).then(|| {
        [
            String::new(),
            String::new(),
            String::new(),
            "incomplete".to_owned(),
            String::new(),
            String::new(),
            format!("only the first {listed} of {total} inquiries are listed; follow larger sweeps with hancha sweep"),
        ]
    });
    let text = match result_text(rows.values().chain(incomplete.iter())) {
        Ok(text) => text,
        Err(status) => return refused_page(&visitor, Section::Sweep, TITLE, &status),
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", result_file_name(&key)),
            ),
        ],
        text,
    )
        .into_response()
}

/// The result file's text: its header, then `rows`.
fn result_text<'a>(rows: impl Iterator<Item = &'a [String; 7]>) -> Result<String, tonic::Status> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |error: csv::Error| crate::status::internal(error);
    writer
        .write_record([
            "line",
            "subject_masked",
            "message_id",
            "state",
            "outcome",
            "due_at",
            "reason",
        ])
        .map_err(failed)?;
    for row in rows {
        writer.write_record(row).map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| crate::status::internal(error.into_error()))?;
    String::from_utf8(bytes).map_err(crate::status::internal)
}

/// The result file's name: `sweep-` and the first 12 letters or digits of the key's last part
/// (the file's SHA-256 for keys this console and `hancha sweep` make), whatever the URL held.
fn result_file_name(key: &str) -> String {
    let digest: String = key
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    if digest.is_empty() {
        "sweep.csv".to_owned()
    } else {
        format!("sweep-{digest}.csv")
    }
}

/// Sweeps are county-wide work: for a visitor who may not sweep, the refusal (the API's
/// status), audited under the visitor as the API audits a refused call.
async fn refused_here(console: &Console, visitor: &Visitor) -> Option<Response> {
    let rejection = authorize(&visitor.principal, OperatorAction::Sweep).err()?;
    console
        .service
        .refuse_unreadable(
            visitor.principal.clone(),
            OperatorAction::Sweep,
            rejection.code,
            &rejection.reason,
        )
        .await;
    let status = crate::status::status_of(&rejection);
    Some(refused_page(visitor, Section::Sweep, TITLE, &status))
}

/// 503 with `why`: the console holds or checks as many files as it may just now.
fn busy(visitor: &Visitor, why: &str) -> Response {
    let body = html! {
        p.refusal #upload-busy { (why) }
        p { a href="/sweep" { "返回 back" } }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "30")],
        page(visitor, Section::Sweep, TITLE, body),
    )
        .into_response()
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
