//! Bulk import of event files: JSON Lines, CSV and Parquet, each of them
//! also gzip-compressed. `profiledb import` and the Python package's
//! `import_file` are this module.
//!
//! The whole input is read and checked against the schema first. With any bad
//! line, every bad line is listed and nothing is written, unless `skip_bad`
//! asks to write the good ones. The write pass then reads the input again, so
//! memory stays bounded by one batch however large the input.
//!
//! Reading twice needs an input that can be read twice. A regular file is read
//! in place, and must not change between the passes (its size and modification
//! time are checked before anything is written, and the write pass reads only
//! the bytes the check pass saw). Anything else (`-` for stdin, a pipe, a process
//! substitution such as `<(zcat events.gz)`) is first copied once into an
//! unlinked temporary file in `$TMPDIR`, and both passes read that copy. A
//! `.gz` file, and gzip on stdin, is copied there decompressed (`flate2`, the
//! maintained gzip crate, pure Rust by default), read in the format of its
//! inner name (`events.csv.gz` is CSV).
//!
//! A Parquet file's "lines" are its rows, numbered from 1. Its columns are
//! read as Arrow arrays ([`crate::parquet`]) and become events exactly as an
//! Arrow table given to the library does ([`crate::arrow::events_from_batch`]):
//! `user` and `type` strings, `ts` a timestamp column (of any unit), integer
//! epoch milliseconds or RFC 3339 strings, the other columns fields.
//!
//! [`Shape`] renames fields as they are read; numeric times are
//! milliseconds unless [`Shape::ts_unit`] says otherwise, and one that looks
//! like epoch seconds is a bad line with a hint rather than a date in 1970.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema};

use crate::{AttrType, Catalog, Db, Event, EventError};

/// Events per write batch (and per request to a server).
pub const BATCH: usize = 10_000;

/// The unit of numeric times (`ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsUnit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
}

impl std::str::FromStr for TsUnit {
    type Err = String;

    /// `s`, `ms` or `us`.
    fn from_str(s: &str) -> Result<TsUnit, String> {
        match s {
            "s" => Ok(TsUnit::Seconds),
            "ms" => Ok(TsUnit::Millis),
            "us" => Ok(TsUnit::Micros),
            other => Err(format!(
                "'{other}' is not a unit of time stamps: use s, ms or us"
            )),
        }
    }
}

/// How lines become events beside their format: field renames, and the
/// unit of numeric times (`None`: milliseconds, with numbers that look like
/// seconds refused).
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// `from` → `to` field renames (`userId=user`).
    pub renames: Vec<(String, String)>,
    /// The unit of numeric times.
    pub ts_unit: Option<TsUnit>,
}

impl Shape {
    /// A shape from `from=to` renames.
    ///
    /// # Errors
    /// A rename that is not `from=to`.
    pub fn new(maps: &[String], ts_unit: Option<TsUnit>) -> Result<Shape, String> {
        let mut renames = Vec::with_capacity(maps.len());
        for m in maps {
            match m.split_once('=') {
                Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                    renames.push((from.to_owned(), to.to_owned()));
                }
                _ => {
                    return Err(format!(
                        "a field rename is from=to (such as userId=user), not '{m}'"
                    ));
                }
            }
        }
        Ok(Shape { renames, ts_unit })
    }

    /// The name a field goes by after the renames.
    fn rename<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(from, _)| from == name)
            .map_or(name, |(_, to)| to.as_str())
    }

    /// `obj` with its fields renamed (when `rename`: a CSV header is renamed
    /// as it is read) and, when `numeric_ts`, its numeric `ts` in
    /// milliseconds.
    fn apply(
        &self,
        obj: serde_json::Map<String, serde_json::Value>,
        rename: bool,
        numeric_ts: bool,
    ) -> Result<serde_json::Value, EventError> {
        let mut out = serde_json::Map::with_capacity(obj.len());
        for (k, v) in obj {
            let name = if rename { self.rename(&k) } else { &k }.to_owned();
            if out.contains_key(&name) {
                return Err(bad(Some(&name), "given twice (after renaming)"));
            }
            out.insert(name, v);
        }
        if numeric_ts && let Some(ts) = out.get("ts").and_then(serde_json::Value::as_f64) {
            let ms = self.ts_ms(ts).map_err(|e| bad(Some("ts"), e))?;
            out.insert("ts".into(), ms.into());
        }
        Ok(serde_json::Value::Object(out))
    }

    /// A numeric time in milliseconds. Without a unit, a number that reads
    /// as a time in 1970–1973 in ms (10^8 to 10^11) but as 1973–5138 in
    /// seconds is refused: it is most likely seconds.
    fn ts_ms(&self, ts: f64) -> Result<i64, String> {
        let ms = match self.ts_unit {
            Some(TsUnit::Seconds) => ts * 1e3,
            Some(TsUnit::Micros) => (ts / 1e3).floor(),
            Some(TsUnit::Millis) => ts,
            None if (1e8..1e11).contains(&ts.abs()) => {
                return Err(format!(
                    "ts {ts} looks like epoch seconds (as milliseconds it is {}); give the unit s to read seconds (--ts-unit s), or ms to keep milliseconds",
                    crate::format_timestamp(ts as i64)
                ));
            }
            None => ts,
        };
        if ms.fract() != 0.0 || !ms.is_finite() || ms.abs() > 9.0e15 {
            return Err(format!("ts {ts} is not a whole number of milliseconds"));
        }
        Ok(ms as i64)
    }
}

/// A bad line: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The input, by the name it was given.
    pub file: PathBuf,
    /// Its line (a CSV record's first line; a Parquet row, from 1).
    pub line: u64,
    /// Why it is not an event the schema takes, and the field at fault.
    pub error: EventError,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.error)
    }
}

/// Why a line is not an event: the field at fault, when one is.
fn bad(field: Option<&str>, reason: impl Into<String>) -> EventError {
    EventError {
        field: field.map(str::to_owned),
        reason: reason.into(),
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events written.
    pub written: u64,
    /// Lines not written (with `skip_bad`).
    pub rejected: Vec<BadLine>,
    /// Events skipped because their `event_id` was accepted before.
    pub duplicates: u64,
}

/// An input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One JSON event per line.
    JsonLines,
    /// A header with `user`, `type` and `ts`, then one event per row.
    Csv,
    /// Apache Parquet: one event per row, columns as fields.
    Parquet,
}

impl Kind {
    /// The format of `path` by its extension: `.csv` is CSV, `.parquet`
    /// (or `.pq`) Parquet, anything else JSON Lines.
    pub fn of(path: &Path) -> Kind {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Kind::Csv,
            Some(e) if e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq") => {
                Kind::Parquet
            }
            _ => Kind::JsonLines,
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    /// `jsonl`, `csv` or `parquet`.
    fn from_str(s: &str) -> Result<Kind, String> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Ok(Kind::JsonLines),
            "csv" => Ok(Kind::Csv),
            "parquet" => Ok(Kind::Parquet),
            other => Err(format!(
                "'{other}' is not a format of events: use jsonl, csv or parquet"
            )),
        }
    }
}

/// Why an import stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// Lines that are not valid events; nothing was written.
    BadLines(Vec<BadLine>),
    /// A file could not be read, or a write failed.
    Io(String),
    /// [`crate::interrupt`] stopped it; so many events were written before.
    Interrupted {
        /// Events written before it stopped.
        written: u64,
    },
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::BadLines(bad) => {
                write!(
                    f,
                    "{} bad line{}; nothing was written",
                    bad.len(),
                    if bad.len() == 1 { "" } else { "s" }
                )?;
                for b in bad.iter().take(10) {
                    write!(f, "\n{b}")?;
                }
                if bad.len() > 10 {
                    write!(f, "\n... and {} more", bad.len() - 10)?;
                }
                Ok(())
            }
            ImportError::Io(msg) => f.write_str(msg),
            ImportError::Interrupted { written } => {
                write!(
                    f,
                    "the import was interrupted; {written} events were written before it stopped"
                )
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// What an import reports as it reads: a phase (`checking`, `writing`) over
/// so many bytes, then the bytes read. Every method does nothing by default.
pub trait Progress {
    /// A pass over `total` bytes of input begins.
    fn phase(&self, _what: &'static str, _total: u64) {}
    /// `bytes` more were read.
    fn advance(&self, _bytes: u64) {}
    /// The pass ended.
    fn finish(&self) {}
}

/// No progress reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// One input, readable once per pass.
#[derive(Debug)]
pub struct Input {
    /// The name it was given by, for messages.
    name: PathBuf,
    kind: Kind,
    data: Data,
    /// Its length when the check pass started; the write pass reads no further.
    bytes: u64,
}

#[derive(Debug)]
enum Data {
    /// A regular file, read in place; its modification time as first seen.
    File { modified: Option<SystemTime> },
    /// Anything else, copied once into an unlinked temporary file.
    Spooled(File),
}

impl Input {
    /// Opens `name` (`-` is stdin), in `given` format or the one its name
    /// says, spooling it when it is not a regular file.
    ///
    /// # Errors
    /// A file that cannot be read, or is a directory.
    pub fn open(name: &Path, given: Option<Kind>) -> Result<Input, ImportError> {
        let kind = given.unwrap_or_else(|| Kind::of(name));
        let spool = |mut from: Box<dyn Read>| -> Result<Input, ImportError> {
            let mut file = tempfile::tempfile().map_err(|e| {
                ImportError::Io(format!(
                    "cannot create a temporary file to hold {}: {e}",
                    name.display()
                ))
            })?;
            let bytes = std::io::copy(&mut from, &mut file).map_err(|e| {
                ImportError::Io(format!(
                    "cannot copy {} to a temporary file: {e}",
                    name.display()
                ))
            })?;
            Ok(Input {
                name: name.to_owned(),
                kind,
                data: Data::Spooled(file),
                bytes,
            })
        };
        if name.as_os_str() == "-" {
            // Piped gzip is read decompressed too.
            let input = spool(Box::new(std::io::stdin().lock()))?;
            return input.gunzipped(&spool);
        }
        // A gzip file is read decompressed, in the format its inner name
        // says (`events.csv.gz` is CSV).
        if name
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
        {
            let file = File::open(name).map_err(|e| io_error(name, &e))?;
            let mut input = spool(Box::new(flate2::read::MultiGzDecoder::new(file)))?;
            if given.is_none() {
                input.kind = Kind::of(&name.with_extension(""));
            }
            return Ok(input);
        }
        let meta = std::fs::metadata(name).map_err(|e| io_error(name, &e))?;
        if meta.is_dir() {
            return Err(ImportError::Io(format!(
                "{} is a directory, not a file of events",
                name.display()
            )));
        }
        if !meta.is_file() {
            let file = File::open(name).map_err(|e| io_error(name, &e))?;
            return spool(Box::new(file));
        }
        Ok(Input {
            name: name.to_owned(),
            kind,
            data: Data::File {
                modified: meta.modified().ok(),
            },
            bytes: meta.len(),
        })
    }

    /// The name it was given by.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Its size in bytes (decompressed, for a gzip input).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// This spooled input decompressed, when it is gzip (by its first two
    /// bytes); else as it is.
    fn gunzipped(
        self,
        spool: &dyn Fn(Box<dyn Read>) -> Result<Input, ImportError>,
    ) -> Result<Input, ImportError> {
        let mut magic = [0u8; 2];
        let is_gzip = self.bytes >= 2
            && self
                .reader()?
                .read_exact(&mut magic)
                .is_ok_and(|()| magic == [0x1f, 0x8b]);
        if !is_gzip {
            return Ok(self);
        }
        spool(Box::new(flate2::read::MultiGzDecoder::new(self.reader()?)))
    }

    /// The file holding it, from the start.
    fn file(&self) -> Result<File, ImportError> {
        match &self.data {
            Data::File { .. } => File::open(&self.name),
            Data::Spooled(f) => f.try_clone().and_then(|mut f| {
                f.seek(SeekFrom::Start(0))?;
                Ok(f)
            }),
        }
        .map_err(|e| io_error(&self.name, &e))
    }

    /// A reader from the start, over the bytes the check pass saw.
    fn reader(&self) -> Result<impl Read + use<>, ImportError> {
        Ok(self.file()?.take(self.bytes))
    }

    /// Refuses a regular file that changed since the check pass started.
    fn check_unchanged(&self) -> Result<(), ImportError> {
        let Data::File { modified } = &self.data else {
            return Ok(());
        };
        let meta = std::fs::metadata(&self.name).map_err(|e| io_error(&self.name, &e))?;
        if meta.len() != self.bytes || meta.modified().ok() != *modified {
            return Err(ImportError::Io(format!(
                "{} changed while it was being checked; nothing was written",
                self.name.display()
            )));
        }
        Ok(())
    }
}

/// Imports `files` into `db` (`-` reads stdin), each in `kind`, or by its
/// extension when `kind` is `None`.
///
/// # Errors
/// [`ImportError::BadLines`] (and nothing written) when a line is bad and
/// `skip_bad` is off; [`ImportError::Io`] when a file cannot be read or a
/// write fails; [`ImportError::Interrupted`] after [`crate::interrupt`].
pub fn import(
    db: &Db,
    files: &[PathBuf],
    kind: Option<Kind>,
    shape: &Shape,
    skip_bad: bool,
    progress: &dyn Progress,
) -> Result<Summary, ImportError> {
    let inputs = open_all(files, kind)?;
    let total_bytes: u64 = inputs.iter().map(|i| i.bytes).sum();
    let catalog = db.catalog();
    let (rejected, lines) = check_all(&inputs, &catalog, shape, skip_bad, progress, &|ev| {
        db.validate(ev)
    })?;

    // Pass 2: write the good lines in batches.
    progress.phase("writing", total_bytes);
    let mut written = 0u64;
    let mut duplicates = 0u64;
    for (input, checked) in inputs.iter().zip(lines) {
        let bad: HashSet<u64> = rejected
            .iter()
            .filter(|b| b.file == input.name)
            .map(|b| b.line)
            .collect();
        let mut batch = Vec::with_capacity(BATCH);
        let read = for_each_event(input, &catalog, shape, progress, |line, ev| {
            match ev {
                Ok(ev) if !bad.contains(&line) => batch.push(ev),
                _ => return Ok(()),
            }
            if batch.len() == BATCH {
                if crate::interrupted() {
                    return Err(ImportError::Interrupted { written });
                }
                let (w, d) = write(db, &mut batch, &input.name)?;
                written += w;
                duplicates += d;
            }
            Ok(())
        })?;
        let (w, d) = write(db, &mut batch, &input.name)?;
        written += w;
        duplicates += d;
        if read != checked {
            // Unreachable unless the input changed under us: say so, never report
            // success over lines that were not written.
            return Err(ImportError::Io(format!(
                "{} read as {checked} lines when checked but {read} when written; {written} events were written",
                input.name.display()
            )));
        }
    }
    progress.finish();
    Ok(Summary {
        written,
        rejected,
        duplicates,
    })
}

/// Opens every input (`-` is stdin), in `kind` or by its name.
///
/// # Errors
/// The first input that cannot be opened.
pub fn open_all(files: &[PathBuf], kind: Option<Kind>) -> Result<Vec<Input>, ImportError> {
    files.iter().map(|f| Input::open(f, kind)).collect()
}

/// Pass 1: every line of `inputs` decoded and `validate`d. Returns the bad
/// lines and each input's line count.
///
/// # Errors
/// [`ImportError::BadLines`] when there are some and `skip_bad` is off;
/// [`ImportError::Io`] when an input cannot be read or changed meanwhile.
pub fn check_all(
    inputs: &[Input],
    catalog: &Catalog,
    shape: &Shape,
    skip_bad: bool,
    progress: &dyn Progress,
    validate: &dyn Fn(&Event) -> Result<(), EventError>,
) -> Result<(Vec<BadLine>, Vec<u64>), ImportError> {
    progress.phase("checking", inputs.iter().map(|i| i.bytes).sum());
    let mut rejected = Vec::new();
    let mut lines = Vec::with_capacity(inputs.len());
    for input in inputs {
        lines.push(for_each_event(
            input,
            catalog,
            shape,
            progress,
            |line, ev| {
                if line % 4096 == 0 && crate::interrupted() {
                    return Err(ImportError::Interrupted { written: 0 });
                }
                if let Err(error) = ev.and_then(|ev| validate(&ev)) {
                    rejected.push(BadLine {
                        file: input.name.clone(),
                        line,
                        error,
                    });
                }
                Ok(())
            },
        )?);
    }
    progress.finish();
    if !rejected.is_empty() && !skip_bad {
        return Err(ImportError::BadLines(rejected));
    }
    for input in inputs {
        input.check_unchanged()?;
    }
    Ok((rejected, lines))
}

/// Writes `batch`: the events written, and those skipped as duplicates.
fn write(db: &Db, batch: &mut Vec<Event>, file: &Path) -> Result<(u64, u64), ImportError> {
    if batch.is_empty() {
        return Ok((0, 0));
    }
    let n = db
        .ingest_counted(batch)
        .map_err(|e| ImportError::Io(format!("writing events from {}: {e}", file.display())))?;
    batch.clear();
    Ok((n.accepted as u64, n.duplicates as u64))
}

fn io_error(path: &Path, e: &std::io::Error) -> ImportError {
    ImportError::Io(format!("cannot read {}: {e}", path.display()))
}

/// A reader that reports the bytes it reads.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Calls `f` with each line's number and its event, or why it is not one.
/// Returns how many lines (CSV records, Parquet rows) it read.
fn for_each_event(
    input: &Input,
    catalog: &Catalog,
    shape: &Shape,
    progress: &dyn Progress,
    mut f: impl FnMut(u64, Result<Event, EventError>) -> Result<(), ImportError>,
) -> Result<u64, ImportError> {
    match input.kind {
        Kind::Parquet => parquet_events(input, shape, progress, f),
        Kind::JsonLines | Kind::Csv => {
            text_objects(input, catalog, shape, progress, |line, obj| {
                f(line, obj.and_then(|o| Event::from_json(&o)))
            })
        }
    }
}

/// Calls `f` with each line's number and its event as a JSON object,
/// renamed and with its time in milliseconds, before it is decoded; or why
/// the line is not one. Returns how many lines (CSV records, Parquet rows)
/// it read.
///
/// # Errors
/// An input that cannot be read (a bad line is `f`'s to judge), or the
/// first error `f` returns.
pub fn for_each_object(
    input: &Input,
    catalog: &Catalog,
    shape: &Shape,
    progress: &dyn Progress,
    mut f: impl FnMut(u64, Result<serde_json::Value, EventError>) -> Result<(), ImportError>,
) -> Result<u64, ImportError> {
    match input.kind {
        Kind::Parquet => parquet_events(input, shape, progress, |line, ev| {
            f(line, ev.map(|ev| event_object(&ev)))
        }),
        Kind::JsonLines | Kind::Csv => text_objects(input, catalog, shape, progress, f),
    }
}

/// [`for_each_object`] over a text input, JSON Lines or CSV.
fn text_objects(
    input: &Input,
    catalog: &Catalog,
    shape: &Shape,
    progress: &dyn Progress,
    mut f: impl FnMut(u64, Result<serde_json::Value, EventError>) -> Result<(), ImportError>,
) -> Result<u64, ImportError> {
    let path = input.name.as_path();
    let reader = BufReader::new(Counting {
        inner: input.reader()?,
        progress,
    });
    let mut count = 0u64;
    match input.kind {
        Kind::Parquet => {
            return Err(ImportError::Io(format!(
                "{} is Parquet, not text",
                path.display()
            )));
        }
        Kind::JsonLines => {
            let mut reader = reader;
            let mut buf = Vec::new();
            let mut number = 0u64;
            loop {
                buf.clear();
                if reader
                    .read_until(b'\n', &mut buf)
                    .map_err(|e| io_error(path, &e))?
                    == 0
                {
                    break;
                }
                number += 1;
                count += 1;
                // A line that is not UTF-8 is a bad line, not a failed import.
                let event = match std::str::from_utf8(&buf) {
                    Ok(line) if line.trim().is_empty() => continue,
                    Ok(line) => json_object(line, shape),
                    Err(e) => Err(bad(None, format!("not UTF-8: {e}"))),
                };
                f(number, event)?;
            }
        }
        Kind::Csv => {
            let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
            let header: csv::StringRecord = rdr
                .headers()
                .map_err(|e| {
                    ImportError::Io(format!(
                        "{}: cannot read the CSV header: {e}",
                        path.display()
                    ))
                })?
                .iter()
                .map(|h| shape.rename(h))
                .collect();
            for required in ["user", "type", "ts"] {
                if !header.iter().any(|h| h == required) {
                    return Err(ImportError::Io(format!(
                        "{}: the CSV header has no '{required}' column; it needs user, type and ts (rename columns: --map userId=user)",
                        path.display()
                    )));
                }
            }
            // A record of a CRLF file starts, as the reader counts, at the
            // '\n' that ends the line before it: one line short.
            let crlf = u64::from(ends_lines_with_crlf(input)?);
            let mut record = csv::StringRecord::new();
            loop {
                let before = rdr.position().line() + crlf;
                let read = rdr.read_record(&mut record);
                if !matches!(read, Ok(false)) {
                    count += 1;
                }
                let line = record.position().map_or(before, |p| p.line() + crlf);
                match read {
                    Ok(false) => break,
                    Ok(true) => f(line, csv_object(&header, &record, catalog, shape))?,
                    Err(e) => {
                        if let csv::ErrorKind::Io(io) = e.kind() {
                            return Err(io_error(path, io));
                        }
                        let line = e.position().map_or(before, |p| p.line() + crlf);
                        f(line, Err(bad(None, e.to_string())))?;
                    }
                }
            }
        }
    }
    Ok(count)
}

/// Calls `f` with each row of a Parquet input (numbered from 1) and the
/// event the Arrow reader makes of it ([`crate::arrow::events_from_batch`],
/// columns renamed and a numeric `ts` in the shape's unit), or why it is not
/// one. Returns how many rows it read.
fn parquet_events(
    input: &Input,
    shape: &Shape,
    progress: &dyn Progress,
    mut f: impl FnMut(u64, Result<Event, EventError>) -> Result<(), ImportError>,
) -> Result<u64, ImportError> {
    let path = input.name.as_path();
    let batches = crate::parquet::read_batches(input.file()?, BATCH)
        .map_err(|e| ImportError::Io(format!("{}: {e}", path.display())))?;
    let total_rows = batches.rows();
    let schema = renamed(&batches.schema(), shape)
        .map_err(|e| ImportError::Io(format!("{}: {e}", path.display())))?;
    for required in ["user", "type", "ts"] {
        if schema.index_of(required).is_err() {
            return Err(ImportError::Io(format!(
                "{}: the Parquet file has no '{required}' column; it needs user, type and ts (rename columns: --map userId=user)",
                path.display()
            )));
        }
    }
    // An integer `ts` is in the shape's unit; a timestamp column says its own.
    let numeric_ts = schema
        .field_with_name("ts")
        .is_ok_and(|f| f.data_type().is_integer());
    let timed = |mut ev: Event| -> Result<Event, EventError> {
        if numeric_ts {
            ev.ts = shape.ts_ms(ev.ts as f64).map_err(|e| bad(Some("ts"), e))?;
        }
        Ok(ev)
    };
    let mut line = 0u64;
    let mut reported = 0u64;
    for batch in batches {
        let batch = batch.map_err(|e| ImportError::Io(format!("{}: {e}", path.display())))?;
        let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| ImportError::Io(format!("{}: {e}", path.display())))?;
        let rows = batch.num_rows();
        // A batch converts whole; one with a bad row is converted row by row
        // so that each bad row is named.
        match crate::arrow::events_from_batch(&batch, 0) {
            Ok(events) => {
                for ev in events {
                    line += 1;
                    f(line, timed(ev))?;
                }
            }
            Err(_) => {
                for row in 0..rows {
                    line += 1;
                    let one =
                        match crate::arrow::events_from_batch(&batch.slice(row, 1), 0) {
                            Ok(evs) => evs
                                .into_iter()
                                .next()
                                .ok_or_else(|| bad(None, "the row made no event"))
                                .and_then(timed),
                            Err(crate::Error::Storage(
                                profiledb_storage::Error::InvalidEvent { field, reason, .. },
                            )) => Err(EventError { field, reason }),
                            Err(other) => Err(bad(None, other.to_string())),
                        };
                    f(line, one)?;
                }
            }
        }
        // Bytes read, in proportion to the rows.
        let done = input.bytes * line / total_rows.max(1);
        progress.advance(done.saturating_sub(reported));
        reported = done;
    }
    Ok(line)
}

/// `schema` with its fields renamed by `shape`.
fn renamed(schema: &Schema, shape: &Shape) -> Result<Arc<Schema>, String> {
    let mut seen = HashSet::new();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let name = shape.rename(f.name());
            if !seen.insert(name.to_owned()) {
                return Err(format!("column '{name}' is given twice (after renaming)"));
            }
            Ok(f.as_ref().clone().with_name(name))
        })
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// An event as the JSON object it would be read from.
fn event_object(ev: &Event) -> serde_json::Value {
    // Serializing to memory cannot fail: keys are strings, and a float that
    // is not finite is written as null.
    serde_json::to_value(crate::json::JsonEvent(ev)).unwrap_or_default()
}

/// Whether the input's first line ends with `\r\n`.
fn ends_lines_with_crlf(input: &Input) -> Result<bool, ImportError> {
    let mut first = Vec::new();
    BufReader::new(input.reader()?)
        .read_until(b'\n', &mut first)
        .map_err(|e| io_error(&input.name, &e))?;
    Ok(first.ends_with(b"\r\n"))
}

fn json_object(line: &str, shape: &Shape) -> Result<serde_json::Value, EventError> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| bad(None, format!("invalid JSON: {e}")))?;
    match v {
        serde_json::Value::Object(obj) => shape.apply(obj, true, true),
        other => Ok(other),
    }
}

/// A CSV record as an event: `user`, `type` and `ts` columns, the rest fields.
/// An empty cell is an absent field. A cell bound to a string or tags
/// attribute stays text; otherwise numbers, booleans and JSON arrays (vectors,
/// tags) are read as such, and anything else is a string.
fn csv_object(
    header: &csv::StringRecord,
    record: &csv::StringRecord,
    catalog: &Catalog,
    shape: &Shape,
) -> Result<serde_json::Value, EventError> {
    if record.len() != header.len() {
        return Err(bad(
            None,
            format!(
                "{} fields where the header has {}",
                record.len(),
                header.len()
            ),
        ));
    }
    let cell = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .and_then(|i| record.get(i))
    };
    let event_type = cell("type").unwrap_or_default();
    let mut obj = serde_json::Map::new();
    obj.insert("user".into(), cell("user").unwrap_or_default().into());
    obj.insert("type".into(), event_type.into());
    let ts = cell("ts").unwrap_or_default().trim();
    obj.insert(
        "ts".into(),
        ts.parse::<i64>()
            .map_or_else(|_| ts.into(), serde_json::Value::from),
    );
    for (name, raw) in header.iter().zip(record.iter()) {
        if matches!(name, "user" | "type" | "ts") || raw.is_empty() {
            continue;
        }
        let text_type = catalog
            .attributes
            .iter()
            .find(|a| a.name == name && a.event_type.as_deref() == Some(event_type))
            .map(|a| a.ty)
            .filter(|t| matches!(t, AttrType::String | AttrType::Tags));
        let value = match text_type {
            Some(AttrType::Tags) if raw.trim_start().starts_with('[') => {
                serde_json::from_str(raw).map_err(|e| bad(Some(name), e.to_string()))?
            }
            Some(_) => raw.into(),
            None => match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(
                    v @ (serde_json::Value::Number(_)
                    | serde_json::Value::Bool(_)
                    | serde_json::Value::Array(_)),
                ) => v,
                Err(e) if raw.trim_start().starts_with('[') => {
                    return Err(bad(Some(name), format!("invalid JSON array: {e}")));
                }
                _ => raw.into(),
            },
        };
        obj.insert(name.to_owned(), value);
    }
    shape.apply(obj, false, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::DataType;

    #[test]
    fn kinds_by_name() {
        assert_eq!(Kind::of(Path::new("a/events.csv")), Kind::Csv);
        assert_eq!(Kind::of(Path::new("events.PARQUET")), Kind::Parquet);
        assert_eq!(Kind::of(Path::new("events.jsonl")), Kind::JsonLines);
        assert_eq!(Kind::of(Path::new("events")), Kind::JsonLines);
        assert_eq!("parquet".parse::<Kind>(), Ok(Kind::Parquet));
        assert!("xml".parse::<Kind>().is_err());
        assert_eq!("s".parse::<TsUnit>(), Ok(TsUnit::Seconds));
    }

    #[test]
    fn seconds_are_refused_without_a_unit() {
        let shape = Shape::default();
        let e = shape
            .ts_ms(1_761_991_200.0)
            .expect_err("seconds are refused");
        assert!(e.contains("looks like epoch seconds"), "{e}");
        let secs = Shape {
            ts_unit: Some(TsUnit::Seconds),
            ..Shape::default()
        };
        assert_eq!(secs.ts_ms(1_761_991_200.0), Ok(1_761_991_200_000));
    }

    #[test]
    fn renames_that_collide_are_refused() {
        let shape = Shape::new(&["a=user".into()], None).expect("a rename");
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("user", DataType::Utf8, true),
        ]);
        assert!(
            renamed(&schema, &shape)
                .expect_err("a collision")
                .contains("twice")
        );
        assert!(Shape::new(&["nope".into()], None).is_err());
    }

    #[test]
    fn bad_lines_list_where_and_why() {
        let e = ImportError::BadLines(vec![BadLine {
            file: "e.csv".into(),
            line: 3,
            error: bad(Some("amount"), "not a number"),
        }]);
        assert_eq!(
            e.to_string(),
            "1 bad line; nothing was written\ne.csv:3: field 'amount': not a number"
        );
    }
}
