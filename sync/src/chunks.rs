//! What the changes of a sync message expand to, measured before automerge reads them.
//!
//! A sync message carries automerge chunks: plain change chunks, DEFLATE-compressed change chunks,
//! whole documents and bundles whose columns may each be DEFLATE-compressed. Two things in them
//! expand without bound, and automerge trusts both:
//! - DEFLATE: a 1 MiB message of compressed zeros inflates to a gigabyte, and automerge needs about
//!   three times the inflated size while applying it;
//! - run-length encoding: every op column is run-length encoded, so a 113-byte change can hold four
//!   million list insertions (13 s and 1.8 GB to apply here), or 2^60 of them.
//!
//! So this module walks the chunk headers and column tables (automerge's storage format: magic,
//! checksum, type, LEB128 length, then per type a fixed sequence of tables), inflates compressed
//! parts with a budget, sums each column's runs without expanding them, and refuses the message
//! before automerge sees it. Nothing it allocates is larger than the budget.

use std::borrow::Cow;
use std::io::Read;

use crate::schema::{MAX_INFLATED_CHUNK_BYTES, MAX_INFLATED_MESSAGE_BYTES, MAX_ROWS_PER_MESSAGE};

/// Every automerge chunk starts with these bytes.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const HASH_BYTES: usize = 32;

/// Why a message's chunks were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("unreadable change data: {0}")]
    Unreadable(&'static str),
    #[error("a chunk of the message inflates to more than {limit} bytes, the limit per chunk")]
    ChunkTooLarge { limit: usize },
    #[error("the message's changes inflate to more than {limit} bytes, the limit per message")]
    MessageTooLarge { limit: usize },
    #[error("the message's changes expand to more than {limit} operations, the limit per message")]
    TooManyRows { limit: u64 },
}

/// How far one message may expand.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Inflated bytes of one chunk.
    pub chunk_bytes: usize,
    /// Inflated bytes of all chunks.
    pub message_bytes: usize,
    /// Rows (operations, changes, predecessors…) of the longest column, summed over the chunks.
    pub message_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            chunk_bytes: MAX_INFLATED_CHUNK_BYTES,
            message_bytes: MAX_INFLATED_MESSAGE_BYTES,
            message_rows: MAX_ROWS_PER_MESSAGE,
        }
    }
}

/// What a message's chunks expand to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Inflated bytes (chunk data, headers not counted).
    pub bytes: usize,
    /// The longest column's rows, summed over the chunks: at least the number of operations.
    pub rows: u64,
}

/// Measures `chunks` (the concatenated change data of one sync message), refusing it at the first
/// limit it breaks.
pub fn measure(chunks: &[u8], limits: Limits) -> Result<Expansion, ChunkError> {
    let mut input = Input(chunks);
    let mut total = Expansion::default();
    while !input.0.is_empty() {
        if input.take(MAGIC.len())? != MAGIC {
            return Err(ChunkError::Unreadable("a chunk does not start with automerge's magic bytes"));
        }
        input.take(4)?; // checksum: automerge verifies it
        let chunk_type = input.take(1)?[0];
        let len = input.len_prefix()?;
        let data = input.take(len)?;
        let left = limits.message_bytes - total.bytes;
        let budget = Budget { bytes: limits.chunk_bytes.min(left) };
        let measured = match chunk_type {
            0 => budget.columned(data, Layout::Document),
            1 => budget.change(data),
            2 => budget.inflate(data).and_then(|inflated| budget.change(&inflated)),
            3 => budget.columned(data, Layout::Bundle),
            _ => Err(ChunkError::Unreadable("unknown chunk type")),
        };
        // Past the budget is past the message's limit when less than a chunk's worth was left.
        let chunk = match measured {
            Err(ChunkError::ChunkTooLarge { .. }) if left < limits.chunk_bytes => {
                return Err(ChunkError::MessageTooLarge { limit: limits.message_bytes });
            }
            other => other?,
        };
        total.bytes += chunk.bytes;
        total.rows = total.rows.saturating_add(chunk.rows);
        if total.rows > limits.message_rows {
            return Err(ChunkError::TooManyRows { limit: limits.message_rows });
        }
    }
    Ok(total)
}

/// The order of the tables in a chunk whose columns may be compressed.
#[derive(Clone, Copy)]
enum Layout {
    /// actors, heads, change columns, op columns, then their data, then head indices.
    Document,
    /// dependencies, actors, change columns and their data, op columns and their data.
    Bundle,
}

/// The bytes one chunk may inflate to.
#[derive(Clone, Copy)]
struct Budget {
    bytes: usize,
}

impl Budget {
    fn exceeded(self) -> ChunkError {
        ChunkError::ChunkTooLarge { limit: self.bytes }
    }

    /// A change chunk's data: its header fields, then one table of op columns, never compressed.
    fn change(self, data: &[u8]) -> Result<Expansion, ChunkError> {
        let mut input = Input(data);
        input.hashes()?; // dependencies
        input.bytes()?; // actor
        input.uleb()?; // seq
        input.uleb()?; // start op
        input.uleb()?; // time (signed, same length rules)
        input.bytes()?; // message
        input.actors()?; // other actors
        let columns = input.columns()?;
        let mut rows = 0;
        for &(spec, len) in &columns {
            if spec.deflated() {
                return Err(ChunkError::Unreadable("a change chunk has compressed columns"));
            }
            rows = rows.max(spec.rows(input.take(len)?)?);
        }
        if data.len() > self.bytes {
            return Err(self.exceeded());
        }
        Ok(Expansion { bytes: data.len(), rows })
    }

    /// A document or bundle chunk's data: tables of change and op columns, each maybe compressed.
    fn columned(self, data: &[u8], layout: Layout) -> Result<Expansion, ChunkError> {
        let mut input = Input(data);
        // The tables, and whatever follows the columns (a document's head indices), count as they
        // are: `data.len()` less the compressed columns, plus what those inflate to.
        let mut measured = Expansion { bytes: data.len(), rows: 0 };
        let mut count = |input: &mut Input<'_>, columns: &[(Spec, usize)]| -> Result<u64, ChunkError> {
            let mut rows = 0;
            for &(spec, len) in columns {
                let stored = input.take(len)?;
                let column = if spec.deflated() {
                    let inflated = self.inflate(stored)?;
                    measured.bytes = (measured.bytes - len).saturating_add(inflated.len());
                    if measured.bytes > self.bytes {
                        return Err(self.exceeded());
                    }
                    Cow::Owned(inflated)
                } else {
                    Cow::Borrowed(stored)
                };
                rows = rows.max(spec.rows(&column)?);
            }
            Ok(rows)
        };
        let (change_rows, op_rows) = match layout {
            Layout::Document => {
                input.bytes_list()?; // actors
                input.hashes()?; // heads
                let changes = input.columns()?;
                let ops = input.columns()?;
                (count(&mut input, &changes)?, count(&mut input, &ops)?)
            }
            Layout::Bundle => {
                input.hashes()?; // dependencies
                input.bytes_list()?; // actors
                let changes = input.columns()?;
                let change_rows = count(&mut input, &changes)?;
                let ops = input.columns()?;
                (change_rows, count(&mut input, &ops)?)
            }
        };
        if measured.bytes > self.bytes {
            return Err(self.exceeded());
        }
        measured.rows = change_rows.max(op_rows);
        Ok(measured)
    }

    /// `compressed`, inflated, if it fits the budget.
    fn inflate(self, compressed: &[u8]) -> Result<Vec<u8>, ChunkError> {
        let limit = u64::try_from(self.bytes).unwrap_or(u64::MAX).saturating_add(1);
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(compressed)
            .take(limit)
            .read_to_end(&mut inflated)
            .map_err(|_| ChunkError::Unreadable("a compressed part is not valid DEFLATE data"))?;
        if inflated.len() > self.bytes {
            return Err(self.exceeded());
        }
        Ok(inflated)
    }
}

/// A column specification: id, DEFLATE bit and encoding, as automerge packs them in a LEB128.
#[derive(Debug, Clone, Copy)]
struct Spec(u64);

impl Spec {
    fn deflated(self) -> bool {
        self.0 & 0b1000 != 0
    }

    /// How many rows the column's data encodes, counted from its runs without expanding them.
    fn rows(self, data: &[u8]) -> Result<u64, ChunkError> {
        let mut input = Input(data);
        let mut rows = 0_u64;
        match self.0 & 0b111 {
            // Boolean: alternating run lengths of false and true.
            4 => {
                while !input.0.is_empty() {
                    rows = rows.saturating_add(input.uleb()?);
                }
            }
            // Raw values: their rows are the value-metadata column's.
            7 => {}
            // The rest are run-length encoded: a signed count, then one value repeated (> 0),
            // that many literal values (< 0), or a count of nulls (0).
            encoding => {
                let value = |input: &mut Input<'_>| match encoding {
                    5 => input.bytes().map(|_| ()), // strings
                    _ => input.uleb().map(|_| ()),  // LEB128 numbers, signed or not
                };
                while !input.0.is_empty() {
                    match input.sleb()? {
                        0 => rows = rows.saturating_add(input.uleb()?),
                        n if n > 0 => {
                            value(&mut input)?;
                            rows = rows.saturating_add(n as u64);
                        }
                        n => {
                            for _ in 0..n.unsigned_abs() {
                                value(&mut input)?;
                            }
                            rows = rows.saturating_add(n.unsigned_abs());
                        }
                    }
                }
            }
        }
        Ok(rows)
    }
}

/// A cursor over hostile bytes: every read is checked, nothing is allocated.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ChunkError> {
        if n > self.0.len() {
            return Err(ChunkError::Unreadable("a chunk is cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uleb(&mut self) -> Result<u64, ChunkError> {
        let mut value = 0_u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::Unreadable("a LEB128 number is too long"))
    }

    fn sleb(&mut self) -> Result<i64, ChunkError> {
        let mut value = 0_i64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= i64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if shift < 57 && byte & 0x40 != 0 {
                    value |= -1_i64 << (shift + 7);
                }
                return Ok(value);
            }
        }
        Err(ChunkError::Unreadable("a LEB128 number is too long"))
    }

    /// A length that must fit in what is left of the input.
    fn len_prefix(&mut self) -> Result<usize, ChunkError> {
        let n = self.uleb()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.0.len())
            .ok_or(ChunkError::Unreadable("a length runs past the end of the data"))
    }

    /// Length-prefixed bytes (an actor id, a string).
    fn bytes(&mut self) -> Result<&'a [u8], ChunkError> {
        let len = self.len_prefix()?;
        self.take(len)
    }

    /// A count, then that many length-prefixed byte strings.
    fn bytes_list(&mut self) -> Result<(), ChunkError> {
        for _ in 0..self.len_prefix()? {
            self.bytes()?;
        }
        Ok(())
    }

    fn actors(&mut self) -> Result<(), ChunkError> {
        self.bytes_list()
    }

    fn hashes(&mut self) -> Result<(), ChunkError> {
        let n = self.len_prefix()?;
        self.take(n.checked_mul(HASH_BYTES).ok_or(ChunkError::Unreadable("too many hashes"))?)?;
        Ok(())
    }

    /// A column table: (specification, data length) pairs.
    fn columns(&mut self) -> Result<Vec<(Spec, usize)>, ChunkError> {
        let n = self.len_prefix()?;
        let mut columns = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let spec = Spec(self.uleb()?);
            let len = usize::try_from(self.uleb()?)
                .map_err(|_| ChunkError::Unreadable("a column length does not fit"))?;
            columns.push((spec, len));
        }
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use automerge::{AutoCommit, ROOT, transaction::Transactable};
    use flate2::{Compression, write::DeflateEncoder};

    use super::*;

    fn inflated_size(chunks: &[u8]) -> Result<usize, ChunkError> {
        measure(chunks, Limits::default()).map(|e| e.bytes)
    }

    fn inflated_size_within(
        chunks: &[u8],
        chunk_bytes: usize,
        message_bytes: usize,
    ) -> Result<usize, ChunkError> {
        measure(chunks, Limits { chunk_bytes, message_bytes, message_rows: u64::MAX }).map(|e| e.bytes)
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn uleb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn chunk(chunk_type: u8, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0; 4]);
        out.push(chunk_type);
        uleb(data.len(), &mut out);
        out.extend(data);
        out
    }

    /// A document chunk with no actors or heads, no change columns and one op column.
    fn document_with_column(spec: usize, column: &[u8]) -> Vec<u8> {
        let mut data = vec![0, 0, 0, 1];
        uleb(spec, &mut data);
        uleb(column.len(), &mut data);
        data.extend(column);
        chunk(0, &data)
    }

    /// A document whose columns automerge compresses (long strings repeat well).
    fn real_document() -> AutoCommit {
        let mut doc = AutoCommit::new();
        for i in 0..200 {
            doc.put(ROOT, format!("key-{i}"), "the same long value ".repeat(20)).unwrap();
        }
        doc
    }

    #[test]
    fn a_real_document_measures_at_least_its_saved_size() {
        let saved = real_document().save();
        let size = inflated_size(&saved).unwrap();
        assert!(size > saved.len(), "{size} vs {}", saved.len());
    }

    #[test]
    fn real_change_chunks_compressed_or_not_are_measured() {
        let mut doc = real_document();
        let mut plain = Vec::new();
        let mut compressed = Vec::new();
        for mut change in doc.get_changes(&[]) {
            plain.extend(change.raw_bytes());
            compressed.extend(change.bytes().iter());
        }
        assert!(compressed.len() < plain.len(), "automerge compresses a large change");
        // Headers are not counted: what is measured is each chunk's data, as automerge holds it.
        let measured = inflated_size(&plain).unwrap();
        assert!(measured < plain.len() && measured > plain.len() - 64, "{measured} vs {}", plain.len());
        assert_eq!(inflated_size(&compressed).unwrap(), measured);
    }

    #[test]
    fn a_compressed_change_of_zeros_past_the_chunk_limit_is_refused() {
        let bomb = chunk(2, &deflate(&vec![0; 1 << 20]));
        assert!(bomb.len() < 4096);
        assert_eq!(
            inflated_size_within(&bomb, 1 << 19, 1 << 21),
            Err(ChunkError::ChunkTooLarge { limit: 1 << 19 })
        );
        assert_eq!(inflated_size_within(&bomb, 1 << 20, 1 << 21), Ok(1 << 20));
    }

    #[test]
    fn a_document_with_a_compressed_column_of_zeros_is_refused() {
        // Column 1 << 4 of type 2 (integer) with the DEFLATE bit.
        let bomb = document_with_column((1 << 4) | 2 | 0b1000, &deflate(&vec![0; 1 << 20]));
        assert_eq!(
            inflated_size_within(&bomb, 1 << 19, 1 << 21),
            Err(ChunkError::ChunkTooLarge { limit: 1 << 19 })
        );
        let plain = document_with_column((1 << 4) | 2, &[7; 100]);
        assert_eq!(inflated_size(&plain).unwrap(), plain.len() - 10, "all but the 10-byte chunk header");
    }

    #[test]
    fn chunks_each_under_the_limit_are_refused_together_past_the_message_limit() {
        let one = chunk(2, &deflate(&vec![0; 1 << 18]));
        let four = one.repeat(4);
        assert_eq!(inflated_size_within(&four, 1 << 19, 1 << 20), Ok(1 << 20));
        let five = one.repeat(5);
        assert_eq!(
            inflated_size_within(&five, 1 << 19, 1 << 20),
            Err(ChunkError::MessageTooLarge { limit: 1 << 20 })
        );
    }

    /// One change inserting `n` nulls into a list: run-length encoding makes it a hundred bytes or so.
    fn list_insertions(n: usize) -> Vec<u8> {
        let mut doc = AutoCommit::new();
        let list = doc.put_object(ROOT, "l", automerge::ObjType::List).unwrap();
        for i in 0..n {
            doc.insert(&list, i, automerge::ScalarValue::Null).unwrap();
        }
        doc.commit();
        doc.get_changes(&[])[0].raw_bytes().to_vec()
    }

    #[test]
    fn a_tiny_change_that_runs_to_many_operations_is_counted_without_expanding_it() {
        let change = list_insertions(2_000);
        assert!(change.len() < 200, "{} bytes", change.len());
        let limits = |message_rows| Limits { message_rows, ..Limits::default() };
        let measured = measure(&change, limits(u64::MAX)).unwrap();
        assert!((2_000..2_010).contains(&measured.rows), "{measured:?}");
        assert_eq!(measure(&change, limits(1_000)), Err(ChunkError::TooManyRows { limit: 1_000 }));
        // The same operations in a whole document, whose columns automerge may compress.
        let mut doc = AutoCommit::new();
        doc.load_incremental(&change).unwrap();
        assert_eq!(measure(&doc.save(), limits(1_000)), Err(ChunkError::TooManyRows { limit: 1_000 }));
    }

    #[test]
    fn run_lengths_claiming_trillions_of_rows_are_refused_in_constant_time() {
        // A change with no dependencies, actor 0x01, seq 1, start op 1, time 0, no message, no
        // other actors, and one integer column (id 4): a run of 2^40 copies of the value 1.
        let mut data = vec![0, 1, 1, 1, 1, 0, 0, 0, 1, (4 << 4) | 2];
        let mut column = Vec::new();
        // 2^40 as a signed LEB128: bit 6 of the last byte clear, so the count is positive.
        let mut n: u64 = 1 << 40;
        while n >= 0x40 {
            column.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        column.push(n as u8);
        column.push(1);
        uleb(column.len(), &mut data);
        data.extend(column);
        let bomb = chunk(1, &data);
        assert!(bomb.len() < 32);
        assert_eq!(
            measure(&bomb, Limits::default()),
            Err(ChunkError::TooManyRows { limit: MAX_ROWS_PER_MESSAGE })
        );
    }

    #[test]
    fn garbage_truncated_and_lying_chunks_are_unreadable() {
        let good = chunk(2, &deflate(b"hello"));
        for bad in [
            b"garbage".to_vec(),
            good[..good.len() - 1].to_vec(),
            chunk(9, b"x"),
            chunk(2, b"\xff\xff not deflate"),
            // A column table claiming more data than there is.
            {
                let mut data = vec![0, 0, 0, 1, 0x28];
                uleb(1 << 40, &mut data);
                chunk(0, &data)
            },
            // Heads claiming 2^60 hashes.
            chunk(0, &[0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]),
        ] {
            assert!(matches!(inflated_size(&bad), Err(ChunkError::Unreadable(_))), "{bad:?}");
        }
    }
}
