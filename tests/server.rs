//! The real server, started on a free port and driven over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_profiledb"))
            .args([
                "serve",
                "--db",
                dir.to_str().expect("utf-8"),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("the server prints its address");
        let addr: std::net::SocketAddr = line
            .trim()
            .parse()
            .expect("the first line is the bound address");
        assert!(addr.ip().is_loopback());
        Server {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(ok.success());
        self.child.wait().expect("the server exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends a request; returns the status and the body as JSON (or as a string).
fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> (u16, Value) {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = a.delete(url);
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.call()
        }
        (_, Some((ctype, body))) => {
            let mut r = a.post(url).header("Content-Type", ctype);
            if let Some(h) = &auth {
                r = r.header("Authorization", h);
            }
            r.send(body.as_bytes())
        }
        other => panic!("unsupported request {other:?}"),
    };
    let mut resp = resp.expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn query(s: &Server, token: Option<&str>, sql: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("{}/v1/query", s.url),
        token,
        Some(("application/json", json!({ "sql": sql }).to_string())),
    )
}

fn events(s: &Server, token: Option<&str>, body: String, ctype: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("{}/v1/events", s.url),
        token,
        Some((ctype, body)),
    )
}

const SCHEMA: &str = "CREATE ATTRIBUTE region STRING ON signup; \
    CREATE FEATURE purchases ON purchase AS COUNT(); \
    CREATE FEATURE spend ON purchase AS SUM(amount); \
    CREATE VECTOR taste ON view AS EWMA(v) DIM 2 HALF_LIFE '7d'";

fn count_users(s: &Server, token: Option<&str>) -> i64 {
    let (status, body) = query(s, token, "SELECT count(*) AS n FROM users");
    assert_eq!(status, 200, "{body}");
    body["rows"][0][0].as_i64().expect("a count")
}

#[test]
fn ingest_query_profile_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(
        call("GET", &format!("{}/healthz", s.url), None, None).0,
        200
    );
    let (status, body) = query(&s, None, SCHEMA);
    assert_eq!(status, 200, "{body}");

    let batch = json!([
        {"user": "u1", "type": "purchase", "ts": 1761991200000i64, "amount": 35.0},
        {"user": "u1", "type": "signup", "ts": "2025-11-01T10:00:00Z", "region": "north", "extra": 1},
        {"user": "u2", "type": "purchase", "ts": 1761991200000i64, "amount": 5.5},
    ]);
    let (status, body) = events(&s, None, batch.to_string(), "application/json");
    assert_eq!((status, body), (200, json!({"accepted": 3})));
    let lines = "{\"user\":\"u2\",\"type\":\"view\",\"ts\":1761991200000,\"v\":[0.5,0.25]}\n\n\
                 {\"user\":\"u3\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":1}\n";
    let (status, body) = events(&s, None, lines.into(), "application/x-ndjson");
    assert_eq!((status, body), (200, json!({"accepted": 2})));

    let (status, body) = query(
        &s,
        None,
        "SELECT id, purchases, spend, taste, region FROM users ORDER BY id",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["columns"],
        json!(["id", "purchases", "spend", "taste", "region"])
    );
    assert_eq!(
        body["rows"],
        json!([
            ["u1", 1, 35.0, null, "north"],
            ["u2", 1, 5.5, [0.5, 0.25], null],
            ["u3", 1, 1.0, null, null],
        ])
    );

    let (status, p) = call(
        "GET",
        &format!("{}/v1/users/u1?as_of=2025-11-02T00:00:00Z", s.url),
        None,
        None,
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["user"], "u1");
    assert_eq!(p["events"], 2);
    assert_eq!(p["attributes"]["region"], "north");
    assert_eq!(p["features"]["spend"], 35.0);
    assert_eq!(p["vectors"]["taste"], Value::Null);
    assert_eq!(p["as_of"], "2025-11-02T00:00:00Z");

    let (status, body) = call("DELETE", &format!("{}/v1/users/u1", s.url), None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        call("GET", &format!("{}/v1/users/u1", s.url), None, None).0,
        404
    );
    assert_eq!(
        call("DELETE", &format!("{}/v1/users/u1", s.url), None, None).0,
        404
    );
    assert_eq!(count_users(&s, None), 2);

    let (status, metrics) = call("GET", &format!("{}/metrics", s.url), None, None);
    assert_eq!(status, 200);
    let text = metrics.as_str().expect("metrics are text");
    assert!(
        text.contains("profiledb_events_ingested_total 5\n"),
        "{text}"
    );
    assert!(
        text.contains("profiledb_query_duration_seconds_count "),
        "{text}"
    );
    assert!(text.contains("profiledb_memtable_bytes "), "{text}");
    assert!(text.contains("profiledb_index_pending "), "{text}");
}

#[test]
fn bad_requests_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(query(&s, None, SCHEMA).0, 200);

    let (status, body) = events(&s, None, "[{\"user\": \"u1\", ".into(), "application/json");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("JSON")),
        "{body}"
    );

    let batch = json!([
        {"user": "u1", "type": "purchase", "ts": 1761991200000i64, "amount": 35.0},
        {"user": "u2", "type": "purchase", "ts": 1761991200000i64, "amount": "much"},
    ]);
    let (status, body) = events(&s, None, batch.to_string(), "application/json");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["index"], 1);
    assert_eq!(body["error"]["field"], "amount");
    assert!(body["error"]["message"].is_string());

    let batch = json!([{"user": "u1", "type": "view", "ts": 0, "v": [1.0, 2.0, 3.0]}]);
    let (status, body) = events(&s, None, batch.to_string(), "application/json");
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("v")),
        "{body}"
    );
    assert_eq!(count_users(&s, None), 0);

    // Statement errors carry line and column.
    let (status, body) = query(&s, None, "SELECT id,\n  spnd FROM users");
    assert_eq!(status, 400);
    assert_eq!(
        (
            body["error"]["line"].as_u64(),
            body["error"]["column"].as_u64()
        ),
        (Some(2), Some(3)),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("did you mean 'spend'")),
        "{body}"
    );

    let (status, _) = call(
        "POST",
        &format!("{}/v1/query", s.url),
        None,
        Some(("application/json", "{\"sq\": 1}".into())),
    );
    assert_eq!(status, 400);

    // An error about no part in particular is placed at the statement's start.
    let (status, body) = query(&s, None, "DROP FEATURE spend; DROP FEATURE spend");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["line"].is_u64() && body["error"]["column"].is_u64(),
        "{body}"
    );
    // Keys beside `sql` are ignored.
    let (status, body) = call(
        "POST",
        &format!("{}/v1/query", s.url),
        None,
        Some((
            "application/json",
            json!({"sql": "SHOW FEATURES", "note": 1}).to_string(),
        )),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(1), "{body}");
}

#[test]
fn tokens_guard_every_endpoint_but_healthz() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(
        dir.path(),
        &["--token", "w-secret", "--read-token", "r-secret"],
    );
    let w = Some("w-secret");
    let r = Some("r-secret");
    assert_eq!(
        call("GET", &format!("{}/healthz", s.url), None, None).0,
        200
    );
    assert_eq!(query(&s, None, "SHOW FEATURES").0, 401);
    assert_eq!(query(&s, Some("wrong"), "SHOW FEATURES").0, 401);
    assert_eq!(
        call("GET", &format!("{}/metrics", s.url), None, None).0,
        401
    );
    assert_eq!(
        call("GET", &format!("{}/v1/users/u1", s.url), None, None).0,
        401
    );
    let one = json!([{"user": "u1", "type": "purchase", "ts": 0, "amount": 1.0}]).to_string();
    assert_eq!(events(&s, None, one.clone(), "application/json").0, 401);

    assert_eq!(query(&s, w, SCHEMA).0, 200);
    assert_eq!(events(&s, w, one.clone(), "application/json").0, 200);

    // The read token reads ...
    assert_eq!(count_users(&s, r), 1);
    assert_eq!(
        call("GET", &format!("{}/v1/users/u1", s.url), r, None).0,
        200
    );
    assert_eq!(query(&s, r, "EXPLAIN SELECT id FROM users").0, 200);
    // ... and may not write, define or delete.
    assert_eq!(events(&s, r, one, "application/json").0, 403);
    assert_eq!(
        query(
            &s,
            r,
            "INSERT INTO purchase (user, ts, amount) VALUES ('u9', 0, 1.0)"
        )
        .0,
        403
    );
    assert_eq!(
        query(
            &s,
            r,
            "SELECT 1 FROM users; CREATE FEATURE x ON e AS COUNT()"
        )
        .0,
        403
    );
    assert_eq!(query(&s, r, "DELETE USER 'u1'").0, 403);
    assert_eq!(
        call("DELETE", &format!("{}/v1/users/u1", s.url), r, None).0,
        403
    );
    assert_eq!(count_users(&s, w), 1);
}

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
    let (status, body) = query(&s, None, "SELECT id FROM users LIMIT 5");
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
fn sigterm_finishes_in_flight_requests_and_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    assert_eq!(query(&s, None, "CREATE FEATURE n ON hit AS COUNT()").0, 200);
    let acked = Arc::new(AtomicU64::new(0));
    let sent_ok = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (url, acked, sent_ok) = (s.url.clone(), acked.clone(), sent_ok.clone());
            std::thread::spawn(move || {
                for b in 0.. {
                    let batch: Vec<Value> = (0..100)
                        .map(|i| json!({"user": format!("w{w}-{}", i % 7), "type": "hit", "ts": b * 100 + i}))
                        .collect();
                    let resp = agent()
                        .post(&format!("{url}/v1/events"))
                        .header("Content-Type", "application/json")
                        .send(Value::Array(batch).to_string().as_bytes());
                    match resp {
                        Ok(r) if r.status() == 200 => {
                            acked.fetch_add(100, Ordering::SeqCst);
                            sent_ok.store(true, Ordering::SeqCst);
                        }
                        // Refused once the server stops accepting.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    while !sent_ok.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    for w in writers {
        w.join().expect("writer thread");
    }
    let acked = acked.load(Ordering::SeqCst);
    assert!(acked > 0);

    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(&s, None, "SELECT sum(n) FROM users");
    assert_eq!(status, 200, "{body}");
    let stored = body["rows"][0][0].as_i64().expect("a sum");
    // Every acknowledged event is there; a batch whose answer was lost in the
    // shutdown may be there too.
    assert!(
        stored as u64 >= acked,
        "stored {stored} < acknowledged {acked}"
    );
    assert!(
        stored as u64 <= acked + 4 * 100,
        "stored {stored}, acknowledged {acked}"
    );
}

fn shell(target: &[&str], args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .arg("shell")
        .args(target)
        .args(args)
        .output()
        .expect("the shell runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

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
