//! Tests of the agreement model, grouped by concern: the example documents and hashing, the
//! errors a document author sees, and the policy checks the exchange relies on.

mod effect;
mod errors;
mod hashing;
mod policy;

use std::collections::BTreeSet;

use super::*;
use crate::domain::vocabulary::{InquiryKind, MessageKind, NoticeField, NoticeKind, Priority, StatusField};

/// The agreement between 鼎城区 and 新化县 as shipped.
const XINHUA: &str = include_str!("../../../../examples/agreements/430703-431322.toml");
/// The agreement between 鼎城区 and 邵东市 as shipped.
const SHAODONG: &str = include_str!("../../../../examples/agreements/430703-430582.toml");

/// A small valid agreement whose line numbers the error tests refer to:
/// 4 parties, 5–6 validity, 7 retention, 8 first `[[direction]]`, 11 its inquiry kinds, 14 its reply days,
/// 19 second `[[direction]]`.
const BASE: &str = r#"id = "430703-431322"
version = 1
title = "鼎城区—新化县 流动人口服务管理双向协议"
parties = ["430703", "431322"]
valid_from = 2026-01-01
valid_until = 2028-12-31
retention_days = 1095
[[direction]]
from = "430703"
to = "431322"
inquiry_kinds = ["certificate_verification", "outflow_status"]
notice_kinds = ["contraception_check", "birth"]
answer_fields = ["certificate_number", "certificate_valid_until", "marital_status"]
reply_days = { normal = 30, urgent = 15 }
notice_days = { receipt = 30, feedback = 30 }
daily_cap = 20000
automatic_answers = true

[[direction]]
from = "431322"
to = "430703"
inquiry_kinds = ["outflow_status"]
notice_kinds = []
answer_fields = ["township", "registered_since"]
reply_days = { normal = 30, urgent = 15 }
daily_cap = 5000
automatic_answers = false
"#;

/// `BASE` with one exact piece of text replaced (which must occur exactly once).
fn base_with(old: &str, new: &str) -> String {
    assert_eq!(
        BASE.matches(old).count(),
        1,
        "{old:?} must occur exactly once in BASE"
    );
    BASE.replacen(old, new, 1)
}

fn parsed(text: &str) -> Agreement {
    match Agreement::parse(text) {
        Ok(agreement) => agreement,
        Err(errors) => panic!("expected a valid agreement, got:\n{errors}"),
    }
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

#[test]
fn parses_the_xinhua_example() {
    let agreement = parsed(XINHUA);
    assert_eq!(agreement.id(), "430703-431322");
    assert_eq!(agreement.version(), 1);
    assert_eq!(agreement.parties(), [county("430703"), county("431322")]);
    assert_eq!(
        agreement.valid_from(),
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
    );
    assert_eq!(
        agreement.valid_until(),
        NaiveDate::from_ymd_opt(2028, 12, 31).unwrap()
    );
    assert_eq!(agreement.directions().len(), 2);
    let dingcheng_asks = agreement.direction(county("430703"), county("431322")).unwrap();
    assert_eq!(
        dingcheng_asks.reply_days(),
        ReplyDays {
            normal: 30,
            urgent: 15
        }
    );
    assert_eq!(dingcheng_asks.daily_cap(), 20000);
    assert!(dingcheng_asks.automatic_answers());
    assert!(!dingcheng_asks.answer_fields().contains(&StatusField::Village));
    assert_eq!(agreement.source_text(), XINHUA);
}

#[test]
fn parses_the_shaodong_example() {
    let agreement = parsed(SHAODONG);
    assert_eq!(agreement.version(), 2);
    assert_eq!(agreement.parties(), [county("430582"), county("430703")]);
    let shaodong_asks = agreement.direction(county("430582"), county("430703")).unwrap();
    assert_eq!(
        shaodong_asks.inquiry_kinds(),
        &BTreeSet::from([InquiryKind::OutflowStatus])
    );
    assert!(shaodong_asks.notice_kinds().is_empty());
    assert_eq!(shaodong_asks.notice_days(), None);
    assert!(!shaodong_asks.automatic_answers());
    let summary = agreement.summary();
    assert!(summary.contains("邵东市") && summary.contains(agreement.canonical_hash().as_str()));
}
