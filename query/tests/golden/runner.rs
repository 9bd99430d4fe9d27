#![allow(dead_code)] // Shared by two test crates; each uses part of it.

//! The golden-file runner, shared by the in-memory run (`tests/golden.rs`)
//! and the RocksDB run (the facade's `tests/golden_rocksdb.rs`): both check the
//! same files, so the two stores give the same outputs (floats to their
//! last digits, which the SIMD kernels of each CPU round differently).
//!
//! Every file in `tests/golden/` is a script of statements, each followed by
//! `----` and the output it must give (rows, a summary, or an error drawn with
//! its caret). Cases are separated by blank lines; `#` starts a comment line
//! between cases. Every statement is also parsed, printed and parsed again,
//! and both trees must be equal.

use std::fmt::Write as _;
use std::path::Path;

use profiledb_query::{DataSource, Limits, Output, parse_statement, run};
use profiledb_storage::Value;

/// The clock of every golden database: 2026-11-15T00:00:00Z.
pub const NOW: i64 = 1_794_700_800_000;

struct Case {
    comments: Vec<String>,
    sql: String,
    expected: String,
}

fn parse_file(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut lines = text.lines().peekable();
    let mut comments = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            comments.push(line.to_owned());
            continue;
        }
        let mut sql = vec![line.to_owned()];
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            sql.push(l.to_owned());
        }
        let mut expected = Vec::new();
        while let Some(l) = lines.peek() {
            if l.is_empty() {
                break;
            }
            expected.push((*l).to_owned());
            lines.next();
        }
        cases.push(Case {
            comments: std::mem::take(&mut comments),
            sql: sql.join("\n"),
            expected: expected.join("\n"),
        });
    }
    cases
}

fn render_value(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => format!("{x:?}"),
        Value::String(s) => format!("'{s}'"),
        Value::Tags(t) => format!("{t:?}"),
        Value::Vector(v) => format!("{v:?}"),
        Value::Map(m) => {
            let entries: Vec<String> = m.iter().map(|(k, x)| format!("{k}: {x:?}")).collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

fn render(out: &Output) -> String {
    match out {
        Output::Done { summary, .. } => summary.clone(),
        Output::Rows(rows) => {
            let mut s = rows
                .columns
                .iter()
                .map(|c| format!("{}:{}", c.name, c.ty))
                .collect::<Vec<_>>()
                .join(" | ");
            for r in &rows.rows {
                let cells: Vec<String> = r.iter().map(render_value).collect();
                let _ = write!(s, "\n{}", cells.join(" | "));
            }
            if rows.rows.is_empty() {
                s.push_str("\n(no rows)");
            }
            s
        }
    }
}

fn run_case(db: &dyn DataSource, sql: &str) -> String {
    let stmt = match parse_statement(sql) {
        Ok(s) => s,
        Err(e) => return format!("error: {}", profiledb_query::Error::from(e).locate(sql)),
    };
    let printed = stmt.to_string();
    let again = parse_statement(&printed);
    assert_eq!(
        again.as_ref().ok(),
        Some(&stmt),
        "round trip of {sql:?} printed as {printed:?}: {again:?}"
    );
    match run(db, &stmt, &Limits::default()) {
        Ok(out) => render(&out),
        Err(e) => format!("error: {}", e.locate(sql)),
    }
}

/// Whether two outputs are the same, but for the last digits of floats:
/// the SIMD kernels that score vectors sum in a different order (or width)
/// on each instruction set, so a similarity may differ from the file's in
/// its eighth significant digit on another CPU. A float (a number written
/// with a point or an exponent) matches within a relative 1e-6; everything
/// else, integers included, must match exactly.
fn same_output(actual: &str, expected: &str) -> bool {
    let (a, e) = (tokens(actual), tokens(expected));
    a.len() == e.len()
        && a.iter().zip(&e).all(|(a, e)| match (a, e) {
            (Token::Float(x), Token::Float(y)) => {
                (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-300)
            }
            _ => a == e,
        })
}

#[test]
fn outputs_match_but_for_the_last_digits_of_floats() {
    let file = "id:string | s:float | n:int\n'u3' | 0.995037194907719 | 1000000";
    assert!(same_output(
        "id:string | s:float | n:int\n'u3' | 0.9950371898613295 | 1000000",
        file
    ));
    for other in [
        "id:string | s:float | n:int\n'u3' | 0.9950 | 1000000",
        "id:string | s:float | n:int\n'u3' | 0.995037194907719 | 1000001",
        "id:string | s:float | n:int\n'u4' | 0.995037194907719 | 1000000",
        "id:string | s:float | n:int\n'u3' | -0.995037194907719 | 1000000",
        "id:string | s:float | n:int\n'u3' | 0.995037194907719 | 1000000 ",
    ] {
        assert!(!same_output(other, file), "{other}");
    }
    assert!(same_output("[1.5e-3, 2.0]", "[0.0015, 2.0000000001]"));
}

/// A piece of an output, for [`same_output`].
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Float(f64),
    Text(&'a str),
}

/// `text` cut into floats and the text between them.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut from) = (0, 0);
    while i < bytes.len() {
        // A number starts at a digit (or a sign before one) that does not
        // continue a word such as 'u3'.
        let starts = (bytes[i].is_ascii_digit()
            || (bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < bytes.len()
            && (bytes[j].is_ascii_digit()
                || matches!(bytes[j], b'.' | b'e' | b'E')
                || (matches!(bytes[j], b'-' | b'+') && matches!(bytes[j - 1], b'e' | b'E')))
        {
            j += 1;
        }
        let number = &text[i..j];
        match number.parse::<f64>() {
            Ok(x) if number.contains(['.', 'e', 'E']) => {
                if from < i {
                    out.push(Token::Text(&text[from..i]));
                }
                out.push(Token::Float(x));
                from = j;
            }
            _ => {}
        }
        i = j;
    }
    if from < text.len() {
        out.push(Token::Text(&text[from..]));
    }
    out
}

/// How a store splits a scan is physical, not part of any answer: the
/// in-memory store splits by key count, RocksDB by its files. `EXPLAIN`
/// prints the number; a run that compares layouts of another store masks it.
fn mask_partitions(text: &str) -> String {
    text.lines()
        .map(
            |l| match (l.find("ParallelScan: users, "), l.find(" partition")) {
                (Some(at), Some(end)) if at < end => {
                    let head = &l[..at + "ParallelScan: users, ".len()];
                    let tail = l[end..]
                        .trim_start_matches(" partitions")
                        .trim_start_matches(" partition");
                    format!("{head}N partitions{tail}")
                }
                _ => l.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a run compares outputs with the golden files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Byte for byte, partition counts included (the store the files were
    /// written on).
    Exact,
    /// Byte for byte except `EXPLAIN`'s partition count.
    AnyPartitions,
}

fn check_file(
    path: &Path,
    rewrite: bool,
    db: &dyn DataSource,
    layout: Layout,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut failures = Vec::new();
    let mut rewritten = String::new();
    for case in parse_file(&text) {
        let actual = run_case(db, &case.sql);
        let differs = match layout {
            Layout::Exact => !same_output(&actual, &case.expected),
            Layout::AnyPartitions => {
                !same_output(&mask_partitions(&actual), &mask_partitions(&case.expected))
            }
        };
        if differs {
            failures.push(format!(
                "{}: {}\n--- expected\n{}\n--- actual\n{}",
                path.display(),
                case.sql,
                case.expected,
                actual
            ));
        }
        for c in &case.comments {
            rewritten.push_str(c);
            rewritten.push('\n');
        }
        let _ = write!(rewritten, "{}\n----\n{}\n\n", case.sql, actual);
    }
    if rewrite {
        std::fs::write(path, rewritten.trim_end().to_owned() + "\n")?;
    }
    Ok(failures)
}

/// Runs every golden file of `dir`, each on a fresh database from `open`
/// (whose clock reads [`NOW`]), and fails with every case whose output
/// differs. With `REWRITE` set, rewrites the files from the actual outputs
/// instead.
pub fn run_golden_files<D: DataSource>(
    dir: &Path,
    layout: Layout,
    open: &dyn Fn() -> Result<D, Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "sql"));
    paths.sort();
    assert!(!paths.is_empty(), "no golden files in {}", dir.display());
    let mut failures = Vec::new();
    for p in &paths {
        let db = open()?;
        failures.extend(check_file(
            p,
            rewrite && layout == Layout::Exact,
            &db,
            layout,
        )?);
    }
    assert!(
        failures.is_empty() || rewrite,
        "{} golden case(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    Ok(())
}
