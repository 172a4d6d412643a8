//! The `hancha id check` and `hancha agreement check` commands as an operator or a script uses
//! them: output lines, JSON fields and exit codes.

use assert_cmd::Command;
use predicates::prelude::*;

fn hancha() -> Command {
    Command::cargo_bin("hancha").expect("the hancha binary is built")
}

#[test]
fn a_valid_id_reports_birth_date_sex_and_address() {
    hancha()
        .args(["id", "check", "11010519491231002X"])
        .assert()
        .success()
        .stdout(predicate::str::contains("valid"))
        .stdout(predicate::str::contains("1949-12-31"))
        .stdout(predicate::str::contains("female"))
        .stdout(predicate::str::contains("110105 北京市朝阳区"));
}

#[test]
fn a_lowercase_x_is_the_same_id() {
    hancha()
        .args(["id", "check", "11010519491231002x"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("11010519491231002X"));
}

#[test]
fn each_kind_of_invalid_id_gets_its_own_reason_and_exit_code_1() {
    let cases = [
        (
            "110105194912310021",
            "the check character (character 18) does not match the first 17: a typo somewhere (it is 1, the first 17 call for X)",
        ),
        ("11010519490231002X", "is not a calendar date (read 19490231)"),
        ("1101051949123100", "must be 18 characters, got 16"),
        ("1101051949123100a2", "character 17 is not a digit"),
        (
            "99010519491231002X",
            "the province code (characters 1–2) does not exist",
        ),
        ("110105194912310", "legacy 15-digit format"),
    ];
    for (input, reason) in cases {
        hancha()
            .args(["id", "check", input])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("invalid"))
            .stdout(predicate::str::contains(reason));
    }
}

#[test]
fn a_future_birth_date_is_refused() {
    hancha()
        .args(["id", "check", "11010520991231002X"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("future"));
}

#[test]
fn json_output_has_one_object_per_id_with_the_documented_fields() {
    let output = hancha()
        .args([
            "id",
            "check",
            "--json",
            "11010519491231002X",
            "110105194912310021",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["input"], "11010519491231002X");
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["birth_date"], "1949-12-31");
    assert_eq!(lines[0]["sex"], "female");
    assert_eq!(lines[0]["address_code"], "110105");
    assert_eq!(lines[1]["valid"], false);
    assert_eq!(
        lines[1]["error"],
        "the check character (character 18) does not match the first 17: a typo somewhere"
    );
}

#[test]
fn legacy_numbers_convert_only_when_asked() {
    // 15-digit form of 11010519491231002X: address, 2-digit year, date, sequence.
    hancha().args(["id", "check", "110105491231002"]).assert().code(1);
    hancha()
        .args(["id", "check", "--convert-legacy", "110105491231002"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("11010519491231002X"));
}

#[test]
fn usage_errors_exit_with_code_2() {
    hancha().args(["id", "check"]).assert().code(2);
    hancha().args(["id", "frobnicate"]).assert().code(2);
}

#[test]
fn agreement_check_prints_the_canonical_hash_and_a_summary() {
    hancha()
        .args(["agreement", "check", "examples/agreements/430703-431322.toml"])
        .assert()
        .success()
        .stdout(predicate::str::is_match("hash [0-9a-f]{64}").unwrap())
        .stdout(predicate::str::contains("鼎城区"))
        .stdout(predicate::str::contains("新化县"));
}

#[test]
fn agreement_check_names_the_line_of_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let good = std::fs::read_to_string("examples/agreements/430703-431322.toml").unwrap();
    let bad = good.replacen(
        "inquiry_kinds = [\"certificate_verification\"",
        "inquiry_kinds = [\"certificate_verificatoin\"",
        1,
    );
    assert_ne!(good, bad, "the fixture changed: adjust the replacement");
    let line = bad.lines().position(|l| l.contains("verificatoin")).unwrap() + 1;
    std::fs::write(&path, bad).unwrap();
    hancha()
        .args(["agreement", "check", path.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("line {line}")))
        .stderr(predicate::str::contains("certificate_verificatoin"))
        .stderr(predicate::str::contains(
            "allowed: certificate_verification, outflow_status",
        ));
}
