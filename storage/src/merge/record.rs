//! A user's record: the cells of every scalar definition (features, or attributes)
//! in one value, keyed by definition id, so that an event writes one operand per
//! column family however many features it feeds.
//!
//! Layout: `[RECORD tag][n: u16][n × (id: u32, tag: u8, payload)]`, ids ascending.
//! A tag with the `RESET` bit set means "forget everything older for this id"
//! (written when a definition is dropped, so compaction purges its bytes); a reset
//! tag of `FORGET` alone carries no cell.
//!
//! Combining an older entry with a newer one: a newer reset discards the older
//! cell and stays a reset; otherwise the cells merge and the older reset flag is
//! kept. That is associative, so partial merges may group operands freely.

use crate::codec::{DecodeError, Reader, Writer, derr};
use crate::merge::cell::Cell;
use crate::merge::tags;

const RESET: u8 = 0x80;
const FORGET: u8 = 0xF0;

/// One definition's entry in a record. The id is held inside rather than
/// beside it in a pair, so that the flag shares the id's word: 64 bytes an
/// entry rather than 72, and the row table holds a few a user (a million
/// users of six cells, 48 MB less; a segment scan of them about 15% faster,
/// `cargo bench --bench query`). Cells made smaller too (56-byte entries)
/// made the `scan` bench's settled count a quarter slower, and were not kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The definition's id.
    pub id: u32,
    /// Discard any older state of this id.
    pub reset: bool,
    /// The state, if any.
    pub cell: Option<Cell>,
}

/// Decoded record: entries sorted by definition id, each id once. A sorted vector
/// rather than a map: records are small, and merges are a merge-join of two lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    entries: Vec<Entry>,
}

impl Record {
    /// A record with one cell per id (of cells with the same id, the last).
    pub fn from_cells(cells: impl IntoIterator<Item = (u32, Cell)>) -> Record {
        let cells = cells.into_iter();
        let mut r = Record::with_capacity(cells.size_hint().0);
        for (id, cell) in cells {
            r.put(id, cell);
        }
        r
    }

    /// An empty record with room for `n` cells.
    pub fn with_capacity(n: usize) -> Record {
        Record {
            entries: Vec::with_capacity(n),
        }
    }

    /// Sets `id`'s cell to `cell`, whatever it held.
    pub fn put(&mut self, id: u32, cell: Cell) {
        let entry = Entry {
            id,
            reset: false,
            cell: Some(cell),
        };
        match self.slot(id) {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }

    /// Folds `cell`, newer, into `id`'s cell: [`Record::merge`] of a record
    /// holding it alone.
    pub fn merge_cell(&mut self, id: u32, cell: Cell) -> Result<(), DecodeError> {
        let entry = Entry {
            id,
            reset: false,
            cell: Some(cell),
        };
        match self.slot(id) {
            Ok(i) => combine_into(&mut self.entries[i], entry),
            Err(i) => {
                self.entries.insert(i, entry);
                Ok(())
            }
        }
    }

    /// The cell of `id`, to change in place; `None` when there is none.
    pub(crate) fn cell_mut(&mut self, id: u32) -> Option<&mut Cell> {
        let i = self.slot(id).ok()?;
        self.entries[i].cell.as_mut()
    }

    /// Where `id`'s entry is, or would go.
    fn slot(&self, id: u32) -> Result<usize, usize> {
        // Cells most often come in id order.
        match self.entries.last() {
            None => Err(0),
            Some(last) if last.id < id => Err(self.entries.len()),
            Some(_) => self.entries.binary_search_by_key(&id, |e| e.id),
        }
    }

    /// The ids with an entry, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|e| e.id)
    }

    /// An operand that forgets everything stored for `id`.
    pub fn forget(id: u32) -> Record {
        Record {
            entries: vec![Entry {
                id,
                reset: true,
                cell: None,
            }],
        }
    }

    /// An operand that replaces whatever is stored for `id` with `cell`.
    pub fn replacing(id: u32, cell: Cell) -> Record {
        Record {
            entries: vec![Entry {
                id,
                reset: true,
                cell: Some(cell),
            }],
        }
    }

    /// Memory the record holds on the heap, in bytes (an estimate).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self
                .entries
                .iter()
                .filter_map(|e| e.cell.as_ref())
                .map(Cell::heap_bytes)
                .sum::<usize>()
    }

    /// The memory the record's entries take, for prefetching: where they
    /// start and their length in bytes.
    pub fn span(&self) -> (*const u8, usize) {
        (
            self.entries.as_ptr().cast(),
            std::mem::size_of_val(self.entries.as_slice()),
        )
    }

    /// The cell stored for `id`.
    pub fn cell(&self, id: u32) -> Option<&Cell> {
        let i = self.entries.binary_search_by_key(&id, |e| e.id).ok()?;
        self.entries[i].cell.as_ref()
    }

    /// Encodes the record, into a buffer sized for it up front (a vector's
    /// cell is most of an event's operand, and a buffer grown as it is
    /// written copied it again, into memory the process had to fault in).
    pub fn encode(&self) -> Vec<u8> {
        let size = self
            .entries
            .iter()
            .map(|e| 30 + e.cell.as_ref().map_or(0, Cell::heap_bytes))
            .sum::<usize>();
        let mut w = Writer::with_tag(tags::RECORD, 2 + size);
        w.u16(self.entries.len() as u16);
        for e in &self.entries {
            w.u32(e.id);
            match &e.cell {
                Some(c) => c.encode(&mut w, if e.reset { RESET } else { 0 }),
                None => w.u8(FORGET),
            }
        }
        w.finish()
    }

    /// Decodes a record, rejecting short, unordered or unknown input.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        if tag != tags::RECORD {
            return derr(format!(
                "expected a record (tag {}), found tag {tag}",
                tags::RECORD
            ));
        }
        let n = r.u16()?;
        let mut entries = Vec::with_capacity(usize::from(n).min(r.remaining() / 5));
        let mut prev: Option<u32> = None;
        for _ in 0..n {
            let id = r.u32()?;
            if prev.is_some_and(|p| p >= id) {
                return derr(format!("record ids out of order at id {id}"));
            }
            prev = Some(id);
            let t = r.u8()?;
            let entry = if t == FORGET {
                Entry {
                    id,
                    reset: true,
                    cell: None,
                }
            } else {
                Entry {
                    id,
                    reset: t & RESET != 0,
                    cell: Some(Cell::decode(t & !RESET, &mut r)?),
                }
            };
            entries.push(entry);
        }
        r.end()?;
        Ok(Record { entries })
    }

    /// Folds a newer record into this one.
    pub fn merge(&mut self, newer: Record) -> Result<(), DecodeError> {
        if newer.entries.is_empty() {
            return Ok(());
        }
        // Onto nothing (a full merge without a stored value, a partial
        // merge's first operand), the newer record is the result as it is.
        if self.entries.is_empty() {
            self.entries = newer.entries;
            return Ok(());
        }
        // Most often every id of the newer record is here already: combine in
        // place, walking both lists (each in id order) once.
        if holds_every_id(&self.entries, &newer.entries) {
            let mut slots = self.entries.iter_mut();
            for new in newer.entries {
                if let Some(old) = slots.find(|e| e.id == new.id) {
                    combine_into(old, new)?;
                }
            }
            return Ok(());
        }
        let old = std::mem::take(&mut self.entries);
        let mut out = Vec::with_capacity(old.len().max(newer.entries.len()));
        let mut a = old.into_iter().peekable();
        let mut b = newer.entries.into_iter().peekable();
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.id < y.id => a.next(),
                (Some(x), Some(y)) if x.id > y.id => b.next(),
                (Some(_), Some(_)) => match (a.next(), b.next()) {
                    (Some(old), Some(new)) => Some(combine(old, new)?),
                    _ => None,
                },
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => None,
            };
            match next {
                Some(e) => out.push(e),
                None => break,
            }
        }
        self.entries = out;
        Ok(())
    }

    /// Whether [`Record::finalize`] would leave the record as it is: no
    /// entry is a reset marker or without a cell.
    fn is_final(&self) -> bool {
        self.entries.iter().all(|e| !e.reset && e.cell.is_some())
    }

    /// Drops reset markers and empty entries: what a final value keeps once nothing
    /// older remains to forget.
    pub fn finalize(&mut self) {
        self.entries.retain(|e| e.cell.is_some());
        for e in &mut self.entries {
            e.reset = false;
        }
    }
}

/// Whether every id of `of` is one of `have`'s (both in id order).
fn holds_every_id(have: &[Entry], of: &[Entry]) -> bool {
    let mut have = have.iter().map(|e| e.id).peekable();
    of.iter().all(|e| {
        while have.next_if(|&h| h < e.id).is_some() {}
        have.next_if_eq(&e.id).is_some()
    })
}

/// One id's older entry combined with its newer one.
fn combine(mut old: Entry, new: Entry) -> Result<Entry, DecodeError> {
    combine_into(&mut old, new)?;
    Ok(old)
}

/// [`combine`] in place.
fn combine_into(old: &mut Entry, new: Entry) -> Result<(), DecodeError> {
    if new.reset {
        *old = new;
        return Ok(());
    }
    match (&mut old.cell, new.cell) {
        (Some(a), Some(b)) => a.merge(&b)?,
        (slot @ None, b) => *slot = b,
        (_, None) => {}
    }
    Ok(())
}

/// Full merge: base value (if any) plus operands in order, into a final record.
pub fn full_merge<'a>(
    existing: Option<&[u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let mut operands = operands.into_iter().peekable();
    let mut acc = match existing {
        Some(b) => Record::decode(b)?,
        None => Record::default(),
    };
    if existing.is_none()
        && let Some(op) = operands.next()
    {
        acc = Record::decode(op)?;
        // One operand onto nothing, with nothing to forget (every user's
        // first read after a flush): the operand, checked, is the value.
        if operands.peek().is_none() && acc.is_final() {
            return Ok(op.to_vec());
        }
    }
    for op in operands {
        acc.merge(Record::decode(op)?)?;
    }
    acc.finalize();
    Ok(acc.encode())
}

/// Partial merge: operands alone, into one operand that keeps its reset markers.
pub fn partial_merge<'a>(
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let mut acc = Record::default();
    for op in operands {
        acc.merge(Record::decode(op)?)?;
    }
    Ok(acc.encode())
}
