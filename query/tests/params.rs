//! Bind parameters: a parameter is a value in place of its `$n`, never SQL
//! text; its count and type are checked and the error names it.

use profiledb_query::{Error, Limits, Output, Permission, execute, execute_params};
use profiledb_storage::{MemoryEngine, Value};

fn db() -> Result<MemoryEngine, Error> {
    let db = MemoryEngine::memory().with_now(1_794_700_800_000);
    execute(
        &db,
        "CREATE ATTRIBUTE region STRING;
         CREATE FEATURE spend ON purchase AS SUM(amount);
         INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 10.0), ('u2', 2, 20.0), ('u3', 3, 30.0);
         UPDATE users SET region = 'north' WHERE id = 'u1'",
        &Limits::default(),
    )?;
    Ok(db)
}

fn run(db: &MemoryEngine, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, Error> {
    let out = execute_params(db, sql, params, &Limits::default(), Permission::ReadWrite)?;
    match out.last() {
        Some(Output::Rows(r)) => Ok(r.rows.clone()),
        other => panic!("expected rows, got {other:?}"),
    }
}

fn ids(rows: &[Vec<Value>]) -> Vec<String> {
    rows.iter()
        .map(|r| match &r[0] {
            Value::String(s) => s.clone(),
            other => panic!("id {other:?}"),
        })
        .collect()
}

#[test]
fn a_hostile_parameter_matches_nothing() -> Result<(), Error> {
    let db = db()?;
    let hostile = Value::String("x' OR id != '".into());
    let rows = run(
        &db,
        "SELECT id FROM users WHERE id = $1",
        std::slice::from_ref(&hostile),
    )?;
    assert!(rows.is_empty(), "{rows:?}");
    // Interpolated as text, the same value matches every user: the
    // difference is the parameter's.
    let text = format!("SELECT id FROM users WHERE id = '{}'", "x' OR id != '");
    let out = execute(&db, &text, &Limits::default())?;
    assert_eq!(out[0].rows().map(|r| r.rows.len()), Some(3));
    let rows = run(&db, "SELECT id FROM users WHERE region = $1", &[hostile])?;
    assert!(rows.is_empty());
    Ok(())
}

#[test]
fn parameters_take_every_literal_position() -> Result<(), Error> {
    let db = db()?;
    let rows = run(
        &db,
        "SELECT id FROM users WHERE spend > $1 AND id != $2 ORDER BY id LIMIT $3",
        &[Value::Float(5.0), Value::String("u2".into()), Value::Int(5)],
    )?;
    assert_eq!(ids(&rows), ["u1", "u3"]);
    let rows = run(
        &db,
        "SELECT id, spend FROM users WHERE id IN ($1, $2) AND spend BETWEEN $3 AND $4 ORDER BY id",
        &[
            Value::String("u1".into()),
            Value::String("u3".into()),
            Value::Int(-5),
            Value::Float(25.5),
        ],
    )?;
    assert_eq!(ids(&rows), ["u1"]);
    // The same parameter twice; NULL and booleans.
    let rows = run(
        &db,
        "SELECT $1 IS NULL, $2 AND TRUE, coalesce($1, $3), $3",
        &[Value::Null, Value::Bool(false), Value::Float(2.5)],
    )?;
    assert_eq!(
        rows,
        vec![vec![
            Value::Bool(true),
            Value::Bool(false),
            Value::Float(2.5),
            Value::Float(2.5)
        ]]
    );
    // Negative numbers stay numbers.
    let rows = run(&db, "SELECT $1 * 2, 10 - $1", &[Value::Int(-3)])?;
    assert_eq!(rows, vec![vec![Value::Int(-6), Value::Int(13)]]);
    // Writes too.
    let out = execute_params(
        &db,
        "INSERT INTO purchase (user, ts, amount) VALUES ($1, $2, $3)",
        &[
            Value::String("u4".into()),
            Value::String("2026-11-01T00:00:00Z".into()),
            Value::Float(4.5),
        ],
        &Limits::default(),
        Permission::ReadWrite,
    )?;
    assert!(matches!(&out[0], Output::Done { .. }));
    let rows = run(&db, "SELECT spend FROM users WHERE id = $1", &["u4".into()])?;
    assert_eq!(rows, vec![vec![Value::Float(4.5)]]);
    Ok(())
}

#[test]
fn a_wrong_count_or_type_names_the_parameter() -> Result<(), Error> {
    let db = db()?;
    let message = |sql: &str, params: &[Value]| match run(&db, sql, params) {
        Err(e) => e.to_string(),
        Ok(rows) => panic!("{sql} with {params:?} answered {rows:?}"),
    };
    let m = message("SELECT id FROM users WHERE id = $2", &["u1".into()]);
    assert!(m.contains("$2") && m.contains("1 parameter"), "{m}");
    let m = message(
        "SELECT id FROM users WHERE id = $1",
        &["a".into(), "b".into()],
    );
    assert!(m.contains("$2") && m.contains("does not use"), "{m}");
    let m = message(
        "SELECT id FROM users WHERE id = $1",
        &[Value::Tags(vec!["a".into()])],
    );
    assert!(m.contains("$1") && m.contains("tags"), "{m}");
    // A type the statement cannot take is an error at the parameter.
    let m = message("SELECT id FROM users WHERE spend > $1", &["ten".into()]);
    assert!(m.contains("parameter $1: type mismatch"), "{m}");
    assert!(m.contains("column 36"), "{m}");
    let m = message("SELECT id FROM users LIMIT $1", &[Value::Int(-1)]);
    assert!(m.contains("row count"), "{m}");
    let m = message("SELECT $0", &[]);
    assert!(m.contains("$1 to"), "{m}");
    Ok(())
}

/// A prepared `SELECT` runs on a view the caller takes with its pins, only
/// when the view's catalog is the one it was planned against; it takes
/// parameters as a query does, and refuses anything but one `SELECT`.
#[test]
fn a_prepared_select_runs_on_a_view_of_its_catalog() -> Result<(), Error> {
    use profiledb_query::{DataSource, Prepared};
    let db = db()?;
    let sql = "SELECT id, spend FROM users WHERE spend > $1";
    let prepared = Prepared::new(sql, &[Value::Int(15)], db.bindings(), db.now())?;
    let view = DataSource::view(&db, prepared.pins())?;
    let rows = prepared
        .run(view.as_ref(), &Limits::default())?
        .expect("the view is of the catalog the query was planned against");
    assert_eq!(ids(&rows.rows), ["u2", "u3"]);
    assert_eq!(rows.rows[0][1], Value::Float(20.0));
    // Planned, then the schema changes before the view is taken.
    let stale = Prepared::new(sql, &[Value::Int(15)], db.bindings(), db.now())?;
    execute(
        &db,
        "CREATE FEATURE n ON purchase AS COUNT()",
        &Limits::default(),
    )?;
    let view = DataSource::view(&db, stale.pins())?;
    assert!(stale.run(view.as_ref(), &Limits::default())?.is_none());
    // Anything but one SELECT, and a parameter of the wrong type, are refused.
    for (sql, params, says) in [
        ("SELECT 1; SELECT 2", vec![], "expected one SELECT"),
        (
            "DELETE FROM users WHERE id = $1",
            vec![Value::String("u1".into())],
            "expected one SELECT",
        ),
        ("SELECT id FROM users WHERE spend > $1", vec![], "$1"),
    ] {
        let e = Prepared::new(sql, &params, db.bindings(), db.now()).expect_err(sql);
        assert!(e.to_string().contains(says), "{sql}: {e}");
    }
    Ok(())
}
