//! Certificates rotated and revoked on running nodes, with no restart: a county's certificate
//! rotated in the middle of a sweep (SIGHUP on a `hancha serve` process, a reload of an
//! in-process node) and the old one revoked, with every inquiry delivered exactly once; a
//! revoked peer's open connection closed, its next handshake refused, both audited; a CRL past
//! its `nextUpdate` refused after the grace; a reload that fails keeps the old material and says
//! so on `/metrics` and `/healthz`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as TimeDelta, Utc};
use common::*;
use hancha::config::Limits;
use hancha::domain::division::CountyCode;
use hancha::domain::message::Subject;
use hancha::domain::person::Person;
use hancha::domain::vocabulary::{InquiryKind, Priority};
use hancha::node::InquiryDraft;
use hancha::store::Store;
use hancha::tls::{County, NodeIdentity, ReloadOutcome, TrustAnchors, client_config, connect};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Inquiries in the sweep a certificate is rotated in: long enough to outlast the rotation and
/// the revocation on a slow machine.
const SWEEP: u32 = 6_000;

/// Messages per batch in that sweep, so that it passes in many calls.
const SWEEP_BATCH: usize = 50;

/// How long the whole sweep may take.
const SWEEP_PATIENCE: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_rotated_and_the_old_one_revoked_mid_sweep_loses_nothing_and_the_old_one_is_refused() {
    let agreement = open_agreement(DINGCHENG, XINHUA);
    let limits = Limits {
        batch_size: SWEEP_BATCH,
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    // 鼎城区 asks, in this process; 新化县 answers, as a `hancha serve` process that checks the
    // cluster CA's CRL, watching its files every 200 ms.
    let xinhua_address = free_address();
    let cluster = Cluster::start_with_outside(
        &[DINGCHENG],
        std::slice::from_ref(&agreement),
        limits.clone(),
        &[(XINHUA, xinhua_address)],
    )
    .await;
    let mut xinhua = NodeProcess::prepare(
        &cluster,
        XINHUA,
        xinhua_address,
        std::slice::from_ref(&agreement),
        &[(DINGCHENG, cluster.address(DINGCHENG))],
        &limits,
    )
    .await;
    let now = Utc::now();
    let crl_path = xinhua.dir().join("crl.pem");
    std::fs::write(
        &crl_path,
        cluster
            .pki
            .crl_pem(&[], now - TimeDelta::minutes(1), now + TimeDelta::days(1), 1)
            .unwrap(),
    )
    .unwrap();
    xinhua.add_tls_settings("crls = [\"crl.pem\"]\nwatch_interval = \"200ms\"");
    xinhua
        .store
        .upsert_persons(&registry_of_every_other(SWEEP))
        .await
        .unwrap();
    xinhua.start().await;
    let asker = cluster.node(DINGCHENG).store().clone();
    let responder = xinhua.store.clone();

    let started = Instant::now();
    let (queued, new) = cluster
        .node(DINGCHENG)
        .send_inquiries(county(XINHUA), sweep(0..SWEEP))
        .await
        .unwrap();
    assert_eq!(new, u64::from(SWEEP));
    let accepted = |store: Store| async move {
        count_in(
            &store,
            "SELECT count(*) FROM inquiries WHERE direction = 'inbound'",
        )
        .await
    };
    eventually_within("the sweep is under way", SWEEP_PATIENCE, || {
        let responder = responder.clone();
        async move { (accepted(responder).await >= SWEEP_BATCH as i64).then_some(()) }
    })
    .await;

    // 新化县 rotates its certificate: new files, SIGHUP.
    let old_xinhua_cert = std::fs::read_to_string(xinhua.dir().join("node.pem")).unwrap();
    let (new_xinhua_cert, new_xinhua_key) = cluster
        .pki
        .issue_county(XINHUA, now - TimeDelta::hours(1), now + TimeDelta::days(2))
        .unwrap();
    std::fs::write(xinhua.dir().join("node-key.pem"), &new_xinhua_key).unwrap();
    std::fs::write(xinhua.dir().join("node.pem"), &new_xinhua_cert).unwrap();
    xinhua.signal("HUP");
    eventually("新化县 reloads on SIGHUP", || {
        let reloaded = xinhua.log().contains("tls material reloaded");
        async move { reloaded.then_some(()) }
    })
    .await;
    assert_ne!(old_xinhua_cert, new_xinhua_cert);
    assert_eq!(
        server_certificate(xinhua_address, &cluster).await,
        der_of(&new_xinhua_cert),
        "a new handshake gets the rotated certificate"
    );

    // 鼎城区 rotates its certificate too (in this process: the same reload SIGHUP triggers).
    let dingcheng_dir = cluster.path().join(DINGCHENG);
    let old_dingcheng = (
        std::fs::read_to_string(dingcheng_dir.join("node.pem")).unwrap(),
        std::fs::read_to_string(dingcheng_dir.join("node-key.pem")).unwrap(),
    );
    let (new_dingcheng_cert, new_dingcheng_key) = cluster
        .pki
        .issue_county(DINGCHENG, now - TimeDelta::hours(1), now + TimeDelta::days(2))
        .unwrap();
    std::fs::write(dingcheng_dir.join("node-key.pem"), &new_dingcheng_key).unwrap();
    std::fs::write(dingcheng_dir.join("node.pem"), &new_dingcheng_cert).unwrap();
    let outcome = running(&cluster, DINGCHENG).reload_tls(true).await;
    assert!(matches!(outcome, ReloadOutcome::Reloaded { .. }), "{outcome:?}");

    // ... and 新化县 learns that 鼎城区's old certificate is revoked: the connections 鼎城区 made
    // with it are closed, and it connects again with its new one.
    std::fs::write(
        &crl_path,
        cluster
            .pki
            .crl_pem(
                &[&old_dingcheng.0],
                now - TimeDelta::minutes(1),
                now + TimeDelta::days(1),
                2,
            )
            .unwrap(),
    )
    .unwrap();
    // (the audit log fills fast during a sweep: asked for by its text, not among the latest)
    let closings = |store: Store, listener: &'static str| async move {
        sqlx::query_as::<_, (Option<String>, String, String)>(
            "SELECT peer_county, direction, outcome FROM audit_log WHERE reason LIKE $1",
        )
        .bind(format!(
            "UNAUTHENTICATED: certificate revoked: open {listener} connection closed%"
        ))
        .fetch_all(&common::database(&store).await)
        .await
        .unwrap()
    };
    let closed = eventually(
        "新化县 closes 鼎城区's connection made with the revoked certificate",
        || {
            let responder = responder.clone();
            async move { closings(responder, "peer").await.pop() }
        },
    )
    .await;
    assert_eq!(
        closed,
        (
            Some(DINGCHENG.to_string()),
            "inbound".to_string(),
            "rejected".to_string()
        )
    );
    // 鼎城区 served with its old certificate too: 新化县's own connection to it is closed as well
    let closed = eventually(
        "新化县 closes its connection to 鼎城区's revoked server certificate",
        || {
            let responder = responder.clone();
            async move { closings(responder, "outbound").await.pop() }
        },
    )
    .await;
    assert_eq!(
        closed,
        (
            Some(DINGCHENG.to_string()),
            "outbound".to_string(),
            "rejected".to_string()
        )
    );
    let at_revocation = accepted(responder.clone()).await;
    assert!(
        at_revocation < i64::from(SWEEP),
        "the revocation came after the sweep ({at_revocation} accepted): make the sweep longer"
    );
    eprintln!(
        "rotated and revoked at {:?} with {at_revocation} of {SWEEP} accepted",
        started.elapsed()
    );

    eventually_within(&format!("all {SWEEP} inquiries answered"), SWEEP_PATIENCE, || {
        let asker = asker.clone();
        async move {
            let answered = count_in(
                &asker,
                "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND state = 'answered'",
            )
            .await;
            (answered == i64::from(SWEEP)).then_some(())
        }
    })
    .await;
    eprintln!("all answered at {:?}", started.elapsed());
    let mut sent: Vec<uuid::Uuid> = queued.iter().map(|i| i.message_id).collect();
    sent.sort();
    let received: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT message_id FROM inquiries WHERE direction = 'inbound' ORDER BY message_id",
    )
    .fetch_all(&common::database(&responder).await)
    .await
    .unwrap();
    assert_eq!(received, sent, "新化县 received each inquiry exactly once");
    assert_eq!(
        count_in(
            &asker,
            "SELECT count(DISTINCT inquiry_id) FROM confirmations WHERE direction = 'inbound'"
        )
        .await,
        i64::from(SWEEP),
        "one answer per inquiry"
    );
    assert_eq!(
        count_in(
            &asker,
            "SELECT count(*) FROM confirmations WHERE direction = 'inbound'"
        )
        .await,
        i64::from(SWEEP),
        "no answer twice"
    );
    assert_eq!(
        count_in(
            &asker,
            "SELECT count(*) FROM inquiries WHERE direction = 'outbound' AND outcome = 'found'"
        )
        .await,
        i64::from(SWEEP / 2)
    );

    // Whoever still holds 鼎城区's old certificate is refused at the handshake, and audited.
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS13],
        Some((&old_dingcheng.0, &old_dingcheng.1)),
    );
    let (local, error) = raw_tls_attempt(xinhua_address, config).await;
    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateRevoked),
        "{error}"
    );
    let marker = format!("UNAUTHENTICATED: tls handshake failed from {local}: %Revoked%");
    eventually("the refused handshake is audited", || {
        let responder = responder.clone();
        let marker = marker.clone();
        async move {
            let found: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE reason LIKE $1")
                .bind(marker)
                .fetch_one(&common::database(&responder).await)
                .await
                .unwrap();
            (found == 1).then_some(())
        }
    })
    .await;
    assert!(
        xinhua
            .log()
            .contains("closed a live connection: its certificate is now revoked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_peer_is_disconnected_at_once_then_refused_at_the_handshake_and_both_are_audited() {
    let mut cluster = Cluster::start(&[XINHUA], &[]).await;
    let crl_path = cluster.path().join("crl.pem");
    let now = Utc::now();
    write_crl(&cluster, &crl_path, &[], now + TimeDelta::days(1), 1);
    restart_with_crls(&mut cluster, XINHUA, &crl_path, Duration::ZERO).await;
    let address = cluster.address(XINHUA);
    let (shaodong_cert, shaodong_key) = cluster
        .pki
        .issue_county(SHAODONG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();

    // 邵东市 holds a connection open; 鼎城区 calls now and then.
    let mut open = open_h2_connection(&cluster, address, &shaodong_cert, &shaodong_key).await;
    health_check(&cluster, address, &shaodong_cert, &shaodong_key)
        .await
        .expect("邵东市 is served before the revocation");

    write_crl(
        &cluster,
        &crl_path,
        &[&shaodong_cert],
        now + TimeDelta::days(1),
        2,
    );
    let outcome = running(&cluster, XINHUA).reload_tls(false).await;
    let ReloadOutcome::Reloaded { closed } = outcome else {
        panic!("the new CRL is loaded: {outcome:?}");
    };
    assert!(!closed.is_empty(), "邵东市's connections are closed");
    assert!(
        closed
            .iter()
            .all(|c| c.county == Some(County::parse(SHAODONG).unwrap())),
        "only 邵东市's: {closed:?}"
    );

    // The open connection ends (EOF or reset) without the client doing anything.
    let ended = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0_u8; 1024];
        loop {
            match open.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the revoked peer's open connection was closed");

    // Its next call is refused at the handshake ...
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS13],
        Some((&shaodong_cert, &shaodong_key)),
    );
    let (local, error) = raw_tls_attempt(address, config).await;
    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateRevoked),
        "{error}"
    );
    assert!(
        health_check(&cluster, address, &shaodong_cert, &shaodong_key)
            .await
            .is_err()
    );
    // ... and both the closing and the refusal are audited; nobody else is affected.
    let refusal = cluster.handshake_audit(XINHUA, local).await;
    assert!(
        refusal.reason.as_deref().unwrap().contains("Revoked"),
        "{refusal:?}"
    );
    let audit = cluster.node(XINHUA).store().recent_audit(100).await.unwrap();
    let closing = audit
        .iter()
        .map(|record| &record.entry)
        .find(|entry| {
            entry
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("certificate revoked: open peer connection closed"))
        })
        .expect("the closed connection is audited");
    assert_eq!(closing.peer_county.as_deref(), Some(SHAODONG));
    assert_eq!(closing.outcome, "rejected");
    let (dingcheng_cert, dingcheng_key) = cluster
        .pki
        .issue_county(DINGCHENG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    health_check(&cluster, address, &dingcheng_cert, &dingcheng_key)
        .await
        .expect("a certificate not revoked is still served");

    let metrics = http_get(&cluster.metrics_url(XINHUA)).await.1;
    assert!(
        metrics.contains("hancha_tls_connections_closed_total{listener=\"peer\"} "),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "hancha_tls_handshakes_refused_total{listener=\"peer\",reason=\"certificate_revoked\"} "
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("hancha_tls_reloads_total{outcome=\"reloaded\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crl_past_its_next_update_refuses_that_cas_certificates_once_the_grace_is_over() {
    let mut cluster = Cluster::start(&[XINHUA], &[]).await;
    let crl_path = cluster.path().join("crl.pem");
    let now = Utc::now();
    // issued two days ago, due again an hour ago; revokes nothing
    write_crl(&cluster, &crl_path, &[], now - TimeDelta::hours(1), 1);
    let address = cluster.address(XINHUA);
    let (cert, key) = cluster
        .pki
        .issue_county(SHAODONG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();

    // Within the grace (two hours): the stale CRL is still used, certificates are accepted.
    restart_with_crls(&mut cluster, XINHUA, &crl_path, Duration::from_secs(2 * 3600)).await;
    health_check(&cluster, address, &cert, &key)
        .await
        .expect("accepted within the grace");
    let healthz = http_get(&cluster.metrics_url(XINHUA).replace("/metrics", "/healthz"))
        .await
        .1;
    assert!(!healthz.contains("warning: crl"), "{healthz}");

    // No grace (the default): the CA's certificates are refused at the handshake, saying why.
    restart_with_crls(&mut cluster, XINHUA, &crl_path, Duration::ZERO).await;
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS13],
        Some((&cert, &key)),
    );
    let (local, error) = raw_tls_attempt(address, config).await;
    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::UnknownCA),
        "{error}"
    );
    let refusal = cluster.handshake_audit(XINHUA, local).await;
    assert!(
        refusal
            .reason
            .as_deref()
            .unwrap()
            .contains("certificate revocation list expired"),
        "{refusal:?}"
    );
    let metrics = http_get(&cluster.metrics_url(XINHUA)).await.1;
    assert!(
        metrics.contains("hancha_tls_handshakes_refused_total{listener=\"peer\",reason=\"crl_expired\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hancha_tls_crl_next_update_timestamp_seconds{issuer=\"hancha test CA\"}"));
    // the operator sees it before any peer complains
    let _ = running(&cluster, XINHUA).reload_tls(false).await;
    let base = cluster.metrics_url(XINHUA).replace("/metrics", "");
    let (status, readyz) = http_get(&format!("{base}/readyz")).await;
    assert!(
        status.contains("200"),
        "a stale CRL does not make the node unready: {status}"
    );
    assert!(
        readyz.contains("warning: crl: the CRL of hancha test CA is past its nextUpdate"),
        "{readyz}"
    );

    // A fresh CRL is picked up without a restart, and the CA's certificates are accepted again.
    write_crl(&cluster, &crl_path, &[], now + TimeDelta::days(1), 2);
    let outcome = running(&cluster, XINHUA).reload_tls(false).await;
    assert!(matches!(outcome, ReloadOutcome::Reloaded { .. }), "{outcome:?}");
    health_check(&cluster, address, &cert, &key)
        .await
        .expect("accepted with a fresh CRL");
    let healthz = http_get(&format!("{base}/healthz")).await.1;
    assert!(
        healthz.starts_with("ok\n") && !healthz.contains("warning:"),
        "{healthz}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_that_fails_keeps_the_old_material_and_shows_on_metrics_and_healthz() {
    let mut cluster = Cluster::start(&[XINHUA], &[]).await;
    let crl_path = cluster.path().join("crl.pem");
    let now = Utc::now();
    write_crl(&cluster, &crl_path, &[], now + TimeDelta::days(1), 1);
    restart_with_crls(&mut cluster, XINHUA, &crl_path, Duration::ZERO).await;
    let address = cluster.address(XINHUA);
    let dir = cluster.path().join(XINHUA);
    let serving = std::fs::read_to_string(dir.join("node.pem")).unwrap();
    let base = cluster.metrics_url(XINHUA).replace("/metrics", "");
    let (cert, key) = cluster
        .pki
        .issue_county(DINGCHENG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();

    let attempts: [(&str, Spoil, &str); 4] = [
        (
            "a certificate file that is not PEM",
            Box::new(|| std::fs::write(dir.join("node.pem"), "not a certificate").unwrap()),
            "node.pem",
        ),
        (
            "a key that does not fit the certificate",
            Box::new(|| {
                let (other_cert, _) = cluster
                    .pki
                    .issue_county(XINHUA, now - TimeDelta::hours(1), now + TimeDelta::days(1))
                    .unwrap();
                std::fs::write(dir.join("node.pem"), other_cert).unwrap();
            }),
            "private key does not fit the certificate",
        ),
        (
            "a certificate for another county",
            Box::new(|| {
                let (other_cert, other_key) = cluster
                    .pki
                    .issue_county(SHAODONG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
                    .unwrap();
                std::fs::write(dir.join("node.pem"), other_cert).unwrap();
                std::fs::write(dir.join("node-key.pem"), other_key).unwrap();
            }),
            "the certificate names county 430582 but the configuration says 431322",
        ),
        (
            "a CRL file that is no CRL",
            Box::new(|| {
                std::fs::write(
                    &crl_path,
                    "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
                )
                .unwrap()
            }),
            "not a certificate revocation list",
        ),
    ];
    let good_key = std::fs::read_to_string(dir.join("node-key.pem")).unwrap();
    let good_crl = std::fs::read_to_string(&crl_path).unwrap();
    for (index, (what, spoil, said)) in attempts.iter().enumerate() {
        std::fs::write(dir.join("node.pem"), &serving).unwrap();
        std::fs::write(dir.join("node-key.pem"), &good_key).unwrap();
        std::fs::write(&crl_path, &good_crl).unwrap();
        spoil();
        let outcome = running(&cluster, XINHUA).reload_tls(true).await;
        let ReloadOutcome::Failed { why } = outcome else {
            panic!("{what}: the reload fails, got {outcome:?}");
        };
        assert!(why.contains(said), "{what}: {why}");
        assert!(!why.contains("PRIVATE KEY"), "never key material: {why}");

        let metrics = http_get(&format!("{base}/metrics")).await.1;
        assert!(
            metrics.contains("hancha_tls_last_reload_success 0"),
            "{what}: {metrics}"
        );
        assert!(
            metrics.contains(&format!("hancha_tls_reload_failures_total {}", index + 1)),
            "{what}: {metrics}"
        );
        let healthz = http_get(&format!("{base}/healthz")).await.1;
        assert!(
            healthz.starts_with("ok\nwarning: tls: the reload at "),
            "{what}: {healthz}"
        );
        assert!(healthz.contains(said), "{what}: {healthz}");
        let (status, readyz) = http_get(&format!("{base}/readyz")).await;
        assert!(status.contains("200"), "{what}: still ready: {status}");
        assert!(readyz.contains("warning: tls:"), "{what}: {readyz}");
        // the old material still serves
        assert_eq!(
            server_certificate(address, &cluster).await,
            der_of(&serving),
            "{what}"
        );
        health_check(&cluster, address, &cert, &key)
            .await
            .unwrap_or_else(|error| panic!("{what}: still serving: {error}"));
    }

    // The file watch does not retry files it failed on; good files load and clear the warning.
    let (new_cert, new_key) = cluster
        .pki
        .issue_county(XINHUA, now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    std::fs::write(&crl_path, &good_crl).unwrap();
    std::fs::write(dir.join("node-key.pem"), &new_key).unwrap();
    std::fs::write(dir.join("node.pem"), &new_cert).unwrap();
    let outcome = running(&cluster, XINHUA).reload_tls(false).await;
    assert!(matches!(outcome, ReloadOutcome::Reloaded { .. }), "{outcome:?}");
    assert_eq!(server_certificate(address, &cluster).await, der_of(&new_cert));
    let metrics = http_get(&format!("{base}/metrics")).await.1;
    assert!(metrics.contains("hancha_tls_last_reload_success 1"), "{metrics}");
    let healthz = http_get(&format!("{base}/healthz")).await.1;
    assert!(
        healthz.starts_with("ok\n") && !healthz.contains("warning:"),
        "{healthz}"
    );
    let outcome = running(&cluster, XINHUA).reload_tls(false).await;
    assert!(matches!(outcome, ReloadOutcome::Unchanged), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_operator_certificate_is_disconnected_and_refused_on_the_operator_listener() {
    let mut cluster = Cluster::start(&[XINHUA], &[]).await;
    let operator_ca = hancha::tls::dev::TestPki::with_common_name("hancha test operator CA").unwrap();
    let anchors = cluster.path().join("operator-ca.pem");
    std::fs::write(&anchors, operator_ca.ca_pem()).unwrap();
    let crl_path = cluster.path().join("operator-crl.pem");
    let now = Utc::now();
    let write = |revoked: &[&str], number| {
        let crl = operator_ca
            .crl_pem(
                revoked,
                now - TimeDelta::days(1),
                now + TimeDelta::days(1),
                number,
            )
            .unwrap();
        std::fs::write(&crl_path, crl).unwrap();
    };
    write(&[], 1);
    cluster.stop(XINHUA).await;
    let config = &mut cluster.members.get_mut(XINHUA).unwrap().config;
    config.operator.trust_anchors = Some(anchors);
    config.tls.crls = vec![crl_path.clone()];
    config.tls.watch_interval = Duration::ZERO;
    cluster.restart(XINHUA).await;
    let address = running(&cluster, XINHUA).operator_addr;
    let (cert, key) = operator_ca
        .issue_operator("wangfang", now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    let mut open = open_h2_connection(&cluster, address, &cert, &key).await;

    write(&[&cert], 2);
    let outcome = running(&cluster, XINHUA).reload_tls(false).await;
    let ReloadOutcome::Reloaded { closed } = outcome else {
        panic!("the new CRL is loaded: {outcome:?}");
    };
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].role, hancha::tls::Role::OperatorClient);
    let ended = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0_u8; 1024];
        while let Ok(read) = open.read(&mut buffer).await {
            if read == 0 {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the operator's open connection was closed");
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS13],
        Some((&cert, &key)),
    );
    let (_, error) = raw_tls_attempt(address, config).await;
    assert_eq!(
        rustls_alert(&error),
        Some(rustls::AlertDescription::CertificateRevoked),
        "{error}"
    );
    let metrics = http_get(&cluster.metrics_url(XINHUA)).await.1;
    assert!(
        metrics.contains("hancha_tls_connections_closed_total{listener=\"operator\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "hancha_tls_handshakes_refused_total{listener=\"operator\",reason=\"certificate_revoked\"} 1"
        ),
        "{metrics}"
    );
}

// === helpers ===

/// Spoils one of a node's TLS files.
type Spoil<'a> = Box<dyn Fn() + 'a>;

fn running<'a>(cluster: &'a Cluster, county: &str) -> &'a hancha::app::RunningNode {
    cluster.members[county].running.as_ref().expect("running")
}

/// Restarts `county` checking the CRL at `crl` with `grace`, its file watch off (the test
/// reloads when it means to).
async fn restart_with_crls(cluster: &mut Cluster, county: &str, crl: &std::path::Path, grace: Duration) {
    cluster.stop(county).await;
    let tls = &mut cluster.members.get_mut(county).unwrap().config.tls;
    tls.crls = vec![crl.to_path_buf()];
    tls.crl_grace = grace;
    tls.watch_interval = Duration::ZERO;
    cluster.restart(county).await;
}

/// Writes the cluster CA's CRL revoking `revoked` (PEM certificates), issued two days ago.
fn write_crl(
    cluster: &Cluster,
    path: &std::path::Path,
    revoked: &[&str],
    next_update: chrono::DateTime<Utc>,
    number: u64,
) {
    let this_update = Utc::now() - TimeDelta::days(2);
    std::fs::write(
        path,
        cluster
            .pki
            .crl_pem(revoked, this_update, next_update, number)
            .unwrap(),
    )
    .unwrap();
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

/// The certificate a new handshake with `address` gets (as 鼎城区, a fresh certificate).
async fn server_certificate(address: SocketAddr, cluster: &Cluster) -> Vec<u8> {
    let now = Utc::now();
    let (cert, key) = cluster
        .pki
        .issue_county(SHAODONG, now - TimeDelta::hours(1), now + TimeDelta::days(1))
        .unwrap();
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS13],
        Some((&cert, &key)),
    );
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// A TLS connection to `address` with the certificate given, past the HTTP/2 preface and the
/// server's first settings (so the server has accepted it), left open.
async fn open_h2_connection(
    cluster: &Cluster,
    address: SocketAddr,
    cert: &str,
    key: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let config = raw_tls_client(
        &cluster.pki.ca_pem(),
        &[&rustls::version::TLS13],
        Some((cert, key)),
    );
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("handshake");
    tls.write_all(HTTP2_PREFACE).await.unwrap();
    // an empty SETTINGS frame
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut buffer = [0_u8; 64];
    let read = tokio::time::timeout(PATIENCE, tls.read(&mut buffer))
        .await
        .expect("the server answers")
        .expect("the server accepted the connection");
    assert!(read > 0, "the server sent its settings");
    tls
}

/// One gRPC health check over a fresh channel with the certificate given.
async fn health_check(cluster: &Cluster, address: SocketAddr, cert: &str, key: &str) -> Result<(), String> {
    let identity = NodeIdentity::from_pem(cert, key).unwrap();
    let anchors = TrustAnchors::from_pem(&cluster.pki.ca_pem()).unwrap();
    let config = client_config(&identity, &anchors, County::parse(XINHUA).unwrap()).unwrap();
    let channel = connect(&address.to_string(), config)
        .await
        .map_err(|error| error.to_string())?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|status| status.to_string())
}

fn county(code: &str) -> CountyCode {
    CountyCode::parse(code).unwrap()
}

/// Certificate verifications of the synthetic women `numbers` registered in 新化县.
fn sweep(numbers: std::ops::Range<u32>) -> Vec<InquiryDraft> {
    numbers
        .map(|n| InquiryDraft {
            kind: InquiryKind::CertificateVerification,
            priority: Priority::Normal,
            subject: Subject {
                resident_id: synthetic_id(XINHUA, n),
                certificate_number: None,
            },
            message_id: None,
        })
        .collect()
}

/// Every even-numbered woman of the sweep is in 新化县's registry, so half are found.
fn registry_of_every_other(size: u32) -> Vec<Person> {
    (0..size)
        .step_by(2)
        .map(|n| outflow_person(synthetic_id(XINHUA, n), XINHUA, DINGCHENG))
        .collect()
}
