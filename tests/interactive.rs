//! The interactive shell, driven through a pseudo-terminal.

use std::process::Command;

use rexpect::session::spawn_command;

#[test]
fn interactive_shell_runs_multi_line_statements_and_backslash_commands()
-> Result<(), rexpect::error::Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_profiledb"));
    cmd.args(["shell", "--db", dir.path().to_str().expect("utf-8")])
        .env("HOME", home.path())
        .env("TERM", "dumb");
    let mut p = spawn_command(cmd, Some(30_000))?;
    p.exp_string("profiledb> ")?;
    p.send_line("CREATE FEATURE n ON e AS COUNT();")?;
    p.exp_string("CREATE FEATURE")?;
    // A statement over two lines runs once it ends with ';'.
    p.send_line("INSERT INTO e (user, ts)")?;
    p.exp_string("...> ")?;
    p.send_line("VALUES ('a', 0), ('b', 1);")?;
    p.exp_string("INSERT 2")?;
    p.send_line("SELECT id, n FROM users ORDER BY id;")?;
    p.exp_string("(2 rows)")?;
    // An error draws a caret and the shell goes on.
    p.send_line("SELECT nn FROM users;")?;
    p.exp_string("unknown")?;
    p.exp_string("^^")?;
    p.send_line("\\d")?;
    p.exp_string("feature")?;
    p.send_line("\\timing")?;
    p.exp_string("Timing is on.")?;
    p.send_line("SELECT count(*) FROM users;")?;
    p.exp_string("Time: ")?;
    p.send_line("\\timing off")?;
    p.exp_string("Timing is off.")?;
    // Parameters bind the next statement: a hostile id is a value.
    p.send_line("\\bind [\"x' OR id != '\"]")?;
    p.send_line("SELECT count(*) AS hostile FROM users WHERE id = $1;")?;
    p.exp_string("hostile")?;
    p.exp_string("0")?;
    p.send_line("\\bind [\"b\"]")?;
    p.send_line("SELECT id AS bound FROM users WHERE id = $1;")?;
    p.exp_string("bound")?;
    p.exp_string("(1 row)")?;
    // Used, they are gone.
    p.send_line("SELECT id FROM users WHERE id = $1;")?;
    p.exp_string("there is no parameter $1")?;
    p.send_line("\\bind [1, ")?;
    p.exp_string("JSON array")?;
    // Expanded display, a record at a time.
    p.send_line("\\x")?;
    p.exp_string("Expanded display is on.")?;
    p.send_line("SELECT id, n FROM users WHERE id = 'a';")?;
    p.exp_string("-[ RECORD 1 ]-")?;
    p.exp_string("id | a")?;
    p.send_line("\\x off")?;
    p.exp_string("Expanded display is off.")?;
    // A backslash command runs mid-statement: `\q` after a missing ';'
    // quits.
    p.send_line("SELECT id FROM users")?;
    p.exp_string("...> ")?;
    p.send_line("\\q")?;
    p.exp_eof()?;
    let history =
        std::fs::read_to_string(home.path().join(".profiledb_history")).expect("history is saved");
    assert!(
        history.contains("SELECT id, n FROM users ORDER BY id;"),
        "{history}"
    );
    Ok(())
}

/// Tab completes keywords (in the case typed), the schema's names, and
/// backslash commands.
#[test]
fn tab_completes_keywords_and_names() -> Result<(), rexpect::error::Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_profiledb"));
    cmd.args(["shell", "--db", dir.path().to_str().expect("utf-8")])
        .env("HOME", home.path())
        .env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(30_000))?;
    p.exp_string("profiledb> ")?;
    p.send_line("CREATE FEATURE lifetime_spend ON purchase AS SUM(amount);")?;
    p.exp_string("CREATE FEATURE")?;
    // Each line is typed once the prompt is back. "CREATE FEATURE" also
    // matches the editor's echo of the line typed, and a line sent while
    // the editor still reads the one before can be lost (seen once in CI).
    p.exp_string("profiledb> ")?;
    p.send_line("INSERT INTO purchase (user, ts, amount) VALUES ('a', 1, 40.5);")?;
    p.exp_string("INSERT 1")?;
    p.exp_string("profiledb> ")?;
    // `SEL<tab>` is SELECT; `lifet<tab>` the feature; `FR<tab>` FROM.
    p.send("SEL\t")?;
    p.send(" 1 + lifet\t")?;
    p.send(" + 0.5 AS answer FR\t")?;
    p.send_line(" users;")?;
    p.exp_string("42.0")?;
    p.exp_string("profiledb> ")?;
    // Lower case stays lower case.
    p.send("sel\t")?;
    p.send_line(" 6 * 7 AS product;")?;
    p.exp_string("42")?;
    p.exp_string("profiledb> ")?;
    p.send("\\tim\t")?;
    p.send_line("")?;
    p.exp_string("Timing is on.")?;
    p.send_line("\\q")?;
    p.exp_eof()?;
    Ok(())
}

/// Ctrl-C cancels a statement running in the shell's own process, and the
/// shell goes on.
#[test]
fn ctrl_c_cancels_a_running_statement() -> Result<(), rexpect::error::Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let db = db.to_str().expect("utf-8");
    // Enough users and dimensions that a clustering into many groups runs
    // for seconds.
    let mut events = String::new();
    let mut x = 7u64;
    for u in 0..10_000 {
        let v: Vec<String> = (0..32)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                format!("{:.3}", (x >> 40) as f64 / (1u64 << 24) as f64)
            })
            .collect();
        events.push_str(&format!(
            "{{\"user\":\"u{u}\",\"type\":\"view\",\"ts\":1761991200000,\"v\":[{}]}}\n",
            v.join(",")
        ));
    }
    let file = dir.path().join("views.jsonl");
    std::fs::write(&file, events).expect("write");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_profiledb"))
            .args(args)
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "shell",
        "--db",
        db,
        "--create",
        "-c",
        "CREATE VECTOR taste ON view AS EWMA(v) DIM 32 HALF_LIFE '7d'",
    ]);
    run(&["import", "--db", db, file.to_str().expect("utf-8")]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_profiledb"));
    cmd.args(["shell", "--db", db])
        .env("HOME", home.path())
        .env("TERM", "dumb");
    let mut p = spawn_command(cmd, Some(60_000))?;
    p.exp_string("profiledb> ")?;
    p.send_line("CLUSTER users BY taste INTO 2000;")?;
    std::thread::sleep(std::time::Duration::from_millis(700));
    p.send_control('c')?;
    p.exp_string("cancelled")?;
    p.send_line("SELECT count(*) AS alive FROM users;")?;
    p.exp_string("10000")?;
    p.send_line("\\q")?;
    p.exp_eof()?;
    Ok(())
}
