//! Similarity kernels over f32 vectors: cosine, dot and L2.
//!
//! Every metric scores "greater = closer", so one top-k heap serves them all:
//! L2 scores as the negated distance. The SIMD path is SimSIMD, which picks the
//! widest instruction set the CPU has at run time (AVX-512, AVX2, NEON, SVE) and
//! falls back to portable code; the scalar versions here are the reference a
//! test holds it to.

use simsimd::SpatialSimilarity;

/// A similarity metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// cos θ = a·b / (|a| |b|); undefined (NULL) when either vector is zero.
    Cosine,
    /// a·b.
    Dot,
    /// −|a − b|: the Euclidean distance, negated so that greater is closer.
    L2,
}

/// a·b in f64, SIMD where the CPU has it.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    f32::dot(a, b).unwrap_or_else(|| dot_scalar(a, b))
}

/// |a − b|² in f64, SIMD where the CPU has it.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    f32::l2sq(a, b).unwrap_or_else(|| l2sq_scalar(a, b))
}

/// a·b of two int8 codes, exactly (an integer sum), SIMD where the CPU has
/// it (VNNI on AVX-512, AVX2, NEON). Codes hold −127..=127: the IVF index
/// never writes −128, whose magnitude some kernels cannot negate.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    i8::dot(a, b).map_or_else(|| dot_i8_scalar(a, b) as f32, |d| d as f32)
}

/// The dot product of `query` with each of the codes laid one after
/// another in `codes` (each `query.len()` long), into `out`: one pass over a
/// list of the IVF index. Exact integer sums. On x86-64 with AVX2 the loop is
/// compiled for it, with the dot product inlined (no call per row); elsewhere
/// it calls [`dot_i8`] per row. Codes hold −127..=127 (see [`dot_i8`]): the
/// AVX2 kernel multiplies |a| by b with a's sign, which −128 would overflow.
pub fn dot_i8_rows(query: &[i8], codes: &[i8], out: &mut Vec<i32>) {
    out.clear();
    let dim = query.len();
    if dim == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        #[allow(unsafe_code)]
        unsafe {
            x86::dot_i8_rows_avx2(query, codes, out);
        }
        return;
    }
    out.extend(codes.chunks_exact(dim).map(|c| dot_i8(query, c) as i32));
}

/// Rows laid out for finding the one nearest to a point by L2 (the IVF
/// index's centroids: once per changed vector, and for every row when an
/// index is built): blocks of eight rows, dimension by dimension within a
/// block, so that a pass broadcasts each coordinate of the point once per
/// block and keeps eight rows' sums in one register, with no horizontal sum
/// per row. The last block is padded with rows that never win.
#[derive(Debug, Clone, Default)]
pub struct NearestRows {
    dim: usize,
    len: usize,
    /// Block `b`, dimension `d` at `b · dim + d`, one row per lane.
    blocks: Vec<Eight>,
    /// Block `b`'s rows' |c|² at `b`, +∞ for padding.
    norms2: Vec<Eight>,
}

/// Rows per block of [`NearestRows`].
const LANES: usize = 8;

/// Eight floats aligned for one AVX load (an aligned load is a plain read;
/// an unaligned one goes through a copy).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(32))]
struct Eight([f32; LANES]);

impl NearestRows {
    /// The rows of `rows`, each `dim` long, one after another.
    pub fn new(dim: usize, rows: &[f32]) -> NearestRows {
        if dim == 0 {
            return NearestRows::default();
        }
        let len = rows.len() / dim;
        let n_blocks = len.div_ceil(LANES);
        let mut blocks = vec![Eight::default(); n_blocks * dim];
        let mut norms2 = vec![Eight([f32::INFINITY; LANES]); n_blocks];
        for (i, row) in rows.chunks_exact(dim).enumerate() {
            let (b, lane) = (i / LANES, i % LANES);
            for (d, x) in row.iter().enumerate() {
                blocks[b * dim + d].0[lane] = *x;
            }
            norms2[b].0[lane] = row.iter().map(|x| x * x).sum();
        }
        NearestRows {
            dim,
            len,
            blocks,
            norms2,
        }
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The row nearest to `v` (which is `dim` long) by L2, as (row, |c|² −
    /// 2 v·c), ties to the lower row: |v − c|² less |v|², which ranks the
    /// rows alike. Each row's v·c is summed in f32 one dimension after
    /// another with fused multiply-adds, exactly as
    /// [`NearestRows::nearest_scalar`] does, eight rows at a time with AVX2
    /// on x86-64 CPUs that have it. `None` when there are no rows, or when
    /// no distance is less than +∞ (a point with a coordinate that is not
    /// finite).
    pub fn nearest(&self, v: &[f32]) -> Option<(usize, f32)> {
        if self.len == 0 || v.len() != self.dim {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            #[allow(unsafe_code)]
            return unsafe { x86::nearest_fma(v, &self.blocks, &self.norms2) };
        }
        self.nearest_scalar(v)
    }

    /// [`NearestRows::nearest`], one row and one element at a time.
    pub fn nearest_scalar(&self, v: &[f32]) -> Option<(usize, f32)> {
        if self.len == 0 || v.len() != self.dim {
            return None;
        }
        let mut best: Option<(usize, f32)> = None;
        for i in 0..self.len {
            let (b, lane) = (i / LANES, i % LANES);
            let mut acc = 0f32;
            for (d, x) in v.iter().enumerate() {
                acc = x.mul_add(self.blocks[b * self.dim + d].0[lane], acc);
            }
            let dist = self.norms2[b].0[lane] - (acc + acc);
            if dist < best.map_or(f32::INFINITY, |(_, b)| b) {
                best = Some((i, dist));
            }
        }
        best
    }
}

/// [`dot_i8_rows`], one element at a time.
pub fn dot_i8_rows_scalar(query: &[i8], codes: &[i8], out: &mut Vec<i32>) {
    out.clear();
    if !query.is_empty() {
        out.extend(
            codes
                .chunks_exact(query.len())
                .map(|c| dot_i8_scalar(query, c)),
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::{
        __m256, __m256i, _CMP_LT_OQ, _mm256_abs_epi8, _mm256_add_epi32, _mm256_add_ps,
        _mm256_blendv_epi8, _mm256_blendv_ps, _mm256_castps_si256, _mm256_cmp_ps, _mm256_fmadd_ps,
        _mm256_load_ps, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_maddubs_epi16,
        _mm256_set1_epi16, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_ps,
        _mm256_setzero_si256, _mm256_sign_epi8, _mm256_store_ps, _mm256_storeu_si256,
        _mm256_sub_ps,
    };

    use super::{Eight, LANES};

    /// a·b for codes in −127..=127, 32 lanes at a time: |a| (unsigned) times
    /// b with a's sign gives a·b per byte; pairs sum to i16 (at most
    /// 2 · 127 · 127, no saturation), then to i32.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn dot(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let whole = n / 32 * 32;
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 32 <= whole <= the length of both slices, and
            // unaligned loads are allowed.
            let (va, vb) = unsafe {
                (
                    _mm256_loadu_si256(a.as_ptr().add(i).cast::<__m256i>()),
                    _mm256_loadu_si256(b.as_ptr().add(i).cast::<__m256i>()),
                )
            };
            let products = _mm256_maddubs_epi16(_mm256_abs_epi8(va), _mm256_sign_epi8(vb, va));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(products, ones));
            i += 32;
        }
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is 32 bytes; unaligned stores are allowed.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), acc) };
        let mut sum: i32 = lanes.iter().sum();
        for j in whole..n {
            sum += i32::from(a[j]) * i32::from(b[j]);
        }
        sum
    }

    /// [`super::NearestRows::nearest`] compiled for AVX2 and FMA: eight
    /// blocks at a time (eight independent chains of fused multiply-adds,
    /// enough to hide their latency), then the blocks left one at a time.
    /// Each row's sum runs over the dimensions in order, as in the scalar
    /// version, so the two agree exactly.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn nearest_fma(
        v: &[f32],
        blocks: &[Eight],
        norms2: &[Eight],
    ) -> Option<(usize, f32)> {
        let dim = v.len();
        let n_blocks = norms2.len().min(blocks.len() / dim.max(1));
        // Block `b`, dimension `d`: a macro, so that it is inlined even
        // where closures are not.
        macro_rules! load {
            ($b:expr, $d:expr) => {{
                let e: &Eight = &blocks[$b * dim + $d];
                // SAFETY: an `Eight` is 32 bytes aligned to 32.
                unsafe { _mm256_load_ps(e.0.as_ptr()) }
            }};
        }
        let mut best_d = _mm256_set1_ps(f32::INFINITY);
        let mut best_i = _mm256_setzero_si256();
        let mut b = 0;
        while b + 8 <= n_blocks {
            // Eight named accumulators, so that they stay in registers.
            let (mut a0, mut a1, mut a2, mut a3) = (
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
            );
            let (mut a4, mut a5, mut a6, mut a7) = (
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
            );
            for (d, x) in v.iter().enumerate() {
                let x = _mm256_set1_ps(*x);
                a0 = _mm256_fmadd_ps(x, load!(b, d), a0);
                a1 = _mm256_fmadd_ps(x, load!(b + 1, d), a1);
                a2 = _mm256_fmadd_ps(x, load!(b + 2, d), a2);
                a3 = _mm256_fmadd_ps(x, load!(b + 3, d), a3);
                a4 = _mm256_fmadd_ps(x, load!(b + 4, d), a4);
                a5 = _mm256_fmadd_ps(x, load!(b + 5, d), a5);
                a6 = _mm256_fmadd_ps(x, load!(b + 6, d), a6);
                a7 = _mm256_fmadd_ps(x, load!(b + 7, d), a7);
            }
            for (j, a) in [a0, a1, a2, a3, a4, a5, a6, a7].into_iter().enumerate() {
                keep_best(a, &norms2[b + j], b + j, &mut best_d, &mut best_i);
            }
            b += 8;
        }
        while b < n_blocks {
            let mut acc = _mm256_setzero_ps();
            for (d, x) in v.iter().enumerate() {
                acc = _mm256_fmadd_ps(_mm256_set1_ps(*x), load!(b, d), acc);
            }
            keep_best(acc, &norms2[b], b, &mut best_d, &mut best_i);
            b += 1;
        }
        let (mut ds, mut is) = (Eight::default(), [0i32; LANES]);
        // SAFETY: `ds` is 32 bytes aligned to 32; `is` is 32 bytes, and
        // unaligned stores are allowed.
        unsafe {
            _mm256_store_ps(ds.0.as_mut_ptr(), best_d);
            _mm256_storeu_si256(is.as_mut_ptr().cast::<__m256i>(), best_i);
        }
        // Each lane kept its lowest row among its least; the least of all,
        // lowest row first.
        let mut best: Option<(usize, f32)> = None;
        for (d, i) in ds.0.into_iter().zip(is) {
            let better = match best {
                None => d < f32::INFINITY,
                Some((bi, bd)) => d < bd || (d == bd && (i as usize) < bi),
            };
            if better {
                best = Some((i as usize, d));
            }
        }
        best
    }

    /// Folds block `b`'s sums `acc` into each lane's least distance and its
    /// row (a strictly lesser one only, so ties keep the lower row), given
    /// the block's norms.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn keep_best(acc: __m256, norms2: &Eight, b: usize, best_d: &mut __m256, best_i: &mut __m256i) {
        // SAFETY: an `Eight` is 32 bytes aligned to 32.
        let n2 = unsafe { _mm256_load_ps(norms2.0.as_ptr()) };
        let dist = _mm256_sub_ps(n2, _mm256_add_ps(acc, acc));
        let less = _mm256_cmp_ps::<_CMP_LT_OQ>(dist, *best_d);
        let rows = _mm256_add_epi32(
            _mm256_set1_epi32((b * LANES) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        *best_d = _mm256_blendv_ps(*best_d, dist, less);
        *best_i = _mm256_blendv_epi8(*best_i, rows, _mm256_castps_si256(less));
    }

    /// [`super::dot_i8_rows`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_i8_rows_avx2(query: &[i8], codes: &[i8], out: &mut Vec<i32>) {
        out.extend(codes.chunks_exact(query.len()).map(|c| dot(query, c)));
    }
}

/// [`dot_i8`], one element at a time.
pub fn dot_i8_scalar(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum()
}

/// a·b, one element at a time in f64.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// |a − b|², one element at a time in f64.
pub fn l2sq_scalar(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum()
}

/// |a|.
pub fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

/// The score of `b` against the query `a` under `metric`, given both norms
/// (only cosine reads them). `None` for a cosine with a zero vector, or a score
/// that is not finite.
#[inline]
pub fn score(metric: Metric, a: &[f32], a_norm: f64, b: &[f32], b_norm: f64) -> Option<f64> {
    let s = match metric {
        Metric::Dot => dot(a, b),
        Metric::Cosine => {
            if a_norm == 0.0 || b_norm == 0.0 {
                return None;
            }
            (dot(a, b) / (a_norm * b_norm)).clamp(-1.0, 1.0)
        }
        Metric::L2 => -l2sq(a, b).sqrt(),
    };
    s.is_finite().then_some(s)
}

/// [`score`] computed with the scalar kernels alone.
pub fn score_scalar(metric: Metric, a: &[f32], b: &[f32]) -> Option<f64> {
    let s = match metric {
        Metric::Dot => dot_scalar(a, b),
        Metric::Cosine => {
            let (na, nb) = (dot_scalar(a, a).sqrt(), dot_scalar(b, b).sqrt());
            if na == 0.0 || nb == 0.0 {
                return None;
            }
            (dot_scalar(a, b) / (na * nb)).clamp(-1.0, 1.0)
        }
        Metric::L2 => -l2sq_scalar(a, b).sqrt(),
    };
    s.is_finite().then_some(s)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn close(simd: f64, scalar: f64, scale: f64) -> bool {
        (simd - scalar).abs() <= 1e-5 * scale.max(1e-30)
    }

    #[test]
    fn simd_agrees_with_scalar_at_every_dimension() {
        let mut rng = StdRng::seed_from_u64(1);
        // Dimensions around and between the lane widths (4, 8, 16).
        for dim in (1..=70).chain([127, 128, 129, 255, 257, 1000, 1023]) {
            for _ in 0..20 {
                let a: Vec<f32> = (0..dim).map(|_| rng.random_range(-2.0..2.0)).collect();
                let b: Vec<f32> = (0..dim).map(|_| rng.random_range(-2.0..2.0)).collect();
                // Relative to the magnitudes summed, which bounds the rounding error.
                let mag = dot_scalar(
                    &a.iter().map(|x| x.abs()).collect::<Vec<_>>(),
                    &b.iter().map(|x| x.abs()).collect::<Vec<_>>(),
                );
                assert!(
                    close(dot(&a, &b), dot_scalar(&a, &b), mag),
                    "dot, dim {dim}"
                );
                let l = l2sq_scalar(&a, &b);
                assert!(close(l2sq(&a, &b), l, l), "l2sq, dim {dim}");
                for m in [Metric::Cosine, Metric::Dot, Metric::L2] {
                    let s = score(m, &a, norm(&a), &b, norm(&b));
                    let r = score_scalar(m, &a, &b);
                    let scale = match m {
                        Metric::Cosine => 1.0,
                        Metric::Dot => mag,
                        Metric::L2 => l.sqrt(),
                    };
                    match (s, r) {
                        (Some(s), Some(r)) => {
                            assert!(close(s, r, scale), "{m:?} dim {dim}: {s} vs {r}")
                        }
                        other => panic!("{m:?} dim {dim}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn int8_dot_is_exact_at_every_dimension() {
        let mut rng = StdRng::seed_from_u64(5);
        for dim in (1..=70).chain([127, 128, 129, 255, 256, 257, 1000, 4096]) {
            for _ in 0..20 {
                let a: Vec<i8> = (0..dim).map(|_| rng.random_range(-127..=127)).collect();
                let b: Vec<i8> = (0..dim).map(|_| rng.random_range(-127..=127)).collect();
                assert_eq!(dot_i8(&a, &b), dot_i8_scalar(&a, &b) as f32, "dim {dim}");
            }
            // Many rows in one pass.
            let a: Vec<i8> = (0..dim).map(|_| rng.random_range(-127..=127)).collect();
            let rows: Vec<i8> = (0..dim * 9).map(|_| rng.random_range(-127..=127)).collect();
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            dot_i8_rows(&a, &rows, &mut fast);
            dot_i8_rows_scalar(&a, &rows, &mut slow);
            assert_eq!(fast, slow, "rows, dim {dim}");
            assert_eq!(fast.len(), 9);
            // The extremes: every lane at its largest product.
            let top = vec![127i8; dim];
            let bottom = vec![-127i8; dim];
            assert_eq!(dot_i8(&top, &bottom), -(16_129 * dim as i32) as f32);
            assert_eq!(dot_i8(&bottom, &bottom), (16_129 * dim as i32) as f32);
            let both: Vec<i8> = top.iter().chain(&bottom).copied().collect();
            let mut out = Vec::new();
            dot_i8_rows(&bottom, &both, &mut out);
            assert_eq!(out, [-16_129 * dim as i32, 16_129 * dim as i32]);
        }
    }

    #[test]
    fn nearest_rows_equals_its_scalar_version_and_the_nearest_up_to_rounding() {
        let mut rng = StdRng::seed_from_u64(8);
        // Row counts around the block (8) and the eight-block group (64).
        for dim in [1, 3, 8, 13, 64, 128, 129] {
            for len in [1, 7, 8, 9, 63, 64, 65, 130] {
                let rows: Vec<f32> = (0..dim * len)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let near = NearestRows::new(dim, &rows);
                assert_eq!(near.len(), len);
                for _ in 0..10 {
                    let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let got = near.nearest(&v);
                    // Bit for bit: the same sums in the same order.
                    assert_eq!(
                        got.map(|(i, d)| (i, d.to_bits())),
                        near.nearest_scalar(&v).map(|(i, d)| (i, d.to_bits())),
                        "dim {dim}, {len} rows"
                    );
                    let (got, _) = got.unwrap_or((usize::MAX, 0.0));
                    // The reference: f64 distances, one element at a time.
                    let d: Vec<f64> = rows.chunks(dim).map(|c| l2sq_scalar(&v, c)).collect();
                    let best = d.iter().copied().fold(f64::INFINITY, f64::min);
                    assert!(
                        d[got] <= best + 1e-4 * best.max(1.0),
                        "dim {dim}, {len} rows: {} vs {best}",
                        d[got]
                    );
                }
            }
        }
        assert_eq!(NearestRows::new(1, &[]).nearest(&[1.0]), None);
        assert_eq!(NearestRows::new(2, &[1.0, 0.0]).nearest(&[1.0]), None);
        assert_eq!(NearestRows::new(1, &[1.0]).nearest(&[f32::NAN]), None);
        // Ties go to the lower row, within a block, across blocks and
        // across groups of eight blocks: rows 3, 11 and 75 are all (1, 0)
        // and every other row is farther.
        let mut rows = vec![5.0f32; 2 * 80];
        for r in [3, 11, 75] {
            rows[2 * r] = 1.0;
            rows[2 * r + 1] = 0.0;
        }
        let near = NearestRows::new(2, &rows);
        assert_eq!(near.nearest(&[1.0, 0.0]).map(|r| r.0), Some(3));
        assert_eq!(near.nearest_scalar(&[1.0, 0.0]).map(|r| r.0), Some(3));
        rows[2 * 3] = 5.0;
        let near = NearestRows::new(2, &rows);
        assert_eq!(near.nearest(&[1.0, 0.0]).map(|r| r.0), Some(11));
    }

    #[test]
    fn hand_computed_scores() {
        let a = [1.0f32, 2.0, 2.0];
        let b = [2.0f32, 0.0, 0.0];
        assert_eq!(score(Metric::Dot, &a, 3.0, &b, 2.0), Some(2.0));
        assert_eq!(score(Metric::Cosine, &a, 3.0, &b, 2.0), Some(2.0 / 6.0));
        // |a − b|² = 1 + 4 + 4.
        assert_eq!(score(Metric::L2, &a, 3.0, &b, 2.0), Some(-3.0));
        assert_eq!(norm(&a), 3.0);
    }

    #[test]
    fn zero_vectors_have_no_cosine() {
        let z = [0.0f32; 5];
        let a = [1.0f32, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(score(Metric::Cosine, &z, 0.0, &a, 1.0), None);
        assert_eq!(score(Metric::Cosine, &a, 1.0, &z, 0.0), None);
        assert_eq!(score_scalar(Metric::Cosine, &z, &z), None);
        assert_eq!(score(Metric::Dot, &z, 0.0, &a, 1.0), Some(0.0));
    }
}
