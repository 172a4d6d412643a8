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

#[test]
fn agreement_sign_then_check_shows_each_signature_verified_by_the_trust_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amended.toml");
    let terms = hancha::node::strip_signatures(
        &std::fs::read_to_string("examples/agreements/430703-431322.toml").unwrap(),
    )
    .replacen("version = 1", "version = 2", 1);
    std::fs::write(&path, terms).unwrap();
    let file = path.to_str().unwrap();
    let sign = |county: &str| {
        hancha()
            .args(["agreement", "sign", file])
            .args(["--cert", &format!("certs-dev/{county}.pem")])
            .args(["--key", &format!("certs-dev/{county}-key.pem")])
            .assert()
    };
    sign("430703")
        .success()
        .stdout(predicate::str::contains("still to sign: 431322 新化县"));
    // one party only: checked against the anchors, the file cannot be used
    hancha()
        .args(["agreement", "check", file, "--trust", "certs-dev/ca.pem"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("signature by 430703 鼎城区, signed "))
        .stdout(predicate::str::contains(": verified"))
        .stderr(predicate::str::contains("431322 新化县 has not signed it"));
    // a county that is not a party cannot sign
    sign("430582")
        .code(2)
        .stderr(predicate::str::contains("430582's, which is not a party"));
    sign("431322").success();
    hancha()
        .args(["agreement", "check", file, "--trust", "certs-dev/ca.pem"])
        .assert()
        .success()
        .stdout(predicate::str::contains("signed by every party"));
    // a term changed after signing: both signatures refused
    let signed = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        signed.replacen("daily_cap = 20000", "daily_cap = 20001", 1),
    )
    .unwrap();
    hancha()
        .args(["agreement", "check", file, "--trust", "certs-dev/ca.pem"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("REFUSED: the signature does not match"));
}
