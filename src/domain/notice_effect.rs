//! What a notice received at the origin changes in its registry: the one mapping from a
//! notice's kind, date and fields onto the status of the outflow person it names. The intake
//! uses it when the agreement says `apply`; an operator's `hancha notices apply` uses it for a
//! notice that waited. Nothing else decides what a notice changes.
//!
//! | kind | what changes |
//! |---|---|
//! | `contraception_check` | `contraception_date` ← the day of the check (`occurred_on`, required); `contraception_status` ← the measure (`iud`, `implant`, `ligation` → `long_acting`; `pill`, `condom` → `short_acting`; `none` → `none`), or `none` when the ring was found missing and no measure is named; `pregnant` ← `true` for the result `pregnant`, `false` for `normal` or `ring_missing`. A check older than the one the registry holds changes nothing. |
//! | `pregnancy` | `pregnant` ← `true` |
//! | `birth` | `children_count` ← the birth order when it is known and higher, else the count + 1 (a count the registry does not hold and no birth order: an operator decides); `pregnant` ← `false` |
//! | `moved_on` | `residence_county` ← the new county (not known, or this county itself: an operator decides) |
//!
//! The notice must name a person registered here who lives elsewhere (outflow); otherwise, or
//! when a value cannot be read, nothing changes and the notice waits for an operator with the
//! reason ([`NotApplicable`]), which never names the person.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::division::CountyCode;
use crate::domain::person::{Flow, Person};
use crate::domain::vocabulary::{ContraceptionStatus, NoticeField, NoticeKind};

#[cfg(test)]
mod tests;

/// A received notice as the mapping reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedNotice {
    /// What happened.
    pub kind: NoticeKind,
    /// The day it happened, if the sender knew it.
    pub occurred_on: Option<NaiveDate>,
    /// The notice's fields as text, by name ([`fields_from_json`] reads them from the stored
    /// body).
    pub fields: BTreeMap<NoticeField, String>,
    /// The county that sent it, when it is applied at receipt: applied only to a person our
    /// registry says lives there. `None` when an operator applies it (the operator decides).
    pub applied_for: Option<CountyCode>,
}

/// The registry entry after a notice, and which of its fields the notice changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryUpdate {
    /// The person as the registry holds her after the notice.
    pub person: Person,
    /// The registry columns whose value changed, in a fixed order; empty when the notice told
    /// the registry nothing new (an older check, a count already reached).
    pub changed: Vec<&'static str>,
}

/// Why a notice cannot change the registry by itself: it waits for an operator. The text
/// names no person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    /// The registry holds nobody with the notice's ID number.
    #[error("the person is not in this county's registry")]
    NotInRegistry,
    /// The person is in the registry, but as living here, not as registered here.
    #[error("the person is not registered here as living elsewhere (outflow)")]
    NotOutflow,
    /// A contraception check without the day it was made.
    #[error("the notice does not say on which day it happened")]
    NoDate,
    /// A field whose value the mapping cannot read.
    #[error("{0} has a value this county cannot apply")]
    Unreadable(NoticeField),
    /// A birth with no birth order, for a person whose number of children is not recorded.
    #[error("the registry holds no number of children and the notice no birth order")]
    ChildrenCountUnknown,
    /// A departure that does not say where to.
    #[error("the notice does not say which county she moved to")]
    NewCountyUnknown,
    /// A departure back to this county: whether she is still outflow is an operator's call.
    #[error("she moved to this county itself: an operator updates her entry")]
    MovedHere,
    /// Sent by a county our registry does not say she lives in: not applied at receipt, an
    /// operator looks at it (an agreement partner can report only on the people living there).
    #[error("the sender is not the county this registry says she lives in: an operator decides")]
    NotLivingWithSender,
}

/// What `notice` changes in the registry entry `person` (the one its ID number names, if any)
/// of county `here`. See the module documentation for the mapping.
pub fn registry_update(
    notice: &ReceivedNotice,
    person: Option<&Person>,
    here: CountyCode,
) -> Result<RegistryUpdate, NotApplicable> {
    let before = person.ok_or(NotApplicable::NotInRegistry)?;
    if before.flow != Flow::Outflow {
        return Err(NotApplicable::NotOutflow);
    }
    if notice
        .applied_for
        .is_some_and(|sender| sender != before.residence_county)
    {
        return Err(NotApplicable::NotLivingWithSender);
    }
    let mut after = before.clone();
    let status = &mut after.status;
    match notice.kind {
        NoticeKind::ContraceptionCheck => {
            let checked_on = notice.occurred_on.ok_or(NotApplicable::NoDate)?;
            let measure = notice
                .field(NoticeField::Measure)
                .map(|value| measure_class(value).ok_or(NotApplicable::Unreadable(NoticeField::Measure)))
                .transpose()?;
            let result = notice
                .field(NoticeField::CheckResult)
                .map(|value| {
                    CheckResult::parse(value).ok_or(NotApplicable::Unreadable(NoticeField::CheckResult))
                })
                .transpose()?;
            if status.contraception_date.is_some_and(|held| held > checked_on) {
                return Ok(unchanged(after));
            }
            status.contraception_date = Some(checked_on);
            match (measure, result) {
                (Some(class), _) => status.contraception_status = Some(class),
                (None, Some(CheckResult::RingMissing)) => {
                    status.contraception_status = Some(ContraceptionStatus::None);
                }
                (None, _) => {}
            }
            match result {
                Some(CheckResult::Pregnant) => status.pregnant = Some(true),
                Some(CheckResult::Normal | CheckResult::RingMissing) => status.pregnant = Some(false),
                Some(CheckResult::Other) | None => {}
            }
        }
        NoticeKind::Pregnancy => status.pregnant = Some(true),
        NoticeKind::Birth => {
            let order = notice
                .field(NoticeField::BirthOrder)
                .map(|value| birth_order(value).ok_or(NotApplicable::Unreadable(NoticeField::BirthOrder)))
                .transpose()?;
            status.children_count = Some(match (order, status.children_count) {
                (Some(order), held) => held.unwrap_or(0).max(order),
                (None, Some(held)) => held.saturating_add(1),
                (None, None) => return Err(NotApplicable::ChildrenCountUnknown),
            });
            status.pregnant = Some(false);
        }
        NoticeKind::MovedOn => {
            let value = notice
                .field(NoticeField::NewCounty)
                .ok_or(NotApplicable::NewCountyUnknown)?;
            let county = CountyCode::parse(value.trim())
                .map_err(|_| NotApplicable::Unreadable(NoticeField::NewCounty))?;
            if county.current() == here.current() {
                return Err(NotApplicable::MovedHere);
            }
            after.residence_county = county;
        }
    }
    let changed = changed_columns(before, &after);
    Ok(RegistryUpdate {
        person: after,
        changed,
    })
}

/// Reads a stored notice body (a JSON object) into fields by name: keys that are notice field
/// names, with text or number values. Other keys are not notice fields and are left out.
pub fn fields_from_json(body: &serde_json::Value) -> BTreeMap<NoticeField, String> {
    let Some(object) = body.as_object() else {
        return BTreeMap::new();
    };
    object
        .iter()
        .filter_map(|(name, value)| {
            let field = name.parse::<NoticeField>().ok()?;
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some((field, text))
        })
        .collect()
}

impl ReceivedNotice {
    /// The value of `field`, when the notice carries one that is not blank.
    fn field(&self, field: NoticeField) -> Option<&str> {
        self.fields
            .get(&field)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }
}

/// The registry columns a notice can change, as the history names them, in this order.
pub const COLUMNS: [&str; 5] = [
    "children_count",
    "contraception_status",
    "contraception_date",
    "pregnant",
    "residence_county",
];

fn changed_columns(before: &Person, after: &Person) -> Vec<&'static str> {
    let (b, a) = (&before.status, &after.status);
    let differs = [
        b.children_count != a.children_count,
        b.contraception_status != a.contraception_status,
        b.contraception_date != a.contraception_date,
        b.pregnant != a.pregnant,
        before.residence_county != after.residence_county,
    ];
    COLUMNS
        .iter()
        .zip(differs)
        .filter_map(|(column, differs)| differs.then_some(*column))
        .collect()
}

fn unchanged(person: Person) -> RegistryUpdate {
    RegistryUpdate {
        person,
        changed: Vec::new(),
    }
}

/// The `check_result` of a contraception check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CheckResult {
    Normal,
    Pregnant,
    RingMissing,
    Other,
}

impl CheckResult {
    fn parse(value: &str) -> Option<CheckResult> {
        Some(match value {
            "normal" => CheckResult::Normal,
            "pregnant" => CheckResult::Pregnant,
            "ring_missing" => CheckResult::RingMissing,
            "other" => CheckResult::Other,
            _ => return None,
        })
    }
}

/// The registry's class of a `measure` named by a check.
fn measure_class(value: &str) -> Option<ContraceptionStatus> {
    Some(match value {
        "iud" | "implant" | "ligation" => ContraceptionStatus::LongActing,
        "pill" | "condom" => ContraceptionStatus::ShortActing,
        "none" => ContraceptionStatus::None,
        _ => return None,
    })
}

/// A `birth_order`: 1 to 20.
fn birth_order(value: &str) -> Option<u8> {
    value.parse::<u8>().ok().filter(|order| (1..=20).contains(order))
}
