//! `hancha notices`, `hancha notices apply|dismiss` and `hancha registry history` as an operator
//! at the origin runs them, against real nodes; and `hancha agreement check` refusing a bad
//! `notice_effect` by its key path.

mod common;

use assert_cmd::Command;
use common::*;
use hancha::proto::exchange as pb;
use predicates::prelude::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_lists_applies_once_and_dismisses_received_notices_and_reads_the_history() {
    // the usual test agreement: birth notices both ways, no notice_effect (an operator decides)
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let (mother, other) = (synthetic_id(XINHUA, 21), synthetic_id(XINHUA, 22));
    let persons = [
        outflow_person(mother.clone(), XINHUA, DINGCHENG),
        outflow_person(other.clone(), XINHUA, DINGCHENG),
    ];
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&persons)
        .await
        .unwrap();
    let id = format!("{DINGCHENG}-{XINHUA}");
    let birth = |subject: &hancha::domain::resident_id::ResidentId| pb::Notice {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(XINHUA, &id),
            id: id.clone(),
        }),
        kind: pb::NoticeKind::Birth as i32,
        subject: Some(pb::Subject {
            resident_id: subject.as_str().to_owned(),
            certificate_number: String::new(),
        }),
        occurred_on: "2026-10-02".into(),
        fields: Default::default(),
    };
    let (first, second) = (birth(&mother), birth(&other));
    let mut client = cluster.client(DINGCHENG, XINHUA).await;
    let request = tokio_stream::iter(vec![pb::NoticeBatch {
        notices: vec![first.clone(), second.clone()],
    }]);
    let mut stream = client.deliver_notices(request).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}

    let mut pending = operator_cli(&cluster, XINHUA);
    pending.args(["notices", "--pending"]);
    let listed = output_of(pending).await;
    assert!(listed.status.success(), "{}", lossy(&listed.stderr));
    let stdout = lossy(&listed.stdout);
    assert!(
        stdout.contains(&first.message_id) && stdout.contains(&second.message_id),
        "{stdout}"
    );
    assert!(stdout.contains("birth 出生通报"), "{stdout}");
    assert!(
        stdout.contains("2 notices, 2 waiting for an operator"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(mother.as_str()),
        "ID numbers are masked: {stdout}"
    );

    let mut apply = operator_cli(&cluster, XINHUA);
    apply.args(["notices", "apply", first.message_id.as_str()]);
    let applied = output_of(apply).await;
    assert!(applied.status.success(), "{}", lossy(&applied.stderr));
    assert_eq!(
        lossy(&applied.stdout),
        format!("applied: {} (changed children_count)\n", first.message_id)
    );

    let mut again = operator_cli(&cluster, XINHUA);
    again.args(["notices", "apply", first.message_id.as_str()]);
    let refused = output_of(again).await;
    assert_eq!(refused.status.code(), Some(1), "applying twice is refused");
    let stderr = lossy(&refused.stderr);
    assert!(
        stderr.contains("was applied at") && stderr.contains("by loopback: nothing changed"),
        "{stderr}"
    );

    let mut history = operator_cli(&cluster, XINHUA);
    history.args(["registry", "history", mother.as_str(), "--json"]);
    let shown = output_of(history).await;
    assert!(shown.status.success(), "{}", lossy(&shown.stderr));
    let changes: Vec<serde_json::Value> = lossy(&shown.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["field"], "children_count");
    assert_eq!(changes[0]["old_value"], "1");
    assert_eq!(changes[0]["new_value"], "2");
    assert_eq!(changes[0]["source"], "notice");
    assert_eq!(changes[0]["message_id"], first.message_id.as_str());
    assert_eq!(changes[0]["changed_by"], "loopback");

    let mut dismiss = operator_cli(&cluster, XINHUA);
    dismiss.args([
        "notices",
        "dismiss",
        second.message_id.as_str(),
        "--reason",
        "registered by the township already",
        "--json",
    ]);
    let dismissed = output_of(dismiss).await;
    assert!(dismissed.status.success(), "{}", lossy(&dismissed.stderr));
    let notice: serde_json::Value = serde_json::from_slice(&dismissed.stdout).unwrap();
    assert_eq!(notice["state"], "dismissed");
    assert_eq!(notice["note"], "registered by the township already");
    assert_eq!(notice["decided_by"], "loopback");

    let mut none_left = operator_cli(&cluster, XINHUA);
    none_left.args(["notices", "--pending"]);
    let listed = output_of(none_left).await;
    assert_eq!(lossy(&listed.stdout), "no notice waits for an operator\n");
    let mut all = operator_cli(&cluster, XINHUA);
    all.args(["notices", "--json"]);
    let listed = output_of(all).await;
    let states: Vec<String> = lossy(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["state"].to_string())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(states.contains(&"\"applied\"".to_owned()) && states.contains(&"\"dismissed\"".to_owned()));
}

#[test]
fn agreement_check_refuses_a_bad_notice_effect_by_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = open_agreement(DINGCHENG, XINHUA);
    let bad = unsigned(&good).replacen(
        "automatic_answers = true\n",
        "automatic_answers = true\nnotice_effect = { birth = \"automatic\", pregnancy = \"apply\" }\n",
        1,
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, bad).unwrap();
    let mut check = Command::cargo_bin("hancha").unwrap();
    check.args(["agreement", "check"]).arg(&path);
    check
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "direction[0].notice_effect.birth: unknown notice effect (allowed: apply, operator)",
        ))
        .stderr(predicate::str::contains(
            "direction[0].notice_effect.pregnancy: pregnancy is not in this direction's notice_kinds",
        ));
}
