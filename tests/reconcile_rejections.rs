//! What a peer sees when a node refuses its reconciliation (对账), and what the refusing node
//! keeps: a refusal at `begin` has a precise gRPC code and a message naming the field or the
//! agreement, leaves an audit record, and records no run; a stream that breaks the protocol after
//! `begin` is recorded as an interrupted run that repaired nothing. No refusal names a person.

mod common;

use common::*;
use hancha::domain::resident_id::ResidentId;
use hancha::domain::riblt::Encoder;
use hancha::node::Node;
use hancha::proto::exchange as pb;
use hancha::proto::exchange::exchange_client::ExchangeClient;
use hancha::proto::exchange::reconcile_request::Step as RequestStep;
use hancha::proto::exchange::reconcile_response::Step as ResponseStep;
use hancha::store::audit::AuditEntry;
use hancha::tls::dev::TestPki;
use hancha::tls::{County, TrustAnchors, client_config, connect};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

/// 鼎城区 starts the runs; 邵东市 answers them (and refuses).
const CALLER: &str = DINGCHENG;
const RESPONDER: &str = SHAODONG;

/// The id of the pair's agreement (as `open_agreement` names it).
fn pair_agreement_id() -> String {
    format!("{CALLER}-{RESPONDER}")
}

/// The pair with twenty persons both registries hold alike; returns their ID numbers, which no
/// refusal may name.
async fn pair_with_shared_people() -> (Cluster, Vec<ResidentId>) {
    let cluster = Cluster::start(&[CALLER, RESPONDER], &[open_agreement(CALLER, RESPONDER)]).await;
    let ids: Vec<ResidentId> = (0..20).map(|n| synthetic_id(CALLER, n)).collect();
    let outflow: Vec<_> = ids
        .iter()
        .map(|id| outflow_person(id.clone(), CALLER, RESPONDER))
        .collect();
    let inflow: Vec<_> = ids
        .iter()
        .map(|id| inflow_person(id.clone(), CALLER, RESPONDER))
        .collect();
    cluster
        .node(CALLER)
        .store()
        .upsert_persons(&outflow)
        .await
        .unwrap();
    cluster
        .node(RESPONDER)
        .store()
        .upsert_persons(&inflow)
        .await
        .unwrap();
    (cluster, ids)
}

/// A well-formed `begin` for the shared people set under the agreement the responder holds.
fn begin(cluster: &Cluster) -> pb::ReconcileBegin {
    let id = pair_agreement_id();
    pb::ReconcileBegin {
        run_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(pb::AgreementRef {
            hash: cluster.agreement_hash(RESPONDER, &id),
            id,
        }),
        set: pb::ReconcileSet::SharedPeople as i32,
        set_size: 0,
    }
}

fn request(step: RequestStep) -> pb::ReconcileRequest {
    pb::ReconcileRequest { step: Some(step) }
}

/// A run opened by hand: what we send, and what the responder answers.
struct Run {
    requests: mpsc::Sender<pb::ReconcileRequest>,
    responses: Result<Streaming<pb::ReconcileResponse>, Status>,
}

impl Run {
    /// Opens `Exchange.Reconcile` on `client` with `first` as the first message.
    async fn open(client: &mut ExchangeClient<Channel>, first: RequestStep) -> Run {
        let (requests, receiver) = mpsc::channel(4);
        requests.send(request(first)).await.unwrap();
        let responses = client
            .reconcile(ReceiverStream::new(receiver))
            .await
            .map(tonic::Response::into_inner);
        Run { requests, responses }
    }

    async fn send(&self, step: RequestStep) {
        self.requests.send(request(step)).await.unwrap();
    }

    /// The responder's next answer, or the status that ended the stream.
    async fn answer(&mut self) -> Result<ResponseStep, Status> {
        let responses = self.responses.as_mut().map_err(|status| status.clone())?;
        match responses.message().await? {
            Some(pb::ReconcileResponse { step: Some(step) }) => Ok(step),
            other => panic!("expected an answer or a refusal, the stream gave {other:?}"),
        }
    }

    /// The status the responder ends the stream with, where it must refuse.
    async fn refusal(&mut self) -> Status {
        match self.answer().await {
            Err(status) => status,
            Ok(step) => panic!("expected a refusal, the responder answered {step:?}"),
        }
    }
}

/// Opens a run as `as_county` with `first` and returns the responder's refusal.
async fn refused(cluster: &Cluster, as_county: &str, first: RequestStep) -> Status {
    let mut client = cluster.client(as_county, RESPONDER).await;
    Run::open(&mut client, first).await.refusal().await
}

/// Every refused reconciliation audited on `node`, oldest first.
async fn audited_refusals(node: &Node) -> Vec<AuditEntry> {
    audited_rejections(node)
        .await
        .into_iter()
        .filter(|entry| entry.direction == "inbound" && entry.kind.as_deref() == Some("reconcile"))
        .collect()
}

/// The only refused reconciliation audited on `node`.
async fn the_audited_refusal(node: &Node) -> AuditEntry {
    let mut refusals = audited_refusals(node).await;
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    refusals.remove(0)
}

/// The audit record keeps what the peer was told: the status message, after its code.
fn assert_audits(entry: &AuditEntry, status: &Status) {
    let reason = entry.reason.as_deref().unwrap_or_default();
    assert!(
        reason.ends_with(&format!(": {}", status.message())),
        "{reason:?} does not record {status:?}"
    );
}

/// The refusal was audited once, naming the caller's county from its certificate, and nothing
/// else changed; returns the audit entry for further checks.
async fn assert_refused_cleanly(
    responder: &Node,
    status: &Status,
    caller: &str,
    before: &Footprint,
    ids: &[ResidentId],
) -> AuditEntry {
    let entry = the_audited_refusal(responder).await;
    assert_eq!(entry.peer_county.as_deref(), Some(caller), "from the certificate");
    assert_audits(&entry, status);
    assert_nothing_recorded(responder, before).await;
    assert_names_nobody(responder, ids).await;
    entry
}

/// What a run could have changed on a node.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    runs: i64,
    differences: i64,
    outbox: i64,
    inquiries: i64,
}

async fn footprint(node: &Node) -> Footprint {
    Footprint {
        runs: count(node, "SELECT count(*) FROM reconcile_runs").await,
        differences: count(node, "SELECT count(*) FROM reconcile_differences").await,
        outbox: count(node, "SELECT count(*) FROM outbox").await,
        inquiries: count(node, "SELECT count(*) FROM inquiries").await,
    }
}

/// Nothing but the audit record: no run recorded, nothing repaired, reported or queued.
async fn assert_nothing_recorded(node: &Node, before: &Footprint) {
    assert_eq!(before.runs, 0);
    assert_eq!(&footprint(node).await, before);
}

/// No ID number in any audit reason, nor in any recorded run's error.
async fn assert_names_nobody(node: &Node, ids: &[ResidentId]) {
    let reasons: Vec<Option<String>> = sqlx::query_scalar("SELECT reason FROM audit_log")
        .fetch_all(&common::database(node.store()).await)
        .await
        .unwrap();
    let errors: Vec<Option<String>> = sqlx::query_scalar("SELECT error FROM reconcile_runs")
        .fetch_all(&common::database(node.store()).await)
        .await
        .unwrap();
    for text in reasons.iter().chain(&errors).flatten() {
        for id in ids {
            assert!(!text.contains(id.as_str()), "{text:?} names {id:?}");
            assert!(!text.contains(&id.as_str()[..17]), "{text:?} names {id:?}");
        }
    }
}

/// Waits for the responder's record of the run that broke off, and returns its error.
async fn interrupted_run_error(node: &Node, run_id: &str) -> String {
    let run_id: uuid::Uuid = run_id.parse().unwrap();
    eventually("the responder records the interrupted run", || async {
        sqlx::query_scalar("SELECT error FROM reconcile_runs WHERE run_id = $1 AND outcome = 'interrupted'")
            .bind(run_id)
            .fetch_optional(&common::database(node.store()).await)
            .await
            .unwrap()
            .flatten()
    })
    .await
}

// === refused at begin ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_run_that_does_not_start_with_begin() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    let mut symbols = Vec::new();
    Encoder::new(std::iter::empty())
        .produce_next()
        .encode_into(&mut symbols);
    let first = RequestStep::Symbols(pb::SymbolChunk {
        set_size: 0,
        first_index: 0,
        count: 1,
        symbols,
    });

    let status = refused(&cluster, CALLER, first).await;

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "begin: the first message of a run must be begin"
    );
    assert_refused_cleanly(responder, &status, CALLER, &before, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_begin_with_a_malformed_field_naming_the_field() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    let cases = [
        (
            pb::ReconcileBegin {
                run_id: "run-1".into(),
                ..begin(&cluster)
            },
            "begin.run_id: not a UUID",
        ),
        (
            pb::ReconcileBegin {
                set_size: u64::MAX,
                ..begin(&cluster)
            },
            "begin.set_size: exceeds the largest set a county holds",
        ),
        (
            pb::ReconcileBegin {
                set: pb::ReconcileSet::Unspecified as i32,
                ..begin(&cluster)
            },
            "begin.set: must be messages or shared_people",
        ),
        (
            pb::ReconcileBegin {
                set: 7,
                ..begin(&cluster)
            },
            "begin.set: must be messages or shared_people",
        ),
        (
            pb::ReconcileBegin {
                agreement: None,
                ..begin(&cluster)
            },
            "begin.agreement: required",
        ),
    ];

    let mut statuses = Vec::new();
    for (sent, expected) in &cases {
        let status = refused(&cluster, CALLER, RequestStep::Begin(sent.clone())).await;

        assert_eq!(status.code(), Code::InvalidArgument, "{sent:?}: {status:?}");
        assert!(status.message().starts_with(expected), "{sent:?}: {status:?}");
        statuses.push(status);
    }
    let refusals = audited_refusals(responder).await;
    assert_eq!(
        refusals.len(),
        cases.len(),
        "one record per refusal: {refusals:#?}"
    );
    for (entry, status) in refusals.iter().zip(&statuses) {
        assert_eq!(entry.peer_county.as_deref(), Some(CALLER));
        assert_audits(entry, status);
    }
    assert_nothing_recorded(responder, &before).await;
    assert_names_nobody(responder, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_begin_naming_another_version_of_the_agreement() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    let id = pair_agreement_id();
    let held = cluster.agreement_hash(RESPONDER, &id);
    let other = "0123456789abcdef".repeat(4);
    assert_ne!(held, other);
    let sent = pb::ReconcileBegin {
        agreement: Some(pb::AgreementRef {
            id: id.clone(),
            hash: other.clone(),
        }),
        ..begin(&cluster)
    };

    let status = refused(&cluster, CALLER, RequestStep::Begin(sent)).await;

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "agreement {id}: the message names an unknown version ({}), this node holds version 1 ({})",
            &other[..12],
            &held[..12]
        )
    );
    let entry = assert_refused_cleanly(responder, &status, CALLER, &before, &ids).await;
    assert_eq!(entry.agreement_id.as_deref(), Some(id.as_str()));
    assert_eq!(entry.agreement_hash.as_deref(), Some(other.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_begin_whose_agreement_hash_is_not_hex_without_breaking_the_stream() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    // Eleven ASCII characters, then one that takes three bytes where a hex hash has its twelfth:
    // the refusal quotes the peer's text by characters, and the stream ends with it (it once
    // ended with no status at all, the responder's task having panicked).
    let sent = pb::ReconcileBegin {
        agreement: Some(pb::AgreementRef {
            id: pair_agreement_id(),
            hash: format!("{}€{}", "a".repeat(11), "b".repeat(50)),
        }),
        ..begin(&cluster)
    };

    let status = refused(&cluster, CALLER, RequestStep::Begin(sent)).await;

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().starts_with(&format!(
            "agreement {}: the message names an unknown version (aaaaaaaaaaa€), this node holds version 1",
            pair_agreement_id()
        )),
        "{status:?}"
    );
    assert_refused_cleanly(responder, &status, CALLER, &before, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_county_that_is_not_party_to_the_agreement() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    // 新化县's own, valid certificate from the cluster CA, naming the pair's agreement exactly as
    // 邵东市 holds it.
    let status = refused(&cluster, XINHUA, RequestStep::Begin(begin(&cluster))).await;

    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "agreement {} is not between {RESPONDER} and {XINHUA}",
            pair_agreement_id()
        )
    );
    let entry = assert_refused_cleanly(responder, &status, XINHUA, &before, &ids).await;
    assert_eq!(entry.agreement_id, Some(pair_agreement_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_run_under_an_agreement_no_longer_in_force_on_both_sides() {
    let expired = agreement_toml(
        CALLER,
        RESPONDER,
        1,
        ("2020-01-01", "2021-12-31"),
        &Terms::default(),
        &Terms::default(),
    );
    let cluster = Cluster::start(&[CALLER, RESPONDER], std::slice::from_ref(&expired)).await;
    cluster.install_as_once_valid(&expired).await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;

    let status = refused(&cluster, CALLER, RequestStep::Begin(begin(&cluster))).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "agreement {}: the agreement expired after 2021-12-31 (China Standard Time)",
            pair_agreement_id()
        )
    );
    assert_audits(&the_audited_refusal(responder).await, &status);
    assert_nothing_recorded(responder, &before).await;

    // The caller's own node does not start one either.
    let refused_here = cluster
        .node(CALLER)
        .reconcile_with(RESPONDER.parse().unwrap(), |_| {})
        .await
        .expect_err("not in force");
    assert!(
        refused_here.to_string().contains("expired after 2021-12-31"),
        "{refused_here}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_an_agreement_it_does_not_hold() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    let made_up = format!("{RESPONDER}-{XINHUA}");
    let sent = pb::ReconcileBegin {
        agreement: Some(pb::AgreementRef {
            id: made_up.clone(),
            hash: "ab".repeat(32),
        }),
        ..begin(&cluster)
    };

    let status = refused(&cluster, XINHUA, RequestStep::Begin(sent)).await;

    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        status.message(),
        format!("the agreement named is not held by {RESPONDER}")
    );
    let entry = assert_refused_cleanly(responder, &status, XINHUA, &before, &ids).await;
    assert_eq!(entry.agreement_id, Some(made_up));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_run_under_an_agreement_it_has_no_secret_for() {
    let (mut cluster, ids) = pair_with_shared_people().await;
    // 邵东市 holds the agreement but was configured without a reconciliation secret for it.
    cluster.stop(RESPONDER).await;
    let member = cluster.members.get_mut(RESPONDER).unwrap();
    member.config.reconcile.agreements.clear();
    cluster.restart(RESPONDER).await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;

    let status = refused(&cluster, CALLER, RequestStep::Begin(begin(&cluster))).await;

    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "{RESPONDER} has no reconciliation secret configured for agreement {}",
            pair_agreement_id()
        )
    );
    let entry = assert_refused_cleanly(responder, &status, CALLER, &before, &ids).await;
    assert_eq!(entry.agreement_id, Some(pair_agreement_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_run_reads_in_the_audit_log_like_a_refused_inquiry() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let made_up = pb::AgreementRef {
        id: format!("{RESPONDER}-{XINHUA}"),
        hash: "ab".repeat(32),
    };
    let mut client = cluster.client(XINHUA, RESPONDER).await;
    let inquiry = pb::Inquiry {
        message_id: uuid::Uuid::now_v7().to_string(),
        agreement: Some(made_up.clone()),
        kind: pb::InquiryKind::CertificateVerification as i32,
        priority: pb::Priority::Normal as i32,
        subject: Some(pb::Subject {
            resident_id: ids[0].as_str().to_string(),
            certificate_number: String::new(),
        }),
    };
    let inquiry_status = client
        .submit_inquiry(pb::SubmitInquiryRequest {
            inquiry: Some(inquiry),
            wait_ms: 0,
        })
        .await
        .unwrap_err();
    let run_status = Run::open(
        &mut client,
        RequestStep::Begin(pb::ReconcileBegin {
            agreement: Some(made_up),
            ..begin(&cluster)
        }),
    )
    .await
    .refusal()
    .await;

    // The same refusal, for the same reason, to the same peer…
    assert_eq!(
        (run_status.code(), run_status.message()),
        (inquiry_status.code(), inquiry_status.message())
    );
    // …is written in the same words, so that one query over the audit log finds both.
    let reasons: Vec<Option<String>> = responder
        .store()
        .recent_audit(100)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.entry)
        .filter(|entry| entry.outcome == "rejected")
        .map(|entry| entry.reason)
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert_eq!(reasons[0], reasons[1], "the run's record, then the inquiry's");
    assert_names_nobody(responder, &ids).await;
}

// === broken off after begin ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_symbols_interrupt_the_run_and_change_nothing() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    let sent = begin(&cluster);
    let mut client = cluster.client(CALLER, RESPONDER).await;
    let mut run = Run::open(&mut client, RequestStep::Begin(sent.clone())).await;
    assert!(matches!(run.answer().await, Ok(ResponseStep::Ready(_))));

    run.send(RequestStep::Symbols(pb::SymbolChunk {
        set_size: 0,
        first_index: 0,
        count: 1,
        symbols: vec![0xff; 60],
    }))
    .await;
    let status = run.refusal().await;

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("symbols.symbols: "), "{status:?}");
    assert_interrupted_and_unchanged(responder, &sent.run_id, &status, before, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_symbol_stream_interrupts_the_run_and_changes_nothing() {
    let (cluster, ids) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    let sent = begin(&cluster);
    let mut client = cluster.client(CALLER, RESPONDER).await;
    let mut run = Run::open(&mut client, RequestStep::Begin(sent.clone())).await;
    assert!(matches!(run.answer().await, Ok(ResponseStep::Ready(_))));
    // Symbols 0..16 of an empty set: twenty differences cannot be decoded from sixteen symbols.
    let mut encoder = Encoder::new(std::iter::empty());
    let mut chunk = |first_index: u64| {
        let mut symbols = Vec::new();
        for _ in 0..16 {
            encoder.produce_next().encode_into(&mut symbols);
        }
        RequestStep::Symbols(pb::SymbolChunk {
            set_size: 0,
            first_index,
            count: 16,
            symbols,
        })
    };
    run.send(chunk(0)).await;
    assert!(
        matches!(
            run.answer().await,
            Ok(ResponseStep::More(pb::SymbolsNeeded { symbols_received: 16 }))
        ),
        "the first chunk is taken"
    );

    // Symbols 16..32 are produced but never sent: the next chunk starts at 32.
    let _never_sent = chunk(16);
    run.send(chunk(32)).await;
    let status = run.refusal().await;

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "symbols.first_index: expected 16, found 32");
    assert_interrupted_and_unchanged(responder, &sent.run_id, &status, before, &ids).await;
}

/// The run broke off after `begin`: recorded as interrupted with the peer's status as its error,
/// and nothing else changed.
async fn assert_interrupted_and_unchanged(
    responder: &Node,
    run_id: &str,
    status: &tonic::Status,
    before: Footprint,
    ids: &[ResidentId],
) {
    let error = interrupted_run_error(responder, run_id).await;
    assert!(
        error.ends_with(status.message()),
        "{error:?} does not record {status:?}"
    );
    let after = footprint(responder).await;
    assert_eq!(
        after,
        Footprint { runs: 1, ..before },
        "only the interrupted run is recorded"
    );
    assert_names_nobody(responder, ids).await;
}

// === never reached ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_cannot_reach_reconcile() {
    let (cluster, _) = pair_with_shared_people().await;
    let responder = cluster.node(RESPONDER);
    let before = footprint(responder).await;
    // The caller's county and the cluster's server trust, but a certificate from a CA the
    // responder does not trust: the product's own client, so the attempt is a real Reconcile call.
    let foreign_ca = TestPki::with_common_name("another province's CA").unwrap();
    let identity = foreign_ca.county_identity(CALLER).unwrap();
    let anchors = TrustAnchors::from_pem(&cluster.pki.ca_pem()).unwrap();
    let config = client_config(&identity, &anchors, County::parse(RESPONDER).unwrap()).unwrap();

    let attempt = async {
        let channel = connect(&cluster.address(RESPONDER).to_string(), config)
            .await
            .map_err(|error| error.to_string())?;
        let mut client = ExchangeClient::new(channel);
        Run::open(&mut client, RequestStep::Begin(begin(&cluster)))
            .await
            .answer()
            .await
            .map_err(|status| status.to_string())
    };
    let outcome = tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("the attempt ends");

    assert!(outcome.is_err(), "reached Reconcile: {outcome:?}");
    let handshakes = eventually("the refused handshake is audited", || async {
        let entries: Vec<AuditEntry> = responder
            .store()
            .recent_audit(100)
            .await
            .unwrap()
            .into_iter()
            .map(|record| record.entry)
            .filter(|entry| {
                entry
                    .reason
                    .as_deref()
                    .is_some_and(|reason| reason.contains("tls handshake failed"))
            })
            .collect();
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    assert!(
        handshakes.iter().all(|entry| entry.peer_county.is_none()),
        "an unverified certificate names nobody: {handshakes:#?}"
    );
    assert!(
        audited_refusals(responder).await.is_empty(),
        "never got as far as begin"
    );
    assert_nothing_recorded(responder, &before).await;
}
