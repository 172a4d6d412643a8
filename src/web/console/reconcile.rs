//! 对账 — reconciliation: past runs with each peer, a run's person-level differences grouped by
//! township with the township offices' CSV (as `hancha reconcile reports --csv`), and a form
//! with which a county operator starts a run now.
//!
//! Starting a run waits for it: the form's POST consumes the `Reconcile` stream to its end (a
//! run takes seconds; each step must come within `limits.rpc_timeout`) and then redirects to the
//! page of the run that compared the people both counties should know, so the operator lands on
//! what the run found. A refusal (a run already going, no agreement) is shown on the runs page.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use futures::StreamExt;
use maud::{Markup, html};
use serde::Deserialize;
use tonic::Status;

use super::layout::{Refusal, Section, form_token, page, refused_page, when};
use super::{Console, Visitor};
use crate::domain::policy::{Rejection, RejectionCode};
use crate::present::display;
use crate::present::reconcile::{bytes, write_differences_csv};
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;
use crate::proto::operator::reconcile_progress::Step;
use crate::status::status_of;

/// How many runs the list shows (and searches for a run's page).
const RUNS: u32 = 200;

const TITLE: &str = "对账 Reconciliation";

/// The routes of this section.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/reconcile", get(runs_page).post(start))
        .route("/reconcile/differences.csv", get(all_differences_csv))
        .route("/reconcile/{run_id}", get(run_page))
        .route("/reconcile/{run_id}/differences.csv", get(run_differences_csv))
}

/// The start form.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct StartForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    with_county: String,
}

/// Reconciliation's words in Chinese, with the wire name.
fn term(wire: &str) -> Markup {
    let zh = match wire {
        "messages" => "往来消息",
        "shared_people" => "共有人员",
        "initiator" => "我方发起",
        "responder" => "对方发起",
        "completed" => "完成",
        "interrupted" => "中断",
        "inflow" => "流入",
        "outflow" => "流出",
        "unknown_to_peer" => "对方未登记",
        "unknown_here" => "我方未登记",
        "differs" => "信息不一致",
        "inquiry_opened" => "已发函查",
        "over_cap" => "超出本次上限",
        "already_asked" => "已在函查中",
        "reported" => "已报告",
        _ => return super::layout::term(wire),
    };
    html! { span title=(wire) { (zh) } }
}

async fn list_runs(
    console: &Console,
    visitor: &Visitor,
    limit: u32,
) -> Result<Vec<pb::ReconcileRun>, Status> {
    let request = pb::ListReconcileRunsRequest {
        with_county: String::new(),
        limit,
    };
    console
        .call(visitor, request, |service, request| async move {
            Operator::list_reconcile_runs(&service, request).await
        })
        .await
        .map(|listed| listed.runs)
}

async fn list_differences(
    console: &Console,
    visitor: &Visitor,
    with_county: String,
) -> Result<Vec<pb::PersonDifference>, Status> {
    console
        .call(
            visitor,
            pb::ListReconcileDifferencesRequest { with_county },
            |service, request| async move { Operator::list_reconcile_differences(&service, request).await },
        )
        .await
        .map(|listed| listed.differences)
}

/// The peers we hold agreements with, for the form's suggestions (none when the list is refused).
async fn peers(console: &Console, visitor: &Visitor) -> Vec<String> {
    let listed = console
        .call(
            visitor,
            pb::ListAgreementsRequest {},
            |service, request| async move { Operator::list_agreements(&service, request).await },
        )
        .await;
    let mut peers: Vec<String> = listed
        .map(|listed| listed.agreements.into_iter().map(|a| a.peer_county).collect())
        .unwrap_or_default();
    peers.sort();
    peers.dedup();
    peers
}

/// `GET /reconcile`.
async fn runs_page(State(console): State<Console>, visitor: Visitor) -> Response {
    runs_answer(&console, &visitor, "", None).await
}

/// The runs page, with the form filled with `with_county` and `refused` shown above it.
async fn runs_answer(
    console: &Console,
    visitor: &Visitor,
    with_county: &str,
    refused: Option<&Status>,
) -> Response {
    let runs = match list_runs(console, visitor, RUNS).await {
        Ok(runs) => runs,
        Err(status) => return refused_page(visitor, Section::Reconcile, TITLE, &status),
    };
    let peers = peers(console, visitor).await;
    let refusal = refused.map(Refusal::of);
    let content = html! {
        @if let Some(refusal) = &refusal { (refusal.render()) }
        @if visitor.principal.township().is_none() {
            (start_form(visitor, &peers, with_county, refusal.as_ref()))
        }
        p.no-print {
            a.button #download-all-csv href="/reconcile/differences.csv" download {
                "全部人员差异 CSV all person differences (CSV)" }
        }
        (runs_table(&runs))
    };
    let http = refused
        .map(|status| crate::web::api::http_status_of(status.code()))
        .unwrap_or(StatusCode::OK);
    (http, page(visitor, Section::Reconcile, TITLE, content)).into_response()
}

fn start_form(visitor: &Visitor, peers: &[String], with_county: &str, refusal: Option<&Refusal>) -> Markup {
    let why = refusal.and_then(|refusal| refusal.field("with_county"));
    html! {
        form.filters #reconcile-form method="post" action="/reconcile" {
            (form_token(visitor))
            label { "对方县 peer county (6 位代码)"
                input #with-county name="with_county" value=(with_county) size="8" list="peer-counties"
                    required class=[why.map(|_| "invalid")]; }
            datalist #peer-counties { @for peer in peers { option value=(peer) { (display::county(peer)) } } }
            @if let Some(why) = why { span.field-error #with-county-error { (why) } }
            button #start-reconcile type="submit" { "立即对账 reconcile now" }
            span.hint { "对账需几秒钟, 完成后显示结果 a run takes seconds; its result is shown when it ends." }
        }
    }
}

fn runs_table(runs: &[pb::ReconcileRun]) -> Markup {
    html! {
        @if runs.is_empty() {
            p.hint #no-runs { "还没有对账记录 no reconciliation runs yet." }
        } @else {
            table #runs {
                thead { tr {
                    th { "开始 started" } th { "对方县 peer" } th { "集合 set" } th { "发起 role" } th { "结果 outcome" }
                    th.num { "我方 here" } th.num { "对方 peer" } th.num { "差异 differences" }
                    th.num { "重发 re-delivered" } th.num { "函查 inquiries" } th.num { "报告 reported" }
                    th.num { "流量 bytes" } th.num { "秒 seconds" }
                } }
                tbody {
                    @for run in runs {
                        tr data-run-id=(run.run_id) data-set=(run.set) class=[(run.outcome != "completed").then_some("overdue")] {
                            td { a href={ "/reconcile/" (run.run_id) } { (when(run.started_at.as_ref())) } }
                            td { (display::county(&run.peer_county)) }
                            td { (term(&run.set)) }
                            td { (term(&run.role)) }
                            td {
                                (term(&run.outcome))
                                @if !run.error.is_empty() { " " span.hint { (run.error) } }
                            }
                            td.num { (run.local_size) } td.num { (run.peer_size) }
                            td.num data-differences=(run.differences) { (run.differences) }
                            td.num { (run.repaired) } td.num { (run.inquiries_opened) } td.num { (run.reported) }
                            td.num { (bytes(run.bytes_sent + run.bytes_received)) }
                            td.num { (format!("{:.2}", run.seconds)) }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /reconcile`: runs with the peer now, then shows what it found.
async fn start(State(console): State<Console>, visitor: Visitor, Form(form): Form<StartForm>) -> Response {
    if !console.form_token_ok(&visitor, &form.csrf) {
        return super::forms::forbidden(&visitor, Section::Reconcile, TITLE);
    }
    let with_county = form.with_county.trim().to_string();
    let started = console
        .call(
            &visitor,
            pb::ReconcileRequest {
                with_county: with_county.clone(),
            },
            |service, request| async move { Operator::reconcile(&service, request).await },
        )
        .await;
    let mut stream = match started {
        Ok(stream) => stream,
        Err(status) => return runs_answer(&console, &visitor, &with_county, Some(&status)).await,
    };
    let mut runs = Vec::new();
    loop {
        match tokio::time::timeout(console.rpc_timeout, stream.next()).await {
            Ok(Some(Ok(progress))) => {
                if let Some(Step::Done(run)) = progress.step {
                    runs.push(run);
                }
            }
            Ok(Some(Err(status))) => {
                return runs_answer(&console, &visitor, &with_county, Some(&status)).await;
            }
            Ok(None) => break,
            // Still going: the run finishes on the node (and is listed) without us.
            Err(_) => return Redirect::to("/reconcile").into_response(),
        }
    }
    let shown = runs
        .iter()
        .find(|run| run.set == "shared_people")
        .or(runs.first());
    match shown {
        Some(run) => Redirect::to(&format!("/reconcile/{}", run.run_id)).into_response(),
        None => Redirect::to("/reconcile").into_response(),
    }
}

/// `GET /reconcile/{run_id}`: one run and its person-level differences by township.
async fn run_page(State(console): State<Console>, visitor: Visitor, Path(run_id): Path<String>) -> Response {
    let (run, differences) = match run_and_differences(&console, &visitor, &run_id).await {
        Ok(found) => found,
        Err(status) => return refused_page(&visitor, Section::Reconcile, TITLE, &status),
    };
    page(&visitor, Section::Reconcile, TITLE, run_body(&run, &differences)).into_response()
}

/// The run `run_id` and its person differences, as the operator API lists them.
async fn run_and_differences(
    console: &Console,
    visitor: &Visitor,
    run_id: &str,
) -> Result<(pb::ReconcileRun, Vec<pb::PersonDifference>), Status> {
    let runs = list_runs(console, visitor, RUNS).await?;
    let Some(run) = runs.into_iter().find(|run| run.run_id == run_id) else {
        return Err(status_of(&Rejection::new(
            RejectionCode::NotFound,
            format!("no such reconciliation run among the last {RUNS}"),
        )));
    };
    let differences = list_differences(console, visitor, run.peer_county.clone())
        .await?
        .into_iter()
        .filter(|difference| difference.run_id == run.run_id)
        .collect();
    Ok((run, differences))
}

fn run_body(run: &pb::ReconcileRun, differences: &[pb::PersonDifference]) -> Markup {
    let mut by_township: BTreeMap<&str, Vec<&pb::PersonDifference>> = BTreeMap::new();
    for difference in differences {
        by_township
            .entry(difference.township.as_str())
            .or_default()
            .push(difference);
    }
    html! {
        p.no-print { a href="/reconcile" { "← 全部对账 all runs" } }
        dl.facts #run data-run-id=(run.run_id) {
            dt { "编号 run" } dd { code { (run.run_id) } }
            dt { "对方县 peer" } dd { (display::county(&run.peer_county)) }
            dt { "协议 agreement" } dd { a href={ "/agreements/" (run.agreement_id) } { (run.agreement_id) } }
            dt { "集合 set" } dd { (term(&run.set)) }
            dt { "发起 role" } dd { (term(&run.role)) }
            dt { "时间 when" } dd { (when(run.started_at.as_ref())) " – " (when(run.finished_at.as_ref())) }
            dt { "结果 outcome" } dd { (term(&run.outcome)) @if !run.error.is_empty() { " · " (run.error) } }
            dt { "规模 sizes" } dd { "我方 here " (run.local_size) " · 对方 peer " (run.peer_size) }
            dt { "差异 differences" } dd #differences-count { (run.differences) }
            dt { "处理 actions" } dd {
                "重发 re-delivered " (run.repaired) " · 发函查 inquiries opened " (run.inquiries_opened)
                " · 报告 reported " (run.reported)
            }
        }
        h2 { "人员差异 Person differences, by township" }
        @if run.set != "shared_people" {
            p.hint { "往来消息的对账没有人员差异 a run over the messages has no person-level differences." }
        } @else if differences.is_empty() {
            p.hint #no-differences { "没有人员差异 no person-level differences in this run." }
        } @else {
            p.no-print {
                a.button #download-csv href={ "/reconcile/" (run.run_id) "/differences.csv" } download {
                    "下载 CSV download (" (differences.len()) ")" }
            }
            @for (township, rows) in &by_township {
                section.township data-township=(township) {
                    h3 {
                        @if township.is_empty() { "无乡镇 no township (只有对方登记的人 known to the peer only)" }
                        @else { (display::township(township)) }
                        " · " (rows.len()) " 人 persons"
                    }
                    table.differences {
                        thead { tr {
                            th { "身份证号 ID number" } th { "流向 flow" } th { "差异 difference" }
                            th { "处理 action" } th { "函查 inquiry" }
                        } }
                        tbody {
                            @for row in rows {
                                tr {
                                    td { code { @if row.resident_id.is_empty() { "—" } @else { (row.resident_id) } } }
                                    td { (term(&row.flow)) }
                                    td { (term(&row.difference)) }
                                    td { (term(&row.action)) }
                                    td { @if !row.inquiry_id.is_empty() {
                                        a href={ "/inquiries/" (row.inquiry_id) } { code { (row.inquiry_id) } }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn csv_answer(file: &str, differences: &[pb::PersonDifference]) -> Response {
    let mut bytes = Vec::new();
    if let Err(error) = write_differences_csv(&mut bytes, differences) {
        tracing::warn!(%error, "differences csv not written");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /reconcile/differences.csv`: every person difference, as `hancha reconcile reports --csv`.
async fn all_differences_csv(State(console): State<Console>, visitor: Visitor) -> Response {
    match list_differences(&console, &visitor, String::new()).await {
        Ok(differences) => csv_answer(
            &format!("hancha-reconcile-{}.csv", visitor.principal.county().as_str()),
            &differences,
        ),
        Err(status) => refused_page(&visitor, Section::Reconcile, TITLE, &status),
    }
}

/// `GET /reconcile/{run_id}/differences.csv`: one run's person differences.
async fn run_differences_csv(
    State(console): State<Console>,
    visitor: Visitor,
    Path(run_id): Path<String>,
) -> Response {
    match run_and_differences(&console, &visitor, &run_id).await {
        Ok((run, differences)) => csv_answer(&format!("hancha-reconcile-{}.csv", run.run_id), &differences),
        Err(status) => refused_page(&visitor, Section::Reconcile, TITLE, &status),
    }
}
