//! `profiledb import` reads pipes, stdin and process substitutions: each input is
//! read once into a spool, so nothing is silently dropped.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let input = child.stdin.take().expect("stdin is piped");
    if let Some(text) = stdin {
        let mut input = input;
        input
            .write_all(text.as_bytes())
            .expect("stdin takes the input");
    }
    child.wait_with_output().expect("the binary exits")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn setup(db: &str) {
    let o = run(
        &[
            "shell",
            "--db",
            db,
            "-c",
            "CREATE FEATURE n ON hit AS COUNT(); CREATE FEATURE total ON hit AS SUM(x)",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// `n` JSON Lines events, user `p{i % 7}`, x = i.
fn jsonl(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"user\":\"p{}\",\"type\":\"hit\",\"ts\":{},\"x\":{i}}}\n",
                i % 7,
                1_761_955_200_000u64 + i as u64
            )
        })
        .collect()
}

/// The total of `x` over all users, and the number of events, by a query.
fn totals(db: &str) -> (String, String) {
    let o = run(
        &[
            "shell",
            "--db",
            db,
            "--format",
            "csv",
            "-c",
            "SELECT sum(n) AS events, sum(total) AS x FROM users",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let row = out.lines().nth(1).unwrap_or_default().to_owned();
    let mut cells = row.split(',');
    (
        cells.next().unwrap_or_default().to_owned(),
        cells.next().unwrap_or_default().to_owned(),
    )
}

/// What `n` events from [`jsonl`] add up to, computed directly.
fn expected(n: usize) -> (String, String) {
    let x: usize = (0..n).sum();
    (n.to_string(), format!("{:?}", x as f64))
}

#[test]
fn stdin_as_dash_imports_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    setup(db);
    // More than one write batch (10,000 events).
    let n = 25_003;
    let o = run(&["import", "--db", db, "-"], Some(&jsonl(n)));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(&format!("imported {n} events, rejected 0 lines")),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(totals(db), expected(n));
}

#[test]
fn dev_stdin_and_a_fifo_import_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_dir = dir.path().join("db");
    let db = db_dir.to_str().expect("utf-8");
    setup(db);
    let o = run(&["import", "--db", db, "/dev/stdin"], Some(&jsonl(100)));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(totals(db), expected(100));

    // A named pipe, written by another process while import reads it.
    let fifo = dir.path().join("events.fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let body = jsonl(300);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, body).expect("the fifo takes the events"))
    };
    let o = run(&["import", "--db", db, fifo.to_str().expect("utf-8")], None);
    writer.join().expect("the writer finishes");
    assert!(o.status.success(), "{}", text(&o.stderr));
    // 100 before, 300 now: the first 100 of each run have the same x values.
    let x: usize = (0..100).sum::<usize>() + (0..300).sum::<usize>();
    assert_eq!(totals(db), ("400".to_owned(), format!("{:?}", x as f64)));
}

#[test]
fn a_csv_on_stdin_needs_format_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    setup(db);
    let csv = "user,type,ts,x\nc1,hit,1761955200000,2.5\nc2,hit,1761955200001,4\n";
    let o = run(&["import", "--db", db, "--format", "csv", "-"], Some(csv));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(totals(db), ("2".to_owned(), "6.5".to_owned()));
    // Without it, the lines are not JSON: every one is listed, nothing written.
    let o = run(&["import", "--db", db, "-"], Some(csv));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("3 bad lines"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(totals(db), ("2".to_owned(), "6.5".to_owned()));
}

#[test]
fn a_directory_or_a_missing_file_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_dir = dir.path().join("db");
    let db = db_dir.to_str().expect("utf-8");
    setup(db);
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, jsonl(5)).expect("write");
    for other in [dir.path().to_owned(), dir.path().join("missing.jsonl")] {
        let o = run(
            &[
                "import",
                "--db",
                db,
                good.to_str().expect("utf-8"),
                other.to_str().expect("utf-8"),
            ],
            None,
        );
        assert!(!o.status.success());
        let err = text(&o.stderr);
        assert!(err.contains(&other.display().to_string()), "{err}");
        assert_eq!(totals(db).0, "", "nothing written: {err}");
    }
    assert!(Path::new(&good).exists());
}
