//! `hancha dev`: developer tools. `with-postgres` runs a command against a throwaway
//! PostgreSQL; `./scripts/test` runs the test suite through it.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::devdb::{Durability, ThrowawayPostgres, reachable};

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Run a command with DATABASE_URL pointing at PostgreSQL. If DATABASE_URL is already set and
    /// reachable it is used as is; otherwise a private throwaway cluster is started (as the
    /// `postgres` user when run as root) and stopped afterwards, whatever the command's outcome.
    WithPostgres(WithPostgresArgs),
}

#[derive(Debug, Args)]
pub struct WithPostgresArgs {
    /// Keep production durability (fsync on) in the throwaway cluster.
    #[arg(long)]
    durable: bool,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

pub fn run(command: DevCommand) -> anyhow::Result<ExitCode> {
    let DevCommand::WithPostgres(args) = command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(with_postgres(args))
}

async fn with_postgres(args: WithPostgresArgs) -> anyhow::Result<ExitCode> {
    let mut _cluster = None;
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if reachable(&url).await => {
            eprintln!("hancha: using the PostgreSQL at DATABASE_URL");
            url
        }
        configured => {
            if configured.is_ok() {
                eprintln!("hancha: DATABASE_URL is set but not reachable; starting a throwaway PostgreSQL");
            }
            let durability = if args.durable {
                Durability::Production
            } else {
                Durability::Relaxed
            };
            let cluster = tokio::task::spawn_blocking(move || ThrowawayPostgres::start(durability)).await??;
            eprintln!("hancha: started a throwaway PostgreSQL ({})", cluster.url());
            let url = cluster.url().to_string();
            _cluster = Some(cluster);
            url
        }
    };
    let (program, rest) = args.command.split_first().context("no command given")?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .env("DATABASE_URL", &url)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let status = tokio::select! {
        status = child.wait() => status?,
        _ = tokio::signal::ctrl_c() => { child.kill().await.ok(); child.wait().await? }
        _ = terminate.recv() => { child.kill().await.ok(); child.wait().await? }
    };
    // `_cluster` is dropped here: the throwaway server stops and its directory is removed.
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
