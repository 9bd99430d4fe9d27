//! Shared by the server tests: a real server started on a free port, and an
//! HTTP client for it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "serve",
            "--db",
            dir.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Server::spawn(&args)
    }

    /// Runs the binary with `args`, which print the bound address first
    /// (`serve`, `router`).
    pub fn spawn(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_profiledb"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr_for(args))
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
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(ok.success());
        self.child.wait().expect("the server exits")
    }
}

/// Where a started binary's log goes: nowhere, or, when
/// `PROFILEDB_TEST_LOGS` names a folder, a file of its own there (its
/// first line the arguments), to read after a failure.
fn stderr_for(args: &[&str]) -> Stdio {
    let Some(dir) = std::env::var_os("PROFILEDB_TEST_LOGS") else {
        return Stdio::null();
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = Path::new(&dir).join(format!("{nanos}-{}.log", args.first().unwrap_or(&"")));
    let mut file = std::fs::File::create(&path).expect("the log file can be made");
    std::io::Write::write_all(&mut file, format!("{args:?}\n").as_bytes()).expect("written");
    Stdio::from(file)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends a request; returns the status and the body as JSON (or as a string).
pub fn call(
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

/// `POST`s `body` as JSON to `path` of `s`, without a token.
pub fn post_json(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    call(
        "POST",
        &format!("{}{path}", s.url),
        None,
        Some(("application/json", body.to_string())),
    )
}

pub fn query(s: &Server, token: Option<&str>, sql: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("{}/v1/query", s.url),
        token,
        Some(("application/json", json!({ "sql": sql }).to_string())),
    )
}

pub fn events(s: &Server, token: Option<&str>, body: String, ctype: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("{}/v1/events", s.url),
        token,
        Some((ctype, body)),
    )
}

pub const SCHEMA: &str = "CREATE ATTRIBUTE region STRING ON signup; \
    CREATE FEATURE purchases ON purchase AS COUNT(); \
    CREATE FEATURE spend ON purchase AS SUM(amount); \
    CREATE VECTOR taste ON view AS EWMA(v) DIM 2 HALF_LIFE '7d'";

pub fn count_users(s: &Server, token: Option<&str>) -> i64 {
    let (status, body) = query(s, token, "SELECT count(*) AS n FROM users");
    assert_eq!(status, 200, "{body}");
    body["rows"][0][0].as_i64().expect("a count")
}

pub fn shell(target: &[&str], args: &[&str]) -> (bool, String, String) {
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

/// The files under `dir` whose bytes contain `needle`.
pub fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            // A file RocksDB deleted since the listing holds nothing.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Kills the server with SIGKILL and waits for it: no flush, no snapshot.
pub fn kill_9(mut s: Server) {
    let _ = s.child.kill();
    let _ = s.child.wait();
}

/// The value of the Prometheus figure `name` on the server's `/metrics`.
pub fn metric(s: &Server, token: Option<&str>, name: &str) -> u64 {
    metric_if_any(s, token, name).unwrap_or_else(|| panic!("no figure {name} in /metrics"))
}

/// The figure `name` of `/metrics`, `None` while the server shows none.
pub fn metric_if_any(s: &Server, token: Option<&str>, name: &str) -> Option<u64> {
    let (status, body) = call("GET", &format!("{}/metrics", s.url), token, None);
    assert_eq!(status, 200, "{body}");
    body.as_str()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        })
        .and_then(|n| n.parse().ok())
}
