//! What a county's IT office reads in the node's log: plain lines when stderr is not a terminal
//! (a file, the journal), and every line inside a call says which call it belongs to — method,
//! caller, the message it is about and its outcome.

mod common;

use std::time::Duration;

use common::*;
use hancha::config::Limits;
use hancha::proto::operator as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_are_plain_and_name_their_call() {
    let limits = Limits::default();
    let (_cluster, mut dingcheng, operator_address) = dingcheng_process_beside_xinhua(&limits).await;
    dingcheng.start().await;

    // an operator asks about an inquiry this node does not hold: refused, NOT_FOUND
    let mut operator = hancha::proto::operator::operator_client::OperatorClient::connect(format!(
        "http://{operator_address}"
    ))
    .await
    .expect("the operator API");
    let unknown = uuid::Uuid::now_v7();
    let refusal = operator
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: unknown.to_string(),
        })
        .await
        .expect_err("no such inquiry");
    assert_eq!(refusal.code(), tonic::Code::NotFound);

    let expected = format!(
        "rpc{{method=/hancha.operator.v1.Operator/ShowInquiry caller=loopback message_id={unknown} outcome=NOT_FOUND}}"
    );
    let mut log = String::new();
    for _ in 0..100 {
        log = dingcheng.log();
        if log.contains(&expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log.contains(&expected), "{expected} not in the log:\n{log}");
    assert!(!log.contains('\u{1b}'), "no terminal colour codes in a log file");
    let _ = dingcheng.terminate().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
