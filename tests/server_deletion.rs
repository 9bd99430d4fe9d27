//! The deletion proof, against the real server: after a delete and a `VACUUM`,
//! no file of the database directory holds the deleted users' ids or data,
//! including when the server was killed with SIGKILL right after the delete (so
//! the vector index snapshot of an earlier clean stop still held them).

mod support;

use serde_json::json;
use support::*;

const VICTIMS: [&str; 3] = ["victim-a71c", "victim-b52d", "victim-c93e"];

fn payload(victim: &str) -> String {
    format!("region-of-{victim}")
}

fn load(s: &Server) {
    let (status, body) = query(s, None, SCHEMA);
    assert_eq!(status, 200, "{body}");
    let mut evs = Vec::new();
    let users = (0..150)
        .map(|i| (format!("user-{i:03}"), "north".to_owned()))
        .chain(VICTIMS.iter().map(|v| ((*v).to_owned(), payload(v))));
    for (i, (user, region)) in users.enumerate() {
        let ts = 1_761_955_200_000i64 + i as i64;
        evs.push(json!({"user": user, "type": "signup", "ts": ts, "region": region}));
        evs.push(json!({"user": user, "type": "purchase", "ts": ts, "amount": 3.5}));
        evs.push(json!({"user": user, "type": "view", "ts": ts, "v": [1.0, i as f64]}));
    }
    let (status, body) = events(
        s,
        None,
        serde_json::Value::Array(evs).to_string(),
        "application/json",
    );
    assert_eq!(status, 200, "{body}");
    // Builds the vector index, which a clean stop then writes to disk.
    let (status, body) = query(
        s,
        None,
        "SELECT id, cosine(taste, [1, 0]) AS s FROM users ORDER BY s DESC LIMIT 3",
    );
    assert_eq!(status, 200, "{body}");
}

fn assert_gone(dir: &std::path::Path, victim: &str) {
    for needle in [victim.to_owned(), payload(victim)] {
        let found = files_holding(dir, &needle);
        assert!(found.is_empty(), "'{needle}' is still in {found:?}");
    }
}

#[test]
fn deleted_users_leave_no_byte_on_disk_after_vacuum_even_after_a_kill() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(dir.path(), &[]);
    load(&s);
    assert!(s.terminate().success());
    // The search finds what it looks for: every victim is on disk, and in the
    // vector index snapshot the clean stop wrote.
    for v in VICTIMS {
        let found = files_holding(dir.path(), v);
        assert!(
            found.iter().any(|f| f.ends_with("vector-index.snapshot")),
            "{v}: {found:?}"
        );
    }

    // Three ways to delete, then SIGKILL before anything is flushed or purged.
    let s = Server::start(dir.path(), &[]);
    let (status, body) = call(
        "DELETE",
        &format!("{}/v1/users/{}", s.url, VICTIMS[0]),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = query(&s, None, &format!("DELETE USER '{}'", VICTIMS[1]));
    assert_eq!(status, 200, "{body}");
    let (status, body) = query(
        &s,
        None,
        &format!("DELETE FROM users WHERE region = '{}'", payload(VICTIMS[2])),
    );
    assert_eq!(
        (status, &body["summary"]),
        (200, &json!("DELETE 1")),
        "{body}"
    );
    kill_9(s);

    let s = Server::start(dir.path(), &[]);
    for v in VICTIMS {
        let (status, _) = call("GET", &format!("{}/v1/users/{v}", s.url), None, None);
        assert_eq!(status, 404, "{v} is gone from reads at once");
    }
    let (status, body) = query(&s, None, "VACUUM");
    assert_eq!(
        (status, &body["summary"]),
        (200, &json!("VACUUM")),
        "{body}"
    );
    for v in VICTIMS {
        assert_gone(dir.path(), v);
    }
    // The others are all there.
    assert_eq!(count_users(&s, None), 150);

    // Deleting a user that never existed answers 404 and writes nothing.
    let (status, body) = call(
        "DELETE",
        &format!("{}/v1/users/never-seen-9d1f", s.url),
        None,
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(s.terminate().success());
    for v in VICTIMS {
        assert_gone(dir.path(), v);
    }
    assert!(files_holding(dir.path(), "never-seen-9d1f").is_empty());
}
