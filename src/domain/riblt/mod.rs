//! Rateless invertible Bloom lookup tables: set reconciliation whose traffic grows with the
//! number of differences, not the size of the sets (Yang, Gilad, Alizadeh, "Practical Rateless
//! Set Reconciliation", SIGCOMM 2024).
//!
//! Elements are 32-byte keyed digests (HMAC-SHA256 under the agreement's secret, computed by the
//! caller), so no plain identifier crosses in a coded symbol. The side that sends runs an
//! [`Encoder`] over its set and streams [`CodedSymbol`]s 0, 1, 2, …; the side that receives
//! feeds them to a [`Decoder`] built over its own set until [`Decoder::is_decoded`], then tells
//! the sender to stop. On average about 1.4 symbols per differing element suffice for large
//! differences and 1.6–1.75 for small ones (measured for d = 2–30), whatever the set sizes;
//! with identical sets or one difference the first symbol settles it.
//!
//! The cost of one run varies, with a polynomial tail: the last two unrecovered elements share
//! coded symbol `i` with probability about `1 − 4/i`, so needing more than `k` symbols has
//! probability of order `k⁻⁴` (20,000 runs with d = 30 took 47 symbols on average and at most
//! 317). A protocol that caps the stream should set the cap well above 2·d and treat reaching
//! it as "fall back", not as an error.
//!
//! ```
//! use hancha::domain::riblt::{CodedSymbol, Decoder, Encoder};
//!
//! let shared = [[1u8; 32], [2; 32], [3; 32]];
//! let mut remote = Encoder::new(shared.iter().copied().chain([[9u8; 32]]));
//! let mut local = Decoder::new(shared.iter().copied().chain([[7u8; 32]]));
//! while !local.is_decoded() {
//!     // Across the wire: `to_bytes` on one side, `from_bytes` on the other.
//!     let bytes = remote.produce_next().to_bytes();
//!     local.add_remote(CodedSymbol::from_bytes(&bytes)?)?;
//! }
//! assert_eq!(local.remote_only(), &[[9u8; 32]]);
//! assert_eq!(local.local_only(), &[[7u8; 32]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//!
//! Every element is added (XOR of the element, XOR of its [`checksum`], count + 1) to an
//! infinite, increasing sequence of coded-symbol indices: always index 0, then index `i` with
//! probability `2/(i+2)` (see [`mapping`] for the derivation and the closed-form
//! jump from one index to the next). Symbols are linear, so remote − local is the symbol of the
//! symmetric difference; a difference symbol with count ±1 and a matching checksum holds one
//! element, which is removed from every other symbol it maps to (including ones that have not
//! arrived yet), exposing more such symbols.
//!
//! # Layout
//!
//! - [`symbol`]: [`CodedSymbol`] and its byte form.
//! - [`mapping`]: the element → indices mapping and the checksum.
//! - `schedule`: the bucketed queue that makes encoding touch only the elements of
//!   the symbol being produced.
//! - [`encoder`] and [`decoder`]: the two ends.
//! - [`measure`](mod@measure): a timed reconciliation of random sets, for benchmarks.

pub mod decoder;
pub mod encoder;
pub mod mapping;
pub mod measure;
mod schedule;
pub mod symbol;

#[cfg(test)]
mod tests;

pub use decoder::{Decoder, InconsistentStream};
pub use encoder::Encoder;
pub use mapping::{IndexSequence, checksum};
pub use measure::{Measurement, measure};
pub use symbol::{CodedSymbol, SymbolBytesError};

/// A set element: a 32-byte keyed digest (HMAC-SHA256), uniformly random to anyone without the
/// key. The coding relies on that uniformity (see [`checksum`]).
pub type Element = [u8; 32];
