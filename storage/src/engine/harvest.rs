//! The row table built from the first scan that asks for it.
//!
//! A scan through the store reads every user's features and attributes
//! records, merging their pending operands, which is most of what building
//! the row table costs; building the table apart would read the store a
//! second time, beside that scan, on cores the scan already uses. So the
//! view that first asks for the table opens its build at its own snapshot
//! (see [`super::index::Index::pin`]), and its scans keep the records they
//! read, as stored: a copy into one buffer per range, no allocation per user.
//! When the view is dropped, ranges that cover every user, each read to its
//! end, go to the refresher, which decodes them into the table in id order
//! (one thread allocating the rows one after another, so that a scan of the
//! table walks memory in order); views that ask for the table meanwhile wait
//! for it, as decoding is quicker than reading the store. A view whose scans
//! cover less (a `LIMIT`, an error, no scan at all) leaves the build to the
//! refresher, which reads the store as before, and later views stop trying.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::index::{Index, Rows};
use super::read::RowReader;
use super::rows::{RowTable, row_bytes};
use crate::codec::{DecodeError, Reader};
use crate::error::{Error, Result};
use crate::kv::{ATTRIBUTES, FEATURES, Kv, KvSnapshot};
use crate::merge::record::Record;
use crate::row::{RowNeeds, UserRange, UserRow};

/// One range's records as stored, read to its end: for each user, in id
/// order, its id, its features record and its attributes record (a flag
/// byte first: none when 0), each after its length (`u32`, little-endian).
#[derive(Debug)]
pub(crate) struct Part {
    end: Option<String>,
    users: usize,
    bytes: Vec<u8>,
}

/// Ranges read to their end, by first user (`None` for the first range).
type Parts = BTreeMap<Option<String>, Part>;

/// A row table build by the scans of one view: see the module documentation.
/// Dropping it hands the records to the refresher, or the build itself.
pub(crate) struct Harvest<'a, K: Kv> {
    index: &'a Index<K>,
    /// The build's number (see [`Rows::Building`]).
    id: u64,
    /// Most memory the table may take: records whose stored size is over it
    /// already are not kept.
    limit: usize,
    parts: Mutex<Parts>,
    /// Stored size of the records kept so far, and their users.
    bytes: AtomicUsize,
    users: AtomicUsize,
}

impl<K: Kv> std::fmt::Debug for Harvest<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harvest")
            .field("id", &self.id)
            .field("users", &self.users.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<'a, K: Kv> Harvest<'a, K> {
    pub(crate) fn new(index: &'a Index<K>, id: u64, limit: usize) -> Harvest<'a, K> {
        Harvest {
            index,
            id,
            limit,
            parts: Mutex::new(Parts::new()),
            bytes: AtomicUsize::new(0),
            users: AtomicUsize::new(0),
        }
    }

    /// Whether a scan with `needs` reads rows the table holds: current ones
    /// (not rebuilt from the event history as of a time).
    pub(crate) fn takes(&self, needs: &RowNeeds) -> bool {
        needs.history_as_of.is_none()
    }

    fn over_limit(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) > self.limit
    }

    /// Scans `range` through `reader` as [`RowReader::scan`] does, with the
    /// attributes read whatever `needs` says (the table holds them), and
    /// keeps the records when the scan reads the range to its end.
    pub(crate) fn scan<S: KvSnapshot>(
        &self,
        mut reader: RowReader<'_, S>,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        let owned;
        let needs = if needs.attributes {
            needs
        } else {
            owned = RowNeeds {
                attributes: true,
                ..needs.clone()
            };
            &owned
        };
        let mut part = Part {
            end: range.end.clone(),
            users: 0,
            bytes: Vec::new(),
        };
        let mut keeping = !self.over_limit();
        let mut reported = (0, 0);
        let mut complete = true;
        reader.scan_stored(range, needs, &mut |row, (features, attributes)| {
            if !visit(row) {
                complete = false;
                return false;
            }
            if keeping {
                keeping = keep(&mut part.bytes, &row.user, features, attributes);
                part.users += usize::from(keeping);
                if part.users.is_multiple_of(REPORT_EVERY) {
                    keeping &= self.report(&mut reported, &part);
                }
                if !keeping {
                    part.bytes = Vec::new();
                }
            }
            true
        })?;
        if keeping && self.report(&mut reported, &part) && complete {
            self.parts.lock().entry(range.start.clone()).or_insert(part);
        }
        Ok(())
    }

    /// Adds what `part` kept since the last report (`reported`: its bytes
    /// and users then) to the build's figures; whether the table may still
    /// fit its limit.
    fn report(&self, reported: &mut (usize, usize), part: &Part) -> bool {
        let now = (part.bytes.len(), part.users);
        self.bytes.fetch_add(now.0 - reported.0, Ordering::Relaxed);
        self.users.fetch_add(now.1 - reported.1, Ordering::Relaxed);
        *reported = now;
        !self.over_limit()
    }
}

/// Rows a scan keeps between two reports of their size.
const REPORT_EVERY: usize = 4096;

/// Appends one user's records to `buf`; `false` when one is too long to be
/// kept (4 GiB or more), and nothing was appended.
fn keep(buf: &mut Vec<u8>, user: &str, features: &[u8], attributes: Option<&[u8]>) -> bool {
    fn put(buf: &mut Vec<u8>, bytes: &[u8]) -> bool {
        let Ok(n) = u32::try_from(bytes.len()) else {
            return false;
        };
        buf.extend_from_slice(&n.to_le_bytes());
        buf.extend_from_slice(bytes);
        true
    }
    let start = buf.len();
    let kept = put(buf, user.as_bytes())
        && put(buf, features)
        && match attributes {
            None => {
                buf.push(0);
                true
            }
            Some(a) => {
                buf.push(1);
                put(buf, a)
            }
        };
    if !kept {
        buf.truncate(start);
    }
    kept
}

/// The parts of `parts` in id order, when they cover every user once.
fn tiled(parts: Parts) -> Option<Vec<Part>> {
    let mut out = Vec::with_capacity(parts.len());
    // The first user of the range expected next: `None` (the start) first.
    let mut next: Option<Option<String>> = Some(None);
    for (start, part) in parts {
        match &next {
            // Every user is covered: a range scanned twice adds nothing.
            None => break,
            Some(expected) if *expected != start => return None,
            Some(_) => {}
        }
        next = part.end.clone().map(Some);
        out.push(part);
    }
    next.is_none().then_some(out)
}

/// The row table of the records `parts` kept (every user, in id order), or
/// [`Rows::TooLarge`] once its rows take more than `limit` bytes.
///
/// Parts are decoded in contiguous groups, one a core: the first on the
/// calling thread (the refresher), each other on a thread of its own, not
/// on the query pool, whose threads allocate the queries' rows (the table's
/// rows, allocated among those, were scattered in memory and scanned
/// slower). Each group's rows are allocated in id order by one thread.
pub(crate) fn decode_rows(parts: Vec<Part>, limit: usize) -> Result<Rows> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let groups = groups(parts, cores);
    let decoded: Vec<Result<(Vec<Arc<UserRow>>, usize)>> = std::thread::scope(|s| {
        let mut groups = groups.into_iter();
        let first = groups.next();
        let helpers: Vec<_> = groups
            .map(|g| {
                std::thread::Builder::new()
                    .name("profiledb-decode".into())
                    .spawn_scoped(s, || decode_group(g, limit))
                    .map_err(Error::Io)
            })
            .collect();
        let mut out = vec![first.map_or(Ok((Vec::new(), 0)), |g| decode_group(g, limit))];
        for h in helpers {
            out.push(h.and_then(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::invalid("a row table decoding thread panicked")))
            }));
        }
        out
    });
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    for group in decoded {
        let (part, b) = group?;
        rows.extend(part);
        bytes += b;
    }
    if bytes > limit {
        return Ok(Rows::TooLarge {
            users: rows.len(),
            bytes,
        });
    }
    Ok(Rows::On(RowTable::from_sorted(rows)))
}

/// `parts` cut into at most `n` contiguous groups of about as many users.
fn groups(parts: Vec<Part>, n: usize) -> Vec<Vec<Part>> {
    let total: usize = parts.iter().map(|p| p.users).sum();
    let per = total.div_ceil(n.max(1)).max(1);
    let mut out: Vec<Vec<Part>> = Vec::new();
    let mut filled = per;
    for part in parts {
        if filled >= per {
            out.push(Vec::new());
            filled = 0;
        }
        filled += part.users;
        if let Some(last) = out.last_mut() {
            last.push(part);
        }
    }
    out
}

/// The rows of one group of parts, in order, and their memory; it stops
/// once they take more than `limit` bytes.
fn decode_group(parts: Vec<Part>, limit: usize) -> Result<(Vec<Arc<UserRow>>, usize)> {
    let mut rows = Vec::with_capacity(parts.iter().map(|p| p.users).sum());
    let mut bytes = 0usize;
    for part in parts {
        let mut r = Reader::new(&part.bytes);
        for _ in 0..part.users {
            let row = decode_row(&mut r)?;
            bytes += row_bytes(&row);
            rows.push(row);
            if bytes > limit {
                return Ok((rows, bytes));
            }
        }
    }
    Ok((rows, bytes))
}

/// One length-prefixed field of the records [`keep`] appended.
fn field<'a>(r: &mut Reader<'a>) -> std::result::Result<&'a [u8], DecodeError> {
    let n = r.u32()?;
    r.take(n as usize)
}

/// One user's row from the records [`keep`] appended.
fn decode_row(r: &mut Reader<'_>) -> Result<Arc<UserRow>> {
    let kept = |e: DecodeError| Error::corruption(FEATURES, b"", format!("a kept record: {e}"));
    let user = crate::codec::utf8(field(r).map_err(kept)?)
        .map_err(kept)?
        .to_owned();
    let key = crate::keys::user_key(&user);
    let features = Record::decode(field(r).map_err(kept)?)
        .map_err(|e| Error::corruption(FEATURES, &key, e))?;
    let attributes = match r.u8().map_err(kept)? {
        0 => Record::default(),
        _ => Record::decode(field(r).map_err(kept)?)
            .map_err(|e| Error::corruption(ATTRIBUTES, &key, e))?,
    };
    Ok(Arc::new(UserRow {
        user,
        features,
        attributes,
        ..UserRow::default()
    }))
}

impl<K: Kv> Drop for Harvest<'_, K> {
    fn drop(&mut self) {
        let bytes = *self.bytes.get_mut();
        if bytes > self.limit {
            let users = *self.users.get_mut();
            self.index
                .install_rows(self.id, Ok(Rows::TooLarge { users, bytes }));
            return;
        }
        match tiled(std::mem::take(self.parts.get_mut())) {
            Some(parts) => self.index.hand_records(self.id, parts),
            None => self.index.hand_build_to_refresher(self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::cell::Cell;

    /// A part holding `users`, each with a features record of one count and
    /// attributes for every other one.
    fn part(start: Option<&str>, end: Option<&str>, users: &[&str]) -> (Option<String>, Part) {
        let mut p = Part {
            end: end.map(str::to_owned),
            users: 0,
            bytes: Vec::new(),
        };
        for (i, u) in users.iter().enumerate() {
            let features = Record::from_cells([(7, Cell::Count(i as u64 + 1))]).encode();
            let attributes = Record::from_cells([(3, Cell::Count(40))]).encode();
            assert!(keep(
                &mut p.bytes,
                u,
                &features,
                (i % 2 == 1).then_some(&attributes[..])
            ));
            p.users += 1;
        }
        (start.map(str::to_owned), p)
    }

    fn users(parts: Option<Vec<Part>>) -> Option<Vec<String>> {
        let rows = match decode_rows(parts?, usize::MAX).expect("decode") {
            Rows::On(t) => t,
            other => panic!("not built: {other:?}"),
        };
        let mut out = Vec::new();
        rows.scan(&UserRange::all(), &mut |r| {
            out.push(r.user.clone());
            true
        });
        Some(out)
    }

    #[test]
    fn ranges_that_cover_every_user_once_make_the_table() {
        let parts: Parts = [
            part(Some("m"), None, &["m", "z"]),
            part(None, Some("f"), &["a", "b"]),
            part(Some("f"), Some("m"), &["f", "k"]),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            users(tiled(parts)),
            Some(["a", "b", "f", "k", "m", "z"].map(String::from).to_vec())
        );
        let whole: Parts = [part(None, None, &[])].into_iter().collect();
        assert_eq!(users(tiled(whole)), Some(Vec::new()));
    }

    #[test]
    fn a_gap_or_a_missing_end_makes_none() {
        let gap: Parts = [part(None, Some("f"), &["a"]), part(Some("g"), None, &["g"])]
            .into_iter()
            .collect();
        assert!(tiled(gap).is_none());
        let no_end: Parts = [part(None, Some("f"), &["a"])].into_iter().collect();
        assert!(tiled(no_end).is_none());
        let no_start: Parts = [part(Some("f"), None, &["f"])].into_iter().collect();
        assert!(tiled(no_start).is_none());
        assert!(tiled(Parts::new()).is_none());
    }

    #[test]
    fn parts_are_cut_into_contiguous_groups_of_about_as_many_users() {
        let sized = |users: &[usize]| -> Vec<Part> {
            users
                .iter()
                .map(|&u| Part {
                    end: Some(u.to_string()),
                    users: u,
                    bytes: Vec::new(),
                })
                .collect()
        };
        let shape = |g: Vec<Vec<Part>>| -> Vec<Vec<usize>> {
            g.iter()
                .map(|g| g.iter().map(|p| p.users).collect())
                .collect()
        };
        assert_eq!(
            shape(groups(sized(&[3, 1, 4, 1, 5]), 2)),
            vec![vec![3, 1, 4], vec![1, 5]]
        );
        assert_eq!(
            shape(groups(sized(&[2, 2, 2, 2]), 2)),
            vec![vec![2, 2], vec![2, 2]]
        );
        assert_eq!(shape(groups(sized(&[2, 2]), 8)), vec![vec![2], vec![2]]);
        assert_eq!(shape(groups(sized(&[2, 2]), 1)), vec![vec![2, 2]]);
        assert!(groups(Vec::new(), 2).is_empty());
    }

    #[test]
    fn kept_records_decode_to_the_rows_they_were() {
        let (_, p) = part(None, None, &["a", "b", "c"]);
        let Rows::On(table) = decode_rows(vec![p], usize::MAX).expect("decode") else {
            panic!("not built");
        };
        let mut rows = Vec::new();
        table.scan(&UserRange::all(), &mut |r| {
            rows.push((
                r.user.clone(),
                r.features.cell(7).cloned(),
                r.attributes.cell(3).cloned(),
            ));
            true
        });
        assert_eq!(
            rows,
            vec![
                ("a".to_owned(), Some(Cell::Count(1)), None),
                ("b".to_owned(), Some(Cell::Count(2)), Some(Cell::Count(40))),
                ("c".to_owned(), Some(Cell::Count(3)), None),
            ]
        );
        // Over the limit: refused, with the users and bytes seen by then.
        let (_, p) = part(None, None, &["a", "b", "c"]);
        match decode_rows(vec![p], 1).expect("decode") {
            Rows::TooLarge { users, bytes } => assert!(users == 1 && bytes > 1, "{users} {bytes}"),
            other => panic!("not refused: {other:?}"),
        }
        // A damaged record is corruption, not a table.
        let (_, mut p) = part(None, None, &["a"]);
        let at = p.bytes.len() - 2;
        p.bytes.truncate(at);
        assert!(decode_rows(vec![p], usize::MAX).is_err());
    }
}
