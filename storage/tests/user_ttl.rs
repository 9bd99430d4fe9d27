//! Users with no write for the user TTL are deleted, every byte of them,
//! and users written since are kept.

mod common;

use common::*;
use profiledb_storage::{Event, Result, Value};

#[test]
fn users_past_the_ttl_are_deleted_and_the_rest_kept() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    e.set_history(30 * DAY)?;
    full_schema(&e)?;
    let now = e.now();
    // Last writes 40, 20 and 5 days ago; `late` is old but wrote again.
    for (user, ago) in [("old", 40), ("middle", 20), ("fresh", 5), ("late", 60)] {
        e.ingest(&[Event::new(user, "purchase", now - ago * DAY).with("amount", 1.0)])?;
    }
    e.ingest(&[Event::new("late", "purchase", now - DAY).with("amount", 2.0)])?;
    e.set_attributes("old", now - 40 * DAY, &[("age".into(), Value::Int(30))])?;
    e.set_user_ttl(30 * DAY)?;
    // (The engine may expire them by itself meanwhile: the state after is
    // the same.)
    e.expire_users()?;
    assert!(e.profile("old", now, DAY)?.is_none());
    for user in ["middle", "fresh", "late"] {
        assert!(e.profile(user, now, DAY)?.is_some(), "{user}");
    }
    // Nothing of it is left in any family once purged.
    e.vacuum()?;
    for family in ["features", "attributes", "windows", "vectors", "history"] {
        for key in e.raw_keys(family)? {
            assert!(
                !key.windows(3).any(|w| w == b"old"),
                "{family} keeps a key of the expired user"
            );
        }
    }
    // A TTL of zero keeps everyone; a negative one is refused.
    e.set_user_ttl(0)?;
    assert_eq!(e.expire_users()?, 0);
    assert!(e.set_user_ttl(-1).is_err());
    assert_eq!(e.catalog().user_ttl_ms, 0);
    // The TTL persists.
    e.set_user_ttl(10 * DAY)?;
    drop(e);
    let e = open(dir.path())?;
    assert_eq!(e.catalog().user_ttl_ms, 10 * DAY);
    e.expire_users()?;
    assert!(e.profile("middle", now, DAY)?.is_none());
    Ok(())
}
