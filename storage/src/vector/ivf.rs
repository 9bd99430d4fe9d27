//! An inverted-file (IVF) index with int8 codes over a [`VectorTable`]:
//! approximate nearest neighbours that stay cheap to update as vectors move.
//!
//! - **Coarse centroids** come from [`mod@super::kmeans`] over an evenly spaced
//!   sample of the rows. Each row sits in the list of its nearest centroid
//!   (by L2).
//! - **Codes**: a row is stored in its list as int8 codes with a per-row
//!   scale (`v ≈ scale · code`, `scale = max|v| / 127`), beside its norm.
//!   A list's codes are contiguous, so a probe streams them from memory.
//! - **Search** ranks the centroids against the query by the query's metric,
//!   probes the best `probes` lists with an int8 dot-product kernel (one
//!   pass per list, [`super::kernels::dot_i8_rows`]: AVX2 where the CPU has
//!   it, with a scalar reference tested equal), keeps the best
//!   `k · rerank` candidates by approximate score and re-ranks them
//!   against the exact f32 vectors of the table. Every metric needs only the
//!   approximate dot product: cosine and L2 take the exact norms.
//! - **Updates in place**: a changed row is re-encoded, and moves to another
//!   list only when its nearest centroid changed. A row that stays close to
//!   its centroid costs one distance: by the triangle inequality no centroid
//!   is nearer to `x` than `c₀` while `|x − c₀|` is under half the distance
//!   from `c₀` to its nearest other centroid. Otherwise one fused
//!   multiply-add pass over all the centroids finds the nearest.
//!
//! The index is a cache of the table: [`Ivf::check`] tests it against a fresh
//! assignment, and the engine rebuilds it rather than trust a stale one.

use std::time::Instant;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::kernels::{Metric, NearestRows, dot, dot_i8, dot_i8_rows, l2sq, norm, score};
use super::kmeans::kmeans;
use super::table::{Hit, VectorTable, admit_first};

/// The most lists an index may have: finding each centroid's nearest other
/// takes lists² distances.
pub const MAX_LISTS: usize = 16_384;
/// The largest re-rank factor: candidates re-ranked per result.
pub const MAX_RERANK: usize = 256;
/// Rows sampled per list to train the centroids.
const SAMPLE_PER_LIST: usize = 64;
/// Lloyd iterations when training.
const TRAIN_ITERATIONS: usize = 12;
/// Marks a row that is in no list.
const NONE: u32 = u32::MAX;

/// How an index is built and searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfParams {
    /// Lists (coarse centroids).
    pub lists: usize,
    /// Lists probed per query, unless a query asks for another number.
    pub probes: usize,
    /// Candidates re-ranked exactly per result (`k · rerank` in all).
    pub rerank: usize,
}

impl Default for IvfParams {
    fn default() -> IvfParams {
        IvfParams {
            lists: 1024,
            probes: 16,
            rerank: 4,
        }
    }
}

/// The outcome of [`Ivf::measure`]: recall against the exact scan, with the
/// index's own rows as queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The k of recall@k.
    pub k: usize,
    /// The fraction of the exact k nearest (the query row left out) that the
    /// index found.
    pub recall: f64,
    /// Queries run.
    pub queries: usize,
    /// Queries per second the index answered, on every core.
    pub qps: f64,
    /// Lists probed per query.
    pub probes: usize,
    /// The metric.
    pub metric: Metric,
    /// When it was measured, epoch ms.
    pub at_ms: i64,
}

/// The coarse centroids, with how far each one is from its nearest other.
#[derive(Debug, Clone)]
pub struct Centroids {
    dim: usize,
    data: Vec<f32>,
    norms: Vec<f64>,
    /// The same centroids laid out for [`Centroids::nearest`].
    nearest: NearestRows,
    /// Per centroid, half the distance to its nearest other centroid (∞
    /// when it is alone): a point nearer than that has it as its nearest.
    half_gap: Vec<f64>,
}

impl Centroids {
    /// Centroids of dimension `dim` from their coordinates, one after another.
    ///
    /// # Errors
    /// A message when there are none, or `data` is not a whole number of
    /// `dim`-dimensional vectors, or a coordinate is not finite.
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Centroids, String> {
        if dim == 0 || data.is_empty() || !data.len().is_multiple_of(dim) {
            return Err(format!(
                "{} coordinates are not whole centroids of dimension {dim}",
                data.len()
            ));
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err("a centroid has a coordinate that is not finite".into());
        }
        let n = data.len() / dim;
        if n > MAX_LISTS {
            return Err(format!("{n} centroids are more than {MAX_LISTS}"));
        }
        let at = |i: usize| &data[i * dim..(i + 1) * dim];
        let half_gap = (0..n)
            .into_par_iter()
            .map(|i| {
                let nearest = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| l2sq(at(i), at(j)))
                    .fold(f64::INFINITY, f64::min);
                nearest.sqrt() / 2.0
            })
            .collect();
        let norms = (0..n).map(|i| norm(at(i))).collect();
        let nearest = NearestRows::new(dim, &data);
        Ok(Centroids {
            dim,
            data,
            norms,
            nearest,
            half_gap,
        })
    }

    /// How many centroids there are.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// Whether there are none (never, once made).
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The coordinates, one centroid after another.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    fn at(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The nearest centroid to `v` by L2 (ties to the lower index), checking
    /// every one.
    pub fn nearest(&self, v: &[f32]) -> u32 {
        self.nearest.nearest(v).map_or(0, |(i, _)| i as u32)
    }

    /// [`Centroids::nearest`], for a point whose nearest centroid was `from`
    /// (a row's list before its vector changed): one distance when the point
    /// is still well inside `from`'s half gap, every centroid otherwise.
    pub fn nearest_from(&self, v: &[f32], from: u32) -> u32 {
        let Some(&gap) = self.half_gap.get(from as usize) else {
            return self.nearest(v);
        };
        let d0 = l2sq(v, self.at(from as usize)).sqrt();
        // A margin well beyond f32 rounding, so that `nearest` agrees.
        if d0 < gap * (1.0 - 1e-4) {
            from
        } else {
            self.nearest(v)
        }
    }
}

/// The rows of one list, with their codes, scales and norms.
#[derive(Debug, Clone, Default)]
struct List {
    rows: Vec<u32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    norms: Vec<f32>,
    /// At least the distance of every row from the centroid (it grows with
    /// the rows that join, and is not lowered when they leave): bounds the
    /// dot product a list can hold, to rank lists for dot-product queries.
    radius: f32,
}

/// `v` as int8 codes into `out`, returning the scale: `v ≈ scale · code`.
/// A zero vector (or one that is not finite) codes as zeros with scale 0.
pub fn encode(v: &[f32], out: &mut [i8]) -> f32 {
    let m = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if m == 0.0 || !m.is_finite() || v.iter().any(|x| !x.is_finite()) {
        out.fill(0);
        return 0.0;
    }
    let scale = m / 127.0;
    for (o, x) in out.iter_mut().zip(v) {
        // In −127..=127 by construction; the clamp guards rounding.
        *o = (x / scale).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// An IVF index over one [`VectorTable`]'s rows.
#[derive(Debug, Clone)]
pub struct Ivf {
    params: IvfParams,
    centroids: Centroids,
    lists: Vec<List>,
    /// Per table row: its list, or [`NONE`].
    list_of: Vec<u32>,
    /// Per table row: its place in its list.
    pos: Vec<u32>,
    len: usize,
    /// Rows when the centroids were trained.
    trained_on: usize,
    /// The lists' imbalance ([`IvfStats::imbalance`]) when it was built.
    built_imbalance: f64,
    measured: Option<Measurement>,
}

/// Figures on an index, for `DESCRIBE` and monitoring.
#[derive(Debug, Clone, PartialEq)]
pub struct IvfStats {
    /// Rows indexed.
    pub rows: usize,
    /// Lists.
    pub lists: usize,
    /// The fewest and most rows in one list.
    pub smallest: usize,
    /// See `smallest`.
    pub largest: usize,
    /// How unbalanced the lists are: the mean list size a row's search
    /// scans over the mean list size (1 when all are equal).
    pub imbalance: f64,
    /// Rows when the centroids were trained.
    pub trained_on: usize,
    /// Bytes per row of the index alone (codes, scale, norm, list entry, place).
    pub bytes_per_row: f64,
    /// Bytes of the index, centroids included.
    pub bytes: usize,
}

impl Ivf {
    /// An evenly spaced sample of `table`'s live rows to train `lists`
    /// centroids on, copied out (so that training holds no lock on the table).
    ///
    /// # Errors
    /// A message when the table has fewer rows than lists.
    pub fn sample(table: &VectorTable, lists: usize) -> Result<Vec<Vec<f32>>, String> {
        let live = table.len();
        if live < lists.max(1) {
            return Err(format!(
                "{live} vector{} cannot train {lists} lists",
                if live == 1 { "" } else { "s" },
            ));
        }
        let want = (lists * SAMPLE_PER_LIST).min(live);
        let mut sample = Vec::with_capacity(want);
        for (i, (_, _, v)) in table.iter().enumerate() {
            // A row is picked where ⌊i · want / live⌋ steps up: `want` rows,
            // evenly spaced.
            if i * want / live != (i + 1) * want / live {
                sample.push(v.to_vec());
            }
        }
        Ok(sample)
    }

    /// Trains `lists` centroids of dimension `dim` on `sample` (k-means++
    /// and Lloyd iterations, deterministic for `seed`), stopping early when
    /// `stop` says so.
    ///
    /// # Errors
    /// A message when the sample is smaller than `lists`, or when stopped.
    pub fn train_on(
        sample: &[Vec<f32>],
        dim: usize,
        lists: usize,
        seed: u64,
        stop: &super::kmeans::Stop<'_>,
    ) -> Result<Centroids, String> {
        let points: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
        let c = kmeans(&points, dim, lists, seed, TRAIN_ITERATIONS, stop)?;
        Centroids::new(dim, c.centroids.concat())
    }

    /// Trains `params.lists` centroids on a sample of `table` ([`Ivf::sample`],
    /// [`Ivf::train_on`]).
    ///
    /// # Errors
    /// As those two.
    pub fn train(
        table: &VectorTable,
        params: IvfParams,
        seed: u64,
        stop: &super::kmeans::Stop<'_>,
    ) -> Result<Centroids, String> {
        let sample = Ivf::sample(table, params.lists)?;
        Ivf::train_on(&sample, table.dim(), params.lists, seed, stop)
    }

    /// The list of each of `rows` under `centroids` (`u32::MAX` for free rows),
    /// computed on every core: the costly half of a build, which needs only
    /// read access to the table and can run in pieces.
    pub fn assign(
        centroids: &Centroids,
        table: &VectorTable,
        rows: std::ops::Range<usize>,
    ) -> Vec<u32> {
        let rows: Vec<usize> = rows.collect();
        rows.par_chunks(1024)
            .flat_map_iter(|chunk| {
                chunk.iter().map(|&r| match table.id(r) {
                    Some(_) => centroids.nearest(table.vector_at(r)),
                    None => NONE,
                })
            })
            .collect()
    }

    /// An index of `table` with `centroids`, given each row's list from
    /// [`Ivf::assign`] (rows past its end, or whose entry is stale, are
    /// assigned here).
    pub fn from_assignment(
        params: IvfParams,
        centroids: Centroids,
        table: &VectorTable,
        assignment: &[u32],
    ) -> Ivf {
        let mut ivf = Ivf {
            params,
            lists: vec![List::default(); centroids.len()],
            centroids,
            list_of: Vec::new(),
            pos: Vec::new(),
            len: 0,
            trained_on: table.len(),
            built_imbalance: 1.0,
            measured: None,
        };
        for (row, _, v) in table.iter() {
            let list = match assignment.get(row) {
                Some(&l) if (l as usize) < ivf.lists.len() => l,
                _ => ivf.centroids.nearest(v),
            };
            ivf.insert(row, list, v, table.norm_at(row));
        }
        ivf.built_imbalance = ivf.stats().imbalance;
        ivf
    }

    /// Trains and builds an index of `table` in one call.
    ///
    /// # Errors
    /// As [`Ivf::train`].
    pub fn build(table: &VectorTable, params: IvfParams, seed: u64) -> Result<Ivf, String> {
        let centroids = Ivf::train(table, params, seed, &|| false)?;
        let assignment = Ivf::assign(&centroids, table, 0..table.rows());
        Ok(Ivf::from_assignment(params, centroids, table, &assignment))
    }

    /// The parameters.
    pub fn params(&self) -> IvfParams {
        self.params
    }

    /// Changes how many lists a query probes and how many candidates it
    /// re-ranks (the lists stay).
    pub fn set_search(&mut self, probes: usize, rerank: usize) {
        self.params.probes = probes.clamp(1, self.lists.len());
        self.params.rerank = rerank.clamp(1, MAX_RERANK);
    }

    /// The centroids.
    pub fn centroids(&self) -> &Centroids {
        &self.centroids
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last [`Ivf::measure`].
    pub fn measured(&self) -> Option<&Measurement> {
        self.measured.as_ref()
    }

    /// Keeps a measurement (one read back from a saved index).
    pub fn set_measured(&mut self, m: Option<Measurement>) {
        self.measured = m;
    }

    /// Each row's list, `u32::MAX` for rows in none: what a saved
    /// index stores beside its centroids.
    pub fn assignment(&self, rows: usize) -> Vec<u32> {
        (0..rows)
            .map(|r| self.list_of.get(r).copied().unwrap_or(NONE))
            .collect()
    }

    /// Rows the centroids were trained on.
    pub fn trained_on(&self) -> usize {
        self.trained_on
    }

    /// Sets the rows the centroids were trained on (for an index read back
    /// from a saved one).
    pub fn set_trained_on(&mut self, rows: usize) {
        self.trained_on = rows;
    }

    fn insert(&mut self, row: usize, list: u32, v: &[f32], norm: f64) {
        let dim = self.centroids.dim;
        if self.list_of.len() <= row {
            self.list_of.resize(row + 1, NONE);
            self.pos.resize(row + 1, 0);
        }
        let r = l2sq(v, self.centroids.at(list as usize)).sqrt() as f32;
        let l = &mut self.lists[list as usize];
        l.radius = l.radius.max(r);
        let at = l.rows.len();
        l.rows.push(row as u32);
        l.codes.resize(l.codes.len() + dim, 0);
        let scale = encode(v, &mut l.codes[at * dim..]);
        l.scales.push(scale);
        l.norms.push(norm as f32);
        self.list_of[row] = list;
        self.pos[row] = at as u32;
        self.len += 1;
    }

    /// Takes `row` out of its list (a no-op for a row in none).
    pub fn remove(&mut self, row: usize) {
        let Some(&list) = self.list_of.get(row) else {
            return;
        };
        if list == NONE {
            return;
        }
        let dim = self.centroids.dim;
        let at = self.pos[row] as usize;
        let l = &mut self.lists[list as usize];
        let last = l.rows.len() - 1;
        // The last entry takes the removed one's place.
        l.rows.swap_remove(at);
        l.scales.swap_remove(at);
        l.norms.swap_remove(at);
        if at != last {
            l.codes.copy_within(last * dim..(last + 1) * dim, at * dim);
            self.pos[l.rows[at] as usize] = at as u32;
        }
        l.codes.truncate(last * dim);
        self.list_of[row] = NONE;
        self.len -= 1;
    }

    /// Re-indexes `row` after its vector in `table` changed (or was removed):
    /// re-encodes it in place, moving it only when its nearest centroid
    /// changed.
    pub fn update(&mut self, table: &VectorTable, row: usize) {
        if table.id(row).is_none() {
            self.remove(row);
            return;
        }
        let v = table.vector_at(row);
        let current = self.list_of.get(row).copied().unwrap_or(NONE);
        let list = if current == NONE {
            self.centroids.nearest(v)
        } else {
            self.centroids.nearest_from(v, current)
        };
        if list == current {
            let dim = self.centroids.dim;
            let at = self.pos[row] as usize;
            let r = l2sq(v, self.centroids.at(list as usize)).sqrt() as f32;
            let l = &mut self.lists[list as usize];
            l.radius = l.radius.max(r);
            l.scales[at] = encode(v, &mut l.codes[at * dim..(at + 1) * dim]);
            l.norms[at] = table.norm_at(row) as f32;
            return;
        }
        self.remove(row);
        self.insert(row, list, v, table.norm_at(row));
    }

    /// Every list by how well its centroid scores against `query` under
    /// `metric`: the best `probes` sorted best first, then the others in
    /// no order (sorted only when a search must go on past its probes).
    fn probe_order(
        &self,
        query: &[f32],
        q_norm: f64,
        metric: Metric,
        probes: usize,
    ) -> (Vec<(f64, u32)>, usize) {
        let mut scored: Vec<(f64, u32)> = (0..self.centroids.len())
            .filter_map(|i| {
                let c = self.centroids.at(i);
                let s = match metric {
                    // Cosine to a centroid ranks its direction; a zero query
                    // has none, and its answer is empty anyway.
                    Metric::Cosine => score(metric, query, q_norm, c, self.centroids.norms[i]),
                    // a·x ≤ a·c + |a| · |x − c|: the best a list can hold.
                    Metric::Dot => Some(dot(query, c) + q_norm * f64::from(self.lists[i].radius)),
                    Metric::L2 => Some(-l2sq(query, c)),
                }?;
                Some((s, i as u32))
            })
            .collect();
        let probes = probes.min(scored.len());
        if probes > 0 && probes < scored.len() {
            scored.select_nth_unstable_by(probes - 1, best_first);
        }
        scored[..probes].sort_unstable_by(best_first);
        (scored, probes)
    }

    /// The `k` rows nearest to `query` by `metric` among those in `within`
    /// (every row when `None`) that `keep` admits, best first with exact
    /// scores (equal scores in id order): the best `k · rerank` candidates
    /// of the `probes` nearest lists by approximate score, re-ranked against
    /// `table`. When the probed lists hold fewer than `k` rows that the
    /// filter admits, the next lists are probed too, until they do (so a
    /// search answers `k` rows whenever `k` exist). `keep` is asked only of
    /// rows that rank among the candidates, and must answer the same for a
    /// row every time. `probes` is clamped to `1..=lists`; `None` takes the
    /// index's own.
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        table: &VectorTable,
        query: &[f32],
        metric: Metric,
        k: usize,
        probes: Option<usize>,
        within: Option<&RoaringBitmap>,
        keep: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<Hit> {
        let dim = self.centroids.dim;
        if k == 0 || query.len() != dim || table.dim() != dim {
            return Vec::new();
        }
        let probes = probes
            .unwrap_or(self.params.probes)
            .clamp(1, self.lists.len());
        let q_norm = norm(query);
        let mut q_code = vec![0i8; dim];
        let q_scale = encode(query, &mut q_code);
        let want = k.saturating_mul(self.params.rerank).max(k);
        let mut best = Candidates::new(want);
        let mut dots = Vec::new();
        let (mut order, probes) = self.probe_order(query, q_norm, metric, probes);
        for i in 0..order.len() {
            // Past its probes, a search goes on only while it holds fewer
            // than k rows (its lists were empty, or the filter kept few),
            // in the order of the lists' centroids.
            if i == probes {
                if best.admitted(keep) >= k {
                    break;
                }
                order[probes..].sort_unstable_by(best_first);
            } else if i > probes && best.admitted(keep) >= k {
                break;
            }
            let l = &self.lists[order[i].1 as usize];
            // Unfiltered, a list's dot products are computed in one pass.
            if within.is_none() {
                dot_i8_rows(&q_code, &l.codes, &mut dots);
            }
            for (i, &row) in l.rows.iter().enumerate() {
                let raw = match within {
                    None => dots[i] as f32,
                    Some(w) if w.contains(row) => dot_i8(&q_code, &l.codes[i * dim..(i + 1) * dim]),
                    Some(_) => continue,
                };
                let d = raw * q_scale * l.scales[i];
                let n = l.norms[i];
                // Ranked as the metric ranks (for a fixed query): cosine by
                // a·b / |b|, L2 by 2a·b − |b|² (= |a|² − |a − b|²).
                let s = match metric {
                    Metric::Dot => d,
                    Metric::Cosine if n == 0.0 => continue,
                    Metric::Cosine => d / n,
                    Metric::L2 => 2.0 * d - n * n,
                };
                best.push(s, row, keep);
            }
        }
        let rows = best.finish(keep);
        table.rank(&rows, query, metric, k)
    }

    /// The rows `search` would score for a query when probing `probes`
    /// lists of average size: what an exact scan of fewer rows than this
    /// costs no more than.
    pub fn rows_probed(&self, probes: Option<usize>) -> usize {
        let probes = probes
            .unwrap_or(self.params.probes)
            .clamp(1, self.lists.len());
        self.len.saturating_mul(probes) / self.lists.len().max(1)
    }

    /// Measures recall@`k` against the exact scan of `table` (and the index's
    /// queries/s, on every core), with up to `queries` evenly spaced live
    /// rows as queries (each query's own row left out of both answers),
    /// probing `probes` lists (the index's own with `None`). The caller keeps
    /// it with [`Ivf::set_measured`]. `None` when `stop` (asked between
    /// batches of the exact scan) said to stop.
    #[allow(clippy::too_many_arguments)]
    pub fn measure(
        &self,
        table: &VectorTable,
        metric: Metric,
        k: usize,
        queries: usize,
        probes: Option<usize>,
        now_ms: i64,
        stop: &super::kmeans::Stop<'_>,
    ) -> Option<Measurement> {
        let live: Vec<usize> = table.iter().map(|(r, _, _)| r).collect();
        let n = queries.min(live.len());
        let picked: Vec<usize> = (0..n).map(|i| live[i * live.len() / n.max(1)]).collect();
        let vectors: Vec<&[f32]> = picked.iter().map(|&r| table.vector_at(r)).collect();
        // The exact answers, a batch of queries per pass over the table,
        // asking `stop` between batches.
        let mut exact = Vec::with_capacity(n);
        for batch in vectors.chunks(32) {
            if stop() {
                return None;
            }
            exact.extend(table.top_k_batch(batch, metric, k + 1, &|_| true));
        }
        let started = Instant::now();
        let found: Vec<Vec<Hit>> = vectors
            .par_iter()
            .zip(&picked)
            .map(|(q, &own)| self.search(table, q, metric, k, probes, None, &|r| r != own))
            .collect();
        let secs = started.elapsed().as_secs_f64();
        let (mut hit, mut total) = (0usize, 0usize);
        for ((row, exact), found) in picked.iter().zip(&exact).zip(&found) {
            let truth: Vec<usize> = exact
                .iter()
                .map(|h| h.row)
                .filter(|r| r != row)
                .take(k)
                .collect();
            let got: Vec<usize> = found
                .iter()
                .map(|h| h.row)
                .filter(|r| r != row)
                .take(k)
                .collect();
            total += truth.len();
            hit += truth.iter().filter(|r| got.contains(r)).count();
        }
        Some(Measurement {
            k,
            recall: if total == 0 {
                1.0
            } else {
                hit as f64 / total as f64
            },
            queries: n,
            qps: if secs > 0.0 { n as f64 / secs } else { 0.0 },
            probes: probes
                .unwrap_or(self.params.probes)
                .clamp(1, self.lists.len()),
            metric,
            at_ms: now_ms,
        })
    }

    /// Figures on the index.
    pub fn stats(&self) -> IvfStats {
        let sizes: Vec<usize> = self.lists.iter().map(|l| l.rows.len()).collect();
        let lists = sizes.len().max(1);
        let mean = self.len as f64 / lists as f64;
        // A row sits in a list of size s with probability s / n; the mean
        // size such a row's search scans, over the mean size.
        let scanned: f64 =
            sizes.iter().map(|&s| (s * s) as f64).sum::<f64>() / self.len.max(1) as f64;
        let dim = self.centroids.dim;
        let per_row = dim + 4 + 4 + 4 + 4 + 4;
        let bytes = self.len * per_row + self.centroids.len() * (dim * 4 + 28);
        IvfStats {
            rows: self.len,
            lists: sizes.len(),
            smallest: sizes.iter().copied().min().unwrap_or(0),
            largest: sizes.iter().copied().max().unwrap_or(0),
            imbalance: if mean > 0.0 { scanned / mean } else { 1.0 },
            trained_on: self.trained_on,
            bytes_per_row: per_row as f64,
            bytes,
        }
    }

    /// Whether the index should be retrained: the lists drifted apart (a
    /// search scans over twice the rows it scanned when the index was
    /// built), or the rows grew fourfold since training.
    pub fn wants_retraining(&self) -> bool {
        let s = self.stats();
        s.imbalance > 2.0 * self.built_imbalance.max(1.0)
            || (s.rows > 4 * s.trained_on.max(1) && s.rows >= self.params.lists * 8)
    }

    /// Checks the index against `table`: every live row in exactly one list,
    /// the nearest centroid's, with the codes of its current vector. A
    /// message names the first row that is not.
    ///
    /// # Errors
    /// The first mismatch found.
    pub fn check(&self, table: &VectorTable) -> Result<(), String> {
        let dim = self.centroids.dim;
        let mut code = vec![0i8; dim];
        let mut seen = 0;
        for (row, id, v) in table.iter() {
            let list = self.list_of.get(row).copied().unwrap_or(NONE);
            if list == NONE {
                return Err(format!("row {row} ('{id}') is in no list"));
            }
            let near = self.centroids.nearest(v);
            if near != list {
                return Err(format!(
                    "row {row} ('{id}') is in list {list}, its nearest centroid is {near}"
                ));
            }
            let at = self.pos[row] as usize;
            let l = &self.lists[list as usize];
            let scale = encode(v, &mut code);
            if l.rows.get(at) != Some(&(row as u32))
                || l.codes[at * dim..(at + 1) * dim] != code[..]
                || l.scales[at] != scale
            {
                return Err(format!("row {row} ('{id}') has a stale entry"));
            }
            seen += 1;
        }
        let listed: usize = self.lists.iter().map(|l| l.rows.len()).sum();
        if listed != seen || self.len != seen {
            return Err(format!(
                "{listed} rows listed and {} counted for {seen} live rows",
                self.len
            ));
        }
        Ok(())
    }
}

/// Higher score first, then the lower list.
fn best_first(a: &(f64, u32), b: &(f64, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The best candidates by approximate score, admitted by a filter asked
/// lazily: only rows that rank among the best so far are asked.
struct Candidates {
    want: usize,
    cap: usize,
    floor: f32,
    /// (score, row, admitted already).
    items: Vec<(f32, u32, bool)>,
}

impl Candidates {
    fn new(want: usize) -> Candidates {
        let cap = want.saturating_mul(4).max(64);
        Candidates {
            want,
            cap,
            floor: f32::NEG_INFINITY,
            items: Vec::with_capacity(cap),
        }
    }

    #[inline]
    fn push(&mut self, score: f32, row: u32, keep: &(dyn Fn(usize) -> bool + Sync)) {
        if score < self.floor || score.is_nan() {
            return;
        }
        self.items.push((score, row, false));
        if self.items.len() >= self.cap {
            self.cut(keep);
        }
    }

    /// Sorts best first and keeps the first `want` that `keep` admits.
    fn cut(&mut self, keep: &(dyn Fn(usize) -> bool + Sync)) {
        self.items
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        admit_first(
            &mut self.items,
            self.want,
            |(_, row, asked)| (*row as usize, asked),
            keep,
        );
        if self.items.len() == self.want {
            self.floor = self.items.last().map_or(self.floor, |c| c.0);
        }
    }

    /// How many candidates the filter admits so far (up to `want`).
    fn admitted(&mut self, keep: &(dyn Fn(usize) -> bool + Sync)) -> usize {
        self.cut(keep);
        self.items.len()
    }

    fn finish(mut self, keep: &(dyn Fn(usize) -> bool + Sync)) -> Vec<u32> {
        self.cut(keep);
        self.items.into_iter().map(|(_, row, _)| row).collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// `n` vectors around `centers` random centres (spread `spread`), or
    /// uniform in the cube when `centers` is 0.
    fn data(n: usize, dim: usize, centers: usize, spread: f32, seed: u64) -> VectorTable {
        let mut rng = StdRng::seed_from_u64(seed);
        let cs: Vec<Vec<f32>> = (0..centers)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let mut t = VectorTable::new(dim);
        for i in 0..n {
            let v: Vec<f32> = if centers == 0 {
                (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect()
            } else {
                let c = &cs[rng.random_range(0..centers)];
                c.iter()
                    .map(|x| x + spread * rng.random_range(-1.0f32..1.0))
                    .collect()
            };
            t.set(&format!("u{i:06}"), Some(&v));
        }
        t
    }

    /// The naive top k: every live row scored in f64 one element at a time.
    fn naive(
        t: &VectorTable,
        q: &[f32],
        m: Metric,
        k: usize,
        keep: impl Fn(usize) -> bool,
    ) -> Vec<String> {
        let mut all: Vec<(f64, String)> = t
            .iter()
            .filter(|(r, _, _)| keep(*r))
            .filter_map(|(_, id, v)| {
                super::super::kernels::score_scalar(m, q, v).map(|s| (s, id.to_owned()))
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|(_, id)| id).collect()
    }

    fn recall(t: &VectorTable, ivf: &Ivf, m: Metric, probes: usize, queries: &[Vec<f32>]) -> f64 {
        let (mut hit, mut total) = (0, 0);
        for q in queries {
            let truth = naive(t, q, m, 10, |_| true);
            let got: Vec<String> = ivf
                .search(t, q, m, 10, Some(probes), None, &|_| true)
                .iter()
                .filter_map(|h| t.id(h.row).map(str::to_owned))
                .collect();
            total += truth.len();
            hit += truth.iter().filter(|id| got.contains(id)).count();
        }
        hit as f64 / total as f64
    }

    #[test]
    fn recall_on_clustered_and_uniform_data() -> Result<(), String> {
        let params = IvfParams {
            lists: 64,
            probes: 8,
            rerank: 4,
        };
        let mut rng = StdRng::seed_from_u64(9);
        for (centers, spread, probes, floor) in [(40, 0.15, 8, 0.95), (0, 0.0, 24, 0.9)] {
            let t = data(20_000, 24, centers, spread, 3);
            let ivf = Ivf::build(&t, params, 1)?;
            ivf.check(&t)?;
            let queries: Vec<Vec<f32>> = (0..40)
                .map(|i| {
                    t.vector_at(i * 497)
                        .iter()
                        .map(|x| x + rng.random_range(-0.05..0.05))
                        .collect()
                })
                .collect();
            for m in [Metric::Cosine, Metric::Dot, Metric::L2] {
                let r = recall(&t, &ivf, m, probes, &queries);
                assert!(r >= floor, "{m:?} centers {centers}: recall {r}");
                // Probing every list finds what the exact scan finds, unless
                // the codes misorder candidates beyond the re-rank's reach.
                let all = recall(&t, &ivf, m, params.lists, &queries);
                assert!(all >= 0.99, "{m:?} all lists: {all}");
            }
        }
        Ok(())
    }

    #[test]
    fn probing_every_list_with_a_wide_rerank_is_exact() -> Result<(), String> {
        let t = data(3000, 8, 10, 0.3, 4);
        let mut ivf = Ivf::build(
            &t,
            IvfParams {
                lists: 16,
                probes: 16,
                rerank: 4,
            },
            2,
        )?;
        ivf.set_search(16, MAX_RERANK);
        let mut rng = StdRng::seed_from_u64(1);
        for m in [Metric::Cosine, Metric::Dot, Metric::L2] {
            for _ in 0..10 {
                let q: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0..1.0)).collect();
                let got: Vec<String> = ivf
                    .search(&t, &q, m, 10, None, None, &|_| true)
                    .iter()
                    .filter_map(|h| t.id(h.row).map(str::to_owned))
                    .collect();
                assert_eq!(got, naive(&t, &q, m, 10, |_| true), "{m:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn updates_and_deletes_keep_the_index_equal_to_a_fresh_assignment() -> Result<(), String> {
        let mut t = data(5000, 16, 20, 0.2, 5);
        let mut ivf = Ivf::build(
            &t,
            IvfParams {
                lists: 32,
                probes: 4,
                rerank: 4,
            },
            7,
        )?;
        let mut rng = StdRng::seed_from_u64(2);
        for step in 0..20_000 {
            let id = format!("u{:06}", rng.random_range(0..6000));
            if step % 10 == 0 {
                let row = t.row_of(&id);
                t.remove(&id);
                if let Some(r) = row {
                    ivf.update(&t, r);
                }
            } else {
                // Small moves (an ewma step) and, now and then, a jump.
                let v: Vec<f32> = match t.get(&id) {
                    Some(old) if step % 7 != 0 => old
                        .iter()
                        .map(|x| x + rng.random_range(-0.05..0.05))
                        .collect(),
                    _ => (0..16).map(|_| rng.random_range(-1.0..1.0)).collect(),
                };
                t.set(&id, Some(&v));
                let r = t.row_of(&id).ok_or("set row")?;
                ivf.update(&t, r);
            }
        }
        ivf.check(&t)?;
        // Searches see the current vectors: a user's own vector is its best
        // L2 match.
        for (row, id, v) in t.iter().step_by(97) {
            let hits = ivf.search(&t, v, Metric::L2, 1, None, None, &|_| true);
            assert_eq!(hits.first().map(|h| h.row), Some(row), "{id}");
        }
        Ok(())
    }

    #[test]
    fn nearest_from_equals_the_full_search() -> Result<(), String> {
        let t = data(4000, 12, 30, 0.4, 6);
        let c = Ivf::train(
            &t,
            IvfParams {
                lists: 100,
                probes: 1,
                rerank: 1,
            },
            3,
            &|| false,
        )?;
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..5000 {
            let v: Vec<f32> = (0..12).map(|_| rng.random_range(-1.5..1.5)).collect();
            let from = rng.random_range(0..100u32);
            assert_eq!(c.nearest_from(&v, from), c.nearest(&v));
        }
        Ok(())
    }

    #[test]
    fn filters_and_keep_give_the_exact_filtered_answer_when_every_list_is_probed()
    -> Result<(), String> {
        let t = data(4000, 8, 12, 0.3, 8);
        let mut ivf = Ivf::build(
            &t,
            IvfParams {
                lists: 20,
                probes: 20,
                rerank: 4,
            },
            5,
        )?;
        ivf.set_search(20, MAX_RERANK);
        let within: RoaringBitmap = (0..4000u32).filter(|r| r % 3 == 0).collect();
        let keep = |r: usize| r.is_multiple_of(2);
        let mut rng = StdRng::seed_from_u64(6);
        for m in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let q: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0..1.0)).collect();
            let got: Vec<String> = ivf
                .search(&t, &q, m, 15, None, Some(&within), &keep)
                .iter()
                .filter_map(|h| t.id(h.row).map(str::to_owned))
                .collect();
            let want = naive(&t, &q, m, 15, |r| r % 6 == 0);
            assert_eq!(got, want, "{m:?}");
        }
        Ok(())
    }

    #[test]
    fn encode_round_trips_within_half_a_step() {
        let v = [0.5f32, -1.27, 0.0, 1.27, 0.01];
        let mut code = [0i8; 5];
        let s = encode(&v, &mut code);
        assert_eq!(code[3], 127);
        assert_eq!(code[1], -127);
        for (x, c) in v.iter().zip(code) {
            assert!((x - s * f32::from(c)).abs() <= s / 2.0 + 1e-6);
        }
        assert_eq!(encode(&[0.0; 3], &mut [1i8; 3]), 0.0);
        assert_eq!(encode(&[f32::NAN, 1.0], &mut [0i8; 2]), 0.0);
    }

    #[test]
    fn measure_reports_recall_of_the_index() -> Result<(), String> {
        let t = data(6000, 16, 20, 0.2, 10);
        let ivf = Ivf::build(
            &t,
            IvfParams {
                lists: 32,
                probes: 32,
                rerank: 8,
            },
            1,
        )?;
        let m = ivf
            .measure(&t, Metric::Cosine, 10, 50, None, 1, &|| false)
            .ok_or("stopped")?;
        assert_eq!(m.queries, 50);
        assert!(m.recall >= 0.99, "{m:?}");
        // One probe of 32 lists finds less.
        let one = ivf
            .measure(&t, Metric::Cosine, 10, 50, Some(1), 2, &|| false)
            .ok_or("stopped")?;
        assert!(
            ivf.measure(&t, Metric::Cosine, 10, 50, None, 3, &|| true)
                .is_none()
        );
        assert!(one.recall < m.recall, "{one:?}");
        assert_eq!(one.probes, 1);
        Ok(())
    }
}
