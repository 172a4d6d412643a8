//! The file commands (`hancha sweep`, `hancha registry import`) as a script sees them: bounded
//! cost whatever the file, one table of exit codes, repeated persons named by line wherever they
//! fall, and a node that goes away part-way through a sweep said in one line, after which the
//! same command finishes the job with every person asked exactly once.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use hancha::config::Limits;

/// The `hancha` binary with `args`, against the operator API at `node`.
fn hancha(node: &str, args: &[&str], file: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hancha"));
    command
        .args(args)
        .arg(file)
        .env("HANCHA_NODE", node)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    command
}

/// Runs `command` beside the test's runtime (the nodes serve on it).
async fn run(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run hancha"))
        .await
        .unwrap()
}

fn sweep_args(to: &str) -> Vec<&str> {
    vec!["sweep", "--to", to, "--wait", "0", "--json", "--file"]
}

const IMPORT: &[&str] = &["registry", "import", "--json"];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last line of stdout as JSON (the `--json` summary).
fn summary(output: &Output) -> serde_json::Value {
    let stdout = text(&output.stdout);
    serde_json::from_str(stdout.lines().last().expect("a summary")).expect("JSON")
}

/// Writes `size` bytes: `head`, then `unit` repeated.
fn write_big_file(path: &Path, head: &[u8], unit: &[u8], size: usize) {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    file.write_all(head).unwrap();
    let block = unit.repeat((1 << 20) / unit.len());
    let mut written = head.len();
    while written < size {
        file.write_all(&block).unwrap();
        written += block.len();
    }
    file.write_all(b"\n").unwrap();
    file.flush().unwrap();
}

/// Runs `command` to its end and returns its output, wall time and peak resident memory (from
/// the kernel's accounting of the child, `wait4`).
fn measured(mut command: std::process::Command) -> (Output, Duration, u64) {
    use std::os::unix::process::ExitStatusExt;
    let started = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also measures it
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn hancha");
    let pid = child.id() as libc::pid_t;
    // The child's output is small or it fails the test anyway; read it before reaping.
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let (mut child_stdout, mut child_stderr) = (child.stdout.unwrap(), child.stderr.unwrap());
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut child_stderr, &mut bytes).unwrap();
        bytes
    });
    std::io::Read::read_to_end(&mut child_stdout, &mut stdout).unwrap();
    stderr.extend(reader.join().unwrap());
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 writes into the two locals only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout,
        stderr,
    };
    // ru_maxrss is in kilobytes on Linux
    (output, started.elapsed(), usage.ru_maxrss as u64 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_line_or_cell_is_refused_within_seconds_in_bounded_memory() {
    let cluster = Cluster::start(&[DINGCHENG], &[]).await;
    let node = cluster.operator_address(DINGCHENG).to_string();
    const SIZE: usize = 200 * 1024 * 1024;
    let one_line = cluster.path().join("one-line.csv");
    write_big_file(&one_line, b"", b"resident_id,", SIZE);
    let one_cell = cluster.path().join("one-cell.csv");
    write_big_file(
        &one_cell,
        b"resident_id,name,flow\n431322199002150042,",
        b"a",
        SIZE,
    );
    let cases: [(&[&str], &PathBuf, &str); 4] = [
        (IMPORT, &one_line, "line 1: more than 256 cells"),
        (&sweep_args(XINHUA), &one_line, "line 1: more than 256 cells"),
        (
            IMPORT,
            &one_cell,
            "line 2, column 2: a cell longer than 4096 bytes",
        ),
        (
            &sweep_args(XINHUA),
            &one_cell,
            "line 2, column 2: a cell longer than 4096 bytes",
        ),
    ];
    for (args, file, expected) in cases {
        let command = hancha(&node, args, file);
        let (output, elapsed, peak) = tokio::task::spawn_blocking(move || measured(command))
            .await
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {stderr}");
        assert_eq!(stderr.lines().count(), 1, "exactly one error line: {stderr}");
        assert!(stderr.len() < 300, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            stderr.contains(&file.display().to_string()),
            "names the file: {stderr}"
        );
        assert!(elapsed < Duration::from_secs(5), "{args:?} took {elapsed:?}");
        assert!(peak < 200 * 1024 * 1024, "{args:?} peaked at {} MB", peak >> 20);
    }
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM persons").await,
        0
    );
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM inquiries").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_command_exits_by_one_table() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.operator_address(DINGCHENG).to_string();
    let write = |name: &str, text: &str| {
        let path = cluster.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let person = |n: u32| synthetic_id(XINHUA, n).as_str().to_string();
    let good_sweep = write(
        "good-sweep.csv",
        &format!("resident_id\n{}\n{}\n", person(1), person(2)),
    );
    let some_bad_sweep = write(
        "some-bad-sweep.csv",
        &format!("resident_id\n{}\n110105194912310021\n", person(3)),
    );
    let unusable_sweep = write("unusable-sweep.csv", &format!("id_number\n{}\n", person(4)));
    let good_import = write(
        "good-import.csv",
        &format!(
            "resident_id,name,flow,registered_county\n{},刘芳,inflow,{XINHUA}\n",
            person(5)
        ),
    );
    let some_bad_import = write(
        "some-bad-import.csv",
        &format!(
            "resident_id,name,flow,registered_county\n{},王丽,inflow,{XINHUA}\n{},李娜,inflow,{XINHUA}\n",
            person(6),
            "110105194912310021"
        ),
    );
    let unusable_import = write("unusable-import.csv", "resident_id,nmae,flow\n1,2,3\n");

    let sweep = sweep_args(XINHUA);
    let cases: [(&[&str], &PathBuf, i32); 6] = [
        (&sweep, &good_sweep, 0),
        (&sweep, &some_bad_sweep, 1),
        (&sweep, &unusable_sweep, 2),
        (IMPORT, &good_import, 0),
        (IMPORT, &some_bad_import, 1),
        (IMPORT, &unusable_import, 2),
    ];
    for (args, file, code) in cases {
        let output = run(hancha(&node, args, file)).await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?} {}: {}{}",
            file.display(),
            text(&output.stdout),
            text(&output.stderr)
        );
        if code == 1 {
            assert!(
                text(&output.stdout).contains("\"line\":3"),
                "the refused row is named: {}",
                text(&output.stdout)
            );
        }
    }
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM inquiries").await,
        3
    );
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM persons").await,
        2
    );

    // The node is down: 3, one line, whether or not the file is good; nothing was sent.
    cluster.stop(DINGCHENG).await;
    for (args, file) in [(&sweep[..], &good_sweep), (IMPORT, &good_import)] {
        let output = run(hancha(&node, args, file)).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: cannot reach the node's operator API at {node} ("
            )),
            "{stderr}"
        );
    }
    // An unusable file is refused before the node is looked for.
    let output = run(hancha(&node, &sweep, &unusable_sweep)).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_repeated_in_another_chunk_of_a_sweep_is_named_by_line() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.operator_address(DINGCHENG).to_string();
    let mut csv = String::from("resident_id\n");
    for n in 0..2_500 {
        csv.push_str(&format!("{}\n", synthetic_id(XINHUA, n).as_str()));
    }
    // line 2,502 repeats line 2 (first chunk), line 2,503 repeats line 1,502 (second chunk),
    // both in the third chunk; the ID's case does not hide the repeat
    csv.push_str(&format!("{}\n", synthetic_id(XINHUA, 0).as_str().to_lowercase()));
    csv.push_str(&format!("{}\n", synthetic_id(XINHUA, 1_500).as_str()));
    let file = cluster.path().join("sweep.csv");
    std::fs::write(&file, csv).unwrap();

    let output = run(hancha(&node, &sweep_args(XINHUA), &file)).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let summary = summary(&output);
    assert_eq!(summary["accepted"], 2_500);
    assert_eq!(
        summary["already_submitted"], 0,
        "a repeat is not counted as submitted before"
    );
    assert_eq!(
        summary["rejected"],
        serde_json::json!([
            { "line": 2_502, "reason": "the same person is already on line 2" },
            { "line": 2_503, "reason": "the same person is already on line 1502" },
        ])
    );
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM inquiries").await,
        2_500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_does_not_make_a_later_good_row_of_the_same_person_a_repeat() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.operator_address(DINGCHENG).to_string();
    let person = synthetic_id(XINHUA, 7);
    // line 2 is refused for its certificate number; line 3, the same person written right, is
    // the one asked
    let csv = format!(
        "resident_id,certificate_number\n{id},{long}\n{id},\n",
        id = person.as_str(),
        long = "9".repeat(200)
    );
    let file = cluster.path().join("sweep.csv");
    std::fs::write(&file, csv).unwrap();

    let output = run(hancha(&node, &sweep_args(XINHUA), &file)).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let summary = summary(&output);
    assert_eq!(summary["accepted"], 1, "{summary}");
    let rejected = summary["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{summary}");
    assert_eq!(rejected[0]["line"], 2);
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("certificate_number"),
        "refused for its own reason: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_sweep_is_said_in_one_line_and_the_same_command_finishes_it_exactly_once() {
    let limits = Limits {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    let (cluster, mut dingcheng, operator) = dingcheng_process_beside_xinhua(&limits).await;
    // Deterministically between two chunks: once the first 1,000 inquiries are in, the next
    // insert waits for a lock this test holds, and the node is killed while it waits.
    let database = database(&dingcheng.store).await;
    sqlx::raw_sql(
        "CREATE FUNCTION test_hold_second_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF (SELECT count(*) FROM inquiries) >= 1000 THEN
                 PERFORM pg_advisory_xact_lock_shared(4242);
             END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER test_hold_second_chunk BEFORE INSERT ON inquiries
         FOR EACH STATEMENT EXECUTE FUNCTION test_hold_second_chunk();",
    )
    .execute(&database)
    .await
    .unwrap();
    let mut lock = database.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(4242)")
        .execute(&mut *lock)
        .await
        .unwrap();
    dingcheng.start().await;

    const ROWS: u32 = 3_000;
    let mut csv = String::from("resident_id\n");
    for n in 0..ROWS {
        csv.push_str(&format!("{}\n", synthetic_id(XINHUA, n).as_str()));
    }
    let file = cluster.path().join("sweep.csv");
    std::fs::write(&file, csv).unwrap();
    let node = operator.to_string();
    let first = tokio::task::spawn_blocking({
        let command = hancha(&node, &sweep_args(XINHUA), &file);
        move || measured(command).0
    });
    eventually("the second chunk waits for the lock", || {
        let database = database.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'",
            )
            .fetch_one(&database)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        }
    })
    .await;
    dingcheng.kill();
    sqlx::query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut *lock)
        .await
        .unwrap();
    drop(lock);

    let output = first.await.unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: the node at {node} went away after 1,000 of 3,000 rows were accepted ("
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("); run the same command again to send the rest — nothing is sent twice\n"),
        "{stderr}"
    );

    sqlx::raw_sql("DROP TRIGGER test_hold_second_chunk ON inquiries")
        .execute(&database)
        .await
        .unwrap();
    dingcheng.start().await;
    let output = run(hancha(&node, &sweep_args(XINHUA), &file)).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let summary = summary(&output);
    assert_eq!(summary["accepted"], ROWS - 1_000);
    assert_eq!(summary["already_submitted"], 1_000);
    let inquiries = "SELECT count(*) FROM inquiries";
    assert_eq!(count_in(&dingcheng.store, inquiries).await, i64::from(ROWS));
    eventually("every inquiry lands at the peer", || {
        let node = cluster.node(XINHUA).clone();
        async move { (count(&node, inquiries).await == i64::from(ROWS)).then_some(()) }
    })
    .await;
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT subject_id) FROM inquiries")
        .fetch_one(&database)
        .await
        .unwrap();
    assert_eq!(distinct, i64::from(ROWS), "each person asked exactly once");
}
