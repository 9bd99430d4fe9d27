//! Query results and events as Apache Arrow record batches: results for the
//! Python package (as pyarrow tables, handed over without a copy), events
//! from pyarrow tables and pandas frames.
//!
//! arrow-rs is the Arrow project's own Rust implementation, the one pyarrow
//! exchanges data with through the C data interface; only its array and
//! schema crates are used here, not its compute kernels.
//!
//! Column types follow the statement's declared types: `int` is Int64,
//! `float` Float64, `bool` Boolean, `string` Utf8, `tags` a list of Utf8,
//! `vector` a fixed-size list of Float32 (a list when the vectors of a
//! column differ in length), `map` a map of Utf8 to Float64. A column whose
//! type is only known once run takes its values' type.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, FixedSizeListBuilder, Float32Builder, Float64Builder, Int64Builder,
    ListBuilder, MapBuilder, StringBuilder,
};
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, NullArray, RecordBatch, RecordBatchOptions, cast::AsArray,
    new_null_array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use rayon::prelude::*;

use crate::{Column, Error, Event, EventError, PartAt, Result, RowSink, Rows, Type, Value};

/// Event `index` rejected for `field`.
fn bad_event(index: usize, field: &str, reason: String) -> Error {
    Error::invalid_event(
        index,
        EventError {
            field: Some(field.to_owned()),
            reason,
        },
    )
}

fn invalid(message: String) -> Error {
    Error::Storage(profiledb_storage::Error::InvalidArgument(message))
}

/// A statement's rows as one record batch, columns in order
/// ([`batches_from_rows`] in one part).
///
/// # Errors
/// An invalid argument when a column holds values of two types that no one
/// Arrow type holds (never for the engine's own results).
pub fn batch_from_rows(rows: &Rows) -> Result<RecordBatch> {
    let (types, dims) = column_types(rows, rows.rows.len().max(1))?;
    batch_of(&rows.columns, &types, &dims, &rows.rows)
}

/// Rows a part of [`batches_from_rows`] holds at least: fewer are not worth
/// a thread of their own.
const MIN_PART_ROWS: usize = 16_384;

/// A statement's rows as record batches of consecutive rows, columns in
/// order, all of one schema, built on every core of rayon's pool, one
/// batch a thread (a table of them is the result, without a copy); a
/// result of fewer than 16,384 rows a thread is fewer batches.
///
/// Rows are read in row order, twice: once for each column's type (and a
/// vector column's length), then, with the types of every part together,
/// once to fill every column's builder. A row's values lie together, so
/// each pass reads each row once rather than once a column. A result
/// without rows is one batch.
///
/// # Errors
/// An invalid argument when a column holds values of two types that no one
/// Arrow type holds (never for the engine's own results).
pub fn batches_from_rows(rows: &Rows) -> Result<Vec<RecordBatch>> {
    batches_in(rows, rayon::current_num_threads(), MIN_PART_ROWS)
}

/// [`batches_from_rows`], consuming the rows: each part's rows are freed
/// on the thread that converted them, as soon as they are converted. A
/// large result's rows are many small allocations, and freeing them on
/// the caller's thread alone took about as long as the conversion on every
/// core: a query of 1M rows to Arrow took 298–309 ms this way against
/// 342–349 ms with the rows freed after (`cargo bench --bench arrow`,
/// `query_1m_rows_to_arrow`, alternating runs).
///
/// # Errors
/// As [`batches_from_rows`].
pub fn into_batches(rows: Rows) -> Result<Vec<RecordBatch>> {
    into_batches_in(rows, rayon::current_num_threads(), MIN_PART_ROWS)
}

/// [`into_batches`] in at most `parts` batches of at least `min_rows` rows
/// each (but for the last).
fn into_batches_in(rows: Rows, parts: usize, min_rows: usize) -> Result<Vec<RecordBatch>> {
    let per_part = part_rows(&rows, parts, min_rows);
    let (types, dims) = column_types(&rows, per_part)?;
    let Rows { columns, mut rows } = rows;
    if rows.is_empty() {
        return Ok(vec![batch_of(&columns, &types, &dims, &[])?]);
    }
    rows.par_chunks_mut(per_part)
        .map(|part| {
            let batch = batch_of(&columns, &types, &dims, part);
            part.iter_mut().for_each(|r| drop(std::mem::take(r)));
            batch
        })
        .collect()
}

/// Rows in each part of `rows` split into at most `parts` parts of at
/// least `min_rows` rows (but for the last).
fn part_rows(rows: &Rows, parts: usize, min_rows: usize) -> usize {
    rows.rows.len().div_ceil(parts.max(1)).max(min_rows).max(1)
}

/// [`batches_from_rows`] in at most `parts` batches of at least `min_rows`
/// rows each (but for the last).
fn batches_in(rows: &Rows, parts: usize, min_rows: usize) -> Result<Vec<RecordBatch>> {
    let per_part = part_rows(rows, parts, min_rows);
    let (types, dims) = column_types(rows, per_part)?;
    if rows.rows.is_empty() {
        return Ok(vec![batch_of(&rows.columns, &types, &dims, &[])?]);
    }
    rows.rows
        .par_chunks(per_part)
        .map(|part| batch_of(&rows.columns, &types, &dims, part))
        .collect()
}

/// The type each column's values are held in, and the lengths of its
/// vectors, over every row: each part of `per_part` rows read on a core of
/// its own, the parts' findings then joined.
fn column_types(rows: &Rows, per_part: usize) -> Result<(Vec<Type>, Vec<Dim>)> {
    let columns = &rows.columns;
    rows.rows
        .par_chunks(per_part)
        .map(|part| part_types(columns, part))
        .try_reduce(|| declared(columns), |a, b| join_types(columns, a, &b))
}

/// Each column's declared type, and no vector length yet.
fn declared(columns: &[Column]) -> (Vec<Type>, Vec<Dim>) {
    (
        columns.iter().map(|c| c.ty).collect(),
        vec![Dim::None; columns.len()],
    )
}

/// The type each column's values are held in, and the lengths of its
/// vectors, over `rows`.
fn part_types(columns: &[Column], rows: &[Vec<Value>]) -> Result<(Vec<Type>, Vec<Dim>)> {
    let (mut types, mut dims) = declared(columns);
    for r in rows {
        for (i, c) in columns.iter().enumerate() {
            let v = cell(r, i);
            types[i] = column_type(c, types[i], Type::of(v))?;
            if let Value::Vector(x) = v {
                dims[i] = dims[i].with(x.len());
            }
        }
    }
    Ok((types, dims))
}

/// The types and vector lengths of two sets of rows together.
fn join_types(
    columns: &[Column],
    (mut types, mut dims): (Vec<Type>, Vec<Dim>),
    (t, d): &(Vec<Type>, Vec<Dim>),
) -> Result<(Vec<Type>, Vec<Dim>)> {
    for (i, c) in columns.iter().enumerate() {
        types[i] = column_type(c, types[i], t[i])?;
        dims[i] = dims[i].join(d[i]);
    }
    Ok((types, dims))
}

/// The record batch of `rows`, its columns of `types` (vectors of `dims`).
fn batch_of(
    columns: &[Column],
    types: &[Type],
    dims: &[Dim],
    rows: &[Vec<Value>],
) -> Result<RecordBatch> {
    let len = rows.len();
    let mut builders: Vec<Builder> = types
        .iter()
        .zip(dims)
        .map(|(t, d)| Builder::new(*t, *d, len))
        .collect();
    for r in rows {
        for (i, b) in builders.iter_mut().enumerate() {
            b.append(cell(r, i))
                .map_err(|e| invalid(format!("column '{}': {e}", columns[i].name)))?;
        }
    }
    let arrays = builders.into_iter().map(|b| b.finish(len)).collect();
    batch_of_arrays(columns, arrays, len)
}

/// The record batch of `arrays`, one a column, each of `len` rows.
fn batch_of_arrays(columns: &[Column], arrays: Vec<ArrayRef>, len: usize) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .zip(&arrays)
        .map(|(c, a)| Field::new(&c.name, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let options = RecordBatchOptions::new().with_row_count(Some(len));
    RecordBatch::try_new_with_options(schema, arrays, &options)
        .map_err(|e| invalid(format!("the result does not fit an Arrow batch: {e}")))
}

/// A query's rows converted to record batches as the scan makes them
/// ([`RowSink`], given to [`crate::Db::execute_params_into`]): each part
/// is converted, and its rows freed, on the thread that scanned it, so
/// that a large result's rows are never all held at once (their memory,
/// reused part after part, need not be faulted in fresh). Then
/// [`BatchSink::finish`] gives the batches in the answer's order.
///
/// A part's columns take the types its own values show, as
/// [`batches_from_rows`] types a column over all the rows; where parts
/// disagree in ways one Arrow type holds (integers and floats in a column
/// typed only once run, vectors of several lengths, a part of nulls
/// only), the parts that differ are retyped to the whole's at the end,
/// without their rows: the batches are those [`batches_from_rows`] would
/// make of the same rows, cut into other parts.
#[derive(Debug, Default)]
pub struct BatchSink {
    parts: std::sync::Mutex<Vec<SunkPart>>,
}

/// A part converted by a [`BatchSink`], with the types its values showed.
#[derive(Debug)]
struct SunkPart {
    at: PartAt,
    batch: RecordBatch,
    types: (Vec<Type>, Vec<Dim>),
}

impl SunkPart {
    /// `rows` of `columns` converted, typed by their own values; the rows
    /// are freed here, as soon as they are converted.
    fn of(at: PartAt, columns: &[Column], rows: Vec<Vec<Value>>) -> Result<SunkPart> {
        let types = part_types(columns, &rows)?;
        let batch = batch_of(columns, &types.0, &types.1, &rows)?;
        Ok(SunkPart { at, batch, types })
    }
}

impl RowSink for BatchSink {
    fn take(
        &self,
        at: PartAt,
        columns: &[Column],
        rows: Vec<Vec<Value>>,
    ) -> profiledb_query::Result<()> {
        let to_query = |e: Error| {
            let message = match e {
                Error::Storage(profiledb_storage::Error::InvalidArgument(m)) => m,
                e => e.to_string(),
            };
            profiledb_query::Error::invalid(message, None)
        };
        let part = SunkPart::of(at, columns, rows).map_err(to_query)?;
        self.parts
            .lock()
            .map_err(|_| profiledb_query::Error::invalid("a conversion to Arrow failed", None))?
            .push(part);
        Ok(())
    }
}

impl BatchSink {
    /// The statement's record batches, in order: the parts taken, retyped
    /// to agree, then `rows` (the rows the statement returned: none when
    /// its rows came here, all of them otherwise, converted as
    /// [`into_batches`] converts them).
    ///
    /// # Errors
    /// As [`batches_from_rows`]: a column whose parts hold two types that no
    /// one Arrow type holds.
    pub fn finish(self, rows: Rows) -> Result<Vec<RecordBatch>> {
        let mut parts = self
            .parts
            .into_inner()
            .map_err(|_| invalid("a conversion to Arrow failed".into()))?;
        if parts.is_empty() {
            return into_batches(rows);
        }
        let Rows { columns, rows } = rows;
        if !rows.is_empty() {
            let last = PartAt {
                range: usize::MAX,
                part: usize::MAX,
            };
            parts.push(SunkPart::of(last, &columns, rows)?);
        }
        parts.sort_by_key(|p| p.at);
        let whole = parts
            .iter()
            .try_fold(declared(&columns), |a, p| join_types(&columns, a, &p.types))?;
        parts
            .into_iter()
            .map(|p| {
                if p.types == whole {
                    Ok(p.batch)
                } else {
                    retyped(&columns, &p.batch, &p.types, &whole)
                }
            })
            .collect()
    }
}

/// `batch`, of a part whose values showed types `part`, with its columns
/// of the types `whole` of every part together: a column of nulls only as
/// nulls of the whole's type, integers as floats, vectors of one length as
/// a list (rebuilt value by value: a rare case, the vectors of a column
/// being one item's, of one length, but for expressions choosing among
/// items).
fn retyped(
    columns: &[Column],
    batch: &RecordBatch,
    part: &(Vec<Type>, Vec<Dim>),
    whole: &(Vec<Type>, Vec<Dim>),
) -> Result<RecordBatch> {
    let len = batch.num_rows();
    let mut arrays = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let array = batch.column(i);
        let to = Builder::new(whole.0[i], whole.1[i], 0).finish(0);
        let to = to.data_type();
        if array.data_type() == to {
            arrays.push(Arc::clone(array));
            continue;
        }
        let retyped: ArrayRef = match (part.0[i], part.1[i], to) {
            // No value of the column in this part: nulls of the whole's type.
            (Type::Null, ..) | (Type::Vector, Dim::None, _) => new_null_array(to, len),
            (Type::Int, _, DataType::Float64) if array.data_type() == &DataType::Int64 => Arc::new(
                array
                    .as_primitive::<Int64Type>()
                    .unary::<_, Float64Type>(|x| x as f64),
            ),
            (Type::Vector, Dim::Same(_), DataType::List(_))
                if matches!(array.data_type(), DataType::FixedSizeList(..)) =>
            {
                let fixed = array.as_fixed_size_list();
                let mut list = Builder::new(Type::Vector, Dim::Mixed, len);
                for row in 0..len {
                    let v = if fixed.is_valid(row) {
                        let x = fixed.value(row);
                        Value::Vector(x.as_primitive::<Float32Type>().values().to_vec())
                    } else {
                        Value::Null
                    };
                    list.append(&v)
                        .map_err(|e| invalid(format!("column '{}': {e}", c.name)))?;
                }
                list.finish(len)
            }
            _ => {
                return Err(invalid(format!(
                    "column '{}' is {} in one part of the result and {to} in the whole, which \
                     cannot be converted",
                    c.name,
                    array.data_type()
                )));
            }
        };
        arrays.push(retyped);
    }
    batch_of_arrays(columns, arrays, len)
}

/// Value `i` of row `r`; null past its end.
fn cell(r: &[Value], i: usize) -> &Value {
    r.get(i).unwrap_or(&Value::Null)
}

/// The type a column's values are held in, `ty` so far, with a value of
/// type `seen` met: its declared one, or, when that is unknown, its first
/// value's; integers among floats are floats.
fn column_type(c: &Column, ty: Type, seen: Type) -> Result<Type> {
    Ok(match (ty, seen) {
        (_, Type::Null) => ty,
        (Type::Null, t) => t,
        (a, b) if a == b => a,
        (Type::Float, Type::Int) | (Type::Int, Type::Float) => Type::Float,
        (a, b) => {
            return Err(invalid(format!(
                "column '{}' holds {a} and {b} values, which no one Arrow type holds",
                c.name
            )));
        }
    })
}

/// The lengths of a column's vectors, as far as seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    /// No vector yet.
    None,
    /// Every vector has this length.
    Same(usize),
    /// Vectors of two lengths or more.
    Mixed,
}

impl Dim {
    fn with(self, len: usize) -> Dim {
        match self {
            Dim::None => Dim::Same(len),
            Dim::Same(d) if d == len => self,
            _ => Dim::Mixed,
        }
    }

    /// The lengths of two parts of a column together.
    fn join(self, other: Dim) -> Dim {
        match other {
            Dim::None => self,
            Dim::Same(d) => self.with(d),
            Dim::Mixed => Dim::Mixed,
        }
    }
}

/// One column's builder, by the column's type.
enum Builder {
    Null,
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    String(StringBuilder),
    Tags(ListBuilder<StringBuilder>),
    /// Vectors of one length: a fixed-size list of it.
    Vector(FixedSizeListBuilder<Float32Builder>, usize),
    /// Vectors of several lengths (or none): a list.
    Vectors(ListBuilder<Float32Builder>),
    Map(MapBuilder<StringBuilder, Float64Builder>),
}

impl Builder {
    fn new(ty: Type, dim: Dim, len: usize) -> Builder {
        match ty {
            Type::Null => Builder::Null,
            Type::Bool => Builder::Bool(BooleanBuilder::with_capacity(len)),
            Type::Int => Builder::Int(Int64Builder::with_capacity(len)),
            Type::Float => Builder::Float(Float64Builder::with_capacity(len)),
            Type::String => Builder::String(StringBuilder::with_capacity(len, len * 8)),
            Type::Tags => Builder::Tags(ListBuilder::new(StringBuilder::new())),
            Type::Vector => match dim {
                Dim::Same(d) if i32::try_from(d).is_ok() => Builder::Vector(
                    FixedSizeListBuilder::with_capacity(
                        Float32Builder::with_capacity(len * d),
                        d as i32,
                        len,
                    ),
                    d,
                ),
                _ => Builder::Vectors(ListBuilder::new(Float32Builder::new())),
            },
            Type::Map => Builder::Map(MapBuilder::new(
                None,
                StringBuilder::new(),
                Float64Builder::new(),
            )),
        }
    }

    /// Adds `v`, or a null where it is not of the column's type.
    fn append(&mut self, v: &Value) -> std::result::Result<(), arrow_schema::ArrowError> {
        match self {
            Builder::Null => {}
            Builder::Bool(b) => b.append_option(match v {
                Value::Bool(x) => Some(*x),
                _ => None,
            }),
            Builder::Int(b) => b.append_option(match v {
                Value::Int(i) => Some(*i),
                _ => None,
            }),
            Builder::Float(b) => b.append_option(match v {
                Value::Float(f) => Some(*f),
                Value::Int(i) => Some(*i as f64),
                _ => None,
            }),
            Builder::String(b) => b.append_option(match v {
                Value::String(s) => Some(s.as_str()),
                _ => None,
            }),
            Builder::Tags(b) => match v {
                Value::Tags(tags) => {
                    for t in tags {
                        b.values().append_value(t);
                    }
                    b.append(true);
                }
                _ => b.append(false),
            },
            Builder::Vector(b, dim) => match v {
                Value::Vector(x) => {
                    b.values().append_slice(x);
                    b.append(true);
                }
                _ => {
                    for _ in 0..*dim {
                        b.values().append_null();
                    }
                    b.append(false);
                }
            },
            Builder::Vectors(b) => match v {
                Value::Vector(x) => {
                    b.values().append_slice(x);
                    b.append(true);
                }
                _ => b.append(false),
            },
            Builder::Map(b) => match v {
                Value::Map(m) => {
                    for (k, x) in m {
                        b.keys().append_value(k);
                        b.values().append_value(*x);
                    }
                    b.append(true)?;
                }
                _ => b.append(false)?,
            },
        }
        Ok(())
    }

    /// The column's array, of `len` rows.
    fn finish(self, len: usize) -> ArrayRef {
        match self {
            Builder::Null => Arc::new(NullArray::new(len)),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Int(mut b) => Arc::new(b.finish()),
            Builder::Float(mut b) => Arc::new(b.finish()),
            Builder::String(mut b) => Arc::new(b.finish()),
            Builder::Tags(mut b) => Arc::new(b.finish()),
            Builder::Vector(mut b, _) => Arc::new(b.finish()),
            Builder::Vectors(mut b) => Arc::new(b.finish()),
            Builder::Map(mut b) => Arc::new(b.finish()),
        }
    }
}

/// The events of `batch`, one per row: `user` and `type` columns of
/// strings, `ts` as an Arrow timestamp (any unit; a time zone is an offset
/// already applied), integer epoch milliseconds or an RFC 3339 string, and
/// every other column a field: integers, floats, booleans, strings, lists of
/// numbers (vectors) and lists of strings (tags). A null, or a float NaN
/// (pandas' missing number), leaves the field out of that event. `first` is
/// the index of the batch's first row among all the rows given, for errors.
///
/// Each row is made whole on its own, straight from the columns, so a
/// large batch is converted on every core of rayon's pool, each core its
/// own run of rows, into the one vector returned.
///
/// # Errors
/// An invalid event naming the row's index and the column at fault: a
/// missing column, a column of a type no field takes (named at the batch's
/// first row); otherwise the first row that is refused, for a missing or
/// null `user`, `type` or `ts`, a time out of range, an infinite number, an
/// integer past i64's range or a vector element no f32 holds.
pub fn events_from_batch(batch: &RecordBatch, first: usize) -> Result<Vec<Event>> {
    let schema = batch.schema();
    let bad = |row: usize, field: &str, reason: String| bad_event(first + row, field, reason);
    let column = |name: &str| {
        schema
            .index_of(name)
            .map(|i| batch.column(i).as_ref())
            .map_err(|_| bad(0, name, "missing: the table has no such column".into()))
    };
    let text = |name: &str| {
        let a = column(name)?;
        strings(a).ok_or_else(|| {
            bad(
                0,
                name,
                format!("must be a column of strings, not {}", a.data_type()),
            )
        })
    };
    let users = text("user")?;
    let types = text("type")?;
    let times = timestamps(column("ts")?).map_err(|r| bad(0, "ts", r))?;
    let fields = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| !matches!(f.name().as_str(), "user" | "type" | "ts"))
        .map(|(f, a)| {
            let name = f.name().as_str();
            Ok((name, field_cells(a.as_ref()).map_err(|r| bad(0, name, r))?))
        })
        .collect::<Result<Vec<_>>>()?;
    let event = |row: usize| -> Result<Event> {
        let user = users(row).ok_or_else(|| bad(row, "user", "missing (null)".into()))?;
        let ty = types(row).ok_or_else(|| bad(row, "type", "missing (null)".into()))?;
        let ts = times(row)
            .map_err(|r| bad(row, "ts", r))?
            .ok_or_else(|| bad(row, "ts", "missing (null)".into()))?;
        let mut ev = Event::new(user, ty, ts);
        ev.fields.reserve_exact(fields.len());
        for (name, cells) in &fields {
            if let Some(v) = cells(row).map_err(|r| bad(row, name, r))? {
                ev.fields.push(((*name).to_owned(), v));
            }
        }
        Ok(ev)
    };
    let rows = batch.num_rows();
    if rows < 2 * EVENT_ROWS {
        return (0..rows).map(event).collect();
    }
    // Every row is made in its place, a refused one (and any after the
    // first refused, which need not be read) as an empty event; the first
    // refused, by row, is the answer.
    let refused: std::sync::Mutex<Option<(usize, Error)>> = std::sync::Mutex::new(None);
    let first_refused = std::sync::atomic::AtomicUsize::new(usize::MAX);
    let empty = || Event::new(String::new(), String::new(), 0);
    let mut events = Vec::new();
    (0..rows)
        .into_par_iter()
        .with_min_len(EVENT_ROWS)
        .map(|row| {
            if row > first_refused.load(std::sync::atomic::Ordering::Relaxed) {
                return empty();
            }
            event(row).unwrap_or_else(|e| {
                let mut first = refused.lock().unwrap_or_else(|p| p.into_inner());
                if first.as_ref().is_none_or(|(at, _)| row < *at) {
                    *first = Some((row, e));
                    first_refused.store(row, std::sync::atomic::Ordering::Relaxed);
                }
                empty()
            })
        })
        .collect_into_vec(&mut events);
    match refused.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(events),
    }
}

/// Rows of a batch's events that one core converts at a time; a batch of
/// fewer than two runs is converted on the calling thread alone.
const EVENT_ROWS: usize = 8_192;

/// A column's value at a row: `Ok(None)` leaves it out of the row's event;
/// an error says why the row is refused.
type Cells<'a, T> = Box<dyn Fn(usize) -> std::result::Result<Option<T>, String> + Send + Sync + 'a>;

/// A column's strings, row by row (`None` for a null).
type Texts<'a> = Box<dyn Fn(usize) -> Option<&'a str> + Send + Sync + 'a>;

/// A column of strings (Utf8, LargeUtf8 or Utf8View), row by row; `None`
/// for a column of another type.
fn strings(a: &dyn Array) -> Option<Texts<'_>> {
    Some(match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            Box::new(move |i| s.is_valid(i).then(|| s.value(i)))
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            Box::new(move |i| s.is_valid(i).then(|| s.value(i)))
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            Box::new(move |i| s.is_valid(i).then(|| s.value(i)))
        }
        _ => return None,
    })
}

/// The `ts` column as epoch milliseconds, row by row; the error is why the
/// column's type is refused.
fn timestamps(a: &dyn Array) -> std::result::Result<Cells<'_, i64>, String> {
    let checked = |ms: i64| crate::check_ts(ms).map_err(|e| e.to_string());
    if let Some(ints) = integers(a) {
        return Ok(Box::new(move |row| ints(row)?.map(checked).transpose()));
    }
    if let Some(s) = strings(a) {
        return Ok(Box::new(move |row| {
            s(row)
                .map(|t| crate::parse_timestamp(t).map_err(|e| e.to_string()))
                .transpose()
        }));
    }
    Ok(match a.data_type() {
        DataType::Timestamp(unit, _) => {
            // To milliseconds, rounding down (a time zone only labels them).
            let (values, to_ms): (&[i64], fn(i64) -> i64) = match unit {
                TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().values(), |s| {
                    s.saturating_mul(1000)
                }),
                TimeUnit::Millisecond => (
                    a.as_primitive::<TimestampMillisecondType>().values(),
                    |ms| ms,
                ),
                TimeUnit::Microsecond => (
                    a.as_primitive::<TimestampMicrosecondType>().values(),
                    |us| us.div_euclid(1_000),
                ),
                TimeUnit::Nanosecond => {
                    (a.as_primitive::<TimestampNanosecondType>().values(), |ns| {
                        ns.div_euclid(1_000_000)
                    })
                }
            };
            Box::new(move |row| {
                a.is_valid(row)
                    .then(|| checked(to_ms(values[row])))
                    .transpose()
            })
        }
        other => {
            return Err(format!(
                "must be a timestamp, integer epoch milliseconds or RFC 3339 strings, not {other}"
            ));
        }
    })
}

/// An integer column, row by row, as i64 (an unsigned value past its range
/// refuses the row); `None` for a column of another type.
fn integers(a: &dyn Array) -> Option<Cells<'_, i64>> {
    fn each<T: ArrowPrimitiveType>(a: &dyn Array) -> Cells<'_, i64>
    where
        T::Native: TryInto<i64> + std::fmt::Display,
    {
        let p = a.as_primitive::<T>();
        Box::new(move |row| {
            if p.is_null(row) {
                return Ok(None);
            }
            let x = p.value(row);
            x.try_into()
                .map(Some)
                .map_err(|_| format!("number {x} is out of range"))
        })
    }
    Some(match a.data_type() {
        DataType::Int8 => each::<Int8Type>(a),
        DataType::Int16 => each::<Int16Type>(a),
        DataType::Int32 => each::<Int32Type>(a),
        DataType::Int64 => each::<Int64Type>(a),
        DataType::UInt8 => each::<UInt8Type>(a),
        DataType::UInt16 => each::<UInt16Type>(a),
        DataType::UInt32 => each::<UInt32Type>(a),
        DataType::UInt64 => each::<UInt64Type>(a),
        _ => return None,
    })
}

/// A float as a field's value: NaN (pandas' missing number) leaves the
/// field out, an infinity refuses the row.
fn float(v: Option<f64>) -> std::result::Result<Option<Value>, String> {
    match v {
        Some(f) if f.is_nan() => Ok(None),
        Some(f) if !f.is_finite() => Err(format!("number {f} is out of range")),
        v => Ok(v.map(Value::Float)),
    }
}

/// A field column's values, row by row; the error is why the column's type
/// is refused.
fn field_cells(a: &dyn Array) -> std::result::Result<Cells<'_, Value>, String> {
    if let Some(ints) = integers(a) {
        return Ok(Box::new(move |row| Ok(ints(row)?.map(Value::Int))));
    }
    if let Some(s) = strings(a) {
        return Ok(Box::new(move |row| {
            Ok(s(row).map(|v| Value::String(v.to_owned())))
        }));
    }
    Ok(match a.data_type() {
        DataType::Null => Box::new(|_| Ok(None)),
        DataType::Boolean => {
            let b = a.as_boolean();
            Box::new(move |row| Ok(b.is_valid(row).then(|| Value::Bool(b.value(row)))))
        }
        DataType::Float32 => {
            let p = a.as_primitive::<Float32Type>();
            Box::new(move |row| float(p.is_valid(row).then(|| f64::from(p.value(row)))))
        }
        DataType::Float64 => {
            let p = a.as_primitive::<Float64Type>();
            Box::new(move |row| float(p.is_valid(row).then(|| p.value(row))))
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            float_lists(a).unwrap_or_else(|| Box::new(move |row| list_value(a, row)))
        }
        other => {
            return Err(format!(
                "a column of {other} is not a field type (numbers, booleans, strings, lists of numbers or of strings)"
            ));
        }
    })
}

/// Where each row's values lie in a list column's values.
enum Bounds<'a> {
    Offsets(&'a [i32]),
    LargeOffsets(&'a [i64]),
    /// Every row this many values, one after another.
    Fixed(usize),
}

impl Bounds<'_> {
    /// Row `row`'s values: from the first to one past the last; `None`
    /// past the offsets.
    fn of(&self, row: usize) -> Option<(usize, usize)> {
        fn pair<T: Copy + TryInto<usize>>(o: &[T], row: usize) -> Option<(usize, usize)> {
            let at = |i: usize| o.get(i).and_then(|&x| x.try_into().ok());
            Some((at(row)?, at(row + 1)?))
        }
        match self {
            Bounds::Offsets(o) => pair(o, row),
            Bounds::LargeOffsets(o) => pair(o, row),
            Bounds::Fixed(d) => Some((row * d, (row + 1) * d)),
        }
    }
}

/// The vectors of a list column of floats without null elements, read
/// straight from the column's values (each row's slice of them), where
/// [`list_value`] makes each row an array of its own; `None` for another
/// column, which [`list_value`] reads.
fn float_lists(a: &dyn Array) -> Option<Cells<'_, Value>> {
    let (child, bounds) = match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            (l.values(), Bounds::Offsets(l.value_offsets()))
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            (l.values(), Bounds::LargeOffsets(l.value_offsets()))
        }
        DataType::FixedSizeList(_, _) => {
            let l = a.as_fixed_size_list();
            let d = usize::try_from(l.value_length()).unwrap_or(0);
            (l.values(), Bounds::Fixed(d))
        }
        _ => return None,
    };
    if child.null_count() > 0 {
        return None;
    }
    /// Row `row`'s values as f32, each checked finite.
    fn vector<T: Copy>(
        a: &dyn Array,
        bounds: &Bounds<'_>,
        values: &[T],
        row: usize,
        to_f32: impl Fn(T) -> f32,
        to_f64: impl Fn(T) -> f64,
    ) -> std::result::Result<Option<Value>, String> {
        if a.is_null(row) {
            return Ok(None);
        }
        let values = bounds
            .of(row)
            .and_then(|(start, end)| values.get(start..end))
            .ok_or("the list's offsets are out of bounds")?;
        let out: Vec<f32> = values.iter().map(|&v| to_f32(v)).collect();
        match out.iter().position(|x| !x.is_finite()) {
            None => Ok(Some(Value::Vector(out))),
            Some(i) => Err(format!(
                "array element {i} ({}) does not fit an f32",
                to_f64(values[i])
            )),
        }
    }
    match child.data_type() {
        DataType::Float32 => {
            let v = child.as_primitive::<Float32Type>().values();
            Some(Box::new(move |row| {
                vector(a, &bounds, v, row, |x| x, f64::from)
            }))
        }
        DataType::Float64 => {
            let v = child.as_primitive::<Float64Type>().values();
            Some(Box::new(move |row| {
                vector(a, &bounds, v, row, |x| x as f32, |x| x)
            }))
        }
        _ => None,
    }
}

/// Row `row` of a list column: a vector of numbers, or tags of strings.
fn list_value(a: &dyn Array, row: usize) -> std::result::Result<Option<Value>, String> {
    if a.is_null(row) {
        return Ok(None);
    }
    let items: ArrayRef = match a.data_type() {
        DataType::List(_) => a.as_list::<i32>().value(row),
        DataType::LargeList(_) => a.as_list::<i64>().value(row),
        _ => a.as_fixed_size_list().value(row),
    };
    let vector = |values: Vec<Option<f64>>| -> std::result::Result<Option<Value>, String> {
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            let f = v.ok_or_else(|| format!("array element {i} is null"))?;
            let x = f as f32;
            if !x.is_finite() {
                return Err(format!("array element {i} ({f}) does not fit an f32"));
            }
            out.push(x);
        }
        Ok(Some(Value::Vector(out)))
    };
    if let Some(ints) = integers(items.as_ref()) {
        let mut out = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            let x = ints(i)
                .map_err(|r| format!("array element {i}: {r}"))?
                .ok_or_else(|| format!("array element {i} is null"))?;
            out.push(Some(x as f64));
        }
        return vector(out);
    }
    if let Some(s) = strings(items.as_ref()) {
        let mut tags = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            tags.push(
                s(i).ok_or_else(|| format!("array element {i} is null"))?
                    .to_owned(),
            );
        }
        return Ok(Some(Value::Tags(tags)));
    }
    match items.data_type() {
        DataType::Float32 => vector(
            items
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
        ),
        DataType::Float64 => vector(items.as_primitive::<Float64Type>().iter().collect()),
        other => Err(format!("a list of {other} is not a field type")),
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, Float64Builder};
    use arrow_array::{Float64Array, StringArray};

    use super::*;

    fn column(name: &str, ty: Type) -> Column {
        Column {
            name: name.to_owned(),
            ty,
        }
    }

    /// Ten rows whose columns change between the first half and the second:
    /// integers then floats in a column typed only once run, vectors of
    /// three then of two values, nulls then strings.
    fn halves() -> Rows {
        let rows = (0..10)
            .map(|i| {
                let early = i < 5;
                vec![
                    Value::String(format!("u{i}")),
                    if early {
                        Value::Int(i)
                    } else {
                        Value::Float(i as f64 + 0.5)
                    },
                    Value::Vector(if early { vec![1.0; 3] } else { vec![2.0; 2] }),
                    if early {
                        Value::Null
                    } else {
                        Value::String(format!("s{i}"))
                    },
                    Value::Vector(vec![i as f32; 4]),
                ]
            })
            .collect();
        Rows {
            columns: vec![
                column("id", Type::String),
                column("n", Type::Null),
                column("v", Type::Vector),
                column("s", Type::Null),
                column("w", Type::Vector),
            ],
            rows,
        }
    }

    /// That `batches` are `whole` cut into consecutive parts, each of its
    /// schema.
    fn assert_slices_of(batches: &[RecordBatch], whole: &RecordBatch, what: &str) {
        let mut at = 0;
        for b in batches {
            assert_eq!(b.schema(), whole.schema(), "{what}");
            assert_eq!(*b, whole.slice(at, b.num_rows()), "{what}, from row {at}");
            at += b.num_rows();
        }
        assert_eq!(at, whole.num_rows(), "{what}");
    }

    /// Built in parts, each part takes the types of the whole: a column's
    /// integers in one part and floats in another are floats in both,
    /// vectors of two lengths a list in both, a part of nulls a string
    /// column when another part holds strings; the parts are the whole's
    /// rows in order.
    #[test]
    fn parts_take_the_types_of_the_whole() {
        let rows = halves();
        let whole = batch_from_rows(&rows).expect("one batch");
        let want = [
            DataType::Utf8,
            DataType::Float64,
            DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true))),
            DataType::Utf8,
            DataType::FixedSizeList(Arc::new(Field::new_list_field(DataType::Float32, true)), 4),
        ];
        for (f, t) in whole.schema().fields().iter().zip(&want) {
            assert_eq!(f.data_type(), t, "{}", f.name());
        }
        let n = whole
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("floats");
        assert_eq!(n.value(2), 2.0);
        assert_eq!(n.value(7), 7.5);
        for parts in [2, 3, 4, 10, 20] {
            let batches = batches_in(&rows, parts, 1).expect("batches");
            let owned = into_batches_in(rows.clone(), parts, 1).expect("batches");
            assert_eq!(owned, batches, "{parts} parts, the rows consumed");
            assert_eq!(batches.len(), parts.min(10), "{parts} parts");
            assert_slices_of(&batches, &whole, &format!("{parts} parts"));
            let ids = batches[batches.len() - 1]
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings");
            assert_eq!(ids.value(ids.len() - 1), "u9");
        }
    }

    /// The rows of [`halves`] with a null vector in each vector column of
    /// row 2, so that a part of that row alone holds no vector at all.
    fn halves_with_nulls() -> Rows {
        let mut rows = halves();
        rows.rows[2][2] = Value::Null;
        rows.rows[2][4] = Value::Null;
        rows
    }

    /// `rows` given to a sink in parts of `size` rows, from several threads
    /// in reverse order, numbered as a scan of two ranges numbers them.
    fn sunk(rows: &Rows, size: usize) -> Result<Vec<RecordBatch>> {
        let sink = BatchSink::default();
        let chunks: Vec<&[Vec<Value>]> = rows.rows.chunks(size).collect();
        let half = chunks.len().div_ceil(2);
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .enumerate()
                .rev()
                .map(|(i, part)| {
                    let (sink, columns) = (&sink, &rows.columns);
                    let at = PartAt {
                        range: usize::from(i >= half),
                        part: if i >= half { i - half } else { i },
                    };
                    s.spawn(move || sink.take(at, columns, part.to_vec()))
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().expect("thread"))
                .map_err(|e| invalid(e.to_string()))
        })?;
        sink.finish(Rows {
            columns: rows.columns.clone(),
            rows: Vec::new(),
        })
    }

    /// Parts converted as a scan makes them are, in order, the batches of
    /// the whole result cut at the parts' bounds: of the whole's types
    /// wherever a part's own values would type a column otherwise (integers
    /// among floats, vectors of another length, no vector or no value).
    #[test]
    fn a_sinks_parts_are_the_whole_retyped_where_they_differ() {
        for rows in [halves(), halves_with_nulls()] {
            let whole = batch_from_rows(&rows).expect("one batch");
            for size in [1, 2, 3, 4, 5, 10] {
                let batches = sunk(&rows, size).expect("sunk");
                assert_eq!(batches.len(), 10usize.div_ceil(size), "parts of {size}");
                assert_slices_of(&batches, &whole, &format!("parts of {size}"));
            }
        }
        // A part of nulls only, of a vector column whose other parts hold
        // vectors of four: a fixed-size list of four, of nulls.
        let rows = halves_with_nulls();
        let batches = sunk(&rows, 1).expect("sunk");
        let w = batches[2].column(4);
        assert_eq!(
            w.data_type(),
            &DataType::FixedSizeList(Arc::new(Field::new_list_field(DataType::Float32, true)), 4)
        );
        assert!(w.is_null(0));
        let n = batches[3].column(1).as_primitive::<Float64Type>();
        assert_eq!(n.value(0), 3.0);
    }

    /// A sink given no part converts the rows returned; rows returned beside
    /// parts come after them; parts that no one type holds are refused.
    #[test]
    fn a_sinks_rows_returned_and_its_disagreements() {
        let rows = halves();
        let sink = BatchSink::default();
        assert_eq!(
            sink.finish(rows.clone()).expect("rows"),
            into_batches(rows.clone()).expect("rows")
        );
        let sink = BatchSink::default();
        sink.take(
            PartAt { range: 0, part: 0 },
            &rows.columns,
            rows.rows[..4].to_vec(),
        )
        .expect("taken");
        let batches = sink
            .finish(Rows {
                columns: rows.columns.clone(),
                rows: rows.rows[4..].to_vec(),
            })
            .expect("batches");
        let whole = batch_from_rows(&rows).expect("whole");
        assert_eq!(batches, vec![whole.slice(0, 4), whole.slice(4, 6)]);

        let mut bad = halves();
        bad.rows[8][0] = Value::Int(3);
        let e = sunk(&bad, 5).expect_err("strings and integers");
        assert!(e.to_string().contains("column 'id'"), "{e}");
        let e = sunk(&bad, 1).expect_err("strings and integers");
        assert!(e.to_string().contains("column 'id'"), "{e}");
    }

    /// The events of a batch of three rows with `vec` as its only field.
    fn vector_events(vec: ArrayRef) -> Result<Vec<Event>> {
        let len = vec.len();
        let batch = RecordBatch::try_from_iter([
            (
                "user",
                Arc::new(StringArray::from_iter_values(
                    (0..len).map(|i| format!("u{i}")),
                )) as ArrayRef,
            ),
            (
                "type",
                Arc::new(StringArray::from_iter_values(vec!["view"; len])),
            ),
            (
                "ts",
                Arc::new(arrow_array::Int64Array::from_iter_values(
                    (0..len as i64).map(|i| 1_761_991_200_000 + i),
                )),
            ),
            ("vec", vec),
        ])
        .expect("batch");
        events_from_batch(&batch, 10)
    }

    fn vec_field(ev: &Event) -> Option<&Value> {
        ev.field("vec")
    }

    /// Lists of floats are read straight from their values, whatever the
    /// list's kind, offset or float width: each row its own slice, a null
    /// row no field; an element that is null or does not fit an f32 is
    /// refused by its row (counted from the batch's first) and element.
    #[test]
    fn float_lists_read_each_rows_values() {
        use arrow_array::builder::{LargeListBuilder, ListBuilder};
        let want = [Some(vec![1.0f32, 2.0]), None, Some(vec![3.0, 4.5])];
        // A fixed-size list of f32, sliced so that it starts at an offset.
        let mut fixed = FixedSizeListBuilder::new(Float32Builder::new(), 2);
        for row in [
            Some([9.0f32, 9.0]),
            Some([1.0, 2.0]),
            None,
            Some([3.0, 4.5]),
        ] {
            match row {
                Some(v) => {
                    fixed.values().append_slice(&v);
                    fixed.append(true);
                }
                None => {
                    fixed.values().append_slice(&[0.0, 0.0]);
                    fixed.append(false);
                }
            }
        }
        let fixed: ArrayRef = Arc::new(fixed.finish().slice(1, 3));
        // A list of f64 with rows of other lengths, and a large list of f32.
        let mut list = ListBuilder::new(Float64Builder::new());
        let mut large = LargeListBuilder::new(Float32Builder::new());
        for row in &want {
            match row {
                Some(v) => {
                    for x in v {
                        list.values().append_value(f64::from(*x));
                        large.values().append_value(*x);
                    }
                    list.append(true);
                    large.append(true);
                }
                None => {
                    list.append(false);
                    large.append(false);
                }
            }
        }
        for array in [fixed, Arc::new(list.finish()), Arc::new(large.finish())] {
            let kind = array.data_type().to_string();
            let events = vector_events(array).expect("events");
            for (ev, w) in events.iter().zip(&want) {
                assert_eq!(
                    vec_field(ev),
                    w.clone().map(Value::Vector).as_ref(),
                    "{kind}"
                );
            }
        }
        // A null element: refused by the slower reading, by its index.
        let mut nulls = ListBuilder::new(Float32Builder::new());
        nulls.values().append_value(1.0);
        nulls.append(true);
        nulls.values().append_value(1.0);
        nulls.values().append_null();
        nulls.append(true);
        let e = vector_events(Arc::new(nulls.finish())).expect_err("a null element");
        assert!(e.to_string().contains("array element 1 is null"), "{e}");
        assert!(e.to_string().contains("event 11, field 'vec'"), "{e}");
        // An f64 too large for an f32, and an infinite f32.
        let mut big = ListBuilder::new(Float64Builder::new());
        big.values().append_value(1.0);
        big.append(true);
        big.values().append_value(2.0);
        big.values().append_value(1e300);
        big.append(true);
        let e = vector_events(Arc::new(big.finish())).expect_err("too large");
        assert!(e.to_string().contains("event 11, field 'vec'"), "{e}");
        assert!(e.to_string().contains("array element 1 (1000"), "{e}");
        assert!(e.to_string().ends_with(") does not fit an f32"), "{e}");
        let mut inf = FixedSizeListBuilder::new(Float32Builder::new(), 1);
        inf.values().append_value(f32::INFINITY);
        inf.append(true);
        let e = vector_events(Arc::new(inf.finish())).expect_err("infinite");
        assert!(
            e.to_string()
                .contains("array element 0 (inf) does not fit an f32"),
            "{e}"
        );
    }

    /// A batch of `rows` events of every kind of column, each row's values
    /// a function of its number, with the refusals `bad` asks for: an
    /// infinite price, a quantity past i64's range or a null user at a row.
    fn mixed_batch(rows: usize, bad: &[(usize, &str)]) -> RecordBatch {
        use arrow_array::builder::{
            BooleanBuilder, LargeStringBuilder, StringBuilder, StringViewBuilder,
            TimestampMicrosecondBuilder, UInt64Builder,
        };
        let is_bad = |row: usize, what: &str| bad.contains(&(row, what));
        let mut user = StringBuilder::new();
        let mut ty = LargeStringBuilder::new();
        let mut ts = TimestampMicrosecondBuilder::new();
        let mut price = Float64Builder::new();
        let mut qty = UInt64Builder::new();
        let mut flag = BooleanBuilder::new();
        let mut tag = StringViewBuilder::new();
        let mut vec = FixedSizeListBuilder::new(Float32Builder::new(), 2);
        for row in 0..rows {
            if is_bad(row, "user") {
                user.append_null();
            } else {
                user.append_value(format!("u{}", row % 997));
            }
            ty.append_value(if row % 3 == 0 { "buy" } else { "view" });
            ts.append_value(1_761_991_200_000_000 + row as i64 * 1_001);
            match row % 5 {
                _ if is_bad(row, "price") => price.append_value(f64::INFINITY),
                0 => price.append_null(),
                1 => price.append_value(f64::NAN),
                _ => price.append_value(row as f64 / 4.0),
            }
            qty.append_value(if is_bad(row, "qty") {
                u64::MAX
            } else {
                row as u64
            });
            if row % 7 == 0 {
                flag.append_null();
            } else {
                flag.append_value(row % 2 == 0);
            }
            tag.append_value(format!("t{}", row % 11));
            vec.values().append_slice(&[row as f32, -(row as f32)]);
            vec.append(row % 13 != 0);
        }
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("user", Arc::new(user.finish())),
            ("type", Arc::new(ty.finish())),
            ("ts", Arc::new(ts.finish())),
            ("price", Arc::new(price.finish())),
            ("qty", Arc::new(qty.finish())),
            ("flag", Arc::new(flag.finish())),
            ("tag", Arc::new(tag.finish())),
            ("vec", Arc::new(vec.finish())),
        ];
        RecordBatch::try_from_iter(columns).expect("batch")
    }

    /// A batch large enough to be converted on several threads makes, in
    /// order, the events its rows describe (made here field by field from
    /// the same row numbers), and the same events converted a few rows at a
    /// time; of several refused rows, the first is named, whichever column
    /// refuses it and whichever thread converts it.
    #[test]
    fn a_large_batch_converts_each_row_in_its_place() {
        let rows = 9 * EVENT_ROWS + 123;
        let batch = mixed_batch(rows, &[]);
        let want: Vec<Event> = (0..rows)
            .map(|row| {
                let mut ev = Event::new(
                    format!("u{}", row % 997),
                    if row % 3 == 0 { "buy" } else { "view" },
                    // Microseconds to milliseconds, rounded down.
                    1_761_991_200_000 + (row as i64 * 1_001) / 1_000,
                );
                if row % 5 > 1 {
                    ev = ev.with("price", Value::Float(row as f64 / 4.0));
                }
                ev = ev.with("qty", Value::Int(row as i64));
                if row % 7 != 0 {
                    ev = ev.with("flag", Value::Bool(row % 2 == 0));
                }
                ev = ev.with("tag", Value::String(format!("t{}", row % 11)));
                if row % 13 != 0 {
                    ev = ev.with("vec", Value::Vector(vec![row as f32, -(row as f32)]));
                }
                ev
            })
            .collect();
        let events = events_from_batch(&batch, 0).expect("events");
        assert_eq!(events.len(), want.len());
        assert!(events == want, "the events differ from the rows'");
        // A few rows at a time, each run on the calling thread alone.
        let mut by_runs = Vec::new();
        for start in (0..rows).step_by(1_000) {
            let len = 1_000.min(rows - start);
            by_runs.extend(events_from_batch(&batch.slice(start, len), start).expect("a run"));
        }
        assert!(by_runs == want, "the events converted in runs differ");

        let refused = |bad: &[(usize, &str)]| {
            let e = events_from_batch(&mixed_batch(rows, bad), 5).expect_err("refused");
            e.to_string()
        };
        let e = refused(&[
            (8 * EVENT_ROWS, "user"),
            (3 * EVENT_ROWS + 7, "qty"),
            (70_000, "price"),
        ]);
        assert!(
            e.contains(&format!("event {}, field 'qty'", 3 * EVENT_ROWS + 12)),
            "{e}"
        );
        assert!(
            e.contains(&format!("number {} is out of range", u64::MAX)),
            "{e}"
        );
        let e = refused(&[(8 * EVENT_ROWS, "user"), (EVENT_ROWS + 2, "price")]);
        assert!(
            e.contains(&format!("event {}, field 'price'", EVENT_ROWS + 7)),
            "{e}"
        );
        let e = refused(&[(rows - 1, "user")]);
        assert!(
            e.contains(&format!("event {}, field 'user'", rows + 4)),
            "{e}"
        );
        assert!(e.ends_with("missing (null)"), "{e}");
    }

    /// Two types that no one Arrow type holds, in different parts, are
    /// refused by the column's name; a result without rows is one empty
    /// batch of the declared types.
    #[test]
    fn parts_that_disagree_are_refused_and_no_rows_is_one_batch() {
        let mut rows = halves();
        rows.rows[8][0] = Value::Int(3);
        let e = batches_in(&rows, 2, 1).expect_err("strings and integers");
        assert!(e.to_string().contains("column 'id'"), "{e}");
        let e = into_batches_in(rows, 2, 1).expect_err("strings and integers");
        assert!(e.to_string().contains("column 'id'"), "{e}");
        let empty = Rows {
            columns: vec![column("id", Type::String), column("n", Type::Int)],
            rows: Vec::new(),
        };
        assert_eq!(
            into_batches(empty.clone()).expect("empty"),
            batches_from_rows(&empty).expect("empty")
        );
        let batches = batches_from_rows(&empty).expect("empty");
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].num_rows(), 0);
        assert_eq!(batches[0].schema().field(1).data_type(), &DataType::Int64);
    }
}
