//! The corpus in `tests/corpus/`: bad statements, event bodies, raw HTTP requests
//! and import files. Each is answered by a clear error, writes nothing (the
//! database's last sequence number does not move), and leaves the server alive.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::*;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// The cases of a corpus file: every line that is not blank or a `#` comment.
fn lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(corpus(name))
        .expect("the corpus file")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A line holding a JSON string, decoded.
fn json_string(line: &str) -> String {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

// The events are a year old: a horizon that keeps them, so that no fold of
// the history writes while the test counts writes.
const SETUP: &str = "ALTER DATABASE SET HISTORY '36500d';
    CREATE FEATURE n ON hit AS COUNT();
    CREATE FEATURE total ON hit AS SUM(x);
    CREATE WINDOW hits ON hit BUCKET '1h' RETAIN '36500d';
    CREATE ATTRIBUTE region STRING ON hit;
    CREATE VECTOR taste ON view AS EWMA(v) DIM 2 HALF_LIFE '7d';
    INSERT INTO hit (user, ts, x, region) VALUES ('u1', 1761955200000, 1.5, 'north'), ('u2', 1761955200001, 2.5, 'south');
    INSERT INTO view (user, ts, v) VALUES ('u1', 1761955200000, [1, 0]), ('u2', 1761955200000, [0, 1]), ('u3', 1761955200000, [1, 1])";

fn last_sequence(s: &Server) -> u64 {
    metric(s, None, "profiledb_last_sequence")
}

fn alive(s: &Server) {
    let (status, _) = call("GET", &format!("{}/healthz", s.url), None, None);
    assert_eq!(status, 200, "the server is alive");
}

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(
        dir.path(),
        &["--body-timeout", "1s", "--idle-timeout", "2s"],
    );
    let (status, body) = query(&s, None, SETUP);
    assert_eq!(status, 200, "{body}");
    (dir, s)
}

/// The error message of a JSON error answer.
fn message(body: &serde_json::Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn bad_statements_answer_400_and_write_nothing() {
    let (_dir, s) = start();
    let cases = lines("statements.sql");
    assert!(cases.len() >= 80, "{}", cases.len());
    let before = last_sequence(&s);
    for sql in &cases {
        let (status, body) = query(&s, None, sql);
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(!message(&body).is_empty(), "{sql}: {body}");
        assert!(body["error"]["line"].is_u64(), "{sql}: {body}");
        assert_eq!(last_sequence(&s), before, "{sql} wrote something");
    }
    alive(&s);
}

#[test]
fn bad_event_bodies_answer_400_and_write_nothing() {
    let (_dir, s) = start();
    let cases = lines("events.txt");
    assert!(cases.len() >= 40, "{}", cases.len());
    let before = last_sequence(&s);
    for line in &cases {
        let body = json_string(line);
        for ctype in ["application/json", "application/x-ndjson"] {
            let (status, answer) = events(&s, None, body.clone(), ctype);
            assert_eq!(status, 400, "{line} as {ctype}: {answer}");
            assert!(!message(&answer).is_empty(), "{line}: {answer}");
            assert_eq!(last_sequence(&s), before, "{line} wrote something");
        }
    }
    alive(&s);
    let (status, body) = query(&s, None, "SELECT count(*) FROM users");
    assert_eq!((status, &body["rows"]), (200, &json!([[3]])));
}

/// Sends `bytes` on a fresh connection and returns the answer: one whole
/// response (its body as long as its Content-Length), or whatever came before
/// the server closed the connection or the read timed out.
fn raw(s: &Server, bytes: &[u8]) -> String {
    let addr = s.url.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).expect("a connection");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    // The server may close before taking every byte; that is an answer too.
    let _ = c.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|n| n.trim().parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                return text;
            }
        }
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return text,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn bad_http_requests_are_refused_and_write_nothing() {
    let (_dir, s) = start();
    let cases = lines("requests.txt");
    assert!(cases.len() >= 25, "{}", cases.len());
    let before = last_sequence(&s);
    for line in &cases {
        // Each character of the string is one byte, so any bytes can be sent.
        let bytes: Vec<u8> = json_string(line)
            .chars()
            .map(|c| u8::try_from(u32::from(c)).expect("a byte per character"))
            .collect();
        let answer = raw(&s, &bytes);
        if let Some(status) = answer.strip_prefix("HTTP/1.1 ") {
            let code: u16 = status[..3].parse().expect("a status code");
            assert!((400..500).contains(&code), "{line}: {answer}");
            // Our answers are JSON; only the HTTP parser's own, for bytes that
            // are not a request at all, has no body.
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            assert!(
                body.is_empty() || body.starts_with("{\"error\":{\"message\":"),
                "{line}: {answer}"
            );
        } else {
            assert!(answer.is_empty(), "{line}: {answer}");
        }
        assert_eq!(last_sequence(&s), before, "{line} wrote something");
        alive(&s);
    }
}

fn shell_csv(db: &str, sql: &str) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(["shell", "--db", db, "--format", "csv", "-c", sql])
        .output()
        .expect("the shell runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bad_import_files_are_refused_whole() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().to_str().expect("utf-8");
    shell_csv(db, SETUP);
    let digest = "SELECT count(*), sum(n), sum(total) FROM users";
    let before = shell_csv(db, digest);
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus("import"))
        .expect("the import corpus")
        .map(|e| e.expect("an entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in &files {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_profiledb"))
            .args(["import", "--db", db])
            .arg(f)
            .output()
            .expect("import runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{}: {err}", f.display());
        assert!(
            err.contains(&f.display().to_string()),
            "{}: {err}",
            f.display()
        );
        assert_eq!(
            shell_csv(db, digest),
            before,
            "{} wrote something",
            f.display()
        );
    }
}
