//! The OpenAPI document against the running server: the server serves the
//! document in the repository, every documented operation answers with a
//! documented status and a body its schema admits, and methods a path does
//! not take answer a JSON 405.

mod support;

use serde_json::{Value, json};
use support::{SCHEMA, Server, call, events, query};

/// `v` against `schema` of `doc` (types, required properties, properties,
/// items, `$ref`, `nullable`, `maxItems`): the first violation, by path.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        if v.is_null() && schema["nullable"] == json!(true) {
            return Ok(());
        }
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    if v.is_null() && schema["nullable"] == json!(true) {
        return Ok(());
    }
    let ty = schema["type"].as_str();
    let fits = match ty {
        None => true,
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some(other) => return Err(format!("{at}: the document uses type {other}")),
    };
    if !fits {
        return Err(format!("{at}: expected {}, got {v}", ty.unwrap_or("any")));
    }
    if let Some(required) = schema["required"].as_array() {
        for r in required {
            let key = r.as_str().unwrap_or_default();
            if v.get(key).is_none() {
                return Err(format!("{at}: missing required '{key}' in {v}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) {
        for (k, sub) in props {
            if let Some(x) = obj.get(k) {
                check(doc, sub, x, &format!("{at}.{k}"))?;
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(max) = schema["maxItems"].as_u64()
            && items.len() as u64 > max
        {
            return Err(format!("{at}: more than {max} items"));
        }
        if schema.get("items").is_some() {
            for (i, x) in items.iter().enumerate() {
                check(doc, &schema["items"], x, &format!("{at}[{i}]"))?;
            }
        }
    }
    Ok(())
}

/// The answer `(status, body)` to `method path` checked against the
/// document: the status is one it documents, and a JSON body fits that
/// status's schema.
fn conforms(doc: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let mut resp = op["responses"][status.to_string()].clone();
    assert!(
        resp.is_object(),
        "{method} {path} answered {status}, which the document does not list: {body}"
    );
    if let Some(r) = resp["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/responses/");
        resp = doc["components"]["responses"][name].clone();
    }
    if let Some(schema) = resp["content"]["application/json"].get("schema")
        && let Err(e) = check(doc, schema, body, "body")
    {
        panic!("{method} {path} {status}: {e}");
    }
}

#[test]
fn every_documented_operation_answers_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (status, served) = call("GET", &format!("{}/v1/openapi.json", s.url), None, None);
    assert_eq!(status, 200);
    let file: Value = serde_json::from_str(include_str!("../docs/openapi.json")).expect("JSON");
    assert_eq!(served, file, "the server serves the document in docs/");
    let doc = file;
    conforms(&doc, "/v1/openapi.json", "get", status, &served);

    let post = |path: &str, body: Value| {
        call(
            "POST",
            &format!("{}{path}", s.url),
            None,
            Some(("application/json", body.to_string())),
        )
    };
    let (st, body) = query(&s, None, SCHEMA);
    conforms(&doc, "/v1/query", "post", st, &body);
    let (st, body) = query(&s, None, "CREATE SEGMENT big AS spend > 10");
    conforms(&doc, "/v1/query", "post", st, &body);
    let batch = json!([
        {"user": "u1", "type": "purchase", "ts": 1761991200000i64, "amount": 35.0},
        {"user": "u2", "type": "purchase", "ts": 1761991200000i64, "amount": 5.0},
    ]);
    let (st, body) = events(&s, None, batch.to_string(), "application/json");
    assert_eq!(st, 200);
    conforms(&doc, "/v1/events", "post", st, &body);
    let (st, body) = events(&s, None, "[{\"user\": 1}]".into(), "application/json");
    assert_eq!(st, 400);
    conforms(&doc, "/v1/events", "post", st, &body);
    let (st, body) = post("/v1/events?skip_bad=true", json!([{"user": 1}]));
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["rejected"][0]["index"], 0);
    conforms(&doc, "/v1/events", "post", st, &body);

    let (st, body) = post(
        "/v1/query",
        json!({"sql": "SELECT id, spend FROM users WHERE id = $1", "params": ["u1"]}),
    );
    assert_eq!(st, 200);
    conforms(&doc, "/v1/query", "post", st, &body);
    let (st, body) = post("/v1/query", json!({"sql": "SELEC 1"}));
    assert_eq!(st, 400);
    conforms(&doc, "/v1/query", "post", st, &body);

    // Point-in-time rows: each pair's user and time, then the items.
    let (st, body) = post(
        "/v1/rows_as_of",
        json!({"select": "spend", "pairs": [["u1", 1761991200000i64], ["nobody", "2025-11-01T10:00:00Z"]]}),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["rows"],
        json!([
            ["u1", 1761991200000i64, 35.0],
            ["nobody", 1761991200000i64, null]
        ])
    );
    conforms(&doc, "/v1/rows_as_of", "post", st, &body);
    let (st, body) = post(
        "/v1/rows_as_of",
        json!({"select": "spend", "pairs": [["u1", "soon"]]}),
    );
    assert_eq!(st, 400, "{body}");
    conforms(&doc, "/v1/rows_as_of", "post", st, &body);

    let user = |q: &str| call("GET", &format!("{}/v1/users/{q}", s.url), None, None);
    let (st, body) = user("u1");
    assert_eq!(st, 200, "{body}");
    conforms(&doc, "/v1/users/{id}", "get", st, &body);
    assert_eq!(body["segments"], json!(["big"]));
    let (st, body) = user("u1?fields=spend,segments");
    conforms(&doc, "/v1/users/{id}", "get", st, &body);
    assert_eq!(body["features"], json!({"spend": 35.0}));
    assert_eq!(body["attributes"], json!({}));
    let (st, body) = user("u1?fields=spnd");
    assert_eq!(st, 400);
    assert!(body.to_string().contains("did you mean 'spend'"), "{body}");
    conforms(&doc, "/v1/users/{id}", "get", st, &body);
    let (st, body) = user("nobody");
    assert_eq!(st, 404);
    conforms(&doc, "/v1/users/{id}", "get", st, &body);

    let (st, body) = query(
        &s,
        None,
        "CREATE WINDOW daily ON purchase OF amount BUCKET '1d' RETAIN '3650d'",
    );
    assert_eq!(st, 200, "{body}");
    let series = |q: &str| {
        call(
            "GET",
            &format!("{}/v1/users/u1/windows/{q}", s.url),
            None,
            None,
        )
    };
    let (st, body) = series("daily?span=3d&as_of=2025-11-02");
    assert_eq!(st, 200, "{body}");
    conforms(&doc, "/v1/users/{id}/windows/{window}", "get", st, &body);
    let (st, body) = series("daily?span=3d&as_of=2025-11-02&fill=zeros");
    assert_eq!(st, 200, "{body}");
    conforms(&doc, "/v1/users/{id}/windows/{window}", "get", st, &body);
    assert_eq!(body["buckets"].as_array().map(Vec::len), Some(4), "{body}");
    let (st, body) = series("dayly?span=3d");
    assert_eq!(st, 400);
    assert!(body.to_string().contains("did you mean 'daily'"), "{body}");
    conforms(&doc, "/v1/users/{id}/windows/{window}", "get", st, &body);

    let (st, body) = post(
        "/v1/profiles",
        json!({"ids": ["u2", "nobody", "u1"], "fields": ["spend"]}),
    );
    assert_eq!(st, 200, "{body}");
    conforms(&doc, "/v1/profiles", "post", st, &body);
    assert_eq!(body["profiles"][0]["features"], json!({"spend": 5.0}));
    assert_eq!(body["profiles"][1], Value::Null);
    assert_eq!(body["profiles"][2]["user"], "u1");
    assert!(body["profiles"][0].get("segments").is_none(), "{body}");
    // Without fields, each profile lists its segments.
    let (st, body) = post("/v1/profiles", json!({"ids": ["u1", "u2"]}));
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["profiles"][0]["segments"], json!(["big"]));
    assert_eq!(body["profiles"][1]["segments"], json!([]));
    let ids: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let (st, body) = post("/v1/profiles", json!({ "ids": ids }));
    assert_eq!(st, 400);
    assert!(body.to_string().contains("at most 1000"), "{body}");
    conforms(&doc, "/v1/profiles", "post", st, &body);

    let (st, body) = call("DELETE", &format!("{}/v1/users/u2", s.url), None, None);
    conforms(&doc, "/v1/users/{id}", "delete", st, &body);
    let (st, body) = call("DELETE", &format!("{}/v1/users/u2", s.url), None, None);
    assert_eq!(st, 404);
    conforms(&doc, "/v1/users/{id}", "delete", st, &body);

    let (st, body) = call("GET", &format!("{}/healthz", s.url), None, None);
    conforms(&doc, "/healthz", "get", st, &body);
    let (st, body) = call("GET", &format!("{}/metrics", s.url), None, None);
    conforms(&doc, "/metrics", "get", st, &body);
    let text = body.as_str().unwrap_or_default();
    for h in [
        "profiledb_profile_read_duration_seconds_count ",
        "profiledb_ingest_duration_seconds_count ",
        "profiledb_query_duration_seconds_count ",
    ] {
        assert!(text.contains(h), "{h} in {text}");
    }

    // Every documented path answers a method it does not take with a JSON
    // 405; and no route answers a method the document leaves out.
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        let concrete = path.replace("{id}", "u1");
        for method in ["get", "post", "delete"] {
            if ops.get(method).is_some() {
                continue;
            }
            let (st, body) = call(
                &method.to_uppercase(),
                &format!("{}{concrete}", s.url),
                None,
                (method == "post").then(|| ("application/json", "{}".to_owned())),
            );
            assert_eq!(st, 405, "{method} {path}: {body}");
            assert!(
                body["error"]["message"].is_string(),
                "{method} {path}: {body}"
            );
        }
    }
}
