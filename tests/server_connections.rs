//! Slow, idle and surplus connections cannot take the server from anyone else:
//! it keeps answering `/healthz` and authenticated requests while thousands of
//! clients hang on, closes idle and slow-header connections after
//! `--idle-timeout`, answers a stalled body 408 after `--body-timeout`, and
//! closes connections past `--max-connections` as they arrive.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

const TOKEN: &str = "conn-test-token";

fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_owned()
}

/// Whether the server closes `c` within `within`: a read that ends (EOF or a
/// reset) rather than timing out.
fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a read timeout");
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Whether `/healthz` answers 200 (a refused or closed connection is a no).
fn healthz_ok(s: &Server) -> bool {
    agent()
        .get(format!("{}/healthz", s.url))
        .call()
        .is_ok_and(|r| r.status().as_u16() == 200)
}

#[test]
fn thousands_of_idle_and_slow_clients_do_not_starve_the_others() {
    // The test holds thousands of sockets itself.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(dir.path(), &["--token", TOKEN]);
    let mut hanging = Vec::new();
    for i in 0..2_500 {
        let mut c = TcpStream::connect(addr(&s)).expect("a connection");
        if i % 2 == 0 {
            // Slow headers: a start that never finishes.
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .expect("a partial header");
        }
        hanging.push(c);
    }
    assert!(healthz_ok(&s));
    let (status, body) = query(&s, Some(TOKEN), SCHEMA);
    assert_eq!(status, 200, "{body}");
    assert_eq!(count_users(&s, Some(TOKEN)), 0);
    let open = metric(&s, Some(TOKEN), "profiledb_connections_open");
    assert!(open >= 2_500, "{open}");
    drop(hanging);
    assert!(healthz_ok(&s));
}

#[test]
fn idle_and_slow_header_connections_are_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(dir.path(), &["--idle-timeout", "500ms"]);
    let mut idle = TcpStream::connect(addr(&s)).expect("a connection");
    let mut slow = TcpStream::connect(addr(&s)).expect("a connection");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .expect("a partial header");
    // A keep-alive connection that was served once, then went quiet.
    let mut kept = TcpStream::connect(addr(&s)).expect("a connection");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("a request");
    let mut first = [0u8; 17];
    kept.read_exact(&mut first).expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200 OK\r\n");
    for (what, c) in [
        ("idle", &mut idle),
        ("slow", &mut slow),
        ("kept", &mut kept),
    ] {
        assert!(
            closed_within(c, Duration::from_secs(20)),
            "the {what} connection is still open"
        );
    }
    assert!(healthz_ok(&s));
}

#[test]
fn a_stalled_body_answers_408_in_json() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(dir.path(), &["--body-timeout", "500ms"]);
    let mut c = TcpStream::connect(addr(&s)).expect("a connection");
    c.write_all(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"user\":",
    )
    .expect("a partial body");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("{\"error\":{\"message\":\"the request body did not arrive within"),
        "{answer}"
    );
    assert_eq!(count_users(&s, None), 0);
}

#[test]
fn connections_past_the_cap_are_closed_on_arrival() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(
        dir.path(),
        &["--max-connections", "20", "--idle-timeout", "2s"],
    );
    let held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(addr(&s)).expect("a connection"))
        .collect();
    let mut surplus = TcpStream::connect(addr(&s)).expect("the kernel accepts");
    let _ = surplus.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed_within(&mut surplus, Duration::from_secs(20)));
    drop(held);
    // Once the held ones are gone, new clients are served again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthz_ok(&s) {
        assert!(Instant::now() < deadline, "not served again");
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = metric(&s, None, "profiledb_connections_refused_total");
    assert!(refused >= 1, "{refused}");
}
