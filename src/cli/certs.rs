//! `hancha certs dev`: development certificates — a county CA with one certificate per county
//! and an operator CA with its first operator certificate (`counties`), and further operator
//! certificates, county-wide or for one township office (`operator`). For development and tests
//! only: the CA keys are not protected.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::domain::division::{CountyCode, TownshipCode};
use crate::domain::policy::Principal;

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Development certificates (never for production).
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Generate a development county CA with a certificate per county (URI SAN
    /// urn:hancha:county:CODE), and an operator CA with one county-wide operator certificate
    /// (urn:hancha:operator:dev). Makes new CAs and overwrites the files in the output
    /// directory, so certificates from an earlier run stop verifying.
    Counties(CountiesArgs),
    /// Issue an operator certificate from the development operator CA in the output directory
    /// (URI SAN urn:hancha:operator:NAME; with --township also urn:hancha:township:CODE, which
    /// limits its holder to that township office's inquiries and indicators). Writes
    /// operator-NAME.pem and operator-NAME-key.pem.
    Operator(OperatorArgs),
}

#[derive(Debug, Args)]
pub struct CountiesArgs {
    /// Where to write the PEM files.
    #[arg(long, default_value = "certs-dev")]
    out: PathBuf,
    /// County codes to issue certificates for.
    #[arg(required = true, value_name = "COUNTY")]
    counties: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The directory holding operator-ca.pem and operator-ca-key.pem, where the certificate is
    /// written too.
    #[arg(long, default_value = "certs-dev")]
    out: PathBuf,
    /// The operator's name, as audit records will show it (no spaces; never a resident ID
    /// number).
    #[arg(value_name = "NAME")]
    name: String,
    /// The 9-digit township code of the township office the certificate is for; without it
    /// the certificate is county-wide.
    #[arg(long, value_name = "CODE")]
    township: Option<String>,
}

pub fn run(command: CertsCommand) -> anyhow::Result<ExitCode> {
    let CertsCommand::Dev(command) = command;
    match command {
        DevCommand::Counties(args) => counties(args),
        DevCommand::Operator(args) => operator(args),
    }
}

fn counties(args: CountiesArgs) -> anyhow::Result<ExitCode> {
    let mut codes = Vec::new();
    for county in &args.counties {
        let code = CountyCode::parse(county).map_err(|e| anyhow::anyhow!("{county}: {e}"))?;
        codes.push(code.as_str().to_string());
    }
    let code_refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    crate::tls::dev::generate_dev_certs(&args.out, &code_refs)?;
    for code in &code_refs {
        println!("wrote {}/{code}.pem and {code}-key.pem", args.out.display());
    }
    println!(
        "wrote the CA and operator certificates in {} (development only)",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn operator(args: OperatorArgs) -> anyhow::Result<ExitCode> {
    let township = args
        .township
        .as_deref()
        .map(|code| TownshipCode::parse(code).map_err(|error| anyhow::anyhow!("--township: {error}")))
        .transpose()?;
    // The checks the node makes on every call, so that a certificate it would refuse is never
    // minted. Any county does for a county-wide one: the name is all there is to check.
    let county = township.map_or_else(|| CountyCode::parse("430703").expect("a county"), |t| t.county());
    Principal::operator(&args.name, county, township.as_ref().map(TownshipCode::as_str))
        .map_err(|refusal| anyhow::anyhow!("{}", refusal.reason))?;
    let (cert, key) = crate::tls::dev::issue_dev_operator(
        &args.out,
        &args.name,
        township.as_ref().map(TownshipCode::as_str),
    )?;
    let scope = match township {
        Some(township) => format!("township {township} {} only", township.name()),
        None => "county-wide".to_string(),
    };
    println!(
        "wrote {} and {} for operator {} ({scope}; development only)",
        cert.display(),
        key.display(),
        args.name
    );
    Ok(ExitCode::SUCCESS)
}
