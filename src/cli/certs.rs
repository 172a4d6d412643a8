//! `hancha certs dev`: development certificates (a CA, one certificate per county, an operator
//! CA and certificate). For development and tests only: the CA key is not protected.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::domain::division::CountyCode;

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate a development CA and a certificate per county (URI SAN urn:hancha:county:CODE).
    /// Overwrites the files in the output directory.
    Dev(DevArgs),
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where to write the PEM files.
    #[arg(long, default_value = "certs-dev")]
    out: PathBuf,
    /// County codes to issue certificates for.
    #[arg(required = true, value_name = "COUNTY")]
    counties: Vec<String>,
}

pub fn run(command: CertsCommand) -> anyhow::Result<ExitCode> {
    let CertsCommand::Dev(args) = command;
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
