//! The command line's side of reading CSV files: the `--encoding` flag, and error messages that
//! tell the user which flag to pass. The reading itself is [`crate::csv_input`].

use std::fs::File;
use std::path::Path;

use clap::ValueEnum;

use crate::csv_input::{self, CsvError, CsvReader};

/// How a file's bytes are decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// UTF-8 when the file starts as valid UTF-8, otherwise GBK.
    #[default]
    Auto,
    /// UTF-8 (a byte-order mark is skipped).
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK / GB 18030, as saved by Chinese office software.
    Gbk,
}

impl From<Encoding> for csv_input::Encoding {
    fn from(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Auto => Self::Auto,
            Encoding::Utf8 => Self::Utf8,
            Encoding::Gbk => Self::Gbk,
        }
    }
}

/// Opens `path` for reading record by record; errors are worded for the command line.
pub fn open(path: &Path, encoding: impl Into<csv_input::Encoding>) -> anyhow::Result<CsvReader<File>> {
    csv_input::open(path, encoding.into()).map_err(|error| explain(path, error))
}

/// `error` as the command line reports it: the file named, and the flag that may help.
pub fn explain(path: &Path, error: CsvError) -> anyhow::Error {
    let advice = match &error {
        CsvError::Io(_) => return anyhow::anyhow!("reading {}: {error}", path.display()),
        CsvError::NotUtf8 { .. } => ": try --encoding gbk",
        CsvError::ByteOrderMarkButGbk => ": drop --encoding gbk",
        CsvError::NotGbk { .. }
        | CsvError::NeitherUtf8NorGbk { .. }
        | CsvError::RecordTooLong { .. }
        | CsvError::CellTooLong { .. }
        | CsvError::TooManyCells { .. } => "",
    };
    anyhow::anyhow!("{error}{advice}")
}
