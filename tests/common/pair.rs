//! A two-county pair for reconciliation tests: 鼎城区 (origin) and 邵东市 (destination) under
//! one open agreement, with exchanged messages and shared persons on demand.

use std::sync::Arc;

use hancha::domain::message::Subject;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::reconcile::SetSummary;
use hancha::node::{InquiryDraft, Node};

use super::*;

pub async fn pair() -> Cluster {
    Cluster::start(&[DINGCHENG, SHAODONG], &[open_agreement(DINGCHENG, SHAODONG)]).await
}

/// Outflow-status inquiries about `county`'s synthetic persons numbered `numbers`.
pub fn outflow_drafts(county: &str, numbers: impl IntoIterator<Item = u32>) -> Vec<InquiryDraft> {
    numbers
        .into_iter()
        .map(|n| InquiryDraft {
            kind: InquiryKind::OutflowStatus,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: synthetic_id(county, n),
                certificate_number: None,
            },
            message_id: None,
        })
        .collect()
}

/// Dingcheng asks Shaodong `count` outflow status inquiries and waits until all are answered.
pub async fn exchange_answered_inquiries(cluster: &Cluster, how_many: u32) {
    let asker = cluster.node(DINGCHENG);
    let drafts = outflow_drafts(DINGCHENG, (0..how_many).map(|n| 900 + n));
    asker
        .send_inquiries(SHAODONG.parse().unwrap(), drafts)
        .await
        .expect("inquiries queued");
    let expected = i64::from(how_many);
    eventually("every inquiry answered at the asker", || async {
        (count(asker, "SELECT count(*) FROM inquiries WHERE state = 'answered'").await == expected)
            .then_some(())
    })
    .await;
}

/// Dingcheng's outflow persons living in Shaodong are Shaodong's inflow persons, alike.
pub async fn shared_persons(cluster: &Cluster, range: std::ops::Range<u32>) {
    share_persons(cluster, DINGCHENG, SHAODONG, range).await;
}

pub async fn reconcile(node: &Arc<Node>, peer: &str) -> Vec<SetSummary> {
    node.reconcile_with(peer.parse().unwrap(), |_| {})
        .await
        .expect("reconciliation completes")
}

pub fn set<'a>(summaries: &'a [SetSummary], name: &str) -> &'a SetSummary {
    summaries
        .iter()
        .find(|summary| summary.record.set_name == name)
        .expect("a summary per set")
}
