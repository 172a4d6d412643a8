//! The byte stream under the CSV parser: raw bytes in, UTF-8 out, in bounded buffers, with the
//! encoding chosen from the file's first bytes and the raw bytes' SHA-256 kept on the way.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::{CsvError, Decoded, Encoding};

/// How many raw bytes the encoding is guessed from, and the size of each raw read. A county's
/// file names people in its first rows, so a GBK file shows itself long before this.
pub const DETECTION_PREFIX: usize = 64 * 1024;

/// Decoded bytes produced per step: bounds the reader's memory whatever the file's size.
const DECODED_CHUNK: usize = 64 * 1024;

const UTF_8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Which error a malformed byte sequence becomes: it depends on whether the encoding was named or
/// guessed, because the advice differs.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    NotUtf8,
    NotGbk,
    NeitherUtf8NorGbk,
}

/// Raw bytes from `source`, decoded to UTF-8 a chunk at a time.
pub struct DecodingSource<R> {
    /// Where the raw bytes come from: a file, an upload, a test's byte slice.
    source: R,
    /// Raw bytes read but not yet decoded: `raw[raw_start..raw_end]`.
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    /// The source has reported its end.
    source_ended: bool,
    /// The decoder has been told that no input follows; it must not be called again.
    decoder_finished: bool,
    /// Strict (no replacement characters): a byte sequence that is not in the encoding is refused
    /// rather than imported as a garbled name.
    decoder: encoding_rs::Decoder,
    decoded_as: Decoded,
    refusal: Refusal,
    /// Decoded bytes not yet consumed by the parser: `decoded[decoded_start..decoded_end]`.
    decoded: Vec<u8>,
    decoded_start: usize,
    decoded_end: usize,
    /// Line feeds among the raw bytes decoded so far, to name the line of a decoding error. A
    /// line feed byte is a line feed in UTF-8 and in GBK alike (never part of a wider character).
    raw_line_feeds: u32,
    /// Counts the line ends in the raw bytes, across reads.
    raw_line_ends: LineEnds,
    /// Every raw byte read, byte-order mark included: identifies the file.
    hasher: Sha256,
}

impl<R: Read> DecodingSource<R> {
    /// Reads the first [`DETECTION_PREFIX`] bytes and chooses how to decode the rest: a UTF-8
    /// byte-order mark means UTF-8; otherwise `Auto` takes UTF-8 when the prefix is valid UTF-8,
    /// else GBK (decoded as GB 18030, its superset).
    pub fn new(mut source: R, encoding: Encoding) -> Result<Self, CsvError> {
        let mut raw = vec![0; DETECTION_PREFIX];
        let mut raw_end = 0;
        let mut source_ended = false;
        while raw_end < raw.len() {
            match source.read(&mut raw[raw_end..]) {
                Ok(0) => {
                    source_ended = true;
                    break;
                }
                Ok(read) => raw_end += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(CsvError::Io(error)),
            }
        }
        let prefix = &raw[..raw_end];
        let mut hasher = Sha256::new();
        hasher.update(prefix);
        let has_bom = prefix.starts_with(UTF_8_BOM);
        let (decoded_as, refusal) = match encoding {
            Encoding::Gbk if has_bom => return Err(CsvError::ByteOrderMarkButGbk),
            Encoding::Gbk => (Decoded::Gbk, Refusal::NotGbk),
            Encoding::Utf8 => (Decoded::Utf8, Refusal::NotUtf8),
            Encoding::Auto if has_bom || looks_like_utf8(prefix, source_ended) => {
                (Decoded::Utf8, Refusal::NotUtf8)
            }
            Encoding::Auto => (Decoded::Gbk, Refusal::NeitherUtf8NorGbk),
        };
        let decoder = match decoded_as {
            Decoded::Utf8 => encoding_rs::UTF_8.new_decoder_without_bom_handling(),
            Decoded::Gbk => encoding_rs::GBK.new_decoder_without_bom_handling(),
        };
        Ok(Self {
            source,
            raw,
            raw_start: if has_bom { UTF_8_BOM.len() } else { 0 },
            raw_end,
            source_ended,
            decoder_finished: false,
            decoder,
            decoded_as,
            refusal,
            decoded: vec![0; DECODED_CHUNK],
            decoded_start: 0,
            decoded_end: 0,
            raw_line_feeds: 0,
            raw_line_ends: LineEnds::default(),
            hasher,
        })
    }

    pub fn decoded_as(&self) -> Decoded {
        self.decoded_as
    }

    /// The raw bytes' SHA-256 (hex), once the source has been read to its end.
    pub fn digest(&self) -> Option<String> {
        self.source_ended
            .then(|| hex::encode(self.hasher.clone().finalize()))
    }

    /// Reads whatever the source still holds (nothing, once every record has been read) and
    /// returns the raw bytes' SHA-256 (hex).
    pub fn digest_to_end(&mut self) -> Result<String, CsvError> {
        while !self.source_ended {
            self.read_raw()?;
        }
        Ok(hex::encode(self.hasher.clone().finalize()))
    }

    /// The next decoded bytes; empty at the end of the input.
    pub fn fill(&mut self) -> Result<&[u8], CsvError> {
        while self.decoded_start == self.decoded_end && !self.decoder_finished {
            if self.raw_start == self.raw_end && !self.source_ended {
                self.read_raw()?;
            }
            self.decode_step()?;
        }
        Ok(&self.decoded[self.decoded_start..self.decoded_end])
    }

    /// Marks `count` bytes of what [`fill`](Self::fill) returned as used.
    pub fn consume(&mut self, count: usize) {
        self.decoded_start = (self.decoded_start + count).min(self.decoded_end);
    }

    fn read_raw(&mut self) -> Result<(), CsvError> {
        self.raw_start = 0;
        self.raw_end = 0;
        loop {
            match self.source.read(&mut self.raw) {
                Ok(0) => {
                    self.source_ended = true;
                    return Ok(());
                }
                Ok(read) => {
                    self.hasher.update(&self.raw[..read]);
                    self.raw_end = read;
                    return Ok(());
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(CsvError::Io(error)),
            }
        }
    }

    fn decode_step(&mut self) -> Result<(), CsvError> {
        let input = &self.raw[self.raw_start..self.raw_end];
        let last = self.source_ended;
        let (result, read, written) =
            self.decoder
                .decode_to_utf8_without_replacement(input, &mut self.decoded, last);
        if let encoding_rs::DecoderResult::Malformed(bad, after) = result {
            // The malformed sequence ends `after` bytes before what was read; a sequence begun in
            // an earlier chunk has its line feeds (none: they end a sequence) counted already.
            let before_bad = read.saturating_sub(usize::from(bad) + usize::from(after));
            let mut ends = self.raw_line_ends;
            let line = self
                .raw_line_feeds
                .saturating_add(ends.count(&input[..before_bad]))
                .saturating_add(1);
            return Err(match self.refusal {
                Refusal::NotUtf8 => CsvError::NotUtf8 { line },
                Refusal::NotGbk => CsvError::NotGbk { line },
                Refusal::NeitherUtf8NorGbk => CsvError::NeitherUtf8NorGbk { line },
            });
        }
        self.raw_line_feeds = self
            .raw_line_feeds
            .saturating_add(self.raw_line_ends.count(&input[..read]));
        self.raw_start += read;
        self.decoded_start = 0;
        self.decoded_end = written;
        if last && result == encoding_rs::DecoderResult::InputEmpty {
            self.decoder_finished = true;
        }
        Ok(())
    }
}

/// Whether a file's first bytes read as UTF-8. A character cut by the end of the prefix counts
/// as valid when more of the file follows.
fn looks_like_utf8(prefix: &[u8], whole_file: bool) -> bool {
    match std::str::from_utf8(prefix) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none() && !whole_file,
    }
}

/// Counts line ends as a person sees them in an editor: `\n`, `\r\n` and a lone `\r` (files saved
/// with old Mac line endings) each end one line, as each ends a record for the CSV parser. It
/// remembers whether the last byte counted was a `\r`, so a `\r\n` split between two reads
/// counts once.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineEnds {
    /// The last byte counted was a `\r`.
    after_cr: bool,
}

impl LineEnds {
    /// The line ends in `bytes`, which follow the bytes counted so far (saturating: a line
    /// number past `u32::MAX` is not something a person looks up).
    pub fn count(&mut self, bytes: &[u8]) -> u32 {
        let mut lines: u64 = 0;
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' => lines += 1,
                b'\r' => {
                    lines += 1;
                    self.after_cr = true;
                }
                _ => self.after_cr = false,
            }
        }
        u32::try_from(lines).unwrap_or(u32::MAX)
    }
}
