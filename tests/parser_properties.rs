//! Properties of the parsers at the node's edges, the same ones the fuzz targets under `fuzz/`
//! exercise (see FUZZING.md): the registry CSV reader and its rows, the exchange messages a peer
//! sends, and agreements with varied terms. Resident ID numbers have theirs in
//! `src/domain/resident_id/tests.rs`, agreement text in `src/domain/agreement/tests/hashing.rs`.
//! Pure: no database. Sized to run in a few seconds.

use std::collections::HashMap;
use std::io::Read;

use chrono::NaiveDate;
use proptest::collection::{btree_map, hash_map, vec};
use proptest::prelude::*;

use hancha::csv_input::{CsvReader, Encoding, Record};
use hancha::domain::agreement::Agreement;
use hancha::domain::division::CountyCode;
use hancha::domain::message::FieldViolation;
use hancha::domain::person::Flow;
use hancha::domain::person_row::{COLUMNS, person_from_columns};
use hancha::domain::policy::{Rejection, RejectionCode};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{
    CertificateStatus, ContraceptionStatus, MaritalStatus, StatusField, StatusValues,
};
use hancha::exchange::convert::{
    confirmation_from_wire, confirmation_to_wire, inquiry_from_wire, inquiry_to_wire, notice_from_wire,
};
use hancha::exchange::reconcile::begin_from_wire;
use hancha::proto::exchange as pb;

const DINGCHENG: &str = "430703";
const XINHUA: &str = "431322";

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

// === CSV files ===

/// A source that hands out at most `step` bytes per read.
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

/// Headers and records, or the error's text.
fn read_csv(source: impl Read, encoding: Encoding) -> Result<(Vec<String>, Vec<Record>), String> {
    let mut reader = CsvReader::new(source, encoding).map_err(|error| error.to_string())?;
    let headers = reader.headers().to_vec();
    let records = reader
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    Ok((headers, records))
}

fn encoding_of(choice: u8) -> Encoding {
    match choice % 3 {
        0 => Encoding::Auto,
        1 => Encoding::Utf8,
        _ => Encoding::Gbk,
    }
}

/// A CSV cell as written: always quoted, quotes doubled.
fn quoted(cell: &str) -> String {
    format!("\"{}\"", cell.replace('"', "\"\""))
}

/// Cell text with what makes CSV hard: separators, quotes, line breaks, Chinese, spaces inside.
fn cell_text() -> impl Strategy<Value = String> {
    "[a-z0-9张三李娜流入,\"\n\r ]{0,12}".prop_map(|text| text.trim().to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_read_the_same_whole_and_in_small_reads(
        bytes in vec(any::<u8>(), 0..400),
        step in 1..17usize,
        choice in any::<u8>(),
    ) {
        let encoding = encoding_of(choice);
        let whole = read_csv(bytes.as_slice(), encoding);
        let trickled = read_csv(Trickle { bytes: &bytes, step }, encoding);
        prop_assert_eq!(format!("{whole:?}"), format!("{trickled:?}"));
        if let Ok((_, records)) = whole {
            for record in records {
                prop_assert!(record.cells.iter().any(|cell| !cell.is_empty()));
                prop_assert!(record.cells.iter().all(|cell| cell.trim() == cell));
            }
        }
    }

    #[test]
    fn written_rows_read_back(rows in vec(vec(cell_text(), 3), 1..6), gbk in any::<bool>(), crlf in any::<bool>()) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("a,b,c{end}");
        let mut expected = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            // The first cell is never empty, so that no row is left out as blank.
            let mut cells = row.clone();
            cells[0] = format!("r{index}{}", cells[0]);
            text.push_str(&cells.iter().map(|cell| quoted(cell)).collect::<Vec<_>>().join(","));
            text.push_str(end);
            expected.push(cells);
        }
        let (bytes, encoding) = if gbk {
            (encoding_rs::GBK.encode(&text).0.into_owned(), Encoding::Gbk)
        } else {
            (text.into_bytes(), Encoding::Utf8)
        };
        let (headers, records) = read_csv(bytes.as_slice(), encoding).map_err(TestCaseError::fail)?;
        prop_assert_eq!(headers, ["a", "b", "c"]);
        let cells: Vec<Vec<String>> = records.into_iter().map(|record| record.cells).collect();
        prop_assert_eq!(cells, expected);
    }
}

// === registry rows ===

/// A valid row's cells (column → cell) and the person it describes, seen from 鼎城区.
#[derive(Debug, Clone)]
struct ValidRow {
    cells: Vec<(&'static str, String)>,
    resident_id: String,
    name: String,
    flow: Flow,
    status: StatusValues,
}

fn date_text() -> impl Strategy<Value = String> {
    (0..20_000i64).prop_map(|days| {
        (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    })
}

/// Optional status cells, each a value its column accepts.
fn status_cells() -> impl Strategy<Value = Vec<(StatusField, String)>> {
    let pick = |names: &'static [&'static str]| prop::sample::select(names).prop_map(str::to_owned);
    (
        prop::option::of(pick(MaritalStatus::NAMES)),
        prop::option::of(pick(CertificateStatus::NAMES)),
        prop::option::of(pick(ContraceptionStatus::NAMES)),
        prop::option::of((0..=255u8).prop_map(|count| count.to_string())),
        prop::option::of(
            prop::sample::select(&["true", "false", "是", "否", "yes", "0"][..]).prop_map(str::to_owned),
        ),
        prop::option::of(date_text()),
        prop::option::of("[A-Z0-9-]{1,20}"),
        prop::option::of(Just("430703001".to_owned())),
    )
        .prop_map(
            |(marital, certificate, contraception, children, pregnant, since, number, township)| {
                [
                    (StatusField::MaritalStatus, marital),
                    (StatusField::CertificateStatus, certificate),
                    (StatusField::ContraceptionStatus, contraception),
                    (StatusField::ChildrenCount, children),
                    (StatusField::Pregnant, pregnant),
                    (StatusField::RegisteredSince, since),
                    (StatusField::CertificateNumber, number),
                    (StatusField::Township, township),
                ]
                .into_iter()
                .filter_map(|(field, value)| Some((field, value?)))
                .collect()
            },
        )
}

fn valid_rows() -> impl Strategy<Value = ValidRow> {
    (
        any::<bool>(),
        0..15_000i64,
        0..1000u32,
        "[张王李刘欧阳芳娜丽伟]{1,6}",
        status_cells(),
        any::<bool>(),
    )
        .prop_map(|(inflow, days, sequence, name, status_cells, lowercase_x)| {
            let birth = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap() + chrono::Duration::days(days);
            let (flow, issued_in, other_county_column) = if inflow {
                (Flow::Inflow, XINHUA, "registered_county")
            } else {
                (Flow::Outflow, DINGCHENG, "residence_county")
            };
            let resident_id = ResidentId::synthetic(county(issued_in), birth, sequence)
                .unwrap()
                .as_str()
                .to_owned();
            let id_cell = if lowercase_x {
                resident_id.to_lowercase()
            } else {
                resident_id.clone()
            };
            let mut cells = vec![
                ("resident_id", id_cell),
                ("name", name.clone()),
                ("flow", if inflow { "inflow" } else { "流出" }.to_owned()),
                (other_county_column, XINHUA.to_owned()),
            ];
            let mut status = StatusValues::default();
            for (field, value) in status_cells {
                status.set(field, &value).unwrap();
                cells.push((field.as_str(), value));
            }
            ValidRow {
                cells,
                resident_id,
                name,
                flow,
                status,
            }
        })
}

fn column_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(COLUMNS).prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_generated_valid_row_read_from_a_file_becomes_its_person(row in valid_rows()) {
        let header: Vec<&str> = row.cells.iter().map(|(column, _)| *column).collect();
        let line: Vec<String> = row.cells.iter().map(|(_, cell)| quoted(cell)).collect();
        let text = format!("{}\n{}\n", header.join(","), line.join(","));
        let (headers, records) = read_csv(text.as_bytes(), Encoding::Auto).map_err(TestCaseError::fail)?;
        prop_assert_eq!(records.len(), 1);
        let columns: HashMap<String, String> = headers.into_iter().zip(records[0].cells.clone()).collect();
        let person = person_from_columns(&columns, county(DINGCHENG))
            .map_err(|reasons| TestCaseError::fail(reasons.join("; ")))?;
        prop_assert_eq!(person.resident_id.as_str(), row.resident_id.as_str());
        prop_assert_eq!(&person.name, &row.name);
        prop_assert_eq!(person.flow, row.flow);
        prop_assert_eq!(&person.status, &row.status);
        let (registered, residence) = match row.flow {
            Flow::Inflow => (XINHUA, DINGCHENG),
            Flow::Outflow => (DINGCHENG, XINHUA),
        };
        prop_assert_eq!(person.registered_county, county(registered));
        prop_assert_eq!(person.residence_county, county(residence));
    }

    #[test]
    fn arbitrary_rows_never_panic_and_their_reasons_never_depend_on_the_name(
        columns in hash_map(column_name(), "\\PC{0,24}", 0..8),
        name in "[张王李刘芳娜]{1,4}",
    ) {
        let me = county(DINGCHENG);
        let mut columns = columns;
        if let Err(reasons) = person_from_columns(&columns, me) {
            prop_assert!(!reasons.is_empty());
        }
        columns.insert("name".to_owned(), name);
        let first = person_from_columns(&columns, me);
        columns.insert("name".to_owned(), "某某".to_owned());
        let second = person_from_columns(&columns, me);
        prop_assert_eq!(first.err(), second.err());
    }
}

// === exchange messages ===

const UUID_V7: &str = "01a22a53-e5a4-7208-8ac6-a9242788bd9b";
const HASH: &str = "5f0c6b8b1fb8e7d5c2a5a0b39bfc3c1d7d0a4c5f1e2b3a4c5d6e7f8091a2b3c4";
const WOMAN: &str = "431322199005060026";

/// A valid value most of the time, otherwise anything.
fn mostly(valid: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(valid.to_owned()), 1 => "\\PC{0,40}", 1 => "[0-9a-fX-]{0,40}"]
}

fn enum_value(max: i32) -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0..=max, 1 => any::<i32>()]
}

fn agreement_ref() -> impl Strategy<Value = Option<pb::AgreementRef>> {
    prop::option::weighted(
        0.9,
        (mostly("430703-431322"), mostly(HASH)).prop_map(|(id, hash)| pb::AgreementRef { id, hash }),
    )
}

fn subject() -> impl Strategy<Value = Option<pb::Subject>> {
    prop::option::weighted(
        0.9,
        (mostly(WOMAN), mostly("HN-2024-000123")).prop_map(|(resident_id, certificate_number)| pb::Subject {
            resident_id,
            certificate_number,
        }),
    )
}

/// Status fields by name: known names with good or bad values, and unknown names.
fn fields() -> impl Strategy<Value = HashMap<String, String>> {
    let name =
        prop_oneof![4 => prop::sample::select(StatusField::NAMES).prop_map(str::to_owned), 1 => "\\PC{0,12}"];
    let value = prop_oneof![
        Just("married".to_owned()),
        Just("valid".to_owned()),
        Just("2028-05-31".to_owned()),
        Just("3".to_owned()),
        Just("true".to_owned()),
        Just("430703001".to_owned()),
        "\\PC{0,20}",
    ];
    btree_map(name, value, 0..5).prop_map(|map| map.into_iter().collect())
}

fn inquiries() -> impl Strategy<Value = pb::Inquiry> {
    (
        mostly(UUID_V7),
        agreement_ref(),
        enum_value(2),
        enum_value(2),
        subject(),
    )
        .prop_map(|(message_id, agreement, kind, priority, subject)| pb::Inquiry {
            message_id,
            agreement,
            kind,
            priority,
            subject,
        })
}

fn confirmations() -> impl Strategy<Value = pb::StatusConfirmation> {
    (
        mostly(UUID_V7),
        mostly(UUID_V7),
        agreement_ref(),
        enum_value(4),
        fields(),
        prop::option::of((any::<i64>(), any::<i32>())),
    )
        .prop_map(
            |(message_id, inquiry_id, agreement, outcome, fields, answered_at)| pb::StatusConfirmation {
                message_id,
                inquiry_id,
                agreement,
                outcome,
                fields,
                answered_at: answered_at.map(|(seconds, nanos)| pbjson_types::Timestamp { seconds, nanos }),
            },
        )
}

fn notices() -> impl Strategy<Value = pb::Notice> {
    (
        mostly(UUID_V7),
        agreement_ref(),
        enum_value(4),
        subject(),
        mostly("2026-03-01"),
        fields(),
    )
        .prop_map(
            |(message_id, agreement, kind, subject, occurred_on, fields)| pb::Notice {
                message_id,
                agreement,
                kind,
                subject,
                occurred_on,
                fields,
            },
        )
}

/// A refusal as the server sends it: field violations under `path`, an INVALID_ARGUMENT
/// rejection that names them.
fn assert_refusal(violations: Vec<FieldViolation>, path: &str) -> Result<(), TestCaseError> {
    prop_assert!(!violations.is_empty(), "a refusal without a field violation");
    for violation in &violations {
        prop_assert!(
            violation.field.starts_with(path),
            "{:?} is not under {}",
            violation.field,
            path
        );
    }
    let rejection = Rejection::invalid(violations);
    prop_assert_eq!(rejection.code, RejectionCode::InvalidArgument);
    prop_assert!(!rejection.violations.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inquiries_convert_or_are_refused_field_by_field(wire in inquiries()) {
        match inquiry_from_wire(&wire, "inquiries[0]") {
            Ok(inquiry) => {
                let again = inquiry_from_wire(&inquiry_to_wire(&inquiry), "inquiries[0]");
                prop_assert_eq!(again, Ok(inquiry));
            }
            Err(violations) => assert_refusal(violations, "inquiries[0]")?,
        }
    }

    #[test]
    fn confirmations_convert_or_are_refused_field_by_field(wire in confirmations()) {
        match confirmation_from_wire(&wire, "confirmations[1]") {
            Ok(confirmation) => {
                let again = confirmation_from_wire(&confirmation_to_wire(&confirmation), "confirmations[1]");
                prop_assert_eq!(again, Ok(confirmation));
            }
            Err(violations) => assert_refusal(violations, "confirmations[1]")?,
        }
    }

    #[test]
    fn notices_convert_or_are_refused_field_by_field(wire in notices()) {
        if let Err(violations) = notice_from_wire(&wire, "notices[2]") {
            assert_refusal(violations, "notices[2]")?;
        }
    }

    #[test]
    fn a_reconcile_begin_is_read_or_refused_as_invalid(
        run_id in mostly(UUID_V7),
        agreement in agreement_ref(),
        set in enum_value(2),
        set_size in prop_oneof![0..1000u64, any::<u64>()],
    ) {
        let begin = pb::ReconcileBegin { run_id, agreement, set, set_size };
        if let Err(rejection) = begin_from_wire(&begin) {
            prop_assert_eq!(rejection.code, RejectionCode::InvalidArgument);
        }
    }
}

// === agreements ===

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_agreements_parse_with_their_terms(
        id in "[A-Za-z0-9._-]{1,64}",
        version in 1..10_000u32,
        title in "[鼎城新化协议 a-z]{1,20}",
        (normal, urgent) in (1..=365u16).prop_flat_map(|normal| (Just(normal), 1..=normal)),
        daily_cap in 1..=10_000_000u32,
        automatic in any::<bool>(),
        both_ways in any::<bool>(),
    ) {
        prop_assume!(!title.trim().is_empty());
        let direction = |from: &str, to: &str| {
            format!(
                "[[direction]]\nfrom = \"{from}\"\nto = \"{to}\"\ninquiry_kinds = [\"outflow_status\"]\n\
                 notice_kinds = []\nanswer_fields = [\"township\"]\n\
                 reply_days = {{ normal = {normal}, urgent = {urgent} }}\n\
                 daily_cap = {daily_cap}\nautomatic_answers = {automatic}\n"
            )
        };
        let mut text = format!(
            "id = \"{id}\"\nversion = {version}\ntitle = \"{title}\"\nparties = [\"{XINHUA}\", \"{DINGCHENG}\"]\n\
             valid_from = 2026-01-01\nvalid_until = 2028-12-31\nretention_days = 1095\n\n{}",
            direction(XINHUA, DINGCHENG)
        );
        if both_ways {
            text.push_str(&direction(DINGCHENG, XINHUA));
        }
        let agreement = Agreement::parse(&text).map_err(|errors| TestCaseError::fail(errors.to_string()))?;
        prop_assert_eq!(agreement.id(), id.as_str());
        prop_assert_eq!(agreement.version(), version);
        prop_assert_eq!(agreement.directions().len(), if both_ways { 2 } else { 1 });
        for direction in agreement.directions() {
            prop_assert_eq!(direction.reply_days().normal, normal);
            prop_assert_eq!(direction.reply_days().urgent, urgent);
            prop_assert_eq!(direction.daily_cap(), daily_cap);
            prop_assert_eq!(direction.automatic_answers(), automatic);
        }
    }
}

// === inputs the fuzzers found (fuzz/, FUZZING.md), fed as they were found ===

/// `registry_row` (first byte: encoding auto, whole-record limit, reads of 1 byte): a lone
/// carriage return in a row (`…,431322,\r430703001,…`) ends a record for the CSV parser, but only
/// line feeds count as lines, so the next record starts on the same line. Records still come in
/// line order, and the same whether the file arrives whole or a byte at a time.
#[test]
fn fuzz_registry_row_lone_carriage_return() {
    let input = include_bytes!("fuzz_regressions/registry_row-lone-carriage-return");
    let bytes = &input[1..];
    let whole = read_csv(bytes, Encoding::Auto);
    let trickled = read_csv(Trickle { bytes, step: 1 }, Encoding::Auto);
    assert_eq!(format!("{whole:?}"), format!("{trickled:?}"));
    let (_, records) = whole.unwrap();
    let lines: Vec<u32> = records.iter().map(|record| record.line).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(
        lines,
        [2, 3, 4],
        "a lone carriage return ends a line as it ends a record"
    );
    for record in &records {
        let _ = person_from_columns(
            &COLUMNS
                .iter()
                .map(|c| c.to_string())
                .zip(record.cells.clone())
                .collect(),
            county(DINGCHENG),
        );
    }
}
