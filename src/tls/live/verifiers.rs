//! Building the verifiers: the material read from its files (certificate, key, trust anchors,
//! CRLs) with the rustls verifiers built from it, the checks they make on a peer's or an
//! operator's certificate, and the rustls configurations whose certificate resolvers and
//! verifiers read the material in force at each handshake.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use sha2::{Digest, Sha256};

use super::revocation::{Revocation, parse_crl_file};
use super::{LiveTls, MaterialError, Role, TlsMaterial, TlsSources};
use crate::tls::config::ConfigError;
use crate::tls::credentials::{LoadError, NodeIdentity, TrustAnchors};
use crate::tls::identity::{County, county_from_certificate};
use crate::tls::verify::{CountyMismatch, certificate_error, identity_error};

/// The only protocol a peer connection may speak, advertised by ALPN: gRPC runs on HTTP/2.
const ALPN_H2: &[u8] = b"h2";

/// Placeholder server name for rustls: names are not checked (see [`LiveServerVerifier`]).
const PLACEHOLDER_SERVER_NAME: &str = "peer.hancha.invalid";

impl TlsMaterial {
    /// Reads every file once and builds the material, or says why it cannot.
    pub(super) fn read(sources: &TlsSources, county: County) -> Result<TlsMaterial, MaterialError> {
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

    fn check_crl_freshness(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        self.revocation.check_freshness(end_entity, intermediates, now)
    }

    /// Verifies a client certificate as the listener of `role` would now.
    pub(super) fn verify_client(
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
    pub(super) fn verify_server(
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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// === the rustls configurations ===

impl LiveTls {
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
