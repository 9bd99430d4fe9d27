//! The shell over a server prints what it prints on a directory.

mod support;

use support::{SCHEMA, Server, shell};

#[test]
fn the_shell_prints_the_same_over_a_server_as_on_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().to_str().expect("utf-8");
    let s = Server::start(dir.path(), &["--token", "t0k"]);
    let url = s.url.clone();
    let remote = ["--connect", url.as_str(), "--token", "t0k"];
    let (ok, _, err) = shell(
        &remote,
        &[
            "-c",
            SCHEMA,
            "-c",
            "INSERT INTO purchase (user, ts, amount) VALUES ('u1', 0, 2.5), ('u2', 0, 1.0), ('u2', 1, 1e-7)",
            "-c",
            "INSERT INTO view (user, ts, v) VALUES ('u1', 0, [0.1, 0.2])",
        ],
    );
    assert!(ok, "{err}");
    let script = "SELECT id, purchases, spend, taste, region FROM users ORDER BY id;\n\
                  SELECT count(*), sum(spend) FROM users;\n\
                  SELECT id,\n  spnd FROM users;";
    let file = dir.path().join("q.sql");
    std::fs::write(&file, script).expect("write");
    let file = file.to_str().expect("utf-8").to_owned();
    let runs = |target: &[&str]| -> Vec<(bool, String, String)> {
        ["table", "csv", "json"]
            .iter()
            .map(|f| shell(target, &["--format", f, "-f", &file]))
            .chain([
                shell(target, &["-c", "\\d"]),
                shell(target, &["-c", "DESCRIBE spend"]),
            ])
            .collect()
    };
    let over_http = runs(&remote);
    assert!(s.terminate().success());
    let local = runs(&["--db", db]);
    assert_eq!(over_http, local);
    // The runs did what they say: rows, then the error with its caret.
    let (ok, out, err) = &local[1];
    assert!(!ok);
    assert_eq!(
        out,
        "id,purchases,spend,taste,region\nu1,1,2.5,\"[0.1,0.2]\",\nu2,2,1.0000001,,\n\
         count(*),sum(spend)\n2,3.5000001000000003\n"
    );
    assert!(
        err.contains("(line 4, column 3)\n    spnd FROM users;\n    ^^^^"),
        "{err}"
    );
    let (ok, out, _) = &local[3];
    assert!(
        *ok && out.contains("spend") && out.contains("taste"),
        "{out}"
    );
}

#[test]
fn the_shell_says_when_it_cannot_reach_a_server_or_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &["--token", "right"]);
    let (ok, _, err) = shell(
        &["--connect", s.url.as_str(), "--token", "wrong"],
        &["-c", "SHOW FEATURES"],
    );
    assert!(!ok);
    assert!(err.contains("bearer token"), "{err}");
    // HOST:PORT alone is a URL too.
    let (ok, out, err) = shell(
        &[
            "--connect",
            s.url.trim_start_matches("http://"),
            "--token",
            "right",
        ],
        &["-c", "SHOW FEATURES"],
    );
    assert!(ok, "{err}");
    assert!(out.ends_with("(0 rows)\n"), "{out}");
    drop(s);
    let (ok, _, err) = shell(
        &["--connect", "http://127.0.0.1:9"],
        &["-c", "SHOW FEATURES"],
    );
    assert!(!ok);
    assert!(err.contains("cannot reach the server"), "{err}");
}
