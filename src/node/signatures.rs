//! Checking the counties' signatures on an agreement version: each `[[signature]]` verified
//! with `crate::tls::signing` against this node's trust anchors, the outcomes weighed by
//! [`assess_signatures`], and what is recorded with the version. One path for `agreement
//! apply` (local and remote), for the agreements directory read at start-up and for `hancha
//! agreement check`.

use chrono::{DateTime, Utc};

use crate::domain::agreement::{
    Agreement, SignatureCheck, SignatureEntry, Unsigned, VersionState, assess_signatures,
};
use crate::domain::division::CountyCode;
use crate::store::agreements::{SIGNATURE_VERIFIED, StoredSignature};
use crate::tls::AnchorsInForce;
use crate::tls::signing::{AGREEMENT_PURPOSE, Signature, verify};

/// How this node treats the counties' signatures on agreement versions.
#[derive(Clone, Debug)]
pub struct AgreementSignatures {
    /// Whether a version must be signed by every party to be applied, loaded and used
    /// (configuration `require_signatures`, on unless turned off).
    pub required: bool,
    /// What a signer's certificate must chain to: the node's TLS trust anchors, as in force
    /// when a signature is checked (a running node follows reloads of its TLS material). The
    /// audit chain checks peers' checkpoints against the same anchors. Without them no
    /// signature verifies.
    pub anchors: Option<AnchorsInForce>,
}

impl Default for AgreementSignatures {
    /// Signatures required, and no anchors to check them with: nothing can be applied until the
    /// node is given its anchors (fails closed).
    fn default() -> Self {
        AgreementSignatures {
            required: true,
            anchors: None,
        }
    }
}

/// What checking a version's signatures found.
#[derive(Clone, Debug)]
pub struct SignatureReport {
    /// One per `[[signature]]` table, in file order.
    pub checks: Vec<SignatureCheck>,
    /// The same, as recorded with the version.
    pub records: Vec<StoredSignature>,
    /// Whether every party signed and every signature verified.
    pub verdict: Result<(), Unsigned>,
}

impl AgreementSignatures {
    /// Checks every signature of `agreement` at instant `at`.
    pub fn examine(&self, agreement: &Agreement, at: DateTime<Utc>) -> SignatureReport {
        let (checks, records): (Vec<SignatureCheck>, Vec<StoredSignature>) = agreement
            .signatures()
            .iter()
            .map(|entry| self.check_one(agreement, entry, at))
            .unzip();
        let verdict = assess_signatures(agreement, &checks);
        SignatureReport {
            checks,
            records,
            verdict,
        }
    }

    /// Whether a version whose signatures were judged `signed_by_all` when applied may be used.
    pub fn usable(&self, signed_by_all: bool) -> bool {
        signed_by_all || !self.required
    }

    /// A version's state as recorded, with this rule applied: a version not signed by every
    /// party counts as unsigned only while signatures are required.
    pub fn applied(&self, state: VersionState) -> VersionState {
        VersionState {
            unsigned: !self.usable(!state.unsigned),
            ..state
        }
    }

    fn check_one(
        &self,
        agreement: &Agreement,
        entry: &SignatureEntry,
        at: DateTime<Utc>,
    ) -> (SignatureCheck, StoredSignature) {
        let (fingerprint, outcome) = match self.verify_one(agreement, entry, at) {
            Ok((fingerprint, county)) => (fingerprint, Ok(county)),
            Err((fingerprint, reason)) => (fingerprint, Err(reason)),
        };
        let record = StoredSignature {
            signer_county: entry.county,
            cert_fingerprint: fingerprint,
            signed_at: entry.signed_at,
            verified_at: at,
            outcome: match &outcome {
                Ok(_) => SIGNATURE_VERIFIED.to_owned(),
                Err(reason) => reason.clone(),
            },
        };
        let check = SignatureCheck {
            stated: entry.county,
            line: entry.line,
            outcome,
        };
        (check, record)
    }

    /// The certificate's fingerprint and the county it names, or why the signature fails (with
    /// the fingerprint when the certificate could be read).
    fn verify_one(
        &self,
        agreement: &Agreement,
        entry: &SignatureEntry,
        at: DateTime<Utc>,
    ) -> Result<(String, CountyCode), (String, String)> {
        let signature = Signature::from_text(
            entry.county.as_str(),
            entry.signed_at,
            &entry.algorithm,
            &entry.certificate,
            &entry.signature,
        )
        .map_err(|error| (String::new(), error.to_string()))?;
        let fingerprint = signature.fingerprint();
        let Some(anchors) = &self.anchors else {
            return Err((
                fingerprint,
                "this node has no trust anchors to check signatures with".to_owned(),
            ));
        };
        let verified = verify(
            &signature,
            AGREEMENT_PURPOSE,
            agreement.signed_content(),
            &anchors.current(),
            at,
        )
        .map_err(|error| (fingerprint.clone(), error.to_string()))?;
        let county = CountyCode::parse(verified.county.as_str()).map_err(|error| {
            (
                fingerprint.clone(),
                format!("the signer's certificate names an unknown county: {error}"),
            )
        })?;
        Ok((fingerprint, county))
    }
}

/// Why an agreement could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignAgreementError {
    /// The document is not a valid agreement.
    #[error("not a valid agreement:\n{0}")]
    Invalid(crate::domain::agreement::AgreementErrors),
    /// The signing certificate's county is not a party.
    #[error("the certificate is {county}'s, which is not a party to agreement {id} (parties {a} and {b})")]
    NotAParty {
        /// The agreement's id.
        id: String,
        /// The signer's county.
        county: String,
        /// The first party.
        a: CountyCode,
        /// The second party.
        b: CountyCode,
    },
    /// The county signed this file already.
    #[error(
        "{county} has signed this file already (the [[signature]] table at line {line}); remove that table to sign again"
    )]
    AlreadySigned {
        /// The signer's county.
        county: CountyCode,
        /// The line of its table.
        line: usize,
    },
    /// The key could not sign.
    #[error(transparent)]
    Sign(#[from] crate::tls::signing::SignError),
}

/// `text` with `identity`'s signature over the agreement's canonical hash appended as a
/// `[[signature]]` table, stating `signed_at`. The terms (and so the hash) are untouched;
/// every other county's signature stays valid.
pub fn sign_agreement(
    text: &str,
    identity: &crate::tls::NodeIdentity,
    signed_at: DateTime<Utc>,
) -> Result<String, SignAgreementError> {
    let agreement = Agreement::parse(text).map_err(SignAgreementError::Invalid)?;
    let [a, b] = agreement.parties();
    let county = CountyCode::parse(identity.county().as_str())
        .ok()
        .filter(|county| agreement.is_party(*county))
        .ok_or_else(|| SignAgreementError::NotAParty {
            id: agreement.id().to_string(),
            county: identity.county().to_string(),
            a,
            b,
        })?;
    if let Some(existing) = agreement
        .signatures()
        .iter()
        .find(|entry| entry.county.current() == county.current())
    {
        return Err(SignAgreementError::AlreadySigned {
            county,
            line: existing.line,
        });
    }
    let signature =
        crate::tls::signing::sign_at(identity, AGREEMENT_PURPOSE, agreement.signed_content(), signed_at)?;
    let mut signed = text.to_string();
    if !signed.ends_with('\n') {
        signed.push('\n');
    }
    signed.push('\n');
    signed.push_str(&signature_table(&signature));
    Ok(signed)
}

/// `text` without its signatures: cut before the first `[[signature]]` table (and the comment
/// lines just above it). The signatures come last in a file `hancha agreement sign` wrote; an
/// amendment starts from the terms, and each county signs the new version again.
pub fn strip_signatures(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("[[signature]]") {
            while kept
                .last()
                .is_some_and(|last| last.trim_start().starts_with('#') || last.trim().is_empty())
            {
                kept.pop();
            }
            let mut stripped: String = kept.concat();
            if !stripped.ends_with('\n') && !stripped.is_empty() {
                stripped.push('\n');
            }
            return stripped;
        }
        kept.push(line);
    }
    text.to_string()
}

/// A signature as a `[[signature]]` table (the format in `crate::domain::agreement`).
pub fn signature_table(signature: &Signature) -> String {
    format!(
        "# {county} {name}: its signature over hash and signing time (`hancha agreement sign`); outside the hash\n\
         [[signature]]\n\
         county = \"{county}\"\n\
         signed_at = {signed_at}\n\
         algorithm = \"{algorithm}\"\n\
         certificate = \"\"\"\n{certificate}\"\"\"\n\
         signature = \"{value}\"\n",
        county = signature.signer,
        name = CountyCode::parse(signature.signer.as_str())
            .map(|county| county.name())
            .unwrap_or_default(),
        signed_at = signature.signed_at_text(),
        algorithm = signature.algorithm,
        certificate = signature.certificate_pem(),
        value = signature.value_base64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::dev::TestPki;

    const XINHUA: &str = include_str!("../../examples/agreements/430703-431322.toml");

    fn unsigned(text: &str) -> String {
        let stripped = strip_signatures(text);
        assert!(!stripped.contains("[[signature]]"));
        assert_eq!(
            Agreement::parse(&stripped).unwrap().canonical_hash(),
            Agreement::parse(text).unwrap().canonical_hash()
        );
        stripped
    }

    #[test]
    fn the_example_agreements_are_signed_by_both_parties_with_the_development_keys() {
        let signatures = AgreementSignatures {
            required: true,
            anchors: Some(
                crate::tls::TrustAnchors::from_pem(include_str!("../../certs-dev/ca.pem"))
                    .unwrap()
                    .into(),
            ),
        };
        for text in [
            XINHUA,
            include_str!("../../examples/agreements/430703-430582.toml"),
        ] {
            let agreement = Agreement::parse(text).unwrap();
            let report = signatures.examine(&agreement, Utc::now());
            assert_eq!(
                report.verdict.as_ref().map_err(ToString::to_string),
                Ok(&()),
                "re-sign the examples: hancha agreement sign FILE --cert certs-dev/<county>.pem --key certs-dev/<county>-key.pem"
            );
            assert!(report.records.iter().all(StoredSignature::verified));
        }
    }

    #[test]
    fn signing_appends_a_table_and_keeps_the_hash() {
        let pki = TestPki::new().unwrap();
        let anchors = crate::tls::TrustAnchors::from_pem(&pki.ca_pem()).unwrap();
        let text = unsigned(XINHUA);
        let once = sign_agreement(&text, &pki.county_identity("430703").unwrap(), Utc::now()).unwrap();
        let twice = sign_agreement(&once, &pki.county_identity("431322").unwrap(), Utc::now()).unwrap();
        let before = Agreement::parse(&text).unwrap();
        let after = Agreement::parse(&twice).unwrap();
        assert_eq!(before.canonical_hash(), after.canonical_hash());
        assert_eq!(after.signatures().len(), 2);
        let signatures = AgreementSignatures {
            required: true,
            anchors: Some(anchors.into()),
        };
        assert!(signatures.examine(&after, Utc::now()).verdict.is_ok());
        let again = sign_agreement(&twice, &pki.county_identity("430703").unwrap(), Utc::now());
        assert!(matches!(again, Err(SignAgreementError::AlreadySigned { .. })));
        let stranger = sign_agreement(&text, &pki.county_identity("430582").unwrap(), Utc::now());
        assert!(matches!(stranger, Err(SignAgreementError::NotAParty { .. })));
    }

    #[test]
    fn without_anchors_nothing_verifies() {
        let pki = TestPki::new().unwrap();
        let text = sign_agreement(
            &unsigned(XINHUA),
            &pki.county_identity("430703").unwrap(),
            Utc::now(),
        )
        .unwrap();
        let report = AgreementSignatures::default().examine(&Agreement::parse(&text).unwrap(), Utc::now());
        assert_eq!(
            report.checks[0].outcome,
            Err("this node has no trust anchors to check signatures with".to_string())
        );
    }
}
