//! `profiledb import --connect`: events checked here and sent to a running
//! server in batches; the server's `?skip_bad=true` writes a batch's good
//! events and answers the rejected ones, which import lists by line.

mod support;

use std::process::Command;

use support::{SCHEMA, Server, count_users, query};

fn import(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .arg("import")
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn import_streams_to_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(&s, None, SCHEMA);
    assert_eq!(status, 200, "{body}");
    let files = tempfile::tempdir().expect("tempdir");
    let good = files.path().join("good.csv");
    let mut text = String::from("user,type,ts,amount,region\n");
    for i in 0..25_000 {
        text.push_str(&format!("u{i},purchase,1761991200000,{},\n", i % 7));
    }
    text.push_str("u0,signup,1761991200000,,007\n");
    std::fs::write(&good, text).expect("write");
    let o = import(&["--connect", &s.url, good.to_str().expect("utf-8")]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    assert!(out.contains("imported 25001 events"), "{out}");
    assert_eq!(count_users(&s, None), 25_000);
    // The region column stays text, as the server's schema says.
    let (_, body) = query(&s, None, "SELECT region FROM users WHERE id = 'u0'");
    assert_eq!(body["rows"][0][0], "007", "{body}");

    // A line the server refuses (a string where a number goes): without
    // --skip-bad the import stops there, naming the line.
    let bad = files.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"user\":\"v1\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":1}\n\
         {\"user\":\"v2\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":\"lots\"}\n\
         {\"user\":\"v3\",\"type\":\"purchase\",\"ts\":1761991200000,\"amount\":3}\n",
    )
    .expect("write");
    let o = import(&["--connect", &s.url, bad.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    assert!(err.contains("0 events were written before it"), "{err}");
    assert_eq!(
        count_users(&s, None),
        25_000,
        "the refused batch wrote nothing"
    );
    // With --skip-bad, the good lines are written and the bad one listed.
    let o = import(&[
        "--connect",
        &s.url,
        "--skip-bad",
        bad.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(out.contains("imported 2 events, rejected 1 lines"), "{out}");
    assert!(err.contains("bad.jsonl:2: field 'amount'"), "{err}");
    assert_eq!(count_users(&s, None), 25_002);
}
