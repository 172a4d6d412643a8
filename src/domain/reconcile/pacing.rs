//! How the side that sends coded symbols paces them: small chunks first (identical sets settle
//! after the first few symbols), then chunks that grow with what was sent, so the overshoot
//! past the symbol that completed decoding stays under an eighth while the round trips stay
//! logarithmic. And when to give up on symbols: the polynomial tail of the coding, or a
//! difference as large as the sets, makes sending every element cheaper.

use crate::domain::riblt::symbol::MAX_ENCODED_LEN;

/// The largest set a caller may announce: ten times the largest county registry foreseen
/// (10⁶), so that a hostile announcement cannot size the receiver's decoding limits.
pub const MAX_SET_SIZE: u64 = 10_000_000;

/// Symbols in the first chunk.
pub const FIRST_CHUNK: usize = 16;

/// Most symbols in one chunk (≈ 200 kB), well under any gRPC message limit.
pub const MAX_CHUNK: usize = 4096;

/// Bytes of one element sent whole.
pub const ELEMENT_BYTES: usize = 32;

/// Elements per chunk when sending every element (2 MiB).
pub const ELEMENTS_PER_CHUNK: usize = 65_536;

/// The size of the next chunk after `sent` symbols.
pub fn next_chunk(sent: usize) -> usize {
    (sent / 8).clamp(FIRST_CHUNK, MAX_CHUNK)
}

/// Whether the sender should stop sending symbols and send its `set_size` elements instead:
/// when the symbols sent plus the next chunk would cost more bytes than every element does.
/// Past that point symbols cannot pay off, and the worst case stays within twice the naive
/// exchange.
pub fn fall_back_to_elements(sent: usize, next: usize, set_size: usize) -> bool {
    let symbol_bytes = (sent + next).saturating_mul(MAX_ENCODED_LEN);
    let element_bytes = set_size
        .saturating_mul(ELEMENT_BYTES)
        .max(MAX_CHUNK * MAX_ENCODED_LEN);
    symbol_bytes > element_bytes
}

/// The most symbols a receiver accepts before calling the stream hostile: more than an honest
/// sender ever sends before falling back.
pub fn symbol_limit(sender_set_size: usize) -> usize {
    let element_bytes = sender_set_size
        .saturating_mul(ELEMENT_BYTES)
        .max(MAX_CHUNK * MAX_ENCODED_LEN);
    element_bytes / crate::domain::riblt::symbol::MIN_ENCODED_LEN + 2 * MAX_CHUNK
}
