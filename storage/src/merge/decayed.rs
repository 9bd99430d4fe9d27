//! Decayed sums in the order-independent (s, t_ref) form.
//!
//! A decayed sum with half-life h is S(T) = Σ xᵢ·2^(−(T−tᵢ)/h). It is stored as a
//! pair (s, t_ref) meaning S(T) = s·2^(−(T−t_ref)/h). Two pairs combine by moving
//! both to the later reference time: every factor is ≤ 1, so nothing overflows,
//! and the combination is associative and commutative, so events that arrive late
//! or out of order give the same state as events in order (up to float rounding).
//!
//! Several sums that decay together (an EWMA's numerator and denominator, a beta's
//! successes and failures, a vector's components) share one reference time.

/// The factor 2^(−dt/h) for a non-negative gap `dt_ms`. Computed in f64 from the
/// exact difference (an i128 one when i64 overflows), so extreme timestamps neither
/// overflow nor produce NaN: a huge gap gives 0, never a negative or infinite factor.
#[inline]
pub fn decay_factor(later: i64, earlier: i64, half_life_ms: i64) -> f64 {
    // Both conversions round the same integer to nearest, so they agree.
    let dt = match later.checked_sub(earlier) {
        Some(d) => d.max(0) as f64,
        None => (i128::from(later) - i128::from(earlier)).max(0) as f64,
    };
    let h = half_life_ms.max(1) as f64;
    (-dt / h).exp2()
}

/// Moves `vals`, referenced at `t`, to the later time `to`.
#[inline]
pub fn rescale(vals: &mut [f64], t: i64, to: i64, half_life_ms: i64) {
    if to != t {
        let f = decay_factor(to, t, half_life_ms);
        for v in vals {
            *v *= f;
        }
    }
}

/// Combines two groups of sums that share a half-life: returns the later reference
/// time and leaves the combined sums in `a`.
#[inline]
pub fn combine(a: &mut [f64], ta: i64, b: &[f64], tb: i64, half_life_ms: i64) -> i64 {
    let t = ta.max(tb);
    let fa = decay_factor(t, ta, half_life_ms);
    let fb = decay_factor(t, tb, half_life_ms);
    for (x, y) in a.iter_mut().zip(b) {
        *x = *x * fa + *y * fb;
    }
    t
}

/// A stored sum read at time `as_of`. A reference time later than `as_of` reads at the
/// reference time: the value never grows backwards and stays finite.
#[inline]
pub fn value_at(s: f64, t_ref: i64, as_of: i64, half_life_ms: i64) -> f64 {
    if as_of <= t_ref {
        s
    } else {
        s * decay_factor(as_of, t_ref, half_life_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_after_one_half_life() {
        let h = 1000;
        assert!((value_at(8.0, 0, 1000, h) - 4.0).abs() < 1e-12);
        assert!((value_at(8.0, 0, 3000, h) - 1.0).abs() < 1e-12);
        // Reading before the reference time never grows the value.
        assert_eq!(value_at(8.0, 5000, 0, h), 8.0);
    }

    #[test]
    fn extreme_times_stay_finite() {
        let lo = crate::time::MIN_TS;
        let hi = crate::time::MAX_TS;
        let mut a = [1.0];
        let t = combine(&mut a, lo, &[2.0], hi, 1);
        assert_eq!(t, hi);
        assert_eq!(a[0], 2.0);
        let v = value_at(1.0, i64::MIN, i64::MAX, 1);
        assert!(v.is_finite() && v >= 0.0);
    }

    #[test]
    fn gaps_equal_their_wide_difference() {
        // The factor of the exact gap, computed the slow way.
        let wide = |later: i64, earlier: i64, h: i64| {
            let dt = (i128::from(later) - i128::from(earlier)).max(0) as f64;
            (-dt / h.max(1) as f64).exp2()
        };
        let times = [
            i64::MIN,
            i64::MIN + 1,
            -(1 << 53) - 1,
            -1,
            0,
            1,
            (1 << 53) + 1,
            1_796_000_000_123,
            i64::MAX - 1,
            i64::MAX,
        ];
        for &a in &times {
            for &b in &times {
                for h in [1, 1000, 604_800_000] {
                    assert_eq!(
                        decay_factor(a, b, h).to_bits(),
                        wide(a, b, h).to_bits(),
                        "{a} {b} {h}"
                    );
                }
            }
        }
    }
}
