//! The evidence step's certificate renewal: 邵东市's node certificate is issued again by the
//! development county CA with a new key, written over the node's files, and put in force by a
//! reload (what SIGHUP does to `hancha serve`), the node running on. A new mutual-TLS handshake
//! as 鼎城区 shows the certificate now presented, and a status exchange over a new connection
//! shows the node still serving its peers.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};

use super::cluster::Cluster;
use super::files::{Scratch, development_identity, renewed_certificate};
use super::{DINGCHENG, SHAODONG, county_name};
use crate::domain::division::CountyCode;
use crate::domain::time::china_time;
use crate::peer::{CallTimings, PeerClient, PeerLink};
use crate::tls::{County, ReloadOutcome, TrustAnchors, certificate_not_after, client_config};

/// The county whose certificate is renewed.
const RENEWED: &str = SHAODONG;

/// How long the renewed certificate is valid, in days.
const VALID_DAYS: u64 = 365;

/// Renews 邵东市's certificate while its node runs. Whether the node then presents the new one
/// and still exchanges.
pub async fn renew_certificate(cluster: &Cluster, scratch: &Scratch) -> anyhow::Result<bool> {
    let files = scratch.files(RENEWED);
    let old = Certificate::of_pem(
        &std::fs::read_to_string(&files.certificate)
            .with_context(|| format!("reading {}", files.certificate.display()))?,
    )?;
    let (certificate, key) = renewed_certificate(RENEWED, VALID_DAYS)?;
    let new = Certificate::of_pem(&certificate)?;
    // the key first: a reload between the two writes fails and keeps the old material
    std::fs::write(&files.private_key, &key)
        .with_context(|| format!("writing {}", files.private_key.display()))?;
    std::fs::write(&files.certificate, &certificate)
        .with_context(|| format!("writing {}", files.certificate.display()))?;
    println!(
        "  {}'s node certificate renewed while the node runs: serial {} (valid to {}) replaced by serial {} (valid to {}), a new key, from the county CA",
        county_name(RENEWED),
        old.serial,
        old.not_after,
        new.serial,
        new.not_after
    );
    match cluster.reload_tls(RENEWED).await {
        ReloadOutcome::Reloaded { .. } => {}
        ReloadOutcome::Failed { why } => {
            println!("    ✗ the reload failed: {why}");
            return Ok(false);
        }
        other => {
            println!("    ✗ the reload did not take: {other:?}");
            return Ok(false);
        }
    }
    let address = cluster.peer_address(RENEWED);
    let config = client_as(DINGCHENG, RENEWED, scratch)?;
    let presented = Certificate::of_der(&presented_certificate(address, Arc::clone(&config)).await?)?;
    let in_use = presented.serial == new.serial;
    println!(
        "    reloaded as on SIGHUP, no restart; a new handshake from 鼎城区 gets serial {} {}",
        presented.serial,
        if in_use { "✓" } else { "✗ (the old one)" }
    );
    let peer = CountyCode::parse(RENEWED)?;
    let dingcheng = cluster.node(DINGCHENG);
    let channel = crate::tls::connect(&address.to_string(), config)
        .await
        .with_context(|| format!("connecting to {}", county_name(RENEWED)))?;
    let limits = dingcheng.limits();
    let link = PeerClient::new(
        channel,
        limits.max_message_bytes,
        CallTimings {
            batch_call: limits.call_timeout,
            sync_margin: limits.call_margin,
        },
    );
    let ours = dingcheng.status_for(peer).await?;
    let exchanged = match link.peer_status(&ours).await {
        Ok(theirs) => {
            let versions: Vec<String> = theirs
                .versions
                .iter()
                .map(|held| format!("{} version {}", held.agreement_id, held.version))
                .collect();
            println!(
                "    a status exchange with it over a new connection: answered, holding {}",
                versions.join(", ")
            );
            true
        }
        Err(failure) => {
            println!(
                "    ✗ a status exchange over a new connection failed: {}",
                failure.describe()
            );
            false
        }
    };
    Ok(in_use && exchanged)
}

/// A client configuration as `county` (its development identity) towards `peer`, trusting the
/// county CA the nodes trust.
fn client_as(county: &str, peer: &str, scratch: &Scratch) -> anyhow::Result<Arc<ClientConfig>> {
    let identity = development_identity(county)?;
    let anchors = TrustAnchors::from_pem_file(&scratch.files(peer).trust_anchors)?;
    Ok(client_config(&identity, &anchors, County::parse(peer)?)?)
}

/// The leaf certificate the node at `address` presents in a new handshake with `config`.
async fn presented_certificate(
    address: SocketAddr,
    config: Arc<ClientConfig>,
) -> anyhow::Result<CertificateDer<'static>> {
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let name = ServerName::try_from("localhost")?;
    let tls = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .context("the handshake timed out")?
    .context("the handshake failed")?;
    let Some(leaf) = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
    else {
        bail!("the node presented no certificate");
    };
    Ok(leaf.clone().into_owned())
}

/// A certificate's serial number and expiry, as an operator compares them.
struct Certificate {
    /// The serial number, hex.
    serial: String,
    /// The expiry, in China.
    not_after: String,
}

impl Certificate {
    fn of_pem(pem: &str) -> anyhow::Result<Certificate> {
        let der = <CertificateDer<'_> as rustls::pki_types::pem::PemObject>::from_pem_slice(pem.as_bytes())
            .context("not a PEM certificate")?;
        Certificate::of_der(&der)
    }

    fn of_der(der: &[u8]) -> anyhow::Result<Certificate> {
        let (_, parsed) = x509_parser::parse_x509_certificate(der).context("not a certificate")?;
        let not_after = certificate_not_after(der)
            .and_then(|at| chrono::DateTime::from_timestamp(at, 0))
            .map(|at| china_time(at).format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "?".into());
        let serial = hex::encode(parsed.raw_serial());
        Ok(Certificate {
            serial: short(&serial),
            not_after,
        })
    }
}

/// The first and last eight hex digits of a long serial: enough to tell two apart.
fn short(serial: &str) -> String {
    if serial.len() <= 20 {
        serial.to_string()
    } else {
        format!("{}…{}", &serial[..8], &serial[serial.len() - 8..])
    }
}
