//! Managing webhooks (README "Webhooks (推送)"): only `https://` URLs, or `http://` to this
//! machine, with every refusal naming its field and audited; the CLI printing a secret once and
//! listing only its fingerprint; an endpoint whose stored settings no longer read shown failing.

mod common;

use common::*;
use hancha::domain::webhook::SigningSecret;
use hancha::proto::operator as pb;
use tonic_types::StatusExt;

#[tokio::test]
async fn an_endpoint_must_be_https_unless_it_is_on_this_machine() {
    let cluster = webhook_pair().await;
    let mut operator = cluster.operator(DINGCHENG).await;
    let refuse = |url: &str, events: Vec<String>, township: &str, secret: &str| pb::AddWebhookRequest {
        url: url.to_string(),
        event_types: events,
        township: township.to_string(),
        secret: secret.to_string(),
    };
    for (request, field, says) in [
        (
            refuse("http://county.example.cn/hooks", vec![], "", ""),
            "url",
            "https://",
        ),
        (
            refuse("http://10.0.0.8:8080/hooks", vec![], "", ""),
            "url",
            "only to this machine",
        ),
        (
            refuse("https://county.example.cn/hooks", vec!["answer".into()], "", ""),
            "event_types",
            "answer.received",
        ),
        (
            refuse("https://county.example.cn/hooks", vec![], "431322001", ""),
            "township",
            "",
        ),
        (
            refuse("https://county.example.cn/hooks", vec![], "", "whsec_c2hvcnQ="),
            "secret",
            "24 to 64",
        ),
    ] {
        let status = operator.add_webhook(request).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let violations = status
            .get_details_bad_request()
            .expect("field detail")
            .field_violations;
        assert_eq!(violations[0].field, field);
        assert!(
            violations[0].description.contains(says),
            "{}",
            violations[0].description
        );
    }
    let listed = operator
        .list_webhooks(pb::ListWebhooksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.webhooks.is_empty(),
        "nothing registered by a refused request"
    );
    // https and http to this machine are accepted (loopback only here: a test sends nothing
    // off this machine; domain::webhook's tests take https to any host)
    for url in ["https://127.0.0.1:9/hooks", "http://localhost:9/hooks"] {
        operator
            .add_webhook(refuse(url, vec![], "", ""))
            .await
            .expect("accepted");
    }
    let removed = operator
        .remove_webhook(pb::RemoveWebhookRequest { id: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.url, "https://127.0.0.1:9/hooks");
    let again = operator
        .remove_webhook(pb::RemoveWebhookRequest { id: 1 })
        .await
        .expect_err("removed already");
    assert_eq!(again.code(), tonic::Code::NotFound);
    let refused = count(
        cluster.node(DINGCHENG),
        "SELECT count(*) FROM audit_log WHERE action = 'add_webhook' AND outcome = 'refused'",
    )
    .await;
    assert_eq!(refused, 5, "every refusal audited");

    // an endpoint whose stored URL was changed behind the node's back to one it would refuse
    // is shown failing, and the worker carries on
    let pool = database(cluster.node(DINGCHENG).store()).await;
    sqlx::query("UPDATE webhook_endpoints SET url = 'ftp://127.0.0.1/x' WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap();
    let failing = eventually("the unreadable endpoint shown failing", || async {
        let listed = cluster
            .operator(DINGCHENG)
            .await
            .list_webhooks(pb::ListWebhooksRequest {})
            .await
            .unwrap()
            .into_inner();
        listed
            .webhooks
            .into_iter()
            .find(|webhook| webhook.id == 2 && webhook.failing_since.is_some())
    })
    .await;
    assert!(
        failing.last_error.contains("webhook endpoint 2: url"),
        "{}",
        failing.last_error
    );
}

#[tokio::test]
async fn the_cli_prints_the_secret_once_and_lists_only_its_fingerprint() {
    let cluster = webhook_pair().await;
    let mut refused = operator_cli(&cluster, DINGCHENG);
    refused.args(["webhooks", "add", "http://192.0.2.7/hooks"]);
    let output = output_of(refused).await;
    assert_eq!(output.status.code(), Some(1));
    let said = lossy(&output.stderr);
    assert!(
        said.contains("url: http:// is accepted only to this machine"),
        "{said}"
    );

    let mut add = operator_cli(&cluster, DINGCHENG);
    add.args([
        "webhooks",
        "add",
        "http://127.0.0.1:9/hooks?token=t0k3n",
        "--events",
        "inquiry.received,answer.received",
    ]);
    let output = output_of(add).await;
    assert!(output.status.success(), "{}", lossy(&output.stderr));
    let printed = lossy(&output.stdout);
    let secret = printed
        .lines()
        .find(|line| line.starts_with("whsec_"))
        .expect("the secret printed")
        .to_string();
    assert!(printed.contains("webhook 1 registered"), "{printed}");
    assert!(printed.contains("answer.received, inquiry.received"), "{printed}");

    let mut list = operator_cli(&cluster, DINGCHENG);
    list.args(["webhooks", "list"]);
    let output = output_of(list).await;
    assert!(output.status.success(), "{}", lossy(&output.stderr));
    let listed = lossy(&output.stdout);
    let fingerprint = SigningSecret::parse(&secret).unwrap().fingerprint();
    assert!(listed.contains(&fingerprint), "{listed}");
    assert!(
        !listed.contains(&secret[6..]),
        "the secret is never shown again: {listed}"
    );
    assert!(listed.contains("backlog"), "{listed}");
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(reason, '') FROM audit_log WHERE action = 'add_webhook' ORDER BY id",
    )
    .fetch_all(&database(cluster.node(DINGCHENG).store()).await)
    .await
    .unwrap();
    assert_eq!(audit.len(), 2, "the refusal and the registration: {audit:?}");
    assert!(
        audit
            .iter()
            .all(|reason| !reason.contains("t0k3n") && !reason.contains(&secret[6..]))
    );

    let mut remove = operator_cli(&cluster, DINGCHENG);
    remove.args(["webhooks", "remove", "1"]);
    let output = output_of(remove).await;
    assert_eq!(output.status.code(), Some(1), "asks for --yes");
    let mut remove = operator_cli(&cluster, DINGCHENG);
    remove.args(["webhooks", "remove", "1", "--yes"]);
    assert!(output_of(remove).await.status.success());
}
