//! 鼎城区 and 邵东市 for the webhook tests: limits that retry in milliseconds, and answers that
//! give `answer.received` events at 鼎城区.

use std::time::Duration;

use hancha::config::Limits;

use super::*;

/// Test limits: webhook retries after 50 ms doubling to 300 ms, requests bounded to 2 s.
pub fn webhook_limits() -> Limits {
    Limits {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        webhook_retry_first: Duration::from_millis(50),
        webhook_retry_max: Duration::from_millis(300),
        webhook_connect_timeout: Duration::from_secs(1),
        webhook_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// 鼎城区 and 邵东市 under an open agreement, with [`webhook_limits`].
pub async fn webhook_pair() -> Cluster {
    Cluster::start_with(
        &[DINGCHENG, SHAODONG],
        &[open_agreement(DINGCHENG, SHAODONG)],
        webhook_limits(),
    )
    .await
}

/// 鼎城区 asks 邵东市 about `how_many` people (numbered from `first`) and waits until every
/// answer is in: one `answer.received` event each at 鼎城区.
pub async fn answers_received(cluster: &Cluster, first: u32, how_many: u32) {
    let asker = cluster.node(DINGCHENG);
    let before = count(asker, "SELECT count(*) FROM inquiries WHERE state = 'answered'").await;
    let drafts = super::pair::outflow_drafts(DINGCHENG, first..first + how_many);
    asker
        .send_inquiries(SHAODONG.parse().unwrap(), drafts)
        .await
        .expect("inquiries queued");
    let expected = before + i64::from(how_many);
    eventually("every answer in at the asker", || async {
        (count(asker, "SELECT count(*) FROM inquiries WHERE state = 'answered'").await == expected)
            .then_some(())
    })
    .await;
}
