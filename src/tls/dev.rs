//! Development and test certificates, minted with rcgen. **Never for production**: the keys
//! written by [`generate_dev_certs`] are committed to the repository, so anyone can impersonate
//! any development county.
//!
//! Production trust anchors and node certificates come from configuration; this module exists so
//! that a developer can run a few nodes on one machine (`hancha certs dev`) and so that tests can
//! mint good, expired and malformed certificates at run time ([`TestPki`]).

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber, SigningKey,
};
use x509_parser::prelude::FromDer;

use super::credentials::{LoadError, NodeIdentity};
use super::identity::{County, IdentityError};

pub use super::identity::{OPERATOR_URI_PREFIX, TOWNSHIP_URI_PREFIX};

/// Validity of development certificates: long enough that nobody regenerates them by surprise.
const DEV_VALIDITY_DAYS: u64 = 3650;

/// Why development or test certificates could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// A county code that is not six ASCII digits.
    #[error("invalid county code")]
    County(#[from] IdentityError),
    /// rcgen refused the parameters (e.g. a SAN that is not valid IA5 text).
    #[error("cannot generate certificate")]
    Generate(#[from] rcgen::Error),
    /// A validity bound outside what X.509 can encode.
    #[error("validity time {0} cannot be encoded")]
    Time(DateTime<Utc>),
    /// Writing a file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file we tried to write.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A freshly minted certificate did not load back (a bug in this module).
    #[error("minted certificate does not load")]
    Load(#[from] LoadError),
    /// A file to revoke is not a certificate, or no development CA in the directory issued it.
    #[error("{path}: {reason}")]
    Revoke {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A development CA file (or a certificate to revoke) could not be read (run
    /// `hancha certs dev counties` first for the CAs).
    #[error("cannot read {path} (the development CAs are made by `hancha certs dev counties`)")]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// Issues a development operator certificate `operator-<name>.pem` / `operator-<name>-key.pem`
/// in `dir`, signed by the development operator CA already there (`operator-ca.pem`,
/// `operator-ca-key.pem`), with URI SAN `urn:hancha:operator:<name>` and, for a township office,
/// `urn:hancha:township:<township>`. Valid for ten years; returns the two files written. The
/// caller checks the name and township (the node checks them again on every call).
pub fn issue_dev_operator(
    dir: &Path,
    name: &str,
    township: Option<&str>,
) -> Result<(PathBuf, PathBuf), DevCertError> {
    let read = |file: &str| {
        let path = dir.join(file);
        fs::read_to_string(&path).map_err(|source| DevCertError::Read { path, source })
    };
    let key = KeyPair::from_pem(&read("operator-ca-key.pem")?)?;
    let issuer = Issuer::from_ca_cert_pem(&read("operator-ca.pem")?, key)?;
    let townships: Vec<&str> = township.into_iter().collect();
    let (cert_pem, key_pem) = issue_operator_leaf(
        &issuer,
        name,
        &townships,
        Utc::now() - Days::new(1),
        Utc::now() + Days::new(DEV_VALIDITY_DAYS),
    )?;
    let cert = write_file(&dir.join(format!("operator-{name}.pem")), &cert_pem)?;
    let key = write_file(&dir.join(format!("operator-{name}-key.pem")), &key_pem)?;
    Ok((cert, key))
}

/// Issues a new development county certificate `(cert_pem, key_pem)` for `code` from an
/// existing development county CA (`ca_pem`, `ca_key_pem`), with a fresh key, valid between the
/// given instants: what a county does when its node certificate is renewed or rotated. The
/// certificate has the same form as [`generate_dev_certs`]' county certificates.
pub fn issue_dev_county(
    ca_pem: &str,
    ca_key_pem: &str,
    code: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<(String, String), DevCertError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, KeyPair::from_pem(ca_key_pem)?)?;
    issue_county_leaf(&issuer, code, not_before, not_after)
}

/// Writes one file, naming it in the error.
fn write_file(path: &Path, contents: &str) -> Result<PathBuf, DevCertError> {
    fs::write(path, contents).map_err(|source| DevCertError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(path.to_owned())
}

/// Writes a development PKI into `dir` (created if missing) and returns the files written.
///
/// Files: `ca.pem` / `ca-key.pem` (the county CA), `<county>.pem` / `<county>-key.pem` per
/// county (URI SAN `urn:hancha:county:<county>`, DNS `localhost`, IP `127.0.0.1`, server and
/// client authentication), and `operator-ca.pem` / `operator-ca-key.pem` / `operator.pem` /
/// `operator-key.pem` (a separate CA and one client certificate `urn:hancha:operator:dev`), and
/// each CA's empty certificate revocation list, [`COUNTY_CRL`] and [`OPERATOR_CRL`] (see
/// [`revoke_dev`]).
/// Every run makes new CAs, so previously generated certificates stop verifying; all county codes
/// are checked before anything is written. Valid for ten years from now.
pub fn generate_dev_certs(dir: &Path, counties: &[&str]) -> Result<Vec<PathBuf>, DevCertError> {
    let counties = counties
        .iter()
        .map(|code| County::parse(code))
        .collect::<Result<Vec<_>, _>>()?;
    fs::create_dir_all(dir).map_err(|source| DevCertError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let not_before = Utc::now() - Days::new(1);
    let not_after = Utc::now() + Days::new(DEV_VALIDITY_DAYS);
    let mut written = Vec::new();
    let mut write = |name: String, contents: &str| -> Result<(), DevCertError> {
        written.push(write_file(&dir.join(name), contents)?);
        Ok(())
    };

    let county_ca = TestPki::with_common_name("hancha DEVELOPMENT county CA (not for production)")?;
    write("ca.pem".to_owned(), &county_ca.ca_pem())?;
    write("ca-key.pem".to_owned(), &county_ca.ca_key_pem())?;
    for county in counties {
        let (cert_pem, key_pem) = county_ca.issue_county(county.as_str(), not_before, not_after)?;
        write(format!("{county}.pem"), &cert_pem)?;
        write(format!("{county}-key.pem"), &key_pem)?;
    }

    write(
        COUNTY_CRL.to_owned(),
        &county_ca.crl_pem(&[], not_before, not_after, 1)?,
    )?;

    let operator_ca = TestPki::with_common_name("hancha DEVELOPMENT operator CA (not for production)")?;
    let (operator_pem, operator_key_pem) = operator_ca.issue_operator("dev", not_before, not_after)?;
    write("operator-ca.pem".to_owned(), &operator_ca.ca_pem())?;
    write("operator-ca-key.pem".to_owned(), &operator_ca.ca_key_pem())?;
    write("operator.pem".to_owned(), &operator_pem)?;
    write("operator-key.pem".to_owned(), &operator_key_pem)?;
    write(
        OPERATOR_CRL.to_owned(),
        &operator_ca.crl_pem(&[], not_before, not_after, 1)?,
    )?;
    Ok(written)
}

/// The development county CA's revocation list in a `hancha certs dev` directory.
pub const COUNTY_CRL: &str = "crl.pem";

/// The development operator CA's revocation list.
pub const OPERATOR_CRL: &str = "operator-crl.pem";

/// What [`revoke_dev`] did.
#[derive(Debug)]
pub struct Revoked {
    /// The CRL files written.
    pub crls: Vec<PathBuf>,
    /// The serial numbers newly revoked (hex), with the file that held each certificate.
    pub revoked: Vec<(PathBuf, String)>,
}

/// Revokes development certificates: adds each certificate in `certificates` to the CRL of the
/// development CA in `dir` that issued it (county CA: `crl.pem`; operator CA:
/// `operator-crl.pem`), keeping what those CRLs already revoked, and writes them again signed by
/// that CA, valid for `valid_for` from now, with the next CRL number. With no certificates the
/// county CA's CRL is issued again (a fresh `nextUpdate`). A certificate already revoked stays
/// revoked once.
pub fn revoke_dev(
    dir: &Path,
    certificates: &[PathBuf],
    valid_for: Duration,
) -> Result<Revoked, DevCertError> {
    let read = |file: &Path| {
        fs::read_to_string(file).map_err(|source| DevCertError::Read {
            path: file.to_owned(),
            source,
        })
    };
    let cas = [
        ("ca.pem", "ca-key.pem", COUNTY_CRL),
        ("operator-ca.pem", "operator-ca-key.pem", OPERATOR_CRL),
    ];
    // per CA: the issuer, the subject it signs as, and the serials to add
    let mut work: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut revoked = Vec::new();
    let subjects: Vec<Option<Vec<u8>>> = cas
        .iter()
        .map(|(ca, _, _)| {
            let pem = fs::read_to_string(dir.join(ca)).ok()?;
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).ok()?;
            let der: rustls::pki_types::CertificateDer<'_> = der;
            let (_, parsed) = x509_parser::parse_x509_certificate(&der).ok()?;
            Some(parsed.subject().as_raw().to_vec())
        })
        .collect();
    for path in certificates {
        let pem = read(path)?;
        let bad = |reason: &str| DevCertError::Revoke {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let der: rustls::pki_types::CertificateDer<'_> =
            rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
                .map_err(|_| bad("not a PEM certificate"))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|_| bad("not a certificate"))?;
        let which = subjects
            .iter()
            .position(|subject| subject.as_deref() == Some(parsed.issuer().as_raw()))
            .ok_or_else(|| {
                bad(&format!(
                    "not issued by the development county CA or operator CA in {}",
                    dir.display()
                ))
            })?;
        if parsed.subject().as_raw() == parsed.issuer().as_raw() {
            return Err(bad("a CA's own certificate: revoke the certificates it issued"));
        }
        let serial = parsed.raw_serial().to_vec();
        revoked.push((path.clone(), hex::encode(&serial)));
        work.push((which, serial));
    }
    if certificates.is_empty() {
        work.push((0, Vec::new()));
    }
    let now = Utc::now();
    let mut written = Vec::new();
    for (which, (ca, ca_key, crl_file)) in cas.iter().enumerate() {
        let serials: Vec<&Vec<u8>> = work
            .iter()
            .filter(|(w, serial)| *w == which && !serial.is_empty())
            .map(|(_, serial)| serial)
            .collect();
        if !work.iter().any(|(w, _)| *w == which) {
            continue;
        }
        let key = KeyPair::from_pem(&read(&dir.join(ca_key))?)?;
        let issuer = Issuer::from_ca_cert_pem(&read(&dir.join(ca))?, key)?;
        let crl_path = dir.join(crl_file);
        let (mut entries, number) = match fs::read_to_string(&crl_path) {
            Ok(pem) => existing_revocations(&pem),
            Err(_) => (Vec::new(), 0),
        };
        for serial in serials {
            if !entries.iter().any(|(known, _)| known == serial) {
                entries.push((serial.clone(), now.timestamp()));
            }
        }
        let pem = crl_of(
            &issuer,
            &entries,
            now - Duration::minutes(1),
            now + valid_for,
            number + 1,
        )?;
        written.push(write_file(&crl_path, &pem)?);
    }
    Ok(Revoked {
        crls: written,
        revoked,
    })
}

/// The serials (raw) and revocation times a PEM CRL lists, and its CRL number (0 if none).
fn existing_revocations(pem: &str) -> (Vec<(Vec<u8>, i64)>, u64) {
    let Ok(der) = <rustls::pki_types::CertificateRevocationListDer<'_> as rustls::pki_types::pem::PemObject>::from_pem_slice(pem.as_bytes()) else {
        return (Vec::new(), 0);
    };
    let Ok((_, crl)) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der) else {
        return (Vec::new(), 0);
    };
    let entries = crl
        .iter_revoked_certificates()
        .map(|entry| (entry.raw_serial().to_vec(), entry.revocation_date.timestamp()))
        .collect();
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n.clone()).ok())
        .unwrap_or(0);
    (entries, number)
}

/// A CRL signed by `issuer` revoking `entries` (raw serial, revocation time), PEM.
fn crl_of(
    issuer: &Issuer<'_, impl SigningKey>,
    entries: &[(Vec<u8>, i64)],
    this_update: DateTime<Utc>,
    next_update: DateTime<Utc>,
    number: u64,
) -> Result<String, DevCertError> {
    let time = |instant: DateTime<Utc>| {
        x509_parser::time::ASN1Time::from_timestamp(instant.timestamp())
            .map(|time| time.to_datetime())
            .map_err(|_| DevCertError::Time(instant))
    };
    let revoked_certs = entries
        .iter()
        .map(|(serial, at)| {
            let at = DateTime::from_timestamp(*at, 0).unwrap_or(this_update);
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: time(at)?,
                reason_code: None,
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, DevCertError>>()?;
    let params = CertificateRevocationListParams {
        this_update: time(this_update)?,
        next_update: time(next_update)?,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(issuer)?.pem()?)
}

// === impl TestPki ===

/// A throw-away certificate authority for development and tests.
///
/// Each call to [`TestPki::new`] makes a CA with a fresh key, so two instances are unrelated:
/// certificates from one do not verify against the other (which is how tests build a "foreign
/// CA"). Leaves are ECDSA P-256, like the development certificates.
#[derive(Debug)]
pub struct TestPki {
    /// The CA's certificate and signing key.
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl TestPki {
    /// A new CA named "hancha test CA", valid from yesterday for ten years.
    pub fn new() -> Result<Self, DevCertError> {
        Self::with_common_name("hancha test CA")
    }

    /// A new CA with the given common name (visible to `openssl x509 -text` and in handshake
    /// errors of standard tools).
    pub fn with_common_name(common_name: &str) -> Result<Self, DevCertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(
            &mut params,
            Utc::now() - Days::new(1),
            Utc::now() + Days::new(DEV_VALIDITY_DAYS),
        )?;
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { ca })
    }

    /// The CA certificate, PEM: what peers put in their trust anchors.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA's private key, PEM. Only development CAs ever expose this.
    pub fn ca_key_pem(&self) -> String {
        self.ca.key().serialize_pem()
    }

    /// A CRL of this CA, PEM, revoking the certificates (PEM) in `revoked`, issued at
    /// `this_update`, valid until `next_update` (pass a past instant for a stale CRL), with CRL
    /// number `number`.
    pub fn crl_pem(
        &self,
        revoked: &[&str],
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
        number: u64,
    ) -> Result<String, DevCertError> {
        let mut entries = Vec::new();
        for pem in revoked {
            let der: rustls::pki_types::CertificateDer<'_> =
                rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).map_err(|_| {
                    DevCertError::Revoke {
                        path: PathBuf::from("PEM text"),
                        reason: "not a PEM certificate".into(),
                    }
                })?;
            let (_, parsed) =
                x509_parser::parse_x509_certificate(&der).map_err(|_| DevCertError::Revoke {
                    path: PathBuf::from("PEM text"),
                    reason: "not a certificate".into(),
                })?;
            entries.push((parsed.raw_serial().to_vec(), this_update.timestamp()));
        }
        crl_of(&*self.ca, &entries, this_update, next_update, number)
    }

    /// A county node certificate `(cert_pem, key_pem)` naming `code`, valid between the given
    /// instants (pass past instants to get an expired certificate). Carries DNS `localhost` and IP
    /// `127.0.0.1` so standard tools (`grpcurl`, `openssl s_client`) accept it too.
    pub fn issue_county(
        &self,
        code: &str,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<(String, String), DevCertError> {
        issue_county_leaf(&*self.ca, code, not_before, not_after)
    }

    /// A node certificate with exactly these URI SANs (plus `localhost` / `127.0.0.1`), for tests
    /// of certificates that name no county, several counties, or a malformed code.
    pub fn issue_node_with_uris(
        &self,
        uris: &[&str],
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<(String, String), DevCertError> {
        self.issue_node("hancha node", uris, not_before, not_after)
    }

    fn issue_node(
        &self,
        common_name: &str,
        uris: &[&str],
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<(String, String), DevCertError> {
        issue_node_leaf(&*self.ca, common_name, uris, not_before, not_after)
    }

    /// An operator client certificate `(cert_pem, key_pem)` with URI SAN
    /// `urn:hancha:operator:<name>` and client authentication only.
    pub fn issue_operator(
        &self,
        name: &str,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<(String, String), DevCertError> {
        issue_operator_leaf(&*self.ca, name, &[], not_before, not_after)
    }

    /// An operator certificate of a township office: [`TestPki::issue_operator`] plus one
    /// `urn:hancha:township:<code>` URI SAN per entry of `townships` (tests pass two, or a
    /// township of another county, to see them refused).
    pub fn issue_township_operator(
        &self,
        name: &str,
        townships: &[&str],
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<(String, String), DevCertError> {
        issue_operator_leaf(&*self.ca, name, townships, not_before, not_after)
    }

    /// A ready-to-use identity for `code`, valid from an hour ago for a day: the common case in
    /// tests.
    pub fn county_identity(&self, code: &str) -> Result<NodeIdentity, DevCertError> {
        let now = Utc::now();
        let (cert_pem, key_pem) =
            self.issue_county(code, now - Duration::hours(1), now + Duration::days(1))?;
        Ok(NodeIdentity::from_pem(&cert_pem, &key_pem)?)
    }
}

/// A county node certificate from `issuer` naming `code` (see [`TestPki::issue_county`]).
fn issue_county_leaf(
    issuer: &Issuer<'_, impl SigningKey>,
    code: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<(String, String), DevCertError> {
    let county = County::parse(code)?;
    issue_node_leaf(
        issuer,
        &format!("hancha county {county}"),
        &[&county.uri()],
        not_before,
        not_after,
    )
}

/// A node certificate from `issuer` with exactly these URI SANs plus `localhost` and
/// `127.0.0.1`, for server and client authentication.
fn issue_node_leaf(
    issuer: &Issuer<'_, impl SigningKey>,
    common_name: &str,
    uris: &[&str],
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<(String, String), DevCertError> {
    let mut alternative_names = uris
        .iter()
        .map(|uri| Ok(SanType::URI((*uri).try_into()?)))
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    alternative_names.push(SanType::DnsName("localhost".try_into()?));
    alternative_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    issue_leaf(
        issuer,
        common_name,
        alternative_names,
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        not_before,
        not_after,
    )
}

/// An operator client certificate from `issuer`: `urn:hancha:operator:<name>`, one
/// `urn:hancha:township:` SAN per entry of `townships`, client authentication only.
fn issue_operator_leaf(
    issuer: &Issuer<'_, impl SigningKey>,
    name: &str,
    townships: &[&str],
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<(String, String), DevCertError> {
    let mut uris = vec![format!("{OPERATOR_URI_PREFIX}{name}")];
    uris.extend(
        townships
            .iter()
            .map(|code| format!("{TOWNSHIP_URI_PREFIX}{code}")),
    );
    let alternative_names = uris
        .into_iter()
        .map(|uri| Ok(SanType::URI(uri.try_into()?)))
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    let common_name = match townships {
        [] => format!("hancha operator {name}"),
        [township, ..] => format!("hancha operator {name} (township {township})"),
    };
    issue_leaf(
        issuer,
        &common_name,
        alternative_names,
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        not_before,
        not_after,
    )
}

/// A leaf certificate `(cert_pem, key_pem)` signed by `issuer`, with a fresh P-256 key.
fn issue_leaf(
    issuer: &Issuer<'_, impl SigningKey>,
    common_name: &str,
    subject_alt_names: Vec<SanType>,
    extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<(String, String), DevCertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    params.subject_alt_names = subject_alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = extended_key_usages;
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, not_before, not_after)?;
    let key = KeyPair::generate()?;
    let certificate = params.signed_by(&key, issuer)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "hancha development");
    name.push(DnType::CommonName, common_name);
    name
}

/// rcgen speaks `time`, the rest of the crate speaks chrono; x509-parser's `ASN1Time` bridges the
/// two without another dependency.
fn set_validity(
    params: &mut CertificateParams,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<(), DevCertError> {
    let convert = |instant: DateTime<Utc>| {
        x509_parser::time::ASN1Time::from_timestamp(instant.timestamp())
            .map(|time| time.to_datetime())
            .map_err(|_| DevCertError::Time(instant))
    };
    params.not_before = convert(not_before)?;
    params.not_after = convert(not_after)?;
    Ok(())
}

#[cfg(test)]
mod tests;
