//! `hancha serve`: runs one county's node until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::NodeConfig;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The node configuration (TOML). Every setting can be overridden by a HANCHA_… environment
    /// variable, e.g. HANCHA_DATABASE_URL, HANCHA_LISTEN, HANCHA_PEER_431322=host:port;
    /// HANCHA_DATABASE_URLS=url,url gives a primary and its standbys (the node writes to the
    /// primary among them and follows a promotion; it logs at start whether a synchronous
    /// standby protects what it acknowledges).
    #[arg(long, env = "HANCHA_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    check: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(&args.config)?;
    if args.check {
        println!("{}", config.describe());
        for warning in &config.warnings {
            eprintln!("warning: {warning}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    super::init_tracing();
    eprintln!("{}", config.describe());
    for warning in &config.warnings {
        tracing::warn!(%warning, "deprecated configuration");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::app::serve(config))?;
    Ok(ExitCode::SUCCESS)
}
