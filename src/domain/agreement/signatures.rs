//! The counties' signatures on an agreement version, and whether they make it usable.
//!
//! # Where signatures live
//!
//! In the agreement file itself, as `[[signature]]` tables after the terms. The canonical form
//! (and so the hash) leaves them out, so one file travels from county to county and each
//! appends its signature (`hancha agreement sign`) without changing what the others signed.
//! Each table holds:
//!
//! | key | meaning |
//! |---|---|
//! | `county` | the signing county's code (its certificate must name the same) |
//! | `signed_at` | when, an RFC 3339 date-time with offset (signed along with the hash) |
//! | `algorithm` | e.g. `ecdsa-p256-sha256` |
//! | `certificate` | the signer's certificate (then any intermediates) as PEM, so that a node that never saw it can check it |
//! | `signature` | the signature, base64 |
//!
//! A signature covers `"hancha agreement v1\n"`, the signing time and the canonical hash (see
//! `crate::tls::signing`): it cannot be taken for a signature over anything else the county's
//! key signs, nor for one over another version.
//!
//! # When a version is signed
//!
//! The domain does no cryptography: the node checks each signature against its trust anchors
//! and hands the outcomes to [`assess_signatures`], which decides. A version is signed when
//! every party has a signature that verified, and no signature in the file failed (a signature
//! that does not verify, or one by a county that is not a party, means the file is not what the
//! counties signed, so it is refused whole).

use std::fmt;

use chrono::{DateTime, Utc};

use super::Agreement;
use crate::domain::division::CountyCode;

/// One `[[signature]]` table as written: a county's claim to have signed the version, checked
/// for shape only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureEntry {
    /// The county the signature says signed (checked against its certificate by the node).
    pub county: CountyCode,
    /// When it says it was signed.
    pub signed_at: DateTime<Utc>,
    /// The algorithm's name.
    pub algorithm: String,
    /// The certificate chain, PEM.
    pub certificate: String,
    /// The signature, base64.
    pub signature: String,
    /// The line of its `[[signature]]` header, to point at it in messages.
    pub line: usize,
}

/// What checking one signature found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The county the signature says signed.
    pub stated: CountyCode,
    /// The line of its table in the file.
    pub line: usize,
    /// `Ok` with the county its verified certificate names, or why it failed, in words.
    pub outcome: Result<CountyCode, String>,
}

/// Why a version is not signed by every party.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    /// A signature did not verify.
    #[error("the signature by {county} (line {line}) is refused: {reason}")]
    Refused {
        /// The county it says signed.
        county: CountyCode,
        /// Its line.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A valid signature by a county that is not a party.
    #[error("the signature by {county} (line {line}) is not a party's: the parties are {a} and {b}")]
    NotAParty {
        /// The signer.
        county: CountyCode,
        /// Its line.
        line: usize,
        /// The first party.
        a: CountyCode,
        /// The second party.
        b: CountyCode,
    },
    /// A party has not signed (no signature names it).
    #[error("{county} {} has not signed it (`hancha agreement sign` with its certificate and key)", county.name())]
    Missing {
        /// The party whose signature is missing.
        county: CountyCode,
    },
}

/// Every reason a version is not signed by every party; shown as one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsigned {
    /// The agreement's id.
    pub id: String,
    /// The version.
    pub version: u32,
    /// At least one problem.
    pub problems: Vec<SignatureProblem>,
}

impl fmt::Display for Unsigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "agreement {} version {} is not signed by every party: ",
            self.id, self.version
        )?;
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unsigned {}

/// Whether `checks` (one per signature in the file) make `agreement` signed by every party.
pub fn assess_signatures(agreement: &Agreement, checks: &[SignatureCheck]) -> Result<(), Unsigned> {
    let [a, b] = agreement.parties();
    let mut problems = Vec::new();
    let mut signed = Vec::new();
    for check in checks {
        match &check.outcome {
            Err(reason) => problems.push(SignatureProblem::Refused {
                county: check.stated,
                line: check.line,
                reason: reason.clone(),
            }),
            Ok(county) if !agreement.is_party(*county) => problems.push(SignatureProblem::NotAParty {
                county: *county,
                line: check.line,
                a,
                b,
            }),
            Ok(county) => signed.push(county.current()),
        }
    }
    // a party whose signature was refused is named by that refusal, not again as missing
    let attempted: Vec<CountyCode> = checks.iter().map(|check| check.stated.current()).collect();
    for party in [a, b] {
        if !signed.contains(&party.current()) && !attempted.contains(&party.current()) {
            problems.push(SignatureProblem::Missing { county: party });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Unsigned {
            id: agreement.id().to_string(),
            version: agreement.version(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement() -> Agreement {
        Agreement::parse(include_str!("../../../examples/agreements/430703-431322.toml")).unwrap()
    }

    fn county(code: &str) -> CountyCode {
        CountyCode::parse(code).unwrap()
    }

    fn good(code: &str) -> SignatureCheck {
        SignatureCheck {
            stated: county(code),
            line: 40,
            outcome: Ok(county(code)),
        }
    }

    #[test]
    fn both_parties_signing_is_enough() {
        assert_eq!(
            assess_signatures(&agreement(), &[good("431322"), good("430703")]),
            Ok(())
        );
    }

    #[test]
    fn a_missing_party_is_named() {
        let unsigned = assess_signatures(&agreement(), &[good("430703")]).unwrap_err();
        assert_eq!(
            unsigned.problems,
            vec![SignatureProblem::Missing {
                county: county("431322")
            }]
        );
        assert!(
            unsigned.to_string().contains("431322 新化县 has not signed it"),
            "{unsigned}"
        );
    }

    #[test]
    fn a_non_party_or_a_failed_signature_refuses_the_version() {
        let unsigned =
            assess_signatures(&agreement(), &[good("430703"), good("431322"), good("430582")]).unwrap_err();
        assert!(
            unsigned.to_string().contains("430582 (line 40) is not a party's"),
            "{unsigned}"
        );
        let failed = SignatureCheck {
            outcome: Err("the signature does not match".into()),
            ..good("431322")
        };
        let unsigned = assess_signatures(&agreement(), &[good("430703"), failed]).unwrap_err();
        assert_eq!(unsigned.problems.len(), 1, "named once, as refused: {unsigned}");
    }
}
