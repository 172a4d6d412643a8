//! The console's window check, answer by hand and sweep pages, over real sockets against real
//! nodes on real PostgreSQL: what a clerk sees (answers, the red verdict on a certificate that is
//! not the person's, refusals beside their fields), that nothing is done on a refused form, and
//! that a form without its token is 403 and changes nothing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hancha::config::WebListener;
use hancha::domain::division::CountyCode;
use hancha::domain::message::{InquiryState, Subject};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::InquiryDraft;
use hancha::operator::MAX_SWEEP_LISTED;

/// `county`'s web listener on loopback, without logins (the loopback principal).
async fn with_web(cluster: &mut Cluster, county: &str) -> SocketAddr {
    with_web_listener(cluster, county, false).await
}

/// The form token a page carries.
fn form_token(page: &HttpAnswer) -> String {
    let start = page
        .body
        .find("data-form-token=\"")
        .map(|at| at + "data-form-token=\"".len())
        .unwrap_or_else(|| panic!("no form token in {}", page.body));
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_owned()
}

fn form_encoded(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            let encode = |text: &str| {
                text.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", encode(name), encode(value))
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn get(web: SocketAddr, path: &str) -> HttpAnswer {
    request(web, "GET", path, None, None).await
}

async fn post_form(web: SocketAddr, path: &str, pairs: &[(&str, &str)]) -> HttpAnswer {
    let body = form_encoded(pairs);
    request(
        web,
        "POST",
        path,
        None,
        Some(("application/x-www-form-urlencoded", &body)),
    )
    .await
}

/// A multipart/form-data body of text fields and one file.
fn multipart(fields: &[(&str, &str)], file_name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----hancha-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(web: SocketAddr, fields: &[(&str, &str)], file_name: &str, file: &[u8]) -> HttpAnswer {
    let (content_type, body) = multipart(fields, file_name, file);
    request_bytes(web, "POST", "/sweep", &[("Content-Type", &content_type)], &body).await
}

async fn outbound_inquiries(cluster: &Cluster) -> i64 {
    count(
        cluster.node(DINGCHENG),
        "SELECT count(*) FROM inquiries WHERE direction = 'outbound'",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_check_answers_inline_and_shouts_a_certificate_that_is_not_hers() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let (her, _other) = two_women(&cluster).await;
    let web = with_web(&mut cluster, DINGCHENG).await;

    let form = get(web, "/window").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains(&format!("<option value=\"{XINHUA}\"")),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("data-resident-id"),
        "the ID is checked as typed"
    );
    let token = form_token(&form);

    // her ID with her own certificate: found, and the certificate is hers
    let found = post_form(
        web,
        "/window",
        &[
            ("_csrf", &token),
            ("to_county", XINHUA),
            ("resident_id", her.as_str()),
            ("certificate_number", HER_CERTIFICATE),
        ],
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("data-outcome=\"found\""), "{}", found.body);
    assert!(
        found.body.contains("所出示的婚育证明与此人相符"),
        "{}",
        found.body
    );
    assert!(!found.body.contains("不是此人的"), "{}", found.body);
    assert!(
        found.body.contains("data-field=\"marital_status\""),
        "{}",
        found.body
    );

    // her ID with another woman's certificate: the big red verdict
    let borrowed = post_form(
        web,
        "/window",
        &[
            ("_csrf", &token),
            ("to_county", XINHUA),
            ("resident_id", her.as_str()),
            ("certificate_number", OTHER_CERTIFICATE),
        ],
    )
    .await;
    assert_eq!(borrowed.status, 200, "{}", borrowed.body);
    assert!(
        borrowed.body.contains("✖ 所出示的婚育证明不是此人的"),
        "{}",
        borrowed.body
    );
    assert!(
        borrowed
            .body
            .contains("id=\"certificate-verdict\" data-certificate=\"does_not_match\"")
    );
    assert!(
        borrowed.body.contains("class=\"result bad\""),
        "{}",
        borrowed.body
    );
    assert_eq!(outbound_inquiries(&cluster).await, 2);

    // a wrong check character posted anyway (no script): refused by the API, beside the field
    let wrong = post_form(
        web,
        "/window",
        &[
            ("_csrf", &token),
            ("to_county", XINHUA),
            ("resident_id", &wrong_check_character(&her)),
        ],
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(
        wrong
            .body
            .contains("id=\"window-resident-id-error\" data-for=\"resident_id\""),
        "{}",
        wrong.body
    );
    assert!(wrong.body.contains("subject.resident_id"), "{}", wrong.body);
    assert_eq!(outbound_inquiries(&cluster).await, 2, "nothing was asked");

    // no form token: 403 and nothing asked
    let forged = post_form(
        web,
        "/window",
        &[("to_county", XINHUA), ("resident_id", her.as_str())],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let stale = post_form(
        web,
        "/window",
        &[
            ("_csrf", "not-the-token"),
            ("to_county", XINHUA),
            ("resident_id", her.as_str()),
        ],
    )
    .await;
    assert_eq!(stale.status, 403);
    assert_eq!(outbound_inquiries(&cluster).await, 2, "nothing was asked");
}

#[tokio::test(flavor = "multi_thread")]
async fn answering_by_hand_offers_only_what_the_agreement_allows_and_refuses_the_rest_beside_the_field() {
    let mut cluster = Cluster::start(
        &[DINGCHENG, XINHUA],
        &[answered_by_hand(DINGCHENG, XINHUA, XINHUA)],
    )
    .await;
    let (her, _) = two_women(&cluster).await;
    let web = with_web(&mut cluster, XINHUA).await;
    let asked = cluster
        .node(DINGCHENG)
        .ask(
            CountyCode::parse(XINHUA).unwrap(),
            InquiryDraft {
                kind: InquiryKind::CertificateVerification,
                priority: Priority::Normal,
                subject: Subject {
                    resident_id: her.clone(),
                    certificate_number: Some(OTHER_CERTIFICATE.into()),
                },
                message_id: None,
            },
            Duration::from_secs(2),
        )
        .await
        .expect("asked");
    let id = asked.message_id;
    let responder = cluster.node(XINHUA);
    eventually("the inquiry reaches 新化县", || async {
        responder.store().inquiry(id).await.unwrap()
    })
    .await;
    let path = format!("/inquiries/{id}");

    let shown = get(web, &path).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("id=\"answer-form\""), "{}", shown.body);
    for allowed in ["marital_status", "children_count", "certificate_status"] {
        assert!(
            shown.body.contains(&format!("id=\"answer-field-{allowed}\"")),
            "{allowed} offered"
        );
    }
    assert!(
        shown.body.contains(
            "id=\"answer-field-certificate_valid_until\" name=\"field.certificate_valid_until\" type=\"date\""
        ),
        "a date picker: {}",
        shown.body
    );
    assert!(
        shown.body.contains("<option value=\"divorced\""),
        "choices offered"
    );
    assert!(
        !shown.body.contains("answer-field-pregnant"),
        "not in the agreement"
    );
    let token = form_token(&shown);
    let answer_path = format!("{path}/answer");

    // a field the agreement does not allow: refused beside it, nothing written
    let refused = post_form(
        web,
        &answer_path,
        &[
            ("_csrf", &token),
            ("outcome", "found"),
            ("field.marital_status", "married"),
            ("field.pregnant", "true"),
        ],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("id=\"answer-error-pregnant\" data-for=\"pregnant\""),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("fields not allowed by agreement"),
        "{}",
        refused.body
    );
    let pending = |cluster: &Cluster| {
        let store = cluster.node(XINHUA).store().clone();
        async move { store.inquiry(id).await.unwrap().unwrap().state }
    };
    assert_eq!(pending(&cluster).await, InquiryState::Pending);
    assert_eq!(
        count(
            responder,
            &format!("SELECT count(*) FROM confirmations WHERE inquiry_id = '{id}'")
        )
        .await,
        0
    );

    // a value that does not fit its field: refused beside that field
    let malformed = post_form(
        web,
        &answer_path,
        &[
            ("_csrf", &token),
            ("outcome", "found"),
            ("field.children_count", "many"),
        ],
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body.contains("id=\"answer-error-children_count\""),
        "{}",
        malformed.body
    );

    // without the form token: 403, nothing written
    let forged = post_form(
        web,
        &answer_path,
        &[("outcome", "found"), ("field.marital_status", "married")],
    )
    .await;
    assert_eq!(forged.status, 403);
    assert_eq!(pending(&cluster).await, InquiryState::Pending);

    // the allowed fields: answered, shown at once
    let answered = post_form(
        web,
        &answer_path,
        &[
            ("_csrf", &token),
            ("outcome", "found"),
            ("field.marital_status", "married"),
            ("field.children_count", "1"),
            ("field.certificate_valid_until", "2028-05-31"),
        ],
    )
    .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert!(answered.body.contains("id=\"answer-given\""), "{}", answered.body);
    assert!(
        answered
            .body
            .contains("id=\"inquiry-state\" data-state=\"answered\"><span title=\"answered\">已答复</span>"),
        "{}",
        answered.body
    );
    assert!(
        !answered.body.contains("id=\"answer-form\""),
        "no form once answered"
    );
    assert_eq!(pending(&cluster).await, InquiryState::Answered);
}

/// The value of the hidden form field `name` in a page.
fn hidden(page: &HttpAnswer, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {}", page.body))
        + marker.len();
    page.body[start..start + page.body[start..].find('"').unwrap()].to_owned()
}

/// A sweep file: three persons, one with a wrong check character, one repeated.
fn sweep_file(ids: &[ResidentId]) -> String {
    format!(
        "resident_id,certificate_number\n{},\n{},\n{},\n{},\n{},\n",
        ids[0].as_str(),
        ids[1].as_str(),
        wrong_check_character(&ids[2]),
        ids[0].as_str(),
        ids[2].as_str(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_upload_lists_refused_rows_by_line_then_runs_to_done_with_a_result_file() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    // 鼎城区's outflow persons living in 新化县: 鼎城区 asks where they live
    share_persons(&cluster, DINGCHENG, XINHUA, 0..3).await;
    let web = with_web(&mut cluster, DINGCHENG).await;
    let ids: Vec<ResidentId> = (0..3).map(|n| synthetic_id(DINGCHENG, n)).collect();
    let file = sweep_file(&ids);

    let form = get(web, "/sweep").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    let token = form_token(&form);
    let fields = [
        ("_csrf", token.as_str()),
        ("to_county", XINHUA),
        ("kind", "outflow_status"),
        ("encoding", "auto"),
    ];

    // without the form token: 403, nothing kept or sent
    let forged = upload(web, &fields[1..], "sweep.csv", file.as_bytes()).await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    // checked: the refused rows by line, no ID number in full, nothing sent yet
    let checked = upload(web, &fields, "sweep.csv", file.as_bytes()).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert!(
        checked.body.contains("<dd id=\"sweep-rows\">5</dd>"),
        "{}",
        checked.body
    );
    assert!(
        checked.body.contains("<dd id=\"sweep-to-send\">3</dd>"),
        "{}",
        checked.body
    );
    assert!(
        checked.body.contains("<tr data-line=\"4\">"),
        "the wrong check character: {}",
        checked.body
    );
    assert!(
        checked
            .body
            .contains("<td class=\"num\">5</td><td>the same person is already on line 2</td>"),
        "{}",
        checked.body
    );
    for id in &ids {
        assert!(!checked.body.contains(id.as_str()), "no ID number echoed");
    }
    assert!(!checked.body.contains(&wrong_check_character(&ids[2])));
    assert_eq!(
        outbound_inquiries(&cluster).await,
        0,
        "nothing sent before confirming"
    );
    let key = hidden(&checked, "sweep_key");
    assert!(key.starts_with(&format!("{XINHUA}:outflow_status:")), "{key}");
    let id = hidden(&checked, "upload");

    // the confirmation without its token: 403, nothing sent
    let forged = post_form(web, "/sweep/send", &[("upload", &id)]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(outbound_inquiries(&cluster).await, 0);

    // a double click: both lead to the progress page, one sending
    let confirm = [("_csrf", token.as_str()), ("upload", id.as_str())];
    let (sent, twice) = tokio::join!(
        post_form(web, "/sweep/send", &confirm),
        post_form(web, "/sweep/send", &confirm)
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(twice.status, 303, "{}", twice.body);
    let progress_path = sent.header("location").expect("to the progress page").to_owned();
    assert_eq!(progress_path, format!("/sweep/{key}"));
    let progress = get(web, &progress_path).await;
    assert_eq!(progress.status, 200, "{}", progress.body);
    assert!(
        progress
            .body
            .contains(&format!("data-poll=\"/sweep/{key}/status.json\""))
    );

    let figures = eventually("the sweep is done", || async {
        let status = get(web, &format!("/sweep/{key}/status.json")).await;
        assert_eq!(status.status, 200, "{}", status.body);
        let figures = status.json();
        (figures["done"] == true).then_some(figures)
    })
    .await;
    assert_eq!(figures["total"], 3, "{figures}");
    assert_eq!(figures["answered"], 3, "{figures}");
    assert_eq!(figures["waiting"], 0, "{figures}");
    assert_eq!(figures["refused"], 0, "{figures}");

    let result = get(web, &format!("/sweep/{key}/result.csv")).await;
    assert_eq!(result.status, 200, "{}", result.body);
    assert_eq!(result.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = result.body.lines().collect();
    assert_eq!(
        lines[0],
        "line,subject_masked,message_id,state,outcome,due_at,reason"
    );
    assert_eq!(lines.len(), 1 + 5, "{}", result.body);
    assert!(lines[1].starts_with("2,"), "{}", result.body);
    assert!(lines[1].contains(",answered,found,"), "{}", result.body);
    assert!(lines[3].starts_with("4,,,refused_here,"), "{}", result.body);
    for id in &ids {
        assert!(!result.body.contains(id.as_str()), "masked IDs only");
    }

    // the same file again (here, or from the command line: the same key) asks nobody twice
    let again = upload(web, &fields, "sweep-copy.csv", file.as_bytes()).await;
    assert_eq!(again.status, 200);
    assert_eq!(hidden(&again, "sweep_key"), key);
    let again_id = hidden(&again, "upload");
    assert_ne!(again_id, id, "each upload held on its own");
    let sent = post_form(web, "/sweep/send", &[("_csrf", &token), ("upload", &again_id)]).await;
    assert_eq!(sent.status, 303);
    eventually("the second run is done", || async {
        let figures = get(web, &format!("/sweep/{key}/status.json")).await.json();
        (figures["done"] == true).then_some(())
    })
    .await;
    assert_eq!(outbound_inquiries(&cluster).await, 3, "nobody asked twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gbk_sweep_file_is_read_and_a_file_without_the_id_column_is_refused_beside_the_file() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let web = with_web(&mut cluster, DINGCHENG).await;
    let token = form_token(&get(web, "/sweep").await);
    let fields = [
        ("_csrf", token.as_str()),
        ("to_county", XINHUA),
        ("kind", "outflow_status"),
        ("encoding", "auto"),
    ];
    let text = format!(
        "resident_id,姓名\n{},王秀英\n{},李桂兰\n",
        synthetic_id(XINHUA, 1).as_str(),
        synthetic_id(XINHUA, 2).as_str()
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&gbk).is_err(), "really not UTF-8");
    let checked = upload(web, &fields, "清查.csv", &gbk).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert!(
        checked.body.contains("<dd id=\"sweep-decoded-as\">GBK</dd>"),
        "{}",
        checked.body
    );
    assert!(
        checked.body.contains("<dd id=\"sweep-to-send\">2</dd>"),
        "{}",
        checked.body
    );

    // more rows to send than the result file could list: for the command line
    let mut large = String::from("resident_id\n");
    for n in 0..=MAX_SWEEP_LISTED as u32 {
        large.push_str(synthetic_id(XINHUA, n).as_str());
        large.push('\n');
    }
    let too_large = upload(web, &fields, "large.csv", large.as_bytes()).await;
    assert_eq!(too_large.status, 400, "{}", too_large.body);
    assert!(
        too_large.body.contains(&format!(
            "{} rows to send, more than the console takes ({MAX_SWEEP_LISTED}); larger files: hancha sweep",
            MAX_SWEEP_LISTED + 1
        )),
        "{}",
        too_large.body
    );
    assert!(!too_large.body.contains("name=\"upload\""), "nothing held");

    // sweep keys from the URL: not ASCII, or with a line break, answer without a panic
    let wide = get(web, "/sweep/a%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9/result.csv").await;
    assert_eq!(wide.status, 200, "{}", wide.body);
    assert_eq!(
        wide.header("content-disposition"),
        Some("attachment; filename=\"sweep-a.csv\"")
    );
    assert_eq!(
        wide.body.trim(),
        "line,subject_masked,message_id,state,outcome,due_at,reason"
    );
    for path in [
        "/sweep/a%0Ab/result.csv",
        "/sweep/a%0Ab",
        "/sweep/a%0Ab/status.json",
    ] {
        let broken = get(web, path).await;
        assert_eq!(broken.status, 400, "{path}: {}", broken.body);
        assert!(broken.body.contains("one line"), "{path}: {}", broken.body);
    }
    // the node still answers
    assert_eq!(get(web, "/sweep").await.status, 200);

    let no_column = upload(web, &fields, "x.csv", "身份证,姓名\n1,2\n".as_bytes()).await;
    assert_eq!(no_column.status, 400, "{}", no_column.body);
    assert!(
        no_column
            .body
            .contains("id=\"sweep-file-error\" data-for=\"file\">no resident_id column"),
        "{}",
        no_column.body
    );
}

/// `POST /sweep` by a township office's account: refused before the file is read, as the API
/// refuses a sweep, and audited under the account.
#[tokio::test(flavor = "multi_thread")]
async fn a_township_office_cannot_upload_a_sweep_file() {
    let mut offices = TownshipOffices::start().await;
    offices
        .cluster
        .restart_with_web(
            DINGCHENG,
            WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login: Some(true),
                tls: None,
            },
        )
        .await;
    let web = offices.cluster.web_address(DINGCHENG);
    let township = offices.township_a.to_string();
    let hash = tokio::task::spawn_blocking(|| hancha::web::logins::hash_password(PASSWORD))
        .await
        .unwrap()
        .unwrap();
    offices
        .cluster
        .node(DINGCHENG)
        .store()
        .add_console_account("clerk-a", Some(&township), &hash)
        .await
        .unwrap();
    let cookie = format!("hancha_session={}", log_in(web, "clerk-a").await);
    let headers = [("Cookie", cookie.as_str())];

    let form = request_with_headers(web, "GET", "/sweep", &headers, None).await;
    assert_eq!(form.status, 403, "{}", form.body);
    assert!(form.body.contains("county-wide work"), "{}", form.body);
    assert!(!form.body.contains("id=\"sweep-form\""));

    let queue = request_with_headers(web, "GET", "/queue", &headers, None).await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    let token = form_token(&queue);
    let file = format!("resident_id\n{}\n", offices.person_a.as_str());
    let (content_type, body) = multipart(
        &[
            ("_csrf", token.as_str()),
            ("to_county", XINHUA),
            ("kind", "outflow_status"),
            ("encoding", "auto"),
        ],
        "sweep.csv",
        file.as_bytes(),
    );
    let posted = request_bytes(
        web,
        "POST",
        "/sweep",
        &[("Content-Type", &content_type), ("Cookie", &cookie)],
        &body,
    )
    .await;
    assert_eq!(posted.status, 403, "{}", posted.body);
    assert!(posted.body.contains("county-wide work"), "{}", posted.body);
    assert!(!posted.body.contains("name=\"upload\""), "nothing held");
    assert!(!posted.body.contains("sweep-checked"), "the file was not read");

    let scope = format!("township:{township}");
    let refused: Vec<_> = offices
        .access_log()
        .await
        .into_iter()
        .filter(|access| {
            access.principal == "clerk-a"
                && access.scope == scope
                && access.action == "sweep"
                && access.outcome == "refused"
        })
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "the page and the upload, each audited: {refused:?}"
    );
}

const PASSWORD: &str = "春天的花开了-2026";

/// Logs `name` in through the login form as a browser does; its session secret.
async fn log_in(web: SocketAddr, name: &str) -> String {
    let form = request_with_headers(web, "GET", "/login", &[], None).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let form_cookie = form
        .headers_named("set-cookie")
        .into_iter()
        .find(|cookie| cookie.starts_with("hancha_login_form="))
        .expect("the login form's cookie");
    let form_cookie = form_cookie.split(';').next().unwrap().to_owned();
    let marker = r#"name="_csrf" value=""#;
    let start = form.body.find(marker).expect("a form token") + marker.len();
    let token = form.body[start..].split('"').next().unwrap();
    let body = format!(
        "_csrf={token}&next=&name={name}&password={}",
        urlencoding::encode(PASSWORD)
    );
    let logged_in = request_with_headers(
        web,
        "POST",
        "/login",
        &[("Cookie", &form_cookie)],
        Some(("application/x-www-form-urlencoded", &body)),
    )
    .await;
    assert_eq!(logged_in.status, 303, "{}", logged_in.body);
    let session = logged_in
        .headers_named("set-cookie")
        .into_iter()
        .find(|cookie| cookie.starts_with("hancha_session="))
        .expect("a session cookie");
    session["hancha_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}
