//! `hancha report` against a real node: the four indicators counted from a registry and an
//! exchange whose every number is worked out by hand below.
//!
//! The fixture (鼎城区 430703's registry; E is the last day of the current quarter):
//!
//! | who | flow | township | sex, age on E | certificate | exchange |
//! |---|---|---|---|---|---|
//! | A | inflow | T1 | woman 30 | | verified: found |
//! | B | inflow | T1 | woman, 15 exactly on E | | verification: not found |
//! | C | inflow | T1 | man 30 | | |
//! | D | inflow | T1 | woman, 50 exactly on E | | verified: found |
//! | E | inflow | T2 | woman 49 (50 the day after E) | | verified: found, last quarter |
//! | F | inflow | T2 | woman 14 (15 the day after E) | | |
//! | H | inflow | none | woman 35 | | verified: found |
//! | P | outflow | T1 | woman 30 | valid until E + 1 year | outflow inquiry answered: found |
//! | Q | outflow | T1 | woman 40 | valid until E − 1 day | answered at 23:59:59 (China) on the last day of last quarter |
//! | R | outflow | T1 | woman 20 | expired | |
//! | S | outflow | T1 | man 30 | none | answered: not found, at 00:00:00 (China) on the first day |
//! | U | outflow | T2 | woman 45 | valid until E | |
//! | V | outflow | T2 | woman 16 | none | |
//! | W | outflow | T2 | woman 55 | valid until E + 1 year | answered: found |
//!
//! and 新化县 431322 asked 鼎城区 about its outflow persons A, K1 (twice) and K2 (received at the
//! last second of last quarter); K1 and K2 are not in 鼎城区's registry. T1 is 430703001 玉霞街道,
//! T2 is 430703002 红云街道.

mod common;

use std::process::Output;

use assert_cmd::Command;
use assert_cmd::assert::OutputAssertExt;
use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use common::*;
use hancha::domain::division::{CountyCode, TownshipCode, townships_of};
use hancha::domain::message::Subject;
use hancha::domain::person::Person;
use hancha::domain::report::ReportPeriod;
use hancha::domain::resident_id::{ResidentId, today_in_china};
use hancha::domain::vocabulary::{CertificateStatus, InquiryKind, Priority};
use hancha::node::InquiryDraft;
use hancha::proto::operator as pb;
use serde_json::Value;

/// `[numerator, denominator]` of 登记率, 办证率, 持验证率, 流出人口函查率, in that order.
type Counts = [[u64; 2]; 4];

/// Nobody counted.
const NOTHING: Counts = [[0, 0]; 4];

/// The fixture's expected numbers for the current quarter (ages on its last day E).
mod current_quarter {
    use super::Counts;
    /// 玉霞街道 T1.
    pub const T1: Counts = [
        // 登记率: inflow A, B, C, D are all in the registry: 4 of 4.
        [4, 4],
        // 办证率: outflow women 15–49 are P, Q, R (S is a man); only P's certificate is valid on E
        // (Q's ended the day before, R's expired): 1 of 3.
        [1, 3],
        // 持验证率: inflow women 15–49 are A and B (C is a man, D is 50); A was verified, B's
        // verification found nothing: 1 of 2.
        [1, 2],
        // 流出人口函查率: outflow P, Q, R, S; P and S (not found counts: it is an answer, given at
        // the first second of the quarter) answered in the quarter, Q's answer came one second
        // before it, R was never asked: 2 of 4.
        [2, 4],
    ];
    /// 红云街道 T2.
    pub const T2: Counts = [
        // 登记率: inflow E, F: 2 of 2.
        [2, 2],
        // 办证率: outflow women 15–49 are U and V (W is 55); U's certificate is valid through E
        // itself, V holds none: 1 of 2.
        [1, 2],
        // 持验证率: E (49) was verified last quarter, which still counts; F (14) is too young:
        // 1 of 1.
        [1, 1],
        // 流出人口函查率: outflow U, V, W; only W was asked: 1 of 3.
        [1, 3],
    ];
    /// 鼎城区 as a whole: T1 + T2 + H (inflow, no township) + K1.
    pub const COUNTY: Counts = [
        // 登记率: registered A–F and H = 7; known = those 7 + K1 (asked about twice, counted
        // once); A was asked about but is registered; K2 was asked about last quarter: 7 of 8.
        [7, 8],
        // 办证率: 1 + 1 = 2 of 3 + 2 = 5.
        [2, 5],
        // 持验证率: T1 1/2 + T2 1/1 + H, verified: 3 of 4.
        [3, 4],
        // 流出人口函查率: 2 + 1 = 3 of 4 + 3 = 7.
        [3, 7],
    ];
}

/// The fixture's expected numbers for the quarter before (ages on its last day E′, about three
/// months before E; every answer but E's verification, Q's and K2's came after E′).
mod previous_quarter {
    use super::Counts;
    /// 玉霞街道 T1.
    pub const T1: Counts = [
        // 登记率: the registry is today's: 4 of 4.
        [4, 4],
        // 办证率: P (29 on E′), Q (39), R (19); Q's certificate was still valid on E′: 2 of 3.
        [2, 3],
        // 持验证率: A (29) and D (49 on E′: 50 only on E); B is 14 on E′. Neither verification
        // had been answered by E′: 0 of 2.
        [0, 2],
        // 流出人口函查率: only Q was answered within it (its last second): 1 of 4.
        [1, 4],
    ];
    /// 红云街道 T2.
    pub const T2: Counts = [
        [2, 2],
        // 办证率: U (44), V (15 on E′); W is 54: U's certificate valid, V none: 1 of 2.
        [1, 2],
        // 持验证率: E (49), verified within it: 1 of 1. F is 14.
        [1, 1],
        // 流出人口函查率: nobody answered within it: 0 of 3.
        [0, 3],
    ];
    pub const COUNTY: Counts = [
        // 登记率: 7 registered; known adds K2 (received within it), not K1 (received after): 7 of 8.
        [7, 8],
        // 办证率: 2 + 1 = 3 of 3 + 2 = 5.
        [3, 5],
        // 持验证率: T1 0/2 + T2 1/1 + H (34), verified only after E′: 1 of 4.
        [1, 4],
        // 流出人口函查率: 1 of 7.
        [1, 7],
    ];
}

/// The two counties with the registries and exchange described in the module documentation.
struct Fixture {
    cluster: Cluster,
    /// The current quarter in China.
    period: ReportPeriod,
    /// 玉霞街道 and 红云街道.
    townships: [TownshipCode; 2],
}

impl Fixture {
    async fn start() -> Fixture {
        let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
        let period = ReportPeriod::current_quarter(today_in_china());
        let end = period.end();
        let dingcheng = CountyCode::parse(DINGCHENG).unwrap();
        let all = townships_of(dingcheng);
        let (t1, t2) = (all[0], all[1]);
        assert_eq!((t1.as_str(), t2.as_str()), ("430703001", "430703002"));

        // Birth dates: `exactly(n)` is n on E and not a day older; `aged(n)` turned n a month
        // before E (so was n − 1 at the end of last quarter).
        let exactly = |years: u32| end.checked_sub_months(Months::new(12 * years)).unwrap();
        let aged = |years: u32| exactly(years) - Days::new(30);
        let mut sequence = 0;
        let mut id = |address: &str, born: NaiveDate, female: bool| {
            sequence += 2;
            let sequence = if female { sequence } else { sequence + 1 };
            resident_id(&format!("{address}{}{sequence:03}", born.format("%Y%m%d")))
        };
        let a = id(XINHUA, aged(30), true);
        let b = id(XINHUA, exactly(15), true);
        let c = id(XINHUA, aged(30), false);
        let d = id(XINHUA, exactly(50), true);
        let e = id(XINHUA, exactly(50) + Days::new(1), true);
        let f = id(XINHUA, exactly(15) + Days::new(1), true);
        let h = id(XINHUA, aged(35), true);
        let p = id(DINGCHENG, aged(30), true);
        let q = id(DINGCHENG, aged(40), true);
        let r = id(DINGCHENG, aged(20), true);
        let s = id(DINGCHENG, aged(30), false);
        let u = id(DINGCHENG, aged(45), true);
        let v = id(DINGCHENG, aged(16), true);
        let w = id(DINGCHENG, aged(55), true);
        let k1 = id(XINHUA, aged(28), true);
        let k2 = id(XINHUA, aged(33), true);

        let inflow = |id: &ResidentId, township: Option<TownshipCode>| {
            let mut person = inflow_person(id.clone(), XINHUA, DINGCHENG);
            person.status.township = township;
            person
        };
        let outflow =
            |id: &ResidentId, township, status: Option<CertificateStatus>, until: Option<NaiveDate>| {
                let mut person = outflow_person(id.clone(), DINGCHENG, XINHUA);
                person.status.township = Some(township);
                person.status.certificate_status = status;
                person.status.certificate_valid_until = until;
                person
            };
        let valid = Some(CertificateStatus::Valid);
        let next_year = Some(end.checked_add_months(Months::new(12)).unwrap());
        let dingcheng_registry: Vec<Person> = vec![
            inflow(&a, Some(t1)),
            inflow(&b, Some(t1)),
            inflow(&c, Some(t1)),
            inflow(&d, Some(t1)),
            inflow(&e, Some(t2)),
            inflow(&f, Some(t2)),
            inflow(&h, None),
            outflow(&p, t1, valid, next_year),
            outflow(&q, t1, valid, Some(end - Days::new(1))),
            outflow(
                &r,
                t1,
                Some(CertificateStatus::Expired),
                Some(end - Days::new(400)),
            ),
            outflow(&s, t1, Some(CertificateStatus::None), None),
            outflow(&u, t2, valid, Some(end)),
            outflow(&v, t2, Some(CertificateStatus::None), None),
            outflow(&w, t2, valid, next_year),
        ];
        cluster
            .node(DINGCHENG)
            .store()
            .upsert_persons(&dingcheng_registry)
            .await
            .unwrap();
        // 新化县 issued A's, D's, E's and H's certificates (B is unknown there), and has P, Q and
        // W living there (S is unknown there).
        let mut xinhua_registry: Vec<Person> = [&a, &d, &e, &h]
            .into_iter()
            .map(|id| outflow_person(id.clone(), XINHUA, DINGCHENG))
            .collect();
        xinhua_registry.extend([&p, &q, &w].map(|id| inflow_person(id.clone(), DINGCHENG, XINHUA)));
        cluster
            .node(XINHUA)
            .store()
            .upsert_persons(&xinhua_registry)
            .await
            .unwrap();

        let drafts = |kind: InquiryKind, subjects: &[&ResidentId]| -> Vec<InquiryDraft> {
            subjects
                .iter()
                .map(|id| InquiryDraft {
                    kind,
                    priority: Priority::Normal,
                    subject: Subject {
                        resident_id: (*id).clone(),
                        certificate_number: None,
                    },
                    message_id: None,
                })
                .collect()
        };
        let xinhua = CountyCode::parse(XINHUA).unwrap();
        let mut ours = drafts(InquiryKind::CertificateVerification, &[&a, &b, &d, &e, &h]);
        ours.extend(drafts(InquiryKind::OutflowStatus, &[&p, &q, &s, &w]));
        cluster
            .node(DINGCHENG)
            .send_inquiries(xinhua, ours)
            .await
            .unwrap();
        let theirs = drafts(InquiryKind::OutflowStatus, &[&a, &k1, &k1, &k2]);
        cluster
            .node(XINHUA)
            .send_inquiries(dingcheng, theirs)
            .await
            .unwrap();

        let node = cluster.node(DINGCHENG);
        eventually(
            "鼎城区's 9 inquiries are answered and 新化县's 4 received",
            || async {
                let answered = count(
                    node,
                    "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered'",
                )
                .await;
                let received =
                    count(node, "SELECT count(*) FROM inquiries WHERE direction = 'inbound'").await;
                (answered == 9 && received == 4).then_some(())
            },
        )
        .await;
        let outcome = |id: &ResidentId, kind: &str| {
            let sql = format!(
                "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND kind = '{kind}'
                 AND subject_id = '{id}' AND outcome = 'found'"
            );
            async move { count(node, &sql).await }
        };
        assert_eq!(outcome(&a, "certificate_verification").await, 1, "A is verified");
        assert_eq!(outcome(&b, "certificate_verification").await, 0, "B is not found");
        assert_eq!(outcome(&s, "outflow_status").await, 0, "S is not found");

        // Move some records to either side of the quarter's first instant (00:00 in China).
        let start = period.start_instant();
        let last_second_before = start - chrono::Duration::seconds(1);
        let redate = |column: &str, at: DateTime<Utc>, direction: &str, kind: &str, id: &ResidentId| {
            let sql = format!(
                "UPDATE inquiries SET {column} = $1 WHERE direction = $2 AND kind = $3 AND subject_id = $4"
            );
            let (direction, kind, id) = (direction.to_string(), kind.to_string(), id.as_str().to_string());
            async move {
                let result = sqlx::query(&sql)
                    .bind(at)
                    .bind(direction)
                    .bind(kind)
                    .bind(id)
                    .execute(&common::database(node.store()).await)
                    .await
                    .unwrap();
                assert_eq!(result.rows_affected(), 1, "{sql}");
            }
        };
        redate(
            "answered_at",
            last_second_before,
            "outbound",
            "outflow_status",
            &q,
        )
        .await;
        redate("answered_at", start, "outbound", "outflow_status", &s).await;
        let ten_days_before = start - chrono::Duration::days(10);
        redate(
            "answered_at",
            ten_days_before,
            "outbound",
            "certificate_verification",
            &e,
        )
        .await;
        redate(
            "received_at",
            last_second_before,
            "inbound",
            "outflow_status",
            &k2,
        )
        .await;

        Fixture {
            cluster,
            period,
            townships: [t1, t2],
        }
    }

    /// Runs `hancha report --node <鼎城区's operator API> <args>` as an operator would.
    async fn report(&self, args: &[&str]) -> Output {
        report_command(&self.cluster, args).await
    }
}

async fn report_command(cluster: &Cluster, args: &[&str]) -> Output {
    let address = cluster.operator_address(DINGCHENG).to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
        command.arg("report").arg("--node").arg(address).args(args);
        for variable in [
            "HANCHA_NODE",
            "HANCHA_OPERATOR_CERT",
            "HANCHA_OPERATOR_KEY",
            "HANCHA_NODE_CA",
            "HANCHA_NODE_COUNTY",
        ] {
            command.env_remove(variable);
        }
        command.output().expect("run hancha report")
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// The counts of one JSON indicator set (a township object or the county total).
fn json_counts(object: &Value) -> Counts {
    ["registration", "certificate", "verification", "outflow_inquiry"].map(|name| {
        let indicator = &object[name];
        let number = |field: &str| {
            indicator[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}.{field} in {object}"))
        };
        [number("numerator"), number("denominator")]
    })
}

fn json_township<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["townships"]
        .as_array()
        .expect("townships")
        .iter()
        .find(|t| t["township"] == code)
        .unwrap_or_else(|| panic!("township {code} in {report}"))
}

async fn json_report(fixture: &Fixture, period: &str) -> Value {
    let output = fixture.report(&["--period", period, "--json"]).await;
    let text = stdout(&output.assert().success().get_output().clone());
    serde_json::from_str(&text).expect("one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_counts_each_indicator_per_township_and_for_the_county() {
    let fixture = Fixture::start().await;
    let period = fixture.period.label();
    let report = json_report(&fixture, &period).await;

    assert_eq!(report["county"], DINGCHENG);
    assert_eq!(report["county_name"], "鼎城区");
    assert_eq!(report["period"], period.as_str());
    assert_eq!(report["period_start"], fixture.period.start().to_string());
    assert_eq!(report["period_end"], fixture.period.end().to_string());
    let [t1, t2] = fixture.townships.map(|t| t.as_str().to_string());
    assert_eq!(json_township(&report, &t1)["name"], "玉霞街道");
    assert_eq!(json_counts(json_township(&report, &t1)), current_quarter::T1);
    assert_eq!(json_counts(json_township(&report, &t2)), current_quarter::T2);
    assert_eq!(json_counts(&report["county_total"]), current_quarter::COUNTY);
    // Every other township of 鼎城区 is listed, with nobody counted.
    let townships = report["townships"].as_array().unwrap();
    assert_eq!(
        townships.len(),
        townships_of(CountyCode::parse(DINGCHENG).unwrap()).len()
    );
    for township in townships
        .iter()
        .filter(|t| t["township"] != t1 && t["township"] != t2)
    {
        assert_eq!(json_counts(township), NOTHING, "{township}");
        assert_eq!(township["registration"]["rate"], Value::Null, "0/0 has no rate");
    }
    assert_eq!(report["county_total"]["registration"]["rate"], 0.875);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_quarter_counts_its_own_answers_and_ages_on_its_own_last_day() {
    let fixture = Fixture::start().await;
    let previous = fixture.period.previous();
    let report = json_report(&fixture, &previous.label()).await;

    assert_eq!(report["period_end"], previous.end().to_string());
    let [t1, t2] = fixture.townships.map(|t| t.as_str().to_string());
    assert_eq!(json_counts(json_township(&report, &t1)), previous_quarter::T1);
    assert_eq!(json_counts(json_township(&report, &t2)), previous_quarter::T2);
    assert_eq!(json_counts(&report["county_total"]), previous_quarter::COUNTY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_shows_each_rate_with_its_numerator_and_denominator() {
    let fixture = Fixture::start().await;
    let output = fixture.report(&[]).await; // the default period: the current quarter
    let text = stdout(&output.assert().success().get_output().clone());

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("430703 鼎城区 — report {}", fixture.period.label()),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "period {} to {}, ages on {}; as of ",
            fixture.period.start(),
            fixture.period.end(),
            fixture.period.end()
        )),
        "{text}"
    );
    assert!(lines[1].ends_with("(Asia/Shanghai)"), "{text}");
    let cells = |prefix: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("a line for {prefix} in\n{text}"));
        line.split("  ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(
        cells("township"),
        [
            "township",
            "登记率",
            "办证率",
            "持验证率",
            "流出人口函查率",
            "查环查孕结果通报率"
        ]
    );
    assert_eq!(
        cells("430703001"),
        [
            "430703001 玉霞街道",
            "100.0% (4/4)",
            "33.3% (1/3)",
            "50.0% (1/2)",
            "50.0% (2/4)",
            // married inflow women 15–49 (A, B): no check result sent (tests/report_check_results.rs)
            "0.0% (0/2)"
        ]
    );
    assert_eq!(
        cells("430703002"),
        [
            "430703002 红云街道",
            "100.0% (2/2)",
            "50.0% (1/2)",
            "100.0% (1/1)",
            "33.3% (1/3)",
            "0.0% (0/1)"
        ]
    );
    assert_eq!(
        cells("430703003"),
        [
            "430703003 郭家铺街道",
            "— (0/0)",
            "— (0/0)",
            "— (0/0)",
            "— (0/0)",
            "— (0/0)"
        ]
    );
    // 3 of 7 is 42.857…%: rounded down, as every rate is.
    assert_eq!(
        cells("430703 鼎城区 (county)"),
        [
            "430703 鼎城区 (county)",
            "87.5% (7/8)",
            "40.0% (2/5)",
            "75.0% (3/4)",
            "42.8% (3/7)",
            "0.0% (0/4)"
        ]
    );
    assert!(text.contains("count in the county total only"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_has_a_header_row_one_row_per_township_and_the_county_last() {
    let fixture = Fixture::start().await;
    let period = fixture.period.label();
    let output = fixture.report(&["--period", &period, "--csv"]).await;
    let bytes = output.assert().success().get_output().stdout.clone();
    assert!(!bytes.starts_with(b"\xEF\xBB\xBF"), "no byte-order mark");

    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "level",
            "code",
            "name",
            "period",
            "period_start",
            "period_end",
            "registration_numerator",
            "registration_denominator",
            "registration_rate",
            "certificate_numerator",
            "certificate_denominator",
            "certificate_rate",
            "verification_numerator",
            "verification_denominator",
            "verification_rate",
            "outflow_inquiry_numerator",
            "outflow_inquiry_denominator",
            "outflow_inquiry_rate",
            "check_report_numerator",
            "check_report_denominator",
            "check_report_rate",
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(
        rows.len(),
        townships_of(CountyCode::parse(DINGCHENG).unwrap()).len() + 1
    );
    let numbers = |row: &[String]| -> Counts {
        [0, 1, 2, 3].map(|i| [row[6 + 3 * i].parse().unwrap(), row[7 + 3 * i].parse().unwrap()])
    };
    let t1 = rows.iter().find(|r| r[1] == "430703001").expect("T1 row");
    let (start, end) = (
        fixture.period.start().to_string(),
        fixture.period.end().to_string(),
    );
    assert_eq!(
        t1[..6],
        ["township", "430703001", "玉霞街道", &period, &start, &end]
    );
    assert_eq!(numbers(t1), current_quarter::T1);
    let county = rows.last().unwrap();
    assert_eq!(county[..3], ["county", "430703", "鼎城区"]);
    assert_eq!(numbers(county), current_quarter::COUNTY);
    // Rates as fractions a spreadsheet can compute with, rounded down; empty for 0/0.
    assert_eq!(county[8], "0.8750");
    assert_eq!(county[17], "0.4285");
    let empty = rows.iter().find(|r| r[1] == "430703003").unwrap();
    assert_eq!(empty[8], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_filter_reports_that_township_alone() {
    let fixture = Fixture::start().await;
    let t2 = fixture.townships[1].as_str();
    let output = fixture
        .report(&["--period", &fixture.period.label(), "--township", t2, "--json"])
        .await;
    let report: Value =
        serde_json::from_str(&stdout(&output.assert().success().get_output().clone())).unwrap();
    let townships = report["townships"].as_array().unwrap();
    assert_eq!(townships.len(), 1, "{report}");
    assert_eq!(townships[0]["township"], t2);
    assert_eq!(townships[0]["name"], "红云街道");
    assert_eq!(json_counts(&townships[0]), current_quarter::T2);
    assert_eq!(report["county_total"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_of_another_county_is_refused_naming_the_field() {
    let cluster = Cluster::start(&[DINGCHENG], &[]).await;
    let xinhua_township = townships_of(CountyCode::parse(XINHUA).unwrap())[0];
    let output = report_command(&cluster, &["--township", xinhua_township.as_str()]).await;
    let assert = output.assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.starts_with("error: township: "), "{stderr}");
    assert!(stderr.contains(xinhua_township.as_str()), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_period_is_a_usage_error_and_the_node_refuses_it_too() {
    let cluster = Cluster::start(&[DINGCHENG], &[]).await;
    let output = report_command(&cluster, &["--period", "2026Q5"]).await;
    let assert = output.assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("quarter must be 1 to 4"), "{stderr}");

    // Another client of the operator API gets INVALID_ARGUMENT with a field violation.
    let status = cluster
        .operator(DINGCHENG)
        .await
        .report(pb::ReportRequest {
            period: "2026-13".into(),
            township: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    use tonic_types::StatusExt;
    let violations = status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "period");
    assert!(
        violations[0].description.contains("month must be 01 to 12"),
        "{violations:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_registry_reports_nothing_to_count_rather_than_zero_percent() {
    let cluster = Cluster::start(&[DINGCHENG], &[]).await;
    let output = report_command(&cluster, &["--json"]).await;
    let report: Value =
        serde_json::from_str(&stdout(&output.assert().success().get_output().clone())).unwrap();
    let expected_period = ReportPeriod::current_quarter(today_in_china());
    assert_eq!(report["period"], expected_period.label());
    assert_eq!(json_counts(&report["county_total"]), NOTHING);
    assert_eq!(report["county_total"]["certificate"]["rate"], Value::Null);
}
