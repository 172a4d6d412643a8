//! `hancha demo`, run as a user runs it: the whole story on three nodes, a summary proving every
//! inquiry was answered exactly once, the night's reconciliation bringing back the answers a
//! restored backup lost, and nothing left behind, also when interrupted.
//!
//! With `DATABASE_URL` set (`hancha dev with-postgres -- cargo test --test demo`) the demo
//! creates its databases there, and these tests check that it drops them again.

use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use sqlx::Connection;

/// The databases the demo says (on stderr) it created.
fn created_databases(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("demo: created databases "))
        .map(|names| names.split(", ").map(str::to_string).collect())
        .unwrap_or_default()
}

/// The differences the reconciliation step reports for `set`, from its line
/// `    messages      399 here, 402 at 鼎城区: 3 differences, …`.
fn differences_found(stdout: &str, set: &str) -> Option<u64> {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with(set) && line.contains(" differences"))?;
    let (_, after) = line.split_once(": ")?;
    after.split_once(' ')?.0.replace(',', "").parse().ok()
}

/// Those of `names` that still exist on the server at `DATABASE_URL` (none checked without it).
fn still_existing(names: &[String]) -> Vec<String> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return Vec::new();
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut connection = sqlx::PgConnection::connect(&url)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname = ANY($1)")
            .bind(names)
            .fetch_all(&mut connection)
            .await
            .expect("list databases")
    })
}

/// The text between `before` and the next `until` in `line`, if both are in it.
fn between<'a>(line: &'a str, before: &str, until: &str) -> Option<&'a str> {
    let (_, after) = line.split_once(before)?;
    Some(after.split_once(until)?.0)
}

/// A count as the demo prints it (`1,234`).
fn count(text: &str) -> Option<u64> {
    text.replace(',', "").parse().ok()
}

/// Checks step ⑨ of the demo's output: real figures, the tampering found where it was made, the
/// renewed certificate the one presented.
fn check_evidence(stdout: &str) {
    let step = &stdout[stdout.find("⑨ 证据 evidence").expect("step ⑨")..];
    // every agreement version in force, signed by both of its counties, each signature verified
    for (version, parties) in [
        // the version of 430703-430582 is the example file's
        ("430703-430582 version ", ["鼎城区 signed", "邵东市 signed"]),
        ("430703-431322 version 2", ["鼎城区 signed", "新化县 signed"]),
    ] {
        let line = step
            .lines()
            .find(|line| line.trim_start().starts_with(version))
            .unwrap_or_else(|| panic!("no line for {version}:\n{step}"));
        for party in parties {
            assert!(line.contains(party), "{party} in {line}");
        }
        assert_eq!(line.matches(", verified ").count(), 2, "{line}");
        assert!(line.ends_with("verified both too ✓"), "{line}");
    }
    // each county's chain intact with a checkpoint, and held by every peer
    for county in ["鼎城区", "邵东市", "新化县"] {
        let line = step
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{county}: sealed ")))
            .unwrap_or_else(|| panic!("no audit line for {county}:\n{step}"));
        assert!(line.contains(" rows checked: intact; "), "{line}");
        assert!(line.ends_with("signature valid"), "{line}");
        let position = between(line, "last checkpoint at position ", ", signed").and_then(count);
        assert!(position.is_some_and(|p| p > 0), "{line}");
    }
    let witnessed = step.matches("holds our checkpoint at position ").count();
    assert_eq!(
        witnessed, 4,
        "鼎城区's two peers, and 鼎城区 for each of them:\n{step}"
    );
    // the record changed behind the node's back, found at its position, and put back
    let changed = step
        .lines()
        .find(|line| line.contains("changed record "))
        .unwrap_or_else(|| panic!("no tampering:\n{step}"));
    let record = between(changed, "changed record ", " ").expect("record id");
    let position = between(changed, "(position ", ",").expect("position");
    assert!(count(position).is_some_and(|p| p > 0), "{changed}");
    assert!(
        step.contains(&format!(
            "broken at position {position} (audit record {record}): the record was changed since it was sealed"
        )),
        "{step}"
    );
    assert!(step.contains(" rows checked, intact again"), "{step}");
    // the renewed certificate is the one a new handshake gets, and the node still exchanges
    let renewed = step
        .lines()
        .find(|line| line.contains("node certificate renewed while the node runs"))
        .unwrap_or_else(|| panic!("no renewal:\n{step}"));
    let new_serial = between(renewed, "replaced by serial ", " ").expect("new serial");
    let old_serial = between(renewed, ": serial ", " ").expect("old serial");
    assert_ne!(new_serial, old_serial, "{renewed}");
    assert!(
        step.contains(&format!("a new handshake from 鼎城区 gets serial {new_serial} ✓")),
        "{step}"
    );
    assert!(
        step.contains(
            "a status exchange with it over a new connection: answered, holding 430703-430582 version "
        ),
        "{step}"
    );
    // retention as agreed, and nothing erased from minutes-old exchanges
    assert!(
        step.contains("430703-431322 version 2: retention_days 1095"),
        "{step}"
    );
    assert!(
        step.lines()
            .any(|line| line.trim_start().starts_with("430703-430582 version ")
                && line.ends_with(": retention_days 1095")),
        "{step}"
    );
    assert_eq!(
        step.matches("erasure worker running; a step run now erased nothing")
            .count(),
        3,
        "{step}"
    );
}

#[test]
fn demo_plays_the_story_proves_every_inquiry_answered_exactly_once_and_reconciles() {
    let output = Command::cargo_bin("hancha")
        .unwrap()
        .args(["demo", "--sweep-size", "200"])
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the demo failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "新化县 answered inline in",
        "found 查到",
        "the certificate shown was issued to this person",
        "the certificate shown was NOT issued to this person",
        "stopping 新化县's node for maintenance",
        "新化县 restarted on the same port and database",
        "sweep answered 200/200",
        "20 pending inquiries answered by hand; all 20 answers reached 邵东市",
        "④ 信息通报 notices",
        "notices queued and delivered in",
        "and answers it (`hancha feedback",
        "鼎城区 holds the feedback: child_counted",
        "登记率",
        "查环查孕结果通报率",
        "every inquiry answered exactly once",
        "every notice and every feedback stored exactly once on both sides",
        "⑦ 对账 nightly reconciliation",
        "re-delivered 3 by 鼎城区",
        "新化县 holds 3 of the 3 again",
        "is recorded alike on both sides (2 children): the birth notice and its feedback kept them in step",
        "hancha reconcile --with 430703 --node 127.0.0.1:",
        "⑧ 协议修订 an amendment applied one county at a time",
        "新化县: version 2  waiting for peer  鼎城区 holds it: no",
        "新化县: version 1  in force          鼎城区 holds it: yes ← messages go out under it",
        "answered (found 查到) under version 1",
        "鼎城区: version 2  in force          新化县 holds it: yes ← messages go out under it",
        "answered (found 查到) under version 2",
        "⑩ 推送 what 新化县's own system was told",
        "in commit order, every signature verified (Standard Webhooks, HMAC-SHA256) ✓",
        "a system resumes with `hancha watch --after ",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    check_evidence(&stdout);
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    assert!(!stdout.contains('✗'), "{stdout}");
    assert_eq!(differences_found(&stdout, "messages"), Some(3), "{stdout}");
    let people = differences_found(&stdout, "shared people");
    assert!(
        people.is_some_and(|found| found >= 1),
        "the persons only 新化县 knows at least:\n{stdout}"
    );
    assert!(
        stdout.find("every inquiry answered exactly once") < stdout.find("⑦"),
        "the reconciliation follows the exactly-once summary:\n{stdout}"
    );

    let databases = created_databases(&stderr);
    assert_eq!(
        databases.len(),
        3,
        "the demo names its databases on stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("dropped the demo databases") || stderr.contains("removed the throwaway PostgreSQL"),
        "{stderr}"
    );
    assert_eq!(still_existing(&databases), Vec::<String>::new());
}

#[test]
fn an_interrupted_demo_stops_its_nodes_and_removes_its_databases() {
    let mut child = Process::new(env!("CARGO_BIN_EXE_hancha"))
        .args(["demo", "--sweep-size", "200"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    // Interrupt it in the middle of the story, once the nodes are serving.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let started = line.starts_with("①");
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.starts_with("①")),
        "the story never began:\n{}",
        seen.join("\n")
    );
    // Keep reading what the demo prints until it exits: a closed pipe would make it fail on
    // its next line instead of stopping because of the interrupt.
    let drain = std::thread::spawn(move || lines.count());
    let status = Process::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    drain.join().expect("stdout drained");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("demo: interrupted: stopping the nodes and cleaning up"),
        "{stderr}"
    );
    assert_eq!(still_existing(&created_databases(&stderr)), Vec::<String>::new());
}

#[test]
fn a_sweep_too_small_to_stop_a_node_in_is_a_usage_error() {
    Command::cargo_bin("hancha")
        .unwrap()
        .args(["demo", "--sweep-size", "5"])
        .assert()
        .code(2);
}
