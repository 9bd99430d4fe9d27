//! The row table: every user's decoded features and attributes records, in id
//! order, in memory, so that a scan reads neither RocksDB nor its pending merge
//! operands.
//!
//! A scan through the store pays, for every user, an iterator step in two
//! column families, a merge of every operand written since the last compaction
//! (right after a bulk ingest, ten or more a user) and a decode. The table pays
//! a merge per write instead: the index merges each write's operands into the
//! rows, as the store does (see `super::index`), and scans walk slices of
//! decoded rows.
//!
//! It is a persistent structure: rows are shared ([`Arc`]), grouped in chunks
//! of about [`CHUNK`] rows that are themselves shared. A read view pins one
//! version by cloning the chunk list (a few thousand pointers for millions of
//! users); a change copies only the chunks it touches, so writers never wait
//! for scans in flight and scans never see a change.

use std::sync::Arc;

use rayon::prelude::*;

use crate::row::{UserRange, UserRow};

/// Rows a chunk holds after a split; chunks split at twice this.
const CHUNK: usize = 512;

/// The first 16 bytes of a user id, zero-padded: ordering slots by it first
/// and by the whole id on a tie agrees with the ids' order, and most
/// comparisons of a search end in it, without following a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key([u8; 16]);

impl Key {
    fn of(user: &str) -> Key {
        let mut k = [0u8; 16];
        let n = user.len().min(16);
        k[..n].copy_from_slice(&user.as_bytes()[..n]);
        Key(k)
    }
}

/// One row of a chunk, with its key inline.
#[derive(Debug, Clone)]
struct Slot {
    key: Key,
    row: Arc<UserRow>,
}

impl Slot {
    fn new(row: Arc<UserRow>) -> Slot {
        Slot {
            key: Key::of(&row.user),
            row,
        }
    }

    fn cmp(&self, key: Key, user: &str) -> std::cmp::Ordering {
        self.key
            .cmp(&key)
            .then_with(|| self.row.user.as_str().cmp(user))
    }
}

type Chunk = Vec<Slot>;

/// One version of the table; cloning it is cheap.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowTable {
    /// Non-empty chunks of rows sorted by user id, in order.
    chunks: Vec<Arc<Chunk>>,
    len: usize,
    bytes: usize,
}

/// Memory a row takes in the table, estimated: the row, its id, its records
/// and its slot.
pub(crate) fn row_bytes(row: &UserRow) -> usize {
    std::mem::size_of::<UserRow>()
        + 2 * std::mem::size_of::<usize>()
        + std::mem::size_of::<Slot>()
        + row.user.capacity()
        + row.features.heap_bytes()
        + row.attributes.heap_bytes()
}

/// Rows ahead of the one visited that a scan asks memory for.
const AHEAD: usize = 8;

/// Asks the processor to bring in the cache lines of the `len` bytes at
/// `start` (at least one line); a hint that never faults, whatever the
/// address.
#[inline(always)]
fn prefetch(start: *const u8, len: usize) {
    let skew = start as usize % 64;
    for line in (0..skew + len.max(1)).step_by(64) {
        let p = start.wrapping_sub(skew).wrapping_add(line);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it reads nothing the program sees and
        // never faults, even for an address that is not mapped.
        #[allow(unsafe_code)]
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
}

impl RowTable {
    /// A table of `rows`, which must be sorted by id without repeats; its
    /// chunks are made on every core.
    pub(crate) fn from_sorted(rows: Vec<Arc<UserRow>>) -> RowTable {
        let len = rows.len();
        let chunks: Vec<(Arc<Chunk>, usize)> = rows
            .into_par_iter()
            .chunks(CHUNK)
            .map(|c| {
                let bytes = c.iter().map(|r| row_bytes(r)).sum();
                (Arc::new(c.into_iter().map(Slot::new).collect()), bytes)
            })
            .collect();
        let bytes = chunks.iter().map(|c| c.1).sum();
        let chunks = chunks.into_iter().map(|c| c.0).collect();
        RowTable { chunks, len, bytes }
    }

    /// Users in the table.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Estimated memory of the rows, in bytes (see [`row_bytes`]).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The chunk that holds `user`, or would: the last whose first id is not
    /// after it (the first chunk for ids before every chunk).
    fn chunk_of(&self, key: Key, user: &str) -> usize {
        self.chunks
            .partition_point(|c| c[0].cmp(key, user).is_le())
            .saturating_sub(1)
    }

    /// Where `user` is, or would be inserted: (chunk, position in it).
    fn find(&self, user: &str) -> (usize, Result<usize, usize>) {
        let key = Key::of(user);
        let at = self.chunk_of(key, user);
        let pos = match self.chunks.get(at) {
            Some(c) => c.binary_search_by(|s| s.cmp(key, user)),
            None => Err(0),
        };
        (at, pos)
    }

    /// The row of `user`.
    pub(crate) fn get(&self, user: &str) -> Option<&Arc<UserRow>> {
        match self.find(user) {
            (at, Ok(i)) => Some(&self.chunks[at][i].row),
            _ => None,
        }
    }

    /// Sets `user`'s row, or removes it with `None`.
    pub(crate) fn set(&mut self, user: &str, row: Option<Arc<UserRow>>) {
        let (at, pos) = self.find(user);
        if self.chunks.is_empty() {
            if let Some(row) = row {
                self.bytes += row_bytes(&row);
                self.len += 1;
                self.chunks.push(Arc::new(vec![Slot::new(row)]));
            }
            return;
        }
        let chunk = Arc::make_mut(&mut self.chunks[at]);
        match (pos, row) {
            (Ok(i), Some(row)) => {
                self.bytes = self.bytes - row_bytes(&chunk[i].row) + row_bytes(&row);
                chunk[i].row = row;
            }
            (Ok(i), None) => {
                let old = chunk.remove(i);
                self.bytes -= row_bytes(&old.row);
                self.len -= 1;
                if chunk.is_empty() {
                    self.chunks.remove(at);
                }
            }
            (Err(i), Some(row)) => {
                self.bytes += row_bytes(&row);
                self.len += 1;
                chunk.insert(i, Slot::new(row));
                if chunk.len() >= 2 * CHUNK {
                    let tail = chunk.split_off(CHUNK);
                    self.chunks.insert(at + 1, Arc::new(tail));
                }
            }
            (Err(_), None) => {}
        }
    }

    /// Sets the rows of `rows` (sorted by id, without repeats), each
    /// replacing the user's row or added. Many rows against the table's
    /// size are merged with it in one pass into new chunks; a few are set
    /// one by one.
    pub(crate) fn put_sorted(&mut self, rows: Vec<Arc<UserRow>>) {
        if rows.len().saturating_mul(8) < self.len {
            for row in rows {
                let user = row.user.clone();
                self.set(&user, Some(row));
            }
            return;
        }
        let mut all = Vec::with_capacity(self.len + rows.len());
        let mut old = self.chunks.iter().flat_map(|c| c.iter()).peekable();
        for row in rows {
            let key = Key::of(&row.user);
            while let Some(slot) = old.next_if(|s| s.cmp(key, &row.user).is_lt()) {
                all.push(Arc::clone(&slot.row));
            }
            // A row replaced.
            old.next_if(|s| s.cmp(key, &row.user).is_eq());
            all.push(row);
        }
        all.extend(old.map(|s| Arc::clone(&s.row)));
        *self = RowTable::from_sorted(all);
    }

    /// Changes `user`'s row in place with `f`, starting from an empty row
    /// for a user not in the table. The row and its chunk are copied first
    /// when a pinned version shares them. On failure the row may be half
    /// changed: the caller reads it again.
    pub(crate) fn update<E>(
        &mut self,
        user: &str,
        f: impl FnOnce(&mut UserRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let (mut at, mut pos) = self.find(user);
        if pos.is_err() {
            let row = UserRow {
                user: user.to_owned(),
                ..UserRow::default()
            };
            self.set(user, Some(Arc::new(row)));
            (at, pos) = self.find(user);
        }
        let Ok(i) = pos else { return Ok(()) };
        let chunk = Arc::make_mut(&mut self.chunks[at]);
        // As counted when stored: a copy made below may hold less spare room.
        let before = row_bytes(&chunk[i].row);
        let row = Arc::make_mut(&mut chunk[i].row);
        let result = f(row);
        self.bytes = self.bytes - before + row_bytes(row);
        result
    }

    /// Calls `visit` with every row in `range`, in id order, until it returns
    /// `false`.
    pub(crate) fn scan(&self, range: &UserRange, visit: &mut dyn FnMut(&UserRow) -> bool) {
        let (first, mut from) = match &range.start {
            Some(s) => {
                let (at, pos) = self.find(s);
                (at, pos.unwrap_or_else(|i| i))
            }
            None => (0, 0),
        };
        let end = range.end.as_deref().map(|e| (Key::of(e), e));
        for chunk in self.chunks.iter().skip(first) {
            let slots = &chunk[from.min(chunk.len())..];
            for (i, slot) in slots.iter().enumerate() {
                // Rows and their records are scattered on the heap: ask for
                // the rows a few ahead, and every cache line of the features
                // records of those a little nearer (a search for a cell reads
                // lines across the record), so that visiting does not wait on
                // memory.
                if let Some(ahead) = slots.get(i + AHEAD) {
                    prefetch(Arc::as_ptr(&ahead.row).cast(), 1);
                }
                if let Some(near) = slots.get(i + AHEAD / 2) {
                    let (start, len) = near.row.features.span();
                    prefetch(start, len);
                }
                if end.is_some_and(|(k, e)| slot.cmp(k, e).is_ge()) {
                    return;
                }
                if !visit(&slot.row) {
                    return;
                }
            }
            from = 0;
        }
    }

    /// At most `n` contiguous ranges of about equal numbers of users that
    /// together cover every user.
    pub(crate) fn split(&self, n: usize) -> Vec<UserRange> {
        let per = self.len.div_ceil(n.max(1)).max(1);
        let mut bounds: Vec<String> = Vec::new();
        let mut count = 0;
        for chunk in &self.chunks {
            if count >= per {
                bounds.push(chunk[0].row.user.clone());
                count = 0;
            }
            count += chunk.len();
        }
        UserRange::cut_at(bounds)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::merge::cell::Cell;
    use crate::merge::record::Record;

    /// Ids of two shapes: short ones, and ones that share their first 16
    /// bytes and differ after them.
    fn id(i: u64) -> String {
        if i.is_multiple_of(3) {
            format!("long-shared-prefix-{i:05}")
        } else {
            format!("u{i:05}")
        }
    }

    fn row(user: &str, n: u64) -> Arc<UserRow> {
        Arc::new(UserRow {
            user: user.to_owned(),
            features: Record::from_cells([(1, Cell::Count(n))]),
            ..UserRow::default()
        })
    }

    fn count(r: &UserRow) -> Option<u64> {
        match r.features.cell(1) {
            Some(Cell::Count(n)) => Some(*n),
            _ => None,
        }
    }

    fn listed(t: &RowTable, range: &UserRange) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        t.scan(range, &mut |r| {
            out.push((r.user.clone(), count(r).unwrap_or(0)));
            true
        });
        out
    }

    /// Checks that `table` lists `model` whole, in order, and counts its rows
    /// and their bytes.
    fn assert_equals_model(table: &RowTable, model: &BTreeMap<String, u64>, what: &str) {
        let all: Vec<(String, u64)> = model.clone().into_iter().collect();
        assert_eq!(listed(table, &UserRange::all()), all, "{what}");
        assert_eq!(table.len(), model.len(), "{what}");
        let bytes: usize = model
            .keys()
            .map(|u| row_bytes(table.get(u).expect("present")))
            .sum();
        assert_eq!(table.bytes(), bytes, "{what}");
    }

    /// Random sets and removes, checked against a sorted map: lookups, whole
    /// and partial scans, splits, counts and sizes; versions pinned on the
    /// way never change.
    #[test]
    fn the_table_equals_a_sorted_map_through_random_changes() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut model: BTreeMap<String, u64> = BTreeMap::new();
        for i in (0..3000u64).step_by(2) {
            model.insert(id(i), i);
        }
        let mut table = RowTable::from_sorted(model.iter().map(|(u, n)| row(u, *n)).collect());
        let mut pinned: Vec<(RowTable, Vec<(String, u64)>)> = Vec::new();
        for step in 0..20_000u64 {
            let user = id(rng.random_range(0..3000));
            if rng.random_bool(0.1) {
                // Through `update`, as merges are applied.
                let updated = table.update(&user, |r| {
                    let n = count(r).unwrap_or(0) + 1;
                    r.features = Record::from_cells([(1, Cell::Count(n))]);
                    Ok::<(), ()>(())
                });
                *model.entry(user).or_insert(0) += 1;
                assert!(updated.is_ok());
            } else if rng.random_bool(0.3) {
                table.set(&user, None);
                model.remove(&user);
            } else {
                table.set(&user, Some(row(&user, step)));
                model.insert(user, step);
            }
            if step % 2000 == 0 {
                pinned.push((table.clone(), model.clone().into_iter().collect()));
            }
        }
        assert_equals_model(&table, &model, "after the steps");
        let all: Vec<(String, u64)> = model.clone().into_iter().collect();
        for u in 0..3000 {
            let user = id(u);
            assert_eq!(
                table.get(&user).and_then(|r| count(r)),
                model.get(&user).copied(),
                "{user}"
            );
        }
        // Ranges with bounds on and between ids.
        let bounds = [
            ("a", "z"),
            ("u00010", "u00020"),
            ("long-shared-prefix-00100", "long-shared-prefix-00500"),
            ("long-shared-prefix-01500", "u00100"),
            ("u02990", "v"),
            ("u00005", "u00005"),
        ];
        for (lo, hi) in bounds {
            let range = UserRange {
                start: Some(lo.to_owned()),
                end: Some(hi.to_owned()),
            };
            let want: Vec<(String, u64)> = model
                .range(lo.to_owned()..hi.to_owned())
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            assert_eq!(listed(&table, &range), want, "{lo}..{hi}");
        }
        for n in [1, 2, 3, 4, 7, 64] {
            let parts = table.split(n);
            assert!(parts.len() <= n, "{n}: {}", parts.len());
            let joined: Vec<(String, u64)> = parts.iter().flat_map(|r| listed(&table, r)).collect();
            assert_eq!(joined, all, "{n} parts");
        }
        for (version, want) in pinned {
            assert_eq!(listed(&version, &UserRange::all()), want);
        }
    }

    /// Rows put in sorted, a few (set one by one) or many (merged with the
    /// table into new chunks), replacing and adding: the table equals a
    /// sorted map, and versions pinned before are unchanged.
    #[test]
    fn rows_put_in_sorted_equal_a_sorted_map() {
        let mut rng = StdRng::seed_from_u64(3);
        for (start, put) in [(0, 700), (2000, 50), (2000, 900), (600, 2500)] {
            let mut model: BTreeMap<String, u64> = BTreeMap::new();
            for i in 0..start {
                model.insert(id(rng.random_range(0..5000)), i);
            }
            let mut table = RowTable::from_sorted(model.iter().map(|(u, n)| row(u, *n)).collect());
            let before: Vec<(String, u64)> = model.clone().into_iter().collect();
            let pinned = table.clone();
            let mut rows: BTreeMap<String, u64> = BTreeMap::new();
            for _ in 0..put {
                rows.insert(id(rng.random_range(0..5000)), rng.random_range(0..1000));
            }
            table.put_sorted(rows.iter().map(|(u, n)| row(u, *n)).collect());
            model.extend(rows);
            assert_equals_model(&table, &model, &format!("{start} rows, {put} put"));
            assert_eq!(listed(&pinned, &UserRange::all()), before);
        }
    }

    #[test]
    fn an_emptied_table_takes_rows_again() {
        let mut t = RowTable::default();
        assert!(t.split(4).len() == 1 && listed(&t, &UserRange::all()).is_empty());
        t.set("b", Some(row("b", 1)));
        t.set("a", Some(row("a", 2)));
        t.set("b", None);
        t.set("a", None);
        assert_eq!((t.len(), t.bytes()), (0, 0));
        t.set("c", Some(row("c", 3)));
        assert_eq!(listed(&t, &UserRange::all()), vec![("c".to_owned(), 3)]);
    }
}
