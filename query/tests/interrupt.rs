//! An interrupt (Ctrl-C in the shell) cancels the statements under way, and
//! clearing it lets them run again. A file of its own: the interrupt is the
//! process's, and would cancel other tests' statements.

use profiledb_query::{Error, Limits, clear_interrupt, execute, interrupt};
use profiledb_storage::MemoryEngine;

#[test]
fn an_interrupt_cancels_a_scan_until_cleared() -> Result<(), Error> {
    let db = MemoryEngine::memory().with_now(1_794_700_800_000);
    let rows: Vec<String> = (0..5000).map(|i| format!("('u{i:05}', {i})")).collect();
    execute(
        &db,
        &format!(
            "CREATE FEATURE n ON view AS COUNT(); INSERT INTO view (user, ts) VALUES {}",
            rows.join(", ")
        ),
        &Limits::default(),
    )?;
    interrupt();
    let err = execute(
        &db,
        "SELECT count(*) FROM users WHERE n > 0",
        &Limits::default(),
    )
    .err();
    match err {
        Some(Error::Cancelled { reason }) => assert!(reason.contains("interrupted"), "{reason}"),
        other => panic!("expected a cancelled scan, got {other:?}"),
    }
    clear_interrupt();
    let out = execute(
        &db,
        "SELECT count(*) FROM users WHERE n > 0",
        &Limits::default(),
    )?;
    assert_eq!(
        out[0].rows().map(|r| r.rows[0][0].clone()),
        Some(profiledb_storage::Value::Int(5000))
    );
    Ok(())
}
