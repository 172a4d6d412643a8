//! 四率 — the indicators per township and for the county for a period, as `hancha report`
//! gives them: a table with numerators and denominators, bars per township against the 100%
//! target, the trend of the county's rates over the last four quarters, and the township
//! offices' CSV. A township office sees its own township (the operator API narrows the report).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use tonic::Status;

use super::chart::{self, Bar, Series};
use super::layout::{Refusal, Section, page, refused_page};
use super::{Console, Visitor};
use crate::domain::report::ReportPeriod;
use crate::present::report::{INDICATORS, indicators, write_csv};
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;

/// How many quarters the trend shows, the chosen period's included.
const TREND_QUARTERS: usize = 4;

/// The routes of this section.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/indicators", get(indicators_page))
        .route("/indicators.csv", get(indicators_csv))
}

/// The period asked for (empty: the current quarter, as the API takes it).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PeriodQuery {
    period: String,
}

async fn report(console: &Console, visitor: &Visitor, period: &str) -> Result<pb::ReportResponse, Status> {
    let request = pb::ReportRequest {
        period: period.trim().to_string(),
        township: String::new(),
    };
    console
        .call(visitor, request, |service, request| async move {
            Operator::report(&service, request).await
        })
        .await
}

/// `GET /indicators?period=2026Q4`.
async fn indicators_page(
    State(console): State<Console>,
    visitor: Visitor,
    Query(query): Query<PeriodQuery>,
) -> Response {
    let title = "四率 Indicators";
    let report = match report(&console, &visitor, &query.period).await {
        Ok(report) => report,
        Err(status) => {
            let refusal = Refusal::of(&status);
            let http = crate::web::api::http_status_of(status.code());
            let body = html! { (period_form(&query.period, refusal.field("period"))) (refusal.render()) };
            return (http, page(&visitor, Section::Indicators, title, body)).into_response();
        }
    };
    let trend = trend(&console, &visitor, &report).await;
    page(&visitor, Section::Indicators, title, body(&report, trend)).into_response()
}

/// `GET /indicators.csv?period=2026Q4`: the township offices' CSV, as `hancha report --csv`.
async fn indicators_csv(
    State(console): State<Console>,
    visitor: Visitor,
    Query(query): Query<PeriodQuery>,
) -> Response {
    let report = match report(&console, &visitor, &query.period).await {
        Ok(report) => report,
        Err(status) => return refused_page(&visitor, Section::Indicators, "四率 Indicators", &status),
    };
    let mut bytes = Vec::new();
    if let Err(error) = write_csv(&mut bytes, &report) {
        tracing::warn!(%error, "report csv not written");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let file = format!("hancha-report-{}-{}.csv", report.county, report.period);
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

/// The trend's periods and the row each gave (the county's, or a township office's own
/// township's), or why they could not be had.
type Trend = Result<Vec<(String, pb::ReportRow)>, Status>;

/// The county's rates (a township office: its township's) over the [`TREND_QUARTERS`] quarters
/// ending with the one the chosen period ends in, one `Report` call per quarter.
async fn trend(console: &Console, visitor: &Visitor, chosen: &pb::ReportResponse) -> Trend {
    let Ok(period) = ReportPeriod::parse(&chosen.period) else {
        return Ok(Vec::new());
    };
    let mut quarter = ReportPeriod::current_quarter(period.end());
    let mut quarters = vec![quarter];
    for _ in 1..TREND_QUARTERS {
        quarter = quarter.previous();
        quarters.push(quarter);
    }
    quarters.reverse();
    let mut points = Vec::new();
    for quarter in quarters {
        let label = quarter.label();
        let report = if label == chosen.period {
            chosen.clone()
        } else {
            report(console, visitor, &label).await?
        };
        if let Some(row) = headline(&report) {
            points.push((label, row.clone()));
        }
    }
    Ok(points)
}

/// The row that speaks for the whole report: the county's, or (a township office's report has
/// no county row) its only township's.
fn headline(report: &pb::ReportResponse) -> Option<&pb::ReportRow> {
    report
        .rows
        .iter()
        .find(|row| row.township.is_empty())
        .or_else(|| report.rows.first())
}

fn place(report: &pb::ReportResponse, row: &pb::ReportRow) -> String {
    if row.township.is_empty() {
        format!("{} {} 全县 county", report.county, row.township_name)
    } else {
        format!("{} {}", row.township, row.township_name)
    }
}

fn period_form(period: &str, why: Option<&str>) -> Markup {
    html! {
        form.filters #period-form method="get" action="/indicators" {
            label { "期间 period (2026Q4, 2026-11, 2026)"
                input #period name="period" value=(period) size="10" placeholder="本季度 this quarter"
                    class=[why.map(|_| "invalid")]; }
            @if let Some(why) = why { span.field-error #period-error { (why) } }
            button #show type="submit" { "查看 show" }
        }
    }
}

fn body(report: &pb::ReportResponse, trend: Trend) -> Markup {
    let townships: Vec<&pb::ReportRow> = report
        .rows
        .iter()
        .filter(|row| !row.township.is_empty())
        .collect();
    html! {
        (period_form(&report.period, None))
        p #period-span {
            "期间 " strong #period-label { (report.period) } " · " (report.period_start) " 至 " (report.period_end)
            " (中国标准时间 China Standard Time; 年龄按期末计 ages on the last day) · "
            a.button.no-print #download-csv href={ "/indicators.csv?period=" (urlencoding::encode(&report.period)) }
                download { "下载 CSV download" }
        }
        table #indicators {
            thead {
                tr {
                    th rowspan="2" { "乡镇 township" }
                    @for (chinese, key, _) in INDICATORS { th.num colspan="2" data-indicator=(key) { (chinese) } }
                }
                tr { @for _ in INDICATORS { th.num { "率 rate" } th.num { "分子/分母 n/d" } } }
            }
            tbody {
                @for row in &report.rows {
                    tr data-township=(row.township) class=[row.township.is_empty().then_some("total")] {
                        th { (place(report, row)) }
                        @for ((_, key, _), indicator) in INDICATORS.iter().zip(indicators(row)) {
                            td.num data-indicator=(key) data-numerator=(indicator.numerator)
                                data-denominator=(indicator.denominator) { (indicator.percent()) }
                            td.num { (indicator.numerator) "/" (indicator.denominator) }
                        }
                    }
                }
            }
        }
        ul.hint {
            @for (chinese, key, meaning) in INDICATORS { li { (chinese) " " code { (key) } ": " (meaning) } }
            li { "不在本县登记册中的被查询人没有乡镇, 只计入全县合计 people asked about who are not in the registry have no township: they count in the county total only." }
            li { "率向下取整, 100.0% 即全部 rates are rounded down: 100.0% means everyone; — 为无统计对象 (0/0) nobody concerned." }
        }
        h2 { "各乡镇对照 100% 目标 Per township against the 100% target" }
        div.charts #bar-charts {
            @for ((chinese, key, _), index) in INDICATORS.iter().zip(0..) {
                @let bars: Vec<Bar> = townships.iter().map(|row| Bar {
                    code: row.township.clone(),
                    label: place(report, row),
                    indicator: indicators(row)[index],
                }).collect();
                figure data-indicator=(key) {
                    figcaption { (chinese) }
                    (chart::bars(key, chinese, &bars))
                }
            }
        }
        h2 { "近四个季度 The last four quarters" }
        @match trend {
            Ok(points) if !points.is_empty() => {
                @let periods: Vec<String> = points.iter().map(|(label, _)| label.clone()).collect();
                @let series: Vec<Series> = INDICATORS.iter().enumerate().map(|(index, (chinese, _, _))| Series {
                    name: (*chinese).to_string(),
                    points: points.iter().map(|(_, row)| indicators(row)[index]).collect(),
                }).collect();
                @let whose = place(report, &points[points.len() - 1].1);
                figure #trend {
                    figcaption { (whose) }
                    (chart::trend("chart-trend", &format!("{whose} 近四个季度的四率 rates over the last four quarters"), &periods, &series))
                }
                table #trend-table {
                    thead { tr { th { "季度 quarter" } @for (chinese, _, _) in INDICATORS { th.num { (chinese) } } } }
                    tbody {
                        @for (label, row) in &points {
                            tr data-period=(label) {
                                th { (label) }
                                @for indicator in indicators(row) { td.num { (indicator) } }
                            }
                        }
                    }
                }
            }
            Ok(_) => { p.hint { "—" } }
            Err(status) => { (Refusal::of(&status).render()) }
        }
    }
}
