//! Reading CSV files the way county offices produce them, one record at a time: UTF-8 with or
//! without a byte-order mark, or GBK from Chinese office software (detected, or named by the
//! caller). Sweeps and registry imports read their files through it; nothing here knows where the
//! bytes come from (a file, an upload) or how a user names an encoding (the CLI maps its
//! `--encoding` flag to [`Encoding`]).
//!
//! Memory stays bounded whatever the file's size: raw and decoded bytes pass through fixed
//! buffers, and a record longer than [`MAX_RECORD_BYTES`], a cell longer than
//! [`MAX_CELL_BYTES`] or a record of more than [`MAX_CELLS`] cells is refused with its line, as
//! soon as the reader gets there: such a file cannot be one of ours, and reading on would only
//! cost time.

mod decode;
mod reader;
pub mod sweep;

pub use decode::DETECTION_PREFIX;
pub use reader::{CsvReader, Summary, open};

/// How a file's bytes are to be decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 when the file starts with a byte-order mark or its first [`DETECTION_PREFIX`] bytes
    /// are valid UTF-8, otherwise GBK.
    #[default]
    Auto,
    /// UTF-8 (a byte-order mark is skipped).
    Utf8,
    /// GBK / GB 18030, as saved by Chinese office software.
    Gbk,
}

/// What a file's bytes are being decoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    Utf8,
    Gbk,
}

impl Decoded {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Gbk => "GBK",
        }
    }
}

impl std::fmt::Display for Decoded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl From<Decoded> for Encoding {
    /// Reading a file again as what it was decoded as the first time.
    fn from(decoded: Decoded) -> Self {
        match decoded {
            Decoded::Utf8 => Self::Utf8,
            Decoded::Gbk => Self::Gbk,
        }
    }
}

/// The longest record accepted, in decoded bytes (quotes and separators included): a county's
/// row is a few hundred bytes, so anything near this is a broken file (an unclosed quote
/// swallowing the rest of it), refused before it fills memory.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The longest cell accepted, in decoded bytes: a county's longest value (a name, a certificate
/// number) is under 200 bytes, so a longer cell is a broken file (an unclosed quote, a binary
/// file), and it keeps every row small enough to travel to the node in one call.
pub const MAX_CELL_BYTES: usize = 4 * 1024;

/// The most cells a record may have: our files have a handful of columns (a registry file 16 at
/// most, a sweep file a few more that it ignores), so a line of more is not a CSV of ours.
pub const MAX_CELLS: usize = 256;

/// One record: the line it starts on and its cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The physical line a person sees in an editor (the header is line 1); a record with a
    /// quoted multi-line cell is numbered by its first line.
    pub line: u32,
    /// The cells, trimmed of surrounding white space.
    pub cells: Vec<String>,
}

/// Why a file cannot be read. Every problem found at a place in the file names its line, so a
/// caller can point the user at it; the wording leaves out how to name an encoding, which is the
/// caller's to add (see [`CsvError::line`]).
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not valid UTF-8 (line {line}); a file saved by Chinese office software may be GBK")]
    NotUtf8 { line: u32 },
    #[error("not valid GBK (line {line}); check how the file was saved")]
    NotGbk { line: u32 },
    #[error("neither UTF-8 nor GBK (line {line}); save it as UTF-8 and import again")]
    NeitherUtf8NorGbk { line: u32 },
    #[error("starts with a UTF-8 byte-order mark, so it is UTF-8, not GBK")]
    ByteOrderMarkButGbk,
    #[error("line {line}: a record longer than {limit} bytes (an unclosed quote?)")]
    RecordTooLong { line: u32, limit: usize },
    #[error("line {line}, column {column}: a cell longer than {limit} bytes (an unclosed quote?)")]
    CellTooLong { line: u32, column: usize, limit: usize },
    #[error("line {line}: more than {limit} cells (not a CSV file of ours?)")]
    TooManyCells { line: u32, limit: usize },
}

impl CsvError {
    /// The line the problem was found on, when it was found at a place in the file.
    pub fn line(&self) -> Option<u32> {
        match self {
            Self::NotUtf8 { line }
            | Self::NotGbk { line }
            | Self::NeitherUtf8NorGbk { line }
            | Self::RecordTooLong { line, .. }
            | Self::CellTooLong { line, .. }
            | Self::TooManyCells { line, .. } => Some(*line),
            Self::Io(_) | Self::ByteOrderMarkButGbk => None,
        }
    }
}
