//! Installing agreement versions and putting the stored ones in force: one path for the
//! operator API and for start-up, so both treat a version that no longer parses alike.

use tracing::warn;

use super::Node;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::store::agreements::StoredAgreement;
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
    /// The same version number is installed with other content.
    #[error(
        "agreement {id} version {version} is already installed with hash {hash_prefix}; an amendment needs a higher version"
    )]
    VersionClash {
        /// The agreement's id.
        id: String,
        /// The version number both carry.
        version: i32,
        /// The start of the installed version's hash.
        hash_prefix: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Node {
    /// Installs a version of an agreement this county is party to and puts the stored
    /// agreements in force. Returns whether the version was new.
    pub async fn install_agreement(
        &self,
        agreement: &Agreement,
    ) -> Result<(StoredAgreement, bool), InstallError> {
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
        let stored = stored_agreement(agreement, peer);
        if let Some(clash) = self.store().agreements().await?.into_iter().find(|a| {
            a.agreement_id == stored.agreement_id && a.version == stored.version && a.hash != stored.hash
        }) {
            return Err(InstallError::VersionClash {
                id: clash.agreement_id,
                version: clash.version,
                hash_prefix: clash.hash.chars().take(12).collect(),
            });
        }
        let new_version = self.store().install_agreement(&stored).await?;
        self.reload_agreements().await?;
        Ok((stored, new_version))
    }

    /// Puts every agreement version the store holds in force.
    pub async fn reload_agreements(&self) -> Result<(), StoreError> {
        self.replace_agreements(agreements_in_store(self.store()).await?);
        Ok(())
    }
}

/// Every agreement version the store holds (older ones too, so a peer on an old version is told
/// which); a stored version that no longer parses is left out and logged.
pub async fn agreements_in_store(store: &Store) -> Result<Vec<Agreement>, StoreError> {
    let mut agreements = Vec::new();
    for stored in store.agreements().await? {
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
    }
}
