//! A sweep's answers come back in the receipts (SubmitInquiries with `answer_inline`): the
//! responder answers what its registry settles in the commit that accepts the batch, the asker
//! stores receipts and answers in one commit and acknowledges them, and nothing stays owed. An
//! asker that does not ask for answers inline gets them delivered as before, and an answer given
//! inline that is never acknowledged is delivered after the grace period.

mod common;

use std::time::Duration;

use common::*;
use hancha::config::Limits;
use hancha::domain::division::CountyCode;
use hancha::domain::message::{AgreementRef, Inquiry, Subject};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::exchange::convert::inquiry_to_wire;
use hancha::node::InquiryDraft;
use hancha::proto::exchange as pb;
use sqlx::Connection;

const SIZE: u32 = 40;

/// `SIZE` women registered in 鼎城区 who went to 新化县, every other one in 新化县's registry
/// (as inflow): half are found, half not. Returns all their IDs.
async fn half_registered(cluster: &Cluster) -> Vec<ResidentId> {
    let ids: Vec<ResidentId> = (0..SIZE).map(|n| synthetic_id(DINGCHENG, 100 + n)).collect();
    let registered: Vec<_> = ids
        .iter()
        .step_by(2)
        .map(|id| inflow_person(id.clone(), DINGCHENG, XINHUA))
        .collect();
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&registered)
        .await
        .expect("registry written");
    ids
}

fn draft(subject: &ResidentId) -> InquiryDraft {
    InquiryDraft {
        kind: InquiryKind::OutflowStatus,
        priority: Priority::Normal,
        subject: Subject {
            resident_id: subject.clone(),
            certificate_number: None,
        },
        message_id: None,
    }
}

/// Inquiries from 鼎城区 to 新化县, as 鼎城区's node writes them, queued there with a hold of
/// an hour (its own worker leaves them alone: the test sends them on the wire itself).
async fn queued_at_dingcheng(cluster: &Cluster, subjects: &[ResidentId]) -> Vec<Inquiry> {
    let agreement_id = format!("{DINGCHENG}-{XINHUA}");
    let inquiries: Vec<Inquiry> = subjects
        .iter()
        .map(|subject| Inquiry {
            message_id: uuid::Uuid::now_v7(),
            agreement: AgreementRef {
                hash: cluster.agreement_hash(DINGCHENG, &agreement_id),
                id: agreement_id.clone(),
            },
            kind: InquiryKind::OutflowStatus,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: subject.clone(),
                certificate_number: None,
            },
        })
        .collect();
    cluster
        .node(DINGCHENG)
        .store()
        .queue_outbound_inquiries(
            XINHUA.parse().unwrap(),
            &inquiries,
            None,
            None,
            Duration::from_secs(3600),
        )
        .await
        .expect("queued");
    inquiries
}

/// Sends one batch to 新化县 as 鼎城区 on the wire and returns its receipts.
async fn submit(cluster: &Cluster, inquiries: &[Inquiry], answer_inline: bool) -> Vec<pb::Receipt> {
    let batch = pb::InquiryBatch {
        inquiries: inquiries.iter().map(inquiry_to_wire).collect(),
        answer_inline,
    };
    let mut replies = cluster
        .client(DINGCHENG, XINHUA)
        .await
        .submit_inquiries(tokio_stream::iter(vec![batch]))
        .await
        .expect("the stream opens")
        .into_inner();
    replies
        .message()
        .await
        .expect("a reply")
        .expect("receipts")
        .receipts
}

/// Waits until `sql` counts `SIZE` rows at `node`.
async fn until_all(what: &str, node: &hancha::node::Node, sql: &str) {
    eventually(what, || async {
        (count(node, sql).await == i64::from(SIZE)).then_some(())
    })
    .await;
}

fn ids_in(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn a_sweep_takes_its_answers_in_the_receipts_and_nothing_stays_owed() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let subjects = half_registered(&cluster).await;
    let asker = cluster.node(DINGCHENG);
    let responder = cluster.node(XINHUA);
    let drafts = subjects.iter().map(draft).collect();
    let (sent, new) = asker
        .send_inquiries(CountyCode::parse(XINHUA).unwrap(), drafts)
        .await
        .expect("queued");
    assert_eq!(new, u64::from(SIZE));

    until_all(
        "every inquiry answered at the asker",
        asker,
        "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered'",
    )
    .await;
    // The responder owes nothing once the asker acknowledged: no answer was ever sent through
    // DeliverConfirmations, each was marked delivered by the acknowledgement.
    eventually("the responder's outbox empties", || async {
        (count(responder, "SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM audit_log WHERE outcome = 'delivered' AND reason LIKE '%acknowledged%'"
        )
        .await,
        i64::from(SIZE),
        "every answer went back inline and was acknowledged once"
    );
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM audit_log WHERE outcome = 'delivered'"
        )
        .await,
        i64::from(SIZE),
        "and none was delivered a second time"
    );
    // Each answered inquiry at the responder was written once, answered (never pending first):
    // half found in the registry, half not.
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM inquiries WHERE direction = 'inbound' AND state = 'answered' AND auto_checked
               AND answered_at = received_at"
        )
        .await,
        i64::from(SIZE)
    );
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM confirmations WHERE outcome = 'found'"
        )
        .await,
        i64::from(SIZE / 2)
    );
    // At the asker: each answer stored once, and each inquiry holds the peer's receipt (when it
    // was accepted there and its deadline) as well as the answer.
    let ids: Vec<String> = sent.iter().map(|i| i.message_id.to_string()).collect();
    assert_eq!(
        count(
            asker,
            &format!(
                "SELECT count(*) FROM inquiries i JOIN confirmations c ON c.inquiry_id = i.message_id
                 WHERE i.message_id IN ({}) AND i.received_at IS NOT NULL AND i.due_at IS NOT NULL
                   AND i.outcome = c.outcome",
                ids_in(&ids)
            )
        )
        .await,
        i64::from(SIZE)
    );
    assert_eq!(
        count(
            asker,
            "SELECT count(*) FROM audit_log WHERE kind = 'confirmation' AND outcome = 'accepted'"
        )
        .await,
        i64::from(SIZE),
        "each answer taken once"
    );
    assert_eq!(count(asker, "SELECT count(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn answers_in_receipts_are_the_stored_ones_and_an_unacknowledged_one_is_delivered_later() {
    let limits = Limits {
        inline_answer_grace: Duration::from_millis(500),
        ..Limits::default()
    };
    let cluster =
        Cluster::start_with(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)], limits).await;
    let subjects = half_registered(&cluster).await;
    let inquiries = queued_at_dingcheng(&cluster, &subjects).await;

    let receipts = submit(&cluster, &inquiries, true).await;
    assert_eq!(receipts.len(), inquiries.len());
    for (inquiry, receipt) in inquiries.iter().zip(&receipts) {
        assert!(
            matches!(receipt.result, Some(pb::receipt::Result::Accepted(_))),
            "{receipt:?}"
        );
        let answer = receipt.answer.as_ref().expect("answered in the receipt");
        assert_eq!(answer.inquiry_id, inquiry.message_id.to_string());
    }
    let found = receipts
        .iter()
        .filter(|r| {
            r.answer
                .as_ref()
                .is_some_and(|a| a.outcome == pb::Outcome::Found as i32)
        })
        .count();
    assert_eq!(found, (SIZE / 2) as usize, "half are in the registry");

    // The same batch again (the asker lost the reply): the same receipts and the same answers,
    // nothing stored twice.
    let again = submit(&cluster, &inquiries, true).await;
    let answer_ids = |receipts: &[pb::Receipt]| -> Vec<String> {
        receipts
            .iter()
            .map(|r| {
                r.answer
                    .as_ref()
                    .map(|a| a.message_id.clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(answer_ids(&again), answer_ids(&receipts));
    let metrics = http_get(&cluster.metrics_url(XINHUA)).await.1;
    assert!(
        metrics.contains(&format!("hancha_auto_answers_total {SIZE}\n")),
        "answers given once, not again for the repeat:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("auto_answers"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let responder = cluster.node(XINHUA);
    assert_eq!(
        count(responder, "SELECT count(*) FROM confirmations").await,
        i64::from(SIZE)
    );

    // Never acknowledged: each answer is delivered in full after the grace period, and the
    // asker (which holds the inquiries) takes them.
    let asker = cluster.node(DINGCHENG);
    until_all(
        "the owed answers reach the asker",
        asker,
        "SELECT count(*) FROM confirmations WHERE direction = 'inbound'",
    )
    .await;
    until_all(
        "the responder records them delivered",
        responder,
        "SELECT count(*) FROM confirmations WHERE delivered_at IS NOT NULL",
    )
    .await;
    assert_eq!(
        count(
            responder,
            "SELECT count(*) FROM audit_log WHERE outcome = 'delivered' AND reason LIKE '%acknowledged%'"
        )
        .await,
        0,
        "delivered by the outbox, not acknowledged inline"
    );
}

#[tokio::test]
async fn an_asker_that_does_not_ask_for_answers_inline_gets_them_delivered() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let subjects = half_registered(&cluster).await;
    let inquiries = queued_at_dingcheng(&cluster, &subjects).await;

    let receipts = submit(&cluster, &inquiries, false).await;
    assert!(
        receipts
            .iter()
            .all(|r| r.answer.is_none() && matches!(r.result, Some(pb::receipt::Result::Accepted(_)))),
        "receipts alone: {receipts:?}"
    );
    let asker = cluster.node(DINGCHENG);
    until_all(
        "the auto-answer worker's answers are delivered",
        asker,
        "SELECT count(*) FROM confirmations WHERE direction = 'inbound'",
    )
    .await;
}

/// Two copies of one batch arriving at the same moment (the asker's lease ran out while the
/// first copy was still being written, and another replica sent it again): both get the same
/// receipts and the same answers, neither a database error, and everything is stored, audited
/// and counted once.
///
/// The race is made certain: the test holds the answering node's `inquiries` table locked
/// against writes until both copies have read that none of their inquiries is stored yet and
/// wait to write them. Released, one copy's writes then collide with the other's on the
/// primary key, and the losing copy is stored again, finding the winner's rows as repeats.
#[tokio::test]
async fn two_copies_of_a_batch_at_once_get_the_same_receipts() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let subjects = half_registered(&cluster).await;
    let responder = cluster.node(XINHUA);
    let inquiries = queued_at_dingcheng(&cluster, &subjects).await;

    let mut holder = sqlx::PgConnection::connect_with(&responder.store().connect_options())
        .await
        .expect("a connection of the test's own");
    let mut watcher = sqlx::PgConnection::connect_with(&responder.store().connect_options())
        .await
        .expect("a second one");
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE inquiries IN EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let release = async {
        // both copies wait to write their inquiries
        let mut waited = Duration::ZERO;
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE '%INSERT INTO inquiries%'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting == 2 {
                break;
            }
            assert!(
                waited < Duration::from_secs(30),
                "{waiting} copies wait to write, not 2"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    };
    let ((first, second), ()) = tokio::join!(
        async {
            tokio::join!(
                submit(&cluster, &inquiries, true),
                submit(&cluster, &inquiries, true)
            )
        },
        release
    );

    assert_eq!(first.len(), inquiries.len());
    for receipt in &first {
        assert!(
            matches!(receipt.result, Some(pb::receipt::Result::Accepted(_))),
            "{receipt:?}"
        );
        assert!(receipt.answer.is_some(), "answered in the receipt: {receipt:?}");
    }
    assert_eq!(first, second, "the same receipts, the same answers");
    let once = i64::from(SIZE);
    for (what, sql) in [
        (
            "inquiries",
            "SELECT count(*) FROM inquiries WHERE direction = 'inbound'",
        ),
        ("answers", "SELECT count(*) FROM confirmations"),
        (
            "acceptances audited",
            "SELECT count(*) FROM audit_log WHERE direction = 'inbound' AND outcome = 'accepted'",
        ),
        (
            "inquiries counted for the daily cap",
            "SELECT coalesce(sum(inquiries), 0)::bigint FROM daily_volume",
        ),
    ] {
        assert_eq!(count(responder, sql).await, once, "{what}: once each");
    }
}
