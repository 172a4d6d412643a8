//! What this node and each peer tell each other about themselves ([`NodeStatus`]): which
//! agreement versions each holds, so that messages go under a version both hold and messages
//! held for a mismatch go out as soon as the versions agree; and each side's clock.

use std::collections::HashSet;

use tracing::{info, warn};

use super::Node;
use crate::domain::division::CountyCode;
use crate::domain::peer_status::{ClockReading, HeldVersion, NodeStatus};
use crate::store::StoreError;

/// This node's software version, as told to peers.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Node {
    /// Our status as told to `peer`: the versions of our agreements with it that we hold and
    /// have not retired, our software version and our clock now.
    pub fn status_for(&self, peer: CountyCode) -> NodeStatus {
        let book = self.agreements();
        let versions = book
            .with_peer(peer)
            .filter(|agreement| !book.state_of(agreement.canonical_hash().as_str()).retired)
            .map(|agreement| HeldVersion {
                agreement_id: agreement.id().to_string(),
                version: agreement.version(),
                hash: agreement.canonical_hash().as_str().to_string(),
            })
            .collect();
        NodeStatus {
            versions,
            software_version: SOFTWARE_VERSION.to_string(),
            clock: chrono::Utc::now(),
        }
    }

    /// Records what `peer` said about itself, measured as `clock`: which of our versions with
    /// it the peer holds (anything else it lists is ignored), its software and its clock. When
    /// the peer now holds a version it was not known to hold, the messages held for a version
    /// mismatch go out at once. Warns when the peer's clock is off by more than
    /// `limits.clock_skew_warning`.
    pub async fn record_peer_status(
        &self,
        peer: CountyCode,
        theirs: &NodeStatus,
        clock: ClockReading,
    ) -> Result<(), StoreError> {
        let book = self.agreements();
        let ours: HashSet<&str> = book
            .with_peer(peer)
            .map(|agreement| agreement.canonical_hash().as_str())
            .collect();
        let held: Vec<String> = theirs
            .versions
            .iter()
            .filter(|version| ours.contains(version.hash.as_str()))
            .map(|version| version.hash.clone())
            .collect();
        let released = self
            .store()
            .record_peer_status(peer, &held, &theirs.software_version, clock)
            .await?;
        if let Some(warning) = clock.skew_warning(self.limits().clock_skew_warning) {
            warn!(peer = %peer, offset_ms = clock.offset_ms, "{warning}");
        }
        self.refresh_agreement_states().await?;
        if released > 0 {
            info!(peer = %peer, released, "the peer holds a version it did not: held messages go out now");
            self.wake_delivery();
        }
        Ok(())
    }

    /// Reads what the store knows of each version (retired, held by the peer) into the
    /// agreements in force, so that every replica follows a retirement or a peer's status.
    pub async fn refresh_agreement_states(&self) -> Result<(), StoreError> {
        let states = self.store().agreement_states().await?;
        self.update_book(|book| book.clone().with_states(states));
        Ok(())
    }
}
