//! 工作台 — the work queue: what waits for our answer (overdue first, then by deadline), what we
//! wait for from peers, notices owing feedback; filters by township, kind and overdue, with
//! counts. Each inquiry opens on its own page with its history.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Section, page, refused_page, term, when};
use super::{Console, Visitor};
use crate::proto::operator as pb;

/// The routes of this section.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/queue", get(queue))
        .route("/inquiries/{id}", get(inquiry))
}

/// Which list the work queue shows.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum View {
    /// Inquiries peers sent us, waiting for our answer.
    #[default]
    Answer,
    /// Inquiries we sent, waiting for the peer's answer.
    Awaiting,
    /// Notices we received that owe the peer feedback.
    Notices,
}

impl View {
    const ALL: [View; 3] = [View::Answer, View::Awaiting, View::Notices];

    fn label(self) -> &'static str {
        match self {
            View::Answer => "待我方答复 awaiting our answer",
            View::Awaiting => "待对方答复 awaiting the peer",
            View::Notices => "待反馈的通知 notices owing feedback",
        }
    }
}

/// The work queue's filters, from the query string.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Filters {
    view: View,
    township: String,
    kind: String,
    overdue: Option<String>,
}

impl Filters {
    fn query(&self, view: View) -> String {
        let mut query = format!("view={}", view_name(view));
        for (name, value) in [("township", &self.township), ("kind", &self.kind)] {
            if !value.is_empty() {
                query.push_str(&format!("&{name}={}", urlencoding::encode(value)));
            }
        }
        if self.overdue.is_some() {
            query.push_str("&overdue=1");
        }
        query
    }
}

fn view_name(view: View) -> &'static str {
    match view {
        View::Answer => "answer",
        View::Awaiting => "awaiting",
        View::Notices => "notices",
    }
}

/// How many rows the page shows: the operator API's default limit.
const ROWS: u32 = 1000;

/// `GET /queue`.
async fn queue(State(console): State<Console>, visitor: Visitor, Query(filters): Query<Filters>) -> Response {
    let title = "工作台 Work queue";
    let request = pb::ListPendingRequest {
        outbound: filters.view == View::Awaiting,
        overdue_only: filters.overdue.is_some(),
        township: filters.township.trim().to_string(),
        kind: filters.kind.trim().to_string(),
        limit: ROWS,
        notices: filters.view == View::Notices,
    };
    let listed = console
        .call(&visitor, request, |service, request| async move {
            crate::proto::operator::operator_server::Operator::list_pending(&service, request).await
        })
        .await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(status) => return refused_page(&visitor, Section::Queue, title, &status),
    };
    page(
        &visitor,
        Section::Queue,
        title,
        queue_body(&visitor, &filters, &listed),
    )
    .into_response()
}

fn queue_body(visitor: &Visitor, filters: &Filters, listed: &pb::ListPendingResponse) -> Markup {
    let rows = listed.inquiries.len() + listed.notices.len();
    let overdue = listed.inquiries.iter().filter(|i| i.overdue).count()
        + listed.notices.iter().filter(|n| n.overdue).count();
    html! {
        div.tabs.no-print {
            @for view in View::ALL {
                a.button href={ "/queue?" (filters.query(view)) }
                    class=[(view == filters.view).then_some("here")] { (view.label()) }
                " "
            }
        }
        form.filters method="get" action="/queue" {
            input type="hidden" name="view" value=(view_name(filters.view));
            @if visitor.principal.township().is_none() {
                label { "乡镇 township (9 位代码)"
                    input name="township" value=(filters.township) size="11" placeholder="全部 all"; }
            }
            @if filters.view != View::Notices {
                label { "类别 kind"
                    select name="kind" {
                        option value="" { "全部 all" }
                        @for kind in ["certificate_verification", "outflow_status"] {
                            option value=(kind) selected[filters.kind == kind] { (term(kind)) " " (kind) }
                        }
                    }
                }
            }
            label { "只看超期 overdue only"
                input type="checkbox" name="overdue" value="1" checked[filters.overdue.is_some()]; }
            button type="submit" { "筛选 filter" }
        }
        div.counts {
            span { "共 " strong #count-rows { (rows) } " 条 rows" }
            span { "超期 overdue " strong.bad #count-overdue { (overdue) } }
            @if rows as u32 >= ROWS { span.hint { "只显示前 " (ROWS) " 条 (first " (ROWS) " only)" } }
        }
        @if filters.view == View::Notices {
            (notices_table(&listed.notices))
        } @else {
            (inquiries_table(&listed.inquiries))
        }
    }
}

fn inquiries_table(inquiries: &[pb::InquirySummary]) -> Markup {
    html! {
        @if inquiries.is_empty() {
            p.hint { "没有待办 nothing waiting." }
        } @else {
            table #queue {
                thead { tr {
                    th { "期限 due" } th { "类别 kind" } th { "对方县 peer" } th { "乡镇 township" }
                    th { "当事人 person" } th { "收到 received" } th { "状态 state" }
                } }
                tbody {
                    @for inquiry in inquiries {
                        tr class=[inquiry.overdue.then_some("overdue")] data-message-id=(inquiry.message_id) {
                            td {
                                a href={ "/inquiries/" (inquiry.message_id) } { (when(inquiry.due_at.as_ref())) }
                                @if inquiry.overdue { " " span.badge.bad { "超期 overdue" } }
                                @if inquiry.priority == "urgent" { " " span.badge { "加急 urgent" } }
                            }
                            td { (term(&inquiry.kind)) }
                            td { (inquiry.peer_county) }
                            td { (inquiry.township) }
                            td { code { (inquiry.subject_masked) } }
                            td { (when(inquiry.received_at.as_ref())) }
                            td { (term(&inquiry.state)) }
                        }
                    }
                }
            }
        }
    }
}

fn notices_table(notices: &[pb::NoticeSummary]) -> Markup {
    html! {
        @if notices.is_empty() {
            p.hint { "没有待反馈的通知 no notice owes feedback." }
        } @else {
            table #queue {
                thead { tr {
                    th { "反馈期限 feedback due" } th { "类别 kind" } th { "对方县 peer" }
                    th { "当事人 person" } th { "发生日期 occurred" } th { "收到 received" }
                } }
                tbody {
                    @for notice in notices {
                        tr class=[notice.overdue.then_some("overdue")] data-message-id=(notice.message_id) {
                            td {
                                (when(notice.feedback_due_at.as_ref()))
                                @if notice.overdue { " " span.badge.bad { "超期 overdue" } }
                            }
                            td { (term(&notice.kind)) }
                            td { (notice.peer_county) }
                            td { code { (notice.subject_masked) } }
                            td { (notice.occurred_on) }
                            td { (when(notice.received_at.as_ref())) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /inquiries/{id}`: one inquiry with its history.
async fn inquiry(State(console): State<Console>, visitor: Visitor, Path(id): Path<String>) -> Response {
    let title = "函查 Inquiry";
    let shown = console
        .call(
            &visitor,
            pb::ShowInquiryRequest { message_id: id },
            |service, request| async move {
                crate::proto::operator::operator_server::Operator::show_inquiry(&service, request).await
            },
        )
        .await;
    match shown {
        Ok(shown) => {
            let form = super::answer::answer_form(&visitor, &shown, &Default::default(), None);
            page(&visitor, Section::Queue, title, inquiry_body(&shown, form)).into_response()
        }
        Err(status) => refused_page(&visitor, Section::Queue, title, &status),
    }
}

/// One inquiry: its facts, then `form` (the answer form, when it waits for our answer), then
/// its history.
pub(super) fn inquiry_body(shown: &pb::ShowInquiryResponse, form: Markup) -> Markup {
    let Some(inquiry) = &shown.inquiry else {
        return html! { p { "—" } };
    };
    html! {
        dl.facts #inquiry {
            dt { "编号 message id" } dd { code { (inquiry.message_id) } }
            dt { "方向 direction" } dd { (term(&inquiry.direction)) }
            dt { "类别 kind" } dd { (term(&inquiry.kind)) }
            dt { "对方县 peer county" } dd { (inquiry.peer_county) }
            dt { "协议 agreement" } dd { (inquiry.agreement_id) }
            dt { "当事人 person" } dd { code { (shown.subject_resident_id) } }
            @if !shown.subject_certificate_number.is_empty() {
                dt { "所持证明 certificate shown" } dd { code { (shown.subject_certificate_number) } }
            }
            dt { "乡镇 township" } dd { (inquiry.township) }
            dt { "状态 state" } dd #inquiry-state data-state=(inquiry.state) {
                (term(&inquiry.state))
                @if inquiry.overdue { " " span.badge.bad { "超期 overdue" } }
            }
            dt { "期限 due" } dd { (when(inquiry.due_at.as_ref())) }
            @if !inquiry.outcome.is_empty() {
                dt { "答复 answer" } dd { (term(&inquiry.outcome)) }
            }
            @for (name, value) in &shown.answer_fields {
                dt { code { (name) } } dd { (value) }
            }
            dt { "投递 delivery" } dd {
                (shown.delivery_attempts) " 次尝试 attempts"
                @if !shown.last_delivery_error.is_empty() { " · 最近错误 last error: " (shown.last_delivery_error) }
                @if shown.next_attempt_at.is_some() { " · 下次 next " (when(shown.next_attempt_at.as_ref())) }
            }
        }
        (form)
        h2 { "经过 History" }
        table #history {
            thead { tr { th { "时间 at" } th { "事件 what" } th { "详情 detail" } } }
            tbody {
                @for entry in &shown.history {
                    tr { td { (when(entry.at.as_ref())) } td { (entry.what) } td { (entry.detail) } }
                }
            }
        }
    }
}
