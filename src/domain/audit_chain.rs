//! The audit chain's rules: how a record is encoded for hashing, how the chain grows, what a
//! checkpoint and a resume statement say when signed, and whether a peer's new checkpoint
//! extends the one we hold of it ([`witness`]).
//!
//! Position `p` of the chain has head `h_p = SHA-256(h_{p-1} || leaf_p)` with `h_0` all zero
//! bytes, and `leaf_p = SHA-256(canonical encoding of the record at p)`. The encoding is
//! versioned ([`ENCODING_V1`]: a tag, then every field in a fixed order, each length-prefixed),
//! independent of how the table stores the record, so a later reshaping of the table keeps old
//! records verifiable: the reader rebuilds [`AuditFields`] from whatever columns hold them.
//!
//! A peer cannot recompute our chain (it never sees our records), so a checkpoint it is shown
//! comes with the leaves between the checkpoint it already holds and the new one
//! ([`Extension`]): from `h_p` and leaves `p+1..=q` it recomputes `h_q`. Leaves are hashes:
//! they reveal nothing of the records. Their number is capped ([`MAX_EXTENSION_LEAVES`]); the
//! sender offers the newest checkpoint within the cap, so a peer far behind catches up over
//! several exchanges.
//!
//! Checkpoints and resume statements are signed like every other piece of evidence a county
//! signs (`crate::tls::signing`, each with its own purpose): the signature covers the purpose,
//! the signing time and [`Checkpoint::signed_bytes`] / [`ResumeStatement::signed_bytes`]. The
//! domain does no cryptography: the node checks signatures before [`witness`] weighs an offer.

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// The tag that starts every version-1 encoding of a record.
pub const ENCODING_V1: &str = "hancha-audit/1";

/// The version number stored with each chain position for [`ENCODING_V1`].
pub const ENCODING_V1_NUMBER: i16 = 1;

/// The most leaves one extension carries (32 bytes each: 128 KiB).
pub const MAX_EXTENSION_LEAVES: u64 = 4096;

/// A SHA-256 value: a leaf or a head.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The head before the first record.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// From stored or received bytes; `None` unless exactly 32.
    pub fn from_slice(bytes: &[u8]) -> Option<ChainHash> {
        bytes.try_into().ok().map(ChainHash)
    }

    /// Lowercase hex, for people and logs.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex characters: enough to tell two heads apart in a message.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }

    /// The head after `leaf`: `SHA-256(self || leaf)`.
    pub fn then(&self, leaf: &ChainHash) -> ChainHash {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(leaf.0);
        ChainHash(hasher.finalize().into())
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainHash({})", self.short())
    }
}

/// Every field of an audit record that the chain binds, whatever table holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFields {
    /// The record's id: its identity, named when it is found changed or missing.
    pub id: i64,
    /// When it was written, to the microsecond (what the database keeps).
    pub at_micros: i64,
    /// `inbound`, `outbound` or `local`.
    pub direction: String,
    /// What happened.
    pub outcome: String,
    /// The peer county, if any.
    pub peer_county: Option<String>,
    /// The message concerned, if any.
    pub message_id: Option<Uuid>,
    /// The message kind, if any.
    pub kind: Option<String>,
    /// The agreement named, if any.
    pub agreement_id: Option<String>,
    /// Its hash, if any.
    pub agreement_hash: Option<String>,
    /// Why, if said.
    pub reason: Option<String>,
    /// The operator principal, for operator actions.
    pub principal: Option<String>,
    /// Its scope.
    pub principal_scope: Option<String>,
    /// The operator action.
    pub action: Option<String>,
}

impl AuditFields {
    /// The microseconds since the epoch that the chain binds for `at`.
    pub fn micros(at: DateTime<Utc>) -> i64 {
        at.timestamp_micros()
    }

    /// The version-1 canonical encoding: the tag, then each field in a fixed order; present
    /// values as `1, u32 length, bytes`, absent ones as `0`; integers big-endian.
    pub fn encode_v1(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        put(&mut out, Some(ENCODING_V1.as_bytes()));
        put(&mut out, Some(&self.id.to_be_bytes()));
        put(&mut out, Some(&self.at_micros.to_be_bytes()));
        put(&mut out, Some(self.direction.as_bytes()));
        put(&mut out, Some(self.outcome.as_bytes()));
        put(&mut out, self.peer_county.as_deref().map(str::as_bytes));
        put(
            &mut out,
            self.message_id.as_ref().map(|id| id.as_bytes().as_slice()),
        );
        for text in [
            &self.kind,
            &self.agreement_id,
            &self.agreement_hash,
            &self.reason,
            &self.principal,
            &self.principal_scope,
            &self.action,
        ] {
            put(&mut out, text.as_deref().map(str::as_bytes));
        }
        out
    }

    /// The record's leaf: SHA-256 of its version-1 encoding.
    pub fn leaf_v1(&self) -> ChainHash {
        ChainHash(Sha256::digest(self.encode_v1()).into())
    }
}

fn put(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// A place in the chain: a position and the head there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainPoint {
    /// The position (1 for the first record).
    pub position: u64,
    /// The head after that record.
    pub head: ChainHash,
}

/// What a checkpoint says, and what its signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The county whose chain it is.
    pub county: String,
    /// Where the chain stood.
    pub point: ChainPoint,
    /// When it was signed (whole seconds): the signature covers it.
    pub signed_at: DateTime<Utc>,
}

impl Checkpoint {
    /// The bytes signed (after the purpose and the signing time): county, position, head.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        put(&mut out, Some(self.county.as_bytes()));
        out.extend_from_slice(&self.point.position.to_be_bytes());
        out.extend_from_slice(&self.point.head.0);
        out
    }
}

/// A signed statement that this county's chain was rewound to a checkpoint (a restore from
/// backup, an asynchronous failover) and continues from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeStatement {
    /// The county whose chain it is.
    pub county: String,
    /// The checkpoint the chain continues from.
    pub from: ChainPoint,
    /// When the operator made the statement (whole seconds): the signature covers it.
    pub signed_at: DateTime<Utc>,
    /// Why, in the operator's words.
    pub reason: String,
}

impl ResumeStatement {
    /// The bytes signed (after the purpose and the signing time): county, resume point,
    /// reason.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        put(&mut out, Some(self.county.as_bytes()));
        out.extend_from_slice(&self.from.position.to_be_bytes());
        out.extend_from_slice(&self.from.head.0);
        put(&mut out, Some(self.reason.as_bytes()));
        out
    }
}

/// A county's signature over a checkpoint or resume statement, as stored and sent; with the
/// body's county and signing time it is a `crate::tls::signing::Signature`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The algorithm, as named in signature files (`ecdsa-p256-sha256`, `ed25519`, ...).
    pub scheme: String,
    /// The signature bytes.
    pub bytes: Vec<u8>,
    /// The signer's certificate, then any intermediates: each one's DER, concatenated. The
    /// certificate, not the body, says which county signed.
    pub certificate: Vec<u8>,
}

/// Something signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<T> {
    /// What was signed.
    pub body: T,
    /// The signature over it.
    pub signature: Signature,
}

/// The leaves after `from` up to the offered checkpoint: what lets a peer that holds `from`
/// recompute the offered head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The position the leaves continue (the first leaf is at `from + 1`).
    pub from: u64,
    /// The leaves, in order.
    pub leaves: Vec<ChainHash>,
}

impl Extension {
    /// The head after these leaves, starting from `head` at `self.from`.
    pub fn apply(&self, head: ChainHash) -> ChainHash {
        self.leaves.iter().fold(head, |head, leaf| head.then(leaf))
    }
}

/// What one node shows a peer of its audit chain in a status exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditStatus {
    /// Our checkpoint on offer, with its extension and, after a restore, the resume statement.
    pub offer: Option<Offer>,
    /// The checkpoint of the peer's chain that we hold, so its next extension starts there.
    pub holds_yours: Option<ChainPoint>,
}

/// A checkpoint offered to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The signed checkpoint.
    pub checkpoint: Signed<Checkpoint>,
    /// The leaves from the checkpoint the peer holds (or, after a restore, from the resume
    /// point) to this one; `None` on first contact.
    pub extension: Option<Extension>,
    /// The latest resume statement, when the chain was rewound.
    pub resume: Option<Signed<ResumeStatement>>,
}

/// What we hold of a peer's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// Its last checkpoint that we accepted.
    pub checkpoint: Checkpoint,
    /// When the last resume statement we accepted from it was signed.
    pub resumed_at: Option<DateTime<Utc>>,
}

/// What a peer's offered checkpoint means against what we hold of it. Signatures are checked
/// before (they need certificates); this is the chain rule alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The first checkpoint we see of the peer: held from now on (trust on first use).
    First,
    /// The same checkpoint we hold.
    Same,
    /// It extends ours: held from now on.
    Extends,
    /// It may extend ours, but came without the leaves to show it: ours stays held.
    Unproven(String),
    /// After a signed resume statement newer than anything we accepted, it extends the resume
    /// point: held from now on, the rewind recorded.
    Resumed {
        /// Where the peer's chain was rewound to.
        from: ChainPoint,
        /// When the statement was signed.
        signed_at: DateTime<Utc>,
        /// Whether the resume point is the checkpoint we hold (so we witnessed it); a point
        /// before ours is taken on the statement's word alone.
        witnessed: bool,
    },
    /// The peer's history no longer extends what it showed before.
    Fork(String),
}

/// Whether `offer` extends `held` (see [`Verdict`]). The offer's signatures are taken as
/// checked.
pub fn witness(held: Option<&Held>, offer: &Offer) -> Verdict {
    let offered = &offer.checkpoint.body;
    let Some(held) = held else {
        return Verdict::First;
    };
    let ours = held.checkpoint.point;
    let theirs = offered.point;
    if theirs == ours {
        return Verdict::Same;
    }
    if let Some(extension) = &offer.extension {
        if extension.from == ours.position && theirs.position > ours.position {
            let expected = theirs.position - ours.position;
            if extension.leaves.len() as u64 != expected {
                return Verdict::Unproven(format!(
                    "the extension from {} carries {} leaves, {} expected",
                    ours.position,
                    extension.leaves.len(),
                    expected
                ));
            }
            return if extension.apply(ours.head) == theirs.head {
                Verdict::Extends
            } else {
                Verdict::Fork(format!(
                    "checkpoint {} (head {}) does not extend the checkpoint {} (head {}) it showed before",
                    theirs.position,
                    theirs.head.short(),
                    ours.position,
                    ours.head.short()
                ))
            };
        }
    }
    if let Some(resumed) = resumed_from(held, offer) {
        return resumed;
    }
    if theirs.position == ours.position {
        return Verdict::Fork(format!(
            "checkpoint {} has head {}, but it showed head {} there before",
            ours.position,
            theirs.head.short(),
            ours.head.short()
        ));
    }
    if theirs.position < ours.position {
        return Verdict::Fork(format!(
            "its chain went back from {} to {} without a signed resume statement",
            ours.position, theirs.position
        ));
    }
    Verdict::Unproven(format!(
        "checkpoint {} came without the leaves from {}",
        theirs.position, ours.position
    ))
}

/// A rewind accepted: a resume statement signed after (or in the same second as) the checkpoint
/// we hold and after any statement we accepted before (each statement rewinds once), not beyond
/// what we hold, with the leaves from its point to the offered checkpoint. A statement resuming
/// from the position we hold must name the head we hold there (otherwise the history it
/// continues is not the one we witnessed: a fork); one resuming from an earlier position is
/// accepted, marked unwitnessed (we never held that point).
fn resumed_from(held: &Held, offer: &Offer) -> Option<Verdict> {
    let resume = &offer.resume.as_ref()?.body;
    let extension = offer.extension.as_ref()?;
    let offered = offer.checkpoint.body.point;
    let ours = held.checkpoint.point;
    // signing times are whole seconds: a statement made in the second of the checkpoint we hold
    // counts as after it (each statement still rewinds only once)
    let fresh = resume.signed_at >= held.checkpoint.signed_at
        && held.resumed_at.is_none_or(|accepted| resume.signed_at > accepted);
    let proven = extension.from == resume.from.position
        && offered.position >= resume.from.position
        && extension.leaves.len() as u64 == offered.position - resume.from.position
        && extension.apply(resume.from.head) == offered.head;
    if !(fresh && proven && resume.from.position <= ours.position) {
        return None;
    }
    if resume.from.position == ours.position && resume.from.head != ours.head {
        return Some(Verdict::Fork(format!(
            "its resume statement continues from checkpoint {} with head {}, but it showed head {} there before",
            ours.position,
            resume.from.head.short(),
            ours.head.short()
        )));
    }
    Some(Verdict::Resumed {
        from: resume.from,
        signed_at: resume.signed_at,
        witnessed: resume.from.position == ours.position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(records: u64) -> Vec<ChainHash> {
        let mut heads = vec![ChainHash::GENESIS];
        for id in 1..=records {
            let leaf = leaf(id);
            heads.push(heads.last().unwrap().then(&leaf));
        }
        heads
    }

    fn leaf(id: u64) -> ChainHash {
        AuditFields {
            id: id as i64,
            direction: "local".into(),
            outcome: "read".into(),
            ..AuditFields::default()
        }
        .leaf_v1()
    }

    fn checkpoint(position: u64, head: ChainHash, seconds: i64) -> Checkpoint {
        Checkpoint {
            county: "430703".into(),
            point: ChainPoint { position, head },
            signed_at: DateTime::from_timestamp(seconds, 0).unwrap(),
        }
    }

    fn offer(checkpoint: Checkpoint, extension: Option<Extension>) -> Offer {
        Offer {
            checkpoint: Signed {
                body: checkpoint,
                signature: Signature {
                    scheme: String::new(),
                    bytes: Vec::new(),
                    certificate: Vec::new(),
                },
            },
            extension,
            resume: None,
        }
    }

    fn leaves(from: u64, to: u64) -> Extension {
        Extension {
            from,
            leaves: (from + 1..=to).map(leaf).collect(),
        }
    }

    #[test]
    fn the_encoding_tells_absent_from_empty_and_binds_every_field() {
        let base = AuditFields {
            id: 7,
            direction: "inbound".into(),
            outcome: "accepted".into(),
            ..AuditFields::default()
        };
        let empty_reason = AuditFields {
            reason: Some(String::new()),
            ..base.clone()
        };
        assert_ne!(base.leaf_v1(), empty_reason.leaf_v1());
        let shifted = AuditFields {
            kind: Some("ab".into()),
            agreement_id: Some("c".into()),
            ..base.clone()
        };
        let other = AuditFields {
            kind: Some("a".into()),
            agreement_id: Some("bc".into()),
            ..base.clone()
        };
        assert_ne!(shifted.leaf_v1(), other.leaf_v1());
        assert!(base.encode_v1().starts_with(&[1, 0, 0, 0, 14]));
    }

    #[test]
    fn an_extension_with_the_right_leaves_is_accepted() {
        let heads = chain(10);
        let held = Held {
            checkpoint: checkpoint(4, heads[4], 100),
            resumed_at: None,
        };
        let verdict = witness(
            Some(&held),
            &offer(checkpoint(10, heads[10], 200), Some(leaves(4, 10))),
        );
        assert_eq!(verdict, Verdict::Extends);
    }

    #[test]
    fn a_rewritten_history_is_a_fork() {
        let heads = chain(10);
        let held = Held {
            checkpoint: checkpoint(4, heads[4], 100),
            resumed_at: None,
        };
        // record 3 was changed and everything after it recomputed: the new chain is
        // consistent in itself, but its leaves from 4 do not lead from the head held at 4
        let mut rewritten = vec![ChainHash::GENESIS];
        for id in 1..=10 {
            let leaf = if id == 3 { leaf(99) } else { leaf(id) };
            rewritten.push(rewritten.last().unwrap().then(&leaf));
        }
        let verdict = witness(
            Some(&held),
            &offer(checkpoint(10, rewritten[10], 200), Some(leaves(4, 10))),
        );
        assert!(matches!(verdict, Verdict::Fork(_)), "{verdict:?}");
        let same_place = witness(Some(&held), &offer(checkpoint(4, rewritten[4], 200), None));
        assert!(matches!(same_place, Verdict::Fork(_)), "{same_place:?}");
    }

    #[test]
    fn going_back_without_a_resume_statement_is_a_fork_and_with_one_is_a_resume() {
        let heads = chain(10);
        let held = Held {
            checkpoint: checkpoint(8, heads[8], 100),
            resumed_at: None,
        };
        let back = offer(checkpoint(6, heads[6], 200), Some(leaves(8, 6)));
        assert!(matches!(witness(Some(&held), &back), Verdict::Fork(_)));

        let resume = ResumeStatement {
            county: "430703".into(),
            from: ChainPoint {
                position: 5,
                head: heads[5],
            },
            signed_at: DateTime::from_timestamp(150, 0).unwrap(),
            reason: "restored".into(),
        };
        let mut resumed = offer(checkpoint(7, heads[7], 200), Some(leaves(5, 7)));
        resumed.resume = Some(Signed {
            body: resume.clone(),
            signature: resumed.checkpoint.signature.clone(),
        });
        assert!(matches!(
            witness(Some(&held), &resumed),
            Verdict::Resumed { witnessed: false, .. }
        ));
        // the same statement accepted once cannot cover a second rewind
        let after = Held {
            checkpoint: checkpoint(7, heads[7], 200),
            resumed_at: Some(resume.signed_at),
        };
        let mut again = resumed.clone();
        again.checkpoint.body = checkpoint(6, heads[6], 300);
        again.extension = Some(leaves(5, 6));
        assert!(matches!(witness(Some(&after), &again), Verdict::Fork(_)));
        // a statement older than the checkpoint we hold is no excuse
        let newer_held = Held {
            checkpoint: checkpoint(8, heads[8], 160),
            resumed_at: None,
        };
        assert!(matches!(witness(Some(&newer_held), &resumed), Verdict::Fork(_)));
    }

    #[test]
    fn a_checkpoint_without_its_leaves_is_unproven_not_held() {
        let heads = chain(10);
        let held = Held {
            checkpoint: checkpoint(4, heads[4], 100),
            resumed_at: None,
        };
        let verdict = witness(Some(&held), &offer(checkpoint(10, heads[10], 200), None));
        assert!(matches!(verdict, Verdict::Unproven(_)));
        assert_eq!(
            witness(None, &offer(checkpoint(10, heads[10], 200), None)),
            Verdict::First
        );
    }

    #[test]
    fn a_resume_from_the_held_position_must_name_the_held_head() {
        let heads = chain(10);
        let held = Held {
            checkpoint: checkpoint(5, heads[5], 100),
            resumed_at: None,
        };
        let statement = |from: ChainPoint| ResumeStatement {
            county: "430703".into(),
            from,
            signed_at: DateTime::from_timestamp(150, 0).unwrap(),
            reason: "restored".into(),
        };
        let resuming = |from: ChainPoint, extension: Extension| {
            let mut resumed = offer(checkpoint(7, heads[7], 200), Some(extension));
            resumed.resume = Some(Signed {
                body: statement(from),
                signature: resumed.checkpoint.signature.clone(),
            });
            resumed
        };
        // the head we hold: the history continues from what we witnessed
        let same = resuming(
            ChainPoint {
                position: 5,
                head: heads[5],
            },
            leaves(5, 7),
        );
        assert_eq!(witness(Some(&held), &same), Verdict::Extends);
        // another head at the position we hold, offered there under a statement resuming
        // from it: a different history, not a restore
        let other_head = ChainHash([9; 32]);
        let mut other = resuming(
            ChainPoint {
                position: 5,
                head: other_head,
            },
            Extension {
                from: 5,
                leaves: Vec::new(),
            },
        );
        other.checkpoint.body.point = ChainPoint {
            position: 5,
            head: other_head,
        };
        let verdict = witness(Some(&held), &other);
        assert!(
            matches!(&verdict, Verdict::Fork(detail) if detail.contains("resume statement")),
            "{verdict:?}"
        );
        // an earlier point: accepted, unwitnessed
        let earlier = resuming(
            ChainPoint {
                position: 3,
                head: heads[3],
            },
            leaves(3, 7),
        );
        assert!(matches!(
            witness(Some(&held), &earlier),
            Verdict::Resumed { witnessed: false, .. }
        ));
    }
}
