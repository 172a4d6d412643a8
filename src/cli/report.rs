//! `hancha report`: the five indicators (登记率, 办证率, 持验证率, 流出人口函查率,
//! 查环查孕结果通报率) per township and for the county, as a table for people, CSV for a
//! spreadsheet, or JSON for a program.

use crate::present::explain;
use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::domain::division::CountyCode;
use crate::domain::report::{Indicator, ReportPeriod};
use crate::domain::time::china_time;
use crate::proto::operator as pb;

/// The indicators, each with its Chinese name, the column prefix used in CSV and JSON, and what
/// it counts (as printed under the table).
const INDICATORS: [(&str, &str, &str); 5] = [
    (
        "登记率",
        "registration",
        "inflow persons registered ÷ known (registered, or asked about by their origin in the period)",
    ),
    (
        "办证率",
        "certificate",
        "outflow women 15–49 with a certificate valid on the last day ÷ outflow women 15–49",
    ),
    (
        "持验证率",
        "verification",
        "inflow women 15–49 the origin verified (found) by the last day ÷ inflow women 15–49",
    ),
    (
        "流出人口函查率",
        "outflow_inquiry",
        "outflow persons with an outflow inquiry answered in the period ÷ outflow persons",
    ),
    (
        "查环查孕结果通报率",
        "check_report",
        "inflow married women 15–49 whose check result (dated in the period) was sent to their origin ÷ inflow married women 15–49",
    ),
];

/// What to report and how to print it. Rates are rounded down, so 100.0% means everyone.
///
/// Inquiries whose personal data was erased at the end of their agreement's retention period
/// count for nobody: 登记率 and 流出人口函查率 are exact for periods that began less than
/// `retention_days` ago, 持验证率 counts the verifications of the last `retention_days` (see
/// "Retention" in the README).
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// A quarter (2026Q4), a month (2026-11) or a year (2026), in China Standard Time
    /// (Asia/Shanghai); ages are taken on its last day. Default: the current quarter.
    #[arg(long, value_name = "PERIOD", value_parser = ReportPeriod::parse)]
    period: Option<ReportPeriod>,
    /// Only this township (9-digit code); the county total is then left out.
    #[arg(long, value_name = "CODE")]
    township: Option<String>,
    /// Write CSV for a spreadsheet: plain UTF-8 without a byte-order mark, a header row, one row
    /// per township and one (level "county") for the county.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Write one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::ReportRequest {
            period: args.period.map(|p| p.label()).unwrap_or_default(),
            township: args.township.clone().unwrap_or_default(),
        };
        let report = client.report(request).await.map_err(explain)?.into_inner();
        if args.json {
            println!("{}", to_json(&report));
        } else if args.csv {
            // No byte-order mark: scripts, databases and most CSV readers take it for part of the
            // first column's name, while LibreOffice and WPS read UTF-8 without it (and Excel's
            // Data › From Text/CSV does with "65001: Unicode (UTF-8)").
            let mut writer = csv::Writer::from_writer(std::io::stdout());
            writer.write_record(csv_header())?;
            for row in &report.rows {
                writer.write_record(csv_row(&report, row))?;
            }
            writer.flush()?;
        } else {
            println!("{}", text(&report));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The row's indicators, in the order of [`INDICATORS`].
fn indicators(row: &pb::ReportRow) -> [Indicator; 5] {
    let domain = |wire: &Option<pb::Indicator>| {
        wire.as_ref()
            .map(|i| Indicator::new(i.numerator, i.denominator))
            .unwrap_or_default()
    };
    [
        domain(&row.registration),
        domain(&row.certificate),
        domain(&row.verification),
        domain(&row.outflow_inquiry),
        domain(&row.check_report),
    ]
}

fn county_name(code: &str) -> &'static str {
    CountyCode::parse(code).map(|c| c.name()).unwrap_or_default()
}

// === table ===

fn text(report: &pb::ReportResponse) -> String {
    let now = china_time(Utc::now());
    let mut out = vec![
        format!(
            "{} {} — report {}",
            report.county,
            county_name(&report.county),
            report.period
        ),
        format!(
            "period {} to {}, ages on {}; as of {} (Asia/Shanghai)",
            report.period_start,
            report.period_end,
            report.period_end,
            now.format("%Y-%m-%d %H:%M")
        ),
        String::new(),
    ];
    let rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|row| {
            let place = if row.township.is_empty() {
                format!("{} {} (county)", report.county, row.township_name)
            } else {
                format!("{} {}", row.township, row.township_name)
            };
            std::iter::once(place)
                .chain(indicators(row).iter().map(Indicator::to_string))
                .collect()
        })
        .collect();
    let mut header = vec!["township".to_string()];
    header.extend(INDICATORS.iter().map(|(chinese, _, _)| chinese.to_string()));
    out.extend(aligned(&header, &rows));
    out.push(String::new());
    for (chinese, english, meaning) in INDICATORS {
        out.push(format!("{chinese} {english}: {meaning}"));
    }
    out.push(
        "People asked about who are not in the registry have no township: they count in the county total only."
            .to_string(),
    );
    out.join("\n")
}

/// Lines with the first column (the place) aligned left and the indicators aligned right, so
/// that percentages line up. Widths count East Asian wide characters as two columns and
/// everything else (the dash of an empty rate included) as one, as terminals do.
fn aligned(header: &[String], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|cell| width(cell)).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            widths[column] = widths[column].max(width(cell));
        }
    }
    std::iter::once(header)
        .chain(rows.iter().map(Vec::as_slice))
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(column, cell)| {
                    let padding = " ".repeat(widths[column] - width(cell));
                    if column == 0 {
                        format!("{cell}{padding}")
                    } else {
                        format!("{padding}{cell}")
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// Terminal columns taken by `text`.
fn width(text: &str) -> usize {
    text.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

/// East Asian wide and fullwidth characters: Hangul Jamo, CJK (radicals to Yi), Hangul
/// syllables, compatibility ideographs, fullwidth forms and the supplementary ideographs.
fn is_wide(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD
    )
}

// === CSV ===

fn csv_header() -> Vec<String> {
    let mut header: Vec<String> = ["level", "code", "name", "period", "period_start", "period_end"]
        .map(String::from)
        .to_vec();
    for (_, column, _) in INDICATORS {
        header.extend(["numerator", "denominator", "rate"].map(|part| format!("{column}_{part}")));
    }
    header
}

fn csv_row(report: &pb::ReportResponse, row: &pb::ReportRow) -> Vec<String> {
    let (level, code) = if row.township.is_empty() {
        ("county", report.county.clone())
    } else {
        ("township", row.township.clone())
    };
    let mut record = vec![
        level.to_string(),
        code,
        row.township_name.clone(),
        report.period.clone(),
        report.period_start.clone(),
        report.period_end.clone(),
    ];
    for indicator in indicators(row) {
        record.push(indicator.numerator.to_string());
        record.push(indicator.denominator.to_string());
        record.push(csv_rate(indicator));
    }
    record
}

/// The rate as a fraction with four decimals, rounded down like the table; empty for 0/0.
fn csv_rate(indicator: Indicator) -> String {
    if indicator.denominator == 0 {
        return String::new();
    }
    let ten_thousandths = u128::from(indicator.numerator) * 10_000 / u128::from(indicator.denominator);
    format!("{}.{:04}", ten_thousandths / 10_000, ten_thousandths % 10_000)
}

// === JSON ===

fn to_json(report: &pb::ReportResponse) -> serde_json::Value {
    let indicators_json = |row: &pb::ReportRow| {
        let mut object = serde_json::Map::new();
        for ((_, name, _), indicator) in INDICATORS.iter().zip(indicators(row)) {
            object.insert(
                (*name).to_string(),
                json!({
                    "numerator": indicator.numerator,
                    "denominator": indicator.denominator,
                    "rate": indicator.rate(),
                }),
            );
        }
        object
    };
    let townships: Vec<serde_json::Value> = report
        .rows
        .iter()
        .filter(|row| !row.township.is_empty())
        .map(|row| {
            let mut object = indicators_json(row);
            object.insert("township".into(), json!(row.township));
            object.insert("name".into(), json!(row.township_name));
            serde_json::Value::Object(object)
        })
        .collect();
    let county_total = report
        .rows
        .iter()
        .find(|row| row.township.is_empty())
        .map(|row| serde_json::Value::Object(indicators_json(row)));
    json!({
        "county": report.county,
        "county_name": county_name(&report.county),
        "period": report.period,
        "period_start": report.period_start,
        "period_end": report.period_end,
        "time_zone": "Asia/Shanghai",
        "generated_at": china_time(Utc::now()).to_rfc3339(),
        "townships": townships,
        "county_total": county_total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicator_columns_align_right_counting_chinese_as_two_columns() {
        let header = ["township", "登记率"].map(String::from).to_vec();
        let rows = vec![
            ["430703001 玉霞街道", "100.0% (4/4)"].map(String::from).to_vec(),
            ["x", "— (0/0)"].map(String::from).to_vec(),
        ];
        assert_eq!(
            aligned(&header, &rows),
            [
                "township                  登记率",
                "430703001 玉霞街道  100.0% (4/4)",
                "x                        — (0/0)",
            ]
        );
    }

    #[test]
    fn csv_rates_are_fractions_rounded_down_and_empty_for_nobody() {
        assert_eq!(csv_rate(Indicator::new(52, 54)), "0.9629");
        assert_eq!(csv_rate(Indicator::new(1, 1)), "1.0000");
        assert_eq!(csv_rate(Indicator::new(19_999, 20_000)), "0.9999");
        assert_eq!(csv_rate(Indicator::new(0, 0)), "");
    }
}
