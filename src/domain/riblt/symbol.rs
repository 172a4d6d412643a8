//! Coded symbols: what crosses the wire, and their compact byte form.
//!
//! The byte form is the 32-byte sum, the checksum as 8 little-endian bytes, then the count as a
//! zigzag LEB128 varint (1 byte for counts up to 63, 3 bytes up to about 10⁶): 41–50 bytes.
//! Exactly one encoding is accepted for each symbol, so bytes can be compared and hashed.

use super::Element;
use super::mapping::checksum;

/// The longest byte form: 32 + 8 + a 10-byte varint.
pub const MAX_ENCODED_LEN: usize = 32 + 8 + 10;

/// The shortest byte form: 32 + 8 + a 1-byte varint.
pub const MIN_ENCODED_LEN: usize = 32 + 8 + 1;

/// One cell of a rateless IBLT: the XOR of the elements mapped to it, the XOR of their
/// checksums, and how many there are.
///
/// Symbols are linear: subtracting B's symbol `i` from A's (XOR the sums and checksums, subtract
/// the counts) gives the symbol of the set difference, in which elements only in A count +1 and
/// elements only in B count −1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CodedSymbol {
    /// XOR of the elements mapped to this symbol.
    pub sum: Element,
    /// XOR of the [`checksum`]s of those elements; tells one element from a mixture.
    pub checksum: u64,
    /// Number of elements mapped here (signed: a difference of two symbols may be negative).
    pub count: i64,
}

/// Why bytes are not a coded symbol. Never panics, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolBytesError {
    /// Fewer bytes than the sum, the checksum and a one-byte count.
    #[error("coded symbol needs at least {MIN_ENCODED_LEN} bytes, got {got}")]
    TooShort {
        /// How many bytes there were.
        got: usize,
    },
    /// The count's varint ends (high bit set) at the end of the input.
    #[error("coded symbol count is truncated")]
    CountTruncated,
    /// The count's varint does not fit in 64 bits.
    #[error("coded symbol count overflows 64 bits")]
    CountOverflow,
    /// The count's varint has superfluous trailing zero groups.
    #[error("coded symbol count is not minimally encoded")]
    CountNotMinimal,
    /// Bytes after the count.
    #[error("coded symbol has {extra} trailing bytes")]
    TrailingBytes {
        /// How many bytes followed the symbol.
        extra: usize,
    },
}

impl CodedSymbol {
    /// The symbol no element maps to.
    pub const EMPTY: CodedSymbol = CodedSymbol {
        sum: [0; 32],
        checksum: 0,
        count: 0,
    };

    /// Whether no (net) element is left in this symbol.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.checksum == 0 && self.sum == [0; 32]
    }

    /// If this symbol holds exactly one element (count ±1 and a matching checksum): the sign
    /// of its count.
    pub fn pure_direction(&self) -> Option<i64> {
        if (self.count == 1 || self.count == -1) && self.checksum == checksum(&self.sum) {
            Some(self.count)
        } else {
            None
        }
    }

    /// Adds (`direction` = +1) or removes (−1) an element whose checksum is `element_checksum`.
    /// Counts wrap rather than panic: a hostile stream may carry any count.
    pub(crate) fn apply(&mut self, element: &Element, element_checksum: u64, direction: i64) {
        xor_into(&mut self.sum, element);
        self.checksum ^= element_checksum;
        self.count = self.count.wrapping_add(direction);
    }

    /// `self − other`: the symbol of the difference of the two sets.
    pub fn subtract(&self, other: &CodedSymbol) -> CodedSymbol {
        let mut sum = self.sum;
        xor_into(&mut sum, &other.sum);
        CodedSymbol {
            sum,
            checksum: self.checksum ^ other.checksum,
            count: self.count.wrapping_sub(other.count),
        }
    }

    /// The byte form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_ENCODED_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Appends the byte form to `out`, for packing many symbols into one message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sum);
        out.extend_from_slice(&self.checksum.to_le_bytes());
        let mut zigzag = ((self.count << 1) ^ (self.count >> 63)) as u64;
        while zigzag >= 0x80 {
            out.push((zigzag as u8) | 0x80);
            zigzag >>= 7;
        }
        out.push(zigzag as u8);
    }

    /// Parses exactly one symbol; trailing bytes are an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<CodedSymbol, SymbolBytesError> {
        let (symbol, rest) = Self::decode_prefix(bytes)?;
        if !rest.is_empty() {
            return Err(SymbolBytesError::TrailingBytes { extra: rest.len() });
        }
        Ok(symbol)
    }

    /// Parses one symbol from the front of `bytes` and returns it with the bytes after it.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(CodedSymbol, &[u8]), SymbolBytesError> {
        if bytes.len() < MIN_ENCODED_LEN {
            return Err(SymbolBytesError::TooShort { got: bytes.len() });
        }
        let (sum_bytes, rest) = bytes.split_at(32);
        let (checksum_bytes, rest) = rest.split_at(8);
        let mut sum = [0u8; 32];
        sum.copy_from_slice(sum_bytes);
        let mut checksum_array = [0u8; 8];
        checksum_array.copy_from_slice(checksum_bytes);

        let mut zigzag: u64 = 0;
        for (position, &byte) in rest.iter().enumerate() {
            let group = u64::from(byte & 0x7f);
            // The tenth byte may only carry the 64th bit.
            if position == 9 && group > 1 {
                return Err(SymbolBytesError::CountOverflow);
            }
            zigzag |= group << (7 * position);
            if byte & 0x80 == 0 {
                if position > 0 && byte == 0 {
                    return Err(SymbolBytesError::CountNotMinimal);
                }
                let count = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
                let symbol = CodedSymbol {
                    sum,
                    checksum: u64::from_le_bytes(checksum_array),
                    count,
                };
                return Ok((symbol, &rest[position + 1..]));
            }
            if position == 9 {
                return Err(SymbolBytesError::CountOverflow);
            }
        }
        Err(SymbolBytesError::CountTruncated)
    }
}

/// `target ^= source`, byte by byte (the compiler turns this into vector XORs).
pub(crate) fn xor_into(target: &mut Element, source: &Element) {
    for (t, s) in target.iter_mut().zip(source) {
        *t ^= s;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn symbol(count: i64) -> CodedSymbol {
        CodedSymbol {
            sum: [0xab; 32],
            checksum: 0x0102_0304_0506_0708,
            count,
        }
    }

    #[test]
    fn small_counts_take_one_byte() {
        assert_eq!(symbol(0).to_bytes().len(), MIN_ENCODED_LEN);
        assert_eq!(symbol(63).to_bytes().len(), MIN_ENCODED_LEN);
        assert_eq!(symbol(-64).to_bytes().len(), MIN_ENCODED_LEN);
        assert_eq!(symbol(1_000_000).to_bytes().len(), 32 + 8 + 3);
        assert_eq!(symbol(i64::MIN).to_bytes().len(), MAX_ENCODED_LEN);
    }

    #[test]
    fn extreme_counts_round_trip() {
        for count in [0, 1, -1, 63, 64, -64, -65, i64::MAX, i64::MIN] {
            let original = symbol(count);
            assert_eq!(CodedSymbol::from_bytes(&original.to_bytes()), Ok(original));
        }
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = symbol(1_000_000).to_bytes();
        for cut in 0..bytes.len() {
            assert!(
                CodedSymbol::from_bytes(&bytes[..cut]).is_err(),
                "accepted {cut} of {} bytes",
                bytes.len()
            );
        }
    }

    #[test]
    fn rejects_short_input_naming_its_length() {
        assert_eq!(
            CodedSymbol::from_bytes(&[0; 40]),
            Err(SymbolBytesError::TooShort { got: 40 })
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = symbol(5).to_bytes();
        bytes.push(0);
        assert_eq!(
            CodedSymbol::from_bytes(&bytes),
            Err(SymbolBytesError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn rejects_truncated_varint() {
        let mut bytes = symbol(0).to_bytes();
        *bytes.last_mut().expect("non-empty") = 0x80;
        assert_eq!(
            CodedSymbol::from_bytes(&bytes),
            Err(SymbolBytesError::CountTruncated)
        );
    }

    #[test]
    fn rejects_non_minimal_varint() {
        let mut bytes = symbol(0).to_bytes();
        bytes.pop();
        bytes.extend_from_slice(&[0x80, 0x00]);
        assert_eq!(
            CodedSymbol::from_bytes(&bytes),
            Err(SymbolBytesError::CountNotMinimal)
        );
    }

    #[test]
    fn rejects_varint_beyond_64_bits() {
        let mut bytes = symbol(0).to_bytes();
        bytes.pop();
        bytes.extend_from_slice(&[0xff; 9]);
        bytes.push(0x02);
        assert_eq!(
            CodedSymbol::from_bytes(&bytes),
            Err(SymbolBytesError::CountOverflow)
        );
        let mut eleven = symbol(0).to_bytes();
        eleven.pop();
        eleven.extend_from_slice(&[0x80; 10]);
        eleven.push(0x01);
        assert_eq!(
            CodedSymbol::from_bytes(&eleven),
            Err(SymbolBytesError::CountOverflow)
        );
    }

    #[test]
    fn decode_prefix_reads_packed_symbols_in_order() {
        let symbols = [symbol(3), symbol(-70_000), symbol(0)];
        let mut packed = Vec::new();
        for s in &symbols {
            s.encode_into(&mut packed);
        }
        let mut rest = packed.as_slice();
        for expected in symbols {
            let (decoded, remaining) = CodedSymbol::decode_prefix(rest).expect("valid");
            assert_eq!(decoded, expected);
            rest = remaining;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn subtract_cancels_shared_elements() {
        let shared = [1u8; 32];
        let only_a = [2u8; 32];
        let mut a = CodedSymbol::EMPTY;
        let mut b = CodedSymbol::EMPTY;
        a.apply(&shared, checksum(&shared), 1);
        a.apply(&only_a, checksum(&only_a), 1);
        b.apply(&shared, checksum(&shared), 1);
        let difference = a.subtract(&b);
        assert_eq!(difference.sum, only_a);
        assert_eq!(difference.pure_direction(), Some(1));
        assert_eq!(b.subtract(&a).pure_direction(), Some(-1));
        assert_eq!(a.pure_direction(), None, "two elements are not pure");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_symbol_round_trips(sum in any::<[u8; 32]>(), checksum in any::<u64>(), count in any::<i64>()) {
            let original = CodedSymbol { sum, checksum, count };
            let bytes = original.to_bytes();
            prop_assert!(bytes.len() >= MIN_ENCODED_LEN && bytes.len() <= MAX_ENCODED_LEN);
            prop_assert_eq!(CodedSymbol::from_bytes(&bytes), Ok(original));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(symbol) = CodedSymbol::from_bytes(&bytes) {
                // Only the canonical form is accepted.
                prop_assert_eq!(symbol.to_bytes(), bytes);
            }
        }
    }
}
