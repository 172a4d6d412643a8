//! `hancha serve` reading its configuration as an operator sees it: durations in `[limits]`,
//! the deprecated millisecond keys and variables accepted with a warning naming their
//! replacement, and a bad duration refused with its key named.

use assert_cmd::Command;
use predicates::prelude::*;

const NODE: &str = r#"
county = "430703"
listen = "127.0.0.1:0"
database_url = "postgres://hancha@127.0.0.1:1/hancha_430703"
agreements_dir = "agreements"
[tls]
certificate = "missing/node.pem"
private_key = "missing/node-key.pem"
trust_anchors = "missing/ca.pem"
"#;

/// `hancha serve` on a configuration file holding `limits`, with no `HANCHA_…` variable from
/// the test's own environment.
fn serve(limits: &str) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, format!("{NODE}\n[limits]\n{limits}\n")).expect("write the configuration");
    let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
    command
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env_remove("HANCHA_CONFIG")
        .env("NO_COLOR", "1");
    for (variable, _) in hancha::config::ENVIRONMENT_OVERRIDES {
        command.env_remove(variable);
    }
    (command, dir)
}

#[test]
fn human_durations_are_accepted_without_a_warning() {
    let (mut command, _dir) = serve("max_wait = \"2s\"\nretry_max = \"10m\"\nlease = \"20s\"");
    command
        .arg("--check")
        .assert()
        .success()
        .stdout(predicate::str::contains("county            430703"))
        .stderr(predicate::str::contains("deprecated").not());
}

#[test]
fn deprecated_keys_and_variables_still_work_and_warn_naming_their_replacement() {
    let (mut command, _dir) = serve("max_wait_ms = 1500");
    command
        .arg("--check")
        .env("HANCHA_RETRY_MAX_MS", "60000")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "limits.max_wait_ms is deprecated: write limits.max_wait = \"1s 500ms\" instead",
        ))
        .stderr(predicate::str::contains(
            "HANCHA_RETRY_MAX_MS is deprecated: set HANCHA_RETRY_MAX=\"1m\" instead",
        ));
}

#[test]
fn serve_logs_the_deprecation_warnings_at_start() {
    // The node then fails on its missing certificate: the warnings come first.
    let (mut command, _dir) = serve("poll_interval_ms = 250");
    command
        .env("RUST_LOG", "warn")
        .assert()
        .failure()
        .stderr(predicate::str::contains("WARN"))
        .stderr(predicate::str::contains(
            "limits.poll_interval_ms is deprecated: write limits.poll_interval = \"250ms\" instead",
        ));
}

#[test]
fn a_bad_duration_is_refused_naming_its_key() {
    let (mut command, _dir) = serve("retry_initial = \"half a second\"");
    command
        .arg("--check")
        .assert()
        .failure()
        .stderr(predicate::str::contains("limits.retry_initial"))
        .stderr(predicate::str::contains("\"500ms\""));
    let (mut command, _dir) = serve("");
    command
        .arg("--check")
        .env("HANCHA_MAX_WAIT", "1500")
        .assert()
        .failure()
        .stderr(predicate::str::contains("limits.max_wait"));
}
