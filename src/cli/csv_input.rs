//! Reading CSV files the way county offices produce them: UTF-8 with or without a byte-order
//! mark, or GBK from Chinese office software (detected, or forced with `--encoding gbk`).

use std::path::Path;

use anyhow::Context;
use clap::ValueEnum;

/// How a file's bytes are decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// UTF-8 when the bytes are valid UTF-8, otherwise GBK.
    #[default]
    Auto,
    /// UTF-8 (a byte-order mark is skipped).
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK / GB 18030, as saved by Chinese office software.
    Gbk,
}

/// One record: its physical line (the header is line 1) and its trimmed cells.
pub type Record = (u32, Vec<String>);

/// A decoded CSV file: header names and each record with its physical line number.
#[derive(Debug)]
pub struct CsvFile {
    /// Header names, trimmed and in ASCII lower case.
    pub headers: Vec<String>,
    /// `(line, cells)`: the physical line a person sees in an editor (the header is line 1) and
    /// the trimmed cells. Records whose cells are all empty (a spreadsheet's trailing rows) are
    /// left out.
    pub records: Vec<Record>,
    /// What the bytes were decoded as: [`UTF_8`] or [`GBK`].
    pub decoded_as: &'static str,
    /// The raw bytes' SHA-256, hex: identifies the file (e.g. to make a sweep resumable).
    pub digest: String,
}

/// Reads and decodes `path`.
pub fn read(path: &Path, encoding: Encoding) -> anyhow::Result<CsvFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let (text, decoded_as) = decode(&bytes, encoding).map_err(|error| anyhow::anyhow!(error))?;
    let (headers, records) = parse_csv(&text).map_err(|error| anyhow::anyhow!(error))?;
    Ok(CsvFile {
        headers,
        records,
        decoded_as,
        digest,
    })
}

pub const UTF_8: &str = "UTF-8";
pub const GBK: &str = "GBK";
pub(crate) const UTF_8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The file's text, and what it was decoded as. A UTF-8 byte-order mark is dropped; GBK is
/// decoded strictly (as GB 18030, its superset), so that a file in some third encoding is refused
/// rather than imported as garbled names.
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Result<(String, &'static str), String> {
    let without_bom = bytes.strip_prefix(UTF_8_BOM);
    let utf8 = || {
        let text = without_bom.unwrap_or(bytes);
        std::str::from_utf8(text).map(str::to_owned).map_err(|error| {
            let line = 1 + text[..error.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            format!(
                "not valid UTF-8 (line {line}); a file saved by Chinese office software may be GBK: \
                 try --encoding gbk"
            )
        })
    };
    let gbk = || {
        encoding_rs::GBK
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|text| text.into_owned())
    };
    match encoding {
        Encoding::Utf8 => utf8().map(|text| (text, UTF_8)),
        Encoding::Gbk if without_bom.is_some() => Err(
            "starts with a UTF-8 byte-order mark, so it is UTF-8, not GBK: drop --encoding gbk".to_owned(),
        ),
        Encoding::Gbk => gbk()
            .map(|text| (text, GBK))
            .ok_or_else(|| "not valid GBK; check how the file was saved".to_owned()),
        // A byte-order mark says UTF-8, so a decoding error is reported as such.
        Encoding::Auto if without_bom.is_some() => utf8().map(|text| (text, UTF_8)),
        Encoding::Auto => match utf8() {
            Ok(text) => Ok((text, UTF_8)),
            Err(_) => gbk()
                .map(|text| (text, GBK))
                .ok_or_else(|| "neither UTF-8 nor GBK; save it as UTF-8 and import again".to_owned()),
        },
    }
}

/// The header names (trimmed, ASCII lower case) and each record with its physical line (the
/// header is line 1). Records whose cells are all empty (a spreadsheet's trailing rows) are left
/// out.
pub(crate) fn parse_csv(text: &str) -> Result<(Vec<String>, Vec<Record>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|error| format!("malformed CSV header: {error}"))?
        .iter()
        .map(|name| name.to_ascii_lowercase())
        .collect();
    let mut records = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|error| format!("malformed CSV: {error}"))?
    {
        if record.iter().all(str::is_empty) {
            continue;
        }
        let line = record
            .position()
            .map_or(0, |position| physical_line(text, position));
        records.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok((headers, records))
}

/// The line a record starts on. The csv reader positions a record where it began reading, which
/// is before any blank lines it skipped; those are counted here so that the line is the one a
/// person sees in an editor.
fn physical_line(text: &str, position: &csv::Position) -> u32 {
    let start = usize::try_from(position.byte())
        .unwrap_or(usize::MAX)
        .min(text.len());
    let blank_lines = text.as_bytes()[start..]
        .iter()
        .take_while(|&&byte| byte == b'\n' || byte == b'\r')
        .filter(|&&byte| byte == b'\n')
        .count();
    u32::try_from(position.line() + blank_lines as u64).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_is_detected_and_a_bom_is_skipped() {
        let (encoded, _, _) = encoding_rs::GBK.encode("姓名\n张三\n");
        assert_eq!(
            decode(&encoded, Encoding::Auto).unwrap(),
            ("姓名\n张三\n".to_string(), "GBK")
        );
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), "姓名\n".as_bytes()].concat();
        assert_eq!(
            decode(&with_bom, Encoding::Auto).unwrap(),
            ("姓名\n".to_string(), "UTF-8")
        );
        assert!(decode(&encoded, Encoding::Utf8).is_err());
    }
}
