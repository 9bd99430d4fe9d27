//! Expressions as deep as the limit allows run through every pass (parse, bind,
//! plan, evaluate, print), and deeper ones are refused with a clear error, not a
//! stack overflow. Each case runs on a thread with a 2 MiB stack, the size of the
//! server's worker threads and rayon's.

use profiledb_query::{Error, Limits, MAX_EXPR_DEPTH, execute};
use profiledb_storage::kv::memory::MemoryKv;
use profiledb_storage::{MemoryEngine, Value};

const STACK: usize = 2 << 20;

fn db() -> Result<MemoryEngine, Error> {
    let db = MemoryEngine::over(MemoryKv::new().with_parts(2))?.with_now(1_794_700_800_000);
    execute(
        &db,
        "CREATE FEATURE n ON view AS COUNT();
         CREATE ATTRIBUTE region STRING ON view;
         INSERT INTO view (user, ts, region) VALUES ('u1', 1, 'north'), ('u2', 2, 'south'), ('u2', 3, 'south')",
        &Limits::default(),
    )?;
    Ok(db)
}

/// `terms` copies of `term` joined by `op`.
fn chain(term: &str, op: &str, terms: usize) -> String {
    vec![term; terms].join(op)
}

/// Runs `sql` on a small-stack thread and returns its rows, or its error.
fn run(sql: String) -> Result<Vec<Vec<Value>>, Error> {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let db = db()?;
            let out = execute(&db, &sql, &Limits::default())?;
            Ok(out
                .last()
                .and_then(|o| o.rows())
                .map(|r| r.rows.clone())
                .unwrap_or_default())
        })
        .map_err(|e| Error::invalid(e.to_string(), None))?
        .join()
        .unwrap_or_else(|_| panic!("the statement panicked"))
}

fn assert_too_deep(r: Result<Vec<Vec<Value>>, Error>) {
    match r {
        Err(e) => assert!(e.to_string().contains("too deep"), "{e}"),
        Ok(rows) => panic!("accepted: {rows:?}"),
    }
}

#[test]
fn a_sum_at_the_limit_evaluates_and_one_past_it_is_refused() -> Result<(), Error> {
    // A chain of n terms is a tree n levels high.
    let sql = format!(
        "SELECT {} AS x FROM users WHERE id = 'u1'",
        chain("1", " + ", MAX_EXPR_DEPTH)
    );
    assert_eq!(run(sql)?, vec![vec![Value::Int(MAX_EXPR_DEPTH as i64)]]);
    assert_too_deep(run(format!(
        "SELECT {} AS x FROM users",
        chain("1", " + ", MAX_EXPR_DEPTH + 1)
    )));
    Ok(())
}

#[test]
fn long_chains_of_every_operator_are_refused() {
    // The campaign's inputs were about 2,700 terms; far longer ones must be as harmless.
    for terms in [2_700, 100_000] {
        for sql in [
            format!("SELECT {} AS x FROM users", chain("1", "+", terms)),
            format!("SELECT {} AS x FROM users", chain("2", "*", terms)),
            format!(
                "SELECT id FROM users WHERE {}",
                chain("n > 0", " AND ", terms)
            ),
            format!(
                "SELECT id FROM users WHERE {}",
                chain("n > 0", " OR ", terms)
            ),
            format!(
                "EXPLAIN SELECT id FROM users WHERE {}",
                chain("n > 0", " OR ", terms)
            ),
            format!(
                "SELECT count(*) FROM users WHERE {}",
                chain("n", " = ", terms)
            ),
            format!("CREATE SEGMENT s AS {}", chain("n > 0", " AND ", terms)),
            format!("DELETE FROM users WHERE {}", chain("n > 0", " AND ", terms)),
            format!(
                "UPDATE users SET region = 'x' WHERE {}",
                chain("n > 0", " AND ", terms)
            ),
            format!("SELECT id FROM users ORDER BY {}", chain("n", " - ", terms)),
        ] {
            assert_too_deep(run(sql));
        }
    }
}

#[test]
fn predicates_at_the_limit_agree_with_a_direct_count() -> Result<(), Error> {
    // `n > 0 AND … AND region = 'south'`: only u2 qualifies.
    let and = format!(
        "SELECT id FROM users WHERE {} AND region = 'south'",
        chain("n > 0", " AND ", MAX_EXPR_DEPTH - 2)
    );
    assert_eq!(run(and)?, vec![vec![Value::String("u2".into())]]);
    // `n > 5 OR … OR n = 2`: again only u2, with two events.
    let or = format!(
        "SELECT id, n FROM users WHERE {} OR n = 2",
        chain("n > 5", " OR ", MAX_EXPR_DEPTH - 2)
    );
    assert_eq!(
        run(or.clone())?,
        vec![vec![Value::String("u2".into()), Value::Int(2)]]
    );
    // EXPLAIN prints the whole tree.
    let plan = run(format!("EXPLAIN {or}"))?;
    assert!(!plan.is_empty());
    // Grouped: the key is a deep expression, printed and compared per group.
    let key = chain("n", " + ", MAX_EXPR_DEPTH);
    let grouped = format!("SELECT {key}, count(*) FROM users GROUP BY {key} ORDER BY {key}");
    let n = MAX_EXPR_DEPTH as i64;
    assert_eq!(
        run(grouped)?,
        vec![
            vec![Value::Int(n), Value::Int(1)],
            vec![Value::Int(2 * n), Value::Int(1)]
        ]
    );
    Ok(())
}

#[test]
fn segments_that_inline_deep_segments_are_bounded_too() -> Result<(), Error> {
    // Each segment is within the limit alone; inlined into one another they are not.
    let half = chain("n > 0", " AND ", MAX_EXPR_DEPTH / 2);
    let sql = format!(
        "CREATE SEGMENT a AS {half};
         CREATE SEGMENT b AS IN SEGMENT a AND {half};
         CREATE SEGMENT c AS IN SEGMENT b AND {half};
         SELECT count(*) FROM users WHERE IN SEGMENT c"
    );
    let err = run(sql).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("too deep"), "{err}");
    Ok(())
}

#[test]
fn wide_expressions_are_not_deep() -> Result<(), Error> {
    // 100,000 candidates in one IN list: a wide tree, two levels high.
    let ids: Vec<String> = (0..100_000).map(|i| format!("'x{i}'")).collect();
    let sql = format!(
        "SELECT id FROM users WHERE id IN ({}, 'u2') ORDER BY id",
        ids.join(", ")
    );
    assert_eq!(run(sql)?, vec![vec![Value::String("u2".into())]]);
    let sql = format!(
        "SELECT count(*) FROM users WHERE n IN ({}) OR region = 'north'",
        chain("7", ", ", 100_000)
    );
    assert_eq!(run(sql)?, vec![vec![Value::Int(1)]]);
    Ok(())
}

#[test]
fn statements_past_the_token_limit_are_refused() {
    let terms = profiledb_query::MAX_STATEMENT_TOKENS / 2 + 10;
    let sql = format!(
        "SELECT id FROM users WHERE id IN ({})",
        chain("'u1'", ",", terms)
    );
    let err = run(sql).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("statement too long"), "{err}");
}
