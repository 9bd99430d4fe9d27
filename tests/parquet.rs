//! Parquet in and out through the program: `profiledb import` of Parquet
//! files (renamed columns, timestamp and integer times, nulls, vectors,
//! gzip, bad rows named by row), `\copy (...) TO 'x.parquet'` in the shell
//! and `profiledb export --format parquet`, each read back and compared with
//! values computed here.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const T0: i64 = 1_761_991_200_000; // 2025-11-01T10:00:00Z

/// `n` purchases as an Arrow batch: user `userId` = `u{i % 5}`, a
/// microsecond timestamp, `amount` = i (null every 7th), `taste` = [i, 1].
fn purchases(n: usize) -> RecordBatch {
    let users: Vec<String> = (0..n).map(|i| format!("u{}", i % 5)).collect();
    let amounts: Vec<Option<f64>> = (0..n).map(|i| (i % 7 != 0).then_some(i as f64)).collect();
    let mut taste = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    for i in 0..n {
        taste.values().append_value(i as f32);
        taste.values().append_value(1.0);
        taste.append(true);
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("userId", Arc::new(StringArray::from(users))),
        ("type", Arc::new(StringArray::from(vec!["purchase"; n]))),
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from(
                    (0..n).map(|i| (T0 + i as i64) * 1000).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ),
        ("amount", Arc::new(Float64Array::from(amounts))),
        ("taste", Arc::new(taste.finish())),
    ];
    RecordBatch::try_from_iter(columns).expect("a batch")
}

fn write(batch: &RecordBatch, path: &Path) {
    let f = std::fs::File::create(path).expect("create");
    profiledb::parquet::write_batch(batch, f).expect("write parquet");
}

fn read(path: &Path) -> RecordBatch {
    let f = std::fs::File::open(path).expect("open");
    let batches = profiledb::parquet::read_batches(f, 1 << 20).expect("parquet");
    let schema = batches.schema();
    let all: Vec<RecordBatch> = batches.map(|b| b.expect("a batch")).collect();
    arrow_select_concat(&schema, &all)
}

/// The batches as one (they are few and small here).
fn arrow_select_concat(schema: &arrow_schema::SchemaRef, all: &[RecordBatch]) -> RecordBatch {
    assert!(all.len() <= 1, "one batch expected, got {}", all.len());
    all.first()
        .cloned()
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone()))
}

fn setup(db: &str) {
    ok(&run(&[
        "shell",
        "--db",
        db,
        "--create",
        "-c",
        "ALTER DATABASE SET HISTORY '3650d'; CREATE FEATURE spend ON purchase AS SUM(amount); \
         CREATE FEATURE n ON purchase AS COUNT(); \
         CREATE VECTOR taste ON purchase AS EWMA(taste) DIM 2 HALF_LIFE '1d'",
    ]));
}

#[test]
fn parquet_files_import_and_results_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let db = db.to_str().expect("utf-8");
    setup(db);
    let n = 1000;
    let file = dir.path().join("events.parquet");
    write(&purchases(n), &file);

    // Without the rename, the missing column is named.
    let o = run(&["import", "--db", db, file.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no 'user' column"), "{err}");

    let out = ok(&run(&[
        "import",
        "--db",
        db,
        "--map",
        "userId=user",
        file.to_str().expect("utf-8"),
    ]));
    assert!(out.contains(&format!("imported {n} events")), "{out}");

    // Each user's spend and count, computed here.
    let mut spend = [0.0f64; 5];
    let mut count = [0i64; 5];
    for i in 0..n {
        count[i % 5] += 1;
        if i % 7 != 0 {
            spend[i % 5] += i as f64;
        }
    }
    let copy = dir.path().join("out (1).parquet");
    ok(&run(&[
        "shell",
        "--db",
        db,
        "-c",
        &format!(
            "\\copy (SELECT id, spend, n, taste FROM users ORDER BY id) TO '{}'",
            copy.display()
        ),
    ]));
    let got = read(&copy);
    assert_eq!(got.num_rows(), 5);
    let ids = got.column(0).as_string::<i32>();
    let spends = got.column(1).as_primitive::<Float64Type>();
    let counts = got
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("n is an int64 column");
    let tastes = got.column(3).as_fixed_size_list();
    assert_eq!(tastes.value_length(), 2);
    for u in 0..5 {
        assert_eq!(ids.value(u), format!("u{u}"));
        assert_eq!(spends.value(u), spend[u]);
        assert_eq!(counts.value(u), count[u]);
        // The second component is 1 in every event, so in every average.
        let v = tastes.value(u);
        let v = v.as_primitive::<Float32Type>();
        assert!((v.value(1) - 1.0).abs() < 1e-6, "{:?}", v);
    }

    // The point-in-time export as Parquet: u1 before and after its events.
    let pairs = dir.path().join("pairs.csv");
    std::fs::write(
        &pairs,
        format!("user,ts,label\nu1,{},a\nu1,{},b\n", T0 - 1, T0 + n as i64),
    )
    .expect("write");
    let ex = dir.path().join("ex.parquet");
    ok(&run(&[
        "export",
        "--db",
        db,
        "--at",
        pairs.to_str().expect("utf-8"),
        "--select",
        "n",
        "--format",
        "parquet",
        "-o",
        ex.to_str().expect("utf-8"),
    ]));
    let got = read(&ex);
    let names: Vec<&str> = got
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["user", "ts", "label", "n"]);
    let n_col = got
        .column(3)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("n is int64");
    assert!(n_col.is_null(0), "u1 did not exist before its first event");
    assert_eq!(n_col.value(1), count[1]);
}

#[test]
fn bad_parquet_rows_are_named_by_row_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let db = db.to_str().expect("utf-8");
    setup(db);
    // Rows 2 and 4 (from 1) carry no user.
    let users = StringArray::from(vec![Some("a"), None, Some("c"), None]);
    let batch = RecordBatch::try_from_iter(vec![
        ("user", Arc::new(users) as ArrayRef),
        ("type", Arc::new(StringArray::from(vec!["purchase"; 4]))),
        // Epoch seconds, which need --ts-unit s.
        (
            "ts",
            Arc::new(Int64Array::from(vec![1_761_991_200i64; 4])) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
        ),
    ])
    .expect("a batch");
    let file = dir.path().join("bad.parquet");
    write(&batch, &file);
    let path = file.to_str().expect("utf-8");

    let o = run(&["import", "--db", db, "--ts-unit", "s", path]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.parquet:2: field 'user'"), "{err}");
    assert!(err.contains("bad.parquet:4: field 'user'"), "{err}");
    assert!(err.contains("2 bad lines; nothing was written"), "{err}");

    // Seconds without a unit are refused with the hint.
    let o = run(&["import", "--db", db, "--skip-bad", path]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("looks like epoch seconds"), "{err}");

    // With the unit and --skip-bad, rows 1 and 3 are written, in seconds.
    let out = ok(&run(&[
        "import",
        "--db",
        db,
        "--ts-unit",
        "s",
        "--skip-bad",
        path,
    ]));
    assert!(out.contains("imported 2 events, rejected 2 lines"), "{out}");
    // Read as seconds: no one exists a second before, both at the time.
    let count_at = |at: &str| {
        ok(&run(&[
            "shell",
            "--db",
            db,
            "--format",
            "csv",
            "-c",
            &format!("SELECT count(*), sum(spend) FROM users AS OF '{at}'"),
        ]))
    };
    assert_eq!(
        count_at("2025-11-01T09:59:59Z"),
        "count(*),sum(spend)\n0,\n"
    );
    assert_eq!(
        count_at("2025-11-01T10:00:00Z"),
        "count(*),sum(spend)\n2,4.0\n"
    );
}

#[test]
fn a_gzip_parquet_file_reads_as_parquet() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let db = db.to_str().expect("utf-8");
    setup(db);
    let mut bytes = Vec::new();
    profiledb::parquet::write_batch(&purchases(10), &mut bytes).expect("write");
    let file = dir.path().join("events.parquet.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&file).expect("create"),
        flate2::Compression::default(),
    );
    gz.write_all(&bytes).expect("gzip");
    gz.finish().expect("gzip");
    let out = ok(&run(&[
        "import",
        "--db",
        db,
        "--map",
        "userId=user",
        file.to_str().expect("utf-8"),
    ]));
    assert!(out.contains("imported 10 events"), "{out}");
}

/// Batches written one after another read back as their rows in order; no
/// batch at all is refused, nothing written.
#[test]
fn batches_write_as_one_file_in_order() {
    let all = purchases(10);
    let parts = [all.slice(0, 3), all.slice(3, 0), all.slice(3, 7)];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("parts.parquet");
    let f = std::fs::File::create(&path).expect("create");
    profiledb::parquet::write_batches(&parts, f).expect("write");
    assert_eq!(read(&path), all);
    let mut none = Vec::new();
    let e = profiledb::parquet::write_batches(&[], &mut none).expect_err("no batch");
    assert!(e.to_string().contains("no record batch"), "{e}");
    assert!(none.is_empty());
}
