//! The evidence step's audit chain: on each county node, what is pending is sealed now (the
//! sealer worker's step, called directly rather than waited for), the chain is verified as
//! `hancha audit verify` does, and each peer is shown to hold a signed checkpoint of it (the
//! peer-status exchange, woken now). Then the demo does what a database administrator could:
//! changes one sealed record of 鼎城区 behind the node's back, shows the verification naming the
//! place, and puts the record back.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use super::cluster::Cluster;
use super::{COUNTIES, DINGCHENG, county_name, thousands};
use crate::domain::division::CountyCode;
use crate::domain::time::china_time;
use crate::node::Node;

/// How long the step waits for a peer to hold a checkpoint of ours, or for the sealer to be free.
const PATIENCE: Duration = Duration::from_secs(20);

/// How often the status exchange is woken again while waiting for a witness.
const NUDGE: Duration = Duration::from_secs(1);

/// Seals, verifies and has witnessed each county's chain, then tampers with 鼎城区's and
/// repairs it. Returns whether every chain was intact, every checkpoint held by every peer, and
/// the tampering detected at the place changed.
pub async fn audit_chains(cluster: &Cluster) -> anyhow::Result<bool> {
    println!(
        "  the audit log, sealed into a hash chain with checkpoints signed by the county key (`hancha audit verify`, `hancha audit peers`):"
    );
    let mut holds = true;
    for county in COUNTIES {
        holds &= seal_verify_and_witness(cluster, county).await?;
    }
    holds &= tamper_and_repair(cluster.node(DINGCHENG)).await?;
    Ok(holds)
}

/// One county: seal, verify, then wait for each peer to hold our newest checkpoint.
async fn seal_verify_and_witness(cluster: &Cluster, county: &str) -> anyhow::Result<bool> {
    let node = cluster.node(county);
    let sealed = seal_now(node).await?;
    // a checkpoint at the very end of the chain, not only when the next one is due
    node.checkpoint_audit(true)
        .await
        .context("signing an audit checkpoint")?;
    let report = node
        .verify_audit_chain()
        .await
        .context("verifying the audit chain")?;
    let Some(checkpoint) = &report.last_checkpoint else {
        println!(
            "    {}: {} rows checked, no checkpoint signed: this node has no county key",
            county_name(county),
            thousands(report.rows_checked)
        );
        return Ok(false);
    };
    println!(
        "    {}: sealed {} pending records now; {} rows checked: {}; last checkpoint at position {}, signed {}, signature {}",
        county_name(county),
        thousands(sealed as u64),
        thousands(report.rows_checked),
        match &report.first_broken {
            None if report.intact => "intact".to_string(),
            None => "NOT intact".to_string(),
            Some(broken) => format!("broken at {broken}"),
        },
        thousands(checkpoint.position),
        local_time(&checkpoint.signed_at),
        if checkpoint.signature_valid {
            "valid"
        } else {
            "INVALID"
        }
    );
    let mut witnessed = true;
    for peer in COUNTIES.into_iter().filter(|peer| has_agreement(node, peer)) {
        witnessed &= wait_for_witness(cluster, county, peer, checkpoint.position).await?;
    }
    Ok(report.intact && checkpoint.signature_valid && witnessed)
}

/// Runs the sealer's step until it finds the sequencer free (the node's own sealer may be
/// sealing); how many records it sealed.
async fn seal_now(node: &std::sync::Arc<Node>) -> anyhow::Result<usize> {
    let started = Instant::now();
    loop {
        let report = crate::workers::audit_sealer::run_once(node)
            .await
            .context("sealing the audit records")?;
        if !report.busy {
            return Ok(report.sealed);
        }
        if started.elapsed() > PATIENCE {
            bail!("the audit sequencer stayed busy for {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `node` holds an agreement with `peer`.
fn has_agreement(node: &Node, peer: &str) -> bool {
    CountyCode::parse(peer).is_ok_and(|peer| node.agreements().with_peer(peer).next().is_some())
}

/// Wakes `county`'s status exchange until `peer`'s database holds a checkpoint of `county` at
/// `position` or later; prints it. `false` when it does not within [`PATIENCE`].
async fn wait_for_witness(
    cluster: &Cluster,
    county: &str,
    peer: &str,
    position: u64,
) -> anyhow::Result<bool> {
    let ours = CountyCode::parse(county)?;
    let started = Instant::now();
    loop {
        cluster.node(county).wake_status();
        let nudged = Instant::now();
        while nudged.elapsed() < NUDGE {
            let held = cluster
                .node(peer)
                .store()
                .held_peer_checkpoint(ours)
                .await
                .context("reading what the peer holds of our chain")?;
            if let Some(held) = held.filter(|held| held.checkpoint.point.position >= position) {
                println!(
                    "      {} holds our checkpoint at position {}, signed {} (witnessed over the status exchange)",
                    county_name(peer),
                    thousands(held.checkpoint.point.position),
                    china_time(held.checkpoint.signed_at).format("%H:%M:%S")
                );
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if started.elapsed() > PATIENCE {
            println!(
                "      ✗ {} did not hold our checkpoint at position {} within {} s",
                county_name(peer),
                thousands(position),
                PATIENCE.as_secs()
            );
            return Ok(false);
        }
    }
}

/// Changes one sealed record of `node` as a database administrator could, verifies, puts the
/// record back and verifies again. Whether the change was found where it was made and the chain
/// is intact again.
async fn tamper_and_repair(node: &std::sync::Arc<Node>) -> anyhow::Result<bool> {
    let store = node.store();
    let sealed = node.verify_audit_chain().await?.sealed_position;
    let position = (sealed / 2).max(1);
    let entry = store
        .audit_chain_page(position - 1, position)
        .await?
        .into_iter()
        .next()
        .with_context(|| format!("no audit record at position {position}"))?;
    let record = entry.record.context("the record at that position")?;
    let forged = if record.outcome == "rejected" {
        "accepted"
    } else {
        "rejected"
    };
    let Some(original) = store.overwrite_audit_outcome(entry.audit_id, forged).await? else {
        bail!("audit record {} vanished", entry.audit_id);
    };
    println!(
        "  what the demo did next, as 鼎城区's database administrator could: switched the audit log's append-only trigger off, changed record {} (position {}, {} {}) to outcome \"{forged}\", switched the trigger on again",
        entry.audit_id, position, record.direction, original
    );
    let broken = node.verify_audit_chain().await?;
    let found_there = !broken.intact
        && broken
            .first_broken
            .as_ref()
            .is_some_and(|b| b.position == Some(position) && b.audit_id == Some(entry.audit_id));
    match &broken.first_broken {
        Some(first) if !broken.intact => {
            println!("    verified as `hancha audit verify` does: broken at {first}")
        }
        _ => println!("    ✗ `hancha audit verify` on 鼎城区 did not see the change"),
    }
    store
        .overwrite_audit_outcome(entry.audit_id, &original)
        .await?
        .context("putting the record back")?;
    let repaired = node.verify_audit_chain().await?;
    println!(
        "    the original outcome \"{original}\" put back: {} rows checked, {}",
        thousands(repaired.rows_checked),
        if repaired.intact {
            "intact again"
        } else {
            "✗ still broken"
        }
    );
    Ok(found_there && repaired.intact)
}

/// An RFC 3339 time as China time, to the second.
fn local_time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|at| china_time(at.with_timezone(&Utc)).format("%H:%M:%S").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}
