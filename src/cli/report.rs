//! `hancha report`: the five indicators (登记率, 办证率, 持验证率, 流出人口函查率,
//! 查环查孕结果通报率) per township and for the county, as a table for people, CSV for a
//! spreadsheet, or JSON for a program.

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::domain::report::{Indicator, ReportPeriod};
use crate::domain::time::china_time;
use crate::present::explain;
use crate::present::report::{self as report_csv, INDICATORS, county_name, indicators};
use crate::proto::operator as pb;

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
            report_csv::write_csv(std::io::stdout(), &report)?;
        } else {
            println!("{}", text(&report));
        }
        Ok(ExitCode::SUCCESS)
    })
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
}
