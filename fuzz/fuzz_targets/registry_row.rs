//! Bytes → the registry import's reading of a CSV file (`csv_input::CsvReader`: encoding
//! detection, GBK decoding, the record parser with its line numbers and record limit) → the
//! header check and each row → `Person` (`domain::person_row`), as `hancha registry import`
//! does. The first byte chooses the encoding, a small record limit, and how many bytes each read
//! hands out.
//!
//! Invariants: nothing panics; reading the file whole and in small reads gives the same result;
//! records come in line order (non-decreasing) with trimmed cells and never all empty; the digest is the raw bytes'
//! SHA-256; an accepted row keeps its ID number and name; a refused row has a reason, none of
//! which depends on the name (beyond the name being valid) or holds a run of 5 or more digits
//! other than a valid division code (which names a place and may be quoted): so no ID number,
//! birth date or unknown code of the row. See FUZZING.md.
#![no_main]

use std::collections::HashMap;
use std::io::Read;

use hancha::csv_input::{CsvError, CsvReader, Decoded, Encoding, MAX_RECORD_BYTES, Record};
use hancha::domain::division::{CountyCode, TownshipCode, VillageCode};
use hancha::domain::person_row::{MAX_NAME_CHARS, check_header, person_from_columns};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let encoding = match selector % 3 {
        0 => Encoding::Auto,
        1 => Encoding::Utf8,
        _ => Encoding::Gbk,
    };
    let limit = if selector & 0x04 != 0 {
        64
    } else {
        MAX_RECORD_BYTES
    };
    let step = 1 + usize::from(selector >> 3);

    let whole = read(bytes, encoding, limit);
    let trickled = read(Trickle { bytes, step }, encoding, limit);
    assert_eq!(
        format!("{whole:?}"),
        format!("{trickled:?}"),
        "read whole and {step} bytes at a time"
    );
    let Ok(file) = whole else {
        return;
    };
    if let Some(digest) = &file.digest {
        assert_eq!(*digest, hex(&Sha256::digest(bytes)));
    }
    match encoding {
        Encoding::Utf8 => assert_eq!(file.decoded_as, Decoded::Utf8),
        Encoding::Gbk => assert_eq!(file.decoded_as, Decoded::Gbk),
        Encoding::Auto => {}
    }
    let mut previous_line = 0;
    for record in &file.records {
        // Not strictly increasing: a lone carriage return ends a record (csv_core) but not a
        // line (only line feeds are counted), so two records can share a line (see FUZZING.md).
        assert!(record.line >= previous_line, "records out of line order");
        previous_line = record.line;
        assert!(
            record.cells.iter().any(|cell| !cell.is_empty()),
            "an empty record"
        );
        assert!(
            record.cells.iter().all(|cell| cell.trim() == cell),
            "an untrimmed cell"
        );
    }

    let header_ok = check_header(file.headers.iter().map(String::as_str)).is_ok();
    let me = CountyCode::parse("430703").expect("鼎城区");
    for record in &file.records {
        if record.cells.len() != file.headers.len() {
            continue;
        }
        let columns: HashMap<String, String> = file
            .headers
            .iter()
            .cloned()
            .zip(record.cells.iter().cloned())
            .collect();
        match person_from_columns(&columns, me) {
            Ok(person) => {
                assert_eq!(
                    person.resident_id.as_str(),
                    columns["resident_id"].to_ascii_uppercase()
                );
                assert_eq!(person.name, columns["name"].trim());
            }
            Err(reasons) => {
                assert!(!reasons.is_empty(), "a refused row without a reason");
                if header_ok {
                    check_no_echo(&columns, &reasons, me);
                }
            }
        }
    }
});

/// What one reading of a file gives.
#[derive(Debug)]
struct File {
    headers: Vec<String>,
    records: Vec<Record>,
    decoded_as: Decoded,
    digest: Option<String>,
}

fn read(source: impl Read, encoding: Encoding, limit: usize) -> Result<File, String> {
    let read = || -> Result<File, CsvError> {
        let mut reader = CsvReader::with_max_record_bytes(source, encoding, limit)?;
        let headers = reader.headers().to_vec();
        let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
        Ok(File {
            headers,
            records,
            decoded_as: reader.decoded_as(),
            digest: reader.digest(),
        })
    };
    read().map_err(|error| error.to_string())
}

/// Reasons name neither the person nor a number of theirs: the same whatever the valid name,
/// and no run of 5 or more digits but a valid division code (a place, which may be named).
fn check_no_echo(columns: &HashMap<String, String>, reasons: &[String], me: CountyCode) {
    let name = columns.get("name").map_or("", |name| name.trim());
    let name_valid =
        !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control);
    if name_valid && name != "张三" {
        let mut renamed = columns.clone();
        renamed.insert("name".to_owned(), "张三".to_owned());
        let reasons_renamed = person_from_columns(&renamed, me).expect_err("refused for its name?");
        assert_eq!(
            reasons,
            reasons_renamed.as_slice(),
            "the reasons depend on the name"
        );
    }
    // Lengths, positions and line numbers have at most 4 digits (inputs are at most 8192
    // bytes); the code of this county or a row's valid township is a place, and may be named.
    for reason in reasons {
        for run in reason.split(|c: char| !c.is_ascii_digit()) {
            assert!(
                run.len() < 5 || is_division_code(run),
                "reason {reason:?} holds {run}, which is not a division code"
            );
        }
    }
}

fn is_division_code(cell: &str) -> bool {
    CountyCode::parse(cell).is_ok() || TownshipCode::parse(cell).is_ok() || VillageCode::parse(cell).is_ok()
}

/// A source that hands out at most `step` bytes per read, as a slow upload would.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.step.min(buffer.len()).min(self.bytes.len());
        buffer[..count].copy_from_slice(&self.bytes[..count]);
        self.bytes = &self.bytes[count..];
        Ok(count)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
