//! A bucketed priority queue of elements by the next coded-symbol index each maps to, so that
//! producing coded symbol `i` touches only the elements that map to `i`.
//!
//! Indices are produced in increasing order, so a calendar queue fits: a ring of `window`
//! buckets holds the elements due at each of the next `window` indices, and a binary heap holds
//! the few whose next index lies beyond (an element at index `i` jumps past `i + window` with
//! probability about `(i / (i + window))²`).
//!
//! Encoding is bound by memory traffic, and three choices here follow from measurements:
//! - buckets hold the elements themselves, not positions in a separate list, so a bucket is
//!   read sequentially (with positions, ~80% of encoding time was that one random load);
//! - a bucket is a list of fixed 1 KiB chunks from one pool, not a `Vec`: growing `Vec`s spent
//!   time copying on reallocation and faulting in fresh pages, and left up to half their
//!   capacity unused;
//! - freed chunks are reused last-in first-out, so the chunk just read (still in cache) is the
//!   next one written.
//!
//! Memory is the elements in chunks plus at most one partly filled chunk per bucket (4 MiB
//! for the default window); while index 0 is produced, the initial list is released as its
//! elements move into chunks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Element;

/// How many upcoming indices have a bucket. 4096 keeps the far heap nearly idle for the first
/// few thousand symbols (d ≈ 1000–3000); every bucket may hold one partly filled chunk.
pub const DEFAULT_WINDOW: usize = 4096;

/// Elements per chunk (1 KiB).
const CHUNK: usize = 32;

/// The end of a chunk list.
const NONE: u32 = u32::MAX;

/// A singly linked list of chunks: the elements due at one index.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// The first chunk, or [`NONE`] when the bucket is empty.
    head: u32,
    /// The chunk new elements go into (meaningless when `head` is [`NONE`]).
    tail: u32,
    /// How many elements the tail chunk holds (every other chunk is full).
    tail_len: usize,
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        head: NONE,
        tail: NONE,
        tail_len: 0,
    };
}

/// Elements keyed by the next index each is due at.
#[derive(Debug)]
pub struct Schedule {
    /// The index [`Schedule::drain_current`] serves next.
    current: u64,
    /// Every element, all due at index 0, until index 0 has been served.
    initial: Vec<Element>,
    /// The chunk pool.
    chunks: Vec<[Element; CHUNK]>,
    /// `links[c]` is the chunk after `c` in its bucket, or [`NONE`].
    links: Vec<u32>,
    /// Chunks not in any bucket, most recently freed last.
    free: Vec<u32>,
    /// `buckets[i % window]` holds the elements due at `i`, for `current <= i < current + window`.
    buckets: Box<[Bucket]>,
    /// Elements due at `current + window` or later, earliest first.
    far: BinaryHeap<Reverse<(u64, Element)>>,
}

impl Schedule {
    /// A schedule in which all `elements` are due at index 0 (they all map there).
    ///
    /// # Panics
    ///
    /// If `window` is 0.
    pub fn new(elements: Vec<Element>, window: usize) -> Self {
        assert!(window > 0, "schedule window must be positive");
        // Enough chunks never to grow the pool: full chunks for every element, one partial
        // chunk per bucket and the one being read. Reserved, not touched, until used.
        let pool_size = elements.len().div_ceil(CHUNK) + window + 1;
        Self {
            current: 0,
            initial: elements,
            chunks: Vec::with_capacity(pool_size),
            links: Vec::with_capacity(pool_size),
            free: Vec::new(),
            buckets: vec![Bucket::EMPTY; window].into_boxed_slice(),
            far: BinaryHeap::new(),
        }
    }

    /// The index [`Schedule::drain_current`] serves next.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// Hands every element due at the current index to `visit`, which returns the next index
    /// the element is due at (after the current one); then moves on to the next index.
    pub fn drain_current(&mut self, mut visit: impl FnMut(&Element) -> u64) {
        if self.current == 0 {
            let mut initial = std::mem::take(&mut self.initial);
            while let Some(element) = initial.pop() {
                let next = visit(&element);
                self.insert(element, next);
                // Give back the list's memory as its elements move into chunks: the peak is
                // then about 1.25 copies of the set instead of 2. (Shrinking a large block
                // unmaps its tail; it does not copy.)
                if initial.len() < initial.capacity() / 4 * 3 {
                    initial.shrink_to_fit();
                }
            }
        }
        let slot = self.slot(self.current);
        let bucket = std::mem::replace(&mut self.buckets[slot], Bucket::EMPTY);
        let mut chunk = bucket.head;
        while chunk != NONE {
            let next_chunk = self.links[chunk as usize];
            let len = if next_chunk == NONE {
                bucket.tail_len
            } else {
                CHUNK
            };
            for position in 0..len {
                let element = self.chunks[chunk as usize][position];
                let next = visit(&element);
                self.insert(element, next);
            }
            self.free.push(chunk);
            chunk = next_chunk;
        }
        self.advance();
    }

    /// Files `element` under `index`, which must be after the current index.
    #[inline]
    fn insert(&mut self, element: Element, index: u64) {
        debug_assert!(index > self.current, "an element is rescheduled forward");
        if index - self.current < self.buckets.len() as u64 {
            let slot = self.slot(index);
            self.push(slot, element);
        } else {
            self.far.push(Reverse((index, element)));
        }
    }

    /// Appends `element` to the bucket in `slot`.
    #[inline]
    fn push(&mut self, slot: usize, element: Element) {
        let bucket = self.buckets[slot];
        if bucket.head != NONE && bucket.tail_len < CHUNK {
            self.chunks[bucket.tail as usize][bucket.tail_len] = element;
            self.buckets[slot].tail_len += 1;
            return;
        }
        let chunk = self.allocate_chunk();
        self.chunks[chunk as usize][0] = element;
        let bucket = &mut self.buckets[slot];
        if bucket.head == NONE {
            bucket.head = chunk;
        } else {
            self.links[bucket.tail as usize] = chunk;
        }
        bucket.tail = chunk;
        bucket.tail_len = 1;
    }

    /// A chunk with no successor, from the free list if possible.
    fn allocate_chunk(&mut self) -> u32 {
        let chunk = match self.free.pop() {
            Some(chunk) => chunk,
            None => {
                let chunk = u32::try_from(self.chunks.len()).expect("fewer than 2³² chunks");
                self.chunks.push([[0; 32]; CHUNK]);
                self.links.push(NONE);
                chunk
            }
        };
        self.links[chunk as usize] = NONE;
        chunk
    }

    /// Moves on to the next index, pulling in the far elements that now fall inside the window.
    fn advance(&mut self) {
        self.current += 1;
        let window_end = self.current.saturating_add(self.buckets.len() as u64);
        while self
            .far
            .peek()
            .is_some_and(|Reverse((index, _))| *index < window_end)
        {
            let Some(Reverse((index, element))) = self.far.pop() else {
                break;
            };
            let slot = self.slot(index);
            self.push(slot, element);
        }
    }

    fn slot(&self, index: u64) -> usize {
        (index % self.buckets.len() as u64) as usize
    }
}
