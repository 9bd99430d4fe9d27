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

/// The row of `rows` (each `v.len()` long, one after another) nearest to
/// `v` by L2, given each row's squared norm in `norms2`, as (row, |c|² −
/// 2 v·c), ties to the lower row: |v − c|² less |v|², which ranks the rows
/// alike. In f32, with fused multiply-adds on x86-64 CPUs that have AVX2
/// and FMA (the IVF index's nearest centroid, once per changed vector).
/// `None` when there are no rows.
pub fn nearest_row(v: &[f32], rows: &[f32], norms2: &[f32]) -> Option<(usize, f32)> {
    if v.is_empty() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        #[allow(unsafe_code)]
        return unsafe { x86::nearest_row_fma(v, rows, norms2) };
    }
    nearest_row_with(v, rows, norms2, |a, b| {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    })
}

/// [`nearest_row`] with the dot product `dot`.
#[inline(always)]
fn nearest_row_with(
    v: &[f32],
    rows: &[f32],
    norms2: &[f32],
    dot: impl Fn(&[f32], &[f32]) -> f32,
) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, (c, n2)) in rows.chunks_exact(v.len()).zip(norms2).enumerate() {
        let d = n2 - 2.0 * dot(v, c);
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best
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
        __m256i, _mm256_abs_epi8, _mm256_add_epi32, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_maddubs_epi16, _mm256_set1_epi16, _mm256_setzero_si256, _mm256_sign_epi8,
        _mm256_storeu_si256,
    };

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

    /// a·b in f32, eight lanes of fused multiply-adds, for
    /// [`nearest_row_fma`] to inline.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for j in 0..8 {
                acc[j] = x[j].mul_add(y[j], acc[j]);
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rb) {
            sum = x.mul_add(*y, sum);
        }
        sum
    }

    /// [`super::nearest_row`] compiled for AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn nearest_row_fma(
        v: &[f32],
        rows: &[f32],
        norms2: &[f32],
    ) -> Option<(usize, f32)> {
        super::nearest_row_with(v, rows, norms2, |a, b| dot_f32(a, b))
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
    fn nearest_row_finds_the_nearest_up_to_rounding() {
        let mut rng = StdRng::seed_from_u64(8);
        for dim in [1, 3, 8, 13, 64, 128, 129] {
            for _ in 0..50 {
                let rows: Vec<f32> = (0..dim * 40).map(|_| rng.random_range(-1.0..1.0)).collect();
                let norms2: Vec<f32> = rows
                    .chunks(dim)
                    .map(|c| c.iter().map(|x| x * x).sum())
                    .collect();
                let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                let (got, _) = nearest_row(&v, &rows, &norms2).unwrap_or((usize::MAX, 0.0));
                // The reference: f64 distances, one element at a time.
                let d: Vec<f64> = rows.chunks(dim).map(|c| l2sq_scalar(&v, c)).collect();
                let best = d.iter().copied().fold(f64::INFINITY, f64::min);
                assert!(
                    d[got] <= best + 1e-4 * best.max(1.0),
                    "dim {dim}: {} vs {best}",
                    d[got]
                );
            }
        }
        assert_eq!(nearest_row(&[1.0], &[], &[]), None);
        // Ties go to the lower row.
        assert_eq!(
            nearest_row(&[0.0, 0.0], &[1.0, 0.0, 0.0, 1.0], &[1.0, 1.0]).map(|r| r.0),
            Some(0)
        );
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
