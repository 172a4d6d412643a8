//! The operator API as HTTP/JSON on 鼎城区's web listener, over real sockets on real PostgreSQL:
//! a county system with a county token asks, lists and shows; a township token is held to its
//! township (refusals as JSON, audited under the token's name); an invalid ID number is refused
//! naming the field and never echoed; no token where one is required, an unknown or a revoked
//! token are 401; the committed OpenAPI document is the one the binary makes.

mod common;

use common::*;
use hancha::config::WebListener;
use hancha::store::Store;
use hancha::web::tokens::{digest, new_token};

/// 鼎城区's township offices with the web listener on loopback, `require_login` as given.
async fn offices_with_web(require_login: Option<bool>) -> (TownshipOffices, std::net::SocketAddr) {
    let mut offices = TownshipOffices::start().await;
    offices
        .cluster
        .restart_with_web(
            DINGCHENG,
            WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login,
                tls: None,
            },
        )
        .await;
    let address = offices.cluster.web_address(DINGCHENG);
    (offices, address)
}

/// A token made as `hancha tokens add` makes it.
async fn add_token(store: &Store, name: &str, township: Option<&str>) -> String {
    let token = new_token();
    store
        .add_api_token(name, township, &digest(&token))
        .await
        .unwrap();
    token
}

fn store(offices: &TownshipOffices) -> &Store {
    offices.cluster.node(DINGCHENG).store()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_county_token_asks_lists_and_shows_as_json_and_is_audited_by_name() {
    let (offices, web) = offices_with_web(Some(true)).await;
    let token = add_token(store(&offices), "county-his", None).await;

    let ask = format!(
        r#"{{"toCounty": "{XINHUA}", "kind": "certificate_verification", "residentId": "{}", "waitMs": 2000}}"#,
        synthetic_id(XINHUA, 3).as_str()
    );
    let asked = post_json(web, "/v1/Ask", Some(&token), &ask).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert_eq!(asked.header("content-type"), Some("application/json"));
    let asked = asked.json();
    assert!(
        !asked["messageId"].as_str().unwrap_or_default().is_empty(),
        "{asked}"
    );
    assert!(asked["state"].is_string(), "{asked}");

    let pending = post_json(web, "/v1/ListPending", Some(&token), "{}").await;
    assert_eq!(pending.status, 200, "{}", pending.body);
    let pending = pending.json();
    let ids: Vec<&str> = pending["inquiries"]
        .as_array()
        .expect("inquiries")
        .iter()
        .filter_map(|inquiry| inquiry["messageId"].as_str())
        .collect();
    for id in [offices.inquiry_a, offices.inquiry_b] {
        assert!(ids.contains(&id.to_string().as_str()), "{id} not in {pending}");
    }
    // Timestamps as RFC 3339 strings
    let due = pending["inquiries"][0]["dueAt"].as_str().expect("dueAt");
    assert!(chrono::DateTime::parse_from_rfc3339(due).is_ok(), "{due}");
    // the same listing over an empty body
    let empty = request(web, "POST", "/v1/ListPending", Some(&token), None).await;
    assert_eq!(empty.status, 200, "{}", empty.body);

    let show = format!(r#"{{"messageId": "{}"}}"#, offices.inquiry_a);
    let shown = post_json(web, "/v1/ShowInquiry", Some(&token), &show).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let shown = shown.json();
    assert_eq!(shown["subjectResidentId"], offices.person_a.as_str());
    assert_eq!(shown["inquiry"]["messageId"], offices.inquiry_a.to_string());

    let audit = offices.audit_text().await;
    assert!(
        audit.lines().any(|line| line.contains("county-his")
            && line.contains(&format!("county:{DINGCHENG}"))
            && line.contains("show_inquiry")),
        "no record of the token's read:\n{audit}"
    );
    assert!(!audit.contains(&token), "a token in the audit log");
    let tokens = store(&offices).api_tokens().await.unwrap();
    assert!(tokens[0].last_used_at.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_township_token_is_held_to_its_township_with_json_refusals_audited_under_its_name() {
    let (offices, web) = offices_with_web(None).await;
    let township_a = offices.township_a.to_string();
    let token = add_token(store(&offices), "township-a-system", Some(&township_a)).await;

    // its own township's inquiry
    let own = format!(r#"{{"messageId": "{}"}}"#, offices.inquiry_a);
    let shown = post_json(web, "/v1/ShowInquiry", Some(&token), &own).await;
    assert_eq!(shown.status, 200, "{}", shown.body);

    // another township's listing: 403
    let other = format!(r#"{{"township": "{}"}}"#, offices.township_b);
    let refused = post_json(web, "/v1/ListPending", Some(&token), &other).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let error = refused.json();
    assert_eq!(error["code"], "PERMISSION_DENIED");
    assert!(
        error["message"].as_str().unwrap().contains("own township"),
        "{error}"
    );
    // another township's inquiry: as if it did not exist
    let theirs = format!(r#"{{"messageId": "{}"}}"#, offices.inquiry_b);
    let hidden = post_json(web, "/v1/ShowInquiry", Some(&token), &theirs).await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    assert_eq!(hidden.json()["code"], "NOT_FOUND");
    assert!(!hidden.body.contains(offices.person_b.as_str()));
    // county-wide work
    let swept = post_json(web, "/v1/Sweep", Some(&token), r#"{"toCounty": "431322"}"#).await;
    assert_eq!(swept.status, 403, "{}", swept.body);

    let audit = offices.audit_text().await;
    let scope = format!("township:{township_a}");
    for action in ["list_pending", "show_inquiry", "sweep"] {
        assert!(
            audit.lines().any(|line| line.contains("refused")
                && line.contains("township-a-system")
                && line.contains(&scope)
                && line.ends_with(action)),
            "no refusal of {action} under the token's name:\n{audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_id_number_is_refused_naming_the_field_and_never_echoed() {
    let (offices, web) = offices_with_web(None).await;
    let token = add_token(store(&offices), "county-his", None).await;
    let good = synthetic_id(XINHUA, 5).as_str().to_string();
    // the check digit changed: shaped like an ID number, not a valid one
    let last = good.chars().last().unwrap();
    let bad = format!("{}{}", &good[..17], if last == '1' { '2' } else { '1' });
    let ask =
        format!(r#"{{"toCounty": "{XINHUA}", "kind": "certificate_verification", "residentId": "{bad}"}}"#);
    let refused = post_json(web, "/v1/Ask", Some(&token), &ask).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let error = refused.json();
    assert_eq!(error["code"], "INVALID_ARGUMENT");
    let fields: Vec<&str> = error["fieldViolations"]
        .as_array()
        .expect("field violations")
        .iter()
        .filter_map(|violation| violation["field"].as_str())
        .collect();
    // named as the gRPC API names it (the same Status)
    assert_eq!(fields, ["subject.resident_id"], "{error}");
    assert!(
        !refused.body.contains(&bad),
        "the ID number echoed: {}",
        refused.body
    );

    // bodies the parser refuses: the ID number in a wrong place, or JSON cut short
    for body in [
        format!(r#"{{"waitMs": "{bad}"}}"#),
        format!(r#"{{"waitMs": {bad}}}"#),
        format!(r#"{{"{bad}": 1}}"#),
        format!(r#"{{"residentId": "{bad}""#),
    ] {
        let refused = post_json(web, "/v1/Ask", Some(&token), &body).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(refused.json()["code"], "INVALID_ARGUMENT");
        assert!(!refused.body.contains(&bad), "echoed: {}", refused.body);
        assert!(!refused.body.contains(&bad[..17]), "echoed: {}", refused.body);
    }
    let wrong_field = post_json(web, "/v1/Ask", Some(&token), r#"{"waitMs": "soon"}"#).await;
    assert_eq!(
        wrong_field.json()["fieldViolations"][0]["field"],
        "waitMs",
        "{}",
        wrong_field.body
    );
    // not JSON
    let text = request(web, "POST", "/v1/Ask", Some(&token), Some(("text/plain", &ask))).await;
    assert_eq!(text.status, 400, "{}", text.body);
    assert!(
        text.json()["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    // too large
    let too_large = declaring_length(web, "/v1/Ask", &token, 9 * 1024 * 1024).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.json()["code"], "RESOURCE_EXHAUSTED");
    let audit = offices.audit_text().await;
    assert!(
        !audit.contains(&bad[..17]),
        "the ID number in the audit log:\n{audit}"
    );
    // every refusal audited under the token's name: the method's own and the unreadable bodies
    let refused = audit
        .lines()
        .filter(|line| line.contains("refused") && line.contains("county-his") && line.ends_with("ask"))
        .count();
    assert_eq!(refused, 8, "{audit}");
    assert!(
        audit.contains("RESOURCE_EXHAUSTED: the request body is over"),
        "{audit}"
    );
}

/// A request declaring a body of `length` bytes and sending none: the answer comes from the
/// declared length alone.
async fn declaring_length(web: std::net::SocketAddr, path: &str, token: &str, length: usize) -> HttpAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(web).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = vec![0u8; 64 * 1024];
    let mut read = 0;
    while !String::from_utf8_lossy(&raw[..read]).contains("}") {
        let n = stream.read(&mut raw[read..]).await.unwrap();
        assert!(n > 0, "the connection closed without an answer");
        read += n;
    }
    let text = String::from_utf8_lossy(&raw[..read]).to_string();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    HttpAnswer {
        status,
        headers: Vec::new(),
        body,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_valid_token_where_one_is_required_every_call_is_401_and_audited() {
    let (offices, web) = offices_with_web(Some(true)).await;
    let token = add_token(store(&offices), "county-his", None).await;

    let missing = post_json(web, "/v1/ListAgreements", None, "{}").await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert!(
        missing
            .header("www-authenticate")
            .unwrap_or_default()
            .starts_with("Bearer")
    );
    assert_eq!(missing.json()["code"], "UNAUTHENTICATED");

    let unknown = post_json(web, "/v1/ListAgreements", Some(&new_token()), "{}").await;
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    assert!(
        unknown.json()["message"]
            .as_str()
            .unwrap()
            .contains("unknown or revoked")
    );

    let fine = post_json(web, "/v1/ListAgreements", Some(&token), "{}").await;
    assert_eq!(fine.status, 200, "{}", fine.body);
    assert!(store(&offices).revoke_api_token("county-his").await.unwrap());
    let revoked = post_json(web, "/v1/ListAgreements", Some(&token), "{}").await;
    assert_eq!(revoked.status, 401, "{}", revoked.body);
    // a refused caller's body is not even read
    let revoked_garbage = post_json(web, "/v1/Ask", Some(&token), "{not json").await;
    assert_eq!(revoked_garbage.status, 401, "{}", revoked_garbage.body);

    let audit = offices.audit_text().await;
    let unidentified = audit
        .lines()
        .filter(|line| {
            line.contains("unidentified") && line.contains("refused") && line.contains("UNAUTHENTICATED")
        })
        .count();
    assert!(
        unidentified >= 4,
        "{unidentified} unidentified refusals audited:\n{audit}"
    );
    assert!(!audit.contains(&token));

    // the document needs no token, and every operation it lists is served and refuses a
    // caller without one
    let document = request(web, "GET", "/openapi.json", None, None).await;
    assert_eq!(document.status, 200);
    assert_eq!(document.body, hancha::web::openapi::document().unwrap());
    let paths = document.json()["paths"].as_object().unwrap().clone();
    assert_eq!(
        paths.len(),
        31,
        "every operator RPC, the event stream and webhooks included"
    );
    for path in paths.keys() {
        let refused = post_json(web, path, None, "{}").await;
        assert_eq!(refused.status, 401, "{path}: {}", refused.body);
    }
    let unknown = post_json(web, "/v1/Nothing", Some(&new_token()), "{}").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_loopback_without_require_login_a_caller_without_token_is_the_loopback_principal() {
    let (offices, web) = offices_with_web(None).await;
    let listed = post_json(web, "/v1/ListPending", None, "{}").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()["inquiries"].as_array().map(Vec::len), Some(2));
    // Reconcile streams progress as NDJSON, one JSON message a line
    let reconciled = post_json(
        web,
        "/v1/Reconcile",
        None,
        &format!(r#"{{"withCounty": "{XINHUA}"}}"#),
    )
    .await;
    assert_eq!(
        reconciled.header("content-type"),
        Some("application/x-ndjson"),
        "{}",
        reconciled.body
    );
    let lines: Vec<serde_json::Value> = reconciled
        .body
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert!(!lines.is_empty());
    let audit = offices.audit_text().await;
    assert!(audit.contains("loopback"), "{audit}");
}

#[test]
fn the_committed_openapi_document_is_the_one_the_binary_makes() {
    let made = hancha::web::openapi::document().unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .unwrap_or_default();
    assert!(
        made == committed,
        "docs/openapi.json is not what the binary makes: run `hancha openapi > docs/openapi.json` and commit it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn free_text_with_a_control_character_is_refused_naming_the_field_and_audited() {
    let (offices, web) = offices_with_web(None).await;
    let token = add_token(store(&offices), "county-his", None).await;
    // a NUL reaching PostgreSQL's text would be an internal error; a terminal escape in a
    // stored reason would reach an operator's screen
    for (path, body, field) in [
        (
            "/v1/SweepStatus",
            r#"{"sweepKey": "a\u0000b"}"#.to_string(),
            "sweep_key",
        ),
        (
            "/v1/Sweep",
            format!(r#"{{"toCounty": "{XINHUA}", "kind": "outflow_status", "sweepKey": "k\u0000"}}"#),
            "sweep_key",
        ),
        (
            "/v1/RetireAgreement",
            r#"{"id": "x\u0000", "version": 1}"#.to_string(),
            "id",
        ),
        (
            "/v1/RetireAgreement",
            r#"{"id": "a b", "version": 1}"#.to_string(),
            "id",
        ),
        (
            "/v1/DismissNotice",
            r#"{"messageId": "0190a2c4-0000-7000-8000-000000000001", "reason": "\u001b[2Jgone"}"#.to_string(),
            "reason",
        ),
    ] {
        let refused = post_json(web, path, Some(&token), &body).await;
        assert_eq!(refused.status, 400, "{path} {body}: {}", refused.body);
        let error = refused.json();
        assert_eq!(error["code"], "INVALID_ARGUMENT", "{path}: {error}");
        assert_eq!(error["fieldViolations"][0]["field"], field, "{path}: {error}");
    }
    // the same key without the NUL is simply a sweep nobody ran
    let unknown = post_json(web, "/v1/SweepStatus", Some(&token), r#"{"sweepKey": "ab"}"#).await;
    assert_eq!(unknown.status, 200, "{}", unknown.body);
    let audit = offices.audit_text().await;
    for method in ["sweep_status", "sweep", "retire_agreement", "dismiss_notice"] {
        assert!(
            audit.lines().any(|line| line.contains("refused")
                && line.contains("county-his")
                && line.ends_with(method)),
            "no refusal of {method} audited:\n{audit}"
        );
    }
}

/// A GET with the Host header `host`, raw: (status line, the whole answer).
async fn get_with_host(web: std::net::SocketAddr, path: &str, host: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(web).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let answer = String::from_utf8_lossy(&raw).to_string();
    (answer.lines().next().unwrap_or_default().to_string(), answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn without_logins_only_requests_naming_a_loopback_host_are_answered_and_nothing_is_cached() {
    let (offices, web) = offices_with_web(None).await;
    // a page of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding)
    for path in ["/queue", "/openapi.json"] {
        let (status, answer) = get_with_host(web, path, "evil.example").await;
        assert!(status.contains(" 421 "), "{path}: {answer}");
        assert!(!answer.contains("data-form-token"), "{answer}");
    }
    let (status, _) = get_with_host(web, "/queue", "evil.example:80").await;
    assert!(status.contains(" 421 "));
    for host in ["localhost", "127.0.0.1:8080", "[::1]:8080"] {
        let (status, answer) = get_with_host(web, "/queue", host).await;
        assert!(status.contains(" 200 "), "{host}: {status}");
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("cache-control: no-store"), "{answer}");
        assert!(lower.contains("x-frame-options: deny"), "{answer}");
        assert!(lower.contains("frame-ancestors 'none'"), "{answer}");
    }
    // the style sheet may be cached
    let (_, css) = get_with_host(web, "/console.css", "localhost").await;
    assert!(
        css.to_ascii_lowercase().contains("cache-control: max-age=300"),
        "{css}"
    );
    drop(offices);
}
