//! The web listener's own certificate (`[web.tls]`): browsers and county systems need a DNS name
//! or an IP address in it, which county certificates do not carry. Read at start and read again
//! as the node's other TLS material is — on SIGHUP and when the files change
//! (`crate::app::tls_reload`) — so a renewed certificate is served without a restart. A reload
//! that fails keeps the certificate in force (it still works) and says why.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::config::WebTls;

/// The certificate in force and the files it comes from.
#[derive(Debug)]
pub struct WebCertificate {
    files: WebTls,
    current: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// SHA-256 of both files' content, to tell a change from a mere `touch`.
    digest: [u8; 32],
}

/// What a reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebReload {
    /// The files are as they were.
    Unchanged,
    /// A new certificate is in force for new connections.
    Reloaded,
    /// The files could not be used; the previous certificate stays in force.
    Failed(String),
}

impl WebCertificate {
    /// Reads `files`; fails when they are not a certificate chain and its key.
    pub fn load(files: &WebTls) -> anyhow::Result<Arc<WebCertificate>> {
        let loaded = read(files)?;
        Ok(Arc::new(WebCertificate {
            files: files.clone(),
            current: RwLock::new(loaded),
        }))
    }

    /// Reads the files again: when they changed (or always, with `force`), the new certificate
    /// is served to new connections.
    pub fn reload(&self, force: bool) -> WebReload {
        let digest = match digest_of(&self.files) {
            Ok(digest) => digest,
            Err(error) => return WebReload::Failed(format!("{error:#}")),
        };
        let unchanged = self
            .current
            .read()
            .map(|loaded| loaded.digest == digest)
            .unwrap_or(false);
        if unchanged && !force {
            return WebReload::Unchanged;
        }
        match read(&self.files) {
            Ok(loaded) => {
                if let Ok(mut current) = self.current.write() {
                    *current = loaded;
                }
                WebReload::Reloaded
            }
            Err(error) => WebReload::Failed(format!("{error:#}")),
        }
    }

    /// The certificate in force (its leaf), for tests and logs.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.current
            .read()
            .ok()
            .and_then(|loaded| loaded.key.cert.first().cloned())
    }
}

impl ResolvesServerCert for WebCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|loaded| Arc::clone(&loaded.key))
    }
}

fn digest_of(files: &WebTls) -> anyhow::Result<[u8; 32]> {
    let mut hash = Sha256::new();
    for path in [&files.cert, &files.key] {
        hash.update(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(hash.finalize().into())
}

fn read(files: &WebTls) -> anyhow::Result<Loaded> {
    let digest = digest_of(files)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading web.tls.cert {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "web.tls.cert {} is not a PEM certificate chain",
                files.cert.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!("web.tls.cert {} holds no certificate", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("web.tls.key {} is not a PEM private key", files.key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider)
        .context("the web.tls certificate and key do not go together")?;
    Ok(Loaded {
        key: Arc::new(key),
        digest,
    })
}
