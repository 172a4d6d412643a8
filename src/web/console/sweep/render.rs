//! How the sweep pages look: the upload form, the check of a file before it is sent, refused
//! rows by line, and the result file's rows.

use maud::{Markup, html};

use super::super::Visitor;
use super::super::layout::{Refusal, form_token, term};
use super::{Chosen, MAX_UPLOAD_BYTES, Upload};
use crate::present::display;

/// Refused rows listed on the page; the rest are counted.
const LISTED_REFUSALS: usize = 500;

pub(super) fn line_cell(line: u32) -> String {
    if line == 0 {
        String::new()
    } else {
        line.to_string()
    }
}

pub(super) fn upload_form(
    visitor: &Visitor,
    peers: &[String],
    chosen: &Chosen,
    refusal: Option<&Refusal>,
) -> Markup {
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
                        option value=(peer) selected[chosen.to_county == *peer] { (display::county(peer)) }
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

/// The check of a file, and the form that confirms it (by its upload `id`).
pub(super) fn confirm_body(visitor: &Visitor, id: &str, key: &str, upload: &Upload) -> Markup {
    let to_send = upload.rows - upload.refused.len() as u64;
    html! {
        dl.facts #sweep-checked {
            dt { "文件 file" } dd { (upload.file_name) }
            dt { "编码 read as" } dd #sweep-decoded-as { (upload.decoded_as.as_str()) }
            dt { "对方县 county" } dd { (display::county(&upload.to_county)) }
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
            input type="hidden" name="upload" value=(id);
            input type="hidden" name="sweep_key" value=(key);
            button #sweep-send type="submit" { "确认发出 send " (to_send) " inquiries" }
            " " a href="/sweep" { "取消 cancel" }
            p.hint { "已按此文件发出过的人不会重复发出。 Persons already asked with this file are not asked again." }
        }
    }
}

pub(super) fn refusals_table(id: &str, refused: &[(u32, String)]) -> Markup {
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
