//! Key layout. Every data key starts with the user id and a 0x00 terminator, so
//! one user's keys are contiguous in every column family (a user delete reads
//! one range per family) and users sort by id. Numbers are big-endian so keys
//! sort numerically; bucket times have their sign bit flipped so negative times
//! sort before positive ones.
//!
//! | column family | key |
//! |---|---|
//! | attributes, features | `user 0x00` |
//! | vectors | `user 0x00 def_id:u32` |
//! | windows | `user 0x00 def_id:u32 bucket_start:i64` |

use crate::error::{Error, Result};

/// Longest accepted user id, in bytes.
pub const MAX_USER_LEN: usize = 256;

/// Checks a new user id: non-empty UTF-8 of at most 256 bytes, without control
/// characters (so no id can carry a terminal escape sequence or a NUL, which
/// ends an id in every key).
///
/// # Errors
/// [`Error::InvalidArgument`] saying why.
pub fn check_user(user: &str) -> Result<()> {
    check_stored_user(user)?;
    if let Some((at, c)) = user.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Error::invalid(format!(
            "user id contains the control character U+{:04X} at byte {at}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Checks an id that may name a stored user: non-empty, at most 256 bytes, no
/// NUL. Looking up and deleting use this, not [`check_user`], so that a user
/// stored before control characters were refused can still be deleted.
///
/// # Errors
/// [`Error::InvalidArgument`] saying why.
pub fn check_stored_user(user: &str) -> Result<()> {
    if user.is_empty() {
        return Err(Error::invalid("user id is empty"));
    }
    if user.len() > MAX_USER_LEN {
        return Err(Error::invalid(format!(
            "user id is {} bytes, longer than {MAX_USER_LEN}",
            user.len()
        )));
    }
    if user.contains('\0') {
        return Err(Error::invalid("user id contains a NUL character"));
    }
    Ok(())
}

/// Characters after the common prefix that [`ids_between`] interpolates.
const SPREAD_CHARS: usize = 8;

/// At most `n - 1` ids spread evenly between `lo` and `hi`, ascending and
/// strictly between them: bounds that cut `[lo, hi]` into `n` ranges of
/// about as many users when ids are spread about evenly between the two
/// (the store's files are too few to cut at). The eight
/// characters after the ids' common prefix are read as a number (ASCII,
/// others counted as the largest), which is cut evenly.
pub fn ids_between(lo: &str, hi: &str, n: usize) -> Vec<String> {
    let mut common = lo
        .bytes()
        .zip(hi.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    while !lo.is_char_boundary(common) {
        common -= 1;
    }
    // Digits 0..127 are the characters 1..=127: no NUL, which ends an id.
    let number = |id: &str| {
        id.as_bytes()[common..]
            .iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(SPREAD_CHARS)
            .fold(0u64, |n, b| n * 127 + u64::from(b.clamp(1, 127) - 1))
    };
    let (a, b) = (number(lo), number(hi));
    let mut out: Vec<String> = Vec::new();
    if b <= a {
        return out;
    }
    for i in 1..n {
        let step = u128::from(b - a) * i as u128 / n as u128;
        // At most b - a: it fits.
        let mut v = a + step as u64;
        let mut digits = [0u8; SPREAD_CHARS];
        for d in digits.iter_mut().rev() {
            *d = (v % 127) as u8 + 1;
            v /= 127;
        }
        let mut id = lo[..common].to_owned();
        id.extend(digits.iter().map(|&d| char::from(d)));
        if id.as_str() > lo && id.as_str() < hi && out.last().is_none_or(|last| *last < id) {
            out.push(id);
        }
    }
    out
}

/// `user 0x00`: the key of the user's records, and the prefix of all their keys.
pub fn user_key(user: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 13);
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k
}

/// The half-open range `[user 0x00, user 0x01)` covering all of one user's keys.
pub fn user_range(user: &str) -> (Vec<u8>, Vec<u8>) {
    let start = user_key(user);
    let mut end = start.clone();
    if let Some(last) = end.last_mut() {
        *last = 1;
    }
    (start, end)
}

/// Key of a user's vector for definition `def`.
pub fn vector_key(user: &str, def: u32) -> Vec<u8> {
    let mut k = user_key(user);
    k.extend_from_slice(&def.to_be_bytes());
    k
}

/// Key of a user's window bucket starting at `bucket_start`.
pub fn window_key(user: &str, def: u32, bucket_start: i64) -> Vec<u8> {
    let mut k = vector_key(user, def);
    k.extend_from_slice(&sortable(bucket_start).to_be_bytes());
    k
}

fn sortable(t: i64) -> u64 {
    (t as u64) ^ (1 << 63)
}

/// The user id a key belongs to.
pub fn user_of(key: &[u8]) -> Option<&str> {
    let end = key.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&key[..end]).ok()
}

/// Splits a vector or window key into (user, def id, rest).
pub fn split(key: &[u8]) -> Option<(&str, u32, &[u8])> {
    let end = key.iter().position(|&b| b == 0)?;
    let user = std::str::from_utf8(&key[..end]).ok()?;
    let rest = &key[end + 1..];
    let def = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    Some((user, def, &rest[4..]))
}

/// The bucket start of a window key's tail (after the def id).
pub fn bucket_of(tail: &[u8]) -> Option<i64> {
    let b: [u8; 8] = tail.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// Whether the bucket of width `width` starting at `start` is past a
/// retention of `retain_ms` at time `now`: it ended before `now − retain_ms`.
/// Compaction drops such buckets and reads skip them, so that a read never
/// depends on whether compaction has run.
pub fn bucket_expired(start: i64, width: i64, retain_ms: i64, now: i64) -> bool {
    start.saturating_add(width) <= now.saturating_sub(retain_ms)
}

/// The start of the bucket of width `width` holding time `ts`.
pub fn bucket_start(ts: i64, width: i64) -> i64 {
    // Saturates: a read span reaching before i64::MIN starts at the lowest bucket.
    ts.div_euclid(width).saturating_mul(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_between_cut_evenly_spread_ids_evenly() {
        let ids: Vec<String> = (0..1_000_000).map(|i| format!("user{i:07}")).collect();
        let (lo, hi) = (&ids[0], &ids[ids.len() - 1]);
        let bounds = ids_between(lo, hi, 4);
        assert_eq!(bounds.len(), 3, "{bounds:?}");
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        assert!(bounds.iter().all(|b| b > lo && b < hi && !b.contains('\0')));
        // Each range holds between a fifth and a third of the ids.
        let mut from = 0;
        for end in bounds
            .iter()
            .map(|b| ids.partition_point(|id| id < b))
            .chain([ids.len()])
        {
            let share = (end - from) as f64 / ids.len() as f64;
            assert!(
                (0.2..0.34).contains(&share),
                "{share} of the ids in one range of {bounds:?}"
            );
            from = end;
        }
        // Ids that differ further on, and in characters beyond ASCII.
        let b = ids_between("a", "b\u{e9}t\u{e9}", 3);
        assert!(
            !b.is_empty()
                && b.iter()
                    .all(|x| x.as_str() > "a" && x.as_str() < "b\u{e9}t\u{e9}"),
            "{b:?}"
        );
        let b = ids_between("caf\u{e9}1", "caf\u{e9}9", 2);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(
            b[0].starts_with("caf\u{e9}")
                && b[0].as_str() > "caf\u{e9}1"
                && b[0].as_str() < "caf\u{e9}9"
        );
        // Nothing between equal or adjacent ids, nor for one range.
        assert!(ids_between("u1", "u1", 4).is_empty());
        assert!(ids_between("u1", "u2", 1).is_empty());
    }

    #[test]
    fn layout_sorts_and_splits() {
        assert!(user_key("u1") < user_key("u10"));
        let (s, e) = user_range("u1");
        assert!(s <= window_key("u1", 7, i64::MIN / 2) && window_key("u1", 7, 99) < e);
        assert!(!(s..e.clone()).contains(&user_key("u10")));
        assert!(window_key("u", 1, -5) < window_key("u", 1, 3));
        let k = window_key("alice", 9, -86_400_000);
        let (u, d, tail) = split(&k).unwrap_or(("", 0, &[]));
        assert_eq!((u, d, bucket_of(tail)), ("alice", 9, Some(-86_400_000)));
        assert_eq!(bucket_start(-1, 10), -10);
        assert_eq!(bucket_start(25, 10), 20);
        assert_eq!(bucket_start(i64::MIN, 3_600_000), i64::MIN);
        assert!(check_user("").is_err());
        assert!(check_user("a\0b").is_err());
        assert!(check_user(&"x".repeat(257)).is_err());
        assert!(check_user(&"x".repeat(256)).is_ok());
        assert!(check_user("a\x1b[31mb").is_err());
        assert!(check_user("a\u{9b}b").is_err());
        assert!(check_user("tab\there").is_err());
        assert!(check_stored_user("a\x1b[31mb").is_ok());
        assert!(check_user("müller-✓").is_ok());
    }
}
