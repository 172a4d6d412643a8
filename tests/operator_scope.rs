//! Every operator RPC under both scopes, over 鼎城区's real operator listener (mutual TLS with
//! operator certificates) on real PostgreSQL: a county-wide operator does everything; a township
//! office (a certificate with `urn:hancha:township:`) sees and answers its own township's
//! inquiries, reads its own indicators, may ask at the window, and is refused county-wide work;
//! refusals and reads of a person's data are audited with the principal and its scope, and the
//! audit log never holds an ID number; person lookups are limited per principal.

mod common;

use std::time::Duration;

use common::*;
use hancha::config::Limits;
use hancha::proto::operator as pb;
use hancha::proto::operator::operator_client::OperatorClient;
use tonic::Code;
use tonic::transport::Channel;

/// Drains a reconciliation stream: its final status, if it ended with one.
async fn reconcile(client: &mut OperatorClient<Channel>) -> Result<(), tonic::Status> {
    let request = pb::ReconcileRequest {
        with_county: XINHUA.into(),
    };
    let mut stream = client.reconcile(request).await?.into_inner();
    while let Some(progress) = stream.message().await.transpose() {
        progress?;
    }
    Ok(())
}

fn import_request(offices: &TownshipOffices) -> pb::ImportPersonsRequest {
    let columns = [
        ("resident_id", synthetic_id(XINHUA, 40).as_str().to_string()),
        ("name", "测试人员".to_string()),
        ("flow", "inflow".to_string()),
        ("registered_county", XINHUA.to_string()),
        ("township", offices.township_a.to_string()),
    ];
    pb::ImportPersonsRequest {
        rows: vec![pb::PersonRow {
            line: 2,
            columns: columns.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }],
    }
}

fn ask_request(n: u32) -> pb::AskRequest {
    pb::AskRequest {
        to_county: XINHUA.into(),
        kind: "certificate_verification".into(),
        resident_id: synthetic_id(XINHUA, n).as_str().into(),
        wait_ms: 2_000,
        ..Default::default()
    }
}

fn sweep_request() -> pb::SweepRequest {
    pb::SweepRequest {
        to_county: XINHUA.into(),
        kind: "certificate_verification".into(),
        sweep_key: "scope-test".into(),
        items: vec![pb::SweepItem {
            line: 2,
            resident_id: synthetic_id(XINHUA, 30).as_str().into(),
            ..Default::default()
        }],
    }
}

fn pending_ids(response: &pb::ListPendingResponse) -> Vec<String> {
    response.inquiries.iter().map(|i| i.message_id.clone()).collect()
}

fn answer_request(id: uuid::Uuid) -> pb::AnswerRequest {
    pb::AnswerRequest {
        message_id: id.to_string(),
        outcome: "not_found".into(),
        ..Default::default()
    }
}

/// No audit record may hold a resident ID number: neither the persons of the test nor anything
/// shaped like one.
async fn assert_no_id_in_audit(offices: &TownshipOffices) {
    let text = offices.audit_text().await;
    for id in [&offices.person_a, &offices.person_b] {
        assert!(
            !text.contains(id.as_str()),
            "an ID number in the audit log:\n{text}"
        );
    }
    let digits_run = text
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        digits_run < 15,
        "something like an ID number in the audit log:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_county_operator_may_call_every_rpc_county_wide_and_its_reads_are_audited() {
    let offices = TownshipOffices::start().await;
    let head = offices.county_operator("head-office");
    let mut client = offices.client(&head).await;

    let asked = client.ask(ask_request(3)).await.expect("ask").into_inner();
    assert!(!asked.message_id.is_empty());
    let swept = client.sweep(sweep_request()).await.expect("sweep").into_inner();
    assert_eq!(swept.accepted, 1);
    client
        .sweep_status(pb::SweepStatusRequest {
            sweep_key: "scope-test".into(),
            ..Default::default()
        })
        .await
        .expect("sweep status");

    let pending = client
        .list_pending(pb::ListPendingRequest::default())
        .await
        .expect("pending")
        .into_inner();
    let ids = pending_ids(&pending);
    assert!(
        ids.contains(&offices.inquiry_a.to_string()) && ids.contains(&offices.inquiry_b.to_string()),
        "{ids:?}"
    );
    let only_b = client
        .list_pending(pb::ListPendingRequest {
            township: offices.township_b.to_string(),
            ..Default::default()
        })
        .await
        .expect("pending of township B")
        .into_inner();
    assert_eq!(pending_ids(&only_b), vec![offices.inquiry_b.to_string()]);

    let shown = client
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: offices.inquiry_b.to_string(),
        })
        .await
        .expect("show")
        .into_inner();
    assert_eq!(shown.subject_resident_id, offices.person_b.as_str());
    client
        .answer(answer_request(offices.inquiry_b))
        .await
        .expect("answer");

    let imported = client
        .import_persons(import_request(&offices))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(imported.imported, 1, "{imported:?}");

    let report = client
        .report(pb::ReportRequest::default())
        .await
        .expect("report")
        .into_inner();
    assert!(report.rows.len() > 2, "every township and the county");
    assert!(
        report.rows.last().unwrap().township.is_empty(),
        "the county total"
    );

    reconcile(&mut client).await.expect("reconcile");
    client
        .list_reconcile_runs(pb::ListReconcileRunsRequest::default())
        .await
        .expect("runs");
    client
        .list_reconcile_differences(pb::ListReconcileDifferencesRequest::default())
        .await
        .expect("differences");

    let agreements = client
        .list_agreements(pb::ListAgreementsRequest {})
        .await
        .expect("list agreements")
        .into_inner();
    let id = agreements.agreements[0].id.clone();
    client
        .show_agreement(pb::ShowAgreementRequest { id })
        .await
        .expect("show agreement");
    let amended = agreement_toml(
        DINGCHENG,
        XINHUA,
        2,
        ("2026-01-01", "2031-12-31"),
        &Terms::default(),
        &Terms::default(),
    );
    client
        .apply_agreement(pb::ApplyAgreementRequest { text: amended })
        .await
        .expect("apply agreement");

    let log = offices.access_log().await;
    for record in &log {
        assert_eq!(record.principal, "head-office");
        assert_eq!(record.scope, "county:430703");
        assert_ne!(record.outcome, "refused", "{record:?}");
    }
    let outcome_of = |action: &str| -> Vec<&str> {
        log.iter()
            .filter(|r| r.action == action)
            .map(|r| r.outcome.as_str())
            .collect()
    };
    assert_eq!(outcome_of("ask"), ["asked"]);
    assert_eq!(outcome_of("sweep"), ["swept"]);
    assert_eq!(outcome_of("list_pending"), ["listed", "listed"]);
    assert_eq!(outcome_of("show_inquiry"), ["read"]);
    assert_eq!(
        outcome_of("answer"),
        ["requested", "answered"],
        "recorded before and after"
    );
    assert_eq!(outcome_of("import_persons"), ["requested", "imported"]);
    assert_eq!(outcome_of("reconcile"), ["started"]);
    assert_eq!(outcome_of("list_reconcile_differences"), ["listed"]);
    assert_eq!(outcome_of("apply_agreement"), ["requested", "applied"]);
    let read = log.iter().find(|r| r.action == "show_inquiry").unwrap();
    assert_eq!(
        read.message_id,
        Some(offices.inquiry_b),
        "the read names the inquiry by id"
    );
    let asked_record = log.iter().find(|r| r.action == "ask").unwrap();
    assert_eq!(asked_record.message_id.unwrap().to_string(), asked.message_id);
    assert_no_id_in_audit(&offices).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_township_office_works_its_own_township_only_and_is_refused_county_wide_work() {
    let offices = TownshipOffices::start().await;
    let township_a = offices.township_a.to_string();
    let clerk = offices.township_operator("yuxia-clerk", &[&township_a]);
    let mut client = offices.client(&clerk).await;

    // Pending: its township's inquiry only; another township's list is refused.
    let pending = client
        .list_pending(pb::ListPendingRequest::default())
        .await
        .expect("pending")
        .into_inner();
    assert_eq!(pending_ids(&pending), vec![offices.inquiry_a.to_string()]);
    let other = client
        .list_pending(pb::ListPendingRequest {
            township: offices.township_b.to_string(),
            ..Default::default()
        })
        .await
        .expect_err("another township's list");
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");

    // Show and answer: another township's inquiry does not exist, word for word.
    let shown = client
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: offices.inquiry_a.to_string(),
        })
        .await
        .expect("show its own")
        .into_inner();
    assert_eq!(shown.subject_resident_id, offices.person_a.as_str());
    let hidden = client
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: offices.inquiry_b.to_string(),
        })
        .await
        .expect_err("another township's inquiry");
    let unknown_id = uuid::Uuid::now_v7();
    let unknown = client
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: unknown_id.to_string(),
        })
        .await
        .expect_err("no such inquiry");
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(
        hidden.message().replace(&offices.inquiry_b.to_string(), "ID"),
        unknown.message().replace(&unknown_id.to_string(), "ID"),
        "not told that it exists"
    );
    let not_answered = client
        .answer(answer_request(offices.inquiry_b))
        .await
        .expect_err("another township's inquiry");
    assert_eq!(not_answered.code(), Code::NotFound);
    let answered_unknown = client
        .answer(answer_request(unknown_id))
        .await
        .expect_err("no such inquiry");
    assert_eq!(
        not_answered
            .message()
            .replace(&offices.inquiry_b.to_string(), "ID"),
        answered_unknown.message().replace(&unknown_id.to_string(), "ID"),
        "answering does not tell that another township's inquiry exists either"
    );
    client
        .answer(answer_request(offices.inquiry_a))
        .await
        .expect("answer its own");

    // The window check is a township's work, and the office finds its own asks again.
    let asked = client
        .ask(ask_request(5))
        .await
        .expect("ask at the window")
        .into_inner();
    client
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: asked.message_id.clone(),
        })
        .await
        .expect("its own ask, whether or not our registry holds the person");

    // Indicators: its own township's row, never the county's or another township's.
    let report = client
        .report(pb::ReportRequest::default())
        .await
        .expect("report")
        .into_inner();
    let townships: Vec<&str> = report.rows.iter().map(|r| r.township.as_str()).collect();
    assert_eq!(townships, [township_a.as_str()]);
    let other_report = client
        .report(pb::ReportRequest {
            township: offices.township_b.to_string(),
            ..Default::default()
        })
        .await
        .expect_err("another township's indicators");
    assert_eq!(other_report.code(), Code::PermissionDenied);

    // Agreements and reconciliation results may be read; differences are its township's.
    let agreements = client
        .list_agreements(pb::ListAgreementsRequest {})
        .await
        .expect("list agreements")
        .into_inner();
    client
        .show_agreement(pb::ShowAgreementRequest {
            id: agreements.agreements[0].id.clone(),
        })
        .await
        .expect("show agreement");
    client
        .list_reconcile_runs(pb::ListReconcileRunsRequest::default())
        .await
        .expect("runs");
    // a night's run reported one person in each township
    let database = common::database(offices.cluster.node(DINGCHENG).store()).await;
    let run = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO reconcile_runs (run_id, set_name, peer_county, agreement_id, agreement_hash, role,
                                     started_at, outcome, differences, reported)
         VALUES ($1, 'shared_people', $2, $3, $4, 'initiator', now(), 'completed', 2, 2)",
    )
    .bind(run)
    .bind(XINHUA)
    .bind(format!("{DINGCHENG}-{XINHUA}"))
    .bind(
        offices
            .cluster
            .agreement_hash(DINGCHENG, &format!("{DINGCHENG}-{XINHUA}")),
    )
    .execute(&database)
    .await
    .unwrap();
    for (person, township) in [
        (&offices.person_a, offices.township_a),
        (&offices.person_b, offices.township_b),
    ] {
        sqlx::query(
            "INSERT INTO reconcile_differences (run_id, set_name, role, difference, action, resident_id, flow, township)
             VALUES ($1, 'shared_people', 'initiator', 'differs', 'reported', $2, 'inflow', $3)",
        )
        .bind(run)
        .bind(person.as_str())
        .bind(township.as_str())
        .execute(&database)
        .await
        .unwrap();
    }
    let differences = client
        .list_reconcile_differences(pb::ListReconcileDifferencesRequest::default())
        .await
        .expect("differences")
        .into_inner();
    let townships: Vec<&str> = differences
        .differences
        .iter()
        .map(|d| d.township.as_str())
        .collect();
    assert_eq!(
        townships,
        [township_a.as_str()],
        "its township's person only: {differences:?}"
    );

    // County-wide work is refused, each time with the reason.
    let refusals = [
        ("sweep", client.sweep(sweep_request()).await.err()),
        (
            "sweep_status",
            client
                .sweep_status(pb::SweepStatusRequest {
                    sweep_key: "scope-test".into(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "import_persons",
            client.import_persons(import_request(&offices)).await.err(),
        ),
        (
            "apply_agreement",
            client
                .apply_agreement(pb::ApplyAgreementRequest {
                    text: agreement_toml(
                        DINGCHENG,
                        XINHUA,
                        2,
                        ("2026-01-01", "2031-12-31"),
                        &Terms::default(),
                        &Terms::default(),
                    ),
                })
                .await
                .err(),
        ),
        ("reconcile", reconcile(&mut client).await.err()),
    ];
    for (action, refusal) in refusals {
        let status = refusal.unwrap_or_else(|| panic!("{action} must be refused"));
        assert_eq!(status.code(), Code::PermissionDenied, "{action}: {status:?}");
        assert!(
            status.message().contains("county-wide work"),
            "{action}: {}",
            status.message()
        );
    }
    assert_eq!(
        count(
            offices.cluster.node(DINGCHENG),
            "SELECT count(*) FROM persons WHERE name = '测试人员' AND township IS NOT NULL"
        )
        .await,
        2,
        "the refused import wrote nothing"
    );

    // The log: who, within which scope, what, how it ended.
    let log = offices.access_log().await;
    let scope = format!("township:{township_a}");
    assert!(
        log.iter()
            .all(|r| r.principal == "yuxia-clerk" && r.scope == scope),
        "{log:#?}"
    );
    let refused: Vec<&str> = log
        .iter()
        .filter(|r| r.outcome == "refused")
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        refused,
        [
            "list_pending",
            "show_inquiry",
            "show_inquiry",
            "answer",
            "answer",
            "report",
            "sweep",
            "sweep_status",
            "import_persons",
            "apply_agreement",
            "reconcile"
        ]
    );
    let hidden_record = log
        .iter()
        .find(|r| r.action == "show_inquiry" && r.outcome == "refused")
        .unwrap();
    assert_eq!(hidden_record.message_id, Some(offices.inquiry_b));
    assert!(
        hidden_record
            .reason
            .as_deref()
            .unwrap()
            .starts_with("NOT_FOUND: "),
        "{hidden_record:?}"
    );
    let reads: Vec<&str> = log
        .iter()
        .filter(|r| r.outcome != "refused")
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        reads,
        [
            "list_pending",
            "show_inquiry",
            // requested and answered for its own inquiry; requested for the unknown one
            "answer",
            "answer",
            "answer",
            "ask",
            // its own ask, found again
            "show_inquiry",
            "list_reconcile_differences"
        ]
    );
    assert_no_id_in_audit(&offices).await;

    // Another township's office does not see that ask.
    let other = offices.township_operator("other-clerk", &[&offices.township_b.to_string()]);
    let hidden = offices
        .client(&other)
        .await
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: asked.message_id,
        })
        .await
        .expect_err("another office's ask");
    assert_eq!(hidden.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_certificate_that_does_not_make_an_operator_here_is_refused_with_the_reason() {
    let offices = TownshipOffices::start().await;
    let now = chrono::Utc::now();
    let (from, until) = (now - chrono::Duration::hours(1), now + chrono::Duration::days(1));
    let county = offices.write(
        "county-from-operator-ca",
        offices.operator_ca.issue_county(XINHUA, from, until).unwrap(),
    );
    let two = offices.township_operator(
        "two-townships",
        &[&offices.township_a.to_string(), &offices.township_b.to_string()],
    );
    let xinhua_township =
        hancha::domain::division::townships_of(hancha::domain::division::CountyCode::parse(XINHUA).unwrap())
            [0]
        .to_string();
    let foreign = offices.township_operator("foreign-township", &[&xinhua_township]);
    let cases = [
        (&county, Code::Unauthenticated, "not an operator certificate"),
        (&two, Code::Unauthenticated, "names 2 townships"),
        (&foreign, Code::PermissionDenied, "township of another county"),
    ];
    for (certificate, code, reason) in cases {
        let mut client = offices.client(certificate).await;
        let status = client
            .list_pending(pb::ListPendingRequest::default())
            .await
            .expect_err(reason);
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(reason), "{}", status.message());
        assert!(
            !status.message().contains(&xinhua_township),
            "{}",
            status.message()
        );
    }
    let log = offices.access_log().await;
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(
        log.iter()
            .all(|r| r.principal == "unidentified" && r.outcome == "refused" && r.action == "list_pending"),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn person_lookups_beyond_the_limit_are_refused_and_audited_per_principal() {
    let offices = TownshipOffices::start_with(Limits {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        lookups_per_principal: 3,
        lookup_window: Duration::from_secs(3600),
        ..Limits::default()
    })
    .await;
    let mut head = offices.client(&offices.county_operator("head-office")).await;
    let show = |id: uuid::Uuid| pb::ShowInquiryRequest {
        message_id: id.to_string(),
    };
    for _ in 0..3 {
        head.show_inquiry(show(offices.inquiry_a))
            .await
            .expect("within the limit");
    }
    let over = head
        .show_inquiry(show(offices.inquiry_b))
        .await
        .expect_err("over the limit");
    assert_eq!(over.code(), Code::ResourceExhausted);
    assert!(
        over.message().contains("too many person lookups") && over.message().contains("3 per 1h"),
        "{}",
        over.message()
    );
    let over_ask = head
        .ask(ask_request(7))
        .await
        .expect_err("an ask is a lookup too");
    assert_eq!(over_ask.code(), Code::ResourceExhausted);
    head.list_pending(pb::ListPendingRequest::default())
        .await
        .expect("a list is no lookup");

    let township_a = offices.township_a.to_string();
    let mut clerk = offices
        .client(&offices.township_operator("yuxia-clerk", &[&township_a]))
        .await;
    clerk
        .show_inquiry(show(offices.inquiry_a))
        .await
        .expect("another principal has its own lookups");

    let log = offices.access_log().await;
    let exhausted: Vec<_> = log
        .iter()
        .filter(|r| {
            r.reason
                .as_deref()
                .is_some_and(|reason| reason.starts_with("RESOURCE_EXHAUSTED: "))
        })
        .collect();
    assert_eq!(exhausted.len(), 2, "{log:#?}");
    assert!(
        exhausted
            .iter()
            .all(|r| r.principal == "head-office" && r.outcome == "refused")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_without_a_certificate_stays_county_wide_and_is_audited_as_loopback() {
    let offices = TownshipOffices::start().await;
    // 新化县's operator API is on loopback without certificates.
    let mut loopback = offices.cluster.operator(XINHUA).await;
    let outbound = loopback
        .list_pending(pb::ListPendingRequest {
            outbound: true,
            ..Default::default()
        })
        .await
        .expect("pending")
        .into_inner();
    assert_eq!(outbound.inquiries.len(), 2);
    loopback
        .show_inquiry(pb::ShowInquiryRequest {
            message_id: offices.inquiry_a.to_string(),
        })
        .await
        .expect("show");
    loopback
        .import_persons(pb::ImportPersonsRequest { rows: vec![] })
        .await
        .expect("county-wide work");
    let log: Vec<_> = offices
        .cluster
        .node(XINHUA)
        .store()
        .recent_operator_access(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.access)
        .collect();
    assert_eq!(log.len(), 4, "{log:#?}");
    assert!(
        log.iter()
            .all(|r| r.principal == "loopback" && r.scope == "county:431322"),
        "{log:#?}"
    );
}
