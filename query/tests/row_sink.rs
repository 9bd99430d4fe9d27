//! A plain scan's rows handed to a `RowSink` part by part: the parts, in
//! order, are the rows the same statement returns without a sink; every
//! other statement returns its rows and never calls the sink.

use std::collections::BTreeSet;
use std::sync::Mutex;

use profiledb_query::{
    Column, Error, Limits, Output, PartAt, Permission, Result, RowSink, execute, execute_params,
    execute_params_into,
};
use profiledb_storage::kv::memory::MemoryKv;
use profiledb_storage::{Event, MemoryEngine, Value};

const NOW: i64 = 1_794_700_800_000;

/// Users `u00000`… with one to three views each of price `i % 97`, every
/// seventh with a `tier` attribute, over four ranges.
fn db(users: usize) -> MemoryEngine {
    let db = MemoryEngine::over(MemoryKv::new().with_parts(4))
        .expect("engine")
        .with_now(NOW);
    execute(
        &db,
        "CREATE FEATURE n ON view AS COUNT(); CREATE FEATURE spend ON view AS SUM(price); \
         CREATE ATTRIBUTE tier STRING ON view",
        &Limits::default(),
    )
    .expect("schema");
    let mut events = Vec::new();
    for i in 0..users {
        for k in 0..=(i % 3) {
            let mut ev = Event::new(format!("u{i:05}"), "view", NOW - 1000 * (k as i64 + 1));
            ev.fields
                .push(("price".into(), Value::Int((i % 97) as i64)));
            events.push(ev);
        }
    }
    db.ingest(&events).expect("ingest");
    db
}

/// A part as a sink was given it.
type Taken = (PartAt, Vec<Column>, Vec<Vec<Value>>);

/// Keeps every part it is given.
#[derive(Default)]
struct Parts {
    parts: Mutex<Vec<Taken>>,
    /// Fail once this many rows were taken.
    fail_after: Option<usize>,
}

impl RowSink for Parts {
    fn take(&self, at: PartAt, columns: &[Column], rows: Vec<Vec<Value>>) -> Result<()> {
        let mut parts = self.parts.lock().expect("parts");
        let taken: usize = parts.iter().map(|(_, _, r)| r.len()).sum();
        if self.fail_after.is_some_and(|n| taken >= n) {
            return Err(Error::invalid("the sink is full", None));
        }
        parts.push((at, columns.to_vec(), rows));
        Ok(())
    }
}

impl Parts {
    /// The parts' rows in their order, and each part's place; every part of
    /// `columns`.
    fn rows(self, columns: &[Column]) -> (Vec<Vec<Value>>, Vec<PartAt>) {
        let mut parts = self.parts.into_inner().expect("parts");
        parts.sort_by_key(|(at, _, _)| *at);
        let mut rows = Vec::new();
        let mut places = Vec::new();
        for (at, cols, r) in parts {
            assert_eq!(cols, columns);
            assert!(!r.is_empty(), "an empty part at {at:?}");
            places.push(at);
            rows.extend(r);
        }
        (rows, places)
    }
}

fn rows_of(out: Output) -> profiledb_query::Rows {
    match out {
        Output::Rows(r) => r,
        Output::Done { summary, .. } => panic!("no rows: {summary}"),
    }
}

/// Every statement's output of `sql`, the last one's rows to `sink`.
fn run_script(db: &MemoryEngine, sql: &str, limits: &Limits, sink: &Parts) -> Result<Vec<Output>> {
    execute_params_into(db, sql, &[], limits, Permission::ReadWrite, sink)
}

/// The last statement's output of `sql`, its rows to `sink`.
fn run(db: &MemoryEngine, sql: &str, sink: &Parts) -> Result<Output> {
    run_script(db, sql, &Limits::default(), sink).map(|mut outs| outs.pop().expect("an output"))
}

#[test]
fn a_plain_scans_parts_are_its_rows_in_order() {
    let db = db(100_000);
    for sql in [
        "SELECT id, n, spend, tier FROM users",
        "SELECT id, spend * 2 AS double, tier FROM users WHERE n >= 2",
        "SELECT id FROM users WHERE tier = 'gold'",
        "SELECT id FROM users WHERE n > 10",
    ] {
        let want = rows_of(
            execute_params(&db, sql, &[], &Limits::default(), Permission::ReadWrite)
                .expect(sql)
                .pop()
                .expect("an output"),
        );
        let sink = Parts::default();
        let out = rows_of(run(&db, sql, &sink).expect(sql));
        assert!(
            out.rows.is_empty(),
            "{sql}: rows returned beside the sink's"
        );
        assert_eq!(out.columns, want.columns, "{sql}");
        let (rows, places) = sink.rows(&want.columns);
        assert_eq!(rows, want.rows, "{sql}");
        // The ids, from the store itself, in order, each once.
        if sql == "SELECT id, n, spend, tier FROM users" {
            assert_eq!(rows.len(), 100_000);
            let ids: Vec<String> = (0..100_000).map(|i| format!("u{i:05}")).collect();
            let got: Vec<&Value> = rows.iter().map(|r| &r[0]).collect();
            assert!(
                got.iter()
                    .zip(&ids)
                    .all(|(g, w)| **g == Value::String(w.clone()))
            );
            // More than one part in a range: 100,000 rows over four ranges.
            let ranges: BTreeSet<usize> = places.iter().map(|p| p.range).collect();
            assert!(places.len() > ranges.len(), "{places:?}");
            for (i, p) in places.iter().enumerate() {
                let before = places[..i].iter().filter(|q| q.range == p.range).count();
                assert_eq!(p.part, before, "parts of a range are numbered from 0");
            }
        }
    }
}

#[test]
fn other_statements_return_their_rows_and_never_call_the_sink() {
    let db = db(3_000);
    for sql in [
        "SELECT id, spend FROM users ORDER BY spend DESC, id",
        "SELECT id FROM users LIMIT 10",
        "SELECT id FROM users LIMIT 10 OFFSET 5",
        "SELECT DISTINCT n FROM users",
        "SELECT n, count(*) FROM users GROUP BY n",
        "SELECT count(*) FROM users",
        "SELECT id, spend FROM users WHERE id = 'u00042'",
        "SELECT 1 + 2",
        "SHOW FEATURES",
    ] {
        let want = execute(&db, sql, &Limits::default()).expect(sql).pop();
        let sink = Parts::default();
        let got = run(&db, sql, &sink).expect(sql);
        assert_eq!(Some(got), want, "{sql}");
        assert!(sink.parts.lock().expect("parts").is_empty(), "{sql}");
    }
    // Only the script's last statement hands its rows over.
    let sink = Parts::default();
    let outs = run_script(
        &db,
        "SELECT id FROM users WHERE n = 3; SELECT id FROM users WHERE n = 1",
        &Limits::default(),
        &sink,
    )
    .expect("script");
    assert_eq!(rows_of(outs[0].clone()).rows.len(), 1_000);
    assert!(rows_of(outs[1].clone()).rows.is_empty());
    let (rows, _) = sink.rows(&rows_of(outs[1].clone()).columns);
    assert_eq!(rows.len(), 1_000);
    assert_eq!(rows[0], vec![Value::String("u00000".into())]);
}

#[test]
fn caps_overflows_and_the_sinks_errors_fail_the_statement() {
    let db = db(40_000);
    let capped = Limits {
        deadline: None,
        max_rows: Some(39_999),
    };
    let sink = Parts::default();
    let err = run_script(&db, "SELECT id FROM users", &capped, &sink).err();
    assert!(
        matches!(err, Some(Error::TooManyRows { limit: 39_999 })),
        "{err:?}"
    );
    let exact = Limits {
        deadline: None,
        max_rows: Some(40_000),
    };
    let sink = Parts::default();
    run_script(&db, "SELECT id FROM users", &exact, &sink).expect("at the cap");
    assert_eq!(
        sink.rows(&[Column {
            name: "id".into(),
            ty: profiledb_query::Type::String
        }])
        .0
        .len(),
        40_000
    );

    // An integer column that overflows is refused as without a sink.
    let sql = "SELECT id, n * 9223372036854775807 AS big FROM users";
    let want = execute(&db, sql, &Limits::default()).err();
    assert!(matches!(want, Some(Error::Overflow { .. })), "{want:?}");
    let got = run(&db, sql, &Parts::default()).err();
    assert_eq!(got.map(|e| e.to_string()), want.map(|e| e.to_string()));

    let full = Parts {
        fail_after: Some(1),
        ..Parts::default()
    };
    let err = run(&db, "SELECT id FROM users", &full).err();
    assert!(
        err.as_ref()
            .is_some_and(|e| e.to_string().contains("the sink is full")),
        "{err:?}"
    );
}
