//! ⑨ The evidence step: what a county operator can stand behind once the exchange is over, read
//! from the running nodes: who signed each agreement version in force and that each signature
//! verified when the version was applied; each county's audit chain sealed, intact and held by
//! its peers, and a change behind the node's back found ([`super::audit`]); a node certificate
//! renewed without a restart ([`super::rotation`]); and how long personal data is kept.

use anyhow::Context;
use chrono::Utc;

use super::cluster::Cluster;
use super::files::Scratch;
use super::{COUNTIES, DINGCHENG, county_name, thousands};
use crate::domain::time::{china_date, china_time};
use crate::store::personal::{AtRetention, PERSONAL_COLUMNS};

/// The tables whose rows are an exchange's messages, erased at the end of retention.
const MESSAGE_TABLES: [&str; 4] = ["inquiries", "confirmations", "notices", "feedback"];

/// Every table erasure records rows of.
const ERASED_TABLES: [&str; 4] = ["inquiries", "confirmations", "notices", "reconcile_differences"];

/// ⑨ The evidence. Returns whether it all holds: every version in force signed by both
/// counties with verified signatures, every audit chain intact and witnessed, the tampering
/// found, and the renewed certificate in use.
pub async fn evidence(cluster: &Cluster, scratch: &Scratch) -> anyhow::Result<bool> {
    println!("⑨ 证据 evidence: what a county operator can stand behind");
    let signed = signatures(cluster).await?;
    let chains = super::audit::audit_chains(cluster).await?;
    let rotated = super::rotation::renew_certificate(cluster, scratch).await?;
    retention(cluster).await?;
    println!();
    Ok(signed && chains && rotated)
}

/// Each agreement version in force at 鼎城区 (party to both agreements), who signed it and when,
/// and whether each signature verified when the version was applied here and at the peer.
async fn signatures(cluster: &Cluster) -> anyhow::Result<bool> {
    println!(
        "  agreement versions in force at 鼎城区, each signed by both counties (`hancha agreement show`):"
    );
    let store = cluster.node(DINGCHENG).store();
    let today = china_date(Utc::now());
    let mut all = true;
    let in_force = store.agreements().await?.into_iter().filter(|version| {
        version.retired_at.is_none() && version.valid_from <= today && today <= version.valid_until
    });
    for version in in_force {
        let here = store
            .agreement_signatures(&version.agreement_id, &version.hash)
            .await?;
        let peer = version.peer_county.as_str();
        let there = cluster
            .node(peer)
            .store()
            .agreement_signatures(&version.agreement_id, &version.hash)
            .await
            .with_context(|| format!("reading the signatures held by {peer}"))?;
        let signers: Vec<String> = here
            .iter()
            .map(|signature| {
                format!(
                    "{} signed {}, {}",
                    county_name(signature.signer_county.as_str()),
                    china_time(signature.signed_at).format("%Y-%m-%d %H:%M:%S"),
                    if signature.verified() {
                        format!(
                            "verified {}",
                            china_time(signature.verified_at).format("%H:%M:%S")
                        )
                    } else {
                        format!("✗ refused: {}", signature.outcome)
                    }
                )
            })
            .collect();
        let both_parties = [DINGCHENG, peer].iter().all(|party| {
            here.iter()
                .any(|s| s.signer_county.as_str() == *party && s.verified())
        });
        let peer_verified = !there.is_empty() && there.iter().all(|s| s.verified());
        all &= version.signed_by_all && both_parties && peer_verified;
        println!(
            "    {} version {} (valid to {}): {}; {} verified both too {}",
            version.agreement_id,
            version.version,
            version.valid_until,
            signers.join("; "),
            county_name(peer),
            if both_parties && peer_verified {
                "✓"
            } else {
                "✗"
            }
        );
    }
    Ok(all)
}

/// Each agreement's retention period, what erasure takes and keeps, and each node's erasure
/// worker: a step run now, and when the first erasure falls due.
async fn retention(cluster: &Cluster) -> anyhow::Result<()> {
    let mut erased: Vec<&str> = Vec::new();
    for column in PERSONAL_COLUMNS
        .iter()
        .filter(|c| MESSAGE_TABLES.contains(&c.table) && c.at_retention != AtRetention::Kept)
    {
        if !erased.contains(&column.holds) {
            erased.push(column.holds);
        }
    }
    println!(
        "  personal data kept no longer than agreed (PIPL Art. 19, 47): once an exchange is older than its agreement's retention_days, its messages lose {}; they keep their ids, kinds, states, times and keyed tags, and table erasures records each erasure (never a value)",
        erased.join(", ")
    );
    let book = cluster.node(DINGCHENG).agreements();
    for agreement in book.current_versions() {
        println!(
            "    {} version {}: retention_days {}",
            agreement.id(),
            agreement.version(),
            agreement.retention_days()
        );
    }
    for county in COUNTIES {
        let node = cluster.node(county);
        let before = erasures(cluster, county).await?;
        let now = Utc::now();
        crate::workers::retention::run_once(node, now)
            .await
            .context("running the erasure step")?;
        let after = erasures(cluster, county).await?;
        let worker = cluster
            .workers(county)
            .get("retention")
            .map(|state| if state.running { "running" } else { "stopped" })
            .unwrap_or("not supervised");
        let mut due = Vec::new();
        for agreement in node.agreements().current_versions() {
            if let Some(oldest) = node.store().oldest_kept_exchange(agreement.id()).await? {
                let at = oldest + chrono::Duration::days(i64::from(agreement.retention_days()));
                due.push((at, oldest));
            }
        }
        let next = due
            .iter()
            .min()
            .map(|(at, oldest)| {
                let age = (now - *oldest).num_seconds().max(0);
                let age = if age < 120 {
                    format!("{age} s")
                } else {
                    format!("{} min", age / 60)
                };
                format!(
                    "the oldest exchange closed {age} ago, its personal data goes {}",
                    china_time(*at).format("%Y-%m-%d")
                )
            })
            .unwrap_or_else(|| "no closed exchange yet".into());
        let step = match after.saturating_sub(before) {
            0 => format!("a step run now erased nothing: none is past its period ({next})"),
            rows => format!("a step run now erased {} rows past their period", thousands(rows)),
        };
        println!(
            "    {}: erasure worker {worker}; {step}; rows erased so far {}",
            county_name(county),
            thousands(after)
        );
    }
    Ok(())
}

/// Rows `county` has recorded as erased.
async fn erasures(cluster: &Cluster, county: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for table in ERASED_TABLES {
        total += cluster
            .node(county)
            .store()
            .erasures_recorded(table)
            .await?
            .unsigned_abs();
    }
    Ok(total)
}
