//! `hancha withdraw`: withdraws one of our inquiries that the peer holds back for an agreement
//! version mismatch (`hancha show` says `held: waiting for …`), when no version both counties
//! hold will carry it soon. It is never sent, and stays `rejected` with the reason.

use std::process::ExitCode;

use clap::Args;

use super::client::{NodeArgs, runtime};
use crate::present::explain;
use crate::proto::operator as pb;

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The held inquiry (see `hancha pending --outbound` and `hancha show`).
    message_id: String,
}

pub fn run(args: WithdrawArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let withdrawn = client
            .withdraw(pb::WithdrawRequest {
                message_id: args.message_id.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner();
        println!("withdrawn: {} ({})", withdrawn.message_id, withdrawn.reason);
        Ok(ExitCode::SUCCESS)
    })
}
