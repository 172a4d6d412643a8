//! The Merkle-tree baseline of the reconciliation benchmark: what two counties would put on the
//! wire to find the differences between their sets of 32-byte digests by comparing hash trees,
//! counted byte for byte, so that rateless IBLT ([`crate::domain::riblt`]) is measured against a
//! real interactive alternative and not only against sending every digest (32·n bytes).
//!
//! Nothing is sent anywhere: [`reconcile`] holds both sets, plays both sides and counts what each
//! message would carry.
//!
//! # The tree
//!
//! Both sides arrange their elements in the same 16-ary prefix tree: the node at level ℓ with
//! prefix `p` holds the elements whose first ℓ nibbles are `p`, so the tree's shape does not
//! depend on what either side holds. Leaf buckets sit at depth L, the smallest depth of at least
//! 1 at which a bucket of the larger set expects at most 8 elements (L = ⌈log₁₆(max(n_I, n_R)/8)⌉,
//! at most 7). A bucket's hash is SHA-256 of its sorted elements, an inner node's is SHA-256 of
//! its 16 children's hashes, and an empty subtree's is 32 zero bytes, never computed.
//!
//! # The exchange
//!
//! 1. The initiator sends its set size and its root hash, at the depth its own size implies.
//! 2. If the sizes and roots agree, the responder answers "equal" and the exchange is over. If
//!    not, it answers with its set size (which fixes L for both) and its child hashes of the root.
//! 3. From then on the sides take turns, one level deeper per message: the receiver compares the
//!    child hashes with its own, and for every child that differs sends its own child hashes.
//! 4. The side that receives the leaf-bucket hashes sends the buckets that differ, in full. The
//!    other side, now holding both versions of every differing bucket, sends back only the
//!    elements the first one lacks; both then hold the union.
//!
//! # Wire accounting
//!
//! | item                                                      | bytes |
//! |-----------------------------------------------------------|-------|
//! | message header: kind 1 + length 4 (like gRPC's prefix)    | 5     |
//! | set size                                                  | 8     |
//! | hash                                                      | 32    |
//! | node reference: level 4 bits + prefix 28 bits             | 4     |
//! | map of which of a node's 16 children are non-empty        | 2     |
//! | element count of a bucket or of the final list            | 4     |
//! | element                                                   | 32    |
//!
//! Child hashes go as node reference, child map, then only the non-empty children's hashes; a
//! bucket as node reference, count, elements. Every message waits for the one before it, so the
//! exchange lasts `messages / 2` round trips, rounded up: identical sets take one (50 bytes),
//! differing ones L + 3 messages.

use sha2::{Digest, Sha256};

/// A set element: a 32-byte keyed digest, uniformly distributed.
pub type Element = [u8; 32];

type Hash = [u8; 32];

/// The hash of an empty subtree.
const EMPTY: Hash = [0; 32];

const HEADER_BYTES: u64 = 5;
const SET_SIZE_BYTES: u64 = 8;
const HASH_BYTES: u64 = 32;
const NODE_REFERENCE_BYTES: u64 = 4;
const CHILD_MAP_BYTES: u64 = 2;
const COUNT_BYTES: u64 = 4;
const ELEMENT_BYTES: u64 = 32;

/// Buckets are split until they expect at most this many elements of the larger set.
const BUCKET_TARGET: u64 = 8;

/// Deepest leaf level: a node reference has 28 bits for the prefix.
const MAX_DEPTH: u32 = 7;

/// What one Merkle-tree reconciliation cost and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleOutcome {
    /// Bytes on the wire in both directions: the figure the benchmark sets beside IBLT and 32·n.
    pub bytes: u64,
    /// Of `bytes`, what the initiator sent.
    pub initiator_bytes: u64,
    /// Of `bytes`, what the responder sent.
    pub responder_bytes: u64,
    /// Messages, alternating between the sides, each waiting for the one before.
    pub messages: u32,
    /// `messages / 2` rounded up: how many round-trip times the exchange takes.
    pub round_trips: u32,
    /// Elements only the initiator holds, sorted.
    pub initiator_only: Vec<Element>,
    /// Elements only the responder holds, sorted.
    pub responder_only: Vec<Element>,
}

/// Runs the exchange described in the module documentation between two sets (in any order;
/// repeated elements count once) and returns its cost and the differences it found.
pub fn reconcile(initiator: &[Element], responder: &[Element]) -> MerkleOutcome {
    let (initiator, responder) = both(|| sorted_set(initiator), || sorted_set(responder));
    let depth = depth_for(initiator.len().max(responder.len()));
    let (initiator, responder) = both(|| Tree::build(initiator, depth), || Tree::build(responder, depth));
    let mut wire = Wire::default();

    // The initiator's root is at the depth its own size implies; when the sizes agree that is
    // `depth`, and when they do not the sets differ whatever the root says.
    wire.send(Side::Initiator, SET_SIZE_BYTES + HASH_BYTES);
    let same_size = initiator.elements.len() == responder.elements.len();
    if same_size && initiator.root() == responder.root() {
        wire.send(Side::Responder, 0);
        return wire.finish(Vec::new(), Vec::new());
    }

    let tree = |side: Side| match side {
        Side::Initiator => &initiator,
        Side::Responder => &responder,
    };
    // Prefixes of the nodes at `level - 1` whose hashes differ, as the next sender knows them.
    let mut differing = vec![0u32];
    let mut sender = Side::Responder;
    let mut payload = SET_SIZE_BYTES;
    for level in 1..=depth {
        let (own, other) = (tree(sender), tree(sender.other()));
        let mut next = Vec::new();
        for &parent in &differing {
            let (own_children, other_children) = (own.children(level, parent), other.children(level, parent));
            let non_empty = own_children.iter().filter(|hash| **hash != EMPTY).count();
            payload += NODE_REFERENCE_BYTES + CHILD_MAP_BYTES + HASH_BYTES * non_empty as u64;
            let differs = (0..16).filter(|&i| own_children[i] != other_children[i]);
            next.extend(differs.map(|i| parent << 4 | i as u32));
        }
        wire.send(sender, payload);
        payload = 0;
        differing = next;
        sender = sender.other();
    }

    // `sender` received the bucket hashes: it sends its differing buckets whole, and the other
    // side answers with what `sender` lacks.
    let (own, other) = (tree(sender), tree(sender.other()));
    let (mut sender_only, mut other_only) = (Vec::new(), Vec::new());
    for &bucket in &differing {
        let (own_bucket, other_bucket) = (own.bucket(bucket), other.bucket(bucket));
        payload += NODE_REFERENCE_BYTES + COUNT_BYTES + ELEMENT_BYTES * own_bucket.len() as u64;
        split_difference(own_bucket, other_bucket, &mut sender_only, &mut other_only);
    }
    wire.send(sender, payload);
    wire.send(
        sender.other(),
        COUNT_BYTES + ELEMENT_BYTES * other_only.len() as u64,
    );
    match sender {
        Side::Initiator => wire.finish(sender_only, other_only),
        Side::Responder => wire.finish(other_only, sender_only),
    }
}

/// Runs `a` and `b` at the same time, as the two sides would on their own machines.
fn both<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        (a(), b.join().expect("sorting and hashing do not panic"))
    })
}

/// The leaf depth both sides agree on once they know the larger set size.
fn depth_for(larger_set: usize) -> u32 {
    let mut depth = 1;
    while depth < MAX_DEPTH && BUCKET_TARGET << (4 * depth) < larger_set as u64 {
        depth += 1;
    }
    depth
}

fn sorted_set(elements: &[Element]) -> Vec<Element> {
    let mut sorted = elements.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

/// The first `depth` nibbles of an element.
fn prefix(element: &Element, depth: u32) -> u32 {
    let leading = u32::from_be_bytes([element[0], element[1], element[2], element[3]]);
    leading >> (32 - 4 * depth)
}

/// Appends to `a_only` and `b_only` what one sorted bucket holds and the other does not.
fn split_difference(a: &[Element], b: &[Element], a_only: &mut Vec<Element>, b_only: &mut Vec<Element>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                a_only.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                b_only.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => (i, j) = (i + 1, j + 1),
        }
    }
    a_only.extend_from_slice(&a[i..]);
    b_only.extend_from_slice(&b[j..]);
}

// === impl Tree ===

/// One side's prefix tree: its elements sorted, and the hash of every non-empty node.
struct Tree {
    elements: Vec<Element>,
    depth: u32,
    /// `levels[ℓ]`: `(prefix, hash)` of each non-empty node at level ℓ, sorted by prefix; level
    /// 0 is the root. Only non-empty nodes are kept, so memory follows n, not 16^L.
    levels: Vec<Vec<(u32, Hash)>>,
}

impl Tree {
    /// Hashes every bucket once and every inner node above them, bottom-up.
    fn build(elements: Vec<Element>, depth: u32) -> Tree {
        let buckets = elements.chunk_by(|a, b| prefix(a, depth) == prefix(b, depth));
        let leaves: Vec<(u32, Hash)> = buckets
            .map(|bucket| {
                let mut hasher = Sha256::new();
                bucket.iter().for_each(|element| hasher.update(element));
                (prefix(&bucket[0], depth), hasher.finalize().into())
            })
            .collect();
        let mut levels = vec![leaves];
        for _ in 0..depth {
            let below = levels.last().expect("the leaf level is there");
            let above = below
                .chunk_by(|a, b| a.0 >> 4 == b.0 >> 4)
                .map(|siblings| {
                    let mut children = [EMPTY; 16];
                    for (child, hash) in siblings {
                        children[(child & 15) as usize] = *hash;
                    }
                    (siblings[0].0 >> 4, Sha256::digest(children.as_flattened()).into())
                })
                .collect();
            levels.push(above);
        }
        levels.reverse();
        Tree {
            elements,
            depth,
            levels,
        }
    }

    fn root(&self) -> Hash {
        self.levels[0].first().map_or(EMPTY, |(_, hash)| *hash)
    }

    /// The hashes of the 16 children, at `level`, of node `parent` one level up.
    fn children(&self, level: u32, parent: u32) -> [Hash; 16] {
        let nodes = &self.levels[level as usize];
        let start = nodes.partition_point(|(node, _)| *node >> 4 < parent);
        let mut children = [EMPTY; 16];
        for (child, hash) in nodes[start..].iter().take_while(|(node, _)| *node >> 4 == parent) {
            children[(child & 15) as usize] = *hash;
        }
        children
    }

    /// The sorted elements of the leaf bucket with prefix `bucket`.
    fn bucket(&self, bucket: u32) -> &[Element] {
        let start = self.elements.partition_point(|e| prefix(e, self.depth) < bucket);
        let rest = &self.elements[start..];
        &rest[..rest.partition_point(|e| prefix(e, self.depth) == bucket)]
    }
}

// === impl Wire ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Initiator,
    Responder,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        }
    }
}

/// The running count of what the exchange has put on the wire.
#[derive(Default)]
struct Wire {
    initiator_bytes: u64,
    responder_bytes: u64,
    messages: u32,
}

impl Wire {
    /// One message from `side` carrying `payload` bytes after its header.
    fn send(&mut self, side: Side, payload: u64) {
        let bytes = match side {
            Side::Initiator => &mut self.initiator_bytes,
            Side::Responder => &mut self.responder_bytes,
        };
        *bytes += HEADER_BYTES + payload;
        self.messages += 1;
    }

    fn finish(self, initiator_only: Vec<Element>, responder_only: Vec<Element>) -> MerkleOutcome {
        MerkleOutcome {
            bytes: self.initiator_bytes + self.responder_bytes,
            initiator_bytes: self.initiator_bytes,
            responder_bytes: self.responder_bytes,
            messages: self.messages,
            round_trips: self.messages.div_ceil(2),
            initiator_only,
            responder_only,
        }
    }
}

#[cfg(test)]
mod tests;
