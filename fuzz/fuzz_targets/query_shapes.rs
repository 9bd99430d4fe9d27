//! Deep and wide statements, built from the input: long flat chains of every
//! operator, nested parentheses and calls, huge IN lists and select lists,
//! segments inlined into segments. Every pass (parse, bind, plan, evaluate,
//! print) must answer them with a result or an error, never a stack overflow.
//! Inputs are small; the statements they describe reach thousands of levels,
//! well past the depth limit (the token limit has its own test).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "loaded.rs"]
mod loaded;
use profiledb_query::{Limits, execute};
use profiledb_storage::MemoryEngine;

const SCHEMA: &str = "
CREATE FEATURE n ON buy AS COUNT();
CREATE FEATURE spend ON buy AS SUM(amount);
CREATE ATTRIBUTE region STRING ON buy;
CREATE VECTOR v ON buy AS EWMA(vec) DIM 2 HALF_LIFE '1d';
INSERT INTO buy (user, ts, amount, region, vec) VALUES ('a', 1000, 1.5, 'x', [1, 0]), ('b', 2000, 3, 'y', [0, 1]);
";

const TERMS: [&str; 8] = ["1", "n", "spend", "2.5", "(n)", "-n", "abs(n)", "NULL"];
const PREDICATES: [&str; 6] = [
    "n > 0",
    "region = 'x'",
    "NOT n = 1",
    "spend BETWEEN 1 AND 2",
    "n IS NULL",
    "IN SEGMENT s0",
];
const OPS: [&str; 7] = [" + ", " - ", " * ", " / ", " % ", " = ", " < "];
const LOGIC: [&str; 2] = [" AND ", " OR "];

/// Reads the input as a little program of shape choices.
struct Shape<'a>(&'a [u8]);

impl Shape<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *b
    }
    fn len(&mut self) -> usize {
        // Mostly up to 320 repeats, around the depth limit of 256; one time in
        // thirty-two up to 4,095, thousands of levels past it.
        let n = usize::from(u16::from_le_bytes([self.byte(), self.byte()]));
        if self.byte() % 32 == 0 {
            n % 4096
        } else {
            n % 320
        }
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[usize::from(self.byte()) % from.len()]
    }
}

fn chain(s: &mut Shape<'_>, ops: &[&str], terms: &[&str]) -> String {
    let n = s.len().max(1);
    let (op, term) = (s.pick(ops), s.pick(terms));
    let mut out = String::with_capacity(n * (op.len() + term.len()));
    for i in 0..n {
        if i > 0 {
            out.push_str(op);
        }
        out.push_str(term);
    }
    out
}

fn nested(s: &mut Shape<'_>, open: &str, inner: &str, close: &str) -> String {
    let n = s.len() % 4096;
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

fn statement(s: &mut Shape<'_>) -> String {
    match s.byte() % 10 {
        0 => format!("SELECT {} AS x FROM users", chain(s, &OPS, &TERMS)),
        1 => format!(
            "SELECT id FROM users WHERE {}",
            chain(s, &LOGIC, &PREDICATES)
        ),
        2 => format!(
            "EXPLAIN SELECT id FROM users WHERE {}",
            chain(s, &LOGIC, &PREDICATES)
        ),
        3 => format!(
            "SELECT id FROM users WHERE {}",
            nested(s, "(", "n > 0", ")")
        ),
        4 => format!("SELECT {} FROM users", nested(s, "abs(", "n", ")")),
        5 => format!("SELECT {} FROM users", nested(s, "NOT ", "n > 0", "")),
        6 => format!(
            "SELECT id FROM users WHERE n IN ({})",
            chain(s, &[", "], &TERMS)
        ),
        7 => format!("SELECT {} FROM users", chain(s, &[", "], &TERMS)),
        8 => {
            // Segments that inline one another, each a chain of its own.
            let depth = usize::from(s.byte() % 20) + 1;
            let mut script = String::new();
            for i in 0..depth {
                let body = chain(s, &LOGIC, &PREDICATES[..5]);
                let prior = if i == 0 {
                    String::new()
                } else {
                    format!("IN SEGMENT s{} AND ", i - 1)
                };
                script.push_str(&format!("CREATE SEGMENT s{i} AS {prior}{body};\n"));
            }
            script.push_str(&format!(
                "SELECT count(*) FROM users WHERE IN SEGMENT s{}",
                depth - 1
            ));
            script
        }
        _ => format!(
            "SELECT {k}, count(*) FROM users GROUP BY {k} ORDER BY {k}",
            k = chain(s, &OPS[..3], &TERMS[..3])
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    static DB: OnceLock<MemoryEngine> = OnceLock::new();
    let db = loaded::loaded(&DB, SCHEMA);
    let mut shape = Shape(data);
    let sql = statement(&mut shape);
    let _ = execute(&db, &sql, &Limits::default());
});
