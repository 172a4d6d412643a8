//! `hancha audit`: check the tamper-evident audit chain (`verify`), see what each peer showed of
//! its chain (`peers`), and, after a restore from backup, sign the statement that the chain
//! continues from a checkpoint (`resume`).
//!
//! `verify` and `peers` run directly against the node's database (`--config`, or
//! `HANCHA_CONFIG`), or through a running node's operator API with `--node HOST:PORT` (over
//! mutual TLS with the `HANCHA_OPERATOR_*` / `HANCHA_NODE_*` settings of the other commands).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::exit::{Exit, NodeUnavailable, UnusableFile, of_error};
use crate::config::NodeConfig;
use crate::node::audit::{resume_chain, verify_chain};
use crate::operator::audit::{peers_to_wire, report_to_wire};
use crate::present::explain;
use crate::proto::operator as pb;
use crate::store::Store;
use crate::tls::{NodeIdentity, Revocation, TrustAnchors};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole audit chain against the audit records: every sealed record unchanged,
    /// none removed, put in or moved, every checkpoint on the chain, the newest checkpoint's
    /// signature (its certificate must name this county and chain to the trust anchors, and
    /// have been valid when it signed: a certificate rotated or expired since does not break
    /// the chain). Prints the rows checked, the last checkpoint and the first broken place.
    ///
    /// With --config, the trust anchors are the configuration's `tls.trust_anchors` and the
    /// CRLs its `tls.crls` (a revoked certificate fails the check); with --node, those the
    /// running node has in force.
    ///
    /// Exit codes: 0 intact; 1 broken (the first broken place is named), and only then; 2 the
    /// check could not start: the configuration, the trust anchors file or the operator
    /// certificates cannot be used; 3 the node or its database could not be reached or could not
    /// read the chain (nothing was checked: run it again).
    Verify(VerifyArgs),
    /// What each peer showed of its audit chain: the checkpoint of it we hold, which of ours it
    /// holds, a resume it made after a restore, and a fork (its history no longer extends what it
    /// showed before).
    ///
    /// Exit codes: 0 no fork, 1 some peer's history forked.
    Peers(PeersArgs),
    /// After restoring the database from a backup (or an asynchronous failover that lost the
    /// newest records): sign, with the county key, the statement that the audit chain continues
    /// from a checkpoint of the restored database. Peers holding a later checkpoint accept the
    /// rewound history on the strength of it, once; without it they report a fork. Run it once
    /// per restore, before the node talks to peers again (see README "Audit chain").
    Resume(ResumeArgs),
}

/// Where the chain is read: the database of a node's configuration, or a running node.
#[derive(Debug, Args)]
pub struct Target {
    /// The node configuration (TOML): read its database directly.
    #[arg(long, env = "HANCHA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// A running node's operator API instead (takes precedence over --config).
    #[arg(long, value_name = "HOST:PORT")]
    node: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: Target,
    /// Print one JSON object (rows_checked, intact, first_broken, ...) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PeersArgs {
    #[command(flatten)]
    target: Target,
    /// Print one JSON object per peer instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The node configuration (TOML): its database and its county key.
    #[arg(long, env = "HANCHA_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// The checkpoint position the chain continues from (default: the newest checkpoint in the
    /// restored database).
    #[arg(long, value_name = "POSITION")]
    from_checkpoint: Option<u64>,
    /// Why, for the record (e.g. "restored from the backup of 2026-03-01 after disk failure").
    #[arg(long)]
    reason: String,
    /// Do it: a resume statement cannot be taken back.
    #[arg(long)]
    yes: bool,
}

pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            AuditCommand::Verify(args) => verify(args).await,
            AuditCommand::Peers(args) => peers(args).await,
            AuditCommand::Resume(args) => resume(args).await,
        }
    })
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // exit 1 means broken and nothing else: what keeps the check from running at all is 2
    // (unusable configuration or anchors) or 3 (the node or its database unavailable)
    let report = match &args.target.node {
        Some(address) => {
            let mut client =
                node(address)
                    .map_err(unusable)?
                    .connect()
                    .await
                    .map_err(|error| match of_error(&error) {
                        Exit::NodeUnavailable => error,
                        _ => unusable(error),
                    })?;
            client
                .verify_audit(pb::VerifyAuditRequest {})
                .await
                .map_err(|status| {
                    let error = explain(status);
                    match of_error(&error) {
                        Exit::NodeUnavailable => error,
                        _ => NodeUnavailable(format!("the node could not check its audit chain: {error:#}"))
                            .into(),
                    }
                })?
                .into_inner()
        }
        None => {
            let config = config(&args.target).map_err(unusable)?;
            let anchors = TrustAnchors::from_pem_file(&config.tls.trust_anchors)
                .context("loading the trust anchors to check the checkpoint's signature with")
                .map_err(unusable)?
                .with_revocation(
                    Revocation::from_files(&config.tls.crls, config.tls.crl_grace)
                        .context("loading the CRLs (tls.crls) to check the checkpoint's signature with")
                        .map_err(unusable)?,
                );
            let store = connect(&config).await?;
            // a configured node always has its county key, and signs checkpoints with it
            let report = verify_chain(&store, config.county, Some(&anchors), true)
                .await
                .map_err(|error| {
                    NodeUnavailable(format!(
                        "cannot read the audit chain from the node's database: {error}"
                    ))
                })?;
            report_to_wire(&report)
        }
    };
    if args.json {
        println!("{}", report_json(&report));
    } else {
        print_report(&report);
    }
    Ok(if report.intact { Exit::Done } else { Exit::Refused }.into())
}

/// A configuration, anchors file or command line that cannot be used: exit 2.
fn unusable(error: anyhow::Error) -> anyhow::Error {
    UnusableFile(format!("{error:#}")).into()
}

async fn peers(args: PeersArgs) -> anyhow::Result<ExitCode> {
    let peers = match &args.target.node {
        Some(address) => node(address)?
            .connect()
            .await?
            .audit_peers(pb::AuditPeersRequest {})
            .await
            .map_err(explain)?
            .into_inner(),
        None => peers_to_wire(&store(&args.target).await?.peer_witness(None).await?),
    };
    for peer in &peers.peers {
        if args.json {
            println!(
                "{}",
                json!({
                    "county": peer.county,
                    "held_position": peer.held_position,
                    "held_head": peer.held_head,
                    "held_signed_at": peer.held_signed_at,
                    "received_at": peer.received_at,
                    "resumed_at": peer.resumed_at,
                    "forked": !peer.fork_at.is_empty(),
                    "fork_at": peer.fork_at,
                    "fork_detail": peer.fork_detail,
                    "holds_our_position": peer.holds_our_position,
                })
            );
            continue;
        }
        let held = match peer.held_position {
            Some(position) => format!(
                "holding its checkpoint {position} (head {}…, signed {})",
                &peer.held_head[..12.min(peer.held_head.len())],
                peer.held_signed_at
            ),
            None => "no checkpoint of it held yet".to_string(),
        };
        let ours = peer
            .holds_our_position
            .map_or("it holds none of ours".to_string(), |position| {
                format!("it holds our checkpoint {position}")
            });
        println!("{}: {held}; {ours}", peer.county);
        if !peer.resumed_at.is_empty() {
            println!("  resumed after a restore (statement signed {})", peer.resumed_at);
        }
        if !peer.fork_at.is_empty() {
            println!("  FORK since {}: {}", peer.fork_at, peer.fork_detail);
        }
    }
    if peers.peers.is_empty() && !args.json {
        println!("no peer has shown its audit chain yet");
    }
    let forked = peers.peers.iter().any(|peer| !peer.fork_at.is_empty());
    Ok(if forked { Exit::Refused } else { Exit::Done }.into())
}

async fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    if !args.yes {
        bail!("a resume statement cannot be taken back: read README \"Audit chain\", then add --yes");
    }
    let config = NodeConfig::load(&args.config)?;
    let identity = NodeIdentity::from_pem_files(&config.tls.certificate, &config.tls.private_key)
        .context("loading the node certificate and key")?;
    let store = connect(&config).await?;
    let resume = resume_chain(
        &store,
        &identity.into(),
        args.from_checkpoint,
        &args.reason,
        "loopback",
    )
    .await?;
    println!(
        "signed: the audit chain of {} continues from checkpoint {} (head {}); peers accept the rewound history once they see it",
        resume.body.county,
        resume.body.from.position,
        resume.body.from.head.hex()
    );
    Ok(ExitCode::SUCCESS)
}

/// The operator API at `address`, with the TLS settings of the environment.
fn node(address: &str) -> anyhow::Result<NodeArgs> {
    #[derive(Parser)]
    struct Node {
        #[command(flatten)]
        node: NodeArgs,
    }
    Ok(Node::try_parse_from(["hancha", "--node", address])?.node)
}

async fn store(target: &Target) -> anyhow::Result<Store> {
    connect(&config(target)?).await
}

fn config(target: &Target) -> anyhow::Result<NodeConfig> {
    let Some(path) = &target.config else {
        bail!(
            "say where the chain is: --config FILE (the node's database) or --node HOST:PORT (a running node)"
        );
    };
    NodeConfig::load(path)
}

async fn connect(config: &NodeConfig) -> anyhow::Result<Store> {
    Store::connect_any(
        &config.database_addresses(),
        2,
        Duration::from_secs(10),
        Default::default(),
    )
    .await
    .map_err(|error| {
        super::exit::NodeUnavailable(format!("cannot reach the node's database: {error}")).into()
    })
}

fn report_json(report: &pb::VerifyAuditResponse) -> serde_json::Value {
    json!({
        "rows_checked": report.rows_checked,
        "intact": report.intact,
        "first_broken": report.first_broken.as_ref().map(|broken| json!({
            "position": broken.position,
            "audit_id": broken.audit_id,
            "problem": broken.problem,
        })),
        "sealed_position": report.sealed_position,
        "pending": report.pending,
        "last_checkpoint": report.last_checkpoint.as_ref().map(|checkpoint| json!({
            "position": checkpoint.position,
            "head": checkpoint.head,
            "signed_at": checkpoint.signed_at,
            "signature_valid": checkpoint.signature_valid,
        })),
    })
}

fn print_report(report: &pb::VerifyAuditResponse) {
    println!(
        "{} rows checked; sealed up to position {}; {} records not yet sealed",
        report.rows_checked, report.sealed_position, report.pending
    );
    match &report.last_checkpoint {
        Some(checkpoint) => println!(
            "last checkpoint: position {}, head {}, signed {} ({})",
            checkpoint.position,
            checkpoint.head,
            checkpoint.signed_at,
            if checkpoint.signature_valid {
                "signature valid"
            } else {
                "SIGNATURE INVALID"
            }
        ),
        None => println!("no checkpoint yet"),
    }
    match &report.first_broken {
        None => println!("intact"),
        Some(broken) => {
            let place = match (broken.position, broken.audit_id) {
                (Some(position), Some(id)) => format!("position {position} (audit record {id})"),
                (Some(position), None) => format!("position {position}"),
                (None, Some(id)) => format!("audit record {id}"),
                (None, None) => "the chain".to_string(),
            };
            println!("BROKEN at {place}: {}", broken.problem);
        }
    }
}
