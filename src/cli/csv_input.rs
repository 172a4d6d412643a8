//! Reading CSV files the way county offices produce them: UTF-8 with or without a byte-order
//! mark, or GBK from Chinese office software (detected, or forced with `--encoding gbk`).

use std::path::Path;

use anyhow::{Context, bail};
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

/// A decoded CSV file: header names and each record with its physical line number.
#[derive(Debug)]
pub struct CsvFile {
    /// Header names, trimmed.
    pub headers: Vec<String>,
    /// `(line, cells)`; the header is line 1.
    pub records: Vec<(u32, Vec<String>)>,
    /// What the bytes were decoded as.
    pub decoded_as: &'static str,
    /// The raw bytes' SHA-256, hex: identifies the file (e.g. to make a sweep resumable).
    pub digest: String,
}

/// Reads and decodes `path`.
pub fn read(path: &Path, encoding: Encoding) -> anyhow::Result<CsvFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let (text, decoded_as) =
        decode(&bytes, encoding).with_context(|| format!("decoding {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers()?.iter().map(|h| h.trim().to_string()).collect();
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: malformed CSV", path.display()))?;
        let line = record.position().map(|p| p.line() as u32).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        records.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(CsvFile {
        headers,
        records,
        decoded_as,
        digest,
    })
}

fn decode(bytes: &[u8], encoding: Encoding) -> anyhow::Result<(String, &'static str)> {
    let without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match encoding {
        Encoding::Utf8 => match std::str::from_utf8(without_bom) {
            Ok(text) => Ok((text.to_string(), "UTF-8")),
            Err(error) => bail!("not valid UTF-8 ({error}); try --encoding gbk"),
        },
        Encoding::Gbk => gbk(bytes),
        Encoding::Auto => match std::str::from_utf8(without_bom) {
            Ok(text) => Ok((text.to_string(), "UTF-8")),
            Err(_) => gbk(bytes),
        },
    }
}

fn gbk(bytes: &[u8]) -> anyhow::Result<(String, &'static str)> {
    let (text, _, had_errors) = encoding_rs::GBK.decode(bytes);
    if had_errors {
        bail!("neither valid UTF-8 nor valid GBK");
    }
    Ok((text.into_owned(), "GBK"))
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
