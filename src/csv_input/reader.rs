//! Records from the decoded stream, each with the physical line it starts on.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use csv_core::ReadRecordResult;

use super::decode::{DecodingSource, LineEnds};
use super::{CsvError, Decoded, Encoding, MAX_CELL_BYTES, MAX_CELLS, MAX_RECORD_BYTES, Record};

/// Opens `path` and reads its header; the records follow from [`CsvReader::next_record`].
pub fn open(path: &Path, encoding: Encoding) -> Result<CsvReader<File>, CsvError> {
    CsvReader::new(File::open(path)?, encoding)
}

/// What a whole reading of a file found, for a caller that needs it before acting on any record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Records that are not all empty.
    pub records: u64,
    /// The raw bytes' SHA-256, hex: identifies the file (e.g. to make a sweep resumable).
    pub digest: String,
}

/// A CSV file read record by record from any [`Read`]: headers trimmed and in ASCII lower case,
/// cells trimmed, records whose cells are all empty (a spreadsheet's trailing rows) left out.
pub struct CsvReader<R> {
    /// Decoded bytes, a bounded chunk at a time.
    source: DecodingSource<R>,
    /// The CSV state machine; fed by hand (rather than through `csv::Reader`) so that every byte
    /// it consumes is seen here, which is how each record learns its line.
    parser: csv_core::Reader,
    /// The physical line of the next byte the parser will see.
    next_line: u32,
    /// Counts the line ends the parser consumes (`\n`, `\r\n`, a lone `\r`), across reads.
    line_ends: LineEnds,
    headers: Vec<String>,
    /// The current record's unquoted cell bytes, and where each cell ends in them; reused from
    /// record to record, grown up to the record limit.
    cell_bytes: Vec<u8>,
    cell_ends: Vec<usize>,
    /// Decoded bytes beyond which a record is refused.
    max_record_bytes: usize,
    /// Decoded bytes beyond which a cell is refused: [`MAX_CELL_BYTES`], or less under a
    /// smaller record limit.
    max_cell_bytes: usize,
    /// An error was returned: the iterator ends rather than resuming mid-record.
    failed: bool,
}

impl<R: Read> CsvReader<R> {
    /// Chooses the encoding (see [`Encoding`]) and reads the header.
    pub fn new(source: R, encoding: Encoding) -> Result<Self, CsvError> {
        Self::with_max_record_bytes(source, encoding, MAX_RECORD_BYTES)
    }

    /// As [`new`](Self::new), refusing records longer than `max_record_bytes` decoded bytes (and
    /// cells longer than that or [`MAX_CELL_BYTES`], whichever is less).
    pub fn with_max_record_bytes(
        source: R,
        encoding: Encoding,
        max_record_bytes: usize,
    ) -> Result<Self, CsvError> {
        let mut reader = Self {
            source: DecodingSource::new(source, encoding)?,
            parser: csv_core::Reader::new(),
            next_line: 1,
            line_ends: LineEnds::default(),
            headers: Vec::new(),
            cell_bytes: vec![0; 4 * 1024],
            cell_ends: vec![0; 64],
            max_record_bytes,
            max_cell_bytes: max_record_bytes.min(MAX_CELL_BYTES),
            failed: false,
        };
        if let Some(header) = reader.read_record()? {
            reader.headers = header
                .cells
                .into_iter()
                .map(|name| name.to_ascii_lowercase())
                .collect();
        }
        Ok(reader)
    }

    /// The header's names, trimmed and in ASCII lower case; empty for an empty file.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// What the bytes are decoded as.
    pub fn decoded_as(&self) -> Decoded {
        self.source.decoded_as()
    }

    /// The raw bytes' SHA-256 (hex), once the source has been read to its end: at the latest
    /// when every record has been read.
    pub fn digest(&self) -> Option<String> {
        self.source.digest()
    }

    /// The next record that is not all empty, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, CsvError> {
        while let Some(record) = self.read_record()? {
            if record.cells.iter().any(|cell| !cell.is_empty()) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Reads the remaining records: how many there were, and the file's digest.
    pub fn summarize(mut self) -> Result<Summary, CsvError> {
        let mut records = 0;
        while self.next_record()?.is_some() {
            records += 1;
        }
        Ok(Summary {
            records,
            digest: self.source.digest_to_end()?,
        })
    }

    /// The next record, empty or not.
    fn read_record(&mut self) -> Result<Option<Record>, CsvError> {
        // Blank lines between records are skipped here rather than by the parser, so that the
        // record's line is the one its first byte is on.
        loop {
            let input = self.source.fill()?;
            if input.is_empty() {
                return Ok(None);
            }
            let blank = input
                .iter()
                .take_while(|&&byte| byte == b'\n' || byte == b'\r')
                .count();
            let any_left = blank < input.len();
            self.next_line = self
                .next_line
                .saturating_add(self.line_ends.count(&input[..blank]));
            self.source.consume(blank);
            if any_left {
                break;
            }
        }
        let line = self.next_line;
        let (mut bytes_written, mut cells_ended, mut bytes_read) = (0, 0, 0);
        loop {
            let input = self.source.fill()?;
            let (result, read, written, ended) = self.parser.read_record(
                input,
                &mut self.cell_bytes[bytes_written..],
                &mut self.cell_ends[cells_ended..],
            );
            self.next_line = self
                .next_line
                .saturating_add(self.line_ends.count(&input[..read]));
            self.source.consume(read);
            bytes_read += read;
            bytes_written += written;
            cells_ended += ended;
            self.check_bounds(line, bytes_read, bytes_written, cells_ended)?;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.cell_bytes.resize(self.cell_bytes.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.cell_ends.resize(self.cell_ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    return Ok(Some(Record {
                        line,
                        cells: self.cells(bytes_written, cells_ended),
                    }));
                }
                // Only after a record has been returned for the last bytes; nothing is lost.
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    /// Refuses the record being read as soon as it is too long, has a cell too long, or has too
    /// many cells: checked after every step of the parser, so a file of one endless line or
    /// cell stops within the first megabyte.
    fn check_bounds(
        &self,
        line: u32,
        bytes_read: usize,
        bytes_written: usize,
        cells_ended: usize,
    ) -> Result<(), CsvError> {
        if bytes_read > self.max_record_bytes {
            return Err(CsvError::RecordTooLong {
                line,
                limit: self.max_record_bytes,
            });
        }
        if cells_ended > MAX_CELLS {
            return Err(CsvError::TooManyCells {
                line,
                limit: MAX_CELLS,
            });
        }
        // Every cell but the one being read has ended; each is measured once it ends, the open
        // one as it grows.
        let mut start = 0;
        let ends = self.cell_ends[..cells_ended].iter().copied();
        for (index, end) in ends.chain(std::iter::once(bytes_written)).enumerate() {
            if end.saturating_sub(start) > self.max_cell_bytes {
                return Err(CsvError::CellTooLong {
                    line,
                    column: index + 1,
                    limit: self.max_cell_bytes,
                });
            }
            start = end;
        }
        Ok(())
    }

    fn cells(&self, bytes_written: usize, cells_ended: usize) -> Vec<String> {
        let mut start = 0;
        self.cell_ends[..cells_ended]
            .iter()
            .map(|&end| {
                let bytes = self.cell_bytes[..bytes_written]
                    .get(start..end)
                    .unwrap_or_default();
                start = end;
                // The input is UTF-8 and the parser only removes ASCII quotes and separators, so
                // nothing is replaced here.
                String::from_utf8_lossy(bytes).trim().to_owned()
            })
            .collect()
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<Record, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_record().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
