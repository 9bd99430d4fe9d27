//! Arbitrary statements run against an in-memory database with a schema of
//! every kind: errors are fine, panics are not. Each input runs on a fresh copy
//! of the same loaded database.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "loaded.rs"]
mod loaded;
use profiledb_query::{Limits, execute};
use profiledb_storage::MemoryEngine;

const SCHEMA: &str = "
CREATE ATTRIBUTE age INT;
CREATE ATTRIBUTE region STRING ON signup;
CREATE ATTRIBUTE tags TAGS;
CREATE FEATURE n ON buy AS COUNT();
CREATE FEATURE spend ON buy AS DECAYED_SUM(amount) HALF_LIFE '7d';
CREATE FEATURE avg ON buy AS DECAYED_AVG(amount) HALF_LIFE '7d';
CREATE FEATURE ctr ON imp AS BETA(clicked) HALF_LIFE '1d' PRIOR (1, 2);
CREATE WINDOW w ON buy OF amount BUCKET '1h' RETAIN '7d';
CREATE VECTOR v ON view AS EWMA(vec) DIM 2 HALF_LIFE '1d';
CREATE VECTOR p ON imp AS SGD(vec, clicked) DIM 2 LEARNING_RATE 0.1;
CREATE SEGMENT s AS spend > 1;
INSERT INTO buy (user, ts, amount) VALUES ('a', 1000, 1.5), ('b', 2000, -3);
INSERT INTO imp (user, ts, clicked, vec) VALUES ('a', 1000, 1, [1, 0]);
INSERT INTO view (user, ts, vec) VALUES ('a', 1000, [1, 0]), ('b', 1000, [0, 1]), ('c', 1000, [1, 1]);
";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static DB: OnceLock<MemoryEngine> = OnceLock::new();
    let db = loaded::loaded(&DB, SCHEMA);
    let _ = execute(&db, text, &Limits::default());
});
