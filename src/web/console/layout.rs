//! The shell every console page shares: the header with the county and the visitor, the
//! navigation, the style sheet (one file, in the binary, printable, readable on a 1366×768
//! office screen), refusals shown as the operator API gave them, times in China Standard Time.

use std::collections::HashMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use tonic::Status;
use tonic_types::StatusExt;

use super::Visitor;
use crate::domain::policy::{OperatorAction, authorize};
use crate::domain::privacy::without_id_numbers;
use crate::domain::time::china_time;
use crate::domain::vocabulary::{AnswerOutcome, InquiryKind, NoticeKind, Priority};
use crate::exchange::convert::timestamp_from_wire;
use crate::status::code_name;

/// The console's sections, in the order of the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// 工作台: what waits for an answer.
    Queue,
    /// 窗口查验: the window check.
    Window,
    /// 清查: sweeps.
    Sweep,
    /// 四率: the indicators.
    Indicators,
    /// 对账: reconciliation.
    Reconcile,
    /// 协议: agreements.
    Agreements,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Queue,
        Section::Window,
        Section::Sweep,
        Section::Indicators,
        Section::Reconcile,
        Section::Agreements,
    ];

    /// Where the section starts.
    pub const fn path(self) -> &'static str {
        match self {
            Section::Queue => "/queue",
            Section::Window => "/window",
            Section::Sweep => "/sweep",
            Section::Indicators => "/indicators",
            Section::Reconcile => "/reconcile",
            Section::Agreements => "/agreements",
        }
    }

    /// The operator action a visitor must be allowed for the section to be offered (the one
    /// decision, `authorize`): a township office is not shown the county's sweeps.
    const fn action(self) -> OperatorAction {
        match self {
            Section::Queue => OperatorAction::ListPending,
            Section::Window => OperatorAction::Ask,
            Section::Sweep => OperatorAction::Sweep,
            Section::Indicators => OperatorAction::Report,
            Section::Reconcile => OperatorAction::ListReconcileRuns,
            Section::Agreements => OperatorAction::ListAgreements,
        }
    }

    /// Its name in the navigation: Chinese, with the README's English term.
    pub const fn label(self) -> (&'static str, &'static str) {
        match self {
            Section::Queue => ("工作台", "work queue"),
            Section::Window => ("窗口查验", "window check"),
            Section::Sweep => ("清查", "sweep"),
            Section::Indicators => ("四率", "indicators"),
            Section::Reconcile => ("对账", "reconciliation"),
            Section::Agreements => ("协议", "agreements"),
        }
    }
}

/// A whole page: `title`, in `section`, for `visitor`.
pub fn page(visitor: &Visitor, section: Section, title: &str, content: Markup) -> Markup {
    let principal = &visitor.principal;
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · 函查 hancha " (principal.county().as_str()) }
                link rel="stylesheet" href="/console.css";
                script src="/console.js" defer {}
            }
            body data-form-token=(visitor.form_token) {
                header.top {
                    a.brand href="/" { "函查 " span.en { "hancha" } }
                    span.county { "县 " (principal.county().as_str()) }
                    nav {
                        @for each in Section::ALL.into_iter().filter(|each| *each == section || authorize(principal, each.action()).is_ok()) {
                            @let (zh, en) = each.label();
                            a href=(each.path()) class=[(each == section).then_some("here")] {
                                (zh) " " span.en { (en) }
                            }
                        }
                    }
                    span.who {
                        (principal.name())
                        @if let Some(township) = principal.township() {
                            " · 乡镇 " (township.as_str())
                        }
                        @if visitor.logged_in {
                            form.inline #logout method="post" action="/logout" {
                                (form_token(visitor))
                                button.link type="submit" { "退出 log out" }
                            }
                        }
                    }
                }
                main { h1 { (title) } (content) }
            }
        }
    }
}

/// The hidden field every form carries.
pub fn form_token(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name="_csrf" value=(visitor.form_token); }
}

/// A refusal of the operator API, as a box on the page: its code and message, and each field
/// at fault (forms also show these beside their fields, see [`Refusal::field`]).
#[derive(Clone, Debug, Default)]
pub struct Refusal {
    /// The gRPC code's name.
    pub code: &'static str,
    /// What went wrong (never quoting an ID number).
    pub message: String,
    /// Field path → why.
    pub fields: HashMap<String, String>,
}

impl Refusal {
    /// What `status` says, without any ID number.
    pub fn of(status: &Status) -> Refusal {
        let fields = status
            .get_error_details()
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|violation| {
                        (
                            violation.field.clone(),
                            without_id_numbers(&violation.description).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Refusal {
            code: code_name(status.code()),
            message: without_id_numbers(status.message()).into_owned(),
            fields,
        }
    }

    /// Why `field` (or a field under it, `fields.x` for `fields`) was refused, for the form.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(path, _)| *path == field || path.ends_with(&format!(".{field}")))
            .map(|(_, why)| why.as_str())
    }

    /// The box.
    pub fn render(&self) -> Markup {
        html! {
            div.refusal role="alert" {
                strong { "未办理 refused" } " " code { (self.code) } ": " (self.message)
                @if !self.fields.is_empty() {
                    ul {
                        @for (field, why) in &self.fields {
                            li { code { (field) } " — " (why) }
                        }
                    }
                }
            }
        }
    }
}

/// A refusal as a whole page (a page whose call was refused): the HTTP status of the API's
/// mapping, so that a refused page is not a 200.
pub fn refused_page(visitor: &Visitor, section: Section, title: &str, status: &Status) -> Response {
    let http = crate::web::api::http_status_of(status.code());
    (http, page(visitor, section, title, Refusal::of(status).render())).into_response()
}

/// A wire time as China Standard Time, to the minute (`—` when absent).
pub fn when(at: Option<&pbjson_types::Timestamp>) -> String {
    at.and_then(timestamp_from_wire)
        .map(minute)
        .unwrap_or_else(|| "—".into())
}

/// `at` in China Standard Time, to the minute.
pub fn minute(at: DateTime<Utc>) -> String {
    china_time(at).format("%Y-%m-%d %H:%M").to_string()
}

/// A state, outcome, kind or priority by its Chinese name (the wire name as a tooltip): the
/// vocabulary's own label (`label_zh`) where the domain has one, the console's words for the
/// states of a message otherwise.
pub fn term(wire: &str) -> Markup {
    let zh = wire
        .parse::<InquiryKind>()
        .map(InquiryKind::label_zh)
        .or_else(|_| wire.parse::<NoticeKind>().map(NoticeKind::label_zh))
        .or_else(|_| wire.parse::<AnswerOutcome>().map(AnswerOutcome::label_zh))
        .or_else(|_| wire.parse::<Priority>().map(Priority::label_zh))
        .unwrap_or(match wire {
            "pending" => "待答复",
            "queued" => "待发送",
            "answered" => "已答复",
            "rejected" => "被拒收",
            "delivered" => "已送达",
            "inbound" => "收到的",
            "outbound" => "发出的",
            _ => "",
        });
    html! {
        @if zh.is_empty() { (wire) } @else { span title=(wire) { (zh) } }
    }
}

/// `GET /console.css`.
pub async fn style_sheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

/// `GET /console.js`.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("console.js"),
    )
        .into_response()
}
