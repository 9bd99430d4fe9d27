//! Every error the server gives, its own or the HTTP framework's, has the
//! documented JSON body `{"error": {"message": ...}}`.

mod support;

use support::*;

#[test]
fn every_error_is_json() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(&s, None, SCHEMA);
    assert_eq!(status, 200, "{body}");
    let a = agent();
    let cases: Vec<(&str, String, u16)> = vec![
        ("GET", format!("{}/v1/query", s.url), 405),
        ("GET", format!("{}/v1/events", s.url), 405),
        ("PUT", format!("{}/v1/users/u1", s.url), 405),
        ("GET", format!("{}/nowhere", s.url), 404),
        ("GET", format!("{}/v1/users/%FF%FE", s.url), 400),
        (
            "GET",
            format!("{}/v1/users/u1?as_of=99999999999999999", s.url),
            400,
        ),
        (
            "GET",
            format!("{}/v1/users/u1?as_of=-99999999999999999", s.url),
            400,
        ),
        ("GET", format!("{}/v1/users/u1?window=forever", s.url), 400),
        ("DELETE", format!("{}/v1/users/nobody", s.url), 404),
    ];
    for (method, url, want) in cases {
        let resp = match method {
            "GET" => a.get(&url).call(),
            "DELETE" => a.delete(&url).call(),
            _ => a.put(&url).send(""),
        };
        let mut resp = resp.expect("the server answers");
        let status = resp.status().as_u16();
        let allow = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, want, "{method} {url}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {text:?}"));
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{method} {url}: {text}");
        if want == 405 {
            let allow = allow.unwrap_or_default();
            assert!(
                !allow.is_empty() && message.contains(&allow),
                "{message} / {allow}"
            );
        }
    }
    // The server is alive after all of them.
    assert_eq!(count_users(&s, None), 0);
}
