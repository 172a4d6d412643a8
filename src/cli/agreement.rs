//! `hancha agreement check`: validates an agreement document and prints its canonical hash.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::domain::agreement::Agreement;

#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Validate an agreement (TOML): print its canonical hash and a summary, or every error with
    /// its line. Exits 0 when valid, 1 otherwise.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The agreement document (TOML).
    file: PathBuf,
}

pub fn run(command: AgreementCommand) -> anyhow::Result<ExitCode> {
    let AgreementCommand::Check(args) = command;
    let text =
        std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    match Agreement::parse(&text) {
        Ok(agreement) => {
            println!("{}", agreement.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{}: not a valid agreement", args.file.display());
            for error in errors.iter() {
                eprintln!("  {error}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
