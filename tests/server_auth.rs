//! Bearer tokens: the write token, the read-only token, and none.

mod support;

use serde_json::json;
use support::{SCHEMA, Server, call, count_users, events, query};

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
