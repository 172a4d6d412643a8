//! `hancha id check`: validates resident ID numbers and explains every rejection.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::domain::resident_id::ResidentId;

#[derive(Debug, Subcommand)]
pub enum IdCommand {
    /// Check 18-character resident ID numbers (GB 11643-1999): length, province, birth date and
    /// check character. Prints one line per ID; exits 0 when all are valid, 1 otherwise.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The ID numbers to check (a lowercase x is the same as X).
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Convert legacy 15-digit numbers (insert the century 19, compute the check character)
    /// instead of rejecting them.
    #[arg(long)]
    convert_legacy: bool,
}

pub fn run(command: IdCommand) -> anyhow::Result<ExitCode> {
    let IdCommand::Check(args) = command;
    let mut all_valid = true;
    for input in &args.ids {
        let parsed = if args.convert_legacy && input.len() == 15 {
            ResidentId::from_legacy_15(input, crate::domain::resident_id::today_in_china())
        } else {
            ResidentId::parse(input)
        };
        all_valid &= parsed.is_ok();
        println!("{}", render(input, &parsed, args.json));
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render(
    input: &str,
    parsed: &Result<ResidentId, crate::domain::resident_id::ResidentIdError>,
    as_json: bool,
) -> String {
    match (parsed, as_json) {
        (Ok(id), true) => json!({
            "input": input,
            "valid": true,
            "id": id.as_str(),
            "birth_date": id.birth_date().to_string(),
            "sex": id.sex().as_str(),
            "address_code": id.address_code(),
            "address_name": id.address_name(),
        })
        .to_string(),
        (Err(error), true) => {
            json!({ "input": input, "valid": false, "error": error.to_string() }).to_string()
        }
        (Ok(id), false) => format!(
            "{}  valid    born {}  {} ({})  address {} {}",
            id.as_str(),
            id.birth_date(),
            id.sex().as_str(),
            id.sex().label_zh(),
            id.address_code(),
            id.address_name()
                .unwrap_or_else(|| "(not in today's division list)".to_string()),
        ),
        (Err(error), false) => match error.detail_for_the_typist() {
            Some(detail) => format!("{input}  invalid  {error} ({detail})"),
            None => format!("{input}  invalid  {error}"),
        },
    }
}
