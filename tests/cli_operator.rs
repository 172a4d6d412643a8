//! The operator commands against real running nodes: ask, sweep, pending, show, answer and
//! agreement apply/list/show, as a clerk or an operator runs them.

mod common;

use common::*;
use hancha::domain::division::CountyCode;
use hancha::domain::message::InquiryState;
use hancha::domain::vocabulary::AnswerOutcome;
use predicates::prelude::*;

/// 鼎城区 asks, 新化县 answers automatically; 新化县 asks, 鼎城区 answers by hand.
async fn two_counties() -> Cluster {
    let agreement = answered_by_hand(DINGCHENG, XINHUA, DINGCHENG);
    Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_prints_the_answer_inline() {
    let cluster = two_counties().await;
    let woman = synthetic_id(XINHUA, 3);
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&[outflow_person(woman.clone(), XINHUA, DINGCHENG)])
        .await
        .unwrap();
    let mut ask = operator_cli(&cluster, DINGCHENG);
    ask.args([
        "ask",
        "--to",
        XINHUA,
        "--kind",
        "certificate_verification",
        "--id",
        woman.as_str(),
        "--certificate",
        "HN-SOMEONE-ELSES",
        "--wait",
        "2s",
    ]);
    tokio::task::spawn_blocking(move || {
        ask.assert()
            .success()
            .stdout(predicate::str::contains("431322 新化县 answered: found"))
            .stdout(predicate::str::contains(
                "!! 所出示的婚育证明不是此人的 — the certificate shown was NOT issued to this person",
            ))
            .stdout(predicate::str::contains("certificate_valid_until"))
            .stdout(predicate::str::contains("2028-05-31"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_with_a_malformed_id_is_refused_with_the_reason() {
    let cluster = two_counties().await;
    let mut ask = operator_cli(&cluster, DINGCHENG);
    ask.args(["ask", "--to", XINHUA, "--id", "110105194912310021"]);
    tokio::task::spawn_blocking(move || {
        ask.assert().failure().stderr(predicate::str::contains(
            "check character (character 18) does not match",
        ));
    })
    .await
    .unwrap();
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM inquiries").await,
        0,
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_show_and_answer_work_through_an_inquiry_by_hand() {
    let cluster = two_counties().await;
    // 新化县 asks about one of its outflow persons; 鼎城区 must answer by hand.
    let subject = hancha::domain::message::Subject {
        resident_id: synthetic_id(XINHUA, 11),
        certificate_number: None,
    };
    let draft = hancha::node::InquiryDraft {
        kind: hancha::domain::vocabulary::InquiryKind::OutflowStatus,
        priority: hancha::domain::vocabulary::Priority::Normal,
        subject,
        message_id: None,
    };
    let (queued, _) = cluster
        .node(XINHUA)
        .send_inquiries(CountyCode::parse(DINGCHENG).unwrap(), vec![draft])
        .await
        .unwrap();
    let id = queued[0].message_id.to_string();
    let responder = cluster.node(DINGCHENG);
    eventually("pending at 鼎城区", || async {
        responder.store().inquiry(queued[0].message_id).await.unwrap()
    })
    .await;

    let (pending, show, bad_answer, answer) = {
        let mut pending = operator_cli(&cluster, DINGCHENG);
        pending.args(["pending", "--json"]);
        let mut show = operator_cli(&cluster, DINGCHENG);
        show.args(["show", &id]);
        let mut bad_answer = operator_cli(&cluster, DINGCHENG);
        bad_answer.args(["answer", &id, "--outcome", "found", "--field", "pregnant=false"]);
        let mut answer = operator_cli(&cluster, DINGCHENG);
        answer.args(["answer", &id, "--outcome", "not-found"]);
        (pending, show, bad_answer, answer)
    };
    let id_for_check = id.clone();
    tokio::task::spawn_blocking(move || {
        let mut pending = pending;
        let output = pending.assert().success().get_output().stdout.clone();
        let lines: Vec<serde_json::Value> = String::from_utf8(output)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message_id"], id_for_check);
        assert_eq!(lines[0]["peer_county"], XINHUA);
        assert!(
            !lines[0]["subject"]
                .as_str()
                .unwrap()
                .contains(&synthetic_id(XINHUA, 11).as_str()[6..14])
        );
        let mut show = show;
        show.assert()
            .success()
            .stdout(predicate::str::contains("from       431322 新化县"))
            .stdout(predicate::str::contains("state      pending"))
            .stdout(predicate::str::contains("accepted"));
        let mut bad_answer = bad_answer;
        bad_answer
            .assert()
            .failure()
            .stderr(predicate::str::contains("pregnant"))
            .stderr(predicate::str::contains("allowed: marital_status"));
        let mut answer = answer;
        answer
            .assert()
            .success()
            .stdout(predicate::str::contains("confirmation"));
    })
    .await
    .unwrap();
    let asker = cluster.node(XINHUA);
    let answered = eventually("新化县 receives the answer", || async {
        asker
            .store()
            .inquiry(queued[0].message_id)
            .await
            .unwrap()
            .filter(|i| i.state == InquiryState::Answered)
    })
    .await;
    assert_eq!(answered.outcome, Some(AnswerOutcome::NotFound));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_rerun_with_the_same_file_adds_nothing() {
    let cluster = two_counties().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sweep.csv");
    let mut csv = String::from("resident_id,certificate_number\n");
    for n in 0..30 {
        csv.push_str(&format!("{},\n", synthetic_id(XINHUA, n).as_str()));
    }
    csv.push_str("110105194912310021,\n"); // line 32: bad check character
    std::fs::write(&file, csv).unwrap();
    let path = file.to_str().unwrap().to_string();
    let mut first = operator_cli(&cluster, DINGCHENG);
    first.args([
        "sweep",
        "--to",
        XINHUA,
        "--kind",
        "certificate_verification",
        "--file",
        &path,
        "--wait",
        "10s",
        "--json",
    ]);
    let mut second = operator_cli(&cluster, DINGCHENG);
    second.args([
        "sweep",
        "--to",
        XINHUA,
        "--kind",
        "certificate_verification",
        "--file",
        &path,
        "--wait",
        "0",
        "--json",
    ]);
    let (first, second) = tokio::task::spawn_blocking(move || {
        let parse = |output: Vec<u8>| -> serde_json::Value {
            serde_json::from_str(String::from_utf8(output).unwrap().lines().last().unwrap()).unwrap()
        };
        let first = parse(first.assert().code(1).get_output().stdout.clone());
        let second = parse(second.assert().code(1).get_output().stdout.clone());
        (first, second)
    })
    .await
    .unwrap();
    assert_eq!(first["accepted"], 30);
    assert_eq!(first["rejected"][0]["line"], 32);
    assert!(
        first["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("check character (character 18) does not match")
    );
    assert_eq!(
        first["answered"], 30,
        "an empty registry answers not_found at once"
    );
    assert_eq!(second["accepted"], 0);
    assert_eq!(second["already_submitted"], 30);
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM inquiries").await,
        30
    );
    assert_eq!(
        count(cluster.node(XINHUA), "SELECT count(*) FROM inquiries").await,
        30
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agreement_apply_installs_a_new_version_and_list_shows_it() {
    let cluster = two_counties().await;
    let dir = tempfile::tempdir().unwrap();
    let amended = agreement_toml(
        DINGCHENG,
        XINHUA,
        2,
        ("2026-01-01", "2031-12-31"),
        &Terms::default(),
        &Terms::default(),
    );
    let path = dir.path().join("v2.toml");
    std::fs::write(&path, amended).unwrap();
    let same_version = agreement_toml(
        DINGCHENG,
        XINHUA,
        2,
        ("2026-01-01", "2032-12-31"),
        &Terms::default(),
        &Terms::default(),
    );
    let clash = dir.path().join("v2-other.toml");
    std::fs::write(&clash, same_version).unwrap();
    let mut apply = operator_cli(&cluster, DINGCHENG);
    apply.args(["agreement", "apply", path.to_str().unwrap()]);
    let mut apply_clash = operator_cli(&cluster, DINGCHENG);
    apply_clash.args(["agreement", "apply", clash.to_str().unwrap()]);
    let mut list = operator_cli(&cluster, DINGCHENG);
    list.args(["agreement", "list", "--json"]);
    tokio::task::spawn_blocking(move || {
        apply
            .assert()
            .success()
            .stdout(predicate::str::contains("installed: 430703-431322 version 2"));
        apply_clash
            .assert()
            .code(2)
            .stderr(predicate::str::contains("higher version"));
    })
    .await
    .unwrap();
    // the apply woke the status exchange with the peer: wait until it said what it holds
    eventually("the peer's status after the apply", || async {
        let known = count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM agreements WHERE held_by_peer IS NOT NULL",
        )
        .await;
        (known == 2).then_some(())
    })
    .await;
    let listed = tokio::task::spawn_blocking(move || list.assert().success().get_output().stdout.clone())
        .await
        .unwrap();
    let versions: Vec<serde_json::Value> = String::from_utf8(listed)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(versions.len(), 2);
    // the peer has not applied version 2: messages still go out under version 1, both hold
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["stage"], "waiting_for_peer");
    assert_eq!(versions[0]["held_by_peer"], "no");
    assert_eq!(versions[0]["sending"], false);
    assert_eq!(versions[1]["stage"], "in_force");
    assert_eq!(versions[1]["held_by_peer"], "yes");
    assert_eq!(versions[1]["sending"], true);
    assert!(versions[1]["peer_clock_offset_ms"].is_i64(), "{:?}", versions[1]);

    // the table says the same in words, and retiring version 1 leaves version 2 to send under
    let mut table = operator_cli(&cluster, DINGCHENG);
    table.args(["agreement", "list"]);
    let mut retire = operator_cli(&cluster, DINGCHENG);
    retire.args(["agreement", "retire", "430703-431322", "1"]);
    let mut retire_unknown = operator_cli(&cluster, DINGCHENG);
    retire_unknown.args(["agreement", "retire", "430703-431322", "9"]);
    tokio::task::spawn_blocking(move || {
        table
            .assert()
            .success()
            .stdout(predicate::str::contains("waiting for peer"))
            .stdout(predicate::str::contains("← sending"))
            .stdout(predicate::str::contains("peer 431322 新化县: last status"));
        retire
            .assert()
            .success()
            .stdout(predicate::str::contains("retired: 430703-431322 version 1"));
        retire_unknown
            .assert()
            .failure()
            .stderr(predicate::str::contains("no version 9"));
    })
    .await
    .unwrap();
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM audit_log WHERE action = 'retire_agreement' AND outcome = 'retired'"
        )
        .await,
        1
    );
    let sending = cluster
        .node(DINGCHENG)
        .agreements()
        .sending_with(XINHUA.parse().unwrap(), chrono::Utc::now())
        .map(|a| a.version());
    assert_eq!(
        sending,
        Some(2),
        "the newest version not retired, which the peer will hold messages for"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agreement_check_and_apply_refuse_an_expired_or_older_version_and_warn_of_a_future_one() {
    let cluster = two_counties().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, version: u32, valid: (&str, &str)| {
        let path = dir.path().join(name);
        let text = agreement_toml(
            DINGCHENG,
            XINHUA,
            version,
            valid,
            &Terms::default(),
            &Terms::default(),
        );
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let expired = write("expired.toml", 2, ("2024-01-01", "2025-12-31"));
    let future = write("future.toml", 3, ("2099-01-01", "2099-12-31"));
    let older = write("older.toml", 2, ("2026-01-01", "2031-12-31"));
    let run = |args: Vec<String>| {
        let mut command = operator_cli(&cluster, DINGCHENG);
        command.args(args);
        command
    };
    let check_expired = run(vec!["agreement".into(), "check".into(), expired.clone()]);
    let apply_expired = run(vec!["agreement".into(), "apply".into(), expired]);
    let mut check_future = run(vec!["agreement".into(), "check".into(), future.clone()]);
    let mut apply_future = run(vec!["agreement".into(), "apply".into(), future]);
    let mut apply_older = run(vec!["agreement".into(), "apply".into(), older]);
    tokio::task::spawn_blocking(move || {
        for mut expired in [check_expired, apply_expired] {
            expired
                .assert()
                .code(2)
                .stderr(predicate::str::contains("version 2 expired on 2025-12-31"));
        }
        check_future.assert().success().stderr(predicate::str::contains(
            "warning: agreement 430703-431322 version 3 is not valid yet",
        ));
        apply_future
            .assert()
            .success()
            .stdout(predicate::str::contains("installed: 430703-431322 version 3"))
            .stderr(predicate::str::contains("comes into force on 2099-01-01"));
        apply_older
            .assert()
            .code(2)
            .stderr(predicate::str::contains("is older than version 3"));
    })
    .await
    .unwrap();
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM agreements").await,
        2,
        "version 1 and the future version 3; nothing expired or older"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_larger_than_one_call_sends_every_row_with_its_line() {
    let cluster = two_counties().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sweep.csv");
    let mut csv = String::from("resident_id\n");
    for n in 0..2_500 {
        csv.push_str(&format!("{}\n", synthetic_id(XINHUA, n).as_str()));
    }
    csv.push_str("\n,\n110105194912310021\n"); // blank rows, then line 2,504: bad check character
    std::fs::write(&file, csv).unwrap();
    let mut sweep = operator_cli(&cluster, DINGCHENG);
    sweep.args(["sweep", "--to", XINHUA, "--wait", "0", "--json", "--file"]);
    sweep.arg(&file);
    let summary = tokio::task::spawn_blocking(move || {
        let output = sweep.assert().code(1).get_output().stdout.clone();
        let last = String::from_utf8(output)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned();
        serde_json::from_str::<serde_json::Value>(&last).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(summary["file_rows"], 2_501);
    assert_eq!(summary["accepted"], 2_500);
    assert_eq!(summary["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(summary["rejected"][0]["line"], 2_504);
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM inquiries").await,
        2_500
    );
}
