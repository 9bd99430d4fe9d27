//! `profiledb import`: bulk load of JSON Lines, CSV and Parquet files into a
//! database opened here ([`profiledb::import`], which says how inputs are
//! read and checked) or into a running server (`--connect`), with a
//! progress bar on a terminal.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use profiledb::import::{
    self, BATCH, BadLine, ImportError, Progress, Shape, Summary, check_all, for_each_object,
    open_all,
};
use profiledb::{Catalog, Db};

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

impl From<TsUnit> for import::TsUnit {
    fn from(u: TsUnit) -> import::TsUnit {
        match u {
            TsUnit::S => import::TsUnit::Seconds,
            TsUnit::Ms => import::TsUnit::Millis,
            TsUnit::Us => import::TsUnit::Micros,
        }
    }
}

/// An input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One JSON event per line.
    #[value(name = "jsonl")]
    JsonLines,
    /// A header with `user`, `type` and `ts`, then one event per row.
    Csv,
    /// Apache Parquet: one event per row.
    Parquet,
}

impl From<Kind> for import::Kind {
    fn from(k: Kind) -> import::Kind {
        match k {
            Kind::JsonLines => import::Kind::JsonLines,
            Kind::Csv => import::Kind::Csv,
            Kind::Parquet => import::Kind::Parquet,
        }
    }
}

/// A progress bar on stderr (indicatif draws only when it is a terminal).
struct Bar(ProgressBar);

impl Progress for Bar {
    fn phase(&self, what: &'static str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(what);
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn bar() -> Bar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Bar(bar)
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
    kind: Option<import::Kind>,
    shape: &Shape,
    skip_bad: bool,
) -> Result<Summary, ImportError> {
    let inputs = open_all(files, kind)?;
    let total_bytes: u64 = inputs.iter().map(|i| i.bytes()).sum();
    let catalog = remote_catalog(client)?;
    // The server checks each event against its schema as it writes.
    let bar = bar();
    let (mut rejected, _) = check_all(&inputs, &catalog, shape, skip_bad, &bar, &|_| Ok(()))?;
    bar.phase("sending", total_bytes);
    let (mut written, mut duplicates) = (0u64, 0u64);
    for input in &inputs {
        let bad: HashSet<u64> = rejected
            .iter()
            .filter(|b| b.file == input.name())
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
                    format!("{}:{}: ", input.name().display(), line_of(&e["index"]))
                };
                return Err(ImportError::Io(format!(
                    "{at}{} (the server answered {status}); {written} events were written before it, by earlier requests",
                    e["message"].as_str().unwrap_or("refused")
                )));
            }
            written += answer["accepted"].as_u64().unwrap_or(0);
            duplicates += answer["duplicates"].as_u64().unwrap_or(0);
            for r in answer["rejected"].as_array().into_iter().flatten() {
                rejected.push(BadLine {
                    file: input.name().to_owned(),
                    line: line_of(&r["index"]),
                    error: profiledb::EventError {
                        field: r["field"].as_str().map(str::to_owned),
                        reason: r["reason"].as_str().unwrap_or_default().to_owned(),
                    },
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
    bar.finish();
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
    let kind = kind.map(import::Kind::from);
    let start = Instant::now();
    let list = |bad: &[BadLine]| {
        for b in bad {
            eprintln!("{b}");
        }
    };
    let result = match target {
        Target::Local(db) => import::import(db, files, kind, shape, skip_bad, &bar()),
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
        Err(e @ (ImportError::Io(_) | ImportError::Interrupted { .. })) => {
            eprintln!("error: {e}");
            1
        }
    }
}
