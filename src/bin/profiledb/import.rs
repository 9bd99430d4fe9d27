//! `profiledb import`: bulk load of JSON Lines and CSV files.
//!
//! The whole input is read and checked against the schema first. With any bad
//! line, every bad line is listed and nothing is written, unless `--skip-bad`
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
//! `--map from=to` renames fields as they are read; numeric times are
//! milliseconds unless `--ts-unit` says otherwise, and one that looks like
//! epoch seconds is a bad line with a hint rather than a date in 1970.
//! `--connect` sends the checked events to a running server in batches.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use profiledb::{AttrType, Catalog, Db, Event};

/// Events per write batch (and per request to a server).
const BATCH: usize = 10_000;

/// The unit of numeric times (`ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TsUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
}

/// How lines become events beside their format: field renames, and the
/// unit of numeric times (`None`: milliseconds, with numbers that look like
/// seconds refused).
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// `from` → `to` field renames (`--map userId=user`).
    pub renames: Vec<(String, String)>,
    pub ts_unit: Option<TsUnit>,
}

impl Shape {
    /// Parses `--map from=to` arguments.
    pub fn new(maps: &[String], ts_unit: Option<TsUnit>) -> Result<Shape, String> {
        let mut renames = Vec::with_capacity(maps.len());
        for m in maps {
            match m.split_once('=') {
                Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                    renames.push((from.to_owned(), to.to_owned()));
                }
                _ => {
                    return Err(format!(
                        "--map takes from=to (such as userId=user), not '{m}'"
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
    /// as it is read) and its numeric `ts` in milliseconds.
    fn apply(
        &self,
        obj: serde_json::Map<String, serde_json::Value>,
        rename: bool,
    ) -> Result<serde_json::Value, String> {
        let mut out = serde_json::Map::with_capacity(obj.len());
        for (k, v) in obj {
            let name = if rename { self.rename(&k) } else { &k }.to_owned();
            if out.contains_key(&name) {
                return Err(format!("field '{name}' is given twice (after --map)"));
            }
            out.insert(name, v);
        }
        if let Some(ts) = out.get("ts").and_then(serde_json::Value::as_f64) {
            out.insert("ts".into(), self.ts_ms(ts)?.into());
        }
        Ok(serde_json::Value::Object(out))
    }

    /// A numeric time in milliseconds. Without a unit, a number that reads
    /// as a time in 1970–1973 in ms (10^8 to 10^11) but as 1973–5138 in
    /// seconds is refused: it is most likely seconds.
    fn ts_ms(&self, ts: f64) -> Result<i64, String> {
        let ms = match self.ts_unit {
            Some(TsUnit::S) => ts * 1e3,
            Some(TsUnit::Us) => (ts / 1e3).floor(),
            Some(TsUnit::Ms) => ts,
            None if (1e8..1e11).contains(&ts.abs()) => {
                return Err(format!(
                    "ts {ts} looks like epoch seconds (as milliseconds it is {}); give --ts-unit s to read seconds, or --ts-unit ms to keep milliseconds",
                    profiledb::format_timestamp(ts as i64)
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
    pub file: PathBuf,
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub written: u64,
    pub rejected: Vec<BadLine>,
    /// Events skipped because their `event_id` was accepted before.
    pub duplicates: u64,
}

/// An input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One JSON event per line.
    #[value(name = "jsonl")]
    JsonLines,
    /// A header with `user`, `type` and `ts`, then one event per row.
    Csv,
}

/// The format of `path` by its extension: `.csv` is CSV, anything else JSON Lines.
fn kind_of(path: &Path) -> Kind {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Kind::Csv,
        _ => Kind::JsonLines,
    }
}

/// One input, readable once per pass.
struct Input {
    /// The name it was given by, for messages.
    name: PathBuf,
    kind: Kind,
    data: Data,
    /// Its length when the check pass started; the write pass reads no further.
    bytes: u64,
}

enum Data {
    /// A regular file, read in place; its size and modification time as first seen.
    File { modified: Option<SystemTime> },
    /// Anything else, copied once into an unlinked temporary file.
    Spooled(File),
}

impl Input {
    /// Opens `name` (`-` is stdin), spooling it when it is not a regular file.
    fn open(name: &Path, given: Option<Kind>) -> Result<Input, ImportError> {
        let kind = given.unwrap_or_else(|| kind_of(name));
        let kind_given = given;
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
            if kind_given.is_none() {
                input.kind = kind_of(&name.with_extension(""));
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

    /// A reader from the start, over the bytes the check pass saw.
    fn reader(&self) -> Result<impl Read + use<>, ImportError> {
        let file = match &self.data {
            Data::File { .. } => File::open(&self.name),
            Data::Spooled(f) => f.try_clone().and_then(|mut f| {
                f.seek(SeekFrom::Start(0))?;
                Ok(f)
            }),
        };
        Ok(file.map_err(|e| io_error(&self.name, &e))?.take(self.bytes))
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
/// extension when `kind` is `None`. Returns `Err` with the bad lines (and writes
/// nothing) when a line is bad and `skip_bad` is off, and `Err` with a message
/// when a file cannot be read.
pub fn import(
    db: &Db,
    files: &[PathBuf],
    kind: Option<Kind>,
    shape: &Shape,
    skip_bad: bool,
) -> Result<Summary, ImportError> {
    let inputs = open_all(files, kind)?;
    let total_bytes: u64 = inputs.iter().map(|i| i.bytes).sum();
    let catalog = db.catalog();
    let (rejected, lines) = check_all(&inputs, &catalog, shape, skip_bad, &|ev| {
        db.validate(ev).map_err(|e| e.to_string())
    })?;

    // Pass 2: write the good lines in batches.
    let bar = progress(total_bytes, "writing");
    let mut written = 0u64;
    let mut duplicates = 0u64;
    for (input, checked) in inputs.iter().zip(lines) {
        let bad: HashSet<u64> = rejected
            .iter()
            .filter(|b| b.file == input.name)
            .map(|b| b.line)
            .collect();
        let mut batch = Vec::with_capacity(BATCH);
        let read = for_each_event(input, &catalog, shape, &bar, |line, ev| {
            match ev {
                Ok(ev) if !bad.contains(&line) => batch.push(ev),
                _ => return Ok(()),
            }
            if batch.len() == BATCH {
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
    bar.finish_and_clear();
    Ok(Summary {
        written,
        rejected,
        duplicates,
    })
}

/// [`import`] into a running server: the inputs are checked here (each
/// line an event), then sent in batches of [`BATCH`], each one request (and
/// one atomic write there). Without `skip_bad`, a bad line found here sends
/// nothing, and a batch the server refuses (an event that does not fit the
/// schema) stops the import, saying how many events the earlier batches
/// wrote; with it, the server writes the good events of each batch and
/// answers the rejected ones, listed by line.
pub fn import_remote(
    client: &crate::backend::Client,
    files: &[PathBuf],
    kind: Option<Kind>,
    shape: &Shape,
    skip_bad: bool,
) -> Result<Summary, ImportError> {
    let inputs = open_all(files, kind)?;
    let total_bytes: u64 = inputs.iter().map(|i| i.bytes).sum();
    let catalog = remote_catalog(client)?;
    // The server checks each event against its schema as it writes.
    let (mut rejected, _) = check_all(&inputs, &catalog, shape, skip_bad, &|_| Ok(()))?;
    let bar = progress(total_bytes, "sending");
    let (mut written, mut duplicates) = (0u64, 0u64);
    for input in &inputs {
        let bad: HashSet<u64> = rejected
            .iter()
            .filter(|b| b.file == input.name)
            .map(|b| b.line)
            .collect();
        let mut batch: Vec<(u64, serde_json::Value)> = Vec::with_capacity(BATCH);
        let mut send = |batch: &mut Vec<(u64, serde_json::Value)>,
                        rejected: &mut Vec<BadLine>|
         -> Result<(), ImportError> {
            if batch.is_empty() {
                return Ok(());
            }
            let body = serde_json::Value::Array(batch.iter().map(|(_, o)| o.clone()).collect());
            let (status, answer) = client
                .post_events(body.to_string(), skip_bad)
                .map_err(ImportError::Io)?;
            let line_of = |i: &serde_json::Value| {
                i.as_u64()
                    .and_then(|i| batch.get(i as usize))
                    .map_or(0, |(line, _)| *line)
            };
            if status != 200 {
                let e = &answer["error"];
                let at = if e["index"].is_null() {
                    String::new()
                } else {
                    format!("{}:{}: ", input.name.display(), line_of(&e["index"]))
                };
                return Err(ImportError::Io(format!(
                    "{at}{} (the server answered {status}); {written} events were written before it, by earlier requests",
                    e["message"].as_str().unwrap_or("refused")
                )));
            }
            written += answer["accepted"].as_u64().unwrap_or(0);
            duplicates += answer["duplicates"].as_u64().unwrap_or(0);
            for r in answer["rejected"].as_array().into_iter().flatten() {
                let field = r["field"]
                    .as_str()
                    .map(|f| format!("field '{f}': "))
                    .unwrap_or_default();
                rejected.push(BadLine {
                    file: input.name.clone(),
                    line: line_of(&r["index"]),
                    reason: format!("{field}{}", r["reason"].as_str().unwrap_or_default()),
                });
            }
            batch.clear();
            Ok(())
        };
        for_each_object(input, &catalog, shape, &bar, |line, obj| {
            if let (Ok(obj), false) = (obj, bad.contains(&line)) {
                batch.push((line, obj));
            }
            if batch.len() == BATCH {
                send(&mut batch, &mut rejected)?;
            }
            Ok(())
        })?;
        send(&mut batch, &mut rejected)?;
    }
    bar.finish_and_clear();
    rejected.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(Summary {
        written,
        rejected,
        duplicates,
    })
}

/// The server's attributes, as much of a catalog as reading CSV needs
/// (which cells stay text): `SHOW ATTRIBUTES`, each definition parsed.
fn remote_catalog(client: &crate::backend::Client) -> Result<Catalog, ImportError> {
    let out = client
        .query("SHOW ATTRIBUTES", &[])
        .map_err(|f| ImportError::Io(format!("reading the server's schema: {}", f.message)))?;
    let mut catalog = Catalog::default();
    for row in out.rows().map(|r| r.rows.as_slice()).unwrap_or_default() {
        let Some(profiledb::Value::String(text)) = row.get(1) else {
            continue;
        };
        if let Ok(profiledb_query::ast::Statement::CreateAttribute { name, ty, on }) =
            profiledb_query::parse_statement(text)
        {
            catalog.attributes.push(profiledb::AttributeDef {
                id: 0,
                name: name.value,
                ty,
                event_type: on.map(|e| e.value),
                version: 0,
                backfilled_from: None,
            });
        }
    }
    Ok(catalog)
}

/// Opens every input (`-` is stdin), in `kind` or by its name.
fn open_all(files: &[PathBuf], kind: Option<Kind>) -> Result<Vec<Input>, ImportError> {
    files.iter().map(|f| Input::open(f, kind)).collect()
}

/// Pass 1: every line of `inputs` decoded and `validate`d. Returns the bad
/// lines and each input's line count; `Err` with the bad lines when there
/// are some and `skip_bad` is off, or when an input changed meanwhile.
fn check_all(
    inputs: &[Input],
    catalog: &Catalog,
    shape: &Shape,
    skip_bad: bool,
    validate: &dyn Fn(&Event) -> Result<(), String>,
) -> Result<(Vec<BadLine>, Vec<u64>), ImportError> {
    let bar = progress(inputs.iter().map(|i| i.bytes).sum(), "checking");
    let mut rejected = Vec::new();
    let mut lines = Vec::with_capacity(inputs.len());
    for input in inputs {
        lines.push(for_each_event(input, catalog, shape, &bar, |line, ev| {
            if let Err(reason) = ev.and_then(|ev| validate(&ev)) {
                rejected.push(BadLine {
                    file: input.name.clone(),
                    line,
                    reason,
                });
            }
            Ok(())
        })?);
    }
    bar.finish_and_clear();
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

/// Why an import stopped.
#[derive(Debug)]
pub enum ImportError {
    /// Lines that are not valid events; nothing was written.
    BadLines(Vec<BadLine>),
    /// A file could not be read, or a write failed.
    Io(String),
}

fn io_error(path: &Path, e: &std::io::Error) -> ImportError {
    ImportError::Io(format!("cannot read {}: {e}", path.display()))
}

fn progress(total: u64, what: &'static str) -> ProgressBar {
    // indicatif draws only when stderr is a terminal.
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

/// A reader that advances a progress bar by the bytes it reads.
struct Counting<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Calls `f` with each line's number and its event, or why it is not one.
/// Returns how many lines (CSV records) it read.
fn for_each_event(
    input: &Input,
    catalog: &Catalog,
    shape: &Shape,
    bar: &ProgressBar,
    mut f: impl FnMut(u64, Result<Event, String>) -> Result<(), ImportError>,
) -> Result<u64, ImportError> {
    for_each_object(input, catalog, shape, bar, |line, obj| {
        f(
            line,
            obj.and_then(|o| Event::from_json(&o).map_err(|e| e.to_string())),
        )
    })
}

/// [`for_each_event`], with each line's event as a JSON object, renamed and
/// with its time in milliseconds, before it is decoded.
fn for_each_object(
    input: &Input,
    catalog: &Catalog,
    shape: &Shape,
    bar: &ProgressBar,
    mut f: impl FnMut(u64, Result<serde_json::Value, String>) -> Result<(), ImportError>,
) -> Result<u64, ImportError> {
    let path = input.name.as_path();
    let reader = BufReader::new(Counting {
        inner: input.reader()?,
        bar,
    });
    let mut count = 0u64;
    match input.kind {
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
                    Err(e) => Err(format!("not UTF-8: {e}")),
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
                        "{}: the CSV header has no '{required}' column; it needs user, type and ts (--map renames columns: --map userId=user)",
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
                        f(line, Err(e.to_string()))?;
                    }
                }
            }
        }
    }
    Ok(count)
}

/// Whether the input's first line ends with `\r\n`.
fn ends_lines_with_crlf(input: &Input) -> Result<bool, ImportError> {
    let mut first = Vec::new();
    BufReader::new(input.reader()?)
        .read_until(b'\n', &mut first)
        .map_err(|e| io_error(&input.name, &e))?;
    Ok(first.ends_with(b"\r\n"))
}

fn json_object(line: &str, shape: &Shape) -> Result<serde_json::Value, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    match v {
        serde_json::Value::Object(obj) => shape.apply(obj, true),
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
) -> Result<serde_json::Value, String> {
    if record.len() != header.len() {
        return Err(format!(
            "{} fields where the header has {}",
            record.len(),
            header.len()
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
                serde_json::from_str(raw).map_err(|e| format!("field '{name}': {e}"))?
            }
            Some(_) => raw.into(),
            None => match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(
                    v @ (serde_json::Value::Number(_)
                    | serde_json::Value::Bool(_)
                    | serde_json::Value::Array(_)),
                ) => v,
                Err(e) if raw.trim_start().starts_with('[') => {
                    return Err(format!("field '{name}': invalid JSON array: {e}"));
                }
                _ => raw.into(),
            },
        };
        obj.insert(name.to_owned(), value);
    }
    shape.apply(obj, false)
}

/// Where `profiledb import` writes: a database opened here, or a server.
pub enum Target<'a> {
    Local(&'a Db),
    Remote(&'a crate::backend::Client),
}

/// Runs `profiledb import` and returns the exit code.
pub fn run(
    target: Target<'_>,
    files: &[PathBuf],
    kind: Option<Kind>,
    shape: &Shape,
    skip_bad: bool,
) -> u8 {
    let start = Instant::now();
    let list = |bad: &[BadLine]| {
        for b in bad {
            eprintln!("{}:{}: {}", b.file.display(), b.line, b.reason);
        }
    };
    let result = match target {
        Target::Local(db) => import(db, files, kind, shape, skip_bad),
        Target::Remote(client) => import_remote(client, files, kind, shape, skip_bad),
    };
    match result {
        Ok(s) => {
            list(&s.rejected);
            let secs = start.elapsed().as_secs_f64();
            let duplicates = if s.duplicates > 0 {
                format!(", skipped {} duplicate events", s.duplicates)
            } else {
                String::new()
            };
            println!(
                "imported {} events, rejected {} lines{duplicates}, in {:.2} s ({:.0} events/s)",
                s.written,
                s.rejected.len(),
                secs,
                s.written as f64 / secs.max(1e-9)
            );
            0
        }
        Err(ImportError::BadLines(bad)) => {
            list(&bad);
            eprintln!(
                "error: {} bad line{}; nothing was written (--skip-bad writes the good lines)",
                bad.len(),
                if bad.len() == 1 { "" } else { "s" }
            );
            1
        }
        Err(ImportError::Io(msg)) => {
            eprintln!("error: {msg}");
            1
        }
    }
}
