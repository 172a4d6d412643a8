//! `hancha registry import` as an operator uses it: a CSV file from a township's system, sent to
//! a real node over its operator API, written to the node's real database. Bad rows are named by
//! line and skipped, good rows are kept, and the exit code tells a script which happened.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use assert_cmd::assert::{Assert, OutputAssertExt};
use common::{Cluster, DINGCHENG, XINHUA, count, synthetic_id};
use hancha::domain::division::{CountyCode, townships_of};
use hancha::domain::person::Flow;
use hancha::domain::resident_id::ResidentId;
use hancha::proto::operator as pb;
use predicates::prelude::*;

const PERSONS: &str = "SELECT count(*) FROM persons";

/// One node for 鼎城区, with its own fresh database.
async fn dingcheng() -> Cluster {
    Cluster::start(&[DINGCHENG], &[]).await
}

/// Runs `hancha registry import FILE ARGS…` against `county`'s operator API.
async fn import(cluster: &Cluster, county: &str, file: &Path, args: &[&str]) -> Assert {
    let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
    command
        .args(["registry", "import"])
        .arg(file)
        .args(args)
        .args(["--node", &cluster.operator_address(county).to_string()])
        .env_remove("HANCHA_NODE");
    // The node serves on this test's runtime: run the blocking command beside it.
    let output = tokio::task::spawn_blocking(move || command.output().expect("run hancha"))
        .await
        .expect("the command's thread");
    output.assert()
}

/// Writes `text` (UTF-8) to `name` in the cluster's directory.
fn write_csv(cluster: &Cluster, name: &str, text: &str) -> PathBuf {
    write_bytes(cluster, name, text.as_bytes())
}

fn write_bytes(cluster: &Cluster, name: &str, bytes: &[u8]) -> PathBuf {
    let path = cluster.path().join(name);
    std::fs::write(&path, bytes).expect("write the CSV file");
    path
}

/// The `n`-th woman registered in 新化县 (an inflow person for 鼎城区).
fn from_xinhua(n: u32) -> ResidentId {
    synthetic_id(XINHUA, n)
}

/// The `n`-th woman registered in 鼎城区 (an outflow person for 鼎城区).
fn from_dingcheng(n: u32) -> ResidentId {
    synthetic_id(DINGCHENG, n)
}

/// The same number with a wrong check character.
fn with_wrong_check(id: &ResidentId) -> String {
    let text = id.as_str();
    let wrong = if text.ends_with('1') { '2' } else { '1' };
    format!("{}{wrong}", &text[..17])
}

fn stdout_of(assert: &Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("stdout is UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_rows_are_imported_and_each_bad_line_is_named_and_skipped() {
    let cluster = dingcheng().await;
    let node = cluster.node(DINGCHENG);
    let other_township = townships_of(CountyCode::parse(XINHUA).unwrap())[0];
    let bad_id = with_wrong_check(&from_xinhua(2));
    let text = format!(
        "resident_id,name,flow,registered_county,residence_county,township,children_count,pregnant\n\
         {a},刘芳,inflow,{XINHUA},,430703001,1,否\n\
         {bad_id},李娜,inflow,{XINHUA},,,,\n\
         {b},王丽,outflow,,{XINHUA},430703001,0,\n\
         \n\
         {c},张敏,inflow,{XINHUA},,,many,\n\
         {d},陈静,outflow,{XINHUA},{XINHUA},,,\n\
         {e},杨洋,流入,{XINHUA},{DINGCHENG},,,true\n\
         {f},赵雪,inflow,{XINHUA},,{other_township},,\n",
        a = from_xinhua(1),
        b = from_dingcheng(1),
        c = from_xinhua(3),
        d = from_dingcheng(2),
        e = from_xinhua(4),
        f = from_xinhua(5),
    );
    let file = write_csv(&cluster, "persons.csv", &text);

    let assert = import(&cluster, DINGCHENG, &file, &[]).await.code(1);

    let stdout = stdout_of(&assert);
    assert!(
        stdout.starts_with("imported 3 persons; 4 rows skipped:\n"),
        "{stdout}"
    );
    let expected_lines = [
        "line 3: resident_id: the check character (character 18) does not match",
        // line 5 is blank: line numbers are the file's physical lines.
        "line 6: children_count: expected a whole number from 0 to 255",
        "line 7: registered_county: an outflow person is registered in this county (430703), not in 431322",
        &format!("line 9: township: township {other_township} does not belong to county 430703"),
    ];
    let reported: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(reported.len(), expected_lines.len(), "{stdout}");
    for (line, expected) in reported.iter().zip(expected_lines) {
        assert!(
            line.starts_with(expected),
            "{line:?} should start with {expected:?}"
        );
    }
    assert!(
        !stdout.contains(&bad_id),
        "the output must not repeat an ID number"
    );

    assert_eq!(count(node, PERSONS).await, 3);
    for refused in [from_xinhua(3), from_dingcheng(2), from_xinhua(5)] {
        let stored = node.store().person(&refused).await.unwrap();
        assert!(stored.is_none(), "a bad row wrote nothing");
    }
    let inflow = node
        .store()
        .person(&from_xinhua(1))
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(inflow.flow, Flow::Inflow);
    assert_eq!(inflow.residence_county.as_str(), DINGCHENG);
    assert_eq!(inflow.status.children_count, Some(1));
    assert_eq!(inflow.status.pregnant, Some(false));
    let outflow = node
        .store()
        .person(&from_dingcheng(1))
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(outflow.flow, Flow::Outflow);
    assert_eq!(outflow.registered_county.as_str(), DINGCHENG);
    assert_eq!(outflow.residence_county.as_str(), XINHUA);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gbk_file_is_detected_and_its_names_survive() {
    let cluster = dingcheng().await;
    let text = format!(
        "resident_id,name,flow,registered_county\n{},欧阳娜娜,流入,{XINHUA}\n{},刘芳,流入,{XINHUA}\n",
        from_xinhua(1),
        from_xinhua(2)
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&gbk).is_err(),
        "the test file must not be UTF-8"
    );
    let file = write_bytes(&cluster, "gbk.csv", &gbk);

    import(&cluster, DINGCHENG, &file, &[])
        .await
        .success()
        .stdout("imported 2 persons\n")
        .stderr(predicate::str::contains("is not UTF-8; read it as GBK"));

    let person = cluster
        .node(DINGCHENG)
        .store()
        .person(&from_xinhua(1))
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(person.name, "欧阳娜娜");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbk_can_be_named_on_the_command_line() {
    let cluster = dingcheng().await;
    let text = format!(
        "resident_id,name,flow,registered_county\n{},王丽,流入,{XINHUA}\n",
        from_xinhua(1)
    );
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let file = write_bytes(&cluster, "gbk.csv", &gbk);

    import(&cluster, DINGCHENG, &file, &["--encoding", "utf-8"])
        .await
        .code(2)
        .stderr(predicate::str::contains("not valid UTF-8"));
    import(&cluster, DINGCHENG, &file, &["--encoding", "gbk"])
        .await
        .success()
        .stdout("imported 1 person\n");

    let person = cluster
        .node(DINGCHENG)
        .store()
        .person(&from_xinhua(1))
        .await
        .unwrap();
    assert_eq!(person.expect("imported").name, "王丽");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_utf8_file_with_a_byte_order_mark_is_read_like_one_without() {
    let cluster = dingcheng().await;
    let text = format!(
        "\u{feff}resident_id,name,flow,residence_county\r\n{},王丽,outflow,{XINHUA}\r\n",
        from_dingcheng(1)
    );
    let file = write_csv(&cluster, "bom.csv", &text);

    import(&cluster, DINGCHENG, &file, &[])
        .await
        .success()
        .stdout("imported 1 person\n")
        .stderr(predicate::str::contains("GBK").not());

    assert_eq!(count(cluster.node(DINGCHENG), PERSONS).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_a_file_again_updates_persons_in_place() {
    let cluster = dingcheng().await;
    let node = cluster.node(DINGCHENG);
    let rows = |pregnant: &str| {
        format!(
            "resident_id,name,flow,registered_county,pregnant\n{},刘芳,inflow,{XINHUA},{pregnant}\n{},李娜,inflow,{XINHUA},false\n",
            from_xinhua(1),
            from_xinhua(2)
        )
    };
    let file = write_csv(&cluster, "persons.csv", &rows("false"));
    import(&cluster, DINGCHENG, &file, &[]).await.success();
    let file = write_csv(&cluster, "persons.csv", &rows("true"));
    import(&cluster, DINGCHENG, &file, &[])
        .await
        .success()
        .stdout("imported 2 persons\n");

    assert_eq!(count(node, PERSONS).await, 2);
    let updated = node
        .store()
        .person(&from_xinhua(1))
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(updated.status.pregnant, Some(true));
    let unchanged = node
        .store()
        .person(&from_xinhua(2))
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(unchanged.status.pregnant, Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_column_refuses_the_whole_file_with_exit_code_2() {
    let cluster = dingcheng().await;
    let text = format!(
        "resident_id,name,flow,registered_county,shoe_size\n{},刘芳,inflow,{XINHUA},38\n",
        from_xinhua(1)
    );
    let file = write_csv(&cluster, "persons.csv", &text);

    import(&cluster, DINGCHENG, &file, &[])
        .await
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("nothing was imported"))
        .stderr(predicate::str::contains(
            "unknown column (allowed: resident_id, name, flow, registered_county",
        ));

    assert_eq!(count(cluster.node(DINGCHENG), PERSONS).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_object_with_counts_and_errors() {
    let cluster = dingcheng().await;
    let text = format!(
        "resident_id,name,flow,registered_county\n{},刘芳,inflow,{XINHUA}\n{},李娜,inflow,\n",
        from_xinhua(1),
        from_xinhua(2)
    );
    let file = write_csv(&cluster, "persons.csv", &text);

    let assert = import(&cluster, DINGCHENG, &file, &["--json"]).await.code(1);

    let stdout = stdout_of(&assert);
    let last = stdout.lines().last().expect("a summary line");
    let summary: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(
        summary,
        serde_json::json!({
            "imported": 1,
            "skipped": 1,
            "errors": [{
                "line": 3,
                "reason": "registered_county: required for an inflow person (the county of registration)",
            }],
            "refusals": [{
                "reason": "registered_county: required for an inflow person (the county of registration)",
                "rows": 1,
                "lines": [3],
            }],
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_rows_for_one_person_the_later_one_wins() {
    let cluster = dingcheng().await;
    let id = from_xinhua(1);
    let text = format!(
        "resident_id,name,flow,registered_county,children_count\n\
         {id},刘芳,inflow,{XINHUA},1\n\
         {lower},刘芳,inflow,{XINHUA},2\n",
        lower = id.as_str().to_lowercase(),
    );
    let file = write_csv(&cluster, "persons.csv", &text);

    import(&cluster, DINGCHENG, &file, &[]).await.code(1).stdout(
        "imported 1 person; 1 row skipped:\nline 2: superseded by line 3, which has the same resident_id\n",
    );

    let person = cluster.node(DINGCHENG).store().person(&id).await.unwrap();
    assert_eq!(person.expect("imported").status.children_count, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_sent_in_parts_and_imported_whole() {
    let cluster = dingcheng().await;
    const ROWS: u32 = 12_000;
    let mut text = String::from(
        "resident_id,name,flow,registered_county,residence_county,township,village,marital_status,\
         certificate_number,certificate_valid_until,certificate_status,children_count,\
         contraception_status,contraception_date,pregnant,registered_since\n",
    );
    for n in 0..ROWS {
        text.push_str(&format!(
            "{},欧阳娜娜,inflow,{XINHUA},{DINGCHENG},430703101,430703101001,married,431322-2025-{n:06},\
             2028-05-31,valid,1,long_acting,2025-11-03,false,2024-03-15\n",
            from_xinhua(n)
        ));
    }
    let file = write_csv(&cluster, "sweep.csv", &text);

    import(&cluster, DINGCHENG, &file, &[])
        .await
        .success()
        .stdout("imported 12000 persons\n");

    assert_eq!(count(cluster.node(DINGCHENG), PERSONS).await, i64::from(ROWS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_refuses_oversized_requests_and_unknown_columns_without_writing() {
    let cluster = dingcheng().await;
    let mut operator = cluster.operator(DINGCHENG).await;
    let row = |line: u32, columns: &[(&str, String)]| pb::PersonRow {
        line,
        columns: columns.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    };
    let good = |line: u32| {
        row(
            line,
            &[
                ("resident_id", from_xinhua(line).to_string()),
                ("name", "刘芳".into()),
                ("flow", "inflow".into()),
                ("registered_county", XINHUA.into()),
            ],
        )
    };

    let too_many = pb::ImportPersonsRequest {
        rows: (0..20_001).map(good).collect(),
    };
    let status = operator.import_persons(too_many).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("at most 20000 rows"),
        "{}",
        status.message()
    );

    let mut unknown = good(2);
    unknown.columns.insert("shoe_size".into(), "38".into());
    let status = operator
        .import_persons(pb::ImportPersonsRequest {
            rows: vec![good(1), unknown],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("unknown column"),
        "{}",
        status.message()
    );

    assert_eq!(count(cluster.node(DINGCHENG), PERSONS).await, 0);

    let response = operator
        .import_persons(pb::ImportPersonsRequest {
            rows: (1..=20_000).map(good).collect(),
        })
        .await
        .expect("20,000 rows are accepted")
        .into_inner();
    assert_eq!(response.imported, 20_000);
    assert!(response.errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_several_chunks_is_imported_whole_with_duplicates_settled_across_chunks() {
    let cluster = dingcheng().await;
    let mut text = String::from("resident_id,name,flow,registered_county\n");
    for n in 1..=12_000 {
        text.push_str(&format!("{},刘芳,inflow,{XINHUA}\n", from_xinhua(n)));
    }
    // Line 12,002 repeats line 2's person (in the first chunk), line 12,003 has a cell too many.
    text.push_str(&format!("{},王丽,inflow,{XINHUA}\n", from_xinhua(1)));
    text.push_str(&format!("{},王丽,inflow,{XINHUA},x\n", from_xinhua(12_001)));
    let file = write_csv(&cluster, "persons.csv", &text);

    let assert = import(&cluster, DINGCHENG, &file, &["--json"]).await.code(1);

    let summary: serde_json::Value = serde_json::from_str(stdout_of(&assert).trim()).unwrap();
    assert_eq!(summary["imported"], 12_000);
    assert_eq!(summary["skipped"], 2);
    assert_eq!(summary["errors"][0]["line"], 2);
    assert_eq!(
        summary["errors"][0]["reason"],
        "superseded by line 12002, which has the same resident_id"
    );
    assert_eq!(summary["errors"][1]["line"], 12_003);
    assert_eq!(count(cluster.node(DINGCHENG), PERSONS).await, 12_000);
    let person = cluster
        .node(DINGCHENG)
        .store()
        .person(&from_xinhua(1))
        .await
        .unwrap();
    assert_eq!(person.expect("imported").name, "王丽", "the later row won");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gbk_name_far_into_a_file_that_starts_as_utf8_is_refused_with_its_line() {
    let cluster = dingcheng().await;
    let mut text = String::from("resident_id,name,flow,registered_county\n");
    let mut rows = 0;
    while text.len() <= hancha::csv_input::DETECTION_PREFIX {
        rows += 1;
        text.push_str(&format!("{},Liu Fang,inflow,{XINHUA}\n", from_xinhua(rows)));
    }
    text.push_str(&format!("{},王丽,inflow,{XINHUA}\n", from_xinhua(rows + 1)));
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let file = write_bytes(&cluster, "late-gbk.csv", &gbk);

    import(&cluster, DINGCHENG, &file, &[])
        .await
        .code(2)
        .stderr(predicate::str::contains("nothing was imported"))
        .stderr(predicate::str::contains(format!(
            "not valid UTF-8 (line {})",
            rows + 2
        )))
        .stderr(predicate::str::contains("try --encoding gbk"));
    assert_eq!(count(cluster.node(DINGCHENG), PERSONS).await, 0);

    import(&cluster, DINGCHENG, &file, &["--encoding", "gbk"])
        .await
        .success()
        .stdout(format!("imported {} persons\n", rows + 1));
    let person = cluster
        .node(DINGCHENG)
        .store()
        .person(&from_xinhua(rows + 1))
        .await
        .unwrap();
    assert_eq!(person.expect("imported").name, "王丽");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclosed_quote_swallowing_the_file_is_refused_with_its_line() {
    let cluster = dingcheng().await;
    let mut text = format!(
        "resident_id,name,flow,registered_county\n{},刘芳,inflow,{XINHUA}\n{},\"王丽,inflow,{XINHUA}\n",
        from_xinhua(1),
        from_xinhua(2)
    );
    for n in 3..40_000 {
        text.push_str(&format!("{},李娜,inflow,{XINHUA}\n", from_xinhua(n)));
    }
    assert!(text.len() > hancha::csv_input::MAX_RECORD_BYTES);
    let file = write_csv(&cluster, "persons.csv", &text);

    import(&cluster, DINGCHENG, &file, &[])
        .await
        .code(2)
        .stderr(predicate::str::contains("nothing was imported"))
        .stderr(predicate::str::contains(
            "line 3, column 2: a cell longer than 4096 bytes",
        ));
    assert_eq!(count(cluster.node(DINGCHENG), PERSONS).await, 0);
}
