//! The notice terms of a direction: which fields each notice kind may carry (`notice_fields`)
//! and what a received notice does at the receiver (`notice_effect`).

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::check_names;
use crate::domain::agreement::error::{Collector, Problem};
use crate::domain::vocabulary::{NoticeEffect, NoticeField, NoticeKind};

/// `notice_fields = { birth = ["child_sex", …], … }` as written: kind → field names.
pub(super) type RawNoticeFields = BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>;

/// `notice_effect = { contraception_check = "apply", … }` as written: kind → effect name.
pub(super) type RawNoticeEffect = BTreeMap<Spanned<String>, Spanned<String>>;

/// `notice_fields = { birth = ["child_sex", …], … }`: each key a kind the direction allows, each
/// field one of that kind's ([`NoticeField::kind`]), each listed once.
pub(super) fn check_notice_fields(
    raw: &Spanned<RawNoticeFields>,
    allowed_kinds: &BTreeSet<NoticeKind>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Option<BTreeMap<NoticeKind, BTreeSet<NoticeField>>> {
    let mut checked = BTreeMap::new();
    let mut all_good = true;
    for (kind_name, fields) in raw.get_ref() {
        let kind_path = format!("{path}.{}", kind_name.get_ref());
        let kind = match kind_name.get_ref().parse::<NoticeKind>() {
            Ok(kind) if allowed_kinds.contains(&kind) => kind,
            Ok(kind) => {
                errors.push(
                    kind_name.span(),
                    &kind_path,
                    Problem::FieldsForKindNotAllowed { kind },
                );
                all_good = false;
                continue;
            }
            Err(unknown) => {
                errors.push(kind_name.span(), &kind_path, Problem::UnknownName(unknown));
                all_good = false;
                continue;
            }
        };
        let Some(names) = check_names::<NoticeField>(fields, &kind_path, errors) else {
            all_good = false;
            continue;
        };
        for field in &names {
            if field.kind() != kind {
                let span = fields
                    .get_ref()
                    .iter()
                    .find(|name| name.get_ref() == field.as_str())
                    .map_or_else(|| fields.span(), |name| name.span());
                errors.push(
                    span,
                    &kind_path,
                    Problem::FieldOfOtherKind { field: *field, kind },
                );
                all_good = false;
            }
        }
        checked.insert(kind, names);
    }
    all_good.then_some(checked)
}

/// `notice_effect = { contraception_check = "apply", … }`: each key a kind the direction
/// allows, each value an effect name ([`NoticeEffect`]).
pub(super) fn check_notice_effect(
    raw: &Spanned<RawNoticeEffect>,
    allowed_kinds: &BTreeSet<NoticeKind>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Option<BTreeMap<NoticeKind, NoticeEffect>> {
    let mut checked = BTreeMap::new();
    let mut all_good = true;
    for (kind_name, effect) in raw.get_ref() {
        let kind_path = format!("{path}.{}", kind_name.get_ref());
        let kind = match kind_name.get_ref().parse::<NoticeKind>() {
            Ok(kind) if allowed_kinds.contains(&kind) => Some(kind),
            Ok(kind) => {
                errors.push(
                    kind_name.span(),
                    &kind_path,
                    Problem::FieldsForKindNotAllowed { kind },
                );
                None
            }
            Err(unknown) => {
                errors.push(kind_name.span(), &kind_path, Problem::UnknownName(unknown));
                None
            }
        };
        let effect = match effect.get_ref().parse::<NoticeEffect>() {
            Ok(effect) => Some(effect),
            Err(unknown) => {
                errors.push(effect.span(), &kind_path, Problem::UnknownName(unknown));
                None
            }
        };
        match (kind, effect) {
            (Some(kind), Some(effect)) => {
                checked.insert(kind, effect);
            }
            _ => all_good = false,
        }
    }
    all_good.then_some(checked)
}

/// Every kind the direction allows with its effect: the one named, or
/// [`NoticeEffect::Operator`]. So a document that names `"operator"` and one that leaves it out
/// mean the same and have the same canonical form.
pub(super) fn effects_with_defaults(
    mut named: BTreeMap<NoticeKind, NoticeEffect>,
    allowed_kinds: &BTreeSet<NoticeKind>,
) -> BTreeMap<NoticeKind, NoticeEffect> {
    for kind in allowed_kinds {
        named.entry(*kind).or_default();
    }
    named
}
