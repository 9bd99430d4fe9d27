//! Every sync policy acknowledges each batch exactly once, also with concurrent
//! writers sharing group commits.

mod common;

use common::*;
use profiledb_storage::{
    EngineOptions, Event, FeatureKind, Result, RocksEngine, SyncPolicy, Value,
};

#[test]
fn concurrent_writers_under_every_policy() -> Result<()> {
    for policy in [SyncPolicy::None, SyncPolicy::EveryBatch, SyncPolicy::Group] {
        let dir = tempfile::tempdir()?;
        let mut opts = EngineOptions::new(dir.path());
        opts.sync = policy;
        let e = RocksEngine::open(opts)?;
        e.define(feature("n", "tick", None, FeatureKind::Count))?;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let e = &e;
                    s.spawn(move || -> Result<()> {
                        for b in 0..25 {
                            let batch: Vec<Event> = (0..10)
                                .map(|i| Event::new(format!("w{t}"), "tick", T0 + b * 10 + i))
                                .collect();
                            e.ingest(&batch)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(profiledb_storage::Error::Engine("panic".into())))
            })
        })?;
        for t in 0..4 {
            let p = e.profile(&format!("w{t}"), T0, DAY)?;
            assert_eq!(
                p.and_then(|p| p.get("n").cloned()),
                Some(Value::Int(250)),
                "{policy:?}"
            );
        }
    }
    Ok(())
}
