//! A vector definition's current vectors, one row per user, in one contiguous
//! f32 matrix, with an exact top-k scan that runs on all cores.

use std::cmp::Ordering;
use std::collections::HashMap;

use rayon::prelude::*;

use super::kernels::{Metric, norm, score};

/// Rows scanned per parallel task: large enough to amortise the task, small
/// enough to balance two cores.
const CHUNK: usize = 16_384;

/// One result of a top-k scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The row.
    pub row: usize,
    /// The score: greater is closer.
    pub score: f64,
}

/// The current vectors of one definition. Rows of deleted users are reused.
#[derive(Debug, Clone, Default)]
pub struct VectorTable {
    dim: usize,
    ids: Vec<String>,
    data: Vec<f32>,
    norms: Vec<f64>,
    live: Vec<bool>,
    by_id: HashMap<String, usize>,
    free: Vec<usize>,
}

impl VectorTable {
    /// An empty table of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> VectorTable {
        VectorTable {
            dim,
            ..VectorTable::default()
        }
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How many users have a vector.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no user has a vector.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The number of rows, live or free: rows are numbered `0..rows()`.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// Sets `id`'s vector, or removes it with `None`. A vector of the wrong
    /// dimension removes it too: it cannot be compared.
    pub fn set(&mut self, id: &str, v: Option<&[f32]>) {
        let Some(v) = v.filter(|v| v.len() == self.dim) else {
            self.remove(id);
            return;
        };
        let row = match self.by_id.get(id) {
            Some(&r) => r,
            None => {
                let r = match self.free.pop() {
                    Some(r) => r,
                    None => {
                        self.ids.push(String::new());
                        self.data.resize(self.data.len() + self.dim, 0.0);
                        self.norms.push(0.0);
                        self.live.push(false);
                        self.ids.len() - 1
                    }
                };
                self.ids[r] = id.to_owned();
                self.live[r] = true;
                self.by_id.insert(id.to_owned(), r);
                r
            }
        };
        self.data[row * self.dim..(row + 1) * self.dim].copy_from_slice(v);
        self.norms[row] = norm(v);
    }

    /// Removes `id`'s vector; returns whether it had one.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(r) = self.by_id.remove(id) else {
            return false;
        };
        self.live[r] = false;
        self.ids[r] = String::new();
        self.free.push(r);
        true
    }

    /// The row holding `id`'s vector.
    pub fn row_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// `id`'s vector.
    pub fn get(&self, id: &str) -> Option<&[f32]> {
        self.row_of(id).map(|r| self.vector(r))
    }

    /// The user id of a live row.
    pub fn id(&self, row: usize) -> Option<&str> {
        (*self.live.get(row)?).then(|| self.ids[row].as_str())
    }

    /// The vector of a row (live or not; a free row holds its last vector).
    pub(crate) fn vector_at(&self, row: usize) -> &[f32] {
        self.vector(row)
    }

    /// The norm of a row's vector.
    pub(crate) fn norm_at(&self, row: usize) -> f64 {
        self.norms[row]
    }

    /// The `k` best of `rows` by their exact scores, best first (equal scores
    /// in id order), on the calling thread: the re-rank of an approximate
    /// search's candidates, which the caller's filter admitted already.
    pub(crate) fn rank(&self, rows: &[u32], query: &[f32], metric: Metric, k: usize) -> Vec<Hit> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let rows = rows.iter().map(|&r| r as usize);
        let mut hits = self.best_of(rows, query, norm(query), metric, k, &|_| true);
        self.keep_best(&mut hits, k);
        hits
    }

    fn vector(&self, row: usize) -> &[f32] {
        &self.data[row * self.dim..(row + 1) * self.dim]
    }

    /// Every live row as (row, id, vector), in row order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str, &[f32])> + '_ {
        (0..self.rows()).filter_map(|r| self.id(r).map(|id| (r, id, self.vector(r))))
    }

    /// The mean of the live rows `rows` picks; `None` when it picks none.
    pub fn mean(&self, rows: impl IntoIterator<Item = usize>) -> Option<Vec<f32>> {
        let mut sum = vec![0f64; self.dim];
        let mut n = 0usize;
        for r in rows {
            if self.id(r).is_some() {
                for (s, x) in sum.iter_mut().zip(self.vector(r)) {
                    *s += f64::from(*x);
                }
                n += 1;
            }
        }
        (n > 0).then(|| sum.into_iter().map(|s| (s / n as f64) as f32).collect())
    }

    /// The `k` live rows closest to `query` that `keep` accepts, best first;
    /// equal scores come in id order. Rows whose score is undefined (a cosine
    /// with a zero vector) are left out. Exact: every row is scored. `keep` is
    /// asked only of rows that score into the best k found so far, so it must
    /// answer the same for a row every time it is asked.
    ///
    /// `query` must have the table's dimension.
    pub fn top_k(
        &self,
        query: &[f32],
        metric: Metric,
        k: usize,
        keep: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<Hit> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let q_norm = norm(query);
        let chunks = self.rows().div_ceil(CHUNK);
        let partials = (0..chunks)
            .into_par_iter()
            .map(|c| {
                let rows = c * CHUNK..((c + 1) * CHUNK).min(self.rows());
                self.best_of(rows, query, q_norm, metric, k, keep)
            })
            .collect();
        self.merge(partials, k)
    }

    /// [`VectorTable::top_k`] for many queries in one pass: each chunk of
    /// rows is read from memory once and scored against every query while it
    /// is in cache, so a batch costs far less than its queries one by one
    /// (the table no longer streams from memory once per query). The answer
    /// for each query equals its own `top_k`.
    pub fn top_k_batch(
        &self,
        queries: &[&[f32]],
        metric: Metric,
        k: usize,
        keep: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<Vec<Hit>> {
        let norms: Vec<f64> = queries.iter().map(|q| norm(q)).collect();
        // Rows of a block (a MiB) stay in cache while every query scores them.
        let block = (1024 * 1024 / (self.dim.max(1) * 4)).clamp(64, CHUNK);
        let blocks = self.rows().div_ceil(block);
        let partials: Vec<Vec<Vec<Hit>>> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let rows = b * block..((b + 1) * block).min(self.rows());
                queries
                    .iter()
                    .zip(&norms)
                    .map(|(q, &n)| {
                        if k == 0 || q.len() != self.dim {
                            return Vec::new();
                        }
                        self.best_of(rows.clone(), q, n, metric, k, keep)
                    })
                    .collect()
            })
            .collect();
        let mut per_query: Vec<Vec<Vec<Hit>>> = vec![Vec::new(); queries.len()];
        for block in partials {
            for (q, hits) in block.into_iter().enumerate() {
                per_query[q].push(hits);
            }
        }
        per_query
            .into_iter()
            .map(|parts| self.merge(parts, k))
            .collect()
    }

    /// As [`VectorTable::top_k`], over the rows in `candidates` only.
    pub fn top_k_among(
        &self,
        candidates: &[u32],
        query: &[f32],
        metric: Metric,
        k: usize,
        keep: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<Hit> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let q_norm = norm(query);
        let partials = candidates
            .par_chunks(CHUNK)
            .map(|rows| {
                let rows = rows.iter().map(|&r| r as usize);
                self.best_of(rows, query, q_norm, metric, k, keep)
            })
            .collect();
        self.merge(partials, k)
    }

    /// The `k` best of `rows` (live, accepted by `keep`, with a defined score).
    fn best_of(
        &self,
        rows: impl Iterator<Item = usize>,
        query: &[f32],
        q_norm: f64,
        metric: Metric,
        k: usize,
        keep: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<Hit> {
        let cap = 2 * k.max(8);
        // Candidates, each with whether the filter has admitted it already.
        let mut candidates: Vec<(Hit, bool)> = Vec::with_capacity(cap.min(CHUNK));
        // Once k rows are admitted, a row scoring below the worst of them
        // cannot join them (an equal score can, by id): it is not kept at all.
        // Scoring a row is cheaper than asking the filter, so the filter is
        // asked only at a cut, best candidate first, until k are admitted:
        // rows that never rank among the best k so far are never asked.
        let mut floor = f64::NEG_INFINITY;
        for row in rows {
            if !self.live.get(row).copied().unwrap_or(false) {
                continue;
            }
            let Some(s) = score(metric, query, q_norm, self.vector(row), self.norms[row]) else {
                continue;
            };
            if s < floor {
                continue;
            }
            candidates.push((Hit { row, score: s }, false));
            if candidates.len() >= cap {
                self.admit_best(&mut candidates, k, keep);
                if candidates.len() == k {
                    floor = candidates.last().map_or(floor, |(h, _)| h.score);
                }
            }
        }
        self.admit_best(&mut candidates, k, keep);
        candidates.into_iter().map(|(h, _)| h).collect()
    }

    /// Sorts `candidates` best first and keeps the first `k` the filter
    /// admits, asking it only of those it has not admitted before.
    fn admit_best(
        &self,
        candidates: &mut Vec<(Hit, bool)>,
        k: usize,
        keep: &(dyn Fn(usize) -> bool + Sync),
    ) {
        candidates.sort_unstable_by(|a, b| self.order(&a.0, &b.0));
        admit_first(candidates, k, |(h, asked)| (h.row, asked), keep);
    }

    /// The `k` best of every chunk's best.
    fn merge(&self, partials: Vec<Vec<Hit>>, k: usize) -> Vec<Hit> {
        let mut all: Vec<Hit> = partials.into_iter().flatten().collect();
        self.keep_best(&mut all, k);
        all
    }

    /// Better first: higher score, then smaller id.
    fn order(&self, a: &Hit, b: &Hit) -> Ordering {
        b.score
            .total_cmp(&a.score)
            .then_with(|| self.ids[a.row].cmp(&self.ids[b.row]))
    }

    /// Keeps the `k` best of `hits`, in no order.
    fn cut(&self, hits: &mut Vec<Hit>, k: usize) {
        if hits.len() > k {
            hits.select_nth_unstable_by(k, |a, b| self.order(a, b));
            hits.truncate(k);
        }
    }

    /// Sorts `hits` best first and keeps `k`.
    fn keep_best(&self, hits: &mut Vec<Hit>, k: usize) {
        self.cut(hits, k);
        hits.sort_unstable_by(|a, b| self.order(a, b));
    }
}

/// Keeps the first `k` of `items` (sorted best first) that `keep` admits,
/// asking it only of items not admitted before: `parts` gives an item's row
/// and its flag of having been admitted, which this sets. The lazy filter of
/// every ranking, exact or approximate.
pub(crate) fn admit_first<T>(
    items: &mut Vec<T>,
    k: usize,
    parts: impl Fn(&mut T) -> (usize, &mut bool),
    keep: &(dyn Fn(usize) -> bool + Sync),
) {
    let mut admitted = 0;
    items.retain_mut(|item| {
        if admitted == k {
            return false;
        }
        let (row, asked) = parts(item);
        if !*asked {
            *asked = keep(row);
            if !*asked {
                return false;
            }
        }
        admitted += 1;
        true
    });
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::vector::kernels::score_scalar;

    /// The naive answer: score every vector with the scalar kernel, sort, cut.
    fn naive(
        vectors: &[(String, Vec<f32>)],
        q: &[f32],
        m: Metric,
        k: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<(String, f64)> {
        let mut all: Vec<(String, f64)> = vectors
            .iter()
            .filter(|(id, _)| keep(id))
            .filter_map(|(id, v)| score_scalar(m, q, v).map(|s| (id.clone(), s)))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    #[test]
    fn top_k_equals_a_full_sort() {
        let mut rng = StdRng::seed_from_u64(3);
        for (n, dim) in [(10, 3), (1000, 7), (40_000, 17)] {
            let mut t = VectorTable::new(dim);
            let mut vectors = Vec::new();
            for i in 0..n {
                let id = format!("u{i:06}");
                // Coarse values make ties common; some vectors are zero.
                let v: Vec<f32> = if i % 97 == 0 {
                    vec![0.0; dim]
                } else {
                    (0..dim)
                        .map(|_| f32::from(rng.random_range(-2i8..=2)))
                        .collect()
                };
                t.set(&id, Some(&v));
                vectors.push((id, v));
            }
            // Remove some and reuse their rows.
            for i in (0..n).step_by(7) {
                t.remove(&vectors[i].0);
            }
            vectors = vectors
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % 7 != 0)
                .map(|(_, v)| v)
                .collect();
            let extra: Vec<f32> = (0..dim).map(|_| 1.0).collect();
            t.set("zz_new", Some(&extra));
            vectors.push(("zz_new".into(), extra));
            for m in [Metric::Cosine, Metric::Dot, Metric::L2] {
                for k in [1, 10, 100] {
                    let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let got: Vec<(String, f64)> = t
                        .top_k(&q, m, k, &|_| true)
                        .into_iter()
                        .map(|h| (t.id(h.row).unwrap_or("?").to_owned(), h.score))
                        .collect();
                    let want = naive(&vectors, &q, m, k, |_| true);
                    assert_eq!(got.len(), want.len(), "{m:?} n {n} k {k}");
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!(g.0, w.0, "{m:?} n {n} k {k}");
                        assert!((g.1 - w.1).abs() <= 1e-5 * w.1.abs().max(1.0));
                    }
                    // Filtered: even-numbered ids only.
                    let even = |id: &str| id.ends_with(['0', '2', '4', '6', '8']);
                    let got: Vec<String> = t
                        .top_k(&q, m, k, &|r| t.id(r).is_some_and(even))
                        .into_iter()
                        .map(|h| t.id(h.row).unwrap_or("?").to_owned())
                        .collect();
                    let want: Vec<String> = naive(&vectors, &q, m, k, even)
                        .into_iter()
                        .map(|w| w.0)
                        .collect();
                    assert_eq!(got, want, "filtered {m:?} n {n} k {k}");
                    // A batch, with a query of the wrong dimension in it.
                    let q2: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let wrong = vec![1.0; dim + 1];
                    let batch =
                        t.top_k_batch(&[&q, &wrong, &q2], m, k, &|r| t.id(r).is_some_and(even));
                    assert_eq!(batch.len(), 3);
                    assert!(batch[1].is_empty());
                    for (query, hits) in [(&q, &batch[0]), (&q2, &batch[2])] {
                        let got: Vec<String> = hits
                            .iter()
                            .map(|h| t.id(h.row).unwrap_or("?").to_owned())
                            .collect();
                        let want: Vec<String> = naive(&vectors, query, m, k, even)
                            .into_iter()
                            .map(|w| w.0)
                            .collect();
                        assert_eq!(got, want, "batch {m:?} n {n} k {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn set_get_remove_and_mean() {
        let mut t = VectorTable::new(2);
        t.set("a", Some(&[1.0, 2.0]));
        t.set("b", Some(&[3.0, 4.0]));
        t.set("a", Some(&[5.0, 6.0]));
        assert_eq!(t.get("a"), Some(&[5.0f32, 6.0][..]));
        assert_eq!(t.len(), 2);
        assert_eq!(t.mean(0..t.rows()), Some(vec![4.0, 5.0]));
        assert!(t.remove("a"));
        assert!(!t.remove("a"));
        assert_eq!(t.get("a"), None);
        // A wrong dimension cannot be stored: it removes the vector.
        t.set("b", Some(&[1.0]));
        assert!(t.is_empty());
        assert_eq!(t.mean(0..t.rows()), None);
    }
}
