//! Statement limits: a deadline cancels a scan, and a row cap refuses results
//! larger than it, while smaller or aggregated results pass.

use std::time::{Duration, Instant};

use profiledb_query::{Error, Limits, Output, execute};
use profiledb_storage::kv::memory::MemoryKv;
use profiledb_storage::{MemoryEngine, Value};

fn db_with_users(n: usize) -> Result<MemoryEngine, Error> {
    let db = MemoryEngine::over(MemoryKv::new().with_parts(2))?.with_now(1_794_700_800_000);
    let rows: Vec<String> = (0..n).map(|i| format!("('u{i:05}', {i})")).collect();
    execute(
        &db,
        &format!(
            "CREATE FEATURE n ON view AS COUNT(); INSERT INTO view (user, ts) VALUES {}",
            rows.join(", ")
        ),
        &Limits::default(),
    )?;
    Ok(db)
}

#[test]
fn a_past_deadline_cancels_the_scan() -> Result<(), Error> {
    let db = db_with_users(5000)?;
    let limits = Limits {
        deadline: Some(Instant::now() - Duration::from_secs(1)),
        max_rows: None,
    };
    let err = execute(&db, "SELECT count(*) FROM users WHERE n > 0", &limits).err();
    assert!(matches!(err, Some(Error::Cancelled { .. })), "{err:?}");
    // A generous deadline lets it finish.
    let limits = Limits {
        deadline: Some(Instant::now() + Duration::from_secs(600)),
        max_rows: None,
    };
    let out = execute(&db, "SELECT count(*) FROM users WHERE n > 0", &limits)?;
    assert_eq!(
        out[0].rows().map(|r| r.rows.clone()),
        Some(vec![vec![Value::Int(5000)]])
    );
    Ok(())
}

#[test]
fn the_row_cap_refuses_large_results() -> Result<(), Error> {
    let db = db_with_users(3000)?;
    let limits = Limits {
        deadline: None,
        max_rows: Some(100),
    };
    let err = execute(&db, "SELECT id FROM users", &limits).err();
    assert!(
        matches!(err, Some(Error::TooManyRows { limit: 100 })),
        "{err:?}"
    );
    let err = execute(&db, "SELECT id FROM users ORDER BY n DESC", &limits).err();
    assert!(
        matches!(err, Some(Error::TooManyRows { limit: 100 })),
        "{err:?}"
    );
    let out = execute(
        &db,
        "SELECT id FROM users ORDER BY id DESC LIMIT 100",
        &limits,
    )?;
    let rows = out[0].rows().map(|r| r.rows.len());
    assert_eq!(rows, Some(100));
    let out = execute(&db, "SELECT count(*) FROM users", &limits)?;
    assert_eq!(
        out[0].rows().map(|r| r.rows.clone()),
        Some(vec![vec![Value::Int(3000)]])
    );
    // Writes that scan are not capped: they return a count, not rows.
    let out = execute(&db, "DELETE FROM users WHERE n > 0", &limits)?;
    assert!(
        matches!(
            &out[0],
            Output::Done {
                count: Some(3000),
                ..
            }
        ),
        "{out:?}"
    );
    Ok(())
}

fn db_with_vectors(n: usize) -> Result<MemoryEngine, Error> {
    let db = MemoryEngine::over(MemoryKv::new().with_parts(2))?.with_now(1_794_700_800_000);
    let rows: Vec<String> = (0..n)
        .map(|i| format!("('u{i:05}', {i}, [{}, {}])", i % 7, i % 11))
        .collect();
    execute(
        &db,
        &format!(
            "CREATE FEATURE n ON view AS COUNT();
             CREATE VECTOR taste ON view AS EWMA(v) DIM 2 HALF_LIFE '7d';
             INSERT INTO view (user, ts, v) VALUES {}",
            rows.join(", ")
        ),
        &Limits::default(),
    )?;
    Ok(db)
}

#[test]
fn clustering_honours_the_deadline_and_the_row_cap() -> Result<(), Error> {
    let db = db_with_vectors(3000)?;
    let past = Limits {
        deadline: Some(Instant::now() - Duration::from_secs(1)),
        max_rows: None,
    };
    for sql in [
        "CLUSTER users BY taste INTO 4 SEED 1",
        "CLUSTER users BY taste INTO 4 WHERE n > 0 SEED 1",
        "CREATE SEGMENTS g FROM CLUSTER users BY taste INTO 4 SEED 1",
    ] {
        let err = execute(&db, sql, &past).err();
        assert!(
            matches!(err, Some(Error::Cancelled { .. })),
            "{sql}: {err:?}"
        );
    }
    // The cancelled CREATE SEGMENTS defined nothing.
    let out = execute(&db, "SHOW SEGMENTS", &Limits::default())?;
    assert_eq!(out[0].rows().map(|r| r.rows.len()), Some(0));

    let capped = Limits {
        deadline: None,
        max_rows: Some(100),
    };
    let err = execute(&db, "CLUSTER users BY taste INTO 200 SEED 1", &capped).err();
    assert!(
        matches!(err, Some(Error::TooManyRows { limit: 100 })),
        "{err:?}"
    );
    let out = execute(&db, "CLUSTER users BY taste INTO 100 SEED 1", &capped)?;
    let sizes: i64 = out[0]
        .rows()
        .map(|r| {
            r.rows
                .iter()
                .map(|row| row[1].as_f64().unwrap_or(0.0) as i64)
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(sizes, 3000);
    Ok(())
}

#[test]
fn a_filtered_similarity_query_honours_the_deadline() -> Result<(), Error> {
    let db = db_with_vectors(3000)?;
    let past = Limits {
        deadline: Some(Instant::now() - Duration::from_secs(1)),
        max_rows: None,
    };
    let err = execute(
        &db,
        "SELECT id FROM users WHERE n > 0 ORDER BY cosine(taste, [1, 0]) DESC LIMIT 3",
        &past,
    )
    .err();
    assert!(matches!(err, Some(Error::Cancelled { .. })), "{err:?}");
    Ok(())
}

#[test]
fn vacuum_on_a_source_without_files_is_done_at_once() -> Result<(), Error> {
    let db = db_with_users(10)?;
    let limits = Limits {
        deadline: Some(Instant::now() - Duration::from_secs(1)),
        max_rows: Some(1),
    };
    let out = execute(&db, "VACUUM", &limits)?;
    assert_eq!(
        out[0],
        Output::Done {
            summary: "VACUUM".into(),
            count: None
        }
    );
    Ok(())
}
