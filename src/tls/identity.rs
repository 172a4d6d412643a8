//! Who a certificate says its holder is: the county named in its single
//! `urn:hancha:county:` URI SAN, or the operator named in its `urn:hancha:operator:` URI SAN
//! with the township office an `urn:hancha:township:` URI SAN may add.
//!
//! A peer's county is only ever read from a certificate the TLS layer has already verified;
//! nothing a peer *says* (metadata, message fields) can change who it is.

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;

/// The URI SAN prefix that names a county: `urn:hancha:county:<6 digits>`.
///
/// Kept public so that certificate tooling (and the operator documentation) can quote the one
/// spelling the gateway accepts.
pub const COUNTY_URI_PREFIX: &str = "urn:hancha:county:";

/// The URI SAN prefix of operator certificates (`urn:hancha:operator:<name>`), which the
/// operator API authenticates; distinct from county identities so that neither can pass as the
/// other.
pub const OPERATOR_URI_PREFIX: &str = "urn:hancha:operator:";

/// The URI SAN prefix an operator certificate of a township office carries, at most once:
/// `urn:hancha:township:<9 digits>`. What the code means (a township of the node's county) is
/// the domain's business (`crate::domain::policy::Principal::operator`).
pub const TOWNSHIP_URI_PREFIX: &str = "urn:hancha:township:";

/// What an operator certificate says about its holder, as written in it; checked against the
/// node's county by the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorIdentity {
    /// The name after `urn:hancha:operator:`.
    pub name: String,
    /// The text after `urn:hancha:township:`, when the certificate is a township office's.
    pub township: Option<String>,
}

/// A county code as a certificate states it: exactly six ASCII digits.
///
/// This is a syntactic check only; what a code *means* (which county, whether it exists) is the
/// domain's business (`crate::domain::division::CountyCode`). The type exists so that the TLS
/// layer never hands out an unchecked string, and it is `Copy` so it can ride along in request
/// extensions and log fields for free.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct County([u8; 6]);

impl County {
    /// Accepts exactly six ASCII digits; anything else is [`IdentityError::MalformedCounty`].
    pub fn parse(code: &str) -> Result<Self, IdentityError> {
        let bytes: [u8; 6] = code
            .as_bytes()
            .try_into()
            .map_err(|_| IdentityError::MalformedCounty(code.to_owned()))?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(IdentityError::MalformedCounty(code.to_owned()));
        }
        Ok(Self(bytes))
    }

    /// The six digits, for logs, URIs and conversion into the domain's `CountyCode`.
    pub fn as_str(&self) -> &str {
        // Every byte is an ASCII digit (checked in `parse`), so this cannot fail.
        std::str::from_utf8(&self.0).expect("county bytes are ASCII digits")
    }

    /// The URI SAN a certificate for this county carries.
    pub fn uri(&self) -> String {
        format!("{COUNTY_URI_PREFIX}{self}")
    }
}

impl fmt::Display for County {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for County {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "County({})", self.as_str())
    }
}

impl FromStr for County {
    type Err = IdentityError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse(code)
    }
}

/// Why a certificate does not identify exactly one county.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not a well-formed X.509 certificate (or its SAN extension is malformed).
    #[error("certificate cannot be parsed: {0}")]
    Unparseable(String),
    /// No `urn:hancha:county:` URI SAN: the certificate may be valid, but not for a county node.
    #[error("certificate names no county (no {COUNTY_URI_PREFIX} URI SAN)")]
    NoCounty,
    /// More than one county URI: refusing to guess which one the holder speaks for.
    #[error("certificate names {count} counties, exactly one is allowed")]
    SeveralCounties {
        /// How many county URIs the certificate carries.
        count: usize,
    },
    /// Not an operator certificate: no `urn:hancha:operator:` URI SAN, several, or a county SAN
    /// as well (a county node's certificate never opens the operator API).
    #[error(
        "the client certificate is not an operator certificate: it needs exactly one {OPERATOR_URI_PREFIX}<name> URI SAN and no {COUNTY_URI_PREFIX} SAN"
    )]
    NotAnOperator,
    /// An operator certificate with more than one township: an office works for one township.
    #[error(
        "the operator certificate names {count} townships: a township office's certificate names exactly one"
    )]
    SeveralTownships {
        /// How many township URIs the certificate carries.
        count: usize,
    },
    /// A county URI whose code is not six ASCII digits.
    #[error("the county code of a urn:hancha:county: URI SAN is not six ASCII digits")]
    MalformedCounty(String),
}

/// Reads the county a DER certificate names in its single `urn:hancha:county:` URI SAN.
///
/// Call this only on a certificate that has been verified (the rustls verifiers in this module do
/// so during the handshake); the function itself checks no signature. Other URI SANs are ignored,
/// so a certificate may also carry e.g. a SPIFFE identity.
pub fn county_from_certificate(der: &[u8]) -> Result<County, IdentityError> {
    let (remainder, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|error| IdentityError::Unparseable(error.to_string()))?;
    if !remainder.is_empty() {
        return Err(IdentityError::Unparseable(
            "trailing bytes after certificate".to_owned(),
        ));
    }
    let Some(alternative_names) = certificate
        .subject_alternative_name()
        .map_err(|error| IdentityError::Unparseable(error.to_string()))?
    else {
        return Err(IdentityError::NoCounty);
    };
    let county_codes: Vec<&str> = alternative_names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(COUNTY_URI_PREFIX),
            _ => None,
        })
        .collect();
    match county_codes.as_slice() {
        [] => Err(IdentityError::NoCounty),
        [code] => County::parse(code),
        several => Err(IdentityError::SeveralCounties { count: several.len() }),
    }
}

/// Reads the operator a verified DER certificate names in its single `urn:hancha:operator:`
/// URI SAN, and the township of its `urn:hancha:township:` SAN if it has one. A certificate that
/// also names a county is refused (a county node's certificate never opens the operator API), and
/// so is one naming several townships.
pub fn operator_from_certificate(der: &[u8]) -> Result<OperatorIdentity, IdentityError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|error| IdentityError::Unparseable(error.to_string()))?;
    let Some(alternative_names) = certificate
        .subject_alternative_name()
        .map_err(|error| IdentityError::Unparseable(error.to_string()))?
    else {
        return Err(IdentityError::NotAnOperator);
    };
    let uris: Vec<&str> = alternative_names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    if uris.iter().any(|uri| uri.starts_with(COUNTY_URI_PREFIX)) {
        return Err(IdentityError::NotAnOperator);
    }
    let operators: Vec<&str> = uris
        .iter()
        .filter_map(|uri| uri.strip_prefix(OPERATOR_URI_PREFIX))
        .collect();
    let name = match operators.as_slice() {
        [name] if !name.is_empty() => (*name).to_string(),
        _ => return Err(IdentityError::NotAnOperator),
    };
    let townships: Vec<&str> = uris
        .iter()
        .filter_map(|uri| uri.strip_prefix(TOWNSHIP_URI_PREFIX))
        .collect();
    let township = match townships.as_slice() {
        [] => None,
        [township] => Some((*township).to_string()),
        several => return Err(IdentityError::SeveralTownships { count: several.len() }),
    };
    Ok(OperatorIdentity { name, township })
}

/// When a DER certificate stops being valid (`notAfter`), in Unix seconds; `None` for bytes
/// that are not a certificate. For monitoring, which alerts well before the handshake fails.
pub fn certificate_not_after(der: &[u8]) -> Option<i64> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(certificate.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn county_accepts_six_ascii_digits_only() {
        assert_eq!(County::parse("430703").unwrap().as_str(), "430703");
        for bad in [
            "",
            "43070",
            "4307031",
            "43070a",
            "４３０７０３",
            "430 03",
            "+43070",
        ] {
            assert_eq!(
                County::parse(bad),
                Err(IdentityError::MalformedCounty(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn county_displays_as_its_digits_and_uri() {
        let county = County::parse("431322").unwrap();
        assert_eq!(county.to_string(), "431322");
        assert_eq!(county.uri(), "urn:hancha:county:431322");
        assert_eq!(format!("{county:?}"), "County(431322)");
    }

    fn leaf_der(uris: &[&str]) -> Vec<u8> {
        let pki = crate::tls::dev::TestPki::new().unwrap();
        let now = chrono::Utc::now();
        let (cert_pem, _key_pem) = pki
            .issue_node_with_uris(uris, now, now + chrono::Duration::days(1))
            .unwrap();
        CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn reads_the_single_county_uri_and_ignores_other_uris() {
        let der = leaf_der(&["spiffe://hancha/node", "urn:hancha:county:430582"]);
        assert_eq!(county_from_certificate(&der).unwrap().as_str(), "430582");
    }

    #[test]
    fn certificate_without_county_uri_names_no_county() {
        let der = leaf_der(&["urn:hancha:operator:dev"]);
        assert_eq!(county_from_certificate(&der), Err(IdentityError::NoCounty));
    }

    #[test]
    fn county_uri_with_malformed_code_is_refused() {
        let der = leaf_der(&["urn:hancha:county:43070X"]);
        assert_eq!(
            county_from_certificate(&der),
            Err(IdentityError::MalformedCounty("43070X".to_owned()))
        );
    }

    #[test]
    fn reads_an_operator_with_or_without_one_township() {
        let der = leaf_der(&["urn:hancha:operator:clerk"]);
        assert_eq!(
            operator_from_certificate(&der),
            Ok(OperatorIdentity {
                name: "clerk".into(),
                township: None
            })
        );
        let der = leaf_der(&["urn:hancha:operator:clerk", "urn:hancha:township:430703101"]);
        assert_eq!(
            operator_from_certificate(&der).unwrap().township.as_deref(),
            Some("430703101")
        );
    }

    #[test]
    fn an_operator_certificate_with_two_townships_or_a_county_is_refused() {
        let der = leaf_der(&[
            "urn:hancha:operator:clerk",
            "urn:hancha:township:430703101",
            "urn:hancha:township:430703102",
        ]);
        assert_eq!(
            operator_from_certificate(&der),
            Err(IdentityError::SeveralTownships { count: 2 })
        );
        let der = leaf_der(&["urn:hancha:operator:clerk", "urn:hancha:county:430703"]);
        assert_eq!(operator_from_certificate(&der), Err(IdentityError::NotAnOperator));
        let der = leaf_der(&["urn:hancha:county:430703"]);
        assert_eq!(operator_from_certificate(&der), Err(IdentityError::NotAnOperator));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(
            county_from_certificate(b"not a certificate"),
            Err(IdentityError::Unparseable(_))
        ));
    }
}
