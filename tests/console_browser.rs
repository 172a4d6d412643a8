//! The web console (控制台) in a real headless Chromium (WebDriver), on real nodes over real
//! sockets on real PostgreSQL: what a clerk sees and does — logging in, the window check (a
//! wrong check character stopped as it is typed, a borrowed certificate shouted), answering by
//! hand (a field the agreement does not allow refused beside it, then the right answer), a
//! sweep upload with bad rows watched to the end, the indicators and their CSV, a township
//! account typing another township's URL, a form without its CSRF token. Each test saves
//! screenshots of the pages it visits in target/screenshots/ (the README shows the main ones,
//! copied to docs/screenshots/).

mod common;

use std::time::Duration;

use common::*;
use hancha::domain::division::CountyCode;
use hancha::domain::message::{InquiryState, Subject};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::InquiryDraft;
use hancha::web::logins::hash_password;

const PASSWORD: &str = "春天的花开了-2026";

/// `county`'s console on loopback, `require_login` as given: its URL.
async fn with_web(cluster: &mut Cluster, county: &str, require_login: bool) -> String {
    format!(
        "http://{}",
        with_web_listener(cluster, county, require_login).await
    )
}

async fn outbound_inquiries(cluster: &Cluster) -> i64 {
    count(
        cluster.node(DINGCHENG),
        "SELECT count(*) FROM inquiries WHERE direction = 'outbound'",
    )
    .await
}

/// Chooses `value` in the select `css`.
async fn choose(browser: &Browser, css: &str, value: &str) {
    browser.click(&format!("{css} option[value='{value}']")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_work_queue_lists_what_waits_and_opens_an_inquiry_with_its_history() {
    let mut offices = TownshipOffices::start().await;
    let console = with_web(&mut offices.cluster, DINGCHENG, false).await;
    let browser = Browser::start().await;
    browser.open(&format!("{console}/")).await;
    // the root is the work queue
    assert_eq!(
        browser.text("nav a.here").await.split_whitespace().next(),
        Some("工作台")
    );
    let count = browser.text("#count-rows").await;
    assert_eq!(count, "2", "both inquiries from 新化县 wait for our answer");
    let first = offices.inquiry_a.to_string();
    let row = format!("tr[data-message-id='{first}']");
    let cells = browser.text(&row).await;
    assert!(cells.contains("流出人口函查"), "{cells}");
    assert!(cells.contains(XINHUA), "{cells}");
    assert!(
        !cells.contains(offices.person_a.as_str()),
        "a list shows the masked ID only: {cells}"
    );
    browser.screenshot("queue").await;

    browser.click(&format!("{row} a")).await;
    let facts = browser.text("#inquiry").await;
    assert!(facts.contains(&first), "{facts}");
    assert!(facts.contains("待答复"), "{facts}");
    let history = browser.text("#history").await;
    assert!(!history.trim().is_empty(), "the inquiry's history is shown");
    browser.screenshot("inquiry").await;

    // the other list: nothing we asked waits
    browser.open(&format!("{console}/queue?view=awaiting")).await;
    assert_eq!(browser.text("#count-rows").await, "0");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_check_stops_a_wrong_check_character_as_typed_and_shouts_a_borrowed_certificate() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let (her, _) = two_women(&cluster).await;
    let console = with_web(&mut cluster, DINGCHENG, false).await;
    let browser = Browser::start().await;
    browser.open(&format!("{console}/window")).await;
    choose(&browser, "#window-to", XINHUA).await;

    // a wrong check character: said as it is typed, and the form is not sent
    browser
        .type_into("#window-resident-id", &wrong_check_character(&her))
        .await;
    assert!(browser.has("#window-resident-id.invalid").await);
    let note = browser
        .wait_for_text("span.field-error[data-for='resident_id']", "校验码")
        .await;
    assert!(note.contains("校验码不对"), "{note}");
    browser.screenshot("window-typing").await;
    browser.click("#window-submit").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!browser.has("#window-result").await, "nothing was sent");
    assert_eq!(outbound_inquiries(&cluster).await, 0, "nothing was asked");

    // her own certificate: found, inline
    browser.type_into("#window-resident-id", her.as_str()).await;
    assert!(!browser.has("#window-resident-id.invalid").await);
    browser.type_into("#window-certificate", HER_CERTIFICATE).await;
    browser.click("#window-submit").await;
    let result = browser.text("#window-result").await;
    assert!(result.contains("与此人相符"), "{result}");
    assert!(!result.contains("不是此人的"), "{result}");
    browser.screenshot("window-found").await;

    // another woman's certificate: unmistakable
    choose(&browser, "#window-to", XINHUA).await;
    browser.type_into("#window-resident-id", her.as_str()).await;
    browser.type_into("#window-certificate", OTHER_CERTIFICATE).await;
    browser.click("#window-submit").await;
    // the first result stays on the page until the second replaces it: wait for the new one
    let verdict = browser.wait_for_text("#certificate-verdict", "不是此人的").await;
    assert!(verdict.contains("✖ 所出示的婚育证明不是此人的"), "{verdict}");
    let color = browser
        .client
        .execute(
            "return getComputedStyle(document.getElementById('window-result')).borderTopColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(color, "rgb(180, 35, 24)", "the result box is red");
    browser.screenshot("window-borrowed").await;
    assert_eq!(outbound_inquiries(&cluster).await, 2);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answering_by_hand_refuses_a_field_the_agreement_does_not_allow_then_takes_the_right_answer() {
    let mut cluster = Cluster::start(
        &[DINGCHENG, XINHUA],
        &[answered_by_hand(DINGCHENG, XINHUA, XINHUA)],
    )
    .await;
    let (her, _) = two_women(&cluster).await;
    let console = with_web(&mut cluster, XINHUA, false).await;
    let asked = cluster
        .node(DINGCHENG)
        .ask(
            CountyCode::parse(XINHUA).unwrap(),
            InquiryDraft {
                kind: InquiryKind::CertificateVerification,
                priority: Priority::Normal,
                subject: Subject {
                    resident_id: her.clone(),
                    certificate_number: Some(HER_CERTIFICATE.into()),
                },
                message_id: None,
            },
            Duration::from_secs(1),
        )
        .await
        .expect("asked");
    let id = asked.message_id;
    let responder = cluster.node(XINHUA);
    eventually("the inquiry reaches 新化县", || async {
        responder.store().inquiry(id).await.unwrap()
    })
    .await;

    let browser = Browser::start().await;
    browser.open(&format!("{console}/inquiries/{id}")).await;
    assert!(browser.has("#answer-field-marital_status").await);
    assert!(
        !browser.has("#answer-field-pregnant").await,
        "not in the agreement"
    );
    // a field the form does not offer, added as a tampered form would
    browser
        .client
        .execute(
            "const input = document.createElement('input'); input.type = 'hidden'; \
             input.name = 'field.pregnant'; input.value = 'yes'; \
             document.getElementById('answer-form').appendChild(input);",
            vec![],
        )
        .await
        .unwrap();
    choose(&browser, "#answer-outcome", "found").await;
    browser.click("#answer-submit").await;
    let why = browser.text("#answer-error-pregnant").await;
    assert!(!why.is_empty(), "the reason stands beside the field");
    browser.screenshot("answer-refused").await;
    let stored = responder.store().inquiry(id).await.unwrap().unwrap();
    assert_eq!(stored.state, InquiryState::Pending, "nothing written");

    // the right answer
    choose(&browser, "#answer-outcome", "found").await;
    choose(&browser, "#answer-field-marital_status", "married").await;
    browser.click("#answer-submit").await;
    browser.wait_for_text("#inquiry-state", "已答复").await;
    browser.screenshot("answer-done").await;
    let stored = responder.store().inquiry(id).await.unwrap().unwrap();
    assert_eq!(stored.state, InquiryState::Answered);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_upload_with_bad_rows_is_checked_then_watched_to_the_end() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    share_persons(&cluster, DINGCHENG, XINHUA, 0..3).await;
    let console = with_web(&mut cluster, DINGCHENG, false).await;
    let ids: Vec<ResidentId> = (0..3).map(|n| synthetic_id(DINGCHENG, n)).collect();
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("清查-2026Q4.csv");
    std::fs::write(
        &file,
        format!(
            "resident_id,certificate_number\n{},\n{},\n{},\n{},\n{},\n",
            ids[0].as_str(),
            ids[1].as_str(),
            wrong_check_character(&ids[2]),
            ids[0].as_str(),
            ids[2].as_str(),
        ),
    )
    .unwrap();

    let browser = Browser::start().await;
    browser.open(&format!("{console}/sweep")).await;
    choose(&browser, "#sweep-to", XINHUA).await;
    choose(&browser, "#sweep-kind", "outflow_status").await;
    browser
        .type_into_file("#sweep-file", &file.display().to_string())
        .await;
    browser.click("#sweep-check").await;
    // the check: rows refused by line, nothing sent yet
    assert_eq!(browser.text("#sweep-rows").await, "5");
    assert_eq!(browser.text("#sweep-to-send").await, "3");
    assert_eq!(browser.text("#sweep-refused-count").await, "2");
    assert!(browser.has("tr[data-line='4']").await);
    assert!(browser.has("tr[data-line='5']").await);
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains(&wrong_check_character(&ids[2])), "no ID echoed");
    browser.screenshot("sweep-check").await;
    assert_eq!(
        outbound_inquiries(&cluster).await,
        0,
        "nothing sent before confirming"
    );

    browser.click("#sweep-send").await;
    // live progress, without reloading: the counts fill in as the answers arrive
    browser
        .wait_for_text("#sweep-progress [data-count='answered']", "3")
        .await;
    assert_eq!(browser.text("#sweep-progress [data-count='total']").await, "3");
    browser.screenshot("sweep-progress").await;
    let result = browser
        .client
        .execute(
            "const answer = await fetch(document.getElementById('sweep-result').href); \
             return [answer.status, answer.headers.get('content-type'), await answer.text()];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(result[0], 200, "{result}");
    let csv = result[2].as_str().unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 3 + 2,
        "a header, 3 sent, 2 refused: {csv}"
    );
    assert_eq!(outbound_inquiries(&cluster).await, 3);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_township_login_sees_its_township_only_and_a_form_without_its_token_is_refused() {
    let mut offices = TownshipOffices::start().await;
    let console = with_web(&mut offices.cluster, DINGCHENG, true).await;
    let store = offices.cluster.node(DINGCHENG).store();
    let hash = tokio::task::spawn_blocking(|| hash_password(PASSWORD))
        .await
        .unwrap()
        .unwrap();
    store
        .add_console_account("clerk-a", Some(offices.township_a.as_str()), &hash)
        .await
        .unwrap();

    let browser = Browser::start().await;
    browser.open(&format!("{console}/queue")).await;
    // no session: the login page
    browser.type_into("#login-name", "clerk-a").await;
    browser.type_into("#login-password", PASSWORD).await;
    browser.screenshot("login").await;
    browser.click("#login-submit").await;
    let who = browser.text(".who").await;
    assert!(who.contains("clerk-a"), "{who}");
    assert!(who.contains(offices.township_a.as_str()), "{who}");
    assert_eq!(
        browser.text("#count-rows").await,
        "1",
        "its township's inquiry only"
    );
    assert!(
        browser
            .has(&format!("tr[data-message-id='{}']", offices.inquiry_a))
            .await
    );
    browser.screenshot("queue-township").await;

    // the other township's inquiry, by typing its URL: refused, nothing shown of it
    browser
        .open(&format!("{console}/inquiries/{}", offices.inquiry_b))
        .await;
    let refused = browser.text(".refusal").await;
    assert!(refused.contains("NOT_FOUND"), "{refused}");
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains(offices.person_b.as_str()));
    browser.screenshot("township-refused").await;

    // a form without its token: 403, and the session goes on
    browser.open(&format!("{console}/queue")).await;
    browser
        .client
        .execute(
            "document.querySelector('#logout input[name=_csrf]').remove();",
            vec![],
        )
        .await
        .unwrap();
    browser.click("#logout button").await;
    let refused = browser.text("#csrf-refused").await;
    assert!(refused.contains("nothing was done"), "{refused}");
    browser.screenshot("csrf-refused").await;
    browser.open(&format!("{console}/queue")).await;
    assert!(browser.text(".who").await.contains("clerk-a"), "still logged in");

    // logging out with the token ends the session
    browser.click("#logout button").await;
    browser.open(&format!("{console}/queue")).await;
    assert!(browser.has("#login-name").await, "back at the login page");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_indicators_show_table_and_charts_and_download_as_csv() {
    let mut offices = TownshipOffices::start().await;
    let console = with_web(&mut offices.cluster, DINGCHENG, false).await;
    let browser = Browser::start().await;
    browser.open(&format!("{console}/indicators")).await;
    let table = browser.text("#indicators").await;
    assert!(table.contains(offices.township_a.as_str()), "{table}");
    let bars = browser
        .client
        .find_all(fantoccini::Locator::Css("#bar-charts svg"))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "the bar charts are drawn");
    assert!(browser.has("#trend svg").await, "the trend is drawn");
    browser.screenshot("indicators").await;
    browser
        .client
        .execute("document.getElementById('bar-charts').scrollIntoView();", vec![])
        .await
        .unwrap();
    browser.screenshot("indicators-charts").await;
    let csv = browser
        .client
        .execute(
            "const answer = await fetch(document.getElementById('download-csv').href); \
             return [answer.status, answer.headers.get('content-disposition'), await answer.text()];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(csv[0], 200, "{csv}");
    assert!(csv[1].as_str().unwrap().contains("attachment"), "{csv}");
    assert!(
        csv[2].as_str().unwrap().contains(offices.township_a.as_str()),
        "{csv}"
    );

    browser.open(&format!("{console}/agreements")).await;
    assert!(browser.text("#agreements").await.contains(XINHUA));
    browser.screenshot("agreements").await;
    browser.open(&format!("{console}/reconcile")).await;
    browser.screenshot("reconcile").await;
    browser.close().await;
}
