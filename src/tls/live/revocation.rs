//! The revocation policy in force: CRLs read from their files, the newest per issuer, and how
//! they are applied to handshakes and to signatures.

use super::*;

/// The revocation policy in force (see the module documentation): the CRLs, one per issuer, and
/// the grace after their `nextUpdate`. The one place that decides how CRLs are applied, to
/// handshakes (rustls' verifiers) and to counties' signatures (webpki, in
/// [`crate::tls::signing::verify`]) alike. Cheap to clone (an `Arc`). The default holds no CRL:
/// nothing is checked for revocation.
#[derive(Clone, Default)]
pub struct Revocation {
    inner: Arc<RevocationInner>,
}

#[derive(Default)]
struct RevocationInner {
    ders: Vec<CertificateRevocationListDer<'static>>,
    parsed: Vec<webpki::CertRevocationList<'static>>,
    summaries: Vec<CrlSummary>,
    grace: Duration,
}

impl fmt::Debug for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocation")
            .field("crls", &self.inner.summaries)
            .field("grace", &self.inner.grace)
            .finish()
    }
}

impl Revocation {
    /// Reads CRL files (`tls.crls`) with the grace `tls.crl_grace`, as the node does: for
    /// commands that check signatures without a running node.
    pub fn from_files(paths: &[PathBuf], grace: Duration) -> Result<Revocation, MaterialError> {
        let mut ders = Vec::new();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| MaterialError::Read {
                path: path.clone(),
                source,
            })?;
            ders.extend(parse_crl_file(path, &bytes)?);
        }
        Revocation::from_ders(ders, grace)
    }

    pub(super) fn from_ders(
        ders: Vec<CertificateRevocationListDer<'static>>,
        grace: Duration,
    ) -> Result<Revocation, MaterialError> {
        let (ders, summaries) = newest_per_issuer(ders);
        let parsed = ders
            .iter()
            .map(|der| {
                webpki::OwnedCertRevocationList::from_der(der)
                    .map(webpki::CertRevocationList::from)
                    .map_err(|error| MaterialError::Verifier(format!("a CRL: {error:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Revocation {
            inner: Arc::new(RevocationInner {
                ders,
                parsed,
                summaries,
                grace,
            }),
        })
    }

    /// The CRLs in force.
    pub fn crls(&self) -> &[CrlSummary] {
        &self.inner.summaries
    }

    /// The CRLs more than the grace past their `nextUpdate` at `now` (Unix seconds).
    pub fn stale_crls(&self, now: i64) -> Vec<&CrlSummary> {
        let grace = i64::try_from(self.inner.grace.as_secs()).unwrap_or(i64::MAX);
        self.inner
            .summaries
            .iter()
            .filter(|crl| {
                crl.next_update
                    .is_some_and(|next| now > next.saturating_add(grace))
            })
            .collect()
    }

    /// The policy on a verifier of peers' client certificates: every certificate of the chain
    /// below the anchor checked (rustls' default depth), a CA without a CRL not checked, expiry
    /// left to [`Revocation::check_freshness`] (rustls' default ignores it).
    pub(super) fn client_verifier(
        &self,
        builder: rustls::server::ClientCertVerifierBuilder,
    ) -> rustls::server::ClientCertVerifierBuilder {
        if self.inner.ders.is_empty() {
            return builder;
        }
        builder
            .with_crls(self.inner.ders.iter().cloned())
            .allow_unknown_revocation_status()
    }

    /// The same policy on a verifier of peers' server certificates.
    pub(super) fn server_verifier(
        &self,
        builder: rustls::client::ServerCertVerifierBuilder,
    ) -> rustls::client::ServerCertVerifierBuilder {
        if self.inner.ders.is_empty() {
            return builder;
        }
        builder
            .with_crls(self.inner.ders.iter().cloned())
            .allow_unknown_revocation_status()
    }

    /// The same policy as webpki options, for checking a chain outside a handshake: `None` when
    /// there is no CRL (nothing is checked).
    pub(crate) fn with_options<R>(
        &self,
        check: impl FnOnce(Option<webpki::RevocationOptions<'_>>) -> R,
    ) -> R {
        let crls: Vec<&webpki::CertRevocationList<'static>> = self.inner.parsed.iter().collect();
        let options = webpki::RevocationOptionsBuilder::new(&crls).ok().map(|builder| {
            builder
                .with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .with_expiration_policy(webpki::ExpirationPolicy::Ignore)
                .build()
        });
        check(options)
    }

    /// Refuses a chain one of whose certificates was issued by a CA whose CRL is past its
    /// `nextUpdate` and the grace (the revocation policy's expiry rule).
    pub(crate) fn check_freshness(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let stale = self.stale_crls(now);
        if stale.is_empty() {
            return Ok(());
        }
        for certificate in std::iter::once(end_entity).chain(intermediates) {
            let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate) else {
                continue;
            };
            if let Some(crl) = stale
                .iter()
                .find(|crl| crl.issuer_raw == parsed.issuer().as_raw())
            {
                let next_update = crl
                    .next_update
                    .and_then(|next| u64::try_from(next).ok())
                    .unwrap_or(0);
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::ExpiredRevocationListContext {
                        time: UnixTime::since_unix_epoch(Duration::from_secs(
                            u64::try_from(now).unwrap_or(0),
                        )),
                        next_update: UnixTime::since_unix_epoch(Duration::from_secs(next_update)),
                    },
                ));
            }
        }
        Ok(())
    }
}

/// Splits a CRL file into CRLs: PEM (`-----BEGIN X509 CRL-----` blocks) or a single DER CRL.
pub(super) fn parse_crl_file(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, MaterialError> {
    let bad = |reason: String| MaterialError::Crl {
        path: path.to_owned(),
        reason,
    };
    let ders: Vec<CertificateRevocationListDer<'static>> =
        if bytes.starts_with(b"-----") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
            CertificateRevocationListDer::pem_slice_iter(bytes)
                .collect::<Result<_, _>>()
                .map_err(|error| bad(error.to_string()))?
        } else {
            vec![CertificateRevocationListDer::from(bytes.to_vec())]
        };
    if ders.is_empty() {
        return Err(bad("no X509 CRL block in the file".into()));
    }
    for der in &ders {
        use x509_parser::prelude::FromDer;
        x509_parser::revocation_list::CertificateRevocationList::from_der(der)
            .map_err(|error| bad(error.to_string()))?;
    }
    Ok(ders)
}

/// Keeps the newest CRL (by `thisUpdate`) of each issuer, with what each says.
fn newest_per_issuer(
    ders: Vec<CertificateRevocationListDer<'static>>,
) -> (Vec<CertificateRevocationListDer<'static>>, Vec<CrlSummary>) {
    use x509_parser::prelude::FromDer;
    let mut newest: HashMap<Vec<u8>, (CertificateRevocationListDer<'static>, CrlSummary)> = HashMap::new();
    for der in ders {
        let Ok((_, crl)) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der) else {
            continue;
        };
        let issuer = crl.issuer();
        let summary = CrlSummary {
            issuer: issuer
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map_or_else(|| issuer.to_string(), str::to_owned),
            issuer_raw: issuer.as_raw().to_vec(),
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|time| time.timestamp()),
            revoked: crl.iter_revoked_certificates().count(),
        };
        match newest.get(&summary.issuer_raw) {
            Some((_, kept)) if kept.this_update >= summary.this_update => {}
            _ => {
                newest.insert(summary.issuer_raw.clone(), (der.clone(), summary));
            }
        }
    }
    let mut kept: Vec<_> = newest.into_values().collect();
    kept.sort_by(|a, b| a.1.issuer.cmp(&b.1.issuer));
    kept.into_iter().unzip()
}
