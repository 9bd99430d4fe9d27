//! Golden tests: every file in `tests/golden/` is a script of statements, each
//! followed by `----` and the output it must give (rows, a summary, or an error
//! drawn with its caret). Cases are separated by blank lines; `#` starts a
//! comment line between cases.
//!
//! Each file runs on a fresh in-memory database whose clock reads
//! 2026-11-15T00:00:00Z and whose scans split into three partitions.
//!
//! `REWRITE=1 cargo test -p profiledb-query --test golden` rewrites the expected
//! outputs from the actual ones; review the diff before committing it.
//!
//! Every statement is also parsed, printed and parsed again, and both trees must
//! be equal.

use std::fmt::Write as _;
use std::path::Path;

use profiledb_query::{Limits, Output, parse_statement, run};
use profiledb_storage::kv::memory::MemoryKv;
use profiledb_storage::{MemoryEngine, Value};

/// 2026-11-15T00:00:00Z.
const NOW: i64 = 1_794_700_800_000;

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

fn run_case(db: &MemoryEngine, sql: &str) -> String {
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

fn check_file(path: &Path, rewrite: bool) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let db = MemoryEngine::over(MemoryKv::new().with_parts(3)).with_now(NOW);
    let mut failures = Vec::new();
    let mut rewritten = String::new();
    for case in parse_file(&text) {
        let actual = run_case(&db, &case.sql);
        if actual != case.expected {
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

#[test]
fn golden_files() -> Result<(), Box<dyn std::error::Error>> {
    let rewrite = std::env::var_os("REWRITE").is_some();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "sql"));
    paths.sort();
    assert!(!paths.is_empty(), "no golden files in {}", dir.display());
    let mut failures = Vec::new();
    for p in &paths {
        failures.extend(check_file(p, rewrite)?);
    }
    assert!(
        failures.is_empty() || rewrite,
        "{} golden case(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    Ok(())
}
