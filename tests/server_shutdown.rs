//! SIGTERM with requests in flight loses no acknowledged event.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, agent, query};

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
