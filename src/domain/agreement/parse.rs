//! Reading an agreement from TOML: the document's shape (serde, with spans kept) and every
//! semantic check, collecting all errors instead of stopping at the first.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;
use toml::value::Datetime;

use super::error::{AgreementErrors, Collector, Problem, path_at};
use super::signatures::SignatureEntry;
use super::{Agreement, Direction, NoticeDays, ReplyDays, canonical};
use crate::domain::division::CountyCode;
use crate::domain::vocabulary::{InquiryKind, NoticeKind, StatusField, UnknownName};
use notices::{
    RawNoticeEffect, RawNoticeFields, check_notice_effect, check_notice_fields, effects_with_defaults,
};

mod notices;

/// The longest deadline accepted, in days: anything longer is a typo, not a policy.
const MAX_DAYS: i64 = 365;
/// The highest daily cap accepted: two orders of magnitude above the largest sweep.
const MAX_DAILY_CAP: i64 = 10_000_000;
/// The longest retention accepted, in days (ten years): the purpose of an exchange is long
/// achieved by then (PIPL Art. 19 asks for the shortest time the purpose needs).
const MAX_RETENTION_DAYS: i64 = 3650;
/// The longest id accepted: ids are keys on the wire and in the database.
const MAX_ID_CHARS: usize = 64;

/// The document as written, with the position of every value kept for error messages. The
/// fields are the document's keys (see the table in the module documentation); numbers are read
/// as `i64` and names as strings so that range and vocabulary errors get our own messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgreement {
    id: Spanned<String>,
    version: Spanned<i64>,
    title: Spanned<String>,
    parties: Spanned<Vec<Spanned<String>>>,
    valid_from: Spanned<Datetime>,
    valid_until: Spanned<Datetime>,
    retention_days: Spanned<i64>,
    direction: Spanned<Vec<Spanned<RawDirection>>>,
    /// The counties' signatures, outside the canonical form (see `signatures`).
    signature: Option<Spanned<Vec<Spanned<RawSignature>>>>,
}

/// One `[[signature]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    county: Spanned<String>,
    signed_at: Spanned<Datetime>,
    algorithm: Spanned<String>,
    certificate: Spanned<String>,
    signature: Spanned<String>,
}

/// One `[[direction]]` table as written; fields as in the module documentation's table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirection {
    from: Spanned<String>,
    to: Spanned<String>,
    inquiry_kinds: Spanned<Vec<Spanned<String>>>,
    notice_kinds: Spanned<Vec<Spanned<String>>>,
    answer_fields: Spanned<Vec<Spanned<String>>>,
    reply_days: Spanned<RawReplyDays>,
    notice_days: Option<Spanned<RawNoticeDays>>,
    notice_fields: Option<Spanned<RawNoticeFields>>,
    notice_effect: Option<Spanned<RawNoticeEffect>>,
    daily_cap: Spanned<i64>,
    automatic_answers: Spanned<bool>,
}

/// `reply_days = { normal = 30, urgent = 15 }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplyDays {
    normal: Spanned<i64>,
    urgent: Spanned<i64>,
}

/// `notice_days = { receipt = 30, feedback = 30 }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoticeDays {
    receipt: Spanned<i64>,
    feedback: Spanned<i64>,
}

/// Parses and checks an agreement document; see the module documentation for the format.
pub(super) fn parse(text: &str) -> Result<Agreement, AgreementErrors> {
    let mut errors = Collector::new(text);
    let (tree, syntax_errors) = DeTable::parse_recoverable(text);
    for error in syntax_errors {
        let span = error.span().unwrap_or(0..0);
        let path = path_at(tree.get_ref(), span.start);
        errors.push(
            span,
            path,
            Problem::Syntax {
                message: error.message().to_owned(),
            },
        );
    }
    if let Some(errors) = errors.finish() {
        return Err(errors);
    }

    let raw = match RawAgreement::deserialize(toml::de::Deserializer::from(tree.clone())) {
        Ok(raw) => raw,
        Err(error) => {
            let mut errors = Collector::new(text);
            let span = error.span().unwrap_or(0..0);
            let path = path_at(tree.get_ref(), span.start);
            errors.push(
                span,
                path,
                Problem::Shape {
                    message: error.message().to_owned(),
                },
            );
            return Err(errors
                .finish()
                .unwrap_or_else(|| AgreementErrors::new(Vec::new())));
        }
    };

    let mut errors = Collector::new(text);
    let agreement = check(&raw, text, &mut errors);
    match (agreement, errors.finish()) {
        (_, Some(errors)) => Err(errors),
        (Some(agreement), None) => Ok(agreement),
        // Every check that yields nothing records why, so this arm is not reached; it exists so
        // that a slip in that rule cannot panic on input.
        (None, None) => Err(AgreementErrors::new(Vec::new())),
    }
}

/// Checks the whole document; `None` when anything is wrong (and then `errors` says what).
fn check(raw: &RawAgreement, text: &str, errors: &mut Collector<'_>) -> Option<Agreement> {
    let id = check_id(&raw.id, errors);
    let version = check_range(&raw.version, "version", 1, i64::from(u32::MAX), errors)
        .and_then(|version| u32::try_from(version).ok());
    let title = check_not_blank(&raw.title, "title", errors);
    let parties = check_parties(&raw.parties, errors);
    let valid_from = check_date(&raw.valid_from, "valid_from", errors);
    let valid_until = check_date(&raw.valid_until, "valid_until", errors);
    if let (Some(from), Some(until)) = (valid_from, valid_until) {
        if until < from {
            let problem = Problem::EndsBeforeStart { from, until };
            errors.push(raw.valid_until.span(), "valid_until", problem);
        }
    }
    let retention_days = check_range(
        &raw.retention_days,
        "retention_days",
        1,
        MAX_RETENTION_DAYS,
        errors,
    )
    .and_then(|days| u16::try_from(days).ok());
    let directions = check_directions(&raw.direction, parties, errors);
    let signatures = check_signatures(raw.signature.as_ref(), errors);

    let (Some(id), Some(version), Some(title), Some(parties)) = (id, version, title, parties) else {
        return None;
    };
    let (Some(valid_from), Some(valid_until), Some(retention_days), Some(directions), Some(signatures)) =
        (valid_from, valid_until, retention_days, directions, signatures)
    else {
        return None;
    };
    if !errors.is_empty() {
        return None;
    }
    let canonical_form = canonical::canonical_form(&canonical::Content {
        id: &id,
        version,
        title: &title,
        parties,
        valid_from,
        valid_until,
        retention_days,
        directions: &directions,
    });
    Some(Agreement {
        hash: canonical::AgreementHash::of(&canonical_form),
        canonical_form,
        id,
        version,
        title,
        parties,
        valid_from,
        valid_until,
        retention_days,
        directions,
        signatures,
        source_text: text.to_owned(),
    })
}

/// The `[[signature]]` tables, checked for shape (a county code, a date-time with offset):
/// whether they verify is the node's business.
fn check_signatures(
    raw: Option<&Spanned<Vec<Spanned<RawSignature>>>>,
    errors: &mut Collector<'_>,
) -> Option<Vec<SignatureEntry>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    let mut entries = Vec::new();
    let mut all_good = true;
    for (index, table) in raw.get_ref().iter().enumerate() {
        let at = |key: &str| format!("signature[{index}].{key}");
        let line = errors.line(table.span().start);
        let table = table.get_ref();
        let county = check_county(&table.county, &at("county"), errors);
        let signed_at = check_instant(&table.signed_at, &at("signed_at"), errors);
        let text = |value: &Spanned<String>, key: &str, errors: &mut Collector<'_>| {
            check_not_blank(value, &at(key), errors)
        };
        let algorithm = text(&table.algorithm, "algorithm", errors);
        let certificate = text(&table.certificate, "certificate", errors);
        let signature = text(&table.signature, "signature", errors);
        match (county, signed_at, algorithm, certificate, signature) {
            (Some(county), Some(signed_at), Some(algorithm), Some(certificate), Some(signature)) => {
                entries.push(SignatureEntry {
                    county,
                    signed_at,
                    algorithm,
                    certificate,
                    signature,
                    line,
                });
            }
            _ => all_good = false,
        }
    }
    all_good.then_some(entries)
}

/// A TOML date-time with its offset, e.g. `2025-06-20T08:00:00+08:00`.
fn check_instant(value: &Spanned<Datetime>, path: &str, errors: &mut Collector<'_>) -> Option<DateTime<Utc>> {
    let datetime = value.get_ref();
    let instant = match (datetime.date, datetime.time, datetime.offset) {
        (Some(_), Some(_), Some(_)) => DateTime::parse_from_rfc3339(&datetime.to_string())
            .ok()
            .map(|instant| instant.with_timezone(&Utc)),
        _ => None,
    };
    if instant.is_none() {
        errors.push(value.span(), path, Problem::NotAnInstant);
    }
    instant
}

/// Whether `id` can be an agreement's id: 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '-'
/// (`Problem::BadId` says the same to a person).
pub fn well_formed_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.chars().count())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_id(id: &Spanned<String>, errors: &mut Collector<'_>) -> Option<String> {
    let value = id.get_ref();
    if !well_formed_id(value) {
        errors.push(id.span(), "id", Problem::BadId);
        return None;
    }
    Some(value.clone())
}

fn check_not_blank(text: &Spanned<String>, path: &str, errors: &mut Collector<'_>) -> Option<String> {
    if text.get_ref().trim().is_empty() {
        errors.push(text.span(), path, Problem::Empty);
        return None;
    }
    Some(text.get_ref().clone())
}

fn check_range(
    value: &Spanned<i64>,
    path: &str,
    min: i64,
    max: i64,
    errors: &mut Collector<'_>,
) -> Option<i64> {
    let found = *value.get_ref();
    if !(min..=max).contains(&found) {
        errors.push(value.span(), path, Problem::OutOfRange { min, max, found });
        return None;
    }
    Some(found)
}

/// A day count in `1..=MAX_DAYS`.
fn check_days(value: &Spanned<i64>, path: &str, errors: &mut Collector<'_>) -> Option<u16> {
    check_range(value, path, 1, MAX_DAYS, errors).and_then(|days| u16::try_from(days).ok())
}

fn check_date(value: &Spanned<Datetime>, path: &str, errors: &mut Collector<'_>) -> Option<NaiveDate> {
    let datetime = value.get_ref();
    let date = match (datetime.date, datetime.time, datetime.offset) {
        (Some(date), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
        }
        _ => None,
    };
    if date.is_none() {
        errors.push(value.span(), path, Problem::NotADate);
    }
    date
}

fn check_county(code: &Spanned<String>, path: &str, errors: &mut Collector<'_>) -> Option<CountyCode> {
    match CountyCode::parse(code.get_ref()) {
        Ok(county) => Some(county),
        Err(error) => {
            errors.push(code.span(), path, Problem::UnknownCounty(error));
            None
        }
    }
}

/// Exactly two distinct counties, returned sorted by code so that the order written does not
/// matter anywhere.
fn check_parties(
    parties: &Spanned<Vec<Spanned<String>>>,
    errors: &mut Collector<'_>,
) -> Option<[CountyCode; 2]> {
    let counties: Vec<Option<CountyCode>> = parties
        .get_ref()
        .iter()
        .enumerate()
        .map(|(index, code)| check_county(code, &format!("parties[{index}]"), errors))
        .collect();
    let [first, second] = counties.as_slice() else {
        let count = counties.len();
        errors.push(parties.span(), "parties", Problem::PartyCount { count });
        return None;
    };
    let (Some(first), Some(second)) = (*first, *second) else {
        return None;
    };
    if first.current() == second.current() {
        let problem = Problem::SameCountyTwice {
            county: first.current(),
        };
        errors.push(parties.get_ref()[1].span(), "parties[1]", problem);
        return None;
    }
    Some(if first < second {
        [first, second]
    } else {
        [second, first]
    })
}

/// A county named by a direction, which must be one of the parties (after renames).
fn check_party(
    code: &Spanned<String>,
    path: &str,
    parties: Option<[CountyCode; 2]>,
    errors: &mut Collector<'_>,
) -> Option<CountyCode> {
    let county = check_county(code, path, errors)?;
    if let Some(parties) = parties {
        if !parties.iter().any(|party| party.current() == county.current()) {
            errors.push(code.span(), path, Problem::NotAParty { county, parties });
            return None;
        }
    }
    Some(county)
}

/// A list of vocabulary names: each must be known and appear once.
pub(super) fn check_names<T>(
    names: &Spanned<Vec<Spanned<String>>>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Option<BTreeSet<T>>
where
    T: FromStr<Err = UnknownName> + Ord,
{
    let mut parsed = BTreeSet::new();
    let mut all_known = true;
    for name in names.get_ref() {
        match name.get_ref().parse::<T>() {
            Ok(value) => {
                if !parsed.insert(value) {
                    let problem = Problem::ListedTwice {
                        name: name.get_ref().clone(),
                    };
                    errors.push(name.span(), path, problem);
                    all_known = false;
                }
            }
            Err(unknown) => {
                errors.push(name.span(), path, Problem::UnknownName(unknown));
                all_known = false;
            }
        }
    }
    all_known.then_some(parsed)
}

fn check_directions(
    directions: &Spanned<Vec<Spanned<RawDirection>>>,
    parties: Option<[CountyCode; 2]>,
    errors: &mut Collector<'_>,
) -> Option<Vec<Direction>> {
    if directions.get_ref().is_empty() {
        errors.push(directions.span(), "direction", Problem::NoDirection);
        return None;
    }
    // (from, to) after renames → line of the first declaration.
    let mut declared: BTreeMap<(CountyCode, CountyCode), usize> = BTreeMap::new();
    let mut checked = Vec::new();
    for (index, raw) in directions.get_ref().iter().enumerate() {
        let Some(direction) = check_direction(raw, index, parties, errors) else {
            continue;
        };
        let key = (direction.from.current(), direction.to.current());
        let from_span = raw.get_ref().from.span();
        if let Some(&first_line) = declared.get(&key) {
            let problem = Problem::DuplicateDirection {
                from: direction.from,
                to: direction.to,
                first_line,
            };
            errors.push(from_span, format!("direction[{index}]"), problem);
            continue;
        }
        declared.insert(key, errors.line(from_span.start));
        checked.push(direction);
    }
    if checked.len() != directions.get_ref().len() {
        return None;
    }
    checked.sort_by_key(|direction| (direction.from, direction.to));
    Some(checked)
}

fn check_direction(
    raw: &Spanned<RawDirection>,
    index: usize,
    parties: Option<[CountyCode; 2]>,
    errors: &mut Collector<'_>,
) -> Option<Direction> {
    let at = |key: &str| format!("direction[{index}].{key}");
    let raw_span: Range<usize> = raw.span();
    let raw = raw.get_ref();
    let from = check_party(&raw.from, &at("from"), parties, errors);
    let to = check_party(&raw.to, &at("to"), parties, errors);
    if let (Some(from), Some(to)) = (from, to) {
        if from.current() == to.current() {
            errors.push(raw.to.span(), at("to"), Problem::FromIsTo { county: from });
        }
    }
    let inquiry_kinds = check_names::<InquiryKind>(&raw.inquiry_kinds, &at("inquiry_kinds"), errors);
    let notice_kinds = check_names::<NoticeKind>(&raw.notice_kinds, &at("notice_kinds"), errors);
    let answer_fields = check_names::<StatusField>(&raw.answer_fields, &at("answer_fields"), errors);
    if raw.inquiry_kinds.get_ref().is_empty() && raw.notice_kinds.get_ref().is_empty() {
        errors.push(raw_span, format!("direction[{index}]"), Problem::AllowsNothing);
    }
    let reply_days = check_reply_days(&raw.reply_days, &at("reply_days"), errors);
    let notice_days = match &raw.notice_days {
        Some(days) => check_notice_days(days, &at("notice_days"), errors).map(Some),
        None if raw.notice_kinds.get_ref().is_empty() => Some(None),
        None => {
            let span = raw.notice_kinds.span();
            errors.push(span, at("notice_kinds"), Problem::MissingNoticeDays);
            None
        }
    };
    let notice_fields = match (&raw.notice_fields, &notice_kinds) {
        (None, _) => Some(BTreeMap::new()),
        (Some(fields), Some(kinds)) => check_notice_fields(fields, kinds, &at("notice_fields"), errors),
        (Some(_), None) => None,
    };
    let notice_effect = match (&raw.notice_effect, &notice_kinds) {
        (None, Some(kinds)) => Some(effects_with_defaults(BTreeMap::new(), kinds)),
        (Some(effects), Some(kinds)) => check_notice_effect(effects, kinds, &at("notice_effect"), errors)
            .map(|named| effects_with_defaults(named, kinds)),
        (_, None) => None,
    };
    let daily_cap = check_range(&raw.daily_cap, &at("daily_cap"), 1, MAX_DAILY_CAP, errors)
        .and_then(|cap| u32::try_from(cap).ok());

    Some(Direction {
        from: from?,
        to: to?,
        inquiry_kinds: inquiry_kinds?,
        notice_kinds: notice_kinds?,
        answer_fields: answer_fields.as_ref().map(super::direction::implied_fields)?,
        listed_fields: answer_fields?,
        reply_days: reply_days?,
        notice_days: notice_days?,
        notice_fields: notice_fields?,
        notice_effect: notice_effect?,
        daily_cap: daily_cap?,
        automatic_answers: *raw.automatic_answers.get_ref(),
    })
}

fn check_reply_days(
    raw: &Spanned<RawReplyDays>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Option<ReplyDays> {
    let raw = raw.get_ref();
    let normal = check_days(&raw.normal, &format!("{path}.normal"), errors);
    let urgent = check_days(&raw.urgent, &format!("{path}.urgent"), errors);
    let (normal, urgent) = (normal?, urgent?);
    if urgent > normal {
        let problem = Problem::UrgentLongerThanNormal { normal, urgent };
        errors.push(raw.urgent.span(), format!("{path}.urgent"), problem);
        return None;
    }
    Some(ReplyDays { normal, urgent })
}

fn check_notice_days(
    raw: &Spanned<RawNoticeDays>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Option<NoticeDays> {
    let raw = raw.get_ref();
    let receipt = check_days(&raw.receipt, &format!("{path}.receipt"), errors);
    let feedback = check_days(&raw.feedback, &format!("{path}.feedback"), errors);
    Some(NoticeDays {
        receipt: receipt?,
        feedback: feedback?,
    })
}
