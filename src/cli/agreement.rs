//! `hancha agreement`: check a document locally; apply, list and show the versions a node holds.

use crate::present::explain;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{NodeArgs, runtime};
use crate::domain::agreement::{Admission, Agreement, admit};
use crate::domain::time::china_date;
use crate::present::display;
use crate::proto::operator as pb;

#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Validate an agreement (TOML): print its canonical hash and a summary, or every error with
    /// its line. Exits 0 when valid, 1 otherwise. Needs no node.
    Check(CheckArgs),
    /// Install a new agreement version on the node (validated and hashed there) and put it in
    /// force. An amendment must raise `version`.
    Apply(ApplyArgs),
    /// List the agreement versions the node holds, with validity and hash.
    List(ListArgs),
    /// Show one agreement (newest version, or the one with this hash) with its full text.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The agreement document (TOML).
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The agreement document (TOML).
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Agreement id (e.g. 430703-431322) or a version's hash.
    id: String,
}

pub fn run(command: AgreementCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgreementCommand::Check(args) => check(args),
        AgreementCommand::Apply(args) => apply(args),
        AgreementCommand::List(args) => list(args),
        AgreementCommand::Show(args) => show(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    match Agreement::parse(&text) {
        Ok(agreement) => {
            // what a node would say on `apply`, as far as it can be known without one: an
            // expired version is refused, one not valid yet is installed with a warning
            match admit(&agreement, &[], china_date(chrono::Utc::now())) {
                Err(refusal) => {
                    eprintln!("{}: {refusal}", args.file.display());
                    Ok(ExitCode::FAILURE)
                }
                Ok(admission) => {
                    println!("{}", agreement.summary());
                    if let Admission::New { warnings } = admission {
                        for warning in warnings {
                            eprintln!("warning: {warning}");
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Err(errors) => {
            eprintln!("{}: not a valid agreement", args.file.display());
            // The file is the operator's own: show the line at fault under each error, with a
            // caret at its column (errors themselves never quote values; see domain::privacy).
            let lines: Vec<&str> = text.lines().collect();
            for error in errors.iter() {
                eprintln!("  {error}");
                if let Some(source) = error.line.checked_sub(1).and_then(|index| lines.get(index)) {
                    eprintln!("    | {source}");
                    let caret = source.chars().take(error.column.saturating_sub(1)).count();
                    eprintln!("    | {}^", " ".repeat(caret));
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let applied = client
            .apply_agreement(pb::ApplyAgreementRequest { text })
            .await
            .map_err(explain)?
            .into_inner();
        let info = applied.agreement.unwrap_or_default();
        let what = if applied.new_version {
            "installed"
        } else {
            "already installed"
        };
        println!(
            "{what}: {} version {} (hash {})",
            info.id, info.version, info.hash
        );
        println!("{}", info.summary);
        for warning in &applied.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let list = client.list_agreements(pb::ListAgreementsRequest {}).await.map_err(explain)?.into_inner();
        if args.json {
            for a in &list.agreements {
                println!(
                    "{}",
                    json!({ "id": a.id, "version": a.version, "hash": a.hash, "peer_county": a.peer_county,
                            "valid_from": a.valid_from, "valid_until": a.valid_until, "in_force": a.in_force })
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let rows: Vec<Vec<String>> = list
            .agreements
            .iter()
            .map(|a| {
                vec![
                    a.id.clone(),
                    a.version.to_string(),
                    display::county(&a.peer_county),
                    format!("{} … {}", a.valid_from, a.valid_until),
                    if a.in_force { "in force".into() } else { String::new() },
                    a.hash[..12.min(a.hash.len())].to_string(),
                ]
            })
            .collect();
        println!("{}", display::table(&["agreement", "version", "peer", "valid", "", "hash"], &rows));
        Ok(ExitCode::SUCCESS)
    })
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let shown = client
            .show_agreement(pb::ShowAgreementRequest { id: args.id.clone() })
            .await
            .map_err(explain)?;
        let shown = shown.into_inner();
        let info = shown.agreement.unwrap_or_default();
        println!("{}", info.summary);
        println!("{}\n", if info.in_force { "in force" } else { "not in force" });
        print!("{}", shown.text);
        Ok(ExitCode::SUCCESS)
    })
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
