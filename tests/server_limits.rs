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
