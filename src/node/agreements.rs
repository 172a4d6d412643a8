//! Installing agreement versions and putting the stored ones in force: one path for the
//! operator API and for start-up, so both treat a version that no longer parses alike.

use tracing::warn;

use super::{AgreementSignatures, Node};
use std::collections::HashMap;

use crate::domain::agreement::{Admission, Agreement, NotAdmitted, Unsigned, VersionState, admit};
use crate::domain::division::CountyCode;
use crate::domain::policy::AgreementBook;
use crate::domain::time::china_date;
use crate::store::agreements::{Retired, StoredAgreement};
use crate::store::audit::OperatorAccess;
use crate::store::{Store, StoreError};

/// Why an agreement version was not installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// This county is not one of its parties.
    #[error("agreement {id} is between {a} and {b}; this node is {me}")]
    NotAParty {
        /// The agreement's id.
        id: String,
        /// Its first party.
        a: CountyCode,
        /// Its second party.
        b: CountyCode,
        /// This node's county.
        me: CountyCode,
    },
    /// The version may not be installed: expired, older than one installed, or another
    /// version's number.
    #[error(transparent)]
    NotAdmitted(#[from] NotAdmitted),
    /// Not every party signed it (or a signature failed), and signatures are required.
    #[error(transparent)]
    Unsigned(#[from] Unsigned),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A version installed (or found installed already).
#[derive(Clone, Debug)]
pub struct Installed {
    /// The version as stored.
    pub stored: StoredAgreement,
    /// Whether it was new.
    pub new_version: bool,
    /// What the operator should know (a version not valid yet), one line each.
    pub warnings: Vec<String>,
}

impl Node {
    /// Installs a version of an agreement this county is party to and puts the stored
    /// agreements in force, if [`admit`] lets it: never one already expired, one older than a
    /// version installed, or another version's number; re-applying an installed version
    /// changes nothing.
    pub async fn install_agreement(&self, agreement: &Agreement) -> Result<Installed, InstallError> {
        let me = self.county();
        let Some(peer) = agreement.peer_of(me) else {
            let [a, b] = agreement.parties();
            return Err(InstallError::NotAParty {
                id: agreement.id().to_string(),
                a,
                b,
                me,
            });
        };
        let installed = install_admitted(self.store(), agreement, peer, &self.signatures).await?;
        self.reload_agreements().await?;
        Ok(installed)
    }

    /// Retires version `version` of agreement `id` (recorded with `audit` in the same
    /// transaction), puts the rest in force and tells the peer. `None` when no such version is
    /// installed.
    pub async fn retire_agreement(
        &self,
        id: &str,
        version: u32,
        audit: &OperatorAccess,
    ) -> Result<Option<Retired>, StoreError> {
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        let retired = self.store().retire_agreement(id, version, audit).await?;
        if retired.is_some() {
            self.reload_agreements().await?;
        }
        Ok(retired)
    }

    /// Puts every agreement version the store holds in force, with what the store knows of
    /// each (retired, held by the peer), and tells the peers.
    pub async fn reload_agreements(&self) -> Result<(), StoreError> {
        self.refresh_agreements().await?;
        self.wake_status();
        Ok(())
    }

    /// What the store knows of each version beyond its terms, by canonical hash, with this
    /// node's rule on signatures applied: a version not signed by every party counts as
    /// unsigned only while signatures are required.
    pub async fn version_states(&self) -> Result<HashMap<String, VersionState>, StoreError> {
        let mut states = self.store().agreement_states().await?;
        for state in states.values_mut() {
            *state = self.signatures.applied(*state);
        }
        Ok(states)
    }

    /// Reads every agreement version the store holds, and what is known of each, into the
    /// agreements in force: after this node changed them, after a peer's status, and when
    /// another replica on the database announced a change. One read at a time, so that an
    /// older read never replaces a newer one.
    pub async fn refresh_agreements(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        let agreements = agreements_in_store(self.store(), &self.signatures).await?;
        let states = self.version_states().await?;
        let me = self.county();
        self.update_book(|_| AgreementBook::new(me, agreements).with_states(states));
        Ok(())
    }
}

/// Installs `agreement` (whose other party is `peer`) in `store` if its signatures and [`admit`]
/// let it: the one rule for `agreement apply` and for the agreements directory read at
/// start-up. Every signature is verified now and the outcome recorded with the version (so a
/// certificate renewed later changes nothing); when `signatures.required`, a version not
/// signed by every party, or with a signature that fails, is refused saying why. Re-applying an
/// installed version changes nothing (except that a copy signed by every party completes one
/// installed without). Does not put it in force (see [`Node::reload_agreements`]).
pub async fn install_admitted(
    store: &Store,
    agreement: &Agreement,
    peer: CountyCode,
    signatures: &AgreementSignatures,
) -> Result<Installed, InstallError> {
    let now = chrono::Utc::now();
    let mut stored = stored_agreement(agreement, peer);
    // verified once, when first applied: a signer's certificate renewed (or expired) since
    // changes nothing for a version installed signed
    if store
        .agreement_signed_by_all(&stored.agreement_id, &stored.hash)
        .await?
        == Some(true)
    {
        stored.signed_by_all = true;
        return Ok(Installed {
            stored,
            new_version: false,
            warnings: Vec::new(),
        });
    }
    let report = signatures.examine(agreement, now);
    let signed_by_all = report.verdict.is_ok();
    let mut warnings = Vec::new();
    match report.verdict {
        Err(unsigned) if signatures.required => return Err(unsigned.into()),
        Err(unsigned) => warnings.push(format!(
            "{unsigned} (installed because require_signatures is off)"
        )),
        Ok(()) => {}
    }
    stored.signed_by_all = signed_by_all;
    let installed = store.installed_versions(&stored.agreement_id).await?;
    if let Admission::New { warnings: admission } = admit(agreement, &installed, china_date(now))? {
        warnings.extend(admission);
    }
    let new_version = store.install_agreement(&stored, &report.records).await?;
    Ok(Installed {
        stored,
        new_version,
        warnings,
    })
}

/// Every agreement version the store holds (older ones too, so a peer on an old version is told
/// which); a stored version that no longer parses, or (when signatures are required) that was
/// not signed by every party when applied, is left out and logged.
pub async fn agreements_in_store(
    store: &Store,
    signatures: &AgreementSignatures,
) -> Result<Vec<Agreement>, StoreError> {
    let mut agreements = Vec::new();
    for stored in store.agreements().await? {
        if !signatures.usable(stored.signed_by_all) {
            warn!(
                agreement = %stored.agreement_id,
                version = stored.version,
                "stored agreement version is not signed by every party and signatures are required; ignored"
            );
            continue;
        }
        match Agreement::parse(&stored.source_text) {
            Ok(agreement) => agreements.push(agreement),
            Err(_) => warn!(agreement = %stored.agreement_id, "stored agreement no longer parses; ignored"),
        }
    }
    Ok(agreements)
}

/// The stored form of an agreement.
pub fn stored_agreement(agreement: &Agreement, peer: CountyCode) -> StoredAgreement {
    StoredAgreement {
        agreement_id: agreement.id().to_string(),
        version: i32::try_from(agreement.version()).unwrap_or(i32::MAX),
        hash: agreement.canonical_hash().as_str().to_string(),
        peer_county: peer,
        valid_from: agreement.valid_from(),
        valid_until: agreement.valid_until(),
        source_text: agreement.source_text().to_string(),
        held_by_peer: None,
        retired_at: None,
        signed_by_all: false,
    }
}
