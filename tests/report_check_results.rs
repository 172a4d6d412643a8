//! 查环查孕结果通报率 in `hancha report`: inflow married women 15–49 whose quarterly check result
//! (a `contraception_check` notice dated in the period) went to their county of registration.
//!
//! 鼎城区 430703's registry, all registered in 新化县 431322 unless said otherwise (T1 玉霞街道,
//! T2 红云街道; "in" and "last" are check dates in the current and the previous quarter):
//!
//! | who | flow | township | woman, age, marital status | notices sent | counts |
//! |---|---|---|---|---|---|
//! | M1 | inflow | T1 | 30, married | two checks in, to 新化县 | 1 of 1, once |
//! | M2 | inflow | T1 | 30, married | a check last quarter | 0 of 1 (1 of 1 last quarter) |
//! | M3 | inflow | T1 | 30, married | a pregnancy notice in | 0 of 1 |
//! | M4 | inflow | T1 | 30, married | a check in, received (inbound) | 0 of 1 |
//! | S1 | inflow | T1 | 30, single | a check in | not concerned |
//! | X1 | inflow | T1 | man 30, married | a check in | not concerned |
//! | M5 | inflow | T2 | 30, married | none | 0 of 1 |
//! | M6 | inflow | T2 | 30, married | a check in, to 邵东市 | 0 of 1 |
//! | N1 | inflow | T2 | 55, married | a check in | not concerned |
//! | O1 | outflow (of 鼎城区) | T1 | 30, married | a check in, to 新化县 | not concerned |

mod common;

use assert_cmd::Command;
use chrono::{Days, Months, NaiveDate};
use common::*;
use hancha::domain::division::{CountyCode, townships_of};
use hancha::domain::person::Person;
use hancha::domain::report::ReportPeriod;
use hancha::domain::resident_id::{ResidentId, today_in_china};
use hancha::domain::vocabulary::MaritalStatus;
use hancha::node::Node;
use serde_json::Value;

/// Records that a notice of `kind` about `subject`, dated `occurred_on`, was sent to `peer`
/// (`outbound`) or received from it. The one place the tests make notices: the sending path
/// (`hancha notify`) replaces this insert when it exists.
async fn record_notice(
    node: &Node,
    direction: &str,
    kind: &str,
    subject: &ResidentId,
    peer: &str,
    occurred_on: NaiveDate,
) {
    let pool = database(node.store()).await;
    sqlx::query(
        "INSERT INTO notices (message_id, direction, peer_county, agreement_id, agreement_hash, kind,
                              subject_id, occurred_on, body)
         VALUES ($1, $2, $3, 'test-agreement', $4, $5, $6, $7, '{}')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(direction)
    .bind(peer)
    .bind("0".repeat(64))
    .bind(kind)
    .bind(subject.as_str())
    .bind(occurred_on)
    .execute(&pool)
    .await
    .expect("a notice row");
}

/// `[numerator, denominator]` of 查环查孕结果通报率 for T1, T2 and the county in `report`.
fn check_report(report: &Value) -> [[u64; 2]; 3] {
    let township = |code: &str| {
        report["townships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["township"] == code)
            .unwrap_or_else(|| panic!("{code} in {report}"))
            .clone()
    };
    let counts = |object: &Value| {
        let indicator = &object["check_report"];
        [
            indicator["numerator"].as_u64().unwrap(),
            indicator["denominator"].as_u64().unwrap(),
        ]
    };
    [
        counts(&township("430703001")),
        counts(&township("430703002")),
        counts(&report["county_total"]),
    ]
}

async fn json_report(cluster: &Cluster, period: &str) -> Value {
    let address = cluster.operator_address(DINGCHENG).to_string();
    let period = period.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("hancha")
            .unwrap()
            .args(["report", "--node", &address, "--period", &period, "--json"])
            .env_remove("HANCHA_NODE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_results_reported_to_the_origin_count_each_married_inflow_woman_once() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.node(DINGCHENG);
    let period = ReportPeriod::current_quarter(today_in_china());
    let (inside, last_quarter) = (period.start(), period.previous().end());
    let all = townships_of(CountyCode::parse(DINGCHENG).unwrap());
    let (t1, t2) = (all[0], all[1]);
    let aged =
        |years: u32| period.end().checked_sub_months(Months::new(12 * years)).unwrap() - Days::new(120);
    let mut sequence = 0;
    let mut id = |address: &str, years: u32, female: bool| {
        sequence += 2;
        let sequence = if female { sequence } else { sequence + 1 };
        resident_id(&format!("{address}{}{sequence:03}", aged(years).format("%Y%m%d")))
    };
    let [m1, m2, m3, m4, s1] = [0; 5].map(|_| id(XINHUA, 30, true));
    let x1 = id(XINHUA, 30, false);
    let [m5, m6] = [0; 2].map(|_| id(XINHUA, 30, true));
    let n1 = id(XINHUA, 55, true);
    let o1 = id(DINGCHENG, 30, true);
    let inflow = |id: &ResidentId, township, marital| {
        let mut person = inflow_person(id.clone(), XINHUA, DINGCHENG);
        person.status.township = Some(township);
        person.status.marital_status = Some(marital);
        person
    };
    let married = MaritalStatus::Married;
    let mut outflow = outflow_person(o1.clone(), DINGCHENG, XINHUA);
    outflow.status.township = Some(t1);
    let registry: Vec<Person> = vec![
        inflow(&m1, t1, married),
        inflow(&m2, t1, married),
        inflow(&m3, t1, married),
        inflow(&m4, t1, married),
        inflow(&s1, t1, MaritalStatus::Single),
        inflow(&x1, t1, married),
        inflow(&m5, t2, married),
        inflow(&m6, t2, married),
        inflow(&n1, t2, married),
        outflow,
    ];
    node.store().upsert_persons(&registry).await.unwrap();

    let check = "contraception_check";
    record_notice(node, "outbound", check, &m1, XINHUA, inside).await;
    record_notice(node, "outbound", check, &m1, XINHUA, inside + Days::new(20)).await;
    record_notice(node, "outbound", check, &m2, XINHUA, last_quarter).await;
    record_notice(node, "outbound", "pregnancy", &m3, XINHUA, inside).await;
    record_notice(node, "inbound", check, &m4, XINHUA, inside).await;
    record_notice(node, "outbound", check, &s1, XINHUA, inside).await;
    record_notice(node, "outbound", check, &x1, XINHUA, inside).await;
    record_notice(node, "outbound", check, &m6, SHAODONG, inside).await;
    record_notice(node, "outbound", check, &n1, XINHUA, inside).await;
    record_notice(node, "outbound", check, &o1, XINHUA, inside).await;

    let now = json_report(&cluster, &period.label()).await;
    // T1: M1 (twice, once) of M1–M4; T2: nobody of M5, M6; the county: 1 of 6.
    assert_eq!(check_report(&now), [[1, 4], [0, 2], [1, 6]], "{now}");
    // The quarter before: only M2's check is dated in it.
    let before = json_report(&cluster, &period.previous().label()).await;
    assert_eq!(check_report(&before), [[1, 4], [0, 2], [1, 6]], "{before}");

    // The table and the CSV name it next to the others.
    let address = cluster.operator_address(DINGCHENG).to_string();
    let label = period.label();
    let (table, csv) = tokio::task::spawn_blocking(move || {
        let run = |extra: &[&str]| {
            let output = Command::cargo_bin("hancha")
                .unwrap()
                .args(["report", "--node", &address, "--period", &label])
                .args(extra)
                .env_remove("HANCHA_NODE")
                .output()
                .unwrap();
            String::from_utf8(output.stdout).unwrap()
        };
        (run(&[]), run(&["--csv"]))
    })
    .await
    .unwrap();
    assert!(table.contains("查环查孕结果通报率"), "{table}");
    assert!(table.contains("16.6% (1/6)"), "{table}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("check_report_numerator,check_report_denominator,check_report_rate")
    );
}
