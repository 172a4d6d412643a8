//! The printed 催办通知书 and the township office's list of them.
//!
//! One self-contained HTML page per reminder, laid out for A4 (`@page { size: A4 }`): no scripts,
//! no external assets (a Content-Security-Policy forbids loading any), the system's CJK font.
//! HTML rather than PDF because a PDF would have to embed a CJK font (Noto Sans CJK is 16 MB)
//! to print the same everywhere, while every office machine already has a browser and a CJK
//! font to print from. Every value interpolated into the page is escaped ([`escape`]).
//!
//! The list is CSV in UTF-8 with a byte-order mark, which Excel on Chinese Windows needs to read
//! UTF-8 at all; ID numbers are written `="…"` so that Excel keeps all 18 characters instead of
//! rounding them to a number, and any other cell that a spreadsheet would take for a formula is
//! neutralised with a leading `'`.

use chrono::NaiveDate;

use crate::domain::division::{CountyCode, address_name};
use crate::domain::reminder::MissingCertificate;
use crate::domain::resident_id::ResidentId;
use crate::present::display;
use crate::proto::operator as pb;

/// The name of a reminder's page: its reference, which names nobody. Anything but letters,
/// digits and `-` is dropped, so a reference can never leave the output directory.
pub fn file_name(reminder: &pb::Reminder) -> String {
    let safe: String = reminder
        .reference
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{safe}.html")
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `2026年12月31日`; the text itself when it is not a date.
fn chinese_date(text: &str) -> String {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|day| day.format("%Y年%-m月%-d日").to_string())
        .unwrap_or_else(|_| text.to_string())
}

/// The full name of a county (`湖南省娄底市新化县`), or its code when unknown.
fn county_full_name(code: &str) -> String {
    address_name(code)
        .or_else(|| CountyCode::parse(code).ok().map(|c| c.name().to_string()))
        .unwrap_or_else(|| code.to_string())
}

/// The office she is to report to: the township (街道, 镇, 乡) of the issuing county, or the
/// county's own office when the registry has no township for her.
pub fn office(reminder: &pb::Reminder, county: &str) -> String {
    let county = county_full_name(county);
    if reminder.township_name.is_empty() {
        format!("{county}流动人口服务窗口")
    } else {
        format!("{county}{}", reminder.township_name)
    }
}

/// The ID number as printed on the notice: masked (`4313**********002X`), enough for the
/// office to match the paper with its list, too little to identify her if the paper is lost.
fn masked_id(text: &str) -> String {
    ResidentId::parse(text)
        .map(|id| id.masked())
        .unwrap_or_else(|_| "*".repeat(18))
}

/// The printable page of one reminder issued by `county`.
pub fn html(reminder: &pb::Reminder, county: &str) -> String {
    let missing = MissingCertificate::parse(&reminder.missing)
        .map_or("尚未提交有效的婚育证明", MissingCertificate::label_zh);
    let origin = county_full_name(&reminder.origin_county);
    let office = office(reminder, county);
    let issued_on = chinese_date(&display::date(reminder.issued_at.as_ref()));
    let deadline = chinese_date(&reminder.deadline);
    let reference = escape(&reminder.reference);
    let name = escape(&reminder.name);
    let (origin, office, missing) = (escape(&origin), escape(&office), escape(missing));
    let masked = escape(&masked_id(&reminder.resident_id));
    let residence = escape(&if reminder.township_name.is_empty() {
        county_full_name(county)
    } else {
        format!("{}{}", county_full_name(county), reminder.township_name)
    });
    let (issued_on, deadline) = (escape(&issued_on), escape(&deadline));
    format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>催办通知书 {reference}</title>
<style>
@page {{ size: A4; margin: 25mm 22mm; }}
html {{ font-family: "Noto Serif CJK SC", "Source Han Serif SC", "SimSun", "Songti SC", "Noto Sans CJK SC", serif;
       font-size: 12pt; line-height: 1.9; color: #000; background: #fff; }}
body {{ margin: 0 auto; max-width: 166mm; }}
@media screen {{ body {{ padding: 15mm 10mm; }} }}
@media print {{ body {{ max-width: none; }} }}
h1 {{ text-align: center; font-size: 22pt; letter-spacing: 0.4em; margin: 0 0 2mm; }}
.reference {{ text-align: right; margin: 0 0 6mm; }}
p {{ margin: 0 0 3mm; text-indent: 2em; }}
p.addressee, p.reference {{ text-indent: 0; }}
table {{ border-collapse: collapse; width: 100%; margin: 2mm 0 5mm; break-inside: avoid; }}
th, td {{ border: 1px solid #000; padding: 1.5mm 3mm; text-align: left; font-weight: normal; }}
th {{ width: 28%; }}
ol {{ margin: 0 0 5mm 2em; padding: 0; break-inside: avoid; }}
.deadline {{ font-weight: bold; }}
footer {{ margin-top: 14mm; text-align: right; break-inside: avoid; }}
footer p {{ text-indent: 0; margin: 0; }}
.seal {{ margin-top: 4mm; color: #444; }}
</style>
</head>
<body>
<main>
<h1>催办通知书</h1>
<p class="reference">编号：<span id="reference">{reference}</span></p>
<p class="addressee"><span id="name">{name}</span>：</p>
<p>根据《流动人口计划生育工作条例》第八条，育龄妇女应当自到达现居住地之日起三十日内提交婚育证明。经核查，您<span id="missing">{missing}</span>，请按期办理。</p>
<table>
<tr><th scope="row">姓名</th><td>{name}</td></tr>
<tr><th scope="row">公民身份号码</th><td>{masked}</td></tr>
<tr><th scope="row">户籍地</th><td id="origin">{origin}</td></tr>
<tr><th scope="row">现居住地</th><td>{residence}</td></tr>
</table>
<p>请于<span class="deadline" id="deadline">{deadline}</span>前，携带下列材料到<span id="office">{office}</span>办理婚育证明查验手续：</p>
<ol id="bring">
<li>户籍地（{origin}）出具的婚育证明（有效期三年，已过期的请向户籍地申请换发）；</li>
<li>本人居民身份证；</li>
<li>已婚的，带结婚证。</li>
</ol>
<p>办理时请出示本通知书。</p>
<footer>
<p id="issuer">{office}</p>
<p id="issued-on">{issued_on}</p>
<p class="seal">（盖章）</p>
</footer>
</main>
</body>
</html>
"#
    )
}

/// The header of the office's list.
pub const CSV_HEADER: [&str; 10] = [
    "编号",
    "姓名",
    "公民身份号码",
    "乡镇（街道）代码",
    "乡镇（街道）",
    "户籍地代码",
    "户籍地",
    "原因",
    "截止日期",
    "文件名",
];

/// The office's list of `reminders`: UTF-8 with a byte-order mark, one row per reminder, in the
/// order given.
pub fn csv(reminders: &[pb::Reminder]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = "\u{FEFF}".as_bytes().to_vec();
    {
        let mut writer = csv::Writer::from_writer(&mut bytes);
        writer.write_record(CSV_HEADER)?;
        for reminder in reminders {
            let missing =
                MissingCertificate::parse(&reminder.missing).map_or("", MissingCertificate::label_zh);
            writer.write_record([
                cell(&reminder.reference),
                cell(&reminder.name),
                format!("=\"{}\"", id_digits(&reminder.resident_id)),
                cell(&reminder.township),
                cell(&reminder.township_name),
                cell(&reminder.origin_county),
                cell(&county_full_name(&reminder.origin_county)),
                cell(missing),
                cell(&reminder.deadline),
                cell(&file_name(reminder)),
            ])?;
        }
        writer.flush()?;
    }
    Ok(bytes)
}

/// A cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a leading `'`.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

/// The ID number's characters that may appear inside `="…"`: digits and `X` only.
fn id_digits(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_digit() || *c == 'X').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reminder(name: &str) -> pb::Reminder {
        pb::Reminder {
            reference: "430703-2026Q4-000017".into(),
            name: name.into(),
            resident_id: "11010519491231002X".into(),
            township: "430703001".into(),
            township_name: "玉霞街道".into(),
            origin_county: "431322".into(),
            origin_county_name: "新化县".into(),
            missing: "expired".into(),
            issued_at: None,
            issued_by: "loopback".into(),
            deadline: "2026-12-31".into(),
            issued_now: true,
        }
    }

    #[test]
    fn everything_interpolated_is_escaped() {
        let page = html(&reminder("<script>alert('x')</script>&"), "430703");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"));
    }

    #[test]
    fn the_page_prints_on_a4_and_loads_nothing() {
        let page = html(&reminder("王芳"), "430703");
        assert!(page.contains("@page { size: A4;"));
        assert!(page.contains("default-src 'none'"));
        for forbidden in ["<script", "src=", "href=", "url(", "@import"] {
            assert!(!page.contains(forbidden), "{forbidden}");
        }
        assert!(page.contains("2026年12月31日"));
        assert!(page.contains("湖南省常德市鼎城区玉霞街道"));
    }

    #[test]
    fn file_names_are_the_reference_and_never_a_path() {
        let mut evil = reminder("王芳");
        evil.reference = "../../etc/passwd".into();
        assert_eq!(file_name(&evil), "etcpasswd.html");
        assert_eq!(file_name(&reminder("王芳")), "430703-2026Q4-000017.html");
    }

    #[test]
    fn the_list_has_a_byte_order_mark_keeps_id_numbers_and_runs_no_formula() {
        let bytes = csv(&[reminder("=HYPERLINK(\"x\")")]).unwrap();
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "'=HYPERLINK(\"x\")");
        assert_eq!(&row[2], "=\"11010519491231002X\"");
        assert_eq!(&row[9], "430703-2026Q4-000017.html");
    }
}
