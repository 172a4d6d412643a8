//! Notices between 鼎城区 and 新化县 through the operator API, for the notice tests.

use std::collections::HashMap;

use hancha::proto::operator as pb;

use super::*;

/// 鼎城区 and 新化县 under an agreement that lets every notice kind and field travel both ways.
pub async fn every_notice_pair() -> Cluster {
    let terms = Terms::every_notice();
    let agreement = agreement_toml(DINGCHENG, XINHUA, 1, ("2026-01-01", "2030-12-31"), &terms, &terms);
    Cluster::start(&[DINGCHENG, XINHUA], &[agreement]).await
}

/// Notice fields from (name, value) pairs.
pub fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A notice from 鼎城区 to 新化县 about 新化县's woman `subject`, waiting for the receipt.
pub fn notify_request(kind: &str, subject: u32, pairs: &[(&str, &str)]) -> pb::NotifyRequest {
    pb::NotifyRequest {
        to_county: XINHUA.into(),
        kind: kind.into(),
        resident_id: synthetic_id(XINHUA, subject).as_str().to_string(),
        occurred_on: "2026-10-15".into(),
        fields: fields(pairs),
        message_id: String::new(),
        wait_ms: 10_000,
        ..Default::default()
    }
}

/// Sends `request` through 鼎城区's operator API.
pub async fn notify(
    cluster: &Cluster,
    request: pb::NotifyRequest,
) -> Result<pb::NotifyResponse, tonic::Status> {
    let mut operator = cluster.operator(DINGCHENG).await;
    operator.notify(request).await.map(tonic::Response::into_inner)
}
