//! Whether a version of an agreement may be installed: the first step of a version's life.
//!
//! A county applies a version both counties signed. It is refused when it can never be in
//! force (already expired), when it would go back in time (a lower version number than one
//! installed), or when it reuses an installed number for other terms; re-applying an installed
//! version changes nothing. A version not valid yet is installed with a warning: it comes into
//! force on its first day.

use chrono::NaiveDate;

use super::Agreement;

/// What installing a version would do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new version: install it, and tell the operator `warnings`.
    New {
        /// Things the operator should know, each one line (a version not valid yet).
        warnings: Vec<String>,
    },
    /// This very version is installed already: nothing changes.
    AlreadyInstalled,
}

/// Why a version may not be installed; each says what to do instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    /// Its validity ended before today (in China): it could never be in force.
    #[error(
        "agreement {id} version {version} expired on {until}: an expired version is never put in force; \
         apply the version the counties signed to replace it"
    )]
    Expired {
        /// The agreement's id.
        id: String,
        /// The version refused.
        version: u32,
        /// Its last valid day.
        until: NaiveDate,
    },
    /// A higher version of the same agreement is installed.
    #[error(
        "agreement {id} version {version} is older than version {installed}, which this node holds: \
         versions only go forward; an amendment needs a number above {installed}"
    )]
    Older {
        /// The agreement's id.
        id: String,
        /// The version refused.
        version: u32,
        /// The highest version installed.
        installed: u32,
    },
    /// The same number is installed with other terms.
    #[error(
        "agreement {id} version {version} is already installed with other terms (hash {installed_hash}); \
         an amendment needs a higher version"
    )]
    Clash {
        /// The agreement's id.
        id: String,
        /// The version number both carry.
        version: u32,
        /// The start of the installed version's hash.
        installed_hash: String,
    },
}

/// An installed version of the same agreement: its number and canonical hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledVersion {
    /// The version number.
    pub version: u32,
    /// The canonical hash, in full.
    pub hash: String,
}

/// Whether `candidate` may be installed beside the `installed` versions of the same agreement,
/// `today` being the date in China.
pub fn admit(
    candidate: &Agreement,
    installed: &[InstalledVersion],
    today: NaiveDate,
) -> Result<Admission, NotAdmitted> {
    let id = candidate.id().to_string();
    let version = candidate.version();
    let hash = candidate.canonical_hash().as_str();
    if let Some(same) = installed.iter().find(|v| v.version == version) {
        if same.hash == hash {
            return Ok(Admission::AlreadyInstalled);
        }
        return Err(NotAdmitted::Clash {
            id,
            version,
            installed_hash: same.hash.chars().take(12).collect(),
        });
    }
    if candidate.valid_until() < today {
        return Err(NotAdmitted::Expired {
            id,
            version,
            until: candidate.valid_until(),
        });
    }
    if let Some(highest) = installed.iter().map(|v| v.version).max()
        && highest > version
    {
        return Err(NotAdmitted::Older {
            id,
            version,
            installed: highest,
        });
    }
    let mut warnings = Vec::new();
    if today < candidate.valid_from() {
        warnings.push(format!(
            "agreement {id} version {version} is not valid yet: it comes into force on {}, until then \
             messages travel under the version in force now",
            candidate.valid_from()
        ));
    }
    Ok(Admission::New { warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(version: u32, valid: (&str, &str)) -> Agreement {
        let text = include_str!("../../../examples/agreements/430703-431322.toml").replacen(
            "version = 1",
            &format!("version = {version}"),
            1,
        );
        let text = replace_line(&text, "valid_from", valid.0);
        let text = replace_line(&text, "valid_until", valid.1);
        Agreement::parse(&text).expect("the variant parses")
    }

    fn replace_line(text: &str, key: &str, value: &str) -> String {
        text.lines()
            .map(|line| {
                if line.starts_with(&format!("{key} ")) || line.starts_with(&format!("{key}=")) {
                    format!("{key} = {value}")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn installed(agreement: &Agreement) -> InstalledVersion {
        InstalledVersion {
            version: agreement.version(),
            hash: agreement.canonical_hash().as_str().to_string(),
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    const CURRENT: (&str, &str) = ("2026-01-01", "2030-12-31");

    #[test]
    fn a_new_current_version_is_installed_without_a_word() {
        let v2 = agreement(2, CURRENT);
        let v1 = agreement(1, CURRENT);
        assert_eq!(
            admit(&v2, &[installed(&v1)], today()),
            Ok(Admission::New { warnings: vec![] })
        );
    }

    #[test]
    fn an_expired_version_is_refused_saying_when_it_ended() {
        let old = agreement(2, ("2024-01-01", "2026-11-30"));
        let refusal = admit(&old, &[], today()).unwrap_err();
        assert!(matches!(refusal, NotAdmitted::Expired { .. }));
        assert!(refusal.to_string().contains("expired on 2026-11-30"), "{refusal}");
        // its last day is still today-valid
        let ends_today = agreement(2, ("2024-01-01", "2026-12-01"));
        assert!(admit(&ends_today, &[], today()).is_ok());
    }

    #[test]
    fn a_version_not_valid_yet_is_installed_with_a_warning() {
        let future = agreement(2, ("2027-01-01", "2030-12-31"));
        let Ok(Admission::New { warnings }) = admit(&future, &[], today()) else {
            panic!("installed");
        };
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("comes into force on 2027-01-01"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_lower_version_is_refused_and_the_same_one_changes_nothing() {
        let v1 = agreement(1, CURRENT);
        let v2 = agreement(2, CURRENT);
        let refusal = admit(&v1, &[installed(&v2)], today()).unwrap_err();
        assert!(
            matches!(refusal, NotAdmitted::Older { installed: 2, .. }),
            "{refusal}"
        );
        assert_eq!(
            admit(&v2, &[installed(&v1), installed(&v2)], today()),
            Ok(Admission::AlreadyInstalled)
        );
        let other_terms = agreement(2, ("2026-02-01", "2030-12-31"));
        assert!(matches!(
            admit(&other_terms, &[installed(&v2)], today()),
            Err(NotAdmitted::Clash { version: 2, .. })
        ));
    }
}
