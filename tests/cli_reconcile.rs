//! `hancha reconcile` as an operator runs it against a real node: a run with a peer says what
//! it found and did, `reports` lists past runs, and every mistake in the command line gets an
//! error that says what to do.

mod common;

use std::process::Output;

use assert_cmd::Command;
use common::*;

/// Runs `hancha` with `args`, off the async runtime (the nodes it talks to run on it).
async fn hancha(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::cargo_bin("hancha")
            .expect("the hancha binary is built")
            .env_remove("HANCHA_NODE")
            .env("NO_COLOR", "1")
            .args(&args)
            .output()
            .expect("hancha runs")
    })
    .await
    .unwrap()
}

/// Runs `hancha reconcile <args> --node <county's operator API>`.
async fn reconcile_on(cluster: &Cluster, county: &str, args: &[&str]) -> Output {
    let mut all: Vec<String> = std::iter::once("reconcile")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    all.push("--node".into());
    all.push(cluster.operator_address(county).to_string());
    hancha(all).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 on stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 on stderr")
}

/// Asserts that the command succeeded, showing what it printed if not.
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Asserts that the command failed as a command (exit 1) and returns what it said on stderr.
fn assert_failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    stderr(output)
}

/// The line of a run's summary for `set` (`messages`, `shared people`).
fn summary_line<'a>(printed: &'a str, set: &str) -> &'a str {
    printed
        .lines()
        .find(|line| line.starts_with(&format!("✓ {set} ")))
        .unwrap_or_else(|| panic!("no summary line for {set}:\n{printed}"))
}

/// 鼎城区 (origin) and 邵东市 (destination) under one agreement, with `shared` persons both
/// registries hold alike.
async fn pair_sharing(shared: std::ops::Range<u32>) -> Cluster {
    let cluster = Cluster::start(&[DINGCHENG, SHAODONG], &[open_agreement(DINGCHENG, SHAODONG)]).await;
    share_persons(&cluster, DINGCHENG, SHAODONG, shared).await;
    cluster
}

/// Two outflow persons of 鼎城区 living in 邵东市 whom 邵东市 does not know.
async fn persons_unknown_to_the_destination(cluster: &Cluster) {
    let unknown: Vec<_> = (100..102)
        .map(|n| outflow_person(synthetic_id(DINGCHENG, n), DINGCHENG, SHAODONG))
        .collect();
    cluster
        .node(DINGCHENG)
        .store()
        .upsert_persons(&unknown)
        .await
        .unwrap();
}

// === a run ===

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_with_a_peer_holding_the_same_sets_says_both_sides_agree() {
    let cluster = pair_sharing(0..5).await;

    let output = reconcile_on(&cluster, DINGCHENG, &["--with", SHAODONG]).await;

    assert_success(&output);
    let printed = stdout(&output);
    assert!(
        printed.starts_with("reconciling with 430582 邵东市\n"),
        "{printed}"
    );
    assert!(
        printed
            .trim_end()
            .ends_with("both sides agree: nothing to repair"),
        "{printed}"
    );
    let messages = summary_line(&printed, "messages");
    assert!(messages.contains("0 differences"), "{messages}");
    let people = summary_line(&printed, "shared people");
    assert!(
        people.contains("5 here, 5 at the peer: 0 differences"),
        "{people}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_that_finds_differences_says_what_it_did_about_them() {
    let cluster = pair_sharing(0..5).await;
    persons_unknown_to_the_destination(&cluster).await;

    let output = reconcile_on(&cluster, DINGCHENG, &["--with", SHAODONG]).await;

    assert_success(&output);
    let printed = stdout(&output);
    assert!(!printed.contains("both sides agree"), "{printed}");
    assert!(printed.contains("hancha reconcile reports"), "{printed}");
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND kind = 'outflow_status'"
        )
        .await,
        2,
        "the inquiries the summary announces were opened"
    );
    let people = summary_line(&printed, "shared people");
    assert!(
        people.contains(
            "7 here, 5 at the peer: 2 differences; here: re-delivered 0, inquiries opened 2, reported 0; \
             at the peer: re-delivered 0, inquiries opened 0, reported 2"
        ),
        "{people}"
    );
}

// === past runs ===

/// The cells of a printed table, by column header.
fn table_rows(printed: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let cells = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(String::from)
            .collect()
    };
    let mut lines = printed.lines();
    let header = cells(lines.next().expect("a header line"));
    lines
        .map(|line| {
            let row = cells(line);
            assert_eq!(row.len(), header.len(), "{line:?} under {header:?}");
            header.iter().cloned().zip(row).collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_list_both_sets_of_a_run_and_say_when_there_are_none() {
    let cluster = pair_sharing(0..5).await;
    persons_unknown_to_the_destination(&cluster).await;
    let never_ran = reconcile_on(&cluster, DINGCHENG, &["reports"]).await;
    assert_success(&never_ran);
    assert_eq!(stdout(&never_ran), "no reconciliation runs yet\n");
    assert_success(&reconcile_on(&cluster, DINGCHENG, &["--with", SHAODONG]).await);

    let output = reconcile_on(&cluster, DINGCHENG, &["reports"]).await;

    assert_success(&output);
    let printed = stdout(&output);
    let header = printed.lines().next().unwrap();
    for column in ["started", "peer", "set", "outcome", "differences", "inquiries"] {
        assert!(header.contains(column), "no {column} column: {header}");
    }
    let rows = table_rows(&printed);
    let mut sets: Vec<&str> = rows.iter().map(|row| row["set"].as_str()).collect();
    sets.sort_unstable();
    assert_eq!(sets, ["messages", "shared_people"], "one row per set: {printed}");
    for row in &rows {
        assert_eq!(row["peer"], "430582 邵东市", "{printed}");
        assert_eq!(row["outcome"], "completed", "{printed}");
    }
    let row_of = |set: &str| rows.iter().find(|row| row["set"] == set).unwrap();
    assert_eq!(row_of("messages")["differences"], "0", "{printed}");
    assert_eq!(row_of("shared_people")["differences"], "2", "{printed}");
    assert_eq!(row_of("shared_people")["inquiries"], "2", "{printed}");

    let with_the_peer = reconcile_on(&cluster, DINGCHENG, &["reports", "--with", SHAODONG]).await;
    assert_success(&with_the_peer);
    assert_eq!(table_rows(&stdout(&with_the_peer)).len(), 2);
    let with_another = reconcile_on(&cluster, DINGCHENG, &["reports", "--with", XINHUA]).await;
    assert_success(&with_another);
    assert_eq!(stdout(&with_another), "no reconciliation runs yet\n");

    // Last, as the least of it: the table ends its last line, so a shell prompt starts on its own.
    assert!(printed.ends_with('\n'), "{printed:?}");
}

// === mistakes ===

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_without_a_peer_asks_for_one() {
    let output = hancha(vec!["reconcile".into()]).await;

    // A usage error, like clap's own: exit 2.
    assert_eq!(output.status.code(), Some(2), "stderr:\n{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("name the peer county"), "{said}");
    assert!(said.contains("--with COUNTY"), "{said}");
    assert!(said.contains("hancha reconcile reports"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_with_an_invalid_county_code_names_the_field() {
    let cluster = pair_sharing(0..1).await;

    let output = reconcile_on(&cluster, DINGCHENG, &["--with", "999999"]).await;

    let said = assert_failure(&output);
    assert!(
        said.contains("--with 999999: not a county-level division code"),
        "{said}"
    );
    assert!(
        !stdout(&output).contains("reconciling"),
        "refused before anything starts"
    );
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM reconcile_runs").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_with_a_county_without_an_agreement_says_so() {
    let cluster = pair_sharing(0..1).await;

    let output = reconcile_on(&cluster, DINGCHENG, &["--with", XINHUA]).await;

    let said = assert_failure(&output);
    assert!(said.contains("no agreement between 430703 and 431322"), "{said}");
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM reconcile_runs").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_under_an_agreement_without_a_secret_says_where_to_configure_it() {
    let mut cluster = pair_sharing(0..1).await;
    cluster.stop(DINGCHENG).await;
    let member = cluster.members.get_mut(DINGCHENG).unwrap();
    member.config.reconcile.agreements.clear();
    cluster.restart(DINGCHENG).await;

    let output = reconcile_on(&cluster, DINGCHENG, &["--with", SHAODONG]).await;

    let said = assert_failure(&output);
    assert!(
        said.contains("agreement 430703-430582 has no reconciliation secret"),
        "{said}"
    );
    assert!(said.contains("reconcile.agreements"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_help_explains_the_schedule_and_reports() {
    let output = hancha(vec!["reconcile".into(), "--help".into()]).await;

    assert_success(&output);
    let help = stdout(&output);
    assert!(help.contains("02:00"), "{help}");
    assert!(help.contains("reports"), "{help}");
    assert!(help.contains("--with <COUNTY>"), "{help}");
}
