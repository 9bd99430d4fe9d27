//! `profiledb export`: point-in-time rows for training sets. Given (user,
//! time) pairs in a CSV file with a header naming `user` and `ts` (other
//! columns, such as a label, ride along), it reads the selected items of each
//! user as of its own time and writes each pair's columns followed by them,
//! as CSV, JSON Lines or Parquet, in the pairs' order.
//!
//! Each pair reads as a point query `AS OF` its time would ([`Db::rows_as_of`],
//! one pass ordered by user), so with the event history kept the items are
//! exactly what the writes up to that time give; without it they are the
//! stored state evaluated then (see the README). A user who does not exist
//! at its time gets empty items (NULL).

use std::io::Write;
use std::path::{Path, PathBuf};

use profiledb::{Column, Db, Output, Rows, Type, Value};

use crate::format::{self, Format};

/// How exported rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A header row, then one line per pair.
    Csv,
    /// One JSON object per pair.
    Jsonl,
    /// An Apache Parquet file, the items with their declared types.
    Parquet,
}

/// One pair: its line, its cells, and the user and time read.
struct Pair {
    cells: Vec<String>,
    user: String,
    ts: i64,
}

/// Reads the pairs file: its header, and each row's cells, user and time.
fn read_pairs(path: &Path) -> Result<(Vec<String>, Vec<Pair>), String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            format!(
                "{} has no '{name}' column (its header: {})",
                path.display(),
                header.join(", ")
            )
        })
    };
    let (user_at, ts_at) = (column("user")?, column("ts")?);
    let mut pairs = Vec::new();
    for record in r.records() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        let at = |i: usize| record.get(i).unwrap_or("");
        let user = at(user_at).to_owned();
        if user.is_empty() {
            return Err(format!("{} line {line}: the user is empty", path.display()));
        }
        let text = at(ts_at);
        let ts = match text.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => profiledb::parse_timestamp(text).map_err(|e| {
                format!(
                    "{} line {line}: ts '{text}' is not a time: {e}",
                    path.display()
                )
            })?,
        };
        pairs.push(Pair {
            cells: record.iter().map(str::to_owned).collect(),
            user,
            ts,
        });
    }
    Ok((header, pairs))
}

/// The rows of the export: each pair's cells, then the items it selects.
fn export(db: &Db, pairs_file: &Path, select: &str) -> Result<Rows, String> {
    let (header, pairs) = read_pairs(pairs_file)?;
    let asks: Vec<(String, i64)> = pairs.iter().map(|p| (p.user.clone(), p.ts)).collect();
    let items = db
        .rows_as_of(select, &asks)
        .map_err(|e| format!("--select \"{select}\": {e}"))?;
    let mut columns: Vec<Column> = header
        .iter()
        .map(|name| Column {
            name: name.clone(),
            ty: Type::String,
        })
        .collect();
    columns.extend(items.columns);
    let rows = pairs
        .into_iter()
        .zip(items.rows)
        .map(|(pair, values)| {
            let mut row: Vec<Value> = pair.cells.into_iter().map(Value::String).collect();
            row.resize(header.len(), Value::Null);
            row.extend(values);
            row
        })
        .collect();
    Ok(Rows { columns, rows })
}

/// Runs `profiledb export`; the exit code.
pub fn run(
    db: &Db,
    pairs_file: &Path,
    select: &str,
    format: ExportFormat,
    out: Option<&PathBuf>,
) -> u8 {
    let rows = match export(db, pairs_file, select) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let written = match format {
        ExportFormat::Parquet => write_parquet(&rows, out),
        ExportFormat::Csv => write_text(rows, Format::Csv, out),
        ExportFormat::Jsonl => write_text(rows, Format::Json, out),
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Writes `rows` as text in `format`, to `out` or stdout.
fn write_text(rows: Rows, format: Format, out: Option<&PathBuf>) -> Result<(), String> {
    match out {
        Some(path) => std::fs::File::create(path)
            .map(std::io::BufWriter::new)
            .and_then(|mut f| {
                format::print(&Output::Rows(rows), format, &mut f, &mut std::io::sink())?;
                f.flush()
            })
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            format::print(&Output::Rows(rows), format, &mut lock, &mut std::io::sink())
                .and_then(|()| lock.flush())
                .map_err(|e| format!("cannot write the export: {e}"))
        }
    }
}

/// Writes `rows` as a Parquet file, to `out` or stdout (not a terminal).
fn write_parquet(rows: &Rows, out: Option<&PathBuf>) -> Result<(), String> {
    match out {
        Some(path) => std::fs::File::create(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
            .and_then(|f| {
                profiledb::parquet::write_rows(rows, std::io::BufWriter::new(f))
                    .map_err(|e| format!("{}: {e}", path.display()))
            }),
        None => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                return Err("a Parquet file is binary: give -o FILE, or redirect stdout".into());
            }
            let mut bytes = Vec::new();
            profiledb::parquet::write_rows(rows, &mut bytes).map_err(|e| e.to_string())?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write the export: {e}"))
        }
    }
}
