use std::io::Read;

use super::super::{CsvError, DETECTION_PREFIX, Decoded, Encoding, MAX_CELL_BYTES, MAX_CELLS, Record};
use super::CsvReader;

const UTF_8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A source that hands out at most `step` bytes per read, as a slow upload or pipe would: every
/// boundary (inside a character, between `\r` and `\n`, inside a quoted cell) gets crossed.
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

/// Headers, records and encoding of `bytes`, read whole and a byte at a time (which must agree).
fn read(bytes: &[u8], encoding: Encoding) -> Result<(Vec<String>, Vec<Record>, Decoded), CsvError> {
    let read_from = |source: Box<dyn Read + '_>| {
        let mut reader = CsvReader::new(source, encoding)?;
        let headers = reader.headers().to_vec();
        let decoded_as = reader.decoded_as();
        let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
        Ok::<_, CsvError>((headers, records, decoded_as))
    };
    let whole = read_from(Box::new(bytes));
    let trickled = read_from(Box::new(Trickle { bytes, step: 1 }));
    assert_eq!(
        format!("{whole:?}"),
        format!("{trickled:?}"),
        "read whole and a byte at a time"
    );
    whole
}

fn lines_of(text: &str) -> Vec<u32> {
    let (_, records, _) = read(text.as_bytes(), Encoding::Auto).unwrap();
    records.iter().map(|record| record.line).collect()
}

fn cells_of(text: &str) -> Vec<Vec<String>> {
    let (_, records, _) = read(text.as_bytes(), Encoding::Auto).unwrap();
    records.into_iter().map(|record| record.cells).collect()
}

fn error_of(bytes: &[u8], encoding: Encoding) -> String {
    read(bytes, encoding).unwrap_err().to_string()
}

#[test]
fn records_carry_the_line_a_person_sees() {
    assert_eq!(lines_of("a,b\n1,2\n3,4\n"), [2, 3]);
    assert_eq!(lines_of("a,b\r\n\r\n1,2\r\n\r\n\r\n3,4\r\n"), [3, 6]);
    assert_eq!(
        lines_of("\n\na,b\n1,2"),
        [4],
        "blank lines before the header count"
    );
}

#[test]
fn old_mac_line_endings_end_lines_too() {
    // a lone carriage return ends a record and a line (the trickled read also splits every
    // \r\n in two, which still counts once)
    assert_eq!(lines_of("a,b\r1,2\r3,4\r"), [2, 3]);
    assert_eq!(lines_of("a,b\r\n1,2\r3,4\r\n\r5,6"), [2, 3, 5]);
}

#[test]
fn a_quoted_cell_over_several_lines_is_numbered_by_its_first_line() {
    assert_eq!(lines_of("a,b\n\"multi\nline\",2\n3,4\n"), [2, 4]);
    assert_eq!(lines_of("a,b\r\n1,\"x\r\n\r\ny\"\r\n5,6\r\n"), [2, 5]);
    assert_eq!(
        cells_of("a,b\n\"multi\nline\",\"say \"\"hi\"\"\"\n"),
        [["multi\nline", "say \"hi\""]]
    );
}

#[test]
fn blank_rows_are_left_out_and_cells_trimmed() {
    assert_eq!(
        lines_of("a,b\n1,2\n,\n \t, \n5,6"),
        [2, 5],
        "empty rows are left out"
    );
    assert_eq!(cells_of("a,b\n 张三 ,\u{3000}2\n"), [["张三", "2"]]);
    assert_eq!(cells_of("a,b\n1\n1,2,3\n"), [vec!["1"], vec!["1", "2", "3"]]);
}

#[test]
fn headers_are_trimmed_and_lower_cased() {
    let (headers, records, _) = read(b" Resident_ID ,NAME\n", Encoding::Auto).unwrap();
    assert_eq!(headers, ["resident_id", "name"]);
    assert!(records.is_empty());
    let (headers, _, _) = read(b"", Encoding::Auto).unwrap();
    assert!(headers.is_empty(), "an empty file has no header");
}

#[test]
fn a_byte_order_mark_is_skipped_and_means_utf8() {
    let with_bom = [UTF_8_BOM, "姓名\n张三\n".as_bytes()].concat();
    let (headers, records, decoded_as) = read(&with_bom, Encoding::Auto).unwrap();
    assert_eq!((headers[0].as_str(), decoded_as), ("姓名", Decoded::Utf8));
    assert_eq!(records[0].cells, ["张三"]);
    assert_eq!(read(&with_bom, Encoding::Utf8).unwrap().2, Decoded::Utf8);
    assert!(error_of(&with_bom, Encoding::Gbk).contains("byte-order mark"));
    let broken_after_bom = [UTF_8_BOM, b"name\n\xD5\xC5\n"].concat();
    assert!(error_of(&broken_after_bom, Encoding::Auto).starts_with("not valid UTF-8 (line 2)"));
}

#[test]
fn gbk_is_detected_or_named_and_refused_as_utf8() {
    let (gbk, _, _) = encoding_rs::GBK.encode("name\n张三\n");
    let (headers, records, decoded_as) = read(&gbk, Encoding::Auto).unwrap();
    assert_eq!((headers, decoded_as), (vec!["name".to_owned()], Decoded::Gbk));
    assert_eq!(
        records[0],
        Record {
            line: 2,
            cells: vec!["张三".to_owned()]
        }
    );
    assert_eq!(read(&gbk, Encoding::Gbk).unwrap().2, Decoded::Gbk);
    let error = error_of(&gbk, Encoding::Utf8);
    assert!(error.starts_with("not valid UTF-8 (line 2)"), "{error}");
    assert!(error_of(b"name\n\x81\n", Encoding::Auto).starts_with("neither UTF-8 nor GBK (line 2)"));
    assert!(error_of(b"name\nok\n\x81\n", Encoding::Gbk).starts_with("not valid GBK (line 3)"));
}

#[test]
fn invalid_utf8_after_the_detection_prefix_is_refused_with_its_line() {
    // ASCII for longer than the prefix, then a GBK name: taken as UTF-8, refused where it breaks.
    let mut bytes = b"resident_id,name\n".to_vec();
    let mut line = 1;
    while bytes.len() <= DETECTION_PREFIX {
        bytes.extend_from_slice(b"110105194912310021,wang li\n");
        line += 1;
    }
    bytes.extend_from_slice(b"110105194912310021,");
    bytes.extend_from_slice(&encoding_rs::GBK.encode("王丽").0);
    bytes.push(b'\n');
    let error = read(&bytes, Encoding::Auto).unwrap_err();
    assert!(matches!(error, CsvError::NotUtf8 { .. }), "{error}");
    assert_eq!(error.line(), Some(line + 1));
    assert!(error.to_string().contains("may be GBK"), "{error}");
    let (_, records, decoded_as) = read(&bytes, Encoding::Gbk).unwrap();
    assert_eq!(decoded_as, Decoded::Gbk);
    assert_eq!(records.last().unwrap().cells[1], "王丽");
}

#[test]
fn a_character_cut_by_the_end_of_the_detection_prefix_is_still_utf8() {
    let mut text = String::from("name\n");
    while text.len() < 2 * DETECTION_PREFIX {
        text.push_str("欧阳娜娜\n");
    }
    assert_ne!(
        DETECTION_PREFIX % 3,
        0,
        "the prefix ends inside a three-byte character"
    );
    let (_, records, decoded_as) = read(text.as_bytes(), Encoding::Auto).unwrap();
    assert_eq!(decoded_as, Decoded::Utf8);
    assert!(records.iter().all(|record| record.cells == ["欧阳娜娜"]));
}

#[test]
fn a_file_larger_than_the_buffers_is_read_whole_with_its_digest() {
    let mut text = String::from("resident_id,name\n");
    let rows = 20_000;
    for row in 0..rows {
        text.push_str(&format!("{row:018},\"张 {row}\"\r\n"));
    }
    assert!(text.len() > 4 * DETECTION_PREFIX);
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    for bytes in [text.as_bytes(), &gbk[..]] {
        let mut reader = CsvReader::new(bytes, Encoding::Auto).unwrap();
        let mut count = 0u32;
        for record in reader.by_ref() {
            let record = record.unwrap();
            assert_eq!(record.line, count + 2);
            assert_eq!(record.cells[1], format!("张 {count}"));
            count += 1;
        }
        assert_eq!(count, rows);
        let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        assert_eq!(reader.digest(), Some(expected.clone()));
        let summary = CsvReader::new(bytes, Encoding::Auto)
            .unwrap()
            .summarize()
            .unwrap();
        assert_eq!((summary.records, summary.digest), (u64::from(rows), expected));
    }
}

#[test]
fn the_digest_covers_every_raw_byte() {
    let with_bom = [UTF_8_BOM, b"a\n1\n"].concat();
    let summary = CsvReader::new(&with_bom[..], Encoding::Auto)
        .unwrap()
        .summarize()
        .unwrap();
    assert_eq!(summary.records, 1);
    assert_eq!(
        summary.digest,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&with_bom))
    );
    let large = "a\n1\n".repeat(DETECTION_PREFIX);
    let reader = CsvReader::new(large.as_bytes(), Encoding::Auto).unwrap();
    assert_eq!(reader.digest(), None, "not before the end has been read");
}

#[test]
fn a_record_longer_than_the_limit_is_refused_with_its_line() {
    let text = format!("a,b\n1,2\n3,\"{}\n4,5\n", "x".repeat(5_000));
    let mut reader = CsvReader::with_max_record_bytes(text.as_bytes(), Encoding::Auto, 1_000).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().line, 2);
    let error = reader.next().unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            CsvError::RecordTooLong {
                line: 3,
                limit: 1_000
            }
        ),
        "{error}"
    );
    assert!(error.to_string().starts_with("line 3: "), "{error}");
    assert!(reader.next().is_none(), "nothing after an error");
    let fits = format!("a\n{}\n", "x".repeat(1_000 - 1));
    let reader = CsvReader::with_max_record_bytes(fits.as_bytes(), Encoding::Auto, 1_000).unwrap();
    assert_eq!(
        reader.summarize().unwrap().records,
        1,
        "a record of exactly the limit"
    );
}

#[test]
fn the_default_limits_allow_a_generous_record() {
    let cells = vec!["长".repeat(1_300); 200];
    let text = format!("a\n{}\n", cells.join(","));
    assert!(text.len() > 750_000);
    let mut reader = CsvReader::new(text.as_bytes(), Encoding::Auto).unwrap();
    let record = reader.next_record().unwrap().unwrap();
    assert_eq!(record.cells.len(), 200);
    assert_eq!(record.cells[199].chars().count(), 1_300);
}

#[test]
fn a_cell_longer_than_the_limit_is_refused_with_its_line_and_column() {
    let fits = format!("a,b\n1,{}\n", "x".repeat(MAX_CELL_BYTES));
    let mut reader = CsvReader::new(fits.as_bytes(), Encoding::Auto).unwrap();
    assert!(
        reader.next_record().unwrap().is_some(),
        "a cell of exactly the limit"
    );
    // an endless cell stops the reader within its first kilobytes, whatever follows
    let endless = format!("a,b\n1,2\n3,\"{}", "x".repeat(10 * 1024 * 1024));
    let mut reader = CsvReader::new(endless.as_bytes(), Encoding::Auto).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().line, 2);
    let error = reader.next().unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            CsvError::CellTooLong {
                line: 3,
                column: 2,
                limit: MAX_CELL_BYTES
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("line 3, column 2: a cell longer than 4096 bytes")
    );
    assert!(reader.next().is_none(), "nothing after an error");
}

#[test]
fn a_record_of_too_many_cells_is_refused_with_its_line() {
    let fits = format!("{}\n", vec!["a"; MAX_CELLS].join(","));
    let reader = CsvReader::new(fits.as_bytes(), Encoding::Auto).unwrap();
    assert_eq!(reader.headers().len(), MAX_CELLS);
    // a header of endless short cells: the reader gives up at the first cell past the limit
    let endless = "resident_id,".repeat(1_000_000);
    let error = CsvReader::new(endless.as_bytes(), Encoding::Auto).err().unwrap();
    assert!(
        matches!(
            error,
            CsvError::TooManyCells {
                line: 1,
                limit: MAX_CELLS
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "line 1: more than 256 cells (not a CSV file of ours?)"
    );
}
