//! Apache Parquet in and out: event files read as Arrow record batches (for
//! [`crate::import`]), and query results written as Parquet files.
//!
//! The `parquet` crate is the Arrow project's own Rust implementation and
//! reads and writes the same Arrow arrays [`crate::arrow`] converts, so a
//! result has the same column types in a Parquet file as in a pyarrow
//! table. Every codec a common writer uses is built in (Snappy, the default
//! of pyarrow, pandas and Spark; zstd, polars'; gzip, LZ4 and Brotli); files
//! are written with Snappy.

use std::fs::File;
use std::io::Write;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::{Error, Result, Rows};

/// The record batches of a Parquet file, in order.
#[derive(Debug)]
pub struct Batches {
    rows: u64,
    schema: SchemaRef,
    reader: ParquetRecordBatchReader,
}

impl Batches {
    /// How many rows the file holds.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The Arrow schema of its batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Iterator for Batches {
    type Item = std::result::Result<RecordBatch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader
            .next()
            .map(|b| b.map_err(|e| format!("cannot read the Parquet data: {e}")))
    }
}

/// Reads `file` as Parquet, in batches of up to `batch_rows` rows.
///
/// # Errors
/// A file that is not Parquet, or whose schema has no Arrow form, named
/// with the reason.
pub fn read_batches(file: File, batch_rows: usize) -> std::result::Result<Batches, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("not a Parquet file that can be read: {e}"))?;
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(batch_rows.max(1))
        .build()
        .map_err(|e| format!("cannot read the Parquet file: {e}"))?;
    Ok(Batches {
        rows,
        schema,
        reader,
    })
}

/// Writes `rows` to `out` as one Parquet file (one row group per million
/// rows), with the column types [`crate::arrow::batches_from_rows`] gives.
///
/// # Errors
/// A column whose values no one Arrow type holds, or a failed write.
pub fn write_rows(rows: &Rows, out: impl Write + Send) -> Result<()> {
    write_batches(&crate::arrow::batches_from_rows(rows)?, out)
}

/// Writes one record batch to `out` as a Parquet file.
///
/// # Errors
/// A failed write, or a column type Parquet cannot hold.
pub fn write_batch(batch: &RecordBatch, out: impl Write + Send) -> Result<()> {
    write_batches(std::slice::from_ref(batch), out)
}

/// Writes record batches of one schema (at least one) to `out` as a
/// Parquet file.
///
/// # Errors
/// A failed write, or a column type Parquet cannot hold.
pub fn write_batches(batches: &[RecordBatch], out: impl Write + Send) -> Result<()> {
    let Some(first) = batches.first() else {
        return Err(Error::Storage(profiledb_storage::Error::InvalidArgument(
            "no record batch to write (not even an empty one)".into(),
        )));
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let failed = |e: parquet::errors::ParquetError| {
        Error::Storage(profiledb_storage::Error::InvalidArgument(format!(
            "cannot write Parquet: {e}"
        )))
    };
    let mut writer = ArrowWriter::try_new(out, first.schema(), Some(props)).map_err(failed)?;
    for batch in batches {
        writer.write(batch).map_err(failed)?;
    }
    writer.close().map_err(failed)?;
    Ok(())
}
