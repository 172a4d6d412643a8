//! What this node and each peer tell each other about themselves ([`NodeStatus`]): which
//! agreement versions each holds, so that messages go under a version both hold and messages
//! held for a mismatch go out as soon as the versions agree; and each side's clock.

use std::collections::HashMap;

use tracing::{info, warn};
use uuid::Uuid;

use super::Node;
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Inquiry};
use crate::domain::peer_status::{ClockReading, HeldVersion, NodeStatus};
use crate::domain::vocabulary::MessageKind;
use crate::store::StoreError;

/// This node's software version, as told to peers.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Node {
    /// Our status as told to `peer`: the versions of our agreements with it that we hold and
    /// have not retired, our software version, our clock now and our audit chain
    /// ([`Node::audit_status_for`]).
    pub async fn status_for(&self, peer: CountyCode) -> Result<NodeStatus, StoreError> {
        let audit = self.audit_status_for(peer).await?;
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
        Ok(NodeStatus {
            versions,
            software_version: SOFTWARE_VERSION.to_string(),
            clock: chrono::Utc::now(),
            audit,
            audit_dropped: None,
        })
    }

    /// Records what `peer` said about itself, measured as `clock`: which of our versions with
    /// it the peer holds (anything else it lists is ignored), its software and its clock. When
    /// the peer now holds a version it was not known to hold, the messages held for a version
    /// mismatch go out at once. Warns when the peer's clock is off by more than
    /// `limits.clock_skew_warning`. The peer's audit checkpoint is witnessed
    /// ([`Node::record_peer_audit`]).
    pub async fn record_peer_status(
        &self,
        peer: CountyCode,
        theirs: &NodeStatus,
        clock: ClockReading,
    ) -> Result<(), StoreError> {
        // the store matches them against our versions with this peer; any other hash matches
        // nothing
        let held: Vec<String> = theirs
            .versions
            .iter()
            .map(|version| version.hash.clone())
            .collect();
        let changed = self
            .store()
            .record_peer_status(peer, &held, &theirs.software_version, clock)
            .await?;
        if let Some(why) = &theirs.audit_dropped {
            self.record_dropped_audit_status(peer, why).await?;
        }
        self.record_peer_audit(peer, &theirs.audit).await?;
        if let Some(warning) = clock.skew_warning(self.limits().clock_skew_warning) {
            warn!(peer = %peer, offset_ms = clock.offset_ms, "{warning}");
        }
        if let Some(released) = changed {
            self.refresh_agreements().await?;
            if released > 0 {
                info!(peer = %peer, released, "what the peer holds changed: held messages go out now");
                self.wake_delivery();
            }
        }
        Ok(())
    }
}

impl Node {
    /// Our inquiries about to go to `peer` (again), under the version both sides hold now. An
    /// inquiry still queued whose version can no longer carry it — retired here, outside its
    /// validity today, or one the peer is known not to hold — moves to the version of the same
    /// agreement that messages of its kind go under now, if the peer holds that one; the move
    /// is stored, with an audit record per inquiry. The peer refuses a version it does not
    /// hold, or no longer has in force, without storing anything; should an earlier attempt
    /// have reached it (its receipt lost), the peer recognises the repeat by its id and answers
    /// under the version it stored. An inquiry that no version both hold allows stays as it
    /// is, and stays held.
    pub async fn under_shared_version(
        &self,
        peer: CountyCode,
        mut inquiries: Vec<Inquiry>,
    ) -> Result<Vec<Inquiry>, StoreError> {
        // what the store knows now of each version, not what this replica last read: a message
        // released by a peer's status may be due before the agreements in force are read again
        // (here or on another replica), and sent under a stale view it would be held again
        let states = self.version_states().await?;
        let book = self.agreements().as_ref().clone().with_states(states);
        let now = chrono::Utc::now();
        let mut moves: HashMap<AgreementRef, Vec<Uuid>> = HashMap::new();
        for inquiry in &mut inquiries {
            let state = book.state_of(&inquiry.agreement.hash);
            let usable = book
                .by_ref(&inquiry.agreement)
                .is_some_and(|pinned| pinned.is_valid_at(now))
                && !state.retired
                && state.held_by_peer != Some(false);
            if usable {
                continue;
            }
            let Ok((agreement, _)) = book.check_outbound(peer, MessageKind::Inquiry(inquiry.kind), now)
            else {
                continue;
            };
            let hash = agreement.canonical_hash().as_str();
            if agreement.id() != inquiry.agreement.id
                || hash == inquiry.agreement.hash
                || book.state_of(hash).held_by_peer != Some(true)
            {
                continue;
            }
            inquiry.agreement = AgreementRef {
                id: agreement.id().to_string(),
                hash: hash.to_string(),
            };
            moves
                .entry(inquiry.agreement.clone())
                .or_default()
                .push(inquiry.message_id);
        }
        for (reference, ids) in moves {
            info!(peer = %peer, count = ids.len(), agreement = %reference.id, "queued inquiries move to the version both hold");
            self.store().move_to_version(peer, &ids, &reference).await?;
        }
        Ok(inquiries)
    }
}
