//! How operator commands reach a node: the operator API, on loopback by default, or over mutual
//! TLS with an operator certificate when the node exposes it elsewhere. When the node refuses
//! the certificate during the TLS handshake, [`handshake_refusal`] says why in one line (the
//! failed call itself would only say "operation was canceled").

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Context;
use clap::Args;
use tonic::transport::Channel;

use super::exit::NodeUnavailable;
use crate::proto::operator::operator_client::OperatorClient;
use crate::tls::{Refusal, RefusalWatch};

/// This process's connection to the node over mutual TLS (a command makes one), watched for a
/// refusal of its certificate.
static WATCHED: OnceLock<WatchedConnection> = OnceLock::new();

/// What [`handshake_refusal`] needs to say why the node refused us.
#[derive(Debug)]
struct WatchedConnection {
    /// Told what ended the connection, if the node hung up before sending anything.
    watch: RefusalWatch,
    /// The node's operator API.
    address: String,
    /// The TLS configuration the connection used, to ask the node once more.
    config: std::sync::Arc<rustls::ClientConfig>,
}

/// The node's operator API this process talks to, once it has connected: named when the node
/// goes away during a call.
static NODE_ADDRESS: OnceLock<String> = OnceLock::new();

/// The address of the node this process connected to, if it did.
pub fn node_address() -> Option<&'static str> {
    NODE_ADDRESS.get().map(String::as_str)
}

/// How long the CLI waits for the node's verdict when it asks once more after a failure.
const PROBE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

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
    /// Connects to the operator API. A node that cannot be reached is a [`NodeUnavailable`]
    /// error (exit code 3), saying where the command looked.
    pub async fn connect(&self) -> anyhow::Result<OperatorClient<Channel>> {
        let _ = NODE_ADDRESS.set(self.address.clone());
        let channel = match (
            &self.operator_cert,
            &self.operator_key,
            &self.node_ca,
            &self.node_county,
        ) {
            (Some(cert), Some(key), Some(ca), Some(county)) => {
                let county = crate::tls::County::parse(county).context("--node-county")?;
                let config = crate::tls::operator_client_config(cert, key, ca, county)?;
                let (channel, watch) = crate::tls::connect_watched(&self.address, config.clone()).await?;
                let _ = WATCHED.set(WatchedConnection {
                    watch,
                    address: self.address.clone(),
                    config,
                });
                channel
            }
            _ => tonic::transport::Endpoint::from_shared(format!("http://{}", self.address))?
                .connect()
                .await
                .map_err(|error| {
                    NodeUnavailable(format!(
                        "cannot reach the node's operator API at {} ({}): is `hancha serve` running? \
                         set --node or HANCHA_NODE",
                        self.address,
                        root_cause(&error)
                    ))
                })?,
        };
        Ok(OperatorClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }
}

/// Why the node refused this process's operator certificate during the TLS handshake, in one
/// line, if it did: TLS 1.3 lets the node judge the client certificate last and say so with an
/// alert, which the failed call does not carry.
/// When the connection was seen closed without an alert, the node is asked once more (see
/// [`crate::tls::probe_refusal`]).
pub fn handshake_refusal() -> Option<String> {
    let watched = WATCHED.get()?;
    let refusal = match watched.watch.refusal()? {
        // the node kept the second connection open (it accepts us) or could not be reached:
        // not a refusal of the certificate, so the call's own error says what happened
        Refusal::ClosedBeforeAnyData => runtime().ok().and_then(|runtime| {
            runtime.block_on(crate::tls::probe_refusal(
                &watched.address,
                watched.config.clone(),
                PROBE_PATIENCE,
            ))
        })?,
        alert => alert,
    };
    Some(describe_refusal(refusal))
}

/// One line for the operator: what the node said, and what to do about it.
fn describe_refusal(refusal: Refusal) -> String {
    use rustls::AlertDescription as Alert;
    const REFUSED: &str = "the node refused this operator certificate during the TLS handshake";
    match refusal {
        Refusal::Alert(Alert::CertificateExpired) => format!(
            "{REFUSED}: it has expired (or is not valid yet); ask the county IT office for a new one"
        ),
        Refusal::Alert(Alert::UnknownCA) => format!(
            "{REFUSED}: it is not signed by a CA the node trusts (the node's operator.trust_anchors names the operator CA)"
        ),
        Refusal::Alert(Alert::CertificateRevoked) => format!("{REFUSED}: it has been revoked"),
        Refusal::Alert(Alert::UnsupportedCertificate) => {
            format!("{REFUSED}: it is not usable for client authentication (extended key usage)")
        }
        Refusal::Alert(Alert::BadCertificate) => {
            format!("{REFUSED}: the node cannot read it (bad_certificate)")
        }
        Refusal::Alert(Alert::CertificateRequired) => {
            format!("{REFUSED}: the node requires a client certificate")
        }
        Refusal::Alert(alert) => format!("{REFUSED} (TLS alert {alert:?})"),
        Refusal::ClosedBeforeAnyData => "the node closed the connection right after the TLS handshake without saying why: \
             most likely it refused this operator certificate (expired, not valid yet, or not signed by the operator CA it trusts)"
            .to_string(),
    }
}

/// A tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The innermost error under `error`: what the operating system said ("Connection refused (os
/// error 111)"), without the layers that wrapped it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}
