//! The web console (控制台) in a real headless Chromium (WebDriver), on 鼎城区's web listener
//! with real nodes on real PostgreSQL: what a clerk sees and does. Each test saves screenshots
//! of the pages it visits in target/screenshots/.

mod common;

use common::*;
use hancha::config::WebListener;

/// 鼎城区's township offices (two inquiries from 新化县 pending) with the console on loopback.
async fn offices_with_console() -> (TownshipOffices, String) {
    let mut offices = TownshipOffices::start().await;
    offices
        .cluster
        .restart_with_web(
            DINGCHENG,
            WebListener {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                require_login: None,
                tls: None,
            },
        )
        .await;
    let url = format!("http://{}", offices.cluster.web_address(DINGCHENG));
    (offices, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_work_queue_lists_what_waits_and_opens_an_inquiry_with_its_history() {
    let (offices, console) = offices_with_console().await;
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
