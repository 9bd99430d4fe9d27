//! `profiledb._profiledb`: the native half of the `profiledb` Python
//! package, over the same [`profiledb::Db`] as the library, the server and
//! the shell. PyO3 binds it (abi3: one wheel for every CPython from 3.9);
//! results cross to pyarrow through the Arrow C data interface
//! (arrow-pyarrow), without a copy of their buffers.
//!
//! Every call that may take long runs without the GIL; statements and
//! ingests run on a worker thread while the caller waits for them in slices,
//! checking for Python signals between slices, so that Ctrl-C in a notebook
//! cancels the statement ([`profiledb::interrupt`]) and raises
//! `KeyboardInterrupt`.

use std::sync::{Arc, RwLock, mpsc};
use std::time::Duration;

use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, Table};
use profiledb::{Db, Event, ProfileRead, Value};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

create_exception!(
    profiledb,
    Error,
    PyException,
    "Every error ProfileDB raises."
);
create_exception!(
    profiledb,
    StatementError,
    Error,
    "A statement that does not parse, plan or run; `line` and `column` say where, when it concerns part of it."
);
create_exception!(
    profiledb,
    EventError,
    Error,
    "A rejected event: `index` is its place among those given, `field` the field at fault. Nothing of the call was written."
);
create_exception!(
    profiledb,
    NotFoundError,
    Error,
    "A named schema item or user that does not exist."
);
create_exception!(
    profiledb,
    CancelledError,
    Error,
    "A statement cancelled by its deadline."
);

/// A library error as the Python exception of its class, carrying the
/// message and, where they apply, the statement position or the rejected
/// event's index and field.
fn to_py(py: Python<'_>, e: &profiledb::Error) -> PyErr {
    let err = if let Some(pos) = e.position() {
        let err = StatementError::new_err(e.to_string());
        let v = err.value(py);
        let _ = v.setattr("line", pos.line);
        let _ = v.setattr("column", pos.column);
        err
    } else if let Some((index, field)) = e.rejected_event() {
        let err = EventError::new_err(e.to_string());
        let v = err.value(py);
        let _ = v.setattr("index", index);
        let _ = v.setattr("field", field);
        err
    } else if e.is_cancelled() {
        CancelledError::new_err(e.to_string())
    } else if e.storage_kind() == Some(profiledb::ErrorKind::NotFound) {
        NotFoundError::new_err(e.to_string())
    } else if matches!(e, profiledb::Error::Query(_)) {
        // A statement error about the whole statement: no position.
        let err = StatementError::new_err(e.to_string());
        let v = err.value(py);
        let _ = v.setattr("line", py.None());
        let _ = v.setattr("column", py.None());
        err
    } else {
        Error::new_err(e.to_string())
    };
    let _ = err.value(py).setattr("message", e.message());
    err
}

/// Runs `f` on a worker thread without the GIL, waking every 50 ms to let
/// Python handle signals: when a handler raises (Ctrl-C), every running
/// statement is interrupted, the worker's end awaited, and the handler's
/// exception raised.
fn interruptible<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> profiledb::Result<T> + Send,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    // Shared with the GIL-free waits, which need a `Sync` handle.
    let rx = std::sync::Mutex::new(rx);
    let recv = |timeout: Option<Duration>| {
        let rx = rx
            .lock()
            .map_err(|_| mpsc::RecvTimeoutError::Disconnected)?;
        match timeout {
            Some(t) => rx.recv_timeout(t),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        }
    };
    std::thread::scope(|s| {
        s.spawn(move || {
            let _ = tx.send(f());
        });
        loop {
            match py.detach(|| recv(Some(Duration::from_millis(50)))) {
                Ok(r) => return r.map_err(|e| to_py(py, &e)),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::new_err("the worker running the call stopped"));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Err(signal) = py.check_signals() {
                profiledb::interrupt();
                // The worker stops at its next check; its result is moot.
                let _ = py.detach(|| recv(None));
                profiledb::clear_interrupt();
                return Err(signal);
            }
        }
    })
}

/// A Python value as a statement parameter.
fn param(v: &Bound<'_, PyAny>) -> PyResult<Value> {
    json_value(v).and_then(|j| {
        Value::from_json(&j).map_err(|e| PyTypeError::new_err(format!("parameter: {e}")))
    })
}

/// A Python value as JSON: None, bool, int, float, str, lists and tuples,
/// dicts with string keys, and datetimes (as RFC 3339; a naive one is UTC).
fn json_value(v: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    use serde_json::Value as J;
    if v.is_none() {
        return Ok(J::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(J::Bool(b.is_true()));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        return match i.extract::<i64>() {
            Ok(i) => Ok(J::from(i)),
            Err(_) => Err(PyTypeError::new_err(format!(
                "the integer {i} does not fit 64 bits"
            ))),
        };
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let f = f.value();
        return serde_json::Number::from_f64(f)
            .map(J::Number)
            .ok_or_else(|| PyTypeError::new_err(format!("the number {f} is not finite")));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(J::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut m = serde_json::Map::with_capacity(d.len());
        for (k, x) in d.iter() {
            let k = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("a key must be a string, not {k}")))?;
            m.insert(k.to_cow()?.into_owned(), json_value(&x)?);
        }
        return Ok(J::Object(m));
    }
    if v.cast::<PyList>().is_ok() || v.cast::<PyTuple>().is_ok() {
        return v.try_iter()?.map(|x| json_value(&x?)).collect();
    }
    if v.hasattr("isoformat")? && v.hasattr("tzinfo")? {
        let iso: String = v.call_method0("isoformat")?.extract()?;
        return Ok(J::String(if v.getattr("tzinfo")?.is_none() {
            format!("{iso}Z")
        } else {
            iso
        }));
    }
    // numpy scalars and the like: as the Python number they convert to.
    if v.hasattr("item")? {
        let item = v.call_method0("item")?;
        if !item.is(v) {
            return json_value(&item);
        }
    }
    Err(PyTypeError::new_err(format!(
        "a value of type {} is not a field or parameter value",
        v.get_type().name()?
    )))
}

/// Lines a file import rejected: (file, line, reason).
type Rejected = Vec<(String, u64, String)>;

/// A batch of events read for a server: each event's (file, line), and the
/// JSON array text of the events.
type LineBatch = (Vec<(String, u64)>, Vec<u8>);

/// An open database: the package's `profiledb.Database` wraps it.
#[pyclass(module = "profiledb._profiledb", frozen)]
struct Native {
    db: RwLock<Option<Arc<Db>>>,
}

impl Native {
    fn db(&self) -> PyResult<Arc<Db>> {
        self.db
            .read()
            .map_err(|_| Error::new_err("the database handle is poisoned"))?
            .clone()
            .ok_or_else(|| Error::new_err("the database is closed"))
    }
}

#[pymethods]
impl Native {
    #[new]
    #[pyo3(signature = (path, block_cache_bytes=None, row_table_bytes=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        block_cache_bytes: Option<usize>,
        row_table_bytes: Option<usize>,
    ) -> PyResult<Native> {
        // The process holds a database from now on: malloc's heaps made
        // from here are made writable whole (`profiledb::tune_malloc`).
        profiledb::tune_malloc();
        let mut options = profiledb::Options::new(&path);
        if let Some(bytes) = block_cache_bytes {
            options.block_cache_bytes = bytes;
        }
        if let Some(bytes) = row_table_bytes {
            options.row_table_bytes = bytes;
        }
        let db = py
            .detach(|| Db::open_with(options))
            .map_err(|e| to_py(py, &e))?;
        Ok(Native {
            db: RwLock::new(Some(Arc::new(db))),
        })
    }

    /// Closes the database; later calls raise `Error`. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let db = self
            .db
            .write()
            .map_err(|_| Error::new_err("the database handle is poisoned"))?
            .take();
        // The engine flushes and closes when its last user lets go.
        py.detach(move || drop(db));
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.db.read().map(|d| d.is_none()).unwrap_or(true)
    }

    /// Runs one statement; (columns' pyarrow table, None) for rows, else
    /// (None, summary).
    #[pyo3(signature = (sql, params=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        sql: &str,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Option<Bound<'py, PyAny>>, Option<String>)> {
        let params: Vec<Value> = match params {
            None => Vec::new(),
            Some(p) => p.try_iter()?.map(|x| param(&x?)).collect::<PyResult<_>>()?,
        };
        let db = self.db()?;
        // A plain scan's rows become Arrow batches as the scan makes them.
        let sink = profiledb::arrow::BatchSink::default();
        let out = interruptible(py, || db.execute_params_into(sql, &params, &sink))?;
        output_to_py_from(py, out, sink)
    }

    /// Ingests events given as dicts, atomically; returns how many were
    /// written.
    fn ingest_dicts(&self, py: Python<'_>, events: &Bound<'_, PyAny>) -> PyResult<usize> {
        let decoded = dict_events(py, events)?;
        let db = self.db()?;
        interruptible(py, || db.ingest(&decoded))
    }

    /// Ingests the events of an Arrow stream (anything with
    /// `__arrow_c_stream__`, a pyarrow Table or RecordBatchReader),
    /// atomically; returns how many were written.
    fn ingest_arrow(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let events = arrow_events(py, data)?;
        let db = self.db()?;
        interruptible(py, move || db.ingest(&events))
    }

    /// The profiles of `users` as dicts (None for a user that does not
    /// exist), at `as_of` (epoch ms; now when None), windows over
    /// `window_ms`, only `fields` when given: the JSON objects of `GET
    /// /v1/users/{id}`, made into Python objects directly (as `json.loads`
    /// would read them, without the text between).
    #[pyo3(signature = (users, as_of=None, window_ms=None, fields=None))]
    fn profiles<'py>(
        &self,
        py: Python<'py>,
        users: Vec<String>,
        as_of: Option<i64>,
        window_ms: Option<i64>,
        fields: Option<Vec<String>>,
    ) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
        let db = self.db()?;
        // Checking the fields reads only the catalog: no need to let go of
        // the GIL for it.
        let read = ProfileRead::new(
            &db,
            as_of.unwrap_or_else(profiledb::now_ms),
            window_ms.unwrap_or(profiledb::DEFAULT_WINDOW_SPAN_MS),
            fields,
        )
        .map_err(|e| to_py(py, &e))?;
        let fetched = py
            .detach(|| read.fetch(&db, &users))
            .map_err(|e| to_py(py, &e))?;
        (0..fetched.len())
            .map(|i| {
                fetched
                    .view(i, true)
                    .map(|v| pythonize::pythonize(py, &v).map_err(PyErr::from))
                    .transpose()
            })
            .collect()
    }

    /// Point-in-time rows ([`Db::pairs_as_of`]): `user`, `ts` and the items
    /// of `select` for each (users[i], times[i]) as of that time (epoch ms),
    /// one row per pair in their order, as a pyarrow table.
    fn rows_as_of<'py>(
        &self,
        py: Python<'py>,
        select: &str,
        users: Vec<String>,
        times: Vec<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if users.len() != times.len() {
            return Err(Error::new_err(format!(
                "{} users and {} times: each pair has one of each",
                users.len(),
                times.len()
            )));
        }
        let pairs: Vec<(String, i64)> = users.into_iter().zip(times).collect();
        let db = self.db()?;
        let rows = interruptible(py, || db.pairs_as_of(select, &pairs))?;
        let (table, _) = output_to_py(py, profiledb::Output::Rows(rows))?;
        table.ok_or_else(|| Error::new_err("point-in-time rows gave no table"))
    }

    /// Imports event files (JSON Lines, CSV, Parquet, each maybe gzip) as
    /// `profiledb import` does: all checked first, then written in batches.
    /// Returns (written, duplicates, rejected lines as (file, line, reason)).
    #[pyo3(signature = (paths, format=None, skip_bad=false, rename=None, ts_unit=None))]
    fn import_files(
        &self,
        py: Python<'_>,
        paths: Vec<std::path::PathBuf>,
        format: Option<&str>,
        skip_bad: bool,
        rename: Option<Vec<String>>,
        ts_unit: Option<&str>,
    ) -> PyResult<(u64, u64, Rejected)> {
        use profiledb::import;
        let (kind, shape) = import_options(format, rename, ts_unit)?;
        let db = self.db()?;
        let out = interruptible(py, || {
            Ok(import::import(
                &db,
                &paths,
                kind,
                &shape,
                skip_bad,
                &import::Silent,
            ))
        })?;
        match out {
            Ok(s) => Ok((s.written, s.duplicates, rejected_lines(&s.rejected))),
            Err(e) => Err(import_error(py, e)),
        }
    }

    /// Deletes a user and every byte of their state; whether they existed.
    fn delete_user(&self, py: Python<'_>, user: &str) -> PyResult<bool> {
        let db = self.db()?;
        py.detach(|| db.delete_user(user))
            .map_err(|e| to_py(py, &e))
    }

    /// Writes what is buffered to disk.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let db = self.db()?;
        py.detach(|| db.flush()).map_err(|e| to_py(py, &e))
    }
}

/// A server's query answer (`{"columns", "types", "rows"}` or `{"summary"}`)
/// as `execute` gives it: (a pyarrow table, None) or (None, the summary).
#[pyfunction]
fn read_answer<'py>(
    py: Python<'py>,
    body: &[u8],
) -> PyResult<(Option<Bound<'py, PyAny>>, Option<String>)> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::new_err(format!("the server's answer is not JSON: {e}")))?;
    match profiledb::json::output_from_json(&json) {
        Some(output) => output_to_py(py, output),
        None => Err(Error::new_err(
            "the server's answer has neither rows nor a summary",
        )),
    }
}

/// A Python value as JSON text, converted as statement parameters are.
#[pyfunction]
fn to_json(v: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    serde_json::to_vec(&json_value(v)?).map_err(|e| Error::new_err(e.to_string()))
}

/// Events as the JSON array text `POST /v1/events` takes: dicts (each
/// decoded as `ingest` decodes it, so a bad one is named here by its index),
/// or an Arrow stream.
#[pyfunction]
fn events_json(py: Python<'_>, events: &Bound<'_, PyAny>, arrow: bool) -> PyResult<Vec<u8>> {
    let events = if arrow {
        arrow_events(py, events)?
    } else {
        dict_events(py, events)?
    };
    let json: Vec<profiledb::json::JsonEvent<'_>> =
        events.iter().map(profiledb::json::JsonEvent).collect();
    serde_json::to_vec(&json).map_err(|e| Error::new_err(e.to_string()))
}

/// Dicts as events; an `EventError` names the first that is not one.
fn dict_events(py: Python<'_>, events: &Bound<'_, PyAny>) -> PyResult<Vec<Event>> {
    let mut decoded = Vec::new();
    for (index, ev) in events.try_iter()?.enumerate() {
        let json = json_value(&ev?)?;
        let event = Event::from_json(&json)
            .map_err(|e| to_py(py, &profiledb::Error::invalid_event(index, e)))?;
        decoded.push(event);
    }
    Ok(decoded)
}

/// The events of an Arrow stream (`__arrow_c_stream__`), converted without
/// the GIL.
fn arrow_events(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Vec<Event>> {
    // Reading an exported stream is cheap (its buffers are shared, not
    // copied); converting runs without the GIL.
    let reader = RecordBatchStreamReader::from_pyarrow_bound(data)?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::new_err(format!("the Arrow stream failed: {e}")))?;
    py.detach(|| {
        let mut events = Vec::new();
        for batch in &batches {
            let converted = profiledb::arrow::events_from_batch(batch, events.len())?;
            // A single batch's events as converted, not copied again.
            if events.is_empty() {
                events = converted;
            } else {
                events.extend(converted);
            }
        }
        Ok(events)
    })
    .map_err(|e| to_py(py, &e))
}

/// A statement's output as `execute` returns it.
fn output_to_py(
    py: Python<'_>,
    output: profiledb::Output,
) -> PyResult<(Option<Bound<'_, PyAny>>, Option<String>)> {
    output_to_py_from(py, output, profiledb::arrow::BatchSink::default())
}

/// [`output_to_py`] for a statement that ran with `sink`, which holds the
/// batches of its rows that did not come back in `output`.
fn output_to_py_from(
    py: Python<'_>,
    output: profiledb::Output,
    sink: profiledb::arrow::BatchSink,
) -> PyResult<(Option<Bound<'_, PyAny>>, Option<String>)> {
    match output {
        profiledb::Output::Rows(rows) => {
            // The sink's batches, and the rows returned built on every
            // core, a batch each, and freed there as they are converted,
            // without the GIL.
            let batches = py
                .detach(move || sink.finish(rows))
                .map_err(|e| to_py(py, &e))?;
            let schema = batches
                .first()
                .map(|b| b.schema())
                .ok_or_else(|| Error::new_err("a result of no Arrow batch"))?;
            let table =
                Table::try_new(batches, schema).map_err(|e| Error::new_err(e.to_string()))?;
            Ok((Some(table.into_pyarrow(py)?), None))
        }
        profiledb::Output::Done { summary, .. } => Ok((None, Some(summary))),
    }
}

/// The events of files, read and checked as `import_file` reads them, in
/// batches for a server: each item is (the batch's lines as (file, line),
/// its JSON array text). Lines that are not events are in `rejected`
/// after the check pass. A worker thread reads ahead by two batches.
#[pyclass(module = "profiledb._profiledb")]
struct EventBatches {
    rx: std::sync::Mutex<mpsc::Receiver<Result<LineBatch, String>>>,
    #[pyo3(get)]
    rejected: Rejected,
}

#[pymethods]
impl EventBatches {
    /// Checks every line of `paths` (as JSON objects: the server judges
    /// them against its schema), then reads them again batch by batch.
    #[new]
    #[pyo3(signature = (paths, format=None, skip_bad=false, rename=None, ts_unit=None, batch=10_000))]
    fn new(
        py: Python<'_>,
        paths: Vec<std::path::PathBuf>,
        format: Option<&str>,
        skip_bad: bool,
        rename: Option<Vec<String>>,
        ts_unit: Option<&str>,
        batch: usize,
    ) -> PyResult<EventBatches> {
        use profiledb::import::{self, ImportError};
        let (kind, shape) = import_options(format, rename, ts_unit)?;
        let checked = interruptible(py, || {
            Ok(import::open_all(&paths, kind).and_then(|inputs| {
                let catalog = profiledb::Catalog::default();
                import::check_all(
                    &inputs,
                    &catalog,
                    &shape,
                    skip_bad,
                    &import::Silent,
                    &|_| Ok(()),
                )
                .map(|(bad, _)| (inputs, bad))
            }))
        })?;
        let (inputs, bad) = match checked {
            Ok(x) => x,
            Err(e) => return Err(import_error(py, e)),
        };
        let rejected = rejected_lines(&bad);
        let (tx, rx) = mpsc::sync_channel(2);
        let batch = batch.max(1);
        std::thread::spawn(move || {
            let catalog = profiledb::Catalog::default();
            let skip: std::collections::HashSet<(&std::path::Path, u64)> =
                bad.iter().map(|b| (b.file.as_path(), b.line)).collect();
            for input in &inputs {
                let name = input.name().display().to_string();
                let mut lines = Vec::with_capacity(batch);
                let mut objects = Vec::with_capacity(batch);
                let send = |lines: &mut Vec<(String, u64)>,
                            objects: &mut Vec<serde_json::Value>|
                 -> Result<(), ImportError> {
                    if objects.is_empty() {
                        return Ok(());
                    }
                    let body =
                        serde_json::to_vec(&objects).map_err(|e| ImportError::Io(e.to_string()))?;
                    objects.clear();
                    tx.send(Ok((std::mem::take(lines), body)))
                        .map_err(|_| ImportError::Interrupted { written: 0 })
                };
                let read = import::for_each_object(
                    input,
                    &catalog,
                    &shape,
                    &import::Silent,
                    |line, obj| {
                        if let (Ok(obj), false) = (obj, skip.contains(&(input.name(), line))) {
                            lines.push((name.clone(), line));
                            objects.push(obj);
                        }
                        if objects.len() == batch {
                            send(&mut lines, &mut objects)?;
                        }
                        Ok(())
                    },
                )
                .and_then(|_| send(&mut lines, &mut objects));
                if let Err(e) = read {
                    // A receiver gone (the caller stopped) ends the reading.
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        });
        Ok(EventBatches {
            rx: std::sync::Mutex::new(rx),
            rejected,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<LineBatch>> {
        let next = py.detach(|| self.rx.lock().ok().map(|rx| rx.recv()));
        match next.ok_or_else(|| Error::new_err("the file reader is poisoned"))? {
            Ok(Ok(batch)) => Ok(Some(batch)),
            Ok(Err(e)) => Err(Error::new_err(e)),
            Err(_) => Ok(None),
        }
    }
}

/// The format and shape `import_file` is given.
fn import_options(
    format: Option<&str>,
    rename: Option<Vec<String>>,
    ts_unit: Option<&str>,
) -> PyResult<(Option<profiledb::import::Kind>, profiledb::import::Shape)> {
    use profiledb::import;
    let value_error = |e: String| PyErr::new::<pyo3::exceptions::PyValueError, _>(e);
    let kind = format
        .map(str::parse::<import::Kind>)
        .transpose()
        .map_err(value_error)?;
    let unit = ts_unit
        .map(str::parse::<import::TsUnit>)
        .transpose()
        .map_err(value_error)?;
    let shape = import::Shape::new(&rename.unwrap_or_default(), unit).map_err(value_error)?;
    Ok((kind, shape))
}

/// Bad lines as Python takes them: (file, line, reason).
fn rejected_lines(bad: &[profiledb::import::BadLine]) -> Rejected {
    bad.iter()
        .map(|b| (b.file.display().to_string(), b.line, b.error.to_string()))
        .collect()
}

/// An import's failure as the Python exception of its class.
fn import_error(py: Python<'_>, e: profiledb::import::ImportError) -> PyErr {
    use profiledb::import::ImportError;
    match e {
        ImportError::BadLines(bad) => {
            let message = ImportError::BadLines(bad.clone()).to_string();
            let err = EventError::new_err(message.clone());
            let v = err.value(py);
            let first = bad.first();
            let _ = v.setattr("message", message);
            let _ = v.setattr("index", py.None());
            let _ = v.setattr("field", first.and_then(|b| b.error.field.clone()));
            let _ = v.setattr("file", first.map(|b| b.file.display().to_string()));
            let _ = v.setattr("line", first.map(|b| b.line));
            let _ = v.setattr("rejected", rejected_lines(&bad));
            err
        }
        ImportError::Interrupted { written } => CancelledError::new_err(format!(
            "the import was interrupted; {written} events were written before it stopped"
        )),
        e @ ImportError::Io(_) => Error::new_err(e.to_string()),
    }
}

/// A timestamp (epoch ms integer or RFC 3339 string) as epoch ms.
#[pyfunction]
fn parse_timestamp(t: &str) -> PyResult<i64> {
    profiledb::parse_timestamp(t)
        .map_err(|e| PyErr::new::<pyo3::exceptions::PyValueError, _>(e.to_string()))
}

/// A duration (`7d`, `1h30m`) in ms.
#[pyfunction]
fn parse_duration(d: &str) -> PyResult<i64> {
    profiledb::parse_duration(d)
        .map_err(|e| PyErr::new::<pyo3::exceptions::PyValueError, _>(e.to_string()))
}

/// Pins rayon's pool (scans, batch reads) one thread to each core; see
/// `profiledb::pin_threads`.
#[pyfunction]
fn pin_threads() -> PyResult<bool> {
    profiledb::pin_threads().map_err(|e| Error::new_err(e.to_string()))
}

#[pymodule]
fn _profiledb(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Native>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("StatementError", py.get_type::<StatementError>())?;
    m.add("EventError", py.get_type::<EventError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add_class::<EventBatches>()?;
    m.add_function(wrap_pyfunction!(read_answer, m)?)?;
    m.add_function(wrap_pyfunction!(events_json, m)?)?;
    m.add_function(wrap_pyfunction!(to_json, m)?)?;
    m.add_function(wrap_pyfunction!(parse_timestamp, m)?)?;
    m.add_function(wrap_pyfunction!(parse_duration, m)?)?;
    m.add_function(wrap_pyfunction!(pin_threads, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
