//! The audit chain at work: sealing committed records and signing checkpoints (the sealer
//! worker's step), what we show each peer of our chain and what we make of what it shows us
//! (through the peer-status exchange), checking the whole chain (`hancha audit verify`), and
//! resuming after a restore (`hancha audit resume`).
//!
//! # Signatures
//!
//! Checkpoints and resume statements are signed and checked like all evidence a county signs,
//! with `crate::tls::signing` (purposes [`AUDIT_CHECKPOINT_PURPOSE`] and
//! [`AUDIT_RESUME_PURPOSE`]): the node signs with the county key in force (after a certificate
//! rotation, new checkpoints carry the new certificate), and checks against the trust anchors
//! in force. What is checked when:
//!
//! - a peer's checkpoint and resume statement, once, when they arrive: the certificate chains
//!   to our anchors and is valid now, and it names the peer that sent them over mutual TLS (the
//!   county the body claims must be the same). A refused checkpoint is not held (it witnesses
//!   nothing), and the refusal is logged and audited; one held stays held when the peer's
//!   certificate later expires or is rotated, as an agreement signature checked at apply does;
//! - our own newest checkpoint, by `hancha audit verify`: against the anchors in force, at the
//!   time it was signed (the certificate must have been valid then), so a rotation or expiry
//!   since does not break the chain; it must name this node's county.
//!
//! Sealing runs after commit, off the intake path: intake only inserts its audit rows (with the
//! id of the writing transaction), and the sealer gives them positions later, in commit order
//! ([`crate::store::sequencer`]). Replicas may all run the sealer; one seals at a time.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tracing::{error, info, warn};

use super::Node;
use crate::domain::audit_chain::{
    AuditStatus, ChainPoint, Checkpoint, Extension, Held, MAX_EXTENSION_LEAVES, Offer, ResumeStatement,
    Signature, Signed, Verdict, witness,
};
use crate::domain::audit_verify::VerifyReport;
use crate::domain::division::CountyCode;
use crate::domain::privacy::without_id_numbers;
use crate::store::audit::AuditEntry;
use crate::store::audit_chain::{CheckpointMark, Sealing};
use crate::store::{Store, StoreError};
use crate::tls::signing::{
    self, AUDIT_CHECKPOINT_PURPOSE, AUDIT_RESUME_PURPOSE, Algorithm, SignError, certificates_from_der,
};
use crate::tls::{County, CountyKey, TrustAnchors};

mod verify;
pub use verify::verify_chain;

/// Records sealed per transaction, at most: under load the sealer runs batch after batch beside
/// intake, so fewer, larger transactions leave intake more of the machine.
pub const SEAL_BATCH: i64 = 3000;

/// A checkpoint at least every this many records (checked after each batch of [`SEAL_BATCH`],
/// so checkpoints are never more than 999 + 3000 positions apart, within
/// [`MAX_EXTENSION_LEAVES`]).
pub const CHECKPOINT_EVERY: u64 = 1000;

// a peer can always be shown a proof from the checkpoint it holds to the next one
const _: () = assert!(CHECKPOINT_EVERY - 1 + SEAL_BATCH as u64 <= MAX_EXTENSION_LEAVES);

/// A checkpoint at least this often while records are written.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// A chain this long without a single checkpoint, on a node that signs them, lost its
/// checkpoints: one is signed at least every [`CHECKPOINT_EVERY`] records (checked after each
/// batch of [`SEAL_BATCH`]), so two intervals and a batch is well past any honest gap.
pub const CHECKPOINT_GAP_LIMIT: u64 = 2 * CHECKPOINT_EVERY + SEAL_BATCH as u64;

/// What one sealing step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Records sealed.
    pub sealed: usize,
    /// Where the chain stands.
    pub head: Option<ChainPoint>,
    /// The checkpoint signed in this step, if one was.
    pub checkpoint: Option<ChainPoint>,
    /// Another replica was sealing.
    pub busy: bool,
}

impl Node {
    /// Seals every committed audit record not yet sealed, in batches, signing a checkpoint
    /// whenever one is due (see [`CHECKPOINT_EVERY`], [`CHECKPOINT_INTERVAL`]), stored in the
    /// batch's own transaction.
    pub async fn seal_audit(&self) -> Result<SealReport, StoreError> {
        let mut report = SealReport::default();
        let mut checkpoint = |end: ChainPoint, last: Option<CheckpointMark>| {
            let key = self.county_key.as_ref()?;
            checkpoint_due(last, end, false).then(|| self.signed_checkpoint(key, end))?
        };
        loop {
            match self.store().seal_audit(SEAL_BATCH, &mut checkpoint).await? {
                Sealing::Busy => {
                    report.busy = true;
                    return Ok(report);
                }
                Sealing::Sealed {
                    records,
                    head,
                    checkpoint,
                } => {
                    report.sealed += records;
                    report.head = head;
                    if let Some(head) = head.filter(|_| records > 0) {
                        self.sealed.send_replace(head.position as i64);
                    }
                    if checkpoint.is_some() {
                        report.checkpoint = checkpoint;
                    }
                    if (records as i64) < SEAL_BATCH {
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Signs a checkpoint at the end of the chain when one is due, or whenever the chain grew
    /// past the last one if `force`. Returns it; `None` when none was due or this node has no
    /// signer.
    pub async fn checkpoint_audit(&self, force: bool) -> Result<Option<ChainPoint>, StoreError> {
        let Some(key) = &self.county_key else {
            return Ok(None);
        };
        let Some(end) = self.store().audit_chain_end().await? else {
            return Ok(None);
        };
        let last = self
            .store()
            .audit_checkpoint(None)
            .await?
            .map(|last| CheckpointMark {
                position: last.body.point.position,
                signed_at: last.body.signed_at,
            });
        if !checkpoint_due(last, end, force) {
            return Ok(None);
        }
        let Some(signed) = self.signed_checkpoint(key, end) else {
            return Ok(None);
        };
        self.store().add_audit_checkpoint(&signed).await?;
        Ok(Some(end))
    }

    /// A checkpoint at `point` of our chain signed with `key`; `None` when signing failed
    /// (logged).
    fn signed_checkpoint(&self, key: &CountyKey, point: ChainPoint) -> Option<Signed<Checkpoint>> {
        let checkpoint = Checkpoint {
            county: self.county().as_str().to_string(),
            point,
            signed_at: Utc::now().trunc_subsecs(0),
        };
        match sign(
            key,
            AUDIT_CHECKPOINT_PURPOSE,
            &checkpoint.county,
            &checkpoint.signed_bytes(),
            checkpoint.signed_at,
        ) {
            Ok(signature) => Some(Signed {
                body: checkpoint,
                signature,
            }),
            Err(error) => {
                warn!(%error, position = point.position, "audit checkpoint not signed");
                None
            }
        }
    }

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
}

impl Node {
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

    /// Checks the whole chain of this node's database (see [`verify_chain`]) against the trust
    /// anchors in force.
    pub async fn verify_audit_chain(&self) -> Result<VerifyReport, StoreError> {
        let anchors = self.signatures.anchors.as_ref().map(|anchors| anchors.current());
        verify_chain(
            self.store(),
            self.county(),
            anchors.as_ref(),
            self.county_key.is_some(),
        )
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

/// Signs `bytes` for `purpose` with `key` as `county` at `signed_at`, in the stored form. A key
/// of another county (which the live material never holds) signs nothing.
fn sign(
    key: &CountyKey,
    purpose: &str,
    county: &str,
    bytes: &[u8],
    signed_at: DateTime<Utc>,
) -> Result<Signature, SignError> {
    let signature = key.sign_at(purpose, bytes, signed_at)?;
    if signature.signer.as_str() != county {
        return Err(SignError::Key(format!(
            "the certificate in force is {}'s, not {county}'s",
            signature.signer
        )));
    }
    Ok(Signature {
        scheme: signature.algorithm.as_str().to_owned(),
        bytes: signature.value.clone(),
        certificate: signature.certificates_der(),
    })
}

/// Checks `signature` over a body (the county it claims, when it was signed, its signed bytes)
/// for `purpose`, with `crate::tls::signing::verify` against `anchors` at instant `at`; and
/// that the verified certificate names `expected` (the peer as its TLS certificate names it,
/// or this node). The claimed county must agree with the certificate, never replace it.
fn check_signature(
    anchors: Option<&TrustAnchors>,
    expected: CountyCode,
    purpose: &str,
    (county, signed_at, bytes): (&str, DateTime<Utc>, &[u8]),
    signature: &Signature,
    at: DateTime<Utc>,
) -> Result<(), String> {
    let Some(anchors) = anchors else {
        return Err("this node has no trust anchors to check signatures with".to_owned());
    };
    let signer = County::parse(county).map_err(|error| error.to_string())?;
    let algorithm = Algorithm::parse(&signature.scheme)
        .ok_or_else(|| format!("unknown signature algorithm {:?}", signature.scheme))?;
    let certificates = certificates_from_der(&signature.certificate)
        .ok_or_else(|| "the certificate is not DER".to_owned())?;
    let signature = signing::Signature {
        signer,
        signed_at,
        algorithm,
        certificates,
        value: signature.bytes.clone(),
    };
    let verified =
        signing::verify(&signature, purpose, bytes, anchors, at).map_err(|error| error.to_string())?;
    if verified.county.as_str() != expected.as_str() {
        return Err(format!("it is signed by {}, not by {expected}", verified.county));
    }
    Ok(())
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

/// Whether a checkpoint at `end` is due, the newest being `last`: always for the first, never
/// when the chain has not grown past the last, and otherwise after [`CHECKPOINT_EVERY`]
/// records or [`CHECKPOINT_INTERVAL`] (or at once if `force`).
fn checkpoint_due(last: Option<CheckpointMark>, end: ChainPoint, force: bool) -> bool {
    match last {
        None => true,
        Some(last) if last.position >= end.position => false,
        Some(last) => {
            force
                || end.position - last.position >= CHECKPOINT_EVERY
                || Utc::now() - last.signed_at
                    >= chrono::Duration::from_std(CHECKPOINT_INTERVAL).unwrap_or_default()
        }
    }
}

/// Why a resume statement was not made.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// No checkpoint at the position asked for (or none at all).
    #[error("no checkpoint {0} in this database")]
    NoCheckpoint(String),
    /// The checkpoint does not match the chain: verify first.
    #[error("checkpoint {0} does not match the chain in this database; run `hancha audit verify`")]
    OffChain(u64),
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] SignError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// After a restore from backup (or a failover that lost the newest records): signs and stores
/// the statement that the chain continues from checkpoint `from` (the newest, when `None`),
/// with an audit record of it by `principal`. Peers accept the rewound history on the strength
/// of it, once.
pub async fn resume_chain(
    store: &Store,
    key: &CountyKey,
    from: Option<u64>,
    reason: &str,
    principal: &str,
) -> Result<Signed<ResumeStatement>, ResumeError> {
    let checkpoint = store
        .audit_checkpoint(from)
        .await?
        .filter(|checkpoint| from.is_none_or(|position| checkpoint.body.point.position == position))
        .ok_or_else(|| {
            ResumeError::NoCheckpoint(from.map_or("at all".into(), |p| format!("at position {p}")))
        })?;
    let point = checkpoint.body.point;
    if store.audit_head_at(point.position).await? != Some(point.head) {
        return Err(ResumeError::OffChain(point.position));
    }
    let statement = ResumeStatement {
        county: key.county().as_str().to_string(),
        from: point,
        signed_at: Utc::now().trunc_subsecs(0),
        reason: without_id_numbers(reason).into_owned(),
    };
    let signature = sign(
        key,
        AUDIT_RESUME_PURPOSE,
        &statement.county,
        &statement.signed_bytes(),
        statement.signed_at,
    )?;
    let resume = Signed {
        body: statement,
        signature,
    };
    store.add_audit_resume(&resume, principal).await?;
    Ok(resume)
}
