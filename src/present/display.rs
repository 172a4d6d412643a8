//! How the CLI shows things to people: times in Asia/Shanghai, counties and townships with
//! their names, vocabulary with its Chinese terms, and plain aligned tables.

use chrono::{DateTime, Utc};

use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::time::china_time;

/// A protobuf timestamp as local time in China, minutes precision; empty when absent.
pub fn time(at: Option<&pbjson_types::Timestamp>) -> String {
    at.and_then(crate::exchange::convert::timestamp_from_wire)
        .map(|at| local(at).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A protobuf timestamp as a date in China; empty when absent.
pub fn date(at: Option<&pbjson_types::Timestamp>) -> String {
    at.and_then(crate::exchange::convert::timestamp_from_wire)
        .map(|at| local(at).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// An RFC 3339 time in China, for JSON and CSV.
pub fn rfc3339(at: Option<&pbjson_types::Timestamp>) -> String {
    at.and_then(crate::exchange::convert::timestamp_from_wire)
        .map(|at| local(at).to_rfc3339())
        .unwrap_or_default()
}

fn local(at: DateTime<Utc>) -> DateTime<chrono_tz::Tz> {
    china_time(at)
}

/// What an answer's `certificate_presented` means, in Chinese and English, as one line a
/// clerk reads at a glance: a certificate that is not the holder's is shouted. `None` for a
/// value this version does not know.
pub fn certificate_presented(value: &str) -> Option<&'static str> {
    use crate::domain::vocabulary::CertificatePresented;
    Some(match value.parse::<CertificatePresented>().ok()? {
        CertificatePresented::DoesNotMatch => {
            "!! 所出示的婚育证明不是此人的 — the certificate shown was NOT issued to this person"
        }
        CertificatePresented::Matches => {
            "所出示的婚育证明与此人相符 — the certificate shown was issued to this person"
        }
        CertificatePresented::NotShown => {
            "未出示婚育证明编号 — no certificate number was given; only the ID was checked"
        }
    })
}

/// `431322 新化县`, or the bare code when unknown.
pub fn county(code: &str) -> String {
    match CountyCode::parse(code) {
        Ok(county) => format!("{code} {}", county.name()),
        Err(_) => code.to_string(),
    }
}

/// `430703101 玉霞街道`, or the bare code when unknown, or empty.
pub fn township(code: &str) -> String {
    match TownshipCode::parse(code) {
        Ok(township) => format!("{code} {}", township.name()),
        Err(_) => code.to_string(),
    }
}

/// `certificate_verification 查证验证`.
pub fn kind(name: &str) -> String {
    match name.parse::<crate::domain::vocabulary::InquiryKind>() {
        Ok(kind) => format!("{} {}", kind.as_str(), kind.label_zh()),
        Err(_) => name.to_string(),
    }
}

/// Renders rows as a table with columns padded to their widest cell (counting CJK characters
/// as two columns, as terminals do).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if index < widths.len() {
                widths[index] = widths[index].max(width(cell));
            }
        }
    }
    let render = |cells: Vec<&str>| {
        let mut line = String::new();
        for (index, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if index + 1 < cells.len() {
                line.push_str(&" ".repeat(widths[index] - width(cell) + 2));
            }
        }
        line.trim_end().to_string()
    };
    let mut out = vec![render(header.to_vec())];
    for row in rows {
        out.push(render(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// Display width: CJK and other wide characters take two columns.
fn width(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if (c as u32) >= 0x1100 && !c.is_ascii() {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Parses a wait such as `2s`, `500ms`, `1.5s` or `0`.
pub fn parse_wait(input: &str) -> Result<std::time::Duration, String> {
    let input = input.trim();
    let (number, unit) = match input.find(|c: char| c.is_ascii_alphabetic()) {
        Some(index) => input.split_at(index),
        None => (input, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 2s or 500ms, got {input:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?}: use ms, s or m")),
    };
    if !(0.0..=3600.0).contains(&seconds) {
        return Err("a wait must be between 0 and 1 hour".into());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// A count as people read it: `5,000`.
pub fn thousands(n: impl Into<u64>) -> String {
    let digits = n.into().to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Where an agreement version stands (`AgreementInfo.stage`), in the words lists use.
pub fn stage(stage: &str) -> &str {
    match stage {
        "in_force" => "in force",
        "waiting_for_peer" => "waiting for peer",
        "not_yet_valid" => "not yet valid",
        "unsigned" => "not signed by every party",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_parse_in_the_units_operators_type() {
        assert_eq!(parse_wait("2s").unwrap().as_millis(), 2000);
        assert_eq!(parse_wait("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_wait("1.5s").unwrap().as_millis(), 1500);
        assert_eq!(parse_wait("3").unwrap().as_millis(), 3000);
        assert!(parse_wait("2h").is_err());
        assert!(parse_wait("soon").is_err());
    }

    #[test]
    fn tables_align_chinese_text_by_display_width() {
        let text = table(
            &["code", "name"],
            &[
                vec!["431322".into(), "新化县".into()],
                vec!["1".into(), "x".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "code    name");
        assert_eq!(lines[1], "431322  新化县");
    }

    #[test]
    fn counties_show_their_names() {
        assert_eq!(county("430703"), "430703 鼎城区");
        assert_eq!(county("999999"), "999999");
    }
}
