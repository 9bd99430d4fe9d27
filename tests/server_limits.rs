//! The server's limits (body size, result rows, statement time) and junk input.

mod support;

use serde_json::{Value, json};
use support::{SCHEMA, Server, call, count_users, events, query};

#[test]
fn limits_answer_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(
        dir.path(),
        &[
            "--max-body",
            "4096",
            "--max-rows",
            "5",
            "--statement-timeout",
            "1ms",
        ],
    );
    assert_eq!(query(&s, None, SCHEMA).0, 200);
    let big: Vec<Value> = (0..200)
        .map(|i| json!({"user": format!("u{i}"), "type": "purchase", "ts": 0, "amount": 1.0}))
        .collect();
    let (status, _) = events(&s, None, Value::Array(big).to_string(), "application/json");
    assert_eq!(status, 413);
    assert_eq!(count_users(&s, None), 0);

    // Enough users that a full scan outlasts 1 ms; bodies under the cap.
    for chunk in 0..400 {
        let batch: Vec<Value> = (0..40)
            .map(|i| json!({"user": format!("u{chunk}-{i}"), "type": "purchase", "ts": 0, "amount": 1.0}))
            .collect();
        let body = Value::Array(batch).to_string();
        assert!(body.len() < 4096);
        assert_eq!(events(&s, None, body, "application/json").0, 200);
    }
    // A scan right after writes may outlast 1 ms catching the row table up
    // (a debug build applies merges slowly); the catch-up stays done.
    let mut answer = query(&s, None, "SELECT id FROM users LIMIT 5");
    for _ in 0..50 {
        if answer.1["error"]["code"] != "statement_timeout" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        answer = query(&s, None, "SELECT id FROM users LIMIT 5");
    }
    let (status, body) = answer;
    assert_eq!(status, 200, "{body}");
    let (status, body) = query(&s, None, "SELECT id FROM users WHERE id < 'u1-' LIMIT 6");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than 5 rows")),
        "{body}"
    );
    let (status, body) = query(
        &s,
        None,
        "SELECT sum(spend + purchases * 2) FROM users WHERE id != 'x' AND spend >= 0",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("timeout")),
        "{body}"
    );
    // The server still answers.
    assert_eq!(
        call("GET", &format!("{}/healthz", s.url), None, None).0,
        200
    );
}

#[test]
fn garbage_never_stops_the_server_answering() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(query(&s, None, SCHEMA).0, 200);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..200 {
        let len = (next() % 600) as usize;
        let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 {
            // Raw bytes on the socket, not even HTTP.
            let mut c = std::net::TcpStream::connect(&addr).expect("connect");
            let _ = c.write_all(&junk);
            let _ = c.shutdown(std::net::Shutdown::Write);
            let _ = c.read_to_end(&mut Vec::new());
        } else {
            // Well-formed HTTP with junk bodies, to every endpoint.
            let text = String::from_utf8_lossy(&junk).into_owned();
            for path in ["/v1/events", "/v1/query"] {
                let (status, _) = call(
                    "POST",
                    &format!("{}{path}", s.url),
                    None,
                    Some(("application/json", text.clone())),
                );
                assert_eq!(status, 400, "{path} with {text:?}");
            }
            let sql = json!({ "sql": text }).to_string();
            let (status, body) = call(
                "POST",
                &format!("{}/v1/query", s.url),
                None,
                Some(("application/json", sql)),
            );
            assert_eq!(status, 400, "{body} for {text:?}");
        }
    }
    assert_eq!(
        call("GET", &format!("{}/healthz", s.url), None, None).0,
        200
    );
    assert_eq!(count_users(&s, None), 0);
}

/// The block cache and the row table are sized by flags. 40,000 users
/// written and flushed (by a clean stop) take a few MB of tables; a server
/// with a 1 MiB block cache and no row table reads every profile and scans
/// from RocksDB with its cache held to that size, where one with the
/// default cache keeps more of them; a size that is not a number of bytes
/// is refused before the server starts.
#[test]
fn cache_sizes_are_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(query(&s, None, SCHEMA).0, 200);
    for chunk in 0..40 {
        let batch: Vec<Value> = (0..1_000)
            .map(|i| json!({"user": format!("u{chunk:02}-{i:04}"), "type": "purchase", "ts": 1_000 + i, "amount": f64::from(i)}))
            .collect();
        let (status, body) = events(
            &s,
            None,
            Value::Array(batch).to_string(),
            "application/json",
        );
        assert_eq!(status, 200, "{body}");
    }
    assert!(s.terminate().success());

    let read_all = |s: &Server| {
        for chunk in 0..40 {
            let ids: Vec<String> = (0..1_000).map(|i| format!("u{chunk:02}-{i:04}")).collect();
            let (status, body) = support::post_json(s, "/v1/profiles", &json!({ "ids": ids }));
            assert_eq!(status, 200, "{body}");
            let last = &body["profiles"][999];
            assert_eq!(last["features"]["purchases"], 1, "{last}");
        }
        assert_eq!(count_users(s, None), 40_000);
        support::metric(s, None, "profiledb_block_cache_bytes")
    };
    let small = Server::start(
        dir.path(),
        &["--block-cache-bytes", "1048576", "--row-table-bytes", "0"],
    );
    let held = read_all(&small);
    assert!(small.terminate().success());
    assert!(
        held <= (1 << 20) + (1 << 16),
        "a 1 MiB cache holds {held} bytes"
    );
    let default = Server::start(dir.path(), &[]);
    let held_by_default = read_all(&default);
    assert!(default.terminate().success());
    assert!(
        held_by_default > 2 << 20,
        "the default cache holds {held_by_default} bytes"
    );

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(["serve", "--db", dir.path().to_str().expect("utf-8")])
        .args(["--listen", "127.0.0.1:0", "--block-cache-bytes", "1GiB"])
        .output()
        .expect("the program runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("'1GiB'") && stderr.contains("--block-cache-bytes"),
        "{stderr}"
    );
}
