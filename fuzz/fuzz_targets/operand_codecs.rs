//! Arbitrary bytes through every value decoder and merge operator (and the
//! event history's keys and entries): never a panic, and whatever decodes
//! re-encodes to a value that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiledb_storage::history;
use profiledb_storage::merge::record::{self, Record};
use profiledb_storage::merge::vector::{self, VectorValue};
use profiledb_storage::merge::window::{self, Bucket};

fuzz_target!(|data: &[u8]| {
    let (a, b) = data.split_at(data.len() / 2);
    if let Ok(r) = Record::decode(data) {
        assert_eq!(Record::decode(&r.encode()).ok(), Some(r));
    }
    if let Ok(v) = VectorValue::decode(data) {
        assert_eq!(VectorValue::decode(&v.encode()).ok(), Some(v));
    }
    if let Ok(w) = Bucket::decode(data) {
        assert_eq!(Bucket::decode(&w.encode()).ok(), Some(w));
    }
    // One operand onto nothing is the operand's record, finalized.
    if let Ok(v) = record::full_merge(None, [data]) {
        let expected = Record::decode(data).ok().map(|mut r| {
            r.finalize();
            r
        });
        assert_eq!(Record::decode(&v).ok(), expected);
    }
    let _ = record::full_merge(Some(a), [b]);
    let _ = record::partial_merge([a, b]);
    let _ = window::merge(Some(a), [b]);
    let _ = vector::full_merge(Some(a), [b]);
    let _ = vector::partial_merge([a, b]);
    let _ = profiledb_storage::Catalog::decode(data);
    if let Ok(e) = history::Entry::decode(a, b) {
        assert_eq!(history::Entry::decode(&e.key(), &e.encode()).ok(), Some(e));
    }
    let _ = history::parse_entry_key(data);
    let _ = history::parse_marker_key(data);
});
