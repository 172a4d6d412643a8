//! The console's 四率, 对账 and 协议 pages on 鼎城区's web listener, over real sockets against real
//! nodes on real PostgreSQL: the indicators table and its CSV carry the very figures the Report
//! RPC gives, with a bar per township in each chart and the trend of the last four quarters; a
//! reconciliation run between two real nodes is listed, its differences grouped by township and
//! downloaded as the CLI writes them; a run started from the form lands on its page, and a form
//! without its token is refused and starts nothing; the agreements pages show each version, its
//! stage and its hash, and the terms per direction.
//!
//! A console visitor here is the loopback principal (county-wide): logins are not part of these
//! pages, so a township office's narrowing is checked on the Report RPC the pages call.

mod common;

use common::pair::*;
use common::*;
use hancha::config::WebListener;
use hancha::domain::report::ReportPeriod;
use hancha::domain::resident_id::today_in_china;
use hancha::proto::operator as pb;

/// A web listener on loopback without logins: the console as the loopback principal.
fn loopback_console() -> WebListener {
    WebListener {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        require_login: None,
        tls: None,
    }
}

async fn get(web: std::net::SocketAddr, path: &str) -> HttpAnswer {
    request(web, "GET", path, None, None).await
}

async fn post_form(web: std::net::SocketAddr, path: &str, body: &str) -> HttpAnswer {
    request(
        web,
        "POST",
        path,
        None,
        Some(("application/x-www-form-urlencoded", body)),
    )
    .await
}

/// The `_csrf` value of the first form on `page`.
fn form_token(page: &str) -> String {
    let marker = r#"name="_csrf" value=""#;
    let at = page.find(marker).expect("a form with a token") + marker.len();
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

/// The markup from the element carrying `marker` to the end of that element's `closing` tag.
fn element<'a>(page: &'a str, marker: &str, closing: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} on the page:\n{page}"));
    let start = page[..at].rfind('<').unwrap();
    let end = at
        + page[at..]
            .find(closing)
            .unwrap_or_else(|| panic!("{closing} after {marker}"));
    &page[start..end + closing.len()]
}

fn this_quarter() -> String {
    ReportPeriod::current_quarter(today_in_china()).label()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_indicators_page_shows_the_report_figures_as_a_table_charts_and_csv() {
    let mut offices = TownshipOffices::start().await;
    offices
        .cluster
        .restart_with_web(DINGCHENG, loopback_console())
        .await;
    // the operator API listens anew after the restart
    offices.address = offices.cluster.operator_address(DINGCHENG);
    let web = offices.cluster.web_address(DINGCHENG);
    let period = this_quarter();
    let mut county = offices.client(&offices.county_operator("county-office")).await;
    let report = county
        .report(pb::ReportRequest {
            period: period.clone(),
            township: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let townships: Vec<&pb::ReportRow> = report
        .rows
        .iter()
        .filter(|row| !row.township.is_empty())
        .collect();
    assert!(townships.len() >= 2, "every township of 鼎城区 has a row");
    let county_row = report.rows.iter().find(|row| row.township.is_empty()).unwrap();
    assert!(
        hancha::present::report::indicators(county_row)[0].denominator >= 2,
        "the two inflow persons of the fixture are counted: {county_row:?}"
    );

    let page = get(web, &format!("/indicators?period={period}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!(r#"id="period-label">{period}<"#)),
        "{}",
        page.body
    );
    // every row of the Report RPC, with every numerator and denominator, in the table
    let table = element(&page.body, r#"id="indicators""#, "</table>");
    for row in &report.rows {
        let shown = element(table, &format!(r#"data-township="{}""#, row.township), "</tr>");
        let figures = hancha::present::report::indicators(row);
        for ((_, key, _), indicator) in hancha::present::report::INDICATORS.iter().zip(figures) {
            let cell = format!(
                r#"data-indicator="{key}" data-numerator="{}" data-denominator="{}">{}<"#,
                indicator.numerator,
                indicator.denominator,
                indicator.percent()
            );
            assert!(shown.contains(&cell), "{cell} in {shown}");
        }
    }

    // a bar chart per indicator, a bar per township, each with its figures in a title
    assert_eq!(page.body.matches(r#"data-chart="bars""#).count(), 5);
    let chart = element(&page.body, r#"id="chart-registration""#, "</svg>");
    assert!(
        chart.contains(r#"data-target="100""#),
        "the 100% target line: {chart}"
    );
    assert_eq!(
        chart.matches(r#"<g class="bar""#).count(),
        townships.len(),
        "{chart}"
    );
    for row in &townships {
        let bar = element(chart, &format!(r#"data-township="{}""#, row.township), "</g>");
        let registration = hancha::present::report::indicators(row)[0];
        assert!(
            bar.contains(&format!(
                "({}/{})",
                registration.numerator, registration.denominator
            )),
            "{bar}"
        );
        assert!(bar.contains("<title>"), "{bar}");
    }
    // the county's trend over four quarters, ending with this one, in a chart and a table
    assert!(page.body.contains(r#"id="chart-trend""#), "{}", page.body);
    let trend = element(&page.body, r#"id="trend-table""#, "</table>");
    assert_eq!(trend.matches("<tr data-period=").count(), 4, "{trend}");
    assert!(trend.contains(&format!(r#"data-period="{period}""#)), "{trend}");

    // the CSV is the one `hancha report --csv` writes for the same answer
    let link = format!(r#"href="/indicators.csv?period={period}""#);
    assert!(page.body.contains(&link), "{}", page.body);
    let csv = get(web, &format!("/indicators.csv?period={period}")).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some(format!(r#"attachment; filename="hancha-report-{DINGCHENG}-{period}.csv""#).as_str())
    );
    let mut expected = Vec::new();
    hancha::present::report::write_csv(&mut expected, &report).unwrap();
    assert_eq!(csv.body, String::from_utf8(expected).unwrap());
    assert_eq!(csv.body.lines().count(), 1 + report.rows.len());

    // a period that is not one is refused, next to the field
    let refused = get(web, "/indicators?period=2026Q5").await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains(r#"id="period-error""#), "{}", refused.body);
    assert!(refused.body.contains("INVALID_ARGUMENT"), "{}", refused.body);

    // what the pages call narrows a township office to its own township
    let township = offices.township_a.as_str();
    let mut office = offices
        .client(&offices.township_operator("township-office", &[township]))
        .await;
    let narrowed = office
        .report(pb::ReportRequest {
            period: period.clone(),
            township: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<&str> = narrowed.rows.iter().map(|row| row.township.as_str()).collect();
    assert_eq!(codes, [township]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agreements_pages_show_each_version_its_stage_hash_and_terms() {
    let mut offices = TownshipOffices::start().await;
    offices
        .cluster
        .restart_with_web(DINGCHENG, loopback_console())
        .await;
    // the operator API listens anew after the restart
    offices.address = offices.cluster.operator_address(DINGCHENG);
    let web = offices.cluster.web_address(DINGCHENG);
    let listed = offices
        .client(&offices.county_operator("county-office"))
        .await
        .list_agreements(pb::ListAgreementsRequest {})
        .await
        .unwrap()
        .into_inner();
    let agreement = &listed.agreements[0];
    let hash = offices.cluster.agreement_hash(DINGCHENG, &agreement.id);
    assert_eq!(agreement.hash, hash);

    let page = get(web, "/agreements").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = element(
        &page.body,
        &format!(r#"data-agreement-id="{}""#, agreement.id),
        "</tr>",
    );
    assert!(
        row.contains(&format!(r#"data-version="{}""#, agreement.version)),
        "{row}"
    );
    assert!(
        row.contains(&format!(r#"data-stage="{}""#, agreement.stage)),
        "{row}"
    );
    assert!(row.contains(&format!(r#"title="{hash}""#)), "{row}");
    assert!(row.contains(&format!(r#"href="/agreements/{hash}""#)), "{row}");

    let shown = get(web, &format!("/agreements/{}", agreement.id)).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.contains(&format!(r#"id="hash">{hash}<"#)),
        "{}",
        shown.body
    );
    assert!(
        shown
            .body
            .contains(&format!(r#"id="version">{}<"#, agreement.version)),
        "{}",
        shown.body
    );
    assert!(
        shown
            .body
            .contains(&format!(r#"data-stage="{}""#, agreement.stage))
    );
    // both directions, each with its terms
    for (from, to) in [(DINGCHENG, XINHUA), (XINHUA, DINGCHENG)] {
        let direction = element(
            &shown.body,
            &format!(r#"data-from="{from}" data-to="{to}""#),
            "</section>",
        );
        assert!(direction.contains("答复期限 reply within"), "{direction}");
        assert!(direction.contains("每日上限 daily cap"), "{direction}");
    }
    assert!(shown.body.contains(r#"id="agreement-text""#));

    let version = get(web, &format!("/agreements/{hash}")).await;
    assert_eq!(version.status, 200, "{}", version.body);
    assert!(version.body.contains(&format!(r#"id="hash">{hash}<"#)));

    let missing = get(web, "/agreements/no-such-agreement").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(missing.body.contains("NOT_FOUND"), "{}", missing.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_runs_are_listed_with_their_differences_and_one_starts_from_the_form() {
    let mut cluster = pair().await;
    shared_persons(&cluster, 0..3).await;
    // Two outflow persons of 鼎城区 that 邵东市 does not know.
    let unknown: Vec<_> = (100..102)
        .map(|n| outflow_person(synthetic_id(DINGCHENG, n), DINGCHENG, SHAODONG))
        .collect();
    cluster
        .node(DINGCHENG)
        .store()
        .upsert_persons(&unknown)
        .await
        .unwrap();
    cluster.restart_with_web(DINGCHENG, loopback_console()).await;
    let web = cluster.web_address(DINGCHENG);

    let empty = get(web, "/reconcile").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains(r#"id="no-runs""#), "{}", empty.body);

    let summaries = reconcile(cluster.node(DINGCHENG), SHAODONG).await;
    let people = set(&summaries, "shared_people");
    assert_eq!(people.record.differences, 2);
    let run_id = people.record.run_id.to_string();

    let listed = get(web, "/reconcile").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    for summary in &summaries {
        let row = element(
            &listed.body,
            &format!(
                r#"data-run-id="{}" data-set="{}""#,
                summary.record.run_id, summary.record.set_name
            ),
            "</tr>",
        );
        assert!(
            row.contains(&format!(r#"data-differences="{}""#, summary.record.differences)),
            "{row}"
        );
    }

    // the run's differences, under the township of the persons, with their ID numbers
    let run = get(web, &format!("/reconcile/{run_id}")).await;
    assert_eq!(run.status, 200, "{}", run.body);
    assert!(run.body.contains(r#"id="differences-count">2<"#), "{}", run.body);
    let township = hancha::domain::division::townships_of(DINGCHENG.parse().unwrap())[0];
    let section = element(
        &run.body,
        &format!(r#"data-township="{}""#, township.as_str()),
        "</section>",
    );
    for person in &unknown {
        assert!(section.contains(person.resident_id.as_str()), "{section}");
    }
    assert!(section.contains("对方未登记"), "unknown to the peer: {section}");

    // the CSV: the run's rows, and all of them exactly as the CLI writes them
    let run_csv = get(web, &format!("/reconcile/{run_id}/differences.csv")).await;
    assert_eq!(run_csv.status, 200, "{}", run_csv.body);
    assert!(
        run_csv
            .header("content-disposition")
            .is_some_and(|value| value.starts_with("attachment;")),
        "{:?}",
        run_csv.headers
    );
    assert!(
        run_csv
            .body
            .starts_with("found_at,peer_county,township,resident_id,flow,difference,action")
    );
    assert_eq!(run_csv.body.lines().count(), 1 + 2, "{}", run_csv.body);
    let all_csv = get(web, "/reconcile/differences.csv").await;
    let cli = assert_cmd::Command::cargo_bin("hancha")
        .unwrap()
        .args(["reconcile", "reports", "--csv", "--node"])
        .arg(cluster.operator_address(DINGCHENG).to_string())
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(all_csv.body, String::from_utf8(cli.stdout).unwrap());

    let unknown_run = get(web, "/reconcile/0190a0a0-0000-7000-8000-000000000000").await;
    assert_eq!(unknown_run.status, 404, "{}", unknown_run.body);

    // a form without its token is refused and starts nothing
    let runs_before = count(cluster.node(DINGCHENG), "SELECT count(*) FROM reconcile_runs").await;
    let forged = post_form(web, "/reconcile", &format!("with_county={SHAODONG}")).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong = post_form(web, "/reconcile", &format!("_csrf=0123&with_county={SHAODONG}")).await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM reconcile_runs").await,
        runs_before
    );

    // a county code that is not one is refused next to the field
    let token = form_token(&listed.body);
    let bad = post_form(web, "/reconcile", &format!("_csrf={token}&with_county=12")).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains(r#"id="with-county-error""#), "{}", bad.body);

    // started from the form: the run ends, and the operator lands on what it found
    let started = post_form(
        web,
        "/reconcile",
        &format!("_csrf={token}&with_county={SHAODONG}"),
    )
    .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let location = started.header("location").unwrap().to_string();
    assert!(location.starts_with("/reconcile/"), "{location}");
    assert_ne!(location, format!("/reconcile/{run_id}"));
    assert_eq!(
        count(cluster.node(DINGCHENG), "SELECT count(*) FROM reconcile_runs").await,
        runs_before + 2
    );
    let landed = get(web, &location).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert!(
        landed.body.contains("共有人员"),
        "the shared people's run: {}",
        landed.body
    );
    let relisted = get(web, "/reconcile").await;
    assert!(relisted.body.contains(&format!(
        r#"data-run-id="{}""#,
        location.trim_start_matches("/reconcile/")
    )));
}
