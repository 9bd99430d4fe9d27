//! The `profiledb` binary's shell and import, run as a user runs them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn profiledb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("the binary runs")
}

/// Runs one `-c` statement through the shell on `db`, printing in `format`.
fn sql(db: &str, format: &str, statement: &str) -> Output {
    profiledb(&["shell", "--db", db, "--format", format, "-c", statement])
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("stdin takes the script");
    child.wait_with_output().expect("the binary exits")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SCHEMA: &str = "CREATE ATTRIBUTE region STRING ON signup;
CREATE FEATURE purchases ON purchase AS COUNT();
CREATE FEATURE spend ON purchase AS SUM(amount);
CREATE VECTOR taste ON view AS EWMA(v) DIM 2 HALF_LIFE '7d';";

fn setup(dir: &Path) {
    let db = dir.to_str().expect("utf-8 path");
    let o = profiledb(&[
        "shell",
        "--db",
        db,
        "-c",
        SCHEMA,
        "-c",
        "INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1761991200000, 35.5), ('u2', 1761991200000, 0.1), ('u2', 1761991300000, 1.0)",
        "-c",
        "INSERT INTO view (user, ts, v) VALUES ('u1', 1761991200000, [1.0, 0.5])",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn csv_output_has_a_header_and_rows_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let o = sql(
        db,
        "csv",
        "SELECT id, purchases, spend, taste, region FROM users ORDER BY id",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "id,purchases,spend,taste,region\nu1,1,35.5,\"[1.0,0.5]\",\nu2,2,1.1,,\n"
    );
}

#[test]
fn summaries_go_to_stderr_in_csv_and_json_and_to_stdout_in_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    for (format, out, err) in [
        ("csv", "", "CREATE FEATURE\n"),
        ("json", "", "CREATE FEATURE\n"),
        ("table", "CREATE FEATURE\n", ""),
    ] {
        let name = format!("f_{format}");
        let o = sql(
            db,
            format,
            &format!("CREATE FEATURE {name} ON purchase AS COUNT()"),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            (stdout(&o).as_str(), stderr(&o).as_str()),
            (out, err),
            "{format}"
        );
    }
}

#[test]
fn json_output_is_one_object_per_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let o = sql(
        db,
        "json",
        "SELECT id, purchases, taste FROM users ORDER BY id",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"id": "u1", "purchases": 1, "taste": [1.0, 0.5]}),
            serde_json::json!({"id": "u2", "purchases": 2, "taste": null}),
        ]
    );
}

#[test]
fn table_output_is_aligned() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let o = profiledb(&[
        "shell",
        "--db",
        db,
        "-c",
        "SELECT id, spend FROM users ORDER BY id",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.last(), Some(&"(2 rows)"), "{out}");
    let table = &lines[..lines.len() - 1];
    assert!(
        table.iter().any(|l| l.contains("u1") && l.contains("35.5")),
        "{out}"
    );
    assert!(
        table.iter().any(|l| l.contains("u2") && l.contains("1.1")),
        "{out}"
    );
    let width = table[0].chars().count();
    assert!(table.iter().all(|l| l.chars().count() == width), "{out}");
}

#[test]
fn a_file_stops_at_the_first_error_with_a_caret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "CREATE FEATURE a ON purchase AS COUNT();\n\
         CREATE FEATURE b ON purchase AS COUNT();\n\
         SELECT id,\n  nope FROM users;\n\
         CREATE FEATURE c ON purchase AS COUNT();\n",
    )
    .expect("write script");
    let o = profiledb(&["shell", "--db", db, "-f", script.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("unknown") && err.contains("'nope'"), "{err}");
    // The caret points into the file: line 4, column 3.
    assert!(
        err.contains("(line 4, column 3)\n    nope FROM users;\n    ^^^^"),
        "{err}"
    );
    // The statements before the error ran; the one after did not.
    let o = sql(db, "csv", "SHOW FEATURES");
    let names: Vec<String> = stdout(&o)
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn statements_piped_on_stdin_run_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    let o = with_stdin(
        &["shell", "--db", db, "--format", "csv"],
        "CREATE FEATURE n ON e AS COUNT();\nINSERT INTO e (user, ts) VALUES ('a', 0), ('b', 0), ('a', 1);\n\
         SELECT id, n FROM users ORDER BY id;\nSELECT nope FROM users;\nSELECT 1 FROM users;\n",
    );
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "id,n\na,2\nb,1\n");
    let err = stderr(&o);
    assert!(
        err.starts_with("CREATE FEATURE\nINSERT 3\nerror: unknown"),
        "{err}"
    );
    assert!(err.contains("(line 4, column 8)"), "{err}");
}

#[test]
fn a_command_needs_no_semicolon_and_backslash_d_lists_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let o = sql(db, "csv", "\\d");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("kind,name,definition\n"), "{out}");
    for line in [
        "attribute,region,",
        "feature,purchases,",
        "feature,spend,",
        "vector,taste,",
    ] {
        assert!(out.contains(line), "{line} missing from {out}");
    }
    let o = sql(db, "csv", "\\d spend");
    assert!(stdout(&o).contains("feature,spend,"), "{}", stdout(&o));
    // Declared event types are listed too.
    let o = sql(db, "csv", "CREATE EVENT click (ad STRING NOT NULL)");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sql(db, "csv", "\\d");
    assert!(
        stdout(&o).contains("event type,click,CREATE EVENT click (ad STRING NOT NULL)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_database_open_elsewhere_suggests_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _held = profiledb::Db::open(dir.path()).expect("open");
    let db = dir.path().to_str().expect("utf-8");
    let o = profiledb(&["shell", "--db", db, "-c", "SHOW FEATURES"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("already open in another process") && err.contains("--connect"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("lock "), "{err}");
}

#[test]
fn import_writes_good_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let jsonl = dir.path().join("events.jsonl");
    std::fs::write(
        &jsonl,
        "{\"user\":\"u3\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":2.5}\n\n\
         {\"user\":\"u3\",\"type\":\"signup\",\"ts\":\"2025-11-01T10:00:00Z\",\"region\":\"north\"}\n",
    )
    .expect("write");
    let csv = dir.path().join("events.csv");
    std::fs::write(
        &csv,
        "user,type,ts,amount,region,v\n\
         u4,purchase,1761991200000,4,,\n\
         u4,signup,2025-11-01T10:00:00Z,,007,\n\
         u4,view,1761991200000,,,\"[0.5, 0.25]\"\n",
    )
    .expect("write");
    let o = profiledb(&[
        "import",
        "--db",
        db,
        jsonl.to_str().expect("utf-8"),
        csv.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("imported 5 events, rejected 0 lines"),
        "{}",
        stdout(&o)
    );
    let o = sql(
        db,
        "csv",
        "SELECT id, region, purchases, spend, taste FROM users WHERE id >= 'u3' ORDER BY id",
    );
    // A string attribute keeps "007" as text; a vector cell is a JSON array.
    assert_eq!(
        stdout(&o),
        "id,region,purchases,spend,taste\nu3,north,1,2.5,\nu4,007,1,4.0,\"[0.5,0.25]\"\n"
    );
}

#[test]
fn import_with_a_bad_line_lists_every_bad_line_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let jsonl = dir.path().join("mixed.jsonl");
    std::fs::write(
        &jsonl,
        "{\"user\":\"u5\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":2.5}\n\
         {\"user\":\"u6\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":\"lots\"}\n\
         not json\n\
         {\"user\":\"u7\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":1}\n\
         {\"user\":\"u8\",\"type\":\"view\",\"ts\":1761991200000,\"v\":[1,2,3]}\n",
    )
    .expect("write");
    // Line 6 is not UTF-8.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&jsonl)
        .expect("open");
    f.write_all(b"{\"user\":\"u\xff\"}\n").expect("append");
    let path = jsonl.to_str().expect("utf-8");
    let count = || {
        let o = sql(db, "csv", "SELECT count(*) FROM users");
        stdout(&o).lines().nth(1).unwrap_or_default().to_owned()
    };
    let o = profiledb(&["import", "--db", db, path]);
    assert!(!o.status.success());
    let err = stderr(&o);
    for (line, what) in [
        (2, "amount"),
        (3, "invalid JSON"),
        (5, "dimension"),
        (6, "UTF-8"),
    ] {
        assert!(
            err.contains(&format!("{path}:{line}: ")),
            "line {line} missing: {err}"
        );
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("{path}:{line}: ")) && l.contains(what)),
            "{err}"
        );
    }
    assert!(
        !err.contains(&format!("{path}:1:")) && !err.contains(&format!("{path}:4:")),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(count(), "2");

    let o = profiledb(&["import", "--db", db, "--skip-bad", path]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("imported 2 events, rejected 4 lines"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains(&format!("{path}:3: ")));
    assert_eq!(count(), "4");
}

#[test]
fn a_csv_without_the_required_columns_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "user,ts,amount\nu1,0,1\n").expect("write");
    let o = profiledb(&["import", "--db", db, csv.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no 'type' column"), "{}", stderr(&o));
}

#[test]
fn stdin_scripts_print_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let script = "SELECT id, purchases FROM users WHERE id < 'u3' ORDER BY id;\nINSERT INTO purchase (user, ts, amount) VALUES ('u9', 0, 1.5);\n";
    let expected = [
        ("csv", "id,purchases\nu1,1\nu2,2\n", "INSERT 1\n"),
        (
            "json",
            "{\"id\":\"u1\",\"purchases\":1}\n{\"id\":\"u2\",\"purchases\":2}\n",
            "INSERT 1\n",
        ),
    ];
    for (format, out, err) in expected {
        let o = with_stdin(&["shell", "--db", db, "--format", format], script);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            (stdout(&o).as_str(), stderr(&o).as_str()),
            (out, err),
            "{format}"
        );
    }
    let o = with_stdin(&["shell", "--db", db, "--format", "table"], script);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("u1") && out.contains("u2") && out.contains("(2 rows)\nINSERT 1\n"),
        "{out}"
    );
    assert_eq!(stderr(&o), "");
}

#[test]
fn the_demo_builds_a_database_the_shell_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo");
    let db = db.to_str().expect("utf-8");
    let o = profiledb(&["demo", "--db", db, "--users", "300", "--days", "6"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for part in [
        "1. ",
        "2. ",
        "3. ",
        "4. ",
        "5. ",
        "CLUSTER users BY taste",
        "zscore(views",
    ] {
        assert!(out.contains(part), "{part} missing from {out}");
    }
    // It ends with the command that opens the same database.
    let last = out.lines().last().unwrap_or_default().trim();
    assert!(last.ends_with(&format!("shell --db {db}")), "{last}");
    let o = sql(db, "csv", "SELECT count(*) FROM users");
    assert_eq!(stdout(&o), "count(*)\n300\n");
    // A rerun replaces its own directory; another directory is left alone.
    assert!(
        profiledb(&["demo", "--db", db, "--users", "20", "--days", "2"])
            .status
            .success()
    );
    let other = dir.path().join("mine");
    std::fs::create_dir(&other).expect("mkdir");
    let o = profiledb(&["demo", "--db", other.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not a demo database"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn statements_before_a_lexing_error_run_and_the_error_points_into_the_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    let o = with_stdin(
        &["shell", "--db", db, "--format", "csv"],
        "SHOW FEATURES;\nSELECT 'open\nmore",
    );
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "name,definition\n");
    assert_eq!(
        stderr(&o),
        "error: syntax error: unterminated string (line 2, column 8)\n  SELECT 'open\n         ^^^^^\n"
    );
}

#[test]
fn the_shell_runs_vacuum() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let o = profiledb(&[
        "shell",
        "--db",
        db,
        "-c",
        "DELETE USER 'u2'",
        "-c",
        "VACUUM",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "DELETE 1\nVACUUM\n");
}

#[test]
fn the_shell_refuses_a_very_deep_statement_without_crashing() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    let chain = vec!["1"; 100_000].join("+");
    let o = with_stdin(
        &["shell", "--db", db],
        &format!("SELECT {chain} AS x FROM users;\n"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("expression too deep"), "{}", stderr(&o));
}

#[test]
fn import_and_insert_skip_events_whose_id_was_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let db = db.to_str().expect("utf-8");
    let o = sql(
        db,
        "csv",
        "ALTER DATABASE SET HISTORY '30d'; CREATE FEATURE purchases ON purchase AS COUNT()",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Yesterday: inside the history's horizon, where ids are remembered.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
        - 86_400_000;
    let csv = dir.path().join("orders.csv");
    std::fs::write(
        &csv,
        format!(
            "user,type,ts,event_id\n\
             u1,purchase,{t},o-1\n\
             u1,purchase,{},o-2\n\
             u1,purchase,{},o-1\n",
            t + 1,
            t + 2
        ),
    )
    .expect("write");
    let path = csv.to_str().expect("utf-8");
    let o = profiledb(&["import", "--db", db, path]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("imported 2 events, rejected 0 lines, skipped 1 duplicate events"),
        "{}",
        stdout(&o)
    );
    // Imported again, as a queue delivering twice would: nothing new.
    let o = profiledb(&["import", "--db", db, path]);
    assert!(
        stdout(&o).contains("imported 0 events, rejected 0 lines, skipped 3 duplicate events"),
        "{}",
        stdout(&o)
    );
    let o = sql(
        db,
        "csv",
        &format!(
            "INSERT INTO purchase (user, ts, event_id) VALUES ('u1', {}, 'o-2'), ('u1', {}, 'o-3')",
            t + 3,
            t + 4
        ),
    );
    // A summary goes to stderr, beside csv output.
    assert!(
        stderr(&o).contains("INSERT 1 (1 duplicate skipped)"),
        "{}",
        stderr(&o)
    );
    let o = sql(db, "csv", "SELECT purchases FROM users WHERE id = 'u1'");
    assert!(stdout(&o).contains('3'), "{}", stdout(&o));
}

#[test]
fn export_reads_each_pair_as_of_its_own_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let db = db.to_str().expect("utf-8");
    // Days inside the history's horizon: d(n) is the start of day n of the
    // last ten.
    let day = 86_400_000i64;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
        / day
        * day;
    let d = |n: i64| today - (10 - n) * day;
    let iso = |n: i64| profiledb::format_timestamp(d(n));
    let o = sql(
        db,
        "csv",
        &format!(
            "ALTER DATABASE SET HISTORY '30d';
             CREATE FEATURE purchases ON purchase AS COUNT();
             CREATE FEATURE spend ON purchase AS SUM(amount);
             INSERT INTO purchase (user, ts, amount) VALUES
               ('u1', {}, 5.0), ('u1', {}, 10.0), ('o''k', {}, 1.5)",
            d(3),
            d(1),
            d(2)
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let pairs = dir.path().join("pairs.csv");
    std::fs::write(
        &pairs,
        format!(
            "user,ts,label\n\
             u1,{},1\n\
             u1,{},0\n\
             o'k,{},1\n\
             u1,{},0\n",
            iso(2),
            d(4),
            iso(2),
            iso(0)
        ),
    )
    .expect("write");
    let at = pairs.to_str().expect("utf-8");
    let o = profiledb(&[
        "export",
        "--db",
        db,
        "--at",
        at,
        "--select",
        "purchases, spend",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // By day 2 one purchase, by day 4 both; before the first, u1 does not exist.
    assert_eq!(
        stdout(&o),
        format!(
            "user,ts,label,purchases,spend\n\
             u1,{},1,1,10.0\n\
             u1,{},0,2,15.0\n\
             o'k,{},1,1,1.5\n\
             u1,{},0,,\n",
            iso(2),
            d(4),
            iso(2),
            iso(0)
        )
    );
    let out = dir.path().join("out.jsonl");
    let o = profiledb(&[
        "export",
        "--db",
        db,
        "--at",
        at,
        "--select",
        "spend",
        "--format",
        "jsonl",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("written");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(
        first,
        serde_json::json!({"user": "u1", "ts": iso(2), "label": "1", "spend": 10.0})
    );
    // Bad inputs say what and where, and write nothing.
    std::fs::write(&pairs, "user,time\nu1,1\n").expect("write");
    let o = profiledb(&["export", "--db", db, "--at", at, "--select", "spend"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no 'ts' column"), "{}", stderr(&o));
    std::fs::write(&pairs, "user,ts\nu1,yesterday\n").expect("write");
    let o = profiledb(&["export", "--db", db, "--at", at, "--select", "spend"]);
    assert!(
        stderr(&o).contains("line 2") && stderr(&o).contains("yesterday"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&pairs, "user,ts\nu1,1\n").expect("write");
    let o = profiledb(&["export", "--db", db, "--at", at, "--select", "spnd"]);
    assert!(stderr(&o).contains("spnd"), "{}", stderr(&o));
    let missing = dir.path().join("nothing-here");
    let o = profiledb(&[
        "export",
        "--db",
        missing.to_str().expect("utf-8"),
        "--at",
        at,
        "--select",
        "spend",
    ]);
    assert!(!o.status.success());
    assert!(!missing.exists());
}

/// `-e` echoes each statement before its output; a --db that names no
/// database makes one, and an unknown name there says so (not with
/// --create, not once it exists).
#[test]
fn echo_and_a_new_database_are_plain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("new.db");
    let db = db.to_str().expect("utf-8");
    let o = with_stdin(
        &["shell", "--db", db, "-e"],
        "CREATE FEATURE n ON e AS COUNT();\nSELECT 1 + 1 AS two;\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("CREATE FEATURE n ON e AS COUNT();"), "{out}");
    assert!(out.contains("SELECT 1 + 1 AS two;"), "{out}");
    assert!(!stderr(&o).contains("made a new"), "{}", stderr(&o));
    // A typo in --db: the unknown column comes with the note.
    let typo = dir.path().join("nwe.db");
    let o = with_stdin(
        &["shell", "--db", typo.to_str().expect("utf-8")],
        "SELECT n FROM users;\n",
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("unknown column") && err.contains("made a new, empty one"),
        "{err}"
    );
    // The same in the database that has it: no note.
    let o = with_stdin(&["shell", "--db", db], "SELECT nn FROM users;\n");
    assert!(!stderr(&o).contains("made a new"), "{}", stderr(&o));
    let quiet = dir.path().join("quiet.db");
    let o = with_stdin(
        &["shell", "--db", quiet.to_str().expect("utf-8"), "--create"],
        "SELECT n FROM users;\n",
    );
    assert!(!stderr(&o).contains("made a new"), "{}", stderr(&o));
}

/// Import reads CRLF CSV with the right line numbers, gzip files and gzip
/// on stdin, renames fields with --map, and refuses epoch seconds with a
/// hint unless --ts-unit s reads them as seconds.
#[test]
fn import_reads_crlf_gzip_mapped_files_and_refuses_seconds() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let db = dir.path().to_str().expect("utf-8");
    // CRLF, with a bad row on line 3: reported as line 3.
    let crlf = dir.path().join("crlf.csv");
    std::fs::write(
        &crlf,
        "user,type,ts,amount\r\nu5,purchase,1761991200000,1\r\nu5,purchase,1761991200000,lots\r\n",
    )
    .expect("write");
    let o = profiledb(&["import", "--db", db, crlf.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("crlf.csv:3:"), "{}", stderr(&o));
    // Mapped names, gzip-compressed, in seconds.
    let gz = dir.path().join("mapped.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(
        b"{\"userId\":\"u6\",\"event\":\"purchase\",\"timestamp\":1761991200,\"amount\":3}\n\
          {\"userId\":\"u6\",\"event\":\"purchase\",\"timestamp\":1761991260,\"amount\":4}\n",
    )
    .expect("compress");
    std::fs::write(&gz, enc.finish().expect("compress")).expect("write");
    let mapped = [
        "--map",
        "userId=user",
        "--map",
        "event=type",
        "--map",
        "timestamp=ts",
    ];
    let mut args = vec!["import", "--db", db];
    args.extend(mapped);
    args.push(gz.to_str().expect("utf-8"));
    let o = profiledb(&args);
    assert!(!o.status.success(), "seconds are refused without --ts-unit");
    let err = stderr(&o);
    assert!(
        err.contains("looks like epoch seconds") && err.contains("--ts-unit s"),
        "{err}"
    );
    let o = sql(
        db,
        "csv",
        "CREATE FEATURE last_buy ON purchase AS LAST_SEEN()",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    args.extend(["--ts-unit", "s"]);
    let o = profiledb(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("imported 2 events"), "{}", stdout(&o));
    // Seconds read as seconds: the latest purchase at 1761991260 s.
    let o = sql(
        db,
        "csv",
        "SELECT id, spend, last_buy FROM users WHERE id = 'u6'",
    );
    assert_eq!(
        stdout(&o),
        "id,spend,last_buy\nu6,7.0,1761991260000\n",
        "{}",
        stderr(&o)
    );
    // Gzip on stdin.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"{\"user\":\"u7\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":5}\n")
        .expect("compress");
    let bytes = enc.finish().expect("compress");
    let mut child = Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(["import", "--db", db, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("stdin takes the input");
    let o = child.wait_with_output().expect("exits");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("imported 1 events"), "{}", stdout(&o));
    // A bad --map.
    let o = profiledb(&["import", "--db", db, "--map", "nonsense", "-"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("from=to"), "{}", stderr(&o));
}
