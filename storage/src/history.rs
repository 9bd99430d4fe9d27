//! Event history: every accepted write kept per user, in the `history`
//! family, for the database's history horizon.
//!
//! One user's history is contiguous and in time order, so replaying it is one
//! range read:
//!
//! | key | value |
//! |---|---|
//! | `user 0x00 0x00` | the base state the user's writes older than the fold cutoff were folded into ([`Base`]) |
//! | `user 0x00 0x01 ts:i64 seq:u64` | one accepted write ([`Entry`]) |
//! | `user 0x00 0x02 event_id` | the time and sequence number of the user's accepted event of that id |
//! | `0xFD day:i64 request_key` | empty: the request key was first seen that day |
//! | `0xFE request_key` | the time and counts of the first request of that key |
//! | `0xFF day:i64 user` | empty: the user has history dated that day |
//!
//! Times have their sign bit flipped so that they sort numerically, as in
//! [`crate::keys`]. The sequence number orders writes of the same time and
//! keeps each key unique; it grows with every write, across restarts.
//!
//! Request keys and the markers sort after every user (no UTF-8 id starts
//! with 0xFD, 0xFE or 0xFF). The markers are for the fold that retires
//! history past the horizon: it walks the markers of the days before it, not
//! every user or request. Deleting a user deletes its markers with the rest,
//! since they carry its id.

use crate::codec::{DecodeError, Reader, Writer, derr, utf8};
use crate::event::Event;
use crate::keys;
use crate::merge::tags;
use crate::value::Value;

/// The longest horizon a database may keep: 100 years.
pub const MAX_HORIZON_MS: i64 = 36_500 * DAY_MS;

const DAY_MS: i64 = 86_400_000;

/// The tag after `user 0x00` of a user's base state's key.
const BASE: u8 = 0x00;

/// The tag after `user 0x00` of a history entry's key.
const ENTRY: u8 = 0x01;

/// The tag after `user 0x00` of an accepted event id's key.
const EVENT_ID: u8 = 0x02;

/// The first byte of a request key's key.
const REQUEST: u8 = 0xFE;

/// The first byte of a request key's day marker.
const REQUEST_DAY: u8 = 0xFD;

/// The longest request key, in bytes.
pub const MAX_REQUEST_KEY_LEN: usize = 256;

/// The end of the users' keys (base states, entries and event ids): every
/// key after it is a request key or a marker.
pub fn users_end() -> Vec<u8> {
    vec![REQUEST_DAY]
}

/// The key of the marker saying request key `key` was first seen on `day`.
pub fn request_marker_key(day: i64, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(REQUEST_DAY);
    k.extend_from_slice(&sortable(day).to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

/// The range of the markers of request keys first seen before `day`.
pub fn request_markers_before(day: i64) -> (Vec<u8>, Vec<u8>) {
    (vec![REQUEST_DAY], request_marker_key(day, ""))
}

/// The request key a request marker's key names.
pub fn request_of_marker(marker: &[u8]) -> Option<Vec<u8>> {
    let (&tag, rest) = marker.split_first()?;
    if tag != REQUEST_DAY || rest.len() < 8 {
        return None;
    }
    let mut k = Vec::with_capacity(rest.len() - 7);
    k.push(REQUEST);
    k.extend_from_slice(&rest[8..]);
    Some(k)
}

/// The first byte of a day marker's key.
const MARKER: u8 = 0xFF;

/// One accepted write as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The write's sequence number: unique, and growing in write order.
    pub seq: u64,
    /// The catalog version it was accepted under.
    pub version: u64,
    /// What was written.
    pub write: Write,
}

/// An empty entry, to decode into ([`Entry::decode_into`]).
impl Default for Entry {
    fn default() -> Entry {
        Entry {
            seq: 0,
            version: 0,
            write: Write::Attributes {
                user: String::new(),
                ts: 0,
                values: Vec::new(),
            },
        }
    }
}

/// A write kept in the history.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// An event, with every field it carried.
    Event(Event),
    /// Attributes set directly (not through an event) at `ts`.
    Attributes {
        /// User id.
        user: String,
        /// The write's time.
        ts: i64,
        /// The values, by attribute name.
        values: Vec<(String, Value)>,
    },
}

impl Write {
    /// The user written to.
    pub fn user(&self) -> &str {
        match self {
            Write::Event(e) => &e.user,
            Write::Attributes { user, .. } => user,
        }
    }

    /// The write's time.
    pub fn ts(&self) -> i64 {
        match self {
            Write::Event(e) => e.ts,
            Write::Attributes { ts, .. } => *ts,
        }
    }
}

/// Kinds of [`Write`] as encoded.
const KIND_EVENT: u8 = 1;
const KIND_ATTRIBUTES: u8 = 2;

impl Entry {
    /// The entry's key: `user 0x00 0x01 ts seq`.
    pub fn key(&self) -> Vec<u8> {
        entry_key(self.write.user(), self.write.ts(), self.seq)
    }

    /// The entry's value. The user and time are in the key.
    pub fn encode(&self) -> Vec<u8> {
        match &self.write {
            Write::Event(e) => event_value(self.seq, self.version, e),
            Write::Attributes { values, .. } => attributes_value(self.seq, self.version, values),
        }
    }

    /// The entry stored under `key` as `value`.
    ///
    /// # Errors
    /// A [`DecodeError`] for a key or value that is not a history entry's.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Entry, DecodeError> {
        let mut entry = Entry::default();
        entry.decode_into(key, value)?;
        Ok(entry)
    }

    /// [`Entry::decode`] into this entry, reusing its strings and vectors: a
    /// replay decodes every entry of a user into one. After an error the
    /// entry holds parts of the bad one.
    ///
    /// # Errors
    /// As [`Entry::decode`].
    pub fn decode_into(&mut self, key: &[u8], value: &[u8]) -> Result<(), DecodeError> {
        let Some((user, ts, key_seq)) = split_entry_key(key) else {
            return derr("not a history entry key");
        };
        let mut r = Reader::new(value);
        if r.u8()? != tags::HISTORY_ENTRY {
            return derr("not a history entry");
        }
        let seq = r.u64()?;
        if seq != key_seq {
            return derr(format!("sequence {seq} differs from the key's {key_seq}"));
        }
        self.seq = seq;
        self.version = r.u64()?;
        let kind = r.u8()?;
        let same = matches!(
            (kind, &self.write),
            (KIND_EVENT, Write::Event(_)) | (KIND_ATTRIBUTES, Write::Attributes { .. })
        );
        if !same {
            self.write = match kind {
                KIND_EVENT => Write::Event(Event {
                    user: String::new(),
                    event_type: String::new(),
                    ts,
                    fields: Vec::new(),
                }),
                KIND_ATTRIBUTES => Write::Attributes {
                    user: String::new(),
                    ts,
                    values: Vec::new(),
                },
                k => return derr(format!("unknown history write kind {k}")),
            };
        }
        let fields = match &mut self.write {
            Write::Event(e) => {
                set(&mut e.event_type, r.bytes()?)?;
                set(&mut e.user, user)?;
                e.ts = ts;
                &mut e.fields
            }
            Write::Attributes {
                user: u,
                ts: t,
                values,
            } => {
                set(u, user)?;
                *t = ts;
                values
            }
        };
        read_fields(&mut r, fields)?;
        r.end()
    }
}

/// Makes `s` equal `to`, in its own buffer; `to` is checked to be UTF-8
/// unless `s` holds it already (a replay reads the same user, event types
/// and field names over and over).
fn set(s: &mut String, to: &[u8]) -> Result<(), DecodeError> {
    if s.as_bytes() != to {
        let to = utf8(to)?;
        s.clear();
        s.push_str(to);
    }
    Ok(())
}

/// The value of the entry of event `ev` (see [`Entry::encode`]).
pub fn event_value(seq: u64, version: u64, ev: &Event) -> Vec<u8> {
    let mut w = header(seq, version, KIND_EVENT);
    w.bytes(ev.event_type.as_bytes());
    fields(&mut w, &ev.fields);
    w.finish()
}

/// The value of the entry of attributes set directly (see [`Entry::encode`]).
pub fn attributes_value(seq: u64, version: u64, values: &[(String, Value)]) -> Vec<u8> {
    let mut w = header(seq, version, KIND_ATTRIBUTES);
    fields(&mut w, values);
    w.finish()
}

fn header(seq: u64, version: u64, kind: u8) -> Writer {
    let mut w = Writer::with_tag(tags::HISTORY_ENTRY, 96);
    w.u64(seq);
    w.u64(version);
    w.u8(kind);
    w
}

pub(crate) fn fields(w: &mut Writer, fields: &[(String, Value)]) {
    w.u32(fields.len() as u32);
    for (name, v) in fields {
        w.bytes(name.as_bytes());
        v.encode_compact(w);
    }
}

/// Reads fields into `out`, reusing the names and values it holds.
pub(crate) fn read_fields(
    r: &mut Reader<'_>,
    out: &mut Vec<(String, Value)>,
) -> Result<(), DecodeError> {
    let n = r.u32()? as usize;
    // A field is kept only once it decodes: no count can allocate more than
    // the value holds.
    out.truncate(n);
    for i in 0..n {
        let name = r.bytes()?;
        match out.get_mut(i) {
            Some((old, value)) => {
                set(old, name)?;
                value.decode_into(r)?;
            }
            None => {
                let name = utf8(name)?.to_owned();
                out.push((name, Value::decode(r)?));
            }
        }
    }
    Ok(())
}

fn sortable(t: i64) -> u64 {
    (t as u64) ^ (1 << 63)
}

fn unsortable(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// The key of `user`'s history entry at `ts` with sequence number `seq`.
pub fn entry_key(user: &str, ts: i64, seq: u64) -> Vec<u8> {
    let mut k = keys::user_key(user);
    k.reserve(17);
    k.push(ENTRY);
    k.extend_from_slice(&sortable(ts).to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The user, time and sequence number of a history entry's key.
pub fn parse_entry_key(key: &[u8]) -> Option<(&str, i64, u64)> {
    let (user, ts, seq) = split_entry_key(key)?;
    Some((std::str::from_utf8(user).ok()?, ts, seq))
}

/// [`parse_entry_key`], the user's id as bytes not yet checked to be UTF-8.
fn split_entry_key(key: &[u8]) -> Option<(&[u8], i64, u64)> {
    let end = key.iter().position(|&b| b == 0)?;
    let (user, rest) = (&key[..end], &key[end + 1..]);
    let (&tag, rest) = rest.split_first()?;
    if tag != ENTRY || rest.len() != 16 {
        return None;
    }
    let ts = unsortable(rest[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(rest[8..].try_into().ok()?);
    Some((user, ts, seq))
}

/// The bounds of `user`'s history entries with times in `[from, to]`, as a
/// half-open key range.
pub fn entry_range(user: &str, from: i64, to: i64) -> (Vec<u8>, Vec<u8>) {
    let lower = entry_key(user, from, 0);
    let upper = match to.checked_add(1) {
        Some(next) => entry_key(user, next, 0),
        None => {
            let mut k = keys::user_key(user);
            k.push(ENTRY + 1);
            k
        }
    };
    (lower, upper)
}

/// The key of `user`'s base state.
pub fn base_key(user: &str) -> Vec<u8> {
    let mut k = keys::user_key(user);
    k.push(BASE);
    k
}

/// What a user's writes older than the fold cutoff come to: the records,
/// window buckets and sgd vector states they merge into, planned as each
/// write was accepted. Replay starts from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Base {
    /// The features record.
    pub features: crate::merge::record::Record,
    /// The attributes record.
    pub attributes: crate::merge::record::Record,
    /// Window buckets, by (window id, bucket start).
    pub windows: std::collections::BTreeMap<(u32, i64), crate::merge::window::Bucket>,
    /// sgd vector states (encoded), by vector id.
    pub sgd: std::collections::BTreeMap<u32, Vec<u8>>,
}

impl Base {
    /// The base state's value.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_tag(tags::HISTORY_BASE, 256);
        w.bytes(&self.features.encode());
        w.bytes(&self.attributes.encode());
        w.u32(self.windows.len() as u32);
        for ((def, start), b) in &self.windows {
            w.u32(*def);
            w.i64(*start);
            w.bytes(&b.encode());
        }
        w.u32(self.sgd.len() as u32);
        for (def, state) in &self.sgd {
            w.u32(*def);
            w.bytes(state);
        }
        w.finish()
    }

    /// The base state stored as `value`.
    ///
    /// # Errors
    /// A [`DecodeError`] for a value that is not a base state's.
    pub fn decode(value: &[u8]) -> Result<Base, DecodeError> {
        use crate::merge::record::Record;
        use crate::merge::window::Bucket;
        let mut r = Reader::new(value);
        if r.u8()? != tags::HISTORY_BASE {
            return derr("not a history base state");
        }
        let features = Record::decode(r.bytes()?)?;
        let attributes = Record::decode(r.bytes()?)?;
        let mut windows = std::collections::BTreeMap::new();
        for _ in 0..r.u32()? {
            let def = r.u32()?;
            let start = r.i64()?;
            windows.insert((def, start), Bucket::decode(r.bytes()?)?);
        }
        let mut sgd = std::collections::BTreeMap::new();
        for _ in 0..r.u32()? {
            let def = r.u32()?;
            let state = r.bytes()?;
            crate::merge::vector::VectorValue::decode(state)?;
            sgd.insert(def, state.to_vec());
        }
        r.end()?;
        Ok(Base {
            features,
            attributes,
            windows,
            sgd,
        })
    }
}

/// The key saying `user` has an accepted event of id `id`.
pub fn id_key(user: &str, id: &str) -> Vec<u8> {
    let mut k = keys::user_key(user);
    k.reserve(1 + id.len());
    k.push(EVENT_ID);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The value of an event id's key: the time and sequence number of the
/// entry of the event that carried it.
pub fn id_value(ts: i64, seq: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&sortable(ts).to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v
}

/// The key remembering request key `key` (after every user: no UTF-8 id
/// starts with 0xFE).
pub fn request_key(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(REQUEST);
    k.extend_from_slice(key.as_bytes());
    k
}

/// What a request key remembers: when the first request came, and what it did.
pub(crate) fn encode_request(n: crate::engine::Ingested, now: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&sortable(now).to_be_bytes());
    v.extend_from_slice(&(n.accepted as u64).to_be_bytes());
    v.extend_from_slice(&(n.duplicates as u64).to_be_bytes());
    v
}

/// The counts a request key remembers.
///
/// # Errors
/// A [`DecodeError`] for a value that is not a request key's.
pub(crate) fn decode_request(v: &[u8]) -> Result<crate::engine::Ingested, DecodeError> {
    let word = |i: usize| -> Result<u64, DecodeError> {
        v.get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .map_or_else(|| derr("a request record is 24 bytes"), Ok)
    };
    if v.len() != 24 {
        return derr(format!("a request record is 24 bytes, not {}", v.len()));
    }
    Ok(crate::engine::Ingested {
        accepted: usize::try_from(word(1)?).unwrap_or(usize::MAX),
        duplicates: usize::try_from(word(2)?).unwrap_or(usize::MAX),
    })
}

/// The day (days since the epoch) that `ts` falls on.
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(DAY_MS)
}

/// The key of the marker saying `user` has history on `day`.
pub fn marker_key(day: i64, user: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + user.len());
    k.push(MARKER);
    k.extend_from_slice(&sortable(day).to_be_bytes());
    k.extend_from_slice(user.as_bytes());
    k
}

/// The day and user of a marker's key.
pub fn parse_marker_key(key: &[u8]) -> Option<(i64, &str)> {
    let (&tag, rest) = key.split_first()?;
    if tag != MARKER || rest.len() < 9 {
        return None;
    }
    let day = unsortable(rest[..8].try_into().ok()?);
    let user = std::str::from_utf8(&rest[8..]).ok()?;
    Some((day, user))
}

/// The lowest key of any marker: every key from it on is a marker.
pub fn markers_start() -> Vec<u8> {
    vec![MARKER]
}

/// A key past every key of the history family (no time check lets a day
/// marker's day start with 0xFF).
pub fn keys_end() -> Vec<u8> {
    vec![MARKER, 0xFF]
}

/// A horizon as a statement or the library gives it, checked.
///
/// # Errors
/// A message naming the value when it is negative or longer than
/// [`MAX_HORIZON_MS`].
pub fn check_horizon(ms: i64) -> Result<i64, String> {
    if ms < 0 {
        return Err(format!("a history horizon cannot be negative ({ms} ms)"));
    }
    if ms > MAX_HORIZON_MS {
        return Err(format!(
            "a history horizon of {ms} ms is longer than the longest kept, {} days",
            MAX_HORIZON_MS / DAY_MS
        ));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new("u1", "view", -5)
            .with("price", 3.5)
            .with("n", 7i64)
            .with("ok", true)
            .with("item", "a\u{e9}b")
            .with("vec", vec![0.25f32, -1.0, 3.0e-7])
            .with("none", Value::Null)
            .with("tags", Value::Tags(vec!["x".into(), "y".into()]))
    }

    #[test]
    fn entries_round_trip() -> Result<(), DecodeError> {
        for write in [
            Write::Event(event()),
            Write::Attributes {
                user: "u\u{e9}".into(),
                ts: i64::MAX,
                values: vec![("age".into(), Value::Int(40))],
            },
        ] {
            let e = Entry {
                seq: 42,
                version: 7,
                write,
            };
            assert_eq!(Entry::decode(&e.key(), &e.encode())?, e);
        }
        Ok(())
    }

    #[test]
    fn decoding_into_a_used_entry_forgets_the_last() -> Result<(), DecodeError> {
        // Writes whose fields grow, shrink and change type between them, in
        // an order that takes every kind after every other.
        let writes = [
            Write::Event(event()),
            Write::Event(
                Event::new("u2", "buy", 9)
                    .with("price", "now a string")
                    .with("vec", vec![1.0f32]),
            ),
            Write::Attributes {
                user: "u3".into(),
                ts: 3,
                values: vec![("age".into(), Value::Int(40))],
            },
            Write::Attributes {
                user: "u1".into(),
                ts: 4,
                values: vec![],
            },
            Write::Event(event()),
            Write::Event(Event::new("u\u{e9}", "v", 1)),
        ];
        let mut into = Entry::default();
        for (seq, write) in writes.into_iter().enumerate() {
            let e = Entry {
                seq: seq as u64,
                version: seq as u64 * 3,
                write,
            };
            into.decode_into(&e.key(), &e.encode())?;
            assert_eq!(into, e);
        }
        // A damaged entry is an error into a used entry too, and so is a
        // user id that is not UTF-8.
        let value = Entry::default().encode();
        assert!(into.decode_into(&entry_key("", 0, 0), &value[..5]).is_err());
        let mut key = entry_key("u1", 0, 0);
        key[0] = 0xFF;
        assert!(into.decode_into(&key, &value).is_err());
        Ok(())
    }

    #[test]
    fn damaged_entries_are_refused() {
        let e = Entry {
            seq: 1,
            version: 1,
            write: Write::Event(event()),
        };
        let (key, value) = (e.key(), e.encode());
        for cut in 0..value.len() {
            assert!(Entry::decode(&key, &value[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(Entry::decode(&key, &longer).is_err());
        // The key's sequence number and the value's must agree.
        assert!(Entry::decode(&entry_key("u1", -5, 2), &value).is_err());
        assert!(Entry::decode(b"u1\0", &value).is_err());
    }

    #[test]
    fn keys_sort_by_user_then_time_then_sequence() {
        let mut keys = [
            entry_key("u1", 5, 1),
            entry_key("u1", -5, 9),
            entry_key("u1", 5, 0),
            entry_key("u0", i64::MAX, u64::MAX),
            entry_key("u10", i64::MIN, 0),
            marker_key(-1, "a"),
            marker_key(3, "a"),
        ];
        keys.sort();
        let order: Vec<_> = keys
            .iter()
            .map(|k| {
                parse_entry_key(k)
                    .map(|(u, ts, seq)| format!("{u} {ts} {seq}"))
                    .or_else(|| parse_marker_key(k).map(|(d, u)| format!("day {d} {u}")))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            order,
            [
                format!("u0 {} {}", i64::MAX, u64::MAX),
                "u1 -5 9".into(),
                "u1 5 0".into(),
                "u1 5 1".into(),
                format!("u10 {} 0", i64::MIN),
                "day -1 a".into(),
                "day 3 a".into(),
            ]
        );
    }

    #[test]
    fn a_range_holds_exactly_the_entries_in_its_times() {
        let (lo, hi) = entry_range("u1", -2, 4);
        let inside = |ts: i64, seq: u64| {
            let k = entry_key("u1", ts, seq);
            lo <= k && k < hi
        };
        assert!(!inside(-3, u64::MAX));
        assert!(inside(-2, 0));
        assert!(inside(4, u64::MAX));
        assert!(!inside(5, 0));
        let (lo, hi) = entry_range("u1", i64::MIN, i64::MAX);
        for (ts, seq) in [(i64::MIN, 0), (i64::MAX, u64::MAX)] {
            let k = entry_key("u1", ts, seq);
            assert!(lo <= k && k < hi);
        }
        assert!(entry_key("u10", i64::MIN, 0) >= hi);
    }

    #[test]
    fn horizons_are_checked() {
        assert_eq!(check_horizon(0), Ok(0));
        assert_eq!(check_horizon(30 * DAY_MS), Ok(30 * DAY_MS));
        assert!(check_horizon(-1).expect_err("refused").contains("-1"));
        assert!(check_horizon(MAX_HORIZON_MS + 1).is_err());
    }
}
