//! The server's endpoints: ingest, query, profile and delete, and bad requests that write nothing.

mod support;

use serde_json::{Value, json};
use support::{SCHEMA, Server, call, count_users, events, query};

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
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 3, "duplicates": 0}))
    );
    let lines = "{\"user\":\"u2\",\"type\":\"view\",\"ts\":1761991200000,\"v\":[0.5,0.25]}\n\n\
                 {\"user\":\"u3\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":1}\n";
    let (status, body) = events(&s, None, lines.into(), "application/x-ndjson");
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 2, "duplicates": 0}))
    );

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
    assert!(text.contains("profiledb_block_cache_bytes "), "{text}");
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
fn a_retried_batch_with_event_ids_is_counted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(
        &s,
        None,
        "ALTER DATABASE SET HISTORY '30d'; CREATE FEATURE purchases ON purchase AS COUNT()",
    );
    assert_eq!(status, 200, "{body}");
    // Yesterday: inside the history's horizon, where ids are remembered.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
        - 86_400_000;
    let batch = json!([
        {"user": "u1", "type": "purchase", "ts": t, "event_id": "o-1"},
        {"user": "u1", "type": "purchase", "ts": t + 1, "event_id": 2},
        {"user": "u1", "type": "purchase", "ts": t + 2, "event_id": "o-1"},
    ])
    .to_string();
    let (status, body) = events(&s, None, batch.clone(), "application/json");
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 2, "duplicates": 1}))
    );
    // The client retries after a timeout: nothing is counted twice.
    let (status, body) = events(&s, None, batch, "application/json");
    assert_eq!(
        (status, body),
        (200, json!({"accepted": 0, "duplicates": 3}))
    );
    let (status, body) = query(&s, None, "SELECT purchases FROM users WHERE id = 'u1'");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([[2]]));
    // A request that names itself is answered once: its repeat answers the
    // first answer and writes nothing, even with other events in it.
    let keyed = |body: Value| -> (u16, Value) {
        let mut resp = ureq::post(&format!("{}/v1/events", s.url))
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", "r-1")
            .send(body.to_string())
            .expect("the server answers");
        let text = resp.body_mut().read_to_string().expect("a body");
        (
            resp.status().as_u16(),
            serde_json::from_str(&text).expect("JSON"),
        )
    };
    let first = keyed(json!([{"user": "u2", "type": "purchase", "ts": t}]));
    assert_eq!(first, (200, json!({"accepted": 1, "duplicates": 0})));
    let again = keyed(json!([{"user": "u2", "type": "purchase", "ts": t + 1}]));
    assert_eq!(again, first);
    let (_, body) = query(&s, None, "SELECT purchases FROM users WHERE id = 'u2'");
    assert_eq!(body["rows"], json!([[1]]));
    // An id that is neither a string nor an integer is refused, naming it.
    let bad = json!([{"user": "u1", "type": "purchase", "ts": 1, "event_id": 1.5}]).to_string();
    let (status, body) = events(&s, None, bad, "application/json");
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("event_id"), "{body}");
}

/// A keyed feature is a JSON object, largest value first, in a profile and
/// in a query's rows; its type is `map`.
#[test]
fn keyed_features_are_json_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(
        &s,
        None,
        "CREATE FEATURE cat_views ON view AS COUNT() BY category TOP 10",
    );
    assert_eq!(status, 200, "{body}");
    let batch = json!([
        {"user": "u1", "type": "view", "ts": 1761991200000i64, "category": "home"},
        {"user": "u1", "type": "view", "ts": 1761991200001i64, "category": "tech"},
        {"user": "u1", "type": "view", "ts": 1761991200002i64, "category": "tech"},
    ]);
    let (status, body) = events(&s, None, batch.to_string(), "application/json");
    assert_eq!(status, 200, "{body}");
    let (status, p) = call("GET", &format!("{}/v1/users/u1", s.url), None, None);
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p["features"]["cat_views"],
        json!({"tech": 2.0, "home": 1.0})
    );
    let (status, body) = query(
        &s,
        None,
        "SELECT cat_views, cat_views['tech'], top_keys(cat_views, 1) FROM users",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["types"], json!(["map", "int", "tags"]));
    assert_eq!(
        body["rows"],
        json!([[{"tech": 2.0, "home": 1.0}, 2, ["tech"]]])
    );
}

/// `POST /v1/query` takes bind parameters: a hostile id matches nothing, and
/// a parameter of no literal's type is a 400 naming it.
#[test]
fn queries_take_bind_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(&s, None, SCHEMA);
    assert_eq!(status, 200, "{body}");
    let batch = json!([
        {"user": "u1", "type": "purchase", "ts": 1761991200000i64, "amount": 35.0},
        {"user": "u2", "type": "purchase", "ts": 1761991200000i64, "amount": 5.5},
    ]);
    let (status, body) = events(&s, None, batch.to_string(), "application/json");
    assert_eq!(status, 200, "{body}");
    let post = |body: Value| {
        call(
            "POST",
            &format!("{}/v1/query", s.url),
            None,
            Some(("application/json", body.to_string())),
        )
    };
    let (status, body) = post(json!({
        "sql": "SELECT id, spend FROM users WHERE id = $1 AND spend > $2",
        "params": ["u1", 10],
    }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([["u1", 35.0]]));
    let (status, body) = post(json!({
        "sql": "SELECT count(*) FROM users WHERE id = $1",
        "params": ["x' OR id != '"],
    }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([[0]]));
    let (status, body) = post(json!({
        "sql": "SELECT id FROM users WHERE id = $1",
        "params": [{"a": 1}],
    }));
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("$1"), "{body}");
    let (status, body) =
        post(json!({"sql": "SELECT id FROM users WHERE id = $2", "params": ["u1"]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("no parameter $2"), "{body}");
}

/// `POST /v1/events?skip_bad=true` writes a batch's good events and answers
/// each rejected one with its index, field and reason; without it the batch
/// writes nothing.
#[test]
fn ingest_can_skip_bad_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(&s, None, SCHEMA);
    assert_eq!(status, 200, "{body}");
    let batch = "{\"user\":\"a\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":1}\n\
                 {\"user\":\"b\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":\"x\"}\n\
                 not json\n\
                 {\"user\":\"c\",\"type\":\"nothing_bound\",\"ts\":1761991200000}\n\
                 {\"user\":\"d\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":2}\n";
    let (status, body) = events(&s, None, batch.into(), "application/x-ndjson");
    assert_eq!(status, 400, "{body}");
    assert_eq!(count_users(&s, None), 0);
    let (status, body) = call(
        "POST",
        &format!("{}/v1/events?skip_bad=true", s.url),
        None,
        Some(("application/x-ndjson", batch.into())),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    let rejected = body["rejected"].as_array().expect("rejected");
    let indexes: Vec<u64> = rejected
        .iter()
        .filter_map(|r| r["index"].as_u64())
        .collect();
    assert_eq!(indexes, [1, 2, 3], "{body}");
    assert_eq!(rejected[0]["field"], "amount");
    assert!(
        rejected[1]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("JSON")
    );
    assert_eq!(count_users(&s, None), 2);
}
