//! `hancha tokens`: the API tokens with which the county's systems call the HTTP/JSON API
//! (`[web]`). Run against the node's database (`--config`, as `hancha audit verify --config`):
//! making a token is an act of whoever runs the node, not something an API caller can do.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};

use super::client::runtime;
use super::exit::{Exit, NodeUnavailable};
use crate::config::NodeConfig;
use crate::domain::policy::Principal;
use crate::store::{Store, StoreError};
use crate::web::tokens::{digest, new_token};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make an API token and print it, once: the node keeps only its SHA-256, so it cannot be
    /// shown again (make a new one and revoke the old if it is lost).
    ///
    /// A county token acts for the whole county; a township token (--role township --township
    /// CODE) sees that township's persons and inquiries only, like a township office's operator
    /// certificate. Audit records name the token's NAME as the principal.
    Add(AddArgs),
    /// List the tokens: name, scope, when made, last used, revoked (never the tokens).
    List(ListArgs),
    /// Revoke a token: requests presenting it are refused (401) from now on. Its name stays
    /// taken, so that audit records naming it keep their meaning.
    Revoke(RevokeArgs),
}

/// The node's configuration, for its database and county.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The node configuration (TOML): its database and county.
    #[arg(long, env = "HANCHA_CONFIG", value_name = "FILE")]
    config: PathBuf,
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenRole {
    /// The whole county (a county office system).
    County,
    /// One township office's area (needs --township).
    Township,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    node: ConfigArg,
    /// The token's name, as audit records name the caller: 1 to 64 letters, digits, '.', '-',
    /// '_' or '@' (e.g. county-his, township-101-system).
    #[arg(value_name = "NAME")]
    name: String,
    /// County-wide or one township's.
    #[arg(long, value_enum)]
    role: TokenRole,
    /// The township's 9-digit code (with --role township).
    #[arg(long, value_name = "CODE")]
    township: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    node: ConfigArg,
    /// One JSON object per token instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    node: ConfigArg,
    /// The token's name.
    #[arg(value_name = "NAME")]
    name: String,
}

pub fn run(command: TokensCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            TokensCommand::Add(args) => add(args).await,
            TokensCommand::List(args) => list(args).await,
            TokensCommand::Revoke(args) => revoke(args).await,
        }
    })
}

pub(super) async fn connect(arg: &ConfigArg) -> anyhow::Result<(NodeConfig, Store)> {
    let config = NodeConfig::load(&arg.config)?;
    let store = Store::connect_any(
        &config.database_addresses(),
        2,
        Duration::from_secs(10),
        Default::default(),
    )
    .await
    .map_err(|error| NodeUnavailable(format!("cannot reach the node's database: {error}")))?;
    Ok((config, store))
}

/// A store failure, saying what to do when the table is missing (a node never started).
fn explained(error: StoreError) -> anyhow::Error {
    let text = error.to_string();
    if text.contains("api_tokens") && text.contains("does not exist") {
        return anyhow::anyhow!(
            "the node's database has no API tokens table yet: start the node once with this version (it applies its migrations)"
        );
    }
    NodeUnavailable(format!("the node's database: {text}")).into()
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let township = match (args.role, &args.township) {
        (TokenRole::County, None) => None,
        (TokenRole::County, Some(_)) => bail!("--township goes with --role township only"),
        (TokenRole::Township, Some(code)) => Some(code.as_str()),
        (TokenRole::Township, None) => bail!("--role township needs --township CODE (9 digits)"),
    };
    let (config, store) = connect(&args.node).await?;
    // the very check a request with the token will pass: a name fit for the audit log, a
    // township of this county
    if let Err(refusal) = Principal::token(&args.name, config.county, township) {
        eprintln!("error: {}", refusal.reason);
        return Ok(Exit::Refused.into());
    }
    let token = new_token();
    match store.add_api_token(&args.name, township, &digest(&token)).await {
        Ok(_) => {}
        Err(StoreError::AlreadyExists) => {
            eprintln!(
                "error: a token named {} exists (revoked ones keep their names): choose another name",
                args.name
            );
            return Ok(Exit::Refused.into());
        }
        Err(error) => return Err(explained(error)),
    }
    eprintln!(
        "token {} made ({}); it is shown only now: store it where the calling system keeps secrets",
        args.name,
        match township {
            Some(code) => format!("township {code}"),
            None => format!("county {}", config.county),
        }
    );
    println!("{token}");
    Ok(Exit::Done.into())
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let (config, store) = connect(&args.node).await?;
    let tokens = store.api_tokens().await.map_err(explained)?;
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    for token in &tokens {
        let scope = match &token.township {
            Some(code) => format!("township:{code}"),
            None => format!("county:{}", config.county),
        };
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "name": token.name,
                    "scope": scope,
                    "created_at": time(Some(token.created_at)),
                    "last_used_at": time(token.last_used_at),
                    "revoked_at": time(token.revoked_at),
                })
            );
        } else {
            println!(
                "{:<24} {:<20} made {}  last used {}{}",
                token.name,
                scope,
                time(Some(token.created_at)).unwrap_or_default(),
                time(token.last_used_at).unwrap_or_else(|| "never".into()),
                time(token.revoked_at)
                    .map(|at| format!("  REVOKED {at}"))
                    .unwrap_or_default()
            );
        }
    }
    if tokens.is_empty() && !args.json {
        println!("no API tokens (make one with `hancha tokens add NAME --role county|township`)");
    }
    Ok(Exit::Done.into())
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = connect(&args.node).await?;
    match store.revoke_api_token(&args.name).await {
        Ok(true) => println!("token {} revoked", args.name),
        Ok(false) => println!("token {} was revoked already", args.name),
        Err(StoreError::NotFound) => {
            eprintln!("error: no token named {}", args.name);
            return Ok(Exit::Refused.into());
        }
        Err(error) => return Err(explained(error)),
    }
    Ok(Exit::Done.into())
}
