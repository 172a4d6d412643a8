//! The node's TLS material as it is *now*: certificate, key, trust anchors and certificate
//! revocation lists, read from files, replaced while the node runs (SIGHUP or a change of the
//! files), and consulted by every handshake.
//!
//! # How a reload takes effect
//!
//! [`LiveTls`] holds one [`TlsMaterial`] behind a lock. The rustls configurations it builds
//! ([`LiveTls::server_config`], [`LiveTls::operator_server_config`], [`LiveTls::client_config`])
//! never copy the material: their certificate resolvers and verifiers read the current material
//! at each handshake, so new handshakes use new material at once, with no restart and no new
//! listener. A reload that fails (a file missing or malformed, a key that does not fit the
//! certificate, a certificate for another county, a CRL that does not parse) keeps the old
//! material in force and says why ([`LiveTls::reload`]).
//!
//! Neither rustls nor tonic closes a connection whose handshake is over, so [`Connections`]
//! tracks every live connection with the certificate chain the other side presented; after a
//! reload the chains are checked against the new CRLs and the connections of revoked
//! certificates are closed ([`ReloadOutcome::Reloaded`] lists them).
//!
//! # Revocation policy (`tls.crls`)
//!
//! Chosen deliberately; the README's TLS section says the same:
//!
//! - **Depth: the whole chain.** Every certificate of the verified chain except the trust anchor
//!   itself is checked (rustls' default), so revoking an intermediate CA cuts off everything it
//!   issued.
//! - **Unknown status is allowed.** A certificate whose issuer has no CRL in `tls.crls` is not
//!   checked (rustls' `allow_unknown_revocation_status`). Adding one CA's CRL must not cut off
//!   the peers of every other CA; list the CRL of every issuing CA whose revocations matter.
//!   With no `tls.crls` at all nothing is checked for revocation.
//! - **Expiry: `nextUpdate` plus `tls.crl_grace`, enforced by hancha.** rustls can only enforce
//!   `nextUpdate` exactly or ignore it; hancha tells rustls to ignore it and enforces it itself
//!   with a grace period (default `0s`: refused from the moment the CRL is past `nextUpdate`).
//!   Past the grace, a certificate issued by that CRL's issuer is refused at the handshake
//!   (`ExpiredRevocationList`) until a fresh CRL is loaded; certificates of other CAs are not
//!   affected, and connections already open stay open (they were checked when made).
//! - Two CRLs from the same issuer: the one issued last (`thisUpdate`) is used.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::config::ConfigError;
use super::credentials::{LoadError, NodeIdentity, TrustAnchors};
use super::identity::{County, county_from_certificate};
use super::verify::{CountyMismatch, certificate_error, identity_error};

/// The only protocol a peer connection may speak, advertised by ALPN: gRPC runs on HTTP/2.
const ALPN_H2: &[u8] = b"h2";

/// Placeholder server name for rustls: names are not checked (see [`LiveServerVerifier`]).
const PLACEHOLDER_SERVER_NAME: &str = "peer.hancha.invalid";

/// The files the material is read from (the node's `[tls]` section and `operator.trust_anchors`).
#[derive(Clone, Debug)]
pub struct TlsSources {
    /// This node's certificate chain, PEM, leaf first.
    pub certificate: PathBuf,
    /// Its private key, PEM. Only the path is ever shown.
    pub private_key: PathBuf,
    /// CAs that peers' certificates must chain to, PEM.
    pub trust_anchors: PathBuf,
    /// Certificate revocation lists, each file PEM (one or more `X509 CRL` blocks) or DER (one).
    pub crls: Vec<PathBuf>,
    /// The operator CA, when the operator API takes operator certificates.
    pub operator_trust_anchors: Option<PathBuf>,
    /// How long after its `nextUpdate` a CRL is still used (see the module documentation).
    pub crl_grace: Duration,
}

impl TlsSources {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [&self.certificate, &self.private_key, &self.trust_anchors]
            .into_iter()
            .chain(&self.crls)
            .chain(&self.operator_trust_anchors)
            .map(PathBuf::as_path)
    }
}

/// Why TLS material could not be loaded (at start-up, or on a reload, which then keeps the old).
/// The texts name files and causes, never key material.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The certificate, key or trust anchors are unusable.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The certificate is for another county than the node's.
    #[error("the certificate names county {actual} but the configuration says {expected}")]
    WrongCounty {
        /// The configured county.
        expected: County,
        /// The county the certificate names.
        actual: County,
    },
    /// A CRL file is not a CRL.
    #[error("{path}: not a certificate revocation list: {reason}")]
    Crl {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the anchors or CRLs for a verifier.
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
}

/// What one CRL in force says, for metrics, logs and the grace check.
#[derive(Clone, Debug)]
pub struct CrlSummary {
    /// The issuer's common name (or its whole name when it has none).
    pub issuer: String,
    /// The issuer's name as encoded, to match certificates' issuers.
    issuer_raw: Vec<u8>,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds; `None` when the CRL has none (it then never goes stale).
    pub next_update: Option<i64>,
    /// How many certificates it revokes.
    pub revoked: usize,
}

/// TLS material in force: what was read from the files at one moment, with the verifiers built
/// from it.
pub struct TlsMaterial {
    /// Our certificate and key.
    identity: NodeIdentity,
    /// The CAs peers' certificates chain to; signatures by counties are checked against them
    /// too (agreement versions, audit checkpoints).
    anchors: TrustAnchors,
    /// The same, ready for rustls to sign with.
    certified_key: Arc<CertifiedKey>,
    /// CRLs in force (one per issuer) and their grace: the revocation policy, also carried by
    /// `anchors` for signatures.
    revocation: Revocation,
    /// Verifies peers' client certificates (chain, key purpose, revocation).
    peer_clients: Arc<dyn ClientCertVerifier>,
    /// Verifies operators' client certificates, when the operator API takes them.
    operator_clients: Option<Arc<dyn ClientCertVerifier>>,
    /// Verifies peers' server certificates (chain, key purpose, revocation; the name is ignored).
    servers: Arc<WebPkiServerVerifier>,
    /// Hash of every file's content, to tell a change from a touch.
    fingerprint: [u8; 32],
    /// When it was read.
    loaded_at: DateTime<Utc>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("identity", &self.identity)
            .field("crls", &self.revocation.crls())
            .field("loaded_at", &self.loaded_at)
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Reads every file once and builds the material, or says why it cannot.
    fn read(sources: &TlsSources, county: County) -> Result<TlsMaterial, MaterialError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| MaterialError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let mut hasher = Sha256::new();
        let mut contents = Vec::new();
        for path in sources.paths() {
            let bytes = read(path)?;
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(&bytes);
            contents.push(bytes);
        }
        let fingerprint: [u8; 32] = hasher.finalize().into();
        let mut contents = contents.into_iter();
        let mut next = || contents.next().unwrap_or_default();
        let (cert, key, anchors) = (next(), next(), next());
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let identity = NodeIdentity::from_pem_named(
            &text(&cert),
            &sources.certificate.display().to_string(),
            &text(&key),
            &sources.private_key.display().to_string(),
        )?;
        if identity.county() != county {
            return Err(MaterialError::WrongCounty {
                expected: county,
                actual: identity.county(),
            });
        }
        let mut crl_ders = Vec::new();
        for path in &sources.crls {
            crl_ders.extend(parse_crl_file(path, &next())?);
        }
        let revocation = Revocation::from_ders(crl_ders, sources.crl_grace)?;
        let anchors =
            TrustAnchors::from_pem_named(&text(&anchors), &sources.trust_anchors.display().to_string())?
                .with_revocation(revocation.clone());
        let operator_anchors = match &sources.operator_trust_anchors {
            Some(path) => Some(TrustAnchors::from_pem_named(
                &text(&next()),
                &path.display().to_string(),
            )?),
            None => None,
        };
        let provider = provider();
        let certified_key = Arc::new(
            CertifiedKey::from_der(identity.cert_chain().to_vec(), identity.private_key(), &provider)
                .map_err(LoadError::KeyMismatch)?,
        );
        let verifier_error =
            |error: rustls::server::VerifierBuilderError| MaterialError::Verifier(error.to_string());
        let client_verifier = |anchors: &TrustAnchors| {
            revocation
                .client_verifier(WebPkiClientVerifier::builder_with_provider(
                    anchors.roots(),
                    Arc::clone(&provider),
                ))
                .build()
                .map_err(verifier_error)
        };
        let peer_clients = client_verifier(&anchors)?;
        let operator_clients = operator_anchors.as_ref().map(client_verifier).transpose()?;
        let servers = revocation
            .server_verifier(WebPkiServerVerifier::builder_with_provider(
                anchors.roots(),
                Arc::clone(&provider),
            ))
            .build()
            .map_err(verifier_error)?;
        Ok(TlsMaterial {
            identity,
            anchors,
            certified_key,
            revocation,
            peer_clients,
            operator_clients,
            servers,
            fingerprint,
            loaded_at: Utc::now(),
        })
    }

    /// Our certificate and the county it names.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The trust anchors in force for peers' certificates and counties' signatures, carrying
    /// the CRLs in force ([`TrustAnchors::revocation`]) for the signatures.
    pub fn trust_anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// The CRLs in force.
    pub fn crls(&self) -> &[CrlSummary] {
        self.revocation.crls()
    }

    /// When the files were read.
    pub fn loaded_at(&self) -> DateTime<Utc> {
        self.loaded_at
    }

    /// The CRLs more than `crl_grace` past their `nextUpdate` at `now` (Unix seconds).
    pub fn stale_crls(&self, now: i64) -> Vec<&CrlSummary> {
        self.revocation.stale_crls(now)
    }

    fn check_crl_freshness(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        self.revocation.check_freshness(end_entity, intermediates, now)
    }

    /// Verifies a client certificate as the listener of `role` would now.
    fn verify_client(
        &self,
        role: Role,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verifier = match role {
            Role::PeerClient => &self.peer_clients,
            Role::OperatorClient => self.operator_clients.as_ref().ok_or_else(|| {
                rustls::Error::General("the operator API takes no operator certificates".into())
            })?,
            Role::Server(_) => {
                return Err(rustls::Error::General(
                    "a server certificate is not verified as a client's".into(),
                ));
            }
        };
        let verified = verifier.verify_client_cert(end_entity, intermediates, now)?;
        self.check_crl_freshness(end_entity, intermediates, now)?;
        if role == Role::PeerClient {
            county_from_certificate(end_entity).map_err(identity_error)?;
        }
        Ok(verified)
    }

    /// Verifies a peer's server certificate: chain and revocation by rustls' `WebPKI` verifier,
    /// the CRL's freshness by us, and the county it names against `expected`.
    fn verify_server(
        &self,
        expected: County,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(PLACEHOLDER_SERVER_NAME)
            .map_err(|error| rustls::Error::General(error.to_string()))?;
        match self
            .servers
            .verify_server_cert(end_entity, intermediates, &name, &[], now)
        {
            // The name is checked last, after the chain and revocation, and peers are known by
            // the county their certificate names, not by a DNS name: a name mismatch is all
            // that may be passed over. (A test pins that a revoked certificate still fails.)
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {}
            Err(error) => return Err(error),
        }
        self.check_crl_freshness(end_entity, intermediates, now)?;
        let actual = county_from_certificate(end_entity).map_err(identity_error)?;
        if actual != expected {
            return Err(certificate_error(CountyMismatch { expected, actual }));
        }
        Ok(ServerCertVerified::assertion())
    }
}

mod revocation;

pub use revocation::Revocation;
use revocation::parse_crl_file;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// === impl LiveTls ===

/// What a reload did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The files are as they were: nothing to do.
    Unchanged,
    /// New material is in force; these connections were closed because the new CRLs revoke the
    /// certificate they were made with.
    Reloaded {
        /// The connections closed.
        closed: Vec<ClosedConnection>,
    },
    /// The files could not be used; the old material stays in force.
    Failed {
        /// Why, for logs and health (names files and causes, never key material).
        why: String,
    },
    /// The files are still the ones a previous attempt failed on (a file watch does not retry
    /// them; a SIGHUP does).
    StillFailing,
}

/// The last reload that failed while the old material stayed in force.
#[derive(Clone, Debug)]
pub struct ReloadFailure {
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub why: String,
    /// The content that failed, so that a file watch does not try it again and again.
    fingerprint: Option<[u8; 32]>,
}

/// The node's TLS material in force, its files, and its live connections.
pub struct LiveTls {
    /// Where the material is read from.
    sources: TlsSources,
    /// The county the certificate must name.
    county: County,
    /// The material in force.
    current: RwLock<Arc<TlsMaterial>>,
    /// The last failed reload, until one succeeds.
    failure: Mutex<Option<ReloadFailure>>,
    /// Connections made with certificates verified against some material.
    connections: Arc<Connections>,
}

impl fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTls")
            .field("sources", &self.sources)
            .field("county", &self.county)
            .finish_non_exhaustive()
    }
}

impl LiveTls {
    /// Reads the material for the first time; the node does not start without it.
    pub fn load(sources: TlsSources, county: County) -> Result<Arc<LiveTls>, MaterialError> {
        let material = Arc::new(TlsMaterial::read(&sources, county)?);
        let connections = Arc::new(Connections::default());
        connections.close_revoked(&material, UnixTime::now());
        Ok(Arc::new(LiveTls {
            sources,
            county,
            current: RwLock::new(material),
            failure: Mutex::new(None),
            connections,
        }))
    }

    /// The material in force.
    pub fn current(&self) -> Arc<TlsMaterial> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The last reload that failed, while no later one succeeded.
    pub fn last_failure(&self) -> Option<ReloadFailure> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The live connections.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// Reads the files again. Unchanged files are left alone; files a previous attempt failed on
    /// are tried again only when `force` (SIGHUP), not by the file watch. New material takes
    /// effect for the next handshake, and connections whose certificates the new CRLs revoke
    /// are closed. Blocking file I/O of a few kilobytes.
    pub fn reload(&self, force: bool) -> ReloadOutcome {
        let material = match TlsMaterial::read(&self.sources, self.county) {
            Ok(material) => material,
            Err(error) => {
                let why = error.to_string();
                let fingerprint = self.fingerprint_of_files();
                let mut failure = self
                    .failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !force
                    && let Some(previous) = failure.as_ref()
                    && previous.fingerprint.is_some()
                    && previous.fingerprint == fingerprint
                {
                    return ReloadOutcome::StillFailing;
                }
                *failure = Some(ReloadFailure {
                    at: Utc::now(),
                    why: why.clone(),
                    fingerprint,
                });
                return ReloadOutcome::Failed { why };
            }
        };
        if !force && material.fingerprint == self.current().fingerprint {
            return ReloadOutcome::Unchanged;
        }
        let material = Arc::new(material);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&material);
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let closed = self.connections.close_revoked(&material, UnixTime::now());
        ReloadOutcome::Reloaded { closed }
    }

    /// A hash of the files as they are (for a failed read: what there is to read of them).
    fn fingerprint_of_files(&self) -> Option<[u8; 32]> {
        let mut hasher = Sha256::new();
        for path in self.sources.paths() {
            let bytes = std::fs::read(path).unwrap_or_default();
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(&bytes);
        }
        Some(hasher.finalize().into())
    }

    /// The peer listener's configuration: TLS 1.3, a client certificate naming one county
    /// required, both read from the material in force at each handshake.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, ConfigError> {
        self.listener_config(Role::PeerClient, false)
    }

    /// The operator listener's configuration (operator certificates from the operator CA), with
    /// the node's own certificate; read from the material in force at each handshake.
    pub fn operator_server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, ConfigError> {
        self.listener_config(Role::OperatorClient, true)
    }

    fn listener_config(
        self: &Arc<Self>,
        role: Role,
        tickets: bool,
    ) -> Result<Arc<ServerConfig>, ConfigError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(LiveClientVerifier {
                live: Arc::clone(self),
                role,
            }))
            .with_cert_resolver(Arc::new(LiveCertResolver(Arc::clone(self))));
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        if !tickets {
            // Our clients never resume, so issuing tickets would be wasted work.
            config.send_tls13_tickets = 0;
        }
        Ok(Arc::new(config))
    }

    /// The dialling side towards `expected` (see [`client_config`](super::client_config)), with
    /// certificate and verifier read from the material in force at each handshake.
    pub fn client_config(self: &Arc<Self>, expected: County) -> Result<Arc<ClientConfig>, ConfigError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LiveServerVerifier {
                live: Arc::clone(self),
                expected,
            }))
            .with_client_cert_resolver(Arc::new(LiveCertResolver(Arc::clone(self))));
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        config.enable_sni = false;
        config.resumption = Resumption::disabled();
        Ok(Arc::new(config))
    }
}

// === the per-handshake resolvers and verifiers ===

/// Hands rustls our certificate and key as they are now, on both sides.
#[derive(Debug)]
struct LiveCertResolver(Arc<LiveTls>);

impl ResolvesServerCert for LiveCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.current().certified_key))
    }
}

impl ResolvesClientCert for LiveCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.current().certified_key))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A listener's client-certificate verifier over the material in force.
#[derive(Debug)]
struct LiveClientVerifier {
    live: Arc<LiveTls>,
    role: Role,
}

impl ClientCertVerifier for LiveClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No CA names are sent: they would have to outlive a reload. Clients present their one
    /// certificate regardless (hancha's, grpcurl's, openssl's do).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.live
            .current()
            .verify_client(self.role, end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

/// The client side's server-certificate verifier over the material in force.
#[derive(Debug)]
struct LiveServerVerifier {
    live: Arc<LiveTls>,
    expected: County,
}

impl ServerCertVerifier for LiveServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.live
            .current()
            .verify_server(self.expected, end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

mod connections;

pub use connections::{ClosedConnection, Connections, Role, TrackedTcp};

#[cfg(test)]
mod tests;
