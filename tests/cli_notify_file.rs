//! `hancha notify --file`: the quarterly 查环查孕 batch as an operator runs it, between two real
//! nodes — good rows delivered exactly once, bad rows named by their line, running the file
//! again adds nothing, a GBK file from Chinese office software.

mod common;

use common::*;

/// 鼎城区 may send 新化县 births and contraception checks, but of a check only its result:
/// the method (`measure`) stays home.
async fn pair() -> Cluster {
    let dingcheng_to_xinhua = Terms {
        notice_kinds: &["birth", "contraception_check"],
        notice_fields: &[
            ("birth", &["child_sex", "birth_order", "birth_place"]),
            ("contraception_check", &["check_result"]),
        ],
        ..Terms::default()
    };
    let agreement = agreement_toml(
        DINGCHENG,
        XINHUA,
        1,
        ("2026-01-01", "2030-12-31"),
        &dingcheng_to_xinhua,
        &Terms::default(),
    );
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await;
    // 新化县's women 1 and 2 live in 鼎城区: its inflow persons
    share_persons(&cluster, XINHUA, DINGCHENG, 1..3).await;
    cluster
}

async fn received_at_xinhua(cluster: &Cluster, kind: &str) -> i64 {
    count(
        cluster.node(XINHUA),
        &format!("SELECT count(*) FROM notices WHERE direction = 'inbound' AND kind = '{kind}'"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quarterly_file_delivers_its_good_rows_once_and_names_its_bad_rows() {
    let cluster = pair().await;
    let (first, second, stranger) = (
        synthetic_id(XINHUA, 1),
        synthetic_id(XINHUA, 2),
        synthetic_id(XINHUA, 9),
    );
    let csv = format!(
        "resident_id,date,check_result,measure,to\n\
         {first},2026-09-15,normal,,{XINHUA}\n\
         12345,2026-09-15,normal,,{XINHUA}\n\
         {first},2026-13-40,normal,,{XINHUA}\n\
         {second},2026-09-16,maybe,,{XINHUA}\n\
         {second},2026-09-17,normal,iud,{XINHUA}\n\
         {second},2026-09-18,pregnant,,\n\
         {stranger},2026-09-18,normal,,\n\
         {first},,normal,,{XINHUA}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    std::fs::write(&path, csv).unwrap();

    let send = || {
        let mut command = operator_cli(&cluster, DINGCHENG);
        command.args(["notify", "--kind", "contraception_check", "--file"]);
        command.arg(&path);
        command
    };
    let output = output_of(send()).await;
    let (stdout, stderr) = (lossy(&output.stdout), lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("sent now             2"), "{stdout}");
    assert!(stdout.contains("sent before          0"), "{stdout}");
    assert!(stdout.contains("rejected here        6"), "{stdout}");
    for (line, why) in [
        (3, "resident_id"),
        (4, "occurred_on"),
        (5, "check_result"),
        (6, "measure"),
        (8, "to_county"),
        (9, "date: empty"),
    ] {
        let named = stdout
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("line {line}: ")) && l.contains(why));
        assert!(named, "line {line} ({why}) not named:\n{stdout}");
    }
    // nobody's ID number in what the operator's screen or a log shows
    for id in [&first, &second, &stranger] {
        assert!(
            !stdout.contains(id.as_str()) && !stderr.contains(id.as_str()),
            "{stdout}{stderr}"
        );
    }
    // line 2 to the named county, line 7 to the county 鼎城区's registry has woman 2 from
    assert_eq!(received_at_xinhua(&cluster, "contraception_check").await, 2);
    let results = count(
        cluster.node(XINHUA),
        "SELECT count(*) FROM notices WHERE direction = 'inbound' AND body->>'check_result' IN ('normal', 'pregnant')",
    )
    .await;
    assert_eq!(results, 2);

    // the same file again: nothing added, the two counted as sent before
    let again = output_of(send()).await;
    let stdout = lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{stdout}{}", lossy(&again.stderr));
    assert!(stdout.contains("sent now             0"), "{stdout}");
    assert!(stdout.contains("sent before          2"), "{stdout}");
    assert_eq!(received_at_xinhua(&cluster, "contraception_check").await, 2);
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM notices WHERE direction = 'outbound'"
        )
        .await,
        2
    );

    // only the good rows: exit 0, still nothing added
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        format!("to,resident_id,date,check_result\n{XINHUA},{first},2026-09-15,normal\n,{second},2026-09-18,pregnant\n"),
    )
    .unwrap();
    let mut command = operator_cli(&cluster, DINGCHENG);
    command.args(["notify", "--kind", "contraception_check", "--json", "--file"]);
    command.arg(&good);
    let output = output_of(command).await;
    let stdout = lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["sent_before"], 2, "{summary}");
    assert_eq!(summary["sent"], 0, "{summary}");
    assert_eq!(received_at_xinhua(&cluster, "contraception_check").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gbk_file_is_read_as_gbk_and_its_text_arrives_intact() {
    let cluster = pair().await;
    let mother = synthetic_id(XINHUA, 1);
    let csv = format!(
        "resident_id,date,child_sex,birth_order,birth_place\n{mother},2026-10-02,女,2,鼎城区人民医院\n"
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&csv);
    assert!(!unmappable);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("births.csv");
    std::fs::write(&path, &gbk).unwrap();
    let mut command = operator_cli(&cluster, DINGCHENG);
    command.args(["notify", "--kind", "birth", "--to", XINHUA, "--file"]);
    command.arg(&path);
    let output = output_of(command).await;
    let (stdout, stderr) = (lossy(&output.stdout), lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("read as GBK"), "{stderr}");
    assert!(stdout.contains("sent now             1"), "{stdout}");
    let intact = count(
        cluster.node(XINHUA),
        "SELECT count(*) FROM notices WHERE direction = 'inbound' AND kind = 'birth'
            AND body->>'birth_place' = '鼎城区人民医院' AND body->>'child_sex' = 'female'",
    )
    .await;
    assert_eq!(intact, 1);

    // a file that cannot be used sends nothing and exits 2
    let misspelt = dir.path().join("misspelt.csv");
    std::fs::write(
        &misspelt,
        format!("resident_id,date,child_sx\n{mother},2026-10-02,女\n"),
    )
    .unwrap();
    let mut command = operator_cli(&cluster, DINGCHENG);
    command.args(["notify", "--kind", "birth", "--to", XINHUA, "--file"]);
    command.arg(&misspelt);
    let output = output_of(command).await;
    assert_eq!(output.status.code(), Some(2), "{}", lossy(&output.stderr));
    assert!(
        lossy(&output.stderr).contains("child_sx"),
        "{}",
        lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_for_a_county_that_is_away_are_queued_without_waiting_and_delivered_later() {
    let mut cluster = pair().await;
    cluster.stop(XINHUA).await;
    let rows: String = (1..3)
        .map(|n| format!("{},2026-09-15,normal\n", synthetic_id(XINHUA, n)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    std::fs::write(&path, format!("resident_id,date,check_result\n{rows}")).unwrap();
    let mut command = operator_cli(&cluster, DINGCHENG);
    command.args([
        "notify",
        "--kind",
        "contraception_check",
        "--to",
        XINHUA,
        "--file",
    ]);
    command.arg(&path);
    let started = std::time::Instant::now();
    let output = output_of(command).await;
    let stdout = lossy(&output.stdout);
    // taken and queued: the file is used, and only the first row waited (at most 1 s)
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", lossy(&output.stderr));
    assert!(stdout.contains("queued               2"), "{stdout}");
    assert!(stdout.contains("sent now             0"), "{stdout}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    cluster.restart(XINHUA).await;
    eventually("both queued notices reach 新化县", || async {
        (received_at_xinhua(&cluster, "contraception_check").await == 2).then_some(())
    })
    .await;
    // and once delivered, the same file again adds nothing
    let mut command = operator_cli(&cluster, DINGCHENG);
    command.args([
        "notify",
        "--kind",
        "contraception_check",
        "--to",
        XINHUA,
        "--file",
    ]);
    command.arg(&path);
    let output = output_of(command).await;
    let stdout = lossy(&output.stdout);
    assert!(stdout.contains("sent before          2"), "{stdout}");
    assert_eq!(received_at_xinhua(&cluster, "contraception_check").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_notice_without_a_file_still_needs_its_county_and_person() {
    let cluster = pair().await;
    let mut command = operator_cli(&cluster, DINGCHENG);
    command.args(["notify", "--kind", "contraception_check"]);
    let output = output_of(command).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = lossy(&output.stderr);
    assert!(stderr.contains("--to") && stderr.contains("--id"), "{stderr}");

    let mut command = operator_cli(&cluster, DINGCHENG);
    command.args([
        "notify",
        "--kind",
        "contraception_check",
        "--to",
        XINHUA,
        "--date",
        "2026-09-15",
    ]);
    command.args([
        "--field",
        "check_result=normal",
        "--id",
        synthetic_id(XINHUA, 1).as_str(),
    ]);
    let output = output_of(command).await;
    assert_eq!(output.status.code(), Some(0), "{}", lossy(&output.stderr));
    assert!(
        lossy(&output.stdout).contains("received by"),
        "{}",
        lossy(&output.stdout)
    );
}
