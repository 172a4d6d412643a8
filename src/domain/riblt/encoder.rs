//! The encoder: a set of elements as an endless stream of coded symbols.

use super::Element;
use super::mapping::{checksum_of_words, element_words, next_index};
use super::schedule::{DEFAULT_WINDOW, Schedule};
use super::symbol::CodedSymbol;

/// Produces coded symbols 0, 1, 2, … of a set, one at a time. Any prefix of the stream can be
/// decoded against another set; how long a prefix is needed depends only on the size of the
/// difference (on average about 1.4 symbols per differing element for large differences).
///
/// Producing symbol `i` costs time proportional to the number of elements mapped to it,
/// `n·2/(i+2)` on average: `m` symbols cost about `2·n·ln m` element visits in all.
/// Memory is the elements themselves (32 bytes each, held in the schedule's buckets) plus up
/// to 4 MiB, and about a quarter more while symbol 0 is produced (measured peak for 10⁶
/// elements: 45 MB resident, whole test process).
#[derive(Debug)]
pub struct Encoder {
    /// The set, each element filed under the next symbol index it maps to.
    schedule: Schedule,
    /// How many elements the set has.
    len: usize,
}

impl Encoder {
    /// An encoder of `elements`, which must be distinct (a set). A duplicated element is not
    /// detected: its copies cancel in the sums but not in the counts, which can make decoding
    /// against this stream never finish.
    pub fn new(elements: impl IntoIterator<Item = Element>) -> Self {
        Self::with_window(elements, DEFAULT_WINDOW)
    }

    /// As [`Encoder::new`], with a schedule window of `window` indices (tests use tiny windows
    /// to exercise the far queue).
    pub(crate) fn with_window(elements: impl IntoIterator<Item = Element>, window: usize) -> Self {
        // Collecting a `Vec` reuses its allocation rather than copying it.
        let elements: Vec<Element> = elements.into_iter().collect();
        let len = elements.len();
        Self {
            schedule: Schedule::new(elements, window),
            len,
        }
    }

    /// How many elements the set has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty (its stream is all [`CodedSymbol::EMPTY`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The index of the symbol [`Encoder::produce_next`] returns next.
    pub fn next_index(&self) -> u64 {
        self.schedule.current()
    }

    /// The next coded symbol of the stream.
    pub fn produce_next(&mut self) -> CodedSymbol {
        let index = self.schedule.current();
        // The sum is kept as words here: XOR of bytes did not vectorise in this loop.
        let mut sum = [0u64; 4];
        let mut checksum = 0u64;
        let mut count = 0i64;
        self.schedule.drain_current(|element| {
            let words = element_words(element);
            for (total, word) in sum.iter_mut().zip(words) {
                *total ^= word;
            }
            let element_checksum = checksum_of_words(&words);
            checksum ^= element_checksum;
            count += 1;
            next_index(element_checksum, index)
        });
        let mut sum_bytes = [0u8; 32];
        for (bytes, word) in sum_bytes.chunks_exact_mut(8).zip(sum) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        CodedSymbol {
            sum: sum_bytes,
            checksum,
            count,
        }
    }

    /// The next `count` coded symbols of the stream.
    pub fn produce(&mut self, count: usize) -> Vec<CodedSymbol> {
        (0..count).map(|_| self.produce_next()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::riblt::mapping::{IndexSequence, checksum};

    fn elements(count: u8) -> Vec<Element> {
        (0..count)
            .map(|k| {
                let mut element = [k; 32];
                element[31] = 0xee;
                element
            })
            .collect()
    }

    /// Symbols `0..count` straight from the definition: each element added to every index it
    /// maps to.
    fn encode_by_definition(elements: &[Element], count: usize) -> Vec<CodedSymbol> {
        let mut symbols = vec![CodedSymbol::EMPTY; count];
        for element in elements {
            let element_checksum = checksum(element);
            for index in IndexSequence::new(element_checksum) {
                let Some(symbol) = symbols.get_mut(index as usize) else {
                    break;
                };
                symbol.apply(element, element_checksum, 1);
            }
        }
        symbols
    }

    #[test]
    fn stream_matches_the_definition() {
        let set = elements(200);
        let expected = encode_by_definition(&set, 500);
        assert_eq!(Encoder::new(set).produce(500), expected);
    }

    #[test]
    fn stream_matches_the_definition_when_elements_leave_the_window() {
        let set = elements(200);
        let expected = encode_by_definition(&set, 500);
        for window in [1, 2, 7] {
            assert_eq!(Encoder::with_window(set.clone(), window).produce(500), expected);
        }
    }

    #[test]
    fn first_symbol_holds_every_element() {
        let set = elements(10);
        let first = Encoder::new(set.clone()).produce_next();
        assert_eq!(first.count, 10);
        let mut sum = [0u8; 32];
        for element in &set {
            crate::domain::riblt::symbol::xor_into(&mut sum, element);
        }
        assert_eq!(first.sum, sum);
    }

    #[test]
    fn empty_set_streams_empty_symbols() {
        let mut encoder = Encoder::new([]);
        assert!(encoder.is_empty());
        assert!(encoder.produce(5).iter().all(CodedSymbol::is_empty));
        assert_eq!(encoder.next_index(), 5);
    }
}
