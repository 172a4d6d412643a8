//! What we show each peer of our chain and what we make of what it shows us (through the
//! peer-status exchange): offers, witnessed checkpoints, forks, refusals.

use chrono::Utc;
use tracing::{error, info, warn};

use super::check_signature;
use crate::domain::audit_chain::{
    AuditStatus, ChainPoint, Checkpoint, Extension, Held, MAX_EXTENSION_LEAVES, Offer, Verdict, witness,
};
use crate::domain::division::CountyCode;
use crate::node::Node;
use crate::store::StoreError;
use crate::store::audit::AuditEntry;
use crate::tls::signing::{AUDIT_CHECKPOINT_PURPOSE, AUDIT_RESUME_PURPOSE};

impl Node {
    /// What we show `peer` of our chain in a status exchange: our checkpoint with the leaves
    /// from the one it holds, and which of its checkpoints we hold.
    pub async fn audit_status_for(&self, peer: CountyCode) -> Result<AuditStatus, StoreError> {
        let holds_yours = self
            .store()
            .held_peer_checkpoint(peer)
            .await?
            .map(|held| held.checkpoint.point);
        let holds_ours = self
            .store()
            .peer_witness(Some(peer))
            .await?
            .into_iter()
            .next()
            .and_then(|witness| witness.holds_ours);
        Ok(AuditStatus {
            offer: self.offer(holds_ours).await?,
            holds_yours,
        })
    }

    /// Takes in what `peer` showed of its chain: remembers which of our checkpoints it holds,
    /// checks its checkpoint's signature and that it extends the one we hold (or follows a
    /// signed resume statement), holds it if so, and on a fork warns, counts and audits it.
    pub async fn record_peer_audit(&self, peer: CountyCode, theirs: &AuditStatus) -> Result<(), StoreError> {
        if let Some(point) = theirs.holds_yours {
            self.store().record_peer_holds_ours(peer, point).await?;
        }
        let Some(offer) = &theirs.offer else {
            // a peer we hold a checkpoint of that shows none (its checkpoints were removed, or
            // its audit part keeps arriving malformed) proves nothing either
            if let Some(held) = self.store().held_peer_checkpoint(peer).await? {
                let why = format!(
                    "it showed no checkpoint, though we hold its checkpoint {}",
                    held.checkpoint.point.position
                );
                self.count_unproven(peer, &held, held.checkpoint.point, why)
                    .await?;
            }
            return Ok(());
        };
        let checkpoint = &offer.checkpoint;
        // checked once, now, against the anchors in force: what is held stays held
        let anchors = self.signatures.anchors.as_ref().map(|anchors| anchors.current());
        let now = Utc::now();
        let body = &checkpoint.body;
        if let Err(error) = check_signature(
            anchors.as_ref(),
            peer,
            AUDIT_CHECKPOINT_PURPOSE,
            (&body.county, body.signed_at, &body.signed_bytes()),
            &checkpoint.signature,
            now,
        ) {
            warn!(peer = %peer, position = body.point.position, %error, "peer audit checkpoint refused: its signature does not hold");
            self.record_refused_checkpoint(peer, body, &error).await?;
            return Ok(());
        }
        let mut offer = offer.clone();
        if let Some(resume) = &offer.resume
            && let Err(error) = check_signature(
                anchors.as_ref(),
                peer,
                AUDIT_RESUME_PURPOSE,
                (
                    &resume.body.county,
                    resume.body.signed_at,
                    &resume.body.signed_bytes(),
                ),
                &resume.signature,
                now,
            )
        {
            warn!(peer = %peer, %error, "peer audit resume statement ignored: its signature does not hold");
            offer.resume = None;
        }
        let held = self.store().held_peer_checkpoint(peer).await?;
        let offered = checkpoint.body.point;
        match witness(held.as_ref(), &offer) {
            Verdict::First | Verdict::Extends => {
                self.store().hold_peer_checkpoint(peer, checkpoint, None).await?;
            }
            Verdict::Same => {
                self.store().clear_peer_unproven(peer).await?;
            }
            Verdict::Unproven(why) => {
                if let Some(held) = &held {
                    self.count_unproven(peer, held, offered, why).await?;
                }
            }
            Verdict::Resumed {
                from,
                signed_at,
                witnessed,
            } => {
                info!(peer = %peer, from = from.position, to = offered.position, witnessed, "peer audit chain resumed from a checkpoint after a restore (signed statement)");
                self.store()
                    .hold_peer_checkpoint(peer, checkpoint, Some(signed_at))
                    .await?;
                let mut reason = format!(
                    "the peer's audit chain resumed from its checkpoint {} (head {}) under a statement signed {}",
                    from.position,
                    from.head.hex(),
                    signed_at.to_rfc3339()
                );
                if !witnessed {
                    let held_position = held.as_ref().map_or(0, |held| held.checkpoint.point.position);
                    warn!(peer = %peer, from = from.position, held_position, "peer audit chain resumed from a point before the checkpoint we held: the restore point was never witnessed");
                    reason.push_str(&format!(
                        "; the restore point was unwitnessed (we held its checkpoint {held_position}, not {})",
                        from.position
                    ));
                }
                self.store()
                    .append_audit(&peer_audit_entry(peer, "audit_resumed", reason))
                    .await?;
            }
            Verdict::Fork(detail) => {
                self.record_fork(peer, held.as_ref(), offered, detail).await?;
            }
        }
        Ok(())
    }

    /// Counts one more exchange in which `peer` showed nothing that proves it extends `held`;
    /// past `limits.audit_unproven_exchanges` exchanges in a row or `limits.audit_unproven_after`,
    /// that is a fork: a peer whose chain was cut where we hold it can prove nothing any more.
    async fn count_unproven(
        &self,
        peer: CountyCode,
        held: &Held,
        offered: ChainPoint,
        why: String,
    ) -> Result<(), StoreError> {
        tracing::debug!(peer = %peer, why, "peer audit checkpoint not yet proven");
        let streak = self.store().record_peer_unproven(peer, &why).await?;
        let limits = self.limits();
        let lasted = (Utc::now() - streak.since).to_std().unwrap_or_default();
        if streak.exchanges >= limits.audit_unproven_exchanges.max(1) || lasted >= limits.audit_unproven_after
        {
            let detail = format!(
                "its checkpoints have come without proof that they extend checkpoint {} since {} ({} exchanges): {why}",
                held.checkpoint.point.position,
                streak.since.to_rfc3339(),
                streak.exchanges
            );
            self.record_fork(peer, Some(held), offered, detail).await?;
        }
        Ok(())
    }

    /// Warns of, records, counts and audits (once per fork) that `peer`'s history no longer
    /// extends what it showed before, or can no longer be shown to.
    async fn record_fork(
        &self,
        peer: CountyCode,
        held: Option<&Held>,
        offered: ChainPoint,
        detail: String,
    ) -> Result<(), StoreError> {
        let held_position = held.map(|held| held.checkpoint.point.position);
        warn!(peer = %peer, held_position, offered_position = offered.position, detail, "peer audit chain forked: its history no longer extends what it showed before");
        if self.store().record_peer_fork(peer, &detail).await? {
            self.metrics().audit_peer_fork(peer.as_str());
            self.store()
                .append_audit(&peer_audit_entry(peer, "audit_fork", detail))
                .await?;
        }
        Ok(())
    }

    /// Logs and audits (once per reason in a row) that the audit part of `peer`'s status was
    /// malformed and dropped; the rest of its status was taken.
    pub async fn record_dropped_audit_status(&self, peer: CountyCode, why: &str) -> Result<(), StoreError> {
        warn!(peer = %peer, why, "the audit part of the peer's status is malformed: dropped, the rest of its status taken");
        let reason = format!("the audit part of its status was malformed and dropped: {why}");
        self.audit_once(peer, "audit_status_malformed", reason).await
    }

    /// Audits a refused peer checkpoint, once per checkpoint and reason (the peer shows the
    /// same one at every exchange until it signs another).
    async fn record_refused_checkpoint(
        &self,
        peer: CountyCode,
        checkpoint: &Checkpoint,
        reason: &str,
    ) -> Result<(), StoreError> {
        let reason = format!(
            "its audit checkpoint {} (signed {}) was refused: {reason}",
            checkpoint.point.position,
            checkpoint.signed_at.to_rfc3339()
        );
        self.audit_once(peer, "audit_checkpoint_refused", reason).await
    }

    /// Writes an audit record about `peer` unless the last one written about it said the same
    /// (a peer repeats the same status at every exchange until it changes something).
    async fn audit_once(&self, peer: CountyCode, outcome: &str, reason: String) -> Result<(), StoreError> {
        {
            let mut refused = self
                .audit_refusals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if refused.get(&peer) == Some(&reason) {
                return Ok(());
            }
            refused.insert(peer, reason.clone());
        }
        self.store()
            .append_audit(&peer_audit_entry(peer, outcome, reason))
            .await
    }
}

/// An audit record about a peer's chain.
fn peer_audit_entry(peer: CountyCode, outcome: &str, reason: String) -> AuditEntry {
    AuditEntry {
        peer_county: Some(peer.to_string()),
        direction: "inbound".into(),
        outcome: outcome.into(),
        reason: Some(reason),
        ..AuditEntry::default()
    }
}

impl Node {
    /// The checkpoint to offer a peer that holds `holds_ours` of our chain, with the leaves that
    /// prove it extends that one (or, after a restore, the resume point); `None` while we have no
    /// checkpoint.
    async fn offer(&self, holds_ours: Option<ChainPoint>) -> Result<Option<Offer>, StoreError> {
        let store = self.store();
        let Some(latest) = store.audit_checkpoint(None).await? else {
            return Ok(None);
        };
        let resume = store.latest_audit_resume().await?;
        let Some(held) = holds_ours else {
            return Ok(Some(Offer {
                checkpoint: latest,
                extension: None,
                resume,
            }));
        };
        let ours_there = store.audit_head_at(held.position).await?;
        let from = match (&resume, ours_there) {
            (_, Some(head)) if head == held.head => held.position,
            // rewound since the peer last heard from us: prove the way from where we resumed
            (Some(resume), _) => resume.body.from.position,
            // our history does not extend what the peer holds: show it ours from there all the same
            (None, Some(_)) => held.position,
            (None, None) => {
                // the peer holds a head we showed it, and our chain no longer has that position:
                // our own chain is broken (rows removed), and no proof can be made
                error!(
                    peer_holds = held.position,
                    head = %held.head.short(),
                    "our audit chain no longer reaches the checkpoint a peer holds of it: it was cut short or rows were removed; run `hancha audit verify`"
                );
                return Ok(Some(Offer {
                    checkpoint: latest,
                    extension: None,
                    resume,
                }));
            }
        };
        let within = store
            .audit_checkpoint(Some(from + MAX_EXTENSION_LEAVES))
            .await?
            .filter(|checkpoint| checkpoint.body.point.position > from);
        let checkpoint = match within {
            Some(checkpoint) => checkpoint,
            // no checkpoint within the cap (none was signed for a stretch: no county key then):
            // sign one at the cap, so the peer catches up over several exchanges; an extension
            // beyond the cap would make the peer refuse our whole status
            // nothing newer than what the peer holds (or than the resume point)
            None if latest.body.point.position <= from => latest,
            None => {
                let cap = from + MAX_EXTENSION_LEAVES;
                let point = match store.audit_head_at(cap).await? {
                    Some(head) if latest.body.point.position > cap => {
                        Some(ChainPoint { position: cap, head })
                    }
                    _ => None,
                };
                let signed = match (&self.county_key, point) {
                    (Some(key), Some(point)) => self.signed_checkpoint(key, point),
                    _ => None,
                };
                if let Some(signed) = &signed {
                    store.add_audit_checkpoint(signed).await?;
                }
                match signed {
                    Some(checkpoint) => checkpoint,
                    None => {
                        warn!(
                            from,
                            newest = latest.body.point.position,
                            "no audit checkpoint within {MAX_EXTENSION_LEAVES} positions of the one a peer holds, and none could be signed: it is shown without proof"
                        );
                        return Ok(Some(Offer {
                            checkpoint: latest,
                            extension: None,
                            resume,
                        }));
                    }
                }
            }
        };
        let to = checkpoint.body.point.position;
        let leaves = if to > from {
            store.audit_leaves(from, to).await?
        } else {
            Vec::new()
        };
        Ok(Some(Offer {
            checkpoint,
            extension: Some(Extension { from, leaves }),
            resume,
        }))
    }
}
