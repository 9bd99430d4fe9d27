//! Differential tests: merges against straightforward references, with events in
//! order, shuffled, and folded through random partial-merge groups.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::cell::Cell;
use super::decayed::value_at;
use super::distinct::Distinct;
use super::keyed::Keyed;
use super::record::{self, Record};
use super::vector::{self, Ewma, SgdStep, VectorValue};
use super::window::{self, Bucket};
use crate::codec::DecodeError;
use crate::value::Value;

type R = Result<(), DecodeError>;

const H: i64 = 3 * 86_400_000;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

/// Random events: times spread over 60 days (so many half-lives), positive values.
fn events(rng: &mut StdRng, n: usize) -> Vec<(i64, f64)> {
    (0..n)
        .map(|_| {
            (
                1_760_000_000_000 + rng.random_range(0..60 * 86_400_000i64),
                rng.random_range(0.01..500.0),
            )
        })
        .collect()
}

fn record_operand(i: usize, t: i64, x: f64) -> Vec<u8> {
    let label = if i.is_multiple_of(3) { 1.0 } else { 0.0 };
    Record::from_cells([
        (
            0,
            Cell::Meta {
                first: t,
                last: t,
                events: 1,
            },
        ),
        (1, Cell::Count(1)),
        (2, Cell::Sum(x)),
        (3, Cell::Min(x)),
        (4, Cell::Max(x)),
        (5, Cell::Last { ts: t, value: x }),
        (6, Cell::Decayed { h: H, t, s: x }),
        (
            7,
            Cell::DecayedAvg {
                h: H,
                t,
                sx: x,
                sw: 1.0,
            },
        ),
        (
            8,
            Cell::Beta {
                h: H,
                t,
                a: label,
                b: 1.0 - label,
            },
        ),
        (
            9,
            Cell::Attr {
                ts: t,
                value: Value::Float(x),
            },
        ),
        (10, Cell::Distinct(Distinct::single(distinct_hash(x)))),
        (11, Cell::Keyed(Keyed::single(H, 8, t, keyed_key(x), x))),
        (12, Cell::Keyed(Keyed::single(0, 3, 0, keyed_key(x), 1.0))),
    ])
    .encode()
}

/// The key of an event for the keyed cells: one of 7.
fn keyed_key(x: f64) -> String {
    format!("k{}", distinct_key(x) % 7)
}

/// The distinct count's value of an event: a tenth of its value, rounded
/// down, so that some repeat.
fn distinct_key(x: f64) -> i64 {
    (x / 10.0) as i64
}

fn distinct_hash(x: f64) -> u64 {
    super::distinct::hash_value(&Value::Int(distinct_key(x))).expect("an int hashes")
}

/// Folds `ops` through random groups of partial merges, then one full merge.
fn grouped<F, P>(
    rng: &mut StdRng,
    ops: &[Vec<u8>],
    partial: P,
    full: F,
) -> Result<Vec<u8>, DecodeError>
where
    P: Fn(&[&[u8]]) -> Result<Vec<u8>, DecodeError>,
    F: Fn(Option<&[u8]>, &[&[u8]]) -> Result<Vec<u8>, DecodeError>,
{
    let mut folded = Vec::new();
    let mut i = 0;
    while i < ops.len() {
        let n = rng.random_range(1..=8).min(ops.len() - i);
        let group: Vec<&[u8]> = ops[i..i + n].iter().map(Vec::as_slice).collect();
        folded.push(partial(&group)?);
        i += n;
    }
    // Use the first group as the base value, the rest as operands.
    let (base, rest) = folded
        .split_first()
        .map_or((None, &[][..]), |(b, r)| (Some(b.as_slice()), r));
    let rest: Vec<&[u8]> = rest.iter().map(Vec::as_slice).collect();
    full(base, &rest)
}

fn check_record(bytes: &[u8], evs: &[(i64, f64)], as_of: i64) -> R {
    let rec = Record::decode(bytes)?;
    let decay = |t: i64| (-((as_of - t) as f64) / H as f64).exp2();
    let count = evs.len() as f64;
    let sum: f64 = evs.iter().map(|e| e.1).sum();
    let min = evs.iter().map(|e| e.1).fold(f64::INFINITY, f64::min);
    let max = evs.iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
    let last = evs
        .iter()
        .copied()
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|e| e.1)
        .unwrap_or(f64::NAN);
    let dsum: f64 = evs.iter().map(|&(t, x)| x * decay(t)).sum();
    let dw: f64 = evs.iter().map(|&(t, _)| decay(t)).sum();
    let da: f64 = evs
        .iter()
        .enumerate()
        .filter(|(i, _)| i.is_multiple_of(3))
        .map(|(_, &(t, _))| decay(t))
        .sum();
    match rec.cell(1) {
        Some(Cell::Count(n)) => assert_eq!(*n as f64, count),
        other => panic!("count cell {other:?}"),
    }
    match rec.cell(2) {
        Some(Cell::Sum(s)) => assert!(close(*s, sum, 1e-9), "sum {s} vs {sum}"),
        other => panic!("sum cell {other:?}"),
    }
    assert_eq!(rec.cell(3), Some(&Cell::Min(min)));
    assert_eq!(rec.cell(4), Some(&Cell::Max(max)));
    match rec.cell(5) {
        Some(Cell::Last { value, .. }) => assert_eq!(*value, last),
        other => panic!("last cell {other:?}"),
    }
    match rec.cell(6) {
        Some(Cell::Decayed { t, s, .. }) => {
            let v = value_at(*s, *t, as_of, H);
            assert!(close(v, dsum, 1e-9), "decayed sum {v} vs {dsum}");
        }
        other => panic!("decayed cell {other:?}"),
    }
    match rec.cell(7) {
        Some(Cell::DecayedAvg { t, sx, sw, .. }) => {
            let v = value_at(*sx, *t, as_of, H) / value_at(*sw, *t, as_of, H);
            assert!(
                close(v, dsum / dw, 1e-9),
                "decayed avg {v} vs {}",
                dsum / dw
            );
        }
        other => panic!("decayed avg cell {other:?}"),
    }
    match rec.cell(8) {
        Some(Cell::Beta { t, a, b, .. }) => {
            let (a, b) = (value_at(*a, *t, as_of, H), value_at(*b, *t, as_of, H));
            assert!(close(a, da, 1e-9), "beta successes {a} vs {da}");
            assert!(close(b, dw - da, 1e-9), "beta failures {b} vs {}", dw - da);
        }
        other => panic!("beta cell {other:?}"),
    }
    match rec.cell(9) {
        Some(Cell::Attr { value, .. }) => assert_eq!(*value, Value::Float(last)),
        other => panic!("attr cell {other:?}"),
    }
    let mut keys: Vec<i64> = evs.iter().map(|e| distinct_key(e.1)).collect();
    keys.sort_unstable();
    keys.dedup();
    match rec.cell(10) {
        Some(Cell::Distinct(d)) => assert_eq!(d.count(), keys.len() as u64),
        other => panic!("distinct cell {other:?}"),
    }
    // Seven keys, eight kept: the decayed sums per key, exactly.
    let mut per_key: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for &(t, x) in evs {
        let e = per_key.entry(keyed_key(x)).or_default();
        e.0 += x * decay(t);
        e.1 += 1.0;
    }
    match rec.cell(11) {
        Some(Cell::Keyed(k)) => {
            assert_eq!(k.err, 0.0);
            let got = k.values_at(as_of);
            assert_eq!(got.len(), per_key.len());
            for (key, x) in got {
                let want = per_key[&key].0;
                assert!(close(x, want, 1e-9), "keyed {key}: {x} vs {want}");
            }
        }
        other => panic!("keyed cell {other:?}"),
    }
    // Seven keys, three kept: each count within the state's bound below
    // its true count, and every key left out at most the bound.
    match rec.cell(12) {
        Some(Cell::Keyed(k)) => {
            assert!(k.entries.len() <= 3);
            let kept: f64 = k.entries.iter().map(|e| e.1).sum();
            assert!(k.err <= (evs.len() as f64 - kept) / 4.0 + 1e-9);
            for (key, (_, n)) in &per_key {
                let got = k.entries.iter().find(|e| e.0 == *key).map_or(0.0, |e| e.1);
                assert!(got <= *n && n - got <= k.err + 1e-9, "{key}: {got} of {n}");
            }
        }
        other => panic!("bounded keyed cell {other:?}"),
    }
    Ok(())
}

#[test]
fn record_merge_is_order_and_grouping_independent() -> R {
    let mut rng = StdRng::seed_from_u64(1);
    for round in 0..40 {
        let n = rng.random_range(1..200);
        let mut evs = events(&mut rng, n);
        let ops: Vec<Vec<u8>> = evs
            .iter()
            .enumerate()
            .map(|(i, &(t, x))| record_operand(i, t, x))
            .collect();
        let as_of =
            evs.iter().map(|e| e.0).max().unwrap_or(0) + rng.random_range(0..10 * 86_400_000);

        let in_order = record::full_merge(None, ops.iter().map(Vec::as_slice))?;
        check_record(&in_order, &evs, as_of)?;

        let mut idx: Vec<usize> = (0..ops.len()).collect();
        idx.shuffle(&mut rng);
        let shuffled = record::full_merge(None, idx.iter().map(|&i| ops[i].as_slice()))?;
        check_record(&shuffled, &evs, as_of)?;

        let shuffled_ops: Vec<Vec<u8>> = idx.iter().map(|&i| ops[i].clone()).collect();
        let grouped = grouped(
            &mut rng,
            &shuffled_ops,
            |g| record::partial_merge(g.iter().copied()),
            |b, r| record::full_merge(b, r.iter().copied()),
        )?;
        check_record(&grouped, &evs, as_of)?;

        // Cell by cell, as a history replay merges a write's changes.
        let mut by_cell = record::Record::default();
        for &i in &idx {
            let op = record::Record::decode(&ops[i])?;
            for id in op.ids() {
                if let Some(cell) = op.cell(id) {
                    by_cell.merge_cell(id, cell.clone())?;
                }
            }
        }
        by_cell.finalize();
        check_record(&by_cell.encode(), &evs, as_of)?;
        evs.clear();
        assert!(round < 40);
    }
    Ok(())
}

#[test]
fn compact_single_event_forms_round_trip_exactly() -> R {
    for x in [0.0, -3.25, 1e100, f64::MIN_POSITIVE] {
        let b = Bucket::single(x);
        let bytes = b.encode();
        assert_eq!(bytes.len(), 9);
        assert_eq!(Bucket::decode(&bytes)?, b);
    }
    let mut two = Bucket::single(2.0);
    two.merge(&Bucket::single(2.0));
    assert_eq!(Bucket::decode(&two.encode())?, two);
    let single = Ewma::single(H, 5, &[0.1, -2.5, 3.0]);
    let mut merged = single.clone();
    merged.merge(&Ewma::single(H, 9, &[1.0, 1.0, 1.0]))?;
    for e in [single, merged] {
        let bytes = Record::from_cells([(4, Cell::Ewma(e.clone()))]).encode();
        assert_eq!(Record::decode(&bytes)?.cell(4), Some(&Cell::Ewma(e)));
    }
    Ok(())
}

#[test]
fn forget_discards_older_state_in_any_grouping() -> R {
    let a = record_operand(0, 1_000, 5.0);
    let forget = Record::forget(2).encode();
    let b = record_operand(1, 2_000, 7.0);
    // [a, forget(2), b]: sum (id 2) must be 7 only; count (id 1) 2.
    let direct = Record::decode(&record::full_merge(None, [&a[..], &forget, &b])?)?;
    let left = record::partial_merge([&a[..], &forget])?;
    let via_left = Record::decode(&record::full_merge(None, [&left[..], &b])?)?;
    let right = record::partial_merge([&forget[..], &b])?;
    let via_right = Record::decode(&record::full_merge(Some(&a), [&right[..]])?)?;
    for r in [&direct, &via_left, &via_right] {
        assert_eq!(r.cell(2), Some(&Cell::Sum(7.0)));
        assert_eq!(r.cell(1), Some(&Cell::Count(2)));
    }
    // A forget with nothing after it leaves no entry at all in the final value.
    let gone = Record::decode(&record::full_merge(Some(&a), [&forget[..]])?)?;
    assert_eq!(gone.cell(2), None);
    assert!(!gone.ids().any(|id| id == 2));
    Ok(())
}

#[test]
fn one_operand_onto_nothing_is_the_value_its_merge_with_more_makes() -> R {
    let empty = Record::default().encode();
    let a = record_operand(0, 1_000, 5.0);
    let b = record_operand(1, 2_000, 7.0);
    let forget = Record::forget(2).encode();
    // Plain, with a reset marker (a replaced sum), and a forget alone: each
    // read as the same merge with an empty operand after it reads it.
    let reset = record::partial_merge([&forget[..], &b])?;
    for op in [&a, &reset, &forget] {
        let alone = record::full_merge(None, [op.as_slice()])?;
        let with_more = record::full_merge(None, [op.as_slice(), &empty])?;
        assert_eq!(alone, with_more);
    }
    // By hand: a plain operand is kept as written; forgetting the sum
    // before `b`, with nothing older, reads as `b` (no reset marker left);
    // a forget alone leaves no entry.
    assert_eq!(record::full_merge(None, [a.as_slice()])?, a);
    assert_eq!(
        Record::decode(&record::full_merge(None, [reset.as_slice()])?)?,
        Record::decode(&b)?
    );
    assert_eq!(record::full_merge(None, [forget.as_slice()])?, empty);
    // A bad operand is refused however many there are.
    assert!(record::full_merge(None, [&a[..a.len() - 1]]).is_err());
    Ok(())
}

#[test]
fn window_merge_matches_reference() -> R {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..40 {
        let n = rng.random_range(1..100);
        let xs: Vec<f64> = (0..n).map(|_| rng.random_range(-50.0..50.0)).collect();
        let mut ops: Vec<Vec<u8>> = xs.iter().map(|&x| Bucket::single(x).encode()).collect();
        ops.shuffle(&mut rng);
        let out = grouped(
            &mut rng,
            &ops,
            |g| window::merge(None, g.iter().copied()),
            |b, r| window::merge(b, r.iter().copied()),
        )?;
        let b = Bucket::decode(&out)?;
        let sum: f64 = xs.iter().sum();
        let sumsq: f64 = xs.iter().map(|x| x * x).sum();
        assert_eq!(b.count, n as u64);
        assert!(close(b.sum, sum, 1e-9) || (b.sum - sum).abs() < 1e-9);
        assert!(close(b.sumsq, sumsq, 1e-9));
        assert_eq!(b.min, xs.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(b.max, xs.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        // The sample deviation, two-pass: Σ(x − mean)² / (n − 1).
        let mean = sum / n as f64;
        let two_pass = (n > 1).then(|| {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt()
        });
        match (b.stddev(), two_pass) {
            (Some(got), Some(want)) => assert!(close(got, want, 1e-6), "{got} vs {want}"),
            (got, want) => assert_eq!(got, want),
        }
    }
    Ok(())
}

#[test]
fn ewma_vector_matches_reference() -> R {
    let mut rng = StdRng::seed_from_u64(3);
    let dim = 5;
    for _ in 0..30 {
        let n = rng.random_range(1..100);
        let evs: Vec<(i64, Vec<f32>)> = (0..n)
            .map(|_| {
                let t = 1_760_000_000_000 + rng.random_range(0..30 * 86_400_000i64);
                (
                    t,
                    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
                )
            })
            .collect();
        let mut ops: Vec<Vec<u8>> = evs
            .iter()
            .map(|(t, x)| Record::from_cells([(3, Cell::Ewma(Ewma::single(H, *t, x)))]).encode())
            .collect();
        ops.shuffle(&mut rng);
        let out = grouped(
            &mut rng,
            &ops,
            |g| record::partial_merge(g.iter().copied()),
            |b, r| record::full_merge(b, r.iter().copied()),
        )?;
        let got = match Record::decode(&out)?.cell(3) {
            Some(Cell::Ewma(e)) => e.mean(),
            other => panic!("ewma cell {other:?}"),
        };
        let tmax = evs.iter().map(|e| e.0).max().unwrap_or(0);
        let mut num = vec![0.0f64; dim];
        let mut den = 0.0;
        for (t, x) in &evs {
            let w = (-((tmax - t) as f64) / H as f64).exp2();
            den += w;
            for (a, &b) in num.iter_mut().zip(x) {
                *a += w * f64::from(b);
            }
        }
        for (g, n) in got.iter().zip(&num) {
            let want = n / den;
            assert!(
                (f64::from(*g) - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{g} vs {want}"
            );
        }
    }
    Ok(())
}

#[test]
fn sgd_matches_sequential_reference() -> R {
    let mut rng = StdRng::seed_from_u64(4);
    let dim = 8;
    let steps: Vec<SgdStep> = (0..500)
        .map(|_| SgdStep {
            lr: 0.05,
            l2: 1e-4,
            label: f64::from(rng.random_range(0..2u8)),
            item: (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        })
        .collect();
    // Reference: plain sequential logistic-regression steps.
    let mut u = vec![0.0f64; dim];
    for s in &steps {
        let z: f64 = u.iter().zip(&s.item).map(|(a, &b)| a * f64::from(b)).sum();
        let p = 1.0 / (1.0 + (-z).exp());
        for (a, &b) in u.iter_mut().zip(&s.item) {
            *a += s.lr * ((s.label - p) * f64::from(b) - s.l2 * *a);
        }
    }
    let ops: Vec<Vec<u8>> = steps
        .iter()
        .map(|s| VectorValue::Step(s.clone()).encode())
        .collect();
    // The partial merge declines sgd steps.
    assert_eq!(vector::partial_merge(ops.iter().map(Vec::as_slice))?, None);
    // One full merge, and a chain of full merges over a base (as max_successive_merges does).
    let once = vector::full_merge(None, ops.iter().map(Vec::as_slice))?;
    let mut base: Option<Vec<u8>> = None;
    for chunk in ops.chunks(17) {
        base = Some(vector::full_merge(
            base.as_deref(),
            chunk.iter().map(Vec::as_slice),
        )?);
    }
    for out in [once, base.unwrap_or_default()] {
        let got = VectorValue::decode(&out)?.current().unwrap_or_default();
        for (g, want) in got.iter().zip(&u) {
            assert!(
                (f64::from(*g) - want).abs() <= 1e-6 * want.abs().max(1e-6),
                "{g} vs {want}"
            );
        }
    }
    Ok(())
}

#[test]
fn garbage_never_panics_and_is_an_error() {
    let mut rng = StdRng::seed_from_u64(5);
    let good = record_operand(0, 1, 2.0);
    for n in 0..good.len() {
        assert!(record::full_merge(None, [&good[..n]]).is_err());
    }
    for _ in 0..2000 {
        let n = rng.random_range(0..64);
        let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let _ = record::full_merge(None, [&junk[..]]);
        let _ = window::merge(None, [&junk[..]]);
        let _ = vector::full_merge(Some(&junk), [&junk[..]]);
    }
    assert!(window::merge(None, [&b"\x02\x00"[..]]).is_err());
    // Found by fuzzing: an sgd item element that is a finite f64 but no finite f32
    // must not decode (it used to decode as -inf and re-encode differently).
    let mut step = VectorValue::Step(SgdStep {
        lr: 0.1,
        l2: 0.0,
        label: 1.0,
        item: vec![0.5],
    })
    .encode();
    let n = step.len();
    step[n - 8..].copy_from_slice(&(-1e300f64).to_le_bytes());
    assert!(VectorValue::decode(&step).is_err());
    assert!(vector::full_merge(None, [&b"\x09"[..]]).is_err());
}
