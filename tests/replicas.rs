//! Changes reach every replica: two node processes of one county on one database (here two
//! nodes in one test process, each with its own listeners and workers). An agreement version
//! applied through one, and a retirement, take effect on the other within seconds.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hancha::domain::agreement::Agreement;
use hancha::proto::operator as pb;

fn version(n: u32) -> Agreement {
    agreement_version(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agreement_applied_or_retired_on_one_replica_is_enforced_by_the_other_within_seconds() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[version(1).source_text().to_string()]).await;
    // a second replica of 鼎城区 on the same database
    let replica = cluster.start_replica(DINGCHENG).await;
    let v2 = version(2);
    let holds = |version: &Agreement| {
        let reference = hancha::domain::message::AgreementRef {
            id: version.id().to_string(),
            hash: version.canonical_hash().as_str().to_string(),
        };
        replica.node.agreements().by_ref(&reference).is_some()
    };
    assert!(!holds(&v2));

    // applied through the first replica's operator API
    let mut operator = cluster.operator(DINGCHENG).await;
    operator
        .apply_agreement(pb::ApplyAgreementRequest {
            text: v2.source_text().to_string(),
        })
        .await
        .expect("applied");
    let applied = Instant::now();
    let took = eventually("the other replica holds version 2", || async {
        holds(&v2).then(|| applied.elapsed())
    })
    .await;
    assert!(
        // the periodic check runs every 10 s: within 5 s, the announcement did it
        took < Duration::from_secs(5),
        "{took:?}: told at once, not at the periodic check"
    );

    // retired through the first replica: the other one stops taking new messages under it
    operator
        .retire_agreement(pb::RetireAgreementRequest {
            id: v2.id().to_string(),
            version: 1,
        })
        .await
        .expect("retired");
    let v1 = version(1);
    eventually("the other replica sees version 1 retired", || async {
        replica
            .node
            .agreements()
            .state_of(v1.canonical_hash().as_str())
            .retired
            .then_some(())
    })
    .await;
    replica.stop().await;
}
