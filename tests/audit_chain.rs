//! The tamper-evident audit chain: `hancha audit verify` (the real binary) names the first place
//! where a record was changed, removed, put in or moved behind the node's back; two replicas
//! writing at once never make the sealer skip a committed record; a peer holding an earlier
//! checkpoint catches a consistent rewrite, and accepts a rewind that comes with a signed
//! resume statement (a documented restore); a peer's checkpoint is refused unless its
//! certificate chains to our anchors and names that peer; after a certificate rotation new
//! checkpoints are signed with the new certificate and the chain stays intact.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as TimeDelta, SubsecRound, Utc};
use common::*;
use hancha::config::Limits;
use hancha::domain::audit_chain::{AuditStatus, ChainHash, ChainPoint, Checkpoint, Offer, Signature, Signed};
use hancha::domain::division::CountyCode;
use hancha::node::Node;
use hancha::store::Store;
use hancha::store::audit::{AuditEntry, append_audit_in};
use hancha::tls::dev::TestPki;
use hancha::tls::signing::{AUDIT_CHECKPOINT_PURPOSE, sign_at};
use hancha::tls::{NodeIdentity, ReloadOutcome};
use hancha::workers::peer_status::PeerStatusWorker;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use sqlx::PgPool;

/// `count` records of our own, in one transaction; their ids in order.
async fn write_records(node: &Node, count: usize, outcome: &str) -> Vec<i64> {
    let entries: Vec<AuditEntry> = (0..count)
        .map(|n| AuditEntry {
            direction: "local".into(),
            outcome: outcome.into(),
            reason: Some(format!("record {n}")),
            ..AuditEntry::default()
        })
        .collect();
    node.store().append_audit_batch(&entries).await.unwrap();
    let pool = database(node.store()).await;
    let ids = sqlx::query_scalar("SELECT id FROM audit_log WHERE outcome = $1 ORDER BY id")
        .bind(outcome)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    ids
}

/// Seals everything committed and signs a checkpoint at the end of the chain. (Sealing waits
/// for transactions still open anywhere on the server, other tests' included.)
async fn seal_and_checkpoint(node: &Node) -> ChainPoint {
    eventually("every committed record sealed", || async {
        node.seal_audit().await.unwrap();
        let (pending, _) = node.store().audit_unsealed().await.unwrap();
        (pending == 0).then_some(())
    })
    .await;
    node.checkpoint_audit(true).await.unwrap();
    node.store()
        .audit_chain_end()
        .await
        .unwrap()
        .expect("a sealed chain")
}

/// Runs `hancha audit <args>`; its exit code and stdout.
fn hancha_audit(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hancha"))
        .arg("audit")
        .args(args)
        .env_remove("HANCHA_CONFIG")
        .output()
        .expect("run hancha");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.code().is_some(),
        "hancha audit {args:?} was killed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap(), stdout)
}

/// `hancha audit verify --node <county's operator API> --json`: exit code and the object.
fn verify_json(cluster: &Cluster, county: &str) -> (i32, Value) {
    let address = cluster.operator_address(county).to_string();
    let (code, stdout) = hancha_audit(&["verify", "--node", &address, "--json"]);
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("one JSON object: {stdout}"));
    (code, report)
}

async fn admin(pool: &PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// The position a record was sealed at.
async fn position_of(pool: &PgPool, id: i64) -> u64 {
    let position: i64 = sqlx::query_scalar("SELECT position FROM audit_chain_positions WHERE audit_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    position as u64
}

fn assert_broken_at(code: i32, report: &Value, position: Option<u64>, audit_id: i64, problem: &str) {
    assert_eq!(code, 1, "verify exits 1 on a broken chain: {report}");
    assert_eq!(report["intact"], false, "{report}");
    let broken = &report["first_broken"];
    assert_eq!(broken["audit_id"], audit_id, "{report}");
    assert_eq!(broken["position"].as_u64(), position, "{report}");
    assert!(broken["problem"].as_str().unwrap().contains(problem), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_names_an_updated_a_deleted_an_inserted_and_a_reordered_record() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.node(DINGCHENG);
    let first = write_records(node, 10, "first-batch").await;
    // an id consumed by a transaction that rolled back: a gap among the sealed records
    let pool = database(node.store()).await;
    let mut rolled_back = pool.begin().await.unwrap();
    admin_tx(&mut rolled_back).await;
    rolled_back.rollback().await.unwrap();
    let second = write_records(node, 10, "second-batch").await;
    seal_and_checkpoint(node).await;

    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["intact"], true);
    assert!(report["rows_checked"].as_u64().unwrap() >= 20, "{report}");
    assert_eq!(report["first_broken"], Value::Null);
    assert_eq!(report["last_checkpoint"]["signature_valid"], true, "{report}");

    // what a database administrator can do: switch the append-only trigger off
    admin(
        &pool,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete",
    )
    .await;

    // update
    let changed = first[3];
    admin(
        &pool,
        &format!("UPDATE audit_log SET outcome = 'rejected' WHERE id = {changed}"),
    )
    .await;
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_broken_at(
        code,
        &report,
        Some(position_of(&pool, changed).await),
        changed,
        "changed",
    );
    admin(
        &pool,
        &format!("UPDATE audit_log SET outcome = 'first-batch' WHERE id = {changed}"),
    )
    .await;
    assert_eq!(verify_json(&cluster, DINGCHENG).0, 0, "intact again once undone");

    // reorder: two records swap places (their times and contents)
    let (earlier, later) = (first[5], first[6]);
    admin(
        &pool,
        &format!(
            "UPDATE audit_log a SET at = b.at, reason = b.reason FROM audit_log b
             WHERE (a.id, b.id) IN (({earlier}, {later}), ({later}, {earlier}))"
        ),
    )
    .await;
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_broken_at(
        code,
        &report,
        Some(position_of(&pool, earlier).await),
        earlier,
        "changed",
    );
    admin(
        &pool,
        &format!(
            "UPDATE audit_log a SET at = b.at, reason = b.reason FROM audit_log b
             WHERE (a.id, b.id) IN (({earlier}, {later}), ({later}, {earlier}))"
        ),
    )
    .await;
    assert_eq!(verify_json(&cluster, DINGCHENG).0, 0, "intact again once undone");

    // delete
    let deleted = second[2];
    admin(&pool, "CREATE TABLE saved AS SELECT * FROM audit_log WHERE false").await;
    admin(
        &pool,
        &format!("INSERT INTO saved SELECT * FROM audit_log WHERE id = {deleted}"),
    )
    .await;
    admin(&pool, &format!("DELETE FROM audit_log WHERE id = {deleted}")).await;
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_broken_at(
        code,
        &report,
        Some(position_of(&pool, deleted).await),
        deleted,
        "removed",
    );
    admin(
        &pool,
        "INSERT INTO audit_log OVERRIDING SYSTEM VALUE SELECT * FROM saved",
    )
    .await;
    assert_eq!(verify_json(&cluster, DINGCHENG).0, 0, "intact again once undone");

    // insert: a record put among the sealed ones, in the gap the rolled-back ids left, as if
    // written with the records around it
    let gap = first.last().unwrap() + 1;
    assert!(gap < second[0], "the rolled-back transactions left a gap");
    admin(
        &pool,
        &format!(
            "INSERT INTO audit_log (id, at, direction, outcome, written_by) OVERRIDING SYSTEM VALUE
             SELECT {gap}, at, 'inbound', 'delivered', written_by FROM audit_log WHERE id = {}",
            first.last().unwrap()
        ),
    )
    .await;
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_broken_at(code, &report, None, gap, "not in the chain");
    // the sealer does not take it in later either
    node.seal_audit().await.unwrap();
    assert_eq!(verify_json(&cluster, DINGCHENG).0, 1);
    pool.close().await;
}

/// Consumes identity values in a transaction the caller rolls back.
async fn admin_tx(tx: &mut sqlx::PgConnection) {
    sqlx::query("INSERT INTO audit_log (direction, outcome) VALUES ('local', 'rolled-back'), ('local', 'rolled-back')")
        .execute(tx)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_writing_at_once_keep_the_chain_whole_and_never_skip_a_late_commit() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let first = Arc::clone(cluster.node(DINGCHENG));
    let url = cluster.members[DINGCHENG].config.database_url.clone();
    let store = Store::connect(&url, 8, Duration::from_secs(10)).await.unwrap();
    let second = Arc::new(Node::new(
        CountyCode::parse(DINGCHENG).unwrap(),
        store,
        Vec::new(),
        Limits::default(),
    ));

    // a transaction that took its id early and commits late: what was written after it waits
    let pool = database(first.store()).await;
    let mut slow = pool.begin().await.unwrap();
    append_audit_in(
        &mut slow,
        &AuditEntry {
            direction: "local".into(),
            outcome: "slow".into(),
            ..AuditEntry::default()
        },
    )
    .await
    .unwrap();
    write_records(&second, 3, "fast").await;
    let sealed_before = first
        .store()
        .audit_chain_end()
        .await
        .unwrap()
        .map_or(0, |end| end.position);
    let _ = first.seal_audit().await.unwrap();
    let fast_sealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_chain_positions c JOIN audit_log a ON a.id = c.audit_id WHERE a.outcome = 'fast'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        fast_sealed, 0,
        "records committed after a still-open transaction's wait for it"
    );
    slow.commit().await.unwrap();

    // both replicas write and seal at once
    let mut tasks = tokio::task::JoinSet::new();
    for (replica, node) in [("a", &first), ("b", &second)] {
        for writer in 0..4 {
            let node = Arc::clone(node);
            tasks.spawn(async move {
                for round in 0..15 {
                    let entries: Vec<AuditEntry> = (0..(round % 4 + 1))
                        .map(|_| AuditEntry {
                            direction: "local".into(),
                            outcome: format!("replica-{replica}-{writer}"),
                            ..AuditEntry::default()
                        })
                        .collect();
                    node.store().append_audit_batch(&entries).await.unwrap();
                }
            });
        }
        let node = Arc::clone(node);
        tasks.spawn(async move {
            for _ in 0..30 {
                node.seal_audit().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    seal_and_checkpoint(&first).await;

    let report = first.verify_audit_chain().await.unwrap();
    assert!(report.intact, "{report:?}");
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    let chained: i64 = sqlx::query_scalar("SELECT count(DISTINCT audit_id) FROM audit_chain_positions")
        .fetch_one(&pool)
        .await
        .unwrap();
    // the sealer may have run before the last few records of the cluster's own committed
    let pending = report.pending as i64;
    assert_eq!(
        chained + pending,
        records,
        "every committed record sealed exactly once, or pending"
    );
    assert_eq!(report.sealed_position as i64, chained);
    let slow_position: i64 = sqlx::query_scalar(
        "SELECT c.position FROM audit_chain_positions c JOIN audit_log a ON a.id = c.audit_id WHERE a.outcome = 'slow'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let fast_first: i64 = sqlx::query_scalar(
        "SELECT min(c.position) FROM audit_chain_positions c JOIN audit_log a ON a.id = c.audit_id WHERE a.outcome = 'fast'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        slow_position < fast_first,
        "the early transaction's record comes first"
    );
    assert!(slow_position as u64 > sealed_before);
    pool.close().await;
}

/// One status exchange: `caller` calls `callee` with its status and takes in the reply.
async fn exchange(cluster: &Cluster, caller: &str, callee: &str) {
    let node = Arc::clone(cluster.node(caller));
    let peer = CountyCode::parse(callee).unwrap();
    let link = node.peer_link(peer).expect("a link to the peer");
    PeerStatusWorker::new(node, peer, link)
        .run_once()
        .await
        .unwrap()
        .expect("the peer answered");
}

async fn held_of(node: &Node, peer: &str) -> hancha::store::audit_witness::PeerWitness {
    node.store()
        .peer_witness(Some(CountyCode::parse(peer).unwrap()))
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("a row for the peer")
}

/// Recomputes the whole chain after `tampered` was edited, as someone who knows the encoding
/// would, and drops the checkpoints that no longer match: the chain is consistent again.
async fn rewrite_consistently(node: &Node, pool: &PgPool) {
    admin(
        pool,
        "ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_no_update_or_delete",
    )
    .await;
    admin(
        pool,
        "ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_no_update_or_delete",
    )
    .await;
    let entries = node.store().audit_chain_page(0, 1_000_000).await.unwrap();
    // the head at each position (0 first), from the records as they are now
    let mut heads = vec![ChainHash::GENESIS];
    let mut leaves = Vec::new();
    for entry in &entries {
        let leaf = entry.record.clone().expect("record").leaf_v1();
        heads.push(heads.last().unwrap().then(&leaf));
        leaves.push(leaf);
    }
    let blocks: Vec<(i64, i64)> = sqlx::query_as("SELECT first_position, last_position FROM audit_chain")
        .fetch_all(pool)
        .await
        .unwrap();
    for (first, last) in blocks {
        let (first, last) = (first as usize, last as usize);
        let block_leaves: Vec<u8> = leaves[first - 1..last].iter().flat_map(|leaf| leaf.0).collect();
        sqlx::query(
            "UPDATE audit_chain SET leaves = $2, head_before = $3, head = $4 WHERE first_position = $1",
        )
        .bind(first as i64)
        .bind(block_leaves)
        .bind(heads[first - 1].0.to_vec())
        .bind(heads[last].0.to_vec())
        .execute(pool)
        .await
        .unwrap();
    }
    admin(pool, "DELETE FROM audit_checkpoints").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consistent_rewrite_is_caught_by_the_peer_holding_an_earlier_checkpoint() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let (dingcheng, xinhua) = (cluster.node(DINGCHENG), cluster.node(XINHUA));
    let ids = write_records(dingcheng, 20, "before").await;
    let shown = seal_and_checkpoint(dingcheng).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    let witness = held_of(xinhua, DINGCHENG).await;
    assert_eq!(
        witness.held.as_ref().unwrap().body.point,
        shown,
        "新化 holds 鼎城's checkpoint"
    );
    assert_eq!(
        held_of(dingcheng, XINHUA).await.holds_ours,
        Some(shown),
        "鼎城 knows what 新化 holds"
    );
    assert!(witness.fork.is_none());

    // 鼎城's database administrator edits a record and rewrites the chain to match
    let pool = database(dingcheng.store()).await;
    admin(
        &pool,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete",
    )
    .await;
    admin(
        &pool,
        &format!(
            "UPDATE audit_log SET reason = 'nothing happened' WHERE id = {}",
            ids[4]
        ),
    )
    .await;
    rewrite_consistently(dingcheng, &pool).await;
    write_records(dingcheng, 5, "after").await;
    seal_and_checkpoint(dingcheng).await;
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_eq!(
        (code, &report["intact"]),
        (0, &Value::Bool(true)),
        "locally consistent: {report}"
    );

    exchange(&cluster, XINHUA, DINGCHENG).await;
    let witness = held_of(xinhua, DINGCHENG).await;
    let (_, detail) = witness.fork.as_ref().expect("新化 saw the fork");
    assert!(detail.contains(&shown.position.to_string()), "{detail}");
    assert_eq!(
        witness.held.unwrap().body.point,
        shown,
        "it keeps what it was shown before"
    );
    assert!(
        xinhua.metrics().render().contains(&format!(
            "hancha_audit_peer_forks_total{{peer=\"{DINGCHENG}\"}} 1"
        )),
        "counted"
    );
    let forks = count(
        xinhua,
        "SELECT count(*) FROM audit_log WHERE outcome = 'audit_fork' AND peer_county = '430703'",
    )
    .await;
    assert_eq!(forks, 1, "audited once");
    let address = cluster.operator_address(XINHUA).to_string();
    let (code, text) = hancha_audit(&["peers", "--node", &address]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FORK") && text.contains(DINGCHENG), "{text}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_documented_restore_is_accepted_by_the_peer_and_an_undocumented_rewind_is_not() {
    let mut cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    write_records(cluster.node(DINGCHENG), 10, "backed-up").await;
    let backup = seal_and_checkpoint(cluster.node(DINGCHENG)).await;
    let pool = database(cluster.node(DINGCHENG).store()).await;
    let cursor: (i64, String, i64) = sqlx::query_as(
        "SELECT next_position, last_xid::text, last_id FROM sequencer_cursors WHERE stream = 'audit_log'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    write_records(cluster.node(DINGCHENG), 10, "lost").await;
    let latest = seal_and_checkpoint(cluster.node(DINGCHENG)).await;
    // the nodes' own status workers exchange too, and one of theirs may cross ours with an
    // offer made before: within a few exchanges the peer holds the latest checkpoint
    let mut held = None;
    for _ in 0..3 {
        exchange(&cluster, XINHUA, DINGCHENG).await;
        held = held_of(cluster.node(XINHUA), DINGCHENG)
            .await
            .held
            .map(|held| held.body.point);
        if held.as_ref() == Some(&latest) {
            break;
        }
    }
    assert_eq!(held, Some(latest));

    // the disk fails; the database comes back from the backup taken at `backup`
    cluster.stop(DINGCHENG).await;
    for table in ["audit_log", "audit_chain", "audit_checkpoints"] {
        admin(&pool, &format!("ALTER TABLE {table} DISABLE TRIGGER USER")).await;
    }
    admin(
        &pool,
        &format!(
            "DELETE FROM audit_log WHERE id NOT IN (SELECT audit_id FROM audit_chain_positions WHERE position <= {})",
            backup.position
        ),
    )
    .await;
    let block_ends_there: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit_chain WHERE last_position = $1)")
            .bind(backup.position as i64)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(block_ends_there, "the backup was taken between sealing batches");
    admin(
        &pool,
        &format!(
            "DELETE FROM audit_chain WHERE first_position > {}",
            backup.position
        ),
    )
    .await;
    admin(
        &pool,
        &format!(
            "DELETE FROM audit_checkpoints WHERE position > {}",
            backup.position
        ),
    )
    .await;
    sqlx::query("UPDATE sequencer_cursors SET next_position = $1, last_xid = $2::xid8, last_id = $3 WHERE stream = 'audit_log'")
        .bind(cursor.0)
        .bind(&cursor.1)
        .bind(cursor.2)
        .execute(&pool)
        .await
        .unwrap();
    for table in ["audit_log", "audit_chain", "audit_checkpoints"] {
        admin(&pool, &format!("ALTER TABLE {table} ENABLE TRIGGER USER")).await;
    }

    // back without the statement: to the peer that is a rewind like any tampering
    cluster.restart(DINGCHENG).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    let witness = held_of(cluster.node(XINHUA), DINGCHENG).await;
    assert!(witness.fork.is_some(), "a rewind without a statement is a fork");

    // the documented procedure: sign the resume statement, then carry on
    let config = cluster.config_file(DINGCHENG);
    let (code, text) = hancha_audit(&[
        "resume",
        "--config",
        config.to_str().unwrap(),
        "--from-checkpoint",
        &backup.position.to_string(),
        "--reason",
        "restored from the nightly backup after a disk failure",
        "--yes",
    ]);
    assert_eq!(code, 0, "{text}");
    let (code, stdout) = hancha_audit(&["verify", "--config", config.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "the restored chain is intact in itself: {stdout}");
    write_records(cluster.node(DINGCHENG), 3, "after-restore").await;
    let resumed = seal_and_checkpoint(cluster.node(DINGCHENG)).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;

    let witness = held_of(cluster.node(XINHUA), DINGCHENG).await;
    assert!(witness.fork.is_none(), "{:?}", witness.fork);
    assert!(witness.resumed_at.is_some());
    assert_eq!(
        witness.held.unwrap().body.point,
        resumed,
        "新化 holds the resumed history"
    );
    let accepted = count(
        cluster.node(XINHUA),
        "SELECT count(*) FROM audit_log WHERE outcome = 'audit_resumed'",
    )
    .await;
    assert_eq!(accepted, 1);
    let address = cluster.operator_address(XINHUA).to_string();
    let (code, text) = hancha_audit(&["peers", "--node", &address, "--json"]);
    assert_eq!(code, 0, "{text}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequencer_orders_by_transaction_id_as_a_number_not_as_text() {
    let fresh = fresh_database().await;
    let store = Store::connect(fresh.url(), 2, Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = database(&store).await;
    // identity values follow allocation: transaction 10's record got the lower id; as text "10"
    // sorts before "3", as a number after
    sqlx::query(
        "INSERT INTO audit_log (direction, outcome, written_by)
         VALUES ('local', 'second', '10'), ('local', 'first', '3')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let batch =
        hancha::store::sequencer::next_batch::<(i64,)>(&mut tx, hancha::store::sequencer::AUDIT_LOG, 10)
            .await
            .unwrap()
            .expect("the sequencer is free");
    tx.commit().await.unwrap();
    let mut outcomes = Vec::new();
    for sequenced in &batch {
        let outcome: String = sqlx::query_scalar("SELECT outcome FROM audit_log WHERE id = $1")
            .bind(sequenced.row_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        outcomes.push((sequenced.position, outcome));
    }
    assert_eq!(
        outcomes,
        vec![(1, "first".to_string()), (2, "second".to_string())]
    );
    pool.close().await;
    store.close().await;
}

/// What a peer shows when it offers `checkpoint` signed with `identity`'s key, first contact.
fn offered_by(identity: &NodeIdentity, checkpoint: Checkpoint) -> AuditStatus {
    let signature = sign_at(
        identity,
        AUDIT_CHECKPOINT_PURPOSE,
        &checkpoint.signed_bytes(),
        checkpoint.signed_at,
    )
    .unwrap();
    AuditStatus {
        offer: Some(Offer {
            checkpoint: Signed {
                body: checkpoint,
                signature: Signature {
                    scheme: signature.algorithm.as_str().to_string(),
                    bytes: signature.value.clone(),
                    certificate: signature.certificates_der(),
                },
            },
            extension: None,
            resume: None,
        }),
        holds_yours: None,
    }
}

/// A checkpoint claiming to be `county`'s, signed now.
fn checkpoint_of(county: &str, position: u64) -> Checkpoint {
    Checkpoint {
        county: county.to_string(),
        point: ChainPoint {
            position,
            head: ChainHash([7; 32]),
        },
        signed_at: Utc::now().trunc_subsecs(0),
    }
}

/// The reasons of the refusals of `peer`'s checkpoints audited on `node`.
async fn refusals(node: &Node, peer: &str) -> Vec<String> {
    let pool = database(node.store()).await;
    let reasons = sqlx::query_scalar(
        "SELECT reason FROM audit_log WHERE outcome = 'audit_checkpoint_refused' AND peer_county = $1 ORDER BY id",
    )
    .bind(peer)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    reasons
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_checkpoint_signed_under_a_ca_we_do_not_trust_is_refused_and_audited_once() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;
    let xinhua = cluster.node(XINHUA);
    let dingcheng = CountyCode::parse(DINGCHENG).unwrap();
    let stranger_ca = TestPki::with_common_name("a CA 新化 does not trust").unwrap();
    let forged = offered_by(
        &stranger_ca.county_identity(DINGCHENG).unwrap(),
        checkpoint_of(DINGCHENG, 5),
    );
    for _ in 0..2 {
        xinhua.record_peer_audit(dingcheng, &forged).await.unwrap();
    }
    assert!(
        xinhua
            .store()
            .held_peer_checkpoint(dingcheng)
            .await
            .unwrap()
            .is_none(),
        "a refused checkpoint witnesses nothing"
    );
    let reasons = refusals(xinhua, DINGCHENG).await;
    assert_eq!(reasons.len(), 1, "the same refusal is audited once: {reasons:?}");
    assert!(
        reasons[0].contains("checkpoint 5") && reasons[0].contains("not issued by a CA this node trusts"),
        "{reasons:?}"
    );

    // the same checkpoint signed under the CA 新化 trusts is held
    let genuine = offered_by(
        &cluster.pki.county_identity(DINGCHENG).unwrap(),
        checkpoint_of(DINGCHENG, 5),
    );
    xinhua.record_peer_audit(dingcheng, &genuine).await.unwrap();
    let held = xinhua.store().held_peer_checkpoint(dingcheng).await.unwrap();
    assert_eq!(held.expect("held").checkpoint.point.position, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_checkpoint_naming_another_county_than_the_peers_certificate_is_refused() {
    let cluster = Cluster::start(&[XINHUA], &[]).await;
    let xinhua = cluster.node(XINHUA);
    let dingcheng = CountyCode::parse(DINGCHENG).unwrap();
    // 邵东市's own checkpoint, trusted certificate and all, passed off by 鼎城区 as its own
    let shaodong = cluster.pki.county_identity(SHAODONG).unwrap();
    xinhua
        .record_peer_audit(dingcheng, &offered_by(&shaodong, checkpoint_of(SHAODONG, 3)))
        .await
        .unwrap();
    // a checkpoint claiming to be 鼎城区's, signed with 邵东市's key
    xinhua
        .record_peer_audit(dingcheng, &offered_by(&shaodong, checkpoint_of(DINGCHENG, 4)))
        .await
        .unwrap();
    assert!(
        xinhua
            .store()
            .held_peer_checkpoint(dingcheng)
            .await
            .unwrap()
            .is_none()
    );
    let reasons = refusals(xinhua, DINGCHENG).await;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains(&format!("it is signed by {SHAODONG}, not by {DINGCHENG}")),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains(&format!(
            "the signature says it is by {DINGCHENG}, but its certificate is {SHAODONG}'s"
        )),
        "{reasons:?}"
    );
}

/// Puts a new certificate for `county` (valid until `not_after`) in its files and reloads.
async fn rotate(cluster: &Cluster, county: &str, not_after: chrono::DateTime<Utc>) -> Vec<u8> {
    let (cert, key) = cluster
        .pki
        .issue_county(county, Utc::now() - TimeDelta::hours(1), not_after)
        .unwrap();
    let tls = &cluster.members[county].config.tls;
    std::fs::write(&tls.certificate, &cert).unwrap();
    std::fs::write(&tls.private_key, &key).unwrap();
    let running = cluster.members[county].running.as_ref().expect("running");
    let outcome = running.reload_tls(true).await;
    assert!(matches!(outcome, ReloadOutcome::Reloaded { .. }), "{outcome:?}");
    CertificateDer::from_pem_slice(cert.as_bytes()).unwrap().to_vec()
}

/// The certificate (DER, with any intermediates) that signed `node`'s newest checkpoint.
async fn newest_checkpoint_certificate(node: &Node) -> Vec<u8> {
    node.store()
        .audit_checkpoint(None)
        .await
        .unwrap()
        .expect("a checkpoint")
        .signature
        .certificate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_certificate_rotation_checkpoints_are_signed_with_the_new_one_and_the_chain_stays_intact() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let (dingcheng, xinhua) = (cluster.node(DINGCHENG), cluster.node(XINHUA));
    write_records(dingcheng, 5, "first-certificate").await;
    seal_and_checkpoint(dingcheng).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    let first = newest_checkpoint_certificate(dingcheng).await;

    // a short-lived certificate: the checkpoint it signs must outlive it
    let lifetime = TimeDelta::seconds(20);
    let short_lived = rotate(&cluster, DINGCHENG, Utc::now() + lifetime).await;
    write_records(dingcheng, 5, "short-lived-certificate").await;
    let signed_short = seal_and_checkpoint(dingcheng).await;
    assert_eq!(
        newest_checkpoint_certificate(dingcheng).await,
        short_lived,
        "signed with the certificate in force, not the one the node started with"
    );
    assert_ne!(short_lived, first);
    exchange(&cluster, XINHUA, DINGCHENG).await;
    assert_eq!(
        held_of(xinhua, DINGCHENG).await.held.unwrap().body.point,
        signed_short,
        "新化 checks it against its anchors on receipt and holds it"
    );

    // once that certificate has expired, the checkpoint it signed still verifies: it was valid
    // when it signed
    tokio::time::sleep((lifetime + TimeDelta::seconds(2)).to_std().unwrap()).await;
    let report = dingcheng.verify_audit_chain().await.unwrap();
    assert!(report.intact, "{report:?}");
    assert!(report.last_checkpoint.unwrap().signature_valid);

    let renewed = rotate(&cluster, DINGCHENG, Utc::now() + TimeDelta::days(1)).await;
    write_records(dingcheng, 5, "renewed-certificate").await;
    let signed_renewed = seal_and_checkpoint(dingcheng).await;
    assert_eq!(newest_checkpoint_certificate(dingcheng).await, renewed);
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["last_checkpoint"]["signature_valid"], true, "{report}");
    exchange(&cluster, XINHUA, DINGCHENG).await;
    let witness = held_of(xinhua, DINGCHENG).await;
    assert!(witness.fork.is_none(), "{:?}", witness.fork);
    assert_eq!(witness.held.unwrap().body.point, signed_renewed);
    assert!(refusals(xinhua, DINGCHENG).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_whose_chain_can_no_longer_prove_what_we_hold_is_reported_as_forked() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let (dingcheng, xinhua) = (cluster.node(DINGCHENG), cluster.node(XINHUA));
    let ids = write_records(dingcheng, 20, "before").await;
    let shown = seal_and_checkpoint(dingcheng).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    assert_eq!(held_of(xinhua, DINGCHENG).await.held.unwrap().body.point, shown);

    // 鼎城's administrator rewrites the chain and removes the position 新化 holds, so that no
    // extension can start there
    let pool = database(dingcheng.store()).await;
    admin(
        &pool,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete",
    )
    .await;
    admin(
        &pool,
        &format!(
            "UPDATE audit_log SET reason = 'nothing happened' WHERE id = {}",
            ids[4]
        ),
    )
    .await;
    write_records(dingcheng, 5, "after").await;
    seal_and_checkpoint(dingcheng).await;
    rewrite_consistently(dingcheng, &pool).await;
    admin(
        &pool,
        &format!(
            "DELETE FROM audit_chain WHERE first_position <= {0} AND last_position >= {0}",
            shown.position
        ),
    )
    .await;
    seal_and_checkpoint(dingcheng).await;

    let limit = xinhua.limits().audit_unproven_exchanges;
    for n in 1..limit {
        exchange(&cluster, XINHUA, DINGCHENG).await;
        let witness = held_of(xinhua, DINGCHENG).await;
        assert!(witness.fork.is_none(), "not yet a fork after {n} exchanges");
        assert_eq!(witness.unproven.expect("unproven counted").exchanges, n);
    }
    exchange(&cluster, XINHUA, DINGCHENG).await;
    let witness = held_of(xinhua, DINGCHENG).await;
    let (_, detail) = witness.fork.as_ref().expect("新化 reports the silence as a fork");
    assert!(detail.contains("without proof"), "{detail}");
    assert_eq!(witness.held.unwrap().body.point, shown, "it keeps what it holds");
    assert!(
        xinhua.metrics().render().contains(&format!(
            "hancha_audit_peer_forks_total{{peer=\"{DINGCHENG}\"}} 1"
        )),
        "counted"
    );
    let forks = count(
        xinhua,
        "SELECT count(*) FROM audit_log WHERE outcome = 'audit_fork' AND peer_county = '430703'",
    )
    .await;
    assert_eq!(forks, 1, "audited once");
    let address = cluster.operator_address(XINHUA).to_string();
    let (code, text) = hancha_audit(&["peers", "--node", &address]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FORK") && text.contains(DINGCHENG), "{text}");
    pool.close().await;
}

/// A record appended to the chain a second time, with hashes that follow on: every position
/// checks out, yet the record is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_bound_at_two_positions_is_named() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.node(DINGCHENG);
    let ids = write_records(node, 5, "once").await;
    seal_and_checkpoint(node).await;
    assert_eq!(verify_json(&cluster, DINGCHENG).0, 0);

    let pool = database(node.store()).await;
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE audit_chain IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO audit_chain (first_position, last_position, encoding, audit_ids, leaves, head_before, head)
         SELECT c.last_position + 1, c.last_position + 1, 1, ARRAY[p.audit_id], p.leaf, c.head, sha256(c.head || p.leaf)
         FROM (SELECT * FROM audit_chain ORDER BY first_position DESC LIMIT 1) c,
              (SELECT audit_id, leaf FROM audit_chain_positions WHERE audit_id = $1) p",
    )
    .bind(ids[2])
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_broken_at(
        code,
        &report,
        None,
        ids[2],
        "bound at more than one chain position",
    );
    pool.close().await;
}

/// A block put in far past the chain's end: verify names the missing stretch at once rather than
/// walking it page by page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_block_far_past_the_end_is_named_at_once() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.node(DINGCHENG);
    let ids = write_records(node, 3, "near").await;
    let end = seal_and_checkpoint(node).await;
    let pool = database(node.store()).await;
    let far: i64 = 1 << 50;
    sqlx::query(
        "INSERT INTO audit_chain (first_position, last_position, encoding, audit_ids, leaves, head_before, head)
         SELECT $2, $2, 1, ARRAY[audit_id], leaf, leaf, leaf FROM audit_chain_positions WHERE audit_id = $1",
    )
    .bind(ids[0])
    .bind(far)
    .execute(&pool)
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_eq!(code, 1, "{report}");
    // (the node's own records may have been sealed after `end` before the block went in)
    let missing_from = report["first_broken"]["position"].as_u64().unwrap();
    assert!(
        missing_from > end.position && missing_from < far as u64,
        "{report}"
    );
    assert!(
        report["first_broken"]["problem"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{report}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "verify walked the gap"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_claiming_a_transaction_not_yet_started_is_reported_not_left_pending() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.node(DINGCHENG);
    write_records(node, 5, "before").await;
    seal_and_checkpoint(node).await;
    assert_eq!(verify_json(&cluster, DINGCHENG).0, 0);

    // no trigger stops this insert: the record says a far-future transaction wrote it, so the
    // sequencer would wait for that transaction forever
    let pool = database(node.store()).await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (direction, outcome, written_by)
         VALUES ('local', 'hidden', (pg_current_xact_id()::text::bigint + 1000000000)::text::xid8)
         RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    node.seal_audit().await.unwrap();
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_broken_at(
        code,
        &report,
        None,
        id,
        "claims a transaction that has not started",
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chain_tables_refuse_truncate_and_verify_reports_checkpoints_gone() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let node = cluster.node(DINGCHENG);
    let pool = database(node.store()).await;
    for table in ["audit_chain", "audit_checkpoints", "audit_resumes"] {
        let error = sqlx::query(&format!("TRUNCATE {table}"))
            .execute(&pool)
            .await
            .expect_err("TRUNCATE is refused");
        assert!(error.to_string().contains("append-only"), "{table}: {error}");
    }

    // enough records that a checkpoint must exist, sealed and checkpointed as the node does
    let threshold = hancha::node::audit::CHECKPOINT_GAP_LIMIT as usize + 100;
    write_records(node, threshold, "bulk").await;
    seal_and_checkpoint(node).await;
    assert_eq!(verify_json(&cluster, DINGCHENG).0, 0);

    // an administrator switches the trigger off and empties the checkpoints
    admin(
        &pool,
        "ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_no_truncate",
    )
    .await;
    admin(&pool, "TRUNCATE audit_checkpoints").await;
    let (code, report) = verify_json(&cluster, DINGCHENG);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["intact"], false, "{report}");
    let problem = report["first_broken"]["problem"].as_str().unwrap();
    assert!(problem.contains("no signed checkpoint"), "{report}");

    // the running node signs a new checkpoint at the end of the chain: that does not hide
    // that the ones before it are gone
    write_records(node, 1, "after").await;
    let resigned = seal_and_checkpoint(node).await;
    let (code, report) = verify_json(&cluster, DINGCHENG);
    let newest = report["last_checkpoint"]["position"].as_u64().unwrap();
    assert!(newest >= resigned.position, "{report}");
    assert_eq!(code, 1, "{report}");
    let problem = report["first_broken"]["problem"].as_str().unwrap();
    assert!(problem.contains("have no signed checkpoint"), "{report}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_1_only_when_broken_2_for_unusable_input_and_3_when_the_database_is_unavailable() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    write_records(cluster.node(DINGCHENG), 3, "some").await;
    seal_and_checkpoint(cluster.node(DINGCHENG)).await;
    let config = cluster.config_file(DINGCHENG);
    let text = std::fs::read_to_string(&config).unwrap();
    let (code, out) = hancha_audit(&["verify", "--config", config.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "intact: {out}");

    let variant = |name: &str, from: &str, to: &str| {
        let line = text
            .lines()
            .find(|line| line.starts_with(from))
            .unwrap_or_else(|| panic!("{from} in {text}"));
        let path = cluster.path().join(name);
        std::fs::write(
            &path,
            text.replace(line, &format!("{from} = {}", toml::Value::String(to.into()))),
        )
        .unwrap();
        path
    };
    let no_anchors = variant("no-anchors.toml", "trust_anchors", "/nonexistent/anchors.pem");
    let (code, out) = hancha_audit(&["verify", "--config", no_anchors.to_str().unwrap(), "--json"]);
    assert_eq!(
        code, 2,
        "an unreadable anchors file is unusable input, not a broken chain: {out}"
    );
    let missing = cluster.path().join("missing.toml");
    let (code, out) = hancha_audit(&["verify", "--config", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "a missing configuration is unusable input: {out}");

    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let no_database = variant(
        "no-database.toml",
        "database_url",
        &format!("postgres://hancha@127.0.0.1:{port}/hancha"),
    );
    let (code, out) = hancha_audit(&["verify", "--config", no_database.to_str().unwrap(), "--json"]);
    assert_eq!(
        code, 3,
        "an unreachable database is unavailable, not a broken chain: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_far_behind_is_sent_a_checkpoint_within_the_leaf_limit_and_catches_up() {
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let (dingcheng, xinhua) = (cluster.node(DINGCHENG), cluster.node(XINHUA));
    write_records(dingcheng, 10, "early").await;
    let shown = seal_and_checkpoint(dingcheng).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    assert_eq!(held_of(xinhua, DINGCHENG).await.held.unwrap().body.point, shown);

    // far more records than one extension carries, sealed with no checkpoint among them (as
    // while a node had no county key), then one checkpoint at the end
    let limit = hancha::domain::audit_chain::MAX_EXTENSION_LEAVES;
    write_records(dingcheng, limit as usize + 500, "bulk").await;
    eventually("every record sealed, without checkpoints", || async {
        dingcheng
            .store()
            .seal_audit(5000, &mut |_, _| None)
            .await
            .unwrap();
        let (pending, _) = dingcheng.store().audit_unsealed().await.unwrap();
        (pending == 0).then_some(())
    })
    .await;
    let end = dingcheng
        .checkpoint_audit(true)
        .await
        .unwrap()
        .expect("a checkpoint at the end");
    assert!(end.position > shown.position + limit);

    // the status exchange still goes through (the test's exchange insists the peer answered),
    // and 新化 moves to a checkpoint at the limit, then to the end
    exchange(&cluster, XINHUA, DINGCHENG).await;
    let witness = held_of(xinhua, DINGCHENG).await;
    assert_eq!(
        witness.held.unwrap().body.point.position,
        shown.position + limit,
        "a checkpoint signed at the limit"
    );
    assert!(witness.fork.is_none());
    exchange(&cluster, XINHUA, DINGCHENG).await;
    exchange(&cluster, XINHUA, DINGCHENG).await;
    assert_eq!(held_of(xinhua, DINGCHENG).await.held.unwrap().body.point, end);
}
