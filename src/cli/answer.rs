//! `hancha answer`: answers a pending inquiry by hand. Only the fields the agreement lets the
//! asking county see are accepted; anything else is refused with the allowed list.

use crate::present::explain;
use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::client::{NodeArgs, runtime};
use crate::proto::operator as pb;

#[derive(Debug, Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The inquiry to answer (see `hancha pending`).
    message_id: String,
    /// found, not-found, ambiguous (needs more attributes) or refused (by policy).
    #[arg(long)]
    outcome: String,
    /// A status value to send, e.g. --field certificate_status=valid (repeatable).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
}

pub fn run(args: AnswerArgs) -> anyhow::Result<ExitCode> {
    let mut fields = HashMap::new();
    for assignment in &args.fields {
        let Some((name, value)) = assignment.split_once('=') else {
            bail!("--field {assignment:?}: expected NAME=VALUE, e.g. certificate_status=valid");
        };
        fields.insert(name.trim().to_string(), value.trim().to_string());
    }
    let outcome = args.outcome.replace('-', "_");
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::AnswerRequest {
            message_id: args.message_id.clone(),
            outcome,
            fields,
        };
        let answer = client.answer(request).await.map_err(explain)?.into_inner();
        println!(
            "answered {}: confirmation {} is on its way",
            args.message_id, answer.confirmation_id
        );
        Ok(ExitCode::SUCCESS)
    })
}
