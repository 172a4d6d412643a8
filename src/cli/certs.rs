//! `hancha certs dev`: development certificates — a county CA with one certificate per county
//! and an operator CA with its first operator certificate (`counties`), and further operator
//! certificates, county-wide or for one township office (`operator`), and revocation lists
//! (`revoke`). For development and tests only: the CA keys are not protected.

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
    /// (urn:hancha:operator:dev), and an empty revocation list of each CA (crl.pem,
    /// operator-crl.pem). Makes new CAs and overwrites the files in the output directory, so
    /// certificates from an earlier run stop verifying.
    Counties(CountiesArgs),
    /// Issue an operator certificate from the development operator CA in the output directory
    /// (URI SAN urn:hancha:operator:NAME; with --township also urn:hancha:township:CODE, which
    /// limits its holder to that township office's inquiries and indicators). Writes
    /// operator-NAME.pem and operator-NAME-key.pem.
    Operator(OperatorArgs),
    /// Revoke development certificates: add each --cert to the certificate revocation list of
    /// the development CA in the output directory that issued it (crl.pem for the county CA,
    /// operator-crl.pem for the operator CA), keeping what the list already revoked, and write
    /// it again signed by that CA with a fresh nextUpdate and the next CRL number. Without
    /// --cert, the county CA's list is only issued again. A node that lists the file in
    /// tls.crls picks it up within tls.watch_interval (or at once on SIGHUP), refuses the
    /// revoked certificates at the handshake, and closes their open connections.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The directory holding the development CAs (ca.pem, ca-key.pem, operator-ca.pem,
    /// operator-ca-key.pem), where the CRLs are written too.
    #[arg(long, default_value = "certs-dev")]
    out: PathBuf,
    /// A certificate (PEM) to revoke; repeat for several.
    #[arg(long = "cert", value_name = "FILE")]
    certs: Vec<PathBuf>,
    /// How long the new list is valid (its nextUpdate, from now), e.g. 7d, 12h, 10m. After
    /// that a node refuses the CA's certificates unless tls.crl_grace allows more, so a
    /// production CA issues its list again well before.
    #[arg(long, value_name = "DURATION", default_value = "3650d", value_parser = humantime::parse_duration)]
    valid_for: std::time::Duration,
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
        DevCommand::Revoke(args) => revoke(args),
    }
}

fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let valid_for = chrono::Duration::from_std(args.valid_for)
        .map_err(|_| anyhow::anyhow!("--valid-for {:?} is too long", args.valid_for))?;
    if valid_for <= chrono::Duration::zero() {
        anyhow::bail!("--valid-for must be longer than zero");
    }
    let done = crate::tls::dev::revoke_dev(&args.out, &args.certs, valid_for)?;
    for (path, serial) in &done.revoked {
        println!("revoked {} (serial {serial})", path.display());
    }
    for crl in &done.crls {
        println!(
            "wrote {} (next update {}; development only)",
            crl.display(),
            (chrono::Utc::now() + valid_for).format("%Y-%m-%d %H:%M UTC")
        );
    }
    Ok(ExitCode::SUCCESS)
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
