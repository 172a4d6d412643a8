//! The indicators report as the township offices receive it: which indicators, in which order,
//! and the one CSV format (`hancha report --csv` and the console's download write the same
//! bytes for the same answer).

use crate::domain::division::CountyCode;
use crate::domain::report::Indicator;
use crate::proto::operator as pb;

/// The indicators, each with its Chinese name, the column prefix used in CSV and JSON, and what
/// it counts (as printed under the table).
pub const INDICATORS: [(&str, &str, &str); 5] = [
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

/// The row's indicators, in the order of [`INDICATORS`].
pub fn indicators(row: &pb::ReportRow) -> [Indicator; 5] {
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

/// The county's Chinese name (empty for a code that is not one).
pub fn county_name(code: &str) -> &'static str {
    CountyCode::parse(code).map(|c| c.name()).unwrap_or_default()
}

/// Writes `report` as CSV for a spreadsheet: plain UTF-8, a header row, one row per township and
/// one (level "county") for the county, each indicator as numerator, denominator and rate.
///
/// No byte-order mark: scripts, databases and most CSV readers take it for part of the first
/// column's name, while LibreOffice and WPS read UTF-8 without it (and Excel's Data › From
/// Text/CSV does with "65001: Unicode (UTF-8)").
pub fn write_csv<W: std::io::Write>(out: W, report: &pb::ReportResponse) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(csv_header())?;
    for row in &report.rows {
        writer.write_record(csv_row(report, row))?;
    }
    writer.flush()?;
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rates_are_fractions_rounded_down_and_empty_for_nobody() {
        assert_eq!(csv_rate(Indicator::new(52, 54)), "0.9629");
        assert_eq!(csv_rate(Indicator::new(1, 1)), "1.0000");
        assert_eq!(csv_rate(Indicator::new(19_999, 20_000)), "0.9999");
        assert_eq!(csv_rate(Indicator::new(0, 0)), "");
    }
}
