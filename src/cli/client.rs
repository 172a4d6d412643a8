//! How operator commands reach a node: the operator API, on loopback by default, or over mutual
//! TLS with an operator certificate when the node exposes it elsewhere.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tonic::transport::Channel;

use crate::proto::operator::operator_client::OperatorClient;

/// Where the node's operator API is and how to authenticate to it.
#[derive(Clone, Debug, Args)]
pub struct NodeArgs {
    /// The node's operator API address.
    #[arg(
        long = "node",
        env = "HANCHA_NODE",
        default_value = "127.0.0.1:7530",
        value_name = "HOST:PORT"
    )]
    pub address: String,
    /// Operator certificate (PEM), for a node whose operator API is not on loopback.
    #[arg(long, env = "HANCHA_OPERATOR_CERT", requires_all = ["operator_key", "node_ca", "node_county"])]
    pub operator_cert: Option<PathBuf>,
    /// The operator certificate's private key (PEM).
    #[arg(long, env = "HANCHA_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,
    /// CA that issued the node's certificate (PEM).
    #[arg(long, env = "HANCHA_NODE_CA")]
    pub node_ca: Option<PathBuf>,
    /// The county the node must prove to be (its certificate's county).
    #[arg(long, env = "HANCHA_NODE_COUNTY")]
    pub node_county: Option<String>,
}

impl NodeArgs {
    /// Connects to the operator API.
    pub async fn connect(&self) -> anyhow::Result<OperatorClient<Channel>> {
        let channel = match (&self.operator_cert, &self.operator_key, &self.node_ca, &self.node_county) {
            (Some(cert), Some(key), Some(ca), Some(county)) => {
                let county = crate::tls::County::parse(county).context("--node-county")?;
                let config = crate::tls::operator_client_config(cert, key, ca, county)?;
                crate::tls::connect(&self.address, config).await?
            }
            _ => tonic::transport::Endpoint::from_shared(format!("http://{}", self.address))?
                .connect()
                .await
                .with_context(|| {
                    format!(
                        "cannot reach the node's operator API at {} (is `hancha serve` running? set --node or HANCHA_NODE)",
                        self.address
                    )
                })?,
        };
        Ok(OperatorClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }
}

/// A tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
