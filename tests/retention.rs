//! Kept no longer than agreed (PIPL Art. 19, 47): under an agreement with `retention_days = 1`,
//! the retention worker, run as if two days had passed, leaves no resident ID of the erased
//! messages — nor an unkeyed digest of one — in any text, bytea or jsonb column of any table
//! outside the registry; reconciliation still agrees when one side has erased and the other
//! has not, and still finds a lost or divergent message; `hancha report` still runs; two
//! replicas erase each row once.

mod common;

use std::sync::Arc;

use assert_cmd::Command;
use chrono::Utc;
use common::pair::{reconcile, set};
use common::*;
use hancha::domain::vocabulary::InquiryKind;
use hancha::node::Node;
use hancha::proto::exchange as pb;
use hancha::workers::Step;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// The test agreement between 鼎城区 and 邵东市, keeping personal data for one day.
fn one_day_agreement() -> String {
    let text = open_agreement(DINGCHENG, SHAODONG);
    assert!(text.contains("retention_days = 1095"), "{text}");
    // other terms: signed again by both parties
    signed(&unsigned(&text).replace("retention_days = 1095", "retention_days = 1"))
}

const AGREEMENT: &str = "430703-430582";

async fn one_day_pair() -> Cluster {
    Cluster::start(&[DINGCHENG, SHAODONG], &[one_day_agreement()]).await
}

/// 鼎城区 asks 邵东市 about its outflow persons `numbers` (registered on both sides, so the
/// answers are `found` with fields), and waits until every inquiry is answered.
async fn ask_and_wait(cluster: &Cluster, numbers: std::ops::Range<u32>) {
    cluster
        .node(DINGCHENG)
        .send_inquiries(
            SHAODONG.parse().unwrap(),
            inquiry_drafts(InquiryKind::OutflowStatus, DINGCHENG, numbers),
        )
        .await
        .expect("inquiries queued");
    settled(cluster).await;
}

/// Waits until nothing is queued, pending or owed on either side.
async fn settled(cluster: &Cluster) {
    for county in [DINGCHENG, SHAODONG] {
        let node = cluster.node(county);
        eventually("every inquiry answered and every answer delivered", || async {
            let open = count(
                node,
                "SELECT count(*) FROM inquiries WHERE state IN ('queued', 'pending')",
            )
            .await;
            let owed = count(node, "SELECT count(*) FROM outbox").await;
            (open + owed == 0).then_some(())
        })
        .await;
    }
}

/// Runs the retention worker of `node` as if `days` had passed, until it idles; returns how
/// many messages it erased.
async fn erase_after(node: &Arc<Node>, days: i64) -> i64 {
    let now = Utc::now() + chrono::Duration::days(days);
    let before = count(
        node,
        "SELECT count(*) FROM erasures WHERE table_name <> 'reconcile_differences'",
    )
    .await;
    while hancha::workers::retention::run_once(node, now)
        .await
        .expect("retention step")
        == Step::Worked
    {}
    count(
        node,
        "SELECT count(*) FROM erasures WHERE table_name <> 'reconcile_differences'",
    )
    .await
        - before
}

/// What a person's data may be found as: the value itself, as text or bytes.
struct Needle {
    what: String,
    text: String,
    bytes: Vec<u8>,
}

/// The resident IDs named anywhere in `pool` outside the registry, and every unkeyed digest of
/// them the schema ever held: SHA-256 of the ID itself, and the content digest migration 0002
/// stored for each message (recomputed by the functions of migration 0008).
async fn needles(pool: &PgPool) -> Vec<Needle> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT subject_id FROM inquiries WHERE subject_id IS NOT NULL
         UNION SELECT subject_id FROM notices WHERE subject_id IS NOT NULL
         UNION SELECT resident_id FROM reconcile_differences WHERE resident_id IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let digests: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT inquiry_content(i) FROM inquiries i WHERE erased_at IS NULL
         UNION ALL SELECT confirmation_content(c) FROM confirmations c WHERE erased_at IS NULL
         UNION ALL SELECT notice_content(n) FROM notices n WHERE erased_at IS NULL",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut needles = Vec::new();
    for id in ids {
        let digest = Sha256::digest(id.as_bytes()).to_vec();
        needles.push(Needle {
            what: format!("SHA-256 of ID {id}"),
            text: hex(&digest),
            bytes: digest,
        });
        needles.push(Needle {
            what: format!("ID {id}"),
            text: id.clone(),
            bytes: id.into_bytes(),
        });
    }
    for digest in digests {
        needles.push(Needle {
            what: format!("content digest {}", hex(&digest)),
            text: hex(&digest),
            bytes: digest,
        });
    }
    needles
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Scans every text, bytea and jsonb column (and every other character or array column) of
/// every table but `persons` for each needle; returns where each was found.
async fn found_outside_the_registry(pool: &PgPool, needles: &[Needle]) -> Vec<String> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
          WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name <> 'persons'
            AND c.data_type IN ('text', 'bytea', 'jsonb', 'json', 'character varying', 'character', 'ARRAY')
          ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        columns.len() > 30,
        "the scan sees the schema: {} columns",
        columns.len()
    );
    let mut found = Vec::new();
    for (table, column, data_type) in &columns {
        let bytea = data_type == "bytea";
        let sql = if bytea {
            format!(
                "SELECT count(*) FROM \"{table}\"
                  WHERE position($2 in \"{column}\") > 0 OR strpos(encode(\"{column}\", 'hex'), $1) > 0"
            )
        } else {
            format!("SELECT count(*) FROM \"{table}\" WHERE strpos(\"{column}\"::text, $1) > 0")
        };
        for needle in needles {
            let query = sqlx::query_scalar(&sql).bind(&needle.text);
            let query = if bytea { query.bind(&needle.bytes) } else { query };
            let hits: i64 = query
                .fetch_one(pool)
                .await
                .unwrap_or_else(|error| panic!("{table}.{column}: {error}"));
            if hits > 0 {
                found.push(format!("{} in {table}.{column}", needle.what));
            }
        }
    }
    found
}

/// A birth notice from 鼎城区 to 邵东市 about `subject`, sent over the exchange API.
async fn notify(cluster: &Cluster, subject: &str) {
    let notice = pb::Notice {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(SHAODONG, AGREEMENT),
            id: AGREEMENT.to_string(),
        }),
        kind: pb::NoticeKind::Birth as i32,
        subject: Some(pb::Subject {
            resident_id: subject.to_string(),
            certificate_number: String::new(),
        }),
        occurred_on: "2026-03-01".into(),
        fields: Default::default(),
    };
    let mut client = cluster.client(DINGCHENG, SHAODONG).await;
    let request = tokio_stream::iter(vec![pb::NoticeBatch {
        notices: vec![notice],
    }]);
    let mut stream = client.deliver_notices(request).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}
    assert_eq!(
        count(cluster.node(SHAODONG), "SELECT count(*) FROM notices").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_retention_period_no_resident_id_nor_an_unkeyed_digest_of_one_remains_outside_the_registry()
{
    let cluster = one_day_pair().await;
    share_persons(&cluster, DINGCHENG, SHAODONG, 0..6).await;
    ask_and_wait(&cluster, 0..4).await;
    notify(&cluster, synthetic_id(DINGCHENG, 0).as_str()).await;
    // 邵东市 no longer knows person 5: reconciliation records the difference with her ID number
    // on 鼎城区's side, and opens an inquiry about her.
    sqlx::query("DELETE FROM persons WHERE resident_id = $1")
        .bind(synthetic_id(DINGCHENG, 5).as_str())
        .execute(&database(cluster.node(SHAODONG).store()).await)
        .await
        .unwrap();
    let summaries = reconcile(cluster.node(DINGCHENG), SHAODONG).await;
    assert_eq!(set(&summaries, "shared_people").record.differences, 1);
    settled(&cluster).await;

    let mut scanned = Vec::new();
    for county in [DINGCHENG, SHAODONG] {
        let pool = database(cluster.node(county).store()).await;
        let needles = needles(&pool).await;
        // The scan finds what is there: the subjects in the messages before erasure.
        let before = found_outside_the_registry(&pool, &needles).await;
        assert!(
            before
                .iter()
                .any(|place| place.contains("in inquiries.subject_id")),
            "{county}: {before:?}"
        );
        scanned.push((county, pool, needles));
    }
    assert!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM reconcile_differences WHERE resident_id IS NOT NULL"
        )
        .await
            > 0
    );

    // Still within the period: nothing is erased.
    for county in [DINGCHENG, SHAODONG] {
        assert_eq!(erase_after(cluster.node(county), 0).await, 0);
    }
    let erased_at_asker = erase_after(cluster.node(DINGCHENG), 2).await;
    let erased_at_responder = erase_after(cluster.node(SHAODONG), 2).await;
    assert_eq!(
        erased_at_asker, 10,
        "5 inquiries (4 asked, 1 opened by reconciliation) and their answers"
    );
    assert_eq!(
        erased_at_responder, 10,
        "the same; the birth notice still awaits its feedback"
    );
    // The notice is settled once its feedback deadline has passed, and its period runs from
    // then: kept a day before the deadline plus the period, erased after.
    let responder = cluster.node(SHAODONG);
    let days_to_feedback = count(
        responder,
        "SELECT floor(extract(epoch FROM feedback_due_at - now()) / 86400)::bigint FROM notices",
    )
    .await;
    assert!(
        days_to_feedback >= 2,
        "feedback is due in {days_to_feedback} days"
    );
    assert_eq!(
        erase_after(responder, days_to_feedback + 1).await,
        0,
        "not a full day of retention after the feedback deadline"
    );
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM notices WHERE subject_id IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        erase_after(responder, days_to_feedback + 3).await,
        1,
        "the notice, a day past its feedback deadline and the period"
    );

    for (county, pool, needles) in &scanned {
        assert!(needles.len() >= 3 * 6, "{county}: every subject and its digests");
        let after = found_outside_the_registry(pool, needles).await;
        assert!(after.is_empty(), "{county} still holds: {after:?}");
        // What is kept: ids, states, times and a keyed tag; what was erased is recorded.
        let node = cluster.node(county);
        assert_eq!(
            count(
                node,
                "SELECT count(*) FROM inquiries
                  WHERE erased_at IS NOT NULL AND state = 'answered' AND answered_at IS NOT NULL
                    AND content_tag IS NOT NULL AND octet_length(content_tag) = 32"
            )
            .await,
            5
        );
        assert_eq!(
            count(node, "SELECT count(*) FROM confirmations WHERE fields <> '{}'").await,
            0
        );
        assert_eq!(
            count(
                node,
                "SELECT count(*) FROM erasures WHERE table_name = 'inquiries'"
            )
            .await,
            5
        );
        let audited = count(
            node,
            "SELECT count(*) FROM audit_log WHERE outcome = 'erased' AND reason LIKE '%1 days agreed: 5 inquiries%'",
        )
        .await;
        assert_eq!(audited, 1, "{county}: one audit record with the counts");
        let metrics = node.metrics().render();
        assert!(
            metrics.contains("hancha_erased_messages_total{type=\"inquiry\"} 5"),
            "{metrics}"
        );
    }
    assert_eq!(
        count(
            cluster.node(DINGCHENG),
            "SELECT count(*) FROM reconcile_differences WHERE resident_id IS NULL AND person_tag IS NOT NULL"
        )
        .await,
        1,
        "the difference keeps its keyed tag"
    );
    // The registry itself is the county's own, not exchange data: it is kept.
    assert_eq!(
        count(cluster.node(SHAODONG), "SELECT count(*) FROM persons").await,
        5
    );

    // A second pass finds nothing more.
    assert_eq!(erase_after(cluster.node(DINGCHENG), 2).await, 0);

    // `hancha report` still runs over the erased records.
    let address = cluster.operator_address(DINGCHENG).to_string();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
        command.arg("report").arg("--node").arg(address);
        for variable in [
            "HANCHA_NODE",
            "HANCHA_OPERATOR_CERT",
            "HANCHA_OPERATOR_KEY",
            "HANCHA_NODE_CA",
            "HANCHA_NODE_COUNTY",
        ] {
            command.env_remove(variable);
        }
        command.output().expect("run hancha report")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("430703"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_agrees_across_erasure_on_one_side_and_still_finds_lost_and_divergent_messages() {
    let cluster = one_day_pair().await;
    share_persons(&cluster, DINGCHENG, SHAODONG, 0..6).await;
    ask_and_wait(&cluster, 0..4).await;
    let asker = cluster.node(DINGCHENG);
    let responder_db = database(cluster.node(SHAODONG).store()).await;

    // A message recorded differently before erasure is found (its tag is made from what each
    // side holds).
    let inquiries: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT message_id FROM inquiries ORDER BY message_id")
            .fetch_all(&responder_db)
            .await
            .unwrap();
    let first = reconcile(asker, SHAODONG).await;
    assert_eq!(set(&first, "messages").record.differences, 0);
    sqlx::query("UPDATE inquiries SET subject_certificate = 'forged' WHERE message_id = $1")
        .bind(inquiries[0])
        .execute(&responder_db)
        .await
        .unwrap();
    let messages = reconcile(asker, SHAODONG).await;
    let messages = set(&messages, "messages");
    assert_eq!(messages.record.differences, 2, "one message, two versions");
    assert_eq!(messages.committed.reported, 1, "divergent: reported");
    sqlx::query("UPDATE inquiries SET subject_certificate = NULL WHERE message_id = $1")
        .bind(inquiries[0])
        .execute(&responder_db)
        .await
        .unwrap();

    // The asker erases; the responder does not yet: the sets are still equal, both ways.
    assert_eq!(erase_after(asker, 2).await, 8);
    for (from, to) in [(DINGCHENG, SHAODONG), (SHAODONG, DINGCHENG)] {
        let summaries = reconcile(cluster.node(from), to).await;
        let messages = set(&summaries, "messages");
        assert_eq!(
            (messages.record.local_size, messages.record.peer_size),
            (8, 8),
            "{from}"
        );
        assert_eq!(messages.record.differences, 0, "{from} → {to}");
    }
    // Then the responder erases too: still equal.
    assert_eq!(erase_after(cluster.node(SHAODONG), 2).await, 8);
    let summaries = reconcile(asker, SHAODONG).await;
    assert_eq!(set(&summaries, "messages").record.differences, 0);

    // The responder loses an inquiry and its answer: found, and reported rather than delivered
    // again (the asker erased the subject and has nothing left to send).
    sqlx::query("DELETE FROM confirmations WHERE inquiry_id = $1")
        .bind(inquiries[1])
        .execute(&responder_db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM inquiries WHERE message_id = $1")
        .bind(inquiries[1])
        .execute(&responder_db)
        .await
        .unwrap();
    let summaries = reconcile(asker, SHAODONG).await;
    let messages = set(&summaries, "messages");
    assert_eq!(messages.record.differences, 2);
    assert_eq!(
        messages.committed.repaired, 0,
        "an erased message is not sent again"
    );
    assert_eq!(messages.committed.reported, 2);
    assert_eq!(count(asker, "SELECT count(*) FROM outbox").await, 0);
    let reported: Vec<(String, String)> = sqlx::query_as(
        "SELECT difference, action FROM reconcile_differences
          WHERE message_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(inquiries[1])
    .fetch_all(&database(asker.store()).await)
    .await
    .unwrap();
    assert_eq!(reported, [("missing_at_peer".into(), "reported".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_erase_each_row_once() {
    let cluster = one_day_pair().await;
    share_persons(&cluster, DINGCHENG, SHAODONG, 0..6).await;
    ask_and_wait(&cluster, 0..6).await;
    let replica = cluster.start_replica(DINGCHENG).await;

    let first = cluster.node(DINGCHENG);
    let now = Utc::now() + chrono::Duration::days(2);
    let (one, other) = tokio::join!(
        hancha::workers::retention::run_once(first, now),
        hancha::workers::retention::run_once(&replica.node, now),
    );
    assert_eq!(
        one.unwrap(),
        Step::Idle(hancha::workers::retention::CHECK_INTERVAL)
    );
    assert_eq!(
        other.unwrap(),
        Step::Idle(hancha::workers::retention::CHECK_INTERVAL)
    );
    assert_eq!(
        count(first, "SELECT count(*) FROM erasures").await,
        12,
        "6 inquiries and 6 answers, each once"
    );
    let counted: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(substring(reason from ': ([0-9]+) inquiries')::bigint), 0)::bigint
           FROM audit_log WHERE outcome = 'erased'",
    )
    .fetch_one(&database(first.store()).await)
    .await
    .unwrap();
    assert_eq!(
        counted, 6,
        "the audit records of both replicas add up to each inquiry once"
    );
    assert_eq!(
        count(first, "SELECT count(*) FROM inquiries WHERE erased_at IS NULL").await,
        0
    );
    replica.stop().await;
}

/// Makes `node`'s stored versions of the test agreement unusable with `change` (an SQL
/// assignment), and puts the agreements in force again: the node then has none.
async fn leave_out_of_force(node: &Arc<Node>, change: &str) {
    sqlx::query(&format!("UPDATE agreements SET {change} WHERE agreement_id = $1"))
        .bind(AGREEMENT)
        .execute(&database(node.store()).await)
        .await
        .unwrap();
    node.reload_agreements().await.expect("reloaded");
    assert_eq!(
        node.agreements().current_versions().count(),
        0,
        "no agreement in force"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_under_an_agreement_no_longer_in_force_are_erased_all_the_same() {
    let cluster = one_day_pair().await;
    share_persons(&cluster, DINGCHENG, SHAODONG, 0..2).await;
    ask_and_wait(&cluster, 0..2).await;

    // Not signed by every party while signatures are required: left out of force, yet its
    // stored text still parses and keeps its one day.
    let asker = cluster.node(DINGCHENG);
    leave_out_of_force(asker, "signed_by_all = false").await;
    assert_eq!(erase_after(asker, 0).await, 0, "still within the period");
    assert_eq!(
        erase_after(asker, 2).await,
        4,
        "2 inquiries and their answers, after the stored version's one day"
    );

    // No stored version parses (a document of an older format, say): erased after the
    // fallback period, since no agreement is in force to take the longest period from.
    let responder = cluster.node(SHAODONG);
    leave_out_of_force(responder, "source_text = 'format = 1'").await;
    let fallback = i64::from(hancha::workers::retention::FALLBACK_RETENTION_DAYS);
    assert_eq!(erase_after(responder, 2).await, 0);
    assert_eq!(
        erase_after(responder, fallback - 1).await,
        0,
        "kept within the fallback period"
    );
    assert_eq!(
        erase_after(responder, fallback + 1).await,
        4,
        "2 inquiries and their answers, after the fallback period"
    );
    for node in [asker, responder] {
        assert_eq!(
            count(
                node,
                "SELECT count(*) FROM inquiries WHERE subject_id IS NOT NULL"
            )
            .await,
            0
        );
    }
}
